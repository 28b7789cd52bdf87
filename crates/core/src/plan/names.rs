//! Names the plan gives a Route, used by several parts of it (backends,
//! lookup tables, crt-list SNI filters), so that they agree. Depends on
//! nothing else in `plan`.

use crate::admit::route::{AdmittedRoute, Termination};
use crate::model::{ArcStr, ObjectKey};

/// `be_http:<ns>:<name>` and friends, by termination.
pub fn backend_name(key: &ObjectKey, termination: Option<Termination>) -> ArcStr {
    let prefix = match termination {
        None => "be_http",
        Some(Termination::Edge) => "be_edge_http",
        Some(Termination::Reencrypt) => "be_secure",
        Some(Termination::Passthrough) => "be_tcp",
    };
    arcstr::format!("{prefix}:{}:{}", key.namespace, key.name)
}

/// The Route's host key: `host`, or `*.<domain>` for wildcard Routes.
pub fn host_key(route: &AdmittedRoute) -> ArcStr {
    match route.host.wildcard_domain() {
        Some(domain) => arcstr::format!("*.{domain}"),
        None => route.host.host.clone(),
    }
}
