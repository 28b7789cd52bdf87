//! A Route as the watcher stores it: decoded when possible, kept by name
//! with the decoder's message when not.
//!
//! A typed watcher fails a whole list (and so never syncs) when one object
//! does not decode. The API server validates Routes, so that should not
//! happen, but version skew (a field whose type changed) or a CRD without
//! a schema must not stall the router for every other Route: such a Route
//! is rejected by admission (`ValidationFailed`, naming the field), exactly
//! as the file loader does.
//!
//! The bottom of the crate: the source fills Route stores with these and
//! the status writer reads the current status from them; this module uses
//! neither.

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::NamespaceResourceScope;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use routegen_core::model::snapshot::UndecodableRoute;
use routegen_core::model::{Route, RouteStatus, Snapshot};

/// One Route object from the API server, without its managed fields and
/// its `kubectl.kubernetes.io/last-applied-configuration` annotation (a
/// full copy of the object): neither is read, and both would be held for
/// every Route.
#[derive(Clone, Debug)]
pub struct WatchedRoute {
    /// What a Route that did not decode keeps beside the error (`Some`
    /// exactly then); a decoded Route's metadata, status and wildcard
    /// policy are inside `decoded`, held once ([`WatchedRoute::metadata`],
    /// [`WatchedRoute::status`] and [`WatchedRoute::wildcard_policy`] read
    /// either). Boxed: the reflector store holds a copy of every watched
    /// Route, and an `ObjectMeta` alone is 360 bytes inline.
    undecodable: Option<Box<Undecodable>>,
    /// The typed Route, or `field <path>: <message>` when it does not decode.
    pub decoded: Result<std::sync::Arc<Route>, String>,
}

/// The parts of an undecodable Route the status writer needs.
#[derive(Clone, Debug, Default)]
struct Undecodable {
    metadata: ObjectMeta,
    /// `status`, decoded on its own; `None` when absent or broken.
    status: Option<RouteStatus>,
    /// `spec.wildcardPolicy` if it is a string.
    wildcard_policy: Option<String>,
}

/// What an undecodable Route without its parts reads (never the case after
/// [`WatchedRoute::from_value`], which keeps the metadata it found).
static NO_METADATA: std::sync::LazyLock<ObjectMeta> = std::sync::LazyLock::new(ObjectMeta::default);

/// An annotation that only costs memory (a full copy of the object).
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

impl WatchedRoute {
    /// Decode from the JSON the API server sent.
    pub fn from_value(mut value: Value) -> Result<WatchedRoute, String> {
        routegen_core::model::route::drop_unread_metadata(&mut value);
        if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove(LAST_APPLIED);
            }
        }
        let metadata: ObjectMeta = match value.get("metadata") {
            Some(m) => ObjectMeta::deserialize(m).map_err(|e| format!("field metadata: {e}"))?,
            None => ObjectMeta::default(),
        };
        let status = value
            .get("status")
            .and_then(|s| RouteStatus::deserialize(s).ok());
        let wildcard_policy = value
            .pointer("/spec/wildcardPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        let decoded = serde_path_to_error::deserialize::<_, Route>(value)
            .map(std::sync::Arc::new)
            .map_err(|e| format!("field {}: {}", e.path(), e.inner()));
        Ok(WatchedRoute {
            undecodable: decoded.is_err().then(|| {
                Box::new(Undecodable {
                    metadata,
                    status,
                    wildcard_policy,
                })
            }),
            decoded,
        })
    }

    /// The object's metadata (the decoded Route's, or the undecodable
    /// object's).
    pub fn metadata(&self) -> &ObjectMeta {
        match &self.decoded {
            Ok(route) => &route.metadata,
            Err(_) => self
                .undecodable
                .as_ref()
                .map_or(&*NO_METADATA, |u| &u.metadata),
        }
    }

    /// `status`, known even for an undecodable Route (decoded on its own
    /// then); `None` when absent or broken.
    pub fn status(&self) -> Option<&RouteStatus> {
        match &self.decoded {
            Ok(route) => route.status.as_ref(),
            Err(_) => self.undecodable.as_ref()?.status.as_ref(),
        }
    }

    /// `spec.wildcardPolicy` if it is a string.
    pub fn wildcard_policy(&self) -> Option<&str> {
        match &self.decoded {
            Ok(route) => route.spec.wildcard_policy.as_deref(),
            Err(_) => self.undecodable.as_ref()?.wildcard_policy.as_deref(),
        }
    }

    /// Add to a snapshot: the Route, or (undecodable) what admission
    /// rejects by name.
    pub fn push_into(&self, snapshot: &mut Snapshot) {
        match &self.decoded {
            Ok(route) => snapshot.routes.push(route.clone()),
            Err(message) => snapshot.undecodable_routes.push(UndecodableRoute {
                metadata: self.metadata().clone(),
                message: message.clone(),
            }),
        }
    }
}

