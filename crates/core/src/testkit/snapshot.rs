//! [`SnapshotBuilder`]: a consistent set of built objects.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;

use crate::model::{EndpointSlice, Route, Service, Snapshot};

/// A [`Snapshot`] under construction.
///
/// Defaults ([`SnapshotBuilder::new`]): empty (no Routes, undecodable
/// Routes, Services, EndpointSlices or Namespaces). Objects keep the
/// order they are added in, each in its own `Arc`.
#[derive(Clone, Debug, Default)]
pub struct SnapshotBuilder {
    snapshot: Snapshot,
}

impl SnapshotBuilder {
    /// An empty snapshot.
    pub fn new() -> Self {
        SnapshotBuilder::default()
    }

    /// One more Route.
    pub fn route(mut self, route: Route) -> Self {
        self.snapshot.routes.push(Arc::new(route));
        self
    }

    /// More Routes, in order.
    pub fn routes(mut self, routes: impl IntoIterator<Item = Route>) -> Self {
        self.snapshot
            .routes
            .extend(routes.into_iter().map(Arc::new));
        self
    }

    /// One more Service (k8s-openapi's, as [`ServiceBuilder`](super::ServiceBuilder)
    /// builds it, or the model's).
    pub fn service(mut self, service: impl Into<Service>) -> Self {
        self.snapshot.services.push(Arc::new(service.into()));
        self
    }

    /// One more EndpointSlice (k8s-openapi's or the model's).
    pub fn endpoint_slice(mut self, slice: impl Into<EndpointSlice>) -> Self {
        self.snapshot.endpoint_slices.push(Arc::new(slice.into()));
        self
    }

    /// One more Namespace.
    pub fn namespace(mut self, namespace: Namespace) -> Self {
        self.snapshot.namespaces.push(Arc::new(namespace));
        self
    }

    /// The snapshot.
    pub fn build(self) -> Snapshot {
        self.snapshot
    }
}
