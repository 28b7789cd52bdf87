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
//! - [`certs`]: test certificates generated at test time.
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
