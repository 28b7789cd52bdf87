//! Typed Kubernetes objects routegen reads: Routes (our own CustomResource
//! type), Services and EndpointSlices (k8s-openapi), and the snapshot that
//! holds one consistent set of them.

pub mod compact;
pub mod route;
pub mod snapshot;

pub use compact::{compact_endpoint_slice, compact_service};
pub use route::{Route, RouteSpec, RouteStatus, RouteTargetReference, TlsConfig};
pub use snapshot::{routes_equal, same_arcs, ObjectKey, ReuseMemo, Snapshot};
