//! Builders for the tests of every crate (feature `testkit`): one way to
//! make a Route, a Service, an EndpointSlice or a snapshot, so fixtures
//! are not copied between crates.
//!
//! - [`RouteBuilder`]: a [`Route`] (namespace, name, host, path, service,
//!   weights, alternate backends, TLS, annotations, creation time,
//!   wildcard policy, …);
//! - [`ServiceBuilder`] and [`EndpointSliceBuilder`]: the k8s-openapi
//!   [`Service`](k8s_openapi::api::core::v1::Service) and
//!   [`EndpointSlice`](k8s_openapi::api::discovery::v1::EndpointSlice);
//! - [`SnapshotBuilder`]: a [`Snapshot`] of built objects;
//! - [`plan`]: the smallest plan `Backend` and `Server` for renderer tests;
//! - [`certs`]: test certificates generated at test time;
//! - [`openshift`]: the OpenShift router's TLS validation table as cases.
//!
//! Every object builder has `build()` (the typed object), `to_json()` (the
//! manifest as a JSON value, `apiVersion` and `kind` included) and
//! `to_yaml()` (the same manifest as text, for tests that write manifest
//! files or feed the CLI: JSON is valid YAML, so one form serves both; the
//! text ends with a newline, so documents can be joined with `---\n`).
//!
//! Builders start from the least an object can be (see each `new`) and
//! add only what a test asks for, so a fixture states every field it
//! relies on.

pub mod certs;
pub mod openshift;
pub mod plan;
mod route;
mod service;
mod snapshot;

pub use route::RouteBuilder;
pub use service::{EndpointSliceBuilder, ServiceBuilder};
pub use snapshot::SnapshotBuilder;

use serde::Serialize;

use crate::model::{Route, Snapshot};

/// A plain-HTTP Route `ns/name` for `host`, sending to Service `service`:
/// `RouteBuilder::new(ns, name).host(host).to(service, None).build()`.
pub fn route(ns: &str, name: &str, host: &str, service: &str) -> Route {
    RouteBuilder::new(ns, name)
        .host(host)
        .to(service, None)
        .build()
}

/// A snapshot holding `routes` and nothing else.
pub fn snapshot(routes: impl IntoIterator<Item = Route>) -> Snapshot {
    SnapshotBuilder::new().routes(routes).build()
}

/// `build()`, `to_json()` and `to_yaml()` of an object builder whose
/// object is the field `$field` of type `$object` (named `$what` in docs).
macro_rules! manifest_methods {
    ($field:ident: $object:ty, $what:literal) => {
        #[doc = concat!("The ", $what, ".")]
        pub fn build(self) -> $object {
            self.$field
        }

        #[doc = concat!("The ", $what, " as a JSON manifest (`apiVersion`, `kind`).")]
        pub fn to_json(&self) -> serde_json::Value {
            super::json_of(&self.$field)
        }

        /// [`to_json`](Self::to_json) as manifest text (valid YAML), ending
        /// in a newline.
        pub fn to_yaml(&self) -> String {
            super::yaml_of(&self.$field)
        }
    };
}
use manifest_methods;

/// `object` as a JSON manifest value.
fn json_of(object: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(object).expect("a test object serializes")
}

/// `object` as manifest text: pretty JSON (valid YAML) and a newline.
fn yaml_of(object: &impl Serialize) -> String {
    let mut text = serde_json::to_string_pretty(object).expect("a test object serializes");
    text.push('\n');
    text
}

