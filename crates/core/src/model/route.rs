//! The OpenShift `Route` (`route.openshift.io/v1`) as it arrives from the API
//! server or a manifest file.
//!
//! These types are deliberately permissive: every field is optional or
//! defaulted, integers are wide and enumerations are plain strings, so that a
//! manifest a cluster would refuse still deserializes and admission can reject
//! it with a reason that names the field and the rule (SPEC §3 step 2)
//! instead of failing the whole input. Unknown fields are ignored.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// A Route object (`route.openshift.io/v1`, kind `Route`), as used by the
/// file loader, the watcher and the status writer.
///
/// Written by hand rather than derived with kube's `CustomResource`, so that
/// the core does not depend on kube: it implements `k8s_openapi`'s
/// [`Resource`](k8s_openapi::Resource) and
/// [`Metadata`](k8s_openapi::Metadata), which give it kube's `Resource`
/// through kube's blanket implementation (`routegen-k8s` watches and patches
/// it as such). On the wire it is what kube's derive makes: `apiVersion` and
/// `kind` written on output and ignored on input, `metadata` and `spec`
/// required, `status` optional.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Route {
    pub metadata: ObjectMeta,
    pub spec: RouteSpec,
    #[serde(default)]
    pub status: Option<RouteStatus>,
}

/// Metadata fields of a Route nothing in routegen reads, dropped from its
/// JSON before it is decoded ([`drop_unread_metadata`]): label selectors
/// are applied by the API server, and the rest is bookkeeping. Labels
/// alone cost a B-tree node (over 500 bytes) per Route.
pub const UNREAD_METADATA: [&str; 6] = [
    "labels",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "generateName",
    "selfLink",
];

/// Drop [`UNREAD_METADATA`] from a Route's JSON.
pub fn drop_unread_metadata(value: &mut serde_json::Value) {
    if let Some(meta) = value
        .get_mut("metadata")
        .and_then(serde_json::Value::as_object_mut)
    {
        for field in UNREAD_METADATA {
            meta.remove(field);
        }
    }
}

impl Route {
    /// A Route named `name` (no namespace) with `spec` and no status.
    pub fn new(name: &str, spec: RouteSpec) -> Route {
        Route {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
        }
    }
}

impl Serialize for Route {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut obj = ser.serialize_struct("Route", 4 + usize::from(self.status.is_some()))?;
        obj.serialize_field("apiVersion", <Route as k8s_openapi::Resource>::API_VERSION)?;
        obj.serialize_field("kind", <Route as k8s_openapi::Resource>::KIND)?;
        obj.serialize_field("metadata", &self.metadata)?;
        obj.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            obj.serialize_field("status", status)?;
        }
        obj.end()
    }
}

impl k8s_openapi::Resource for Route {
    const API_VERSION: &'static str = "route.openshift.io/v1";
    const GROUP: &'static str = "route.openshift.io";
    const KIND: &'static str = "Route";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "routes";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for Route {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `spec` of a Route.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteSpec {
    /// Requested host name; empty means "derive one" (subdomain or template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Subdomain requested within the router's domain (used when `host` is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdomain: Option<String>,
    /// Path prefix the Route serves; must start with `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Primary backend.
    #[serde(default)]
    pub to: RouteTargetReference,
    /// Up to three further backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_backends: Option<Vec<RouteTargetReference>>,
    /// Which endpoint port(s) the router sends traffic to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<RoutePort>,
    /// TLS termination; absent means plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// `None` (default) or `Subdomain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_policy: Option<String>,
    /// Header actions (API field newer than the seed reference). Kept as raw
    /// JSON: it is validated as the API server does, and never rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub http_headers: Option<serde_json::Value>,
}

/// A backend reference: a Service and its relative weight.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTargetReference {
    /// `Service` or empty (defaulted to `Service`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Service name; required.
    #[serde(default)]
    pub name: String,
    /// 0..=256, default 100. Wide on purpose so out-of-range values can be
    /// rejected with a reason rather than a parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<i64>,
}

/// `spec.port`.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoutePort {
    /// Endpoint port name or pod port number.
    pub target_port: IntOrString,
}

/// `spec.tls`.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// `edge`, `passthrough` or `reencrypt` (case-insensitive on input).
    #[serde(default)]
    pub termination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<std::sync::Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<std::sync::Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<std::sync::Arc<str>>,
    #[serde(
        default,
        rename = "destinationCACertificate",
        skip_serializing_if = "Option::is_none"
    )]
    pub destination_ca_certificate: Option<std::sync::Arc<str>>,
    /// `Allow`, `None`, `Redirect`, empty, or the legacy `Disable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_edge_termination_policy: Option<String>,
    /// Reference to a Secret holding the certificate (API field newer than
    /// the seed reference). Never used for configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub external_certificate: Option<serde_json::Value>,
}

/// `status`: one entry per router that has seen the Route.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteStatus {
    #[serde(default)]
    pub ingress: Vec<RouteIngress>,
}

/// One router's view of a Route.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteIngress {
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub router_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_canonical_hostname: Option<String>,
    #[serde(default)]
    pub conditions: Vec<RouteIngressCondition>,
}

/// Condition of a Route on one router (`Admitted`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteIngressCondition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unread_metadata_is_dropped_and_the_rest_kept() {
        let mut value = serde_json::json!({
            "metadata": {
                "name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "3",
                "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app": "web"}, "generateName": "a-", "selfLink": "/x",
                "annotations": {"haproxy.router.openshift.io/timeout": "5s"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "o", "uid": "u0"}],
                "finalizers": ["f"],
                "managedFields": [{"manager": "kubectl"}]
            },
            "spec": {"host": "a.example.com", "to": {"kind": "Service", "name": "s"}}
        });
        drop_unread_metadata(&mut value);
        let route: Route = serde_json::from_value(value).unwrap();
        let want: ObjectMeta = serde_json::from_value(serde_json::json!({
            "name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "3",
            "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {"haproxy.router.openshift.io/timeout": "5s"}
        }))
        .unwrap();
        assert_eq!(route.metadata, want);
    }
}
