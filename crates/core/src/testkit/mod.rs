//! Builders for the tests of every crate (feature `testkit`): one way to
//! make a Route, a Service, an EndpointSlice or a snapshot, so fixtures
//! are not copied between crates.

pub mod certs;

use std::sync::Arc;

use crate::model::{Route, RouteSpec, RouteTargetReference, Snapshot};

/// A plain-HTTP Route `ns/name` for `host`, sending to Service `service`.
pub fn route(ns: &str, name: &str, host: &str, service: &str) -> Route {
    let mut route = Route::new(
        name,
        RouteSpec {
            host: Some(host.to_string()),
            to: RouteTargetReference {
                kind: Some("Service".to_string()),
                name: service.to_string(),
                weight: None,
            },
            ..RouteSpec::default()
        },
    );
    route.metadata.namespace = Some(ns.to_string());
    route
}

/// A snapshot holding `routes` and nothing else.
pub fn snapshot(routes: impl IntoIterator<Item = Route>) -> Snapshot {
    Snapshot {
        routes: routes.into_iter().map(Arc::new).collect(),
        ..Snapshot::default()
    }
}
