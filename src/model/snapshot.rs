//! One consistent set of objects: the input of admission and planning.

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Service};
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
/// that did not change, which is what lets [`crate::engine::Engine`] reuse
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
}

/// The `namespace/name` of any object with metadata.
pub fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
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