impl From<Route> for WatchedRoute {
    fn from(route: Route) -> Self {
        WatchedRoute {
            undecodable: None,
            decoded: Ok(std::sync::Arc::new(route)),
        }
    }
}

impl<'de> Deserialize<'de> for WatchedRoute {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        WatchedRoute::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl kube::Resource for WatchedRoute {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        <Route as kube::Resource>::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        <Route as kube::Resource>::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        <Route as kube::Resource>::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        <Route as kube::Resource>::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        self.metadata()
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match &mut self.decoded {
            // Unique right after decoding, when the watcher's step runs.
            Ok(route) => &mut std::sync::Arc::make_mut(route).metadata,
            Err(_) => &mut self.undecodable.get_or_insert_default().metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_keeps_undecodable_by_name() {
        let good = serde_json::json!({
            "apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "3"},
            "spec": {"host": "a.example.com", "to": {"kind": "Service", "name": "s"}},
            "status": {"ingress": [{"host": "a.example.com", "routerName": "x"}]}
        });
        let r: WatchedRoute = serde_json::from_value(good).unwrap();
        assert!(r.decoded.is_ok());
        assert_eq!(r.status().unwrap().ingress[0].router_name, "x");

        let bad = serde_json::json!({
            "metadata": {"name": "b", "namespace": "ns"},
            "spec": {"host": "b.example.com", "to": {"name": "s", "weight": "heavy"},
                     "wildcardPolicy": "None"},
            "status": {"ingress": [{"host": "b.example.com", "routerName": "default"}]}
        });
        let r: WatchedRoute = serde_json::from_value(bad).unwrap();
        let message = r.decoded.as_ref().unwrap_err();
        assert!(message.contains("spec.to.weight"), "{message}");
        assert_eq!(r.wildcard_policy(), Some("None"));
        assert_eq!(r.status().unwrap().ingress.len(), 1);
        let mut snapshot = Snapshot::default();
        r.push_into(&mut snapshot);
        assert!(snapshot.routes.is_empty());
        assert_eq!(
            snapshot.undecodable_routes[0].metadata.name.as_deref(),
            Some("b")
        );
        assert_eq!(r.metadata().name.as_deref(), Some("b"));
    }

    #[test]
    fn managed_fields_and_the_last_applied_copy_are_not_kept() {
        let route = serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "3",
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
                         "annotations": {LAST_APPLIED: "{...the whole object...}",
                                         "haproxy.router.openshift.io/timeout": "5s"}},
            "spec": {"host": "a.example.com", "to": {"kind": "Service", "name": "s"}}
        });
        let r: WatchedRoute = serde_json::from_value(route).unwrap();
        let decoded = r.decoded.as_ref().unwrap();
        assert!(decoded.metadata.managed_fields.is_none());
        let annotations = decoded.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            annotations.keys().collect::<Vec<_>>(),
            ["haproxy.router.openshift.io/timeout"]
        );
        assert!(std::ptr::eq(r.metadata(), &decoded.metadata), "one copy");
        assert_eq!(r.metadata().resource_version.as_deref(), Some("3"));
    }
}