/// `value` (an RFC 3339 time such as `2026-01-01T00:00:00Z`) as a
/// Kubernetes timestamp; panics on anything else.
fn time(value: &str) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Time {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        value
            .parse()
            .unwrap_or_else(|e| panic!("test timestamp {value:?}: {e}")),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn route_manifests_hold_what_was_set_and_decode_to_the_built_route() {
        let minimal = RouteBuilder::new("ns", "r");
        assert_eq!(
            minimal.to_json(),
            json!({"apiVersion": "route.openshift.io/v1", "kind": "Route",
                   "metadata": {"namespace": "ns", "name": "r"},
                   "spec": {"to": {"name": ""}}})
        );
        let full = RouteBuilder::new("shop", "web")
            .host("www.example.com")
            .path("/api")
            .to("api", Some(3))
            .alt("canary", None)
            .target_port("http")
            .wildcard_policy("None")
            .tls("edge")
            .insecure("Redirect")
            .annotation("a", "1")
            .label("l", "2")
            .created("2026-01-01T00:00:00Z")
            .uid("u")
            .resource_version("7");
        assert_eq!(
            full.to_json(),
            json!({"apiVersion": "route.openshift.io/v1", "kind": "Route",
                   "metadata": {"namespace": "shop", "name": "web", "uid": "u",
                                "resourceVersion": "7", "annotations": {"a": "1"},
                                "labels": {"l": "2"},
                                "creationTimestamp": "2026-01-01T00:00:00Z"},
                   "spec": {"host": "www.example.com", "path": "/api",
                            "to": {"kind": "Service", "name": "api", "weight": 3},
                            "alternateBackends": [{"kind": "Service", "name": "canary"}],
                            "port": {"targetPort": "http"}, "wildcardPolicy": "None",
                            "tls": {"termination": "edge",
                                    "insecureEdgeTerminationPolicy": "Redirect"}}})
        );
        let text = full.to_yaml();
        assert!(text.ends_with("}\n"), "{text}");
        let decoded: Route = serde_json::from_str(&text).unwrap();
        assert_eq!(decoded, full.build());
    }

    #[test]
    fn service_and_slice_manifests() {
        assert_eq!(
            ServiceBuilder::new("ns", "web")
                .port("http", 80, 8080)
                .tcp_port("tls", 443, 8443)
                .to_json(),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"namespace": "ns", "name": "web"},
                   "spec": {"ports": [
                       {"name": "http", "port": 80, "targetPort": 8080},
                       {"name": "tls", "port": 443, "targetPort": 8443, "protocol": "TCP"}]}})
        );
        assert_eq!(
            EndpointSliceBuilder::new("ns", "web-1", "web")
                .port("http", 8080)
                .tcp_port("tls", 8443)
                .endpoint("10.0.0.1")
                .ready_endpoint("10.0.0.2")
                .pod_endpoint("10.0.0.3", "web-3")
                .to_json(),
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                   "metadata": {"namespace": "ns", "name": "web-1",
                                "labels": {"kubernetes.io/service-name": "web"}},
                   "addressType": "IPv4",
                   "ports": [{"name": "http", "port": 8080},
                             {"name": "tls", "port": 8443, "protocol": "TCP"}],
                   "endpoints": [
                       {"addresses": ["10.0.0.1"]},
                       {"addresses": ["10.0.0.2"], "conditions": {"ready": true}},
                       {"addresses": ["10.0.0.3"], "conditions": {"ready": true},
                        "targetRef": {"kind": "Pod", "name": "web-3", "namespace": "ns"}}]})
        );
    }

    #[test]
    fn snapshots_keep_the_order_objects_were_added_in() {
        let s = SnapshotBuilder::new()
            .route(route("ns", "b", "b.example.com", "s"))
            .routes([route("ns", "a", "a.example.com", "s")])
            .service(ServiceBuilder::new("ns", "s").build())
            .endpoint_slice(EndpointSliceBuilder::new("ns", "s-1", "s").build())
            .build();
        let names: Vec<_> = s
            .routes
            .iter()
            .map(|r| r.metadata.name.as_deref().unwrap())
            .collect();
        assert_eq!(names, ["b", "a"]);
        assert_eq!(s.services.len(), 1);
        assert_eq!(s.endpoint_slices.len(), 1);
        assert!(s.namespaces.is_empty() && s.undecodable_routes.is_empty());
    }
}
