//! The normalized form of a Route that passed admission: every field parsed
//! into a closed type, so later stages (plan, render) never look at raw
//! strings from the manifest again.

use crate::model::{ArcStr, ObjectKey};

use super::annotations::RouteOptions;
// Defined in `values` so that `annotations` (which `AdmittedRoute` holds)
// can use it without importing this module back.
pub use crate::values::Termination;
use crate::values::{HeaderActions, Weight};

/// What port 80 does for a TLS Route (`insecureEdgeTerminationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InsecurePolicy {
    /// No plain-HTTP service (also the legacy `Disable` and the empty string).
    #[default]
    None,
    /// Serve the Route on port 80 too.
    Allow,
    /// Answer port 80 with a redirect to https.
    Redirect,
}

/// `spec.port.targetPort`: an endpoint port name or a pod port number.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetPort {
    Number(i32),
    Name(String),
}

/// One Service behind a Route with its weight.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BackendRef {
    pub service: ArcStr,
    pub weight: Weight,
}

/// TLS settings of a Route after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTls {
    pub termination: Termination,
    pub insecure_policy: InsecurePolicy,
    /// The Route's own serving certificate, if it brings one (edge/reencrypt).
    pub serving: Option<ServingCert>,
    /// CA the router verifies reencrypt servers against, normalized PEM.
    pub destination_ca_pem: Option<String>,
}

/// A checked serving certificate: key matches leaf, chain verifies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServingCert {
    /// Private key, normalized PEM (one block).
    pub key_pem: std::sync::Arc<str>,
    /// Leaf first, then any intermediates, normalized PEM.
    pub chain_pem: std::sync::Arc<str>,
    /// `spec.tls.caCertificate`, normalized PEM, if given.
    pub ca_pem: Option<std::sync::Arc<str>>,
    /// SHA-256 of the leaf's DER: equal certificates share ALPN decisions.
    pub leaf_sha256: [u8; 32],
    /// Leaf `notAfter`, seconds since the Unix epoch (for expiry metrics).
    pub not_after_unix: i64,
    /// The leaf is a wildcard certificate: a DNS SAN, or without DNS SANs a
    /// subject CN, starts with `*`. Such a certificate never offers h2
    /// (it would invite connection coalescing); decided here, where the
    /// leaf is parsed, so that planning never parses certificates.
    pub wildcard_leaf: bool,
}

/// Host and path the Route answers for after host resolution.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RouteHost {
    /// Lower-case DNS-1123 subdomain. Shared ([`ArcStr`]) by the Route's
    /// claim, validated spec, admitted form, verdict and plan.
    pub host: ArcStr,
    /// `wildcardPolicy: Subdomain`: serves every host of the parent domain.
    pub wildcard: bool,
}

impl RouteHost {
    /// For a wildcard Route, the domain it covers (the host minus its first
    /// label); `None` for plain Routes or single-label hosts.
    pub fn wildcard_domain(&self) -> Option<&str> {
        if !self.wildcard {
            return None;
        }
        self.host.split_once('.').map(|(_, domain)| domain)
    }
}

/// A Route that passed every admission step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmittedRoute {
    pub key: ObjectKey,
    pub host: RouteHost,
    /// Path prefix starting with `/`, or `None` for the host's fallback.
    pub path: Option<ArcStr>,
    /// `spec.to` first, then `spec.alternateBackends` in order.
    pub backends: Vec<BackendRef>,
    pub target_port: Option<TargetPort>,
    pub tls: Option<RouteTls>,
    /// Shared: most Routes have the default options, which are one
    /// allocation for all of them ([`RouteOptions::shared`]).
    pub options: std::sync::Arc<RouteOptions>,
    /// `spec.httpHeaders.actions` (empty for passthrough Routes).
    pub headers: HeaderActions,
}
