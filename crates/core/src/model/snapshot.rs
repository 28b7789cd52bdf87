//! One consistent set of objects: the input of admission and planning.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::Route;

/// `namespace/name` of a namespaced object. Orders by namespace, then name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: String,
    pub name: String,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Every object the router knows at one instant. Every object carries a
/// namespace (the loader fills in the default). The order of the vectors is
/// irrelevant: consumers sort what they need, so results never depend on
/// arrival order.
///
/// Objects are shared (`Arc`): a source hands the same `Arc` for an object
/// that did not change, which is what lets `routegen_render::engine::Engine` reuse
/// its per-object results by pointer identity instead of comparing or
/// hashing contents. Change an object with `Arc::make_mut` or by replacing
/// its `Arc`; never mutate through shared ownership.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub routes: Vec<Arc<Route>>,
    /// Route documents with wrong field types (rejected by admission).
    pub undecodable_routes: Vec<UndecodableRoute>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    pub namespaces: Vec<Arc<Namespace>>,
    /// Secrets named by a Route's `spec.tls.externalCertificate` (a source
    /// may hold only those): `data` only (`stringData` already merged in,
    /// as the API server does).
    pub secrets: Vec<Arc<Secret>>,
    /// Secrets a Route names that the source may not read (403: the
    /// router's ServiceAccount has no Role for them).
    pub forbidden_secrets: Vec<ObjectKey>,
}

/// The `namespace/name` of any object with metadata.
pub fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The `(namespace, name)` of any object with metadata, borrowed; ordered
/// as [`key_of`]'s `ObjectKey` (a missing field is the empty string), the
/// order of a snapshot's lists.
pub fn key_str(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// A Route document whose fields could not be decoded (wrong types). Kept
/// so admission can reject it by name with the decoder's message instead of
/// failing the whole input.
#[derive(Clone, Debug, Default)]
pub struct UndecodableRoute {
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// `field <path>: <serde message>`.
    pub message: String,
}

/// Whether two Route objects are equal (the Route type, kube's derive, has
/// no `PartialEq`: its parts are compared).
pub fn routes_equal(a: &Route, b: &Route) -> bool {
    a.metadata == b.metadata && a.spec == b.spec && a.status == b.status
}

impl Snapshot {
    /// Replace each object equal to the object of the same kind and
    /// `namespace/name` in `previous` by `previous`'s `Arc`, so that a
    /// source that re-reads everything (a directory of manifests) still
    /// hands unchanged objects to the engine as the same `Arc`s. Returns
    /// how many objects were replaced.
    pub fn reuse_unchanged(&mut self, previous: &Snapshot) -> usize {
        fn reuse<T>(
            now: &mut [Arc<T>],
            before: &[Arc<T>],
            meta: impl Fn(&T) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
            equal: impl Fn(&T, &T) -> bool,
        ) -> usize {
            type Meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
            fn key_of<'a, T>(meta: &impl Fn(&T) -> &Meta, o: &'a T) -> (&'a str, &'a str) {
                key_str(meta(o))
            }
            // Most passes hand back the same objects in the same order: an
            // object is looked up by key only when the one at its position
            // is not itself.
            let mut index: Option<rustc_hash::FxHashMap<(&str, &str), &Arc<T>>> = None;
            let mut reused = 0;
            for (i, object) in now.iter_mut().enumerate() {
                let same_place = before.get(i);
                if same_place.is_some_and(|old| Arc::ptr_eq(old, object)) {
                    continue;
                }
                let key = key_of(&meta, object);
                let old = match same_place {
                    Some(old) if key_of(&meta, old.as_ref()) == key => Some(old),
                    _ => {
                        // Shared, so the keys may live shorter than `before`.
                        let index: &rustc_hash::FxHashMap<(&str, &str), &Arc<T>> = index
                            .get_or_insert_with(|| {
                                before
                                    .iter()
                                    .map(|o| (key_of(&meta, o.as_ref()), o))
                                    .collect()
                            });
                        index.get(&key).copied()
                    }
                };
                if let Some(old) = old {
                    if !Arc::ptr_eq(old, object) && equal(old, object) {
                        *object = Arc::clone(old);
                        reused += 1;
                    }
                }
            }
            reused
        }
        reuse(
            &mut self.routes,
            &previous.routes,
            |r| &r.metadata,
            routes_equal,
        ) + reuse(
            &mut self.services,
            &previous.services,
            |s| &s.metadata,
            |a, b| a == b,
        ) + reuse(
            &mut self.endpoint_slices,
            &previous.endpoint_slices,
            |s| &s.metadata,
            |a, b| a == b,
        ) + reuse(
            &mut self.namespaces,
            &previous.namespaces,
            |n| &n.metadata,
            |a, b| a == b,
        ) + reuse(
            &mut self.secrets,
            &previous.secrets,
            |s| &s.metadata,
            |a, b| a == b,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn equal_objects_take_the_previous_arc_changed_ones_keep_theirs() {
        let before = testkit::snapshot([
            testkit::route("ns", "a", "a.example.com", "s"),
            testkit::route("ns", "b", "b.example.com", "s"),
        ]);
        let mut now = testkit::snapshot([
            testkit::route("ns", "b", "b2.example.com", "s"),
            testkit::route("ns", "a", "a.example.com", "s"),
            testkit::route("ns", "c", "c.example.com", "s"),
        ]);
        assert_eq!(now.reuse_unchanged(&before), 1);
        assert!(Arc::ptr_eq(&now.routes[1], &before.routes[0]));
        assert!(!Arc::ptr_eq(&now.routes[0], &before.routes[1]));
        assert_eq!(now.routes[0].spec.host.as_deref(), Some("b2.example.com"));
        assert_eq!(now.reuse_unchanged(&before), 0, "idempotent");
    }
}
