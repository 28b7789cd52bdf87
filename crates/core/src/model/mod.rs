//! Typed Kubernetes objects routegen reads: Routes (our own CustomResource
//! type), Services and EndpointSlices (compact types of our own, decoded
//! from k8s-openapi's), and the snapshot that holds one consistent set of
//! them.

pub mod compact;
pub mod route;
pub mod snapshot;

pub use compact::{EndpointSlice, Service, SliceEndpoint, SlicePort, TargetRef};
pub use route::{Route, RouteSpec, RouteStatus, RouteTargetReference, TlsConfig};
pub use snapshot::{routes_equal, same_arcs, ArcStr, ObjectKey, ReuseMemo, Snapshot};
