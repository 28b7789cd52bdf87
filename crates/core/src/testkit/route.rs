//! [`RouteBuilder`]: every test's Route.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::certs::Issued;
use crate::model::route::RoutePort;
use crate::model::{Route, RouteSpec, RouteTargetReference, TlsConfig};

/// A [`Route`] under construction.
///
/// Defaults ([`RouteBuilder::new`]): `metadata.namespace` and
/// `metadata.name` only (no uid, labels, annotations, creation time or
/// resourceVersion); an empty spec: no host, subdomain or path, `spec.to`
/// empty (no kind, name `""`, no weight; as a manifest without `to`
/// decodes), no alternate backends, no `port`, no `tls`, no wildcard
/// policy; no status. Each method sets one thing and says what it leaves
/// alone.
///
/// ```text
/// let route = RouteBuilder::new("shop", "web")
///     .host("www.example.com")
///     .path("/api")
///     .to("api", Some(3))
///     .alt("canary", Some(1))
///     .tls("edge")
///     .insecure("Redirect")
///     .build();
/// ```
#[derive(Clone, Debug)]
pub struct RouteBuilder {
    route: Route,
}

impl RouteBuilder {
    /// Route `ns/name`; everything else as in the type's documentation.
    pub fn new(ns: &str, name: &str) -> Self {
        let mut route = Route::new(name, RouteSpec::default());
        route.metadata.namespace = Some(ns.to_string());
        RouteBuilder { route }
    }

    /// `spec.host`.
    pub fn host(mut self, host: &str) -> Self {
        self.route.spec.host = Some(host.to_string());
        self
    }

    /// `spec.subdomain`.
    pub fn subdomain(mut self, subdomain: &str) -> Self {
        self.route.spec.subdomain = Some(subdomain.to_string());
        self
    }

    /// `spec.path`.
    pub fn path(mut self, path: &str) -> Self {
        self.route.spec.path = Some(path.to_string());
        self
    }

    /// `spec.to`: kind `Service`, `service`, and `weight` (`None` leaves it
    /// unset: the API default is 100).
    pub fn to(mut self, service: &str, weight: Option<i64>) -> Self {
        self.route.spec.to = backend(service, weight);
        self
    }

    /// One more `spec.alternateBackends` entry: kind `Service`, `service`,
    /// `weight` (`None` leaves it unset).
    pub fn alt(mut self, service: &str, weight: Option<i64>) -> Self {
        self.route
            .spec
            .alternate_backends
            .get_or_insert_with(Vec::new)
            .push(backend(service, weight));
        self
    }

    /// `spec.port.targetPort`, a port name (e.g. `http`).
    pub fn target_port(mut self, port: &str) -> Self {
        self.route.spec.port = Some(RoutePort {
            target_port: IntOrString::String(port.to_string()),
        });
        self
    }

    /// `spec.wildcardPolicy: Subdomain` (admitted only with wildcard Routes
    /// allowed).
    pub fn wildcard(self) -> Self {
        self.wildcard_policy("Subdomain")
    }

    /// `spec.wildcardPolicy` as given (`None`, `Subdomain`, or anything a
    /// test wants refused).
    pub fn wildcard_policy(mut self, policy: &str) -> Self {
        self.route.spec.wildcard_policy = Some(policy.to_string());
        self
    }

    /// `spec.tls.termination` (`edge`, `reencrypt`, `passthrough`, …); the
    /// rest of `spec.tls` is kept.
    pub fn tls(mut self, termination: &str) -> Self {
        self.tls_mut().termination = termination.to_string();
        self
    }

    /// `spec.tls.insecureEdgeTerminationPolicy` (`Allow`, `Redirect`,
    /// `None`, …); the rest of `spec.tls` is kept (a `spec.tls` without a
    /// termination is created when there is none).
    pub fn insecure(mut self, policy: &str) -> Self {
        self.tls_mut().insecure_edge_termination_policy = Some(policy.to_string());
        self
    }

    /// `spec.tls.certificate` and `key` from `leaf` (PKCS#8 key), and
    /// `caCertificate` from `ca` when given; the rest of `spec.tls` is kept.
    pub fn cert(mut self, leaf: &Issued, ca: Option<&Issued>) -> Self {
        let tls = self.tls_mut();
        tls.certificate = Some(leaf.cert_pem().into());
        tls.key = Some(leaf.key_pem().into());
        if let Some(ca) = ca {
            tls.ca_certificate = Some(ca.cert_pem().into());
        }
        self
    }

    /// `spec.tls.destinationCACertificate` from `ca`; the rest of
    /// `spec.tls` is kept.
    pub fn dest_ca(mut self, ca: &Issued) -> Self {
        self.tls_mut().destination_ca_certificate = Some(ca.cert_pem().into());
        self
    }

    /// One `metadata.annotations` entry (replacing one with the same key).
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.route
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
        self
    }

    /// One `metadata.labels` entry (replacing one with the same key).
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.route
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.to_string(), value.to_string());
        self
    }

    /// `metadata.creationTimestamp`, RFC 3339 to the second (e.g.
    /// `2026-01-01T00:00:00Z`; written back the same way).
    pub fn created(mut self, timestamp: &str) -> Self {
        self.route.metadata.creation_timestamp = Some(super::time(timestamp));
        self
    }

    /// `metadata.uid`.
    pub fn uid(mut self, uid: &str) -> Self {
        self.route.metadata.uid = Some(uid.to_string());
        self
    }

    /// `metadata.resourceVersion`.
    pub fn resource_version(mut self, version: &str) -> Self {
        self.route.metadata.resource_version = Some(version.to_string());
        self
    }

    /// Replace the whole spec (for tests that build specs field by field).
    pub fn spec(mut self, spec: RouteSpec) -> Self {
        self.route.spec = spec;
        self
    }

    /// Change the spec in place, for what no other method sets (e.g. a
    /// `spec.to` without a kind).
    pub fn with_spec(mut self, change: impl FnOnce(&mut RouteSpec)) -> Self {
        change(&mut self.route.spec);
        self
    }

    super::manifest_methods!(route: Route, "Route");

    fn tls_mut(&mut self) -> &mut TlsConfig {
        self.route.spec.tls.get_or_insert_with(TlsConfig::default)
    }
}

fn backend(service: &str, weight: Option<i64>) -> RouteTargetReference {
    RouteTargetReference {
        kind: Some("Service".to_string()),
        name: service.to_string(),
        weight,
    }
}
