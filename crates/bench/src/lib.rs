//! A deterministic fleet of Routes for benchmarks (issue 7): N Routes with
//! their Services and EndpointSlices, as one multi-document YAML stream.
//!
//! The mix, exact for any N (counts are rounded down, edge takes the rest):
//! - terminations: 60% edge, 15% plain HTTP, 15% reencrypt, 10% passthrough;
//! - 20% of the Routes are path Routes, in groups of four sharing one host
//!   (`/`, `/api`, `/api/v2`, `/static`), one namespace and one termination
//!   (never passthrough, which cannot have a path);
//! - 5% are weighted: an alternate backend (weight 20..=50), every fourth of
//!   them a second one;
//! - every Service has 3 endpoints (one EndpointSlice); addresses are in
//!   127.0.0.0/8 so a HAProxy started on the rendered tree never sends a
//!   health check off the machine (render with loopback endpoints allowed);
//! - one certificate per 10 TLS Routes (edge, reencrypt, passthrough), each
//!   unique and real: its own key (3 in 4 EC P-256, 1 in 4 RSA-2048),
//!   self-signed for the Route's host, carried by a host-only edge or
//!   reencrypt Route; half the reencrypt Routes carry a destination CA (one
//!   shared "service CA" certificate);
//! - insecure policies, a `timeout` annotation on 10% of the Routes and the
//!   namespaces (one per 50 Routes) come from a small seeded PRNG.
//!
//! Everything but the key material is a function of (N, seed). Keys and
//! signatures come from OpenSSL's random generator, so certificates are
//! generated once per (seed, N) and kept in a cache directory
//! ([`FleetCerts::load_or_generate`]); with the cache in place the YAML is
//! byte-identical across runs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder};

/// Base domain of every generated host.
pub const DOMAIN: &str = "apps.bench.example.com";
/// Routes per namespace (on average).
pub const ROUTES_PER_NAMESPACE: usize = 50;
/// Endpoints per Service.
pub const ENDPOINTS_PER_SERVICE: usize = 3;
/// Paths of a path group, in order.
pub const GROUP_PATHS: [&str; 4] = ["/", "/api", "/api/v2", "/static"];

/// splitmix64: a tiny, fast, well-mixed PRNG; plenty for shuffling a fleet.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `percent`/100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// How a Route's traffic is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Plain,
    Edge,
    Reencrypt,
    Passthrough,
}

impl Kind {
    /// `spec.tls.termination`, `None` for plain HTTP.
    pub fn termination(self) -> Option<&'static str> {
        match self {
            Kind::Plain => None,
            Kind::Edge => Some("edge"),
            Kind::Reencrypt => Some("reencrypt"),
            Kind::Passthrough => Some("passthrough"),
        }
    }
}

/// One generated Route, before it is written out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetRoute {
    pub namespace: String,
    pub name: String,
    pub host: String,
    pub path: Option<&'static str>,
    pub kind: Kind,
    /// `spec.tls.insecureEdgeTerminationPolicy` (TLS Routes only).
    pub insecure_policy: Option<&'static str>,
    /// `spec.to` Service (weight 100 when weighted).
    pub service: String,
    /// Alternate backends: Service name and weight.
    pub alternates: Vec<(String, u32)>,
    /// Index into [`FleetCerts::certs`] of the Route's own certificate.
    pub cert: Option<usize>,
    /// Carries the shared destination CA (reencrypt only).
    pub destination_ca: bool,
    /// `haproxy.router.openshift.io/timeout` annotation.
    pub timeout: Option<&'static str>,
    /// Seconds after 2026-01-01T00:00:00Z of `creationTimestamp`.
    pub created: u64,
    /// Index of the first endpoint address of the Route's first Service;
    /// each Service takes [`ENDPOINTS_PER_SERVICE`] consecutive addresses.
    pub first_endpoint: u32,
}

impl FleetRoute {
    /// The Services of the Route: `to` first, then the alternates.
    pub fn services(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.service.as_str())
            .chain(self.alternates.iter().map(|(s, _)| s.as_str()))
    }
}

/// The layout of a fleet: every Route, in output order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fleet {
    pub seed: u64,
    pub routes: Vec<FleetRoute>,
    /// Host names that get a certificate, in certificate index order.
    pub cert_hosts: Vec<String>,
}

/// Counts of the mix for `n` Routes (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mix {
    pub edge: usize,
    pub plain: usize,
    pub reencrypt: usize,
    pub passthrough: usize,
    pub path_routes: usize,
    pub weighted: usize,
    pub certificates: usize,
}

impl Mix {
    pub fn for_routes(n: usize) -> Mix {
        let plain = n * 15 / 100;
        let reencrypt = n * 15 / 100;
        let passthrough = n / 10;
        let edge = n - plain - reencrypt - passthrough;
        Mix {
            edge,
            plain,
            reencrypt,
            passthrough,
            path_routes: n / 5,
            weighted: n / 20,
            certificates: (edge + reencrypt + passthrough) / 10,
        }
    }
}

/// An IPv4 address in 127.1.0.1 .. 127.250.249.250 (never 127.0.0.0/16),
/// from an endpoint index.
pub fn endpoint_address(index: u32) -> [u8; 4] {
    let i = index % (250 * 250 * 250);
    [
        127,
        (1 + i / 62_500) as u8,
        ((i / 250) % 250) as u8,
        (i % 250 + 1) as u8,
    ]
}

/// Take `k` of `n` items, evenly spread (item `i` is taken when
/// `floor((i+1)k/n) > floor(ik/n)`): exact counts without randomness.
fn spread(i: usize, k: usize, n: usize) -> bool {
    n > 0 && (i + 1) * k / n > i * k / n
}

impl Fleet {
    /// Lay out `n` Routes from `seed` (no certificates are made here).
    pub fn layout(n: usize, seed: u64) -> Fleet {
        let mut rng = Rng::new(seed);
        let mix = Mix::for_routes(n);
        // Path groups first: take their terminations out of the budget.
        let mut left = [
            (Kind::Edge, mix.edge),
            (Kind::Plain, mix.plain),
            (Kind::Reencrypt, mix.reencrypt),
        ];
        let mut units: Vec<(Kind, usize)> = Vec::new();
        let mut path_left = mix.path_routes.min(n - mix.passthrough);
        while path_left > 0 {
            let size = path_left.min(GROUP_PATHS.len());
            let total: usize = left.iter().map(|(_, c)| *c).filter(|c| *c >= size).sum();
            if total == 0 {
                break;
            }
            let mut pick = rng.below(total as u64) as usize;
            let slot = left
                .iter()
                .position(|(_, c)| {
                    if *c < size {
                        return false;
                    }
                    if pick < *c {
                        return true;
                    }
                    pick -= *c;
                    false
                })
                .unwrap_or(0);
            left[slot].1 -= size;
            units.push((left[slot].0, size));
            path_left -= size;
        }
        for (kind, count) in left
            .iter()
            .copied()
            .chain([(Kind::Passthrough, mix.passthrough)])
        {
            units.extend(std::iter::repeat_n((kind, 0), count));
        }
        rng.shuffle(&mut units);

        let namespaces = (n / ROUTES_PER_NAMESPACE).max(1) as u64;
        let mut routes = Vec::with_capacity(n);
        let mut endpoint = 0u32;
        for (unit, (kind, group)) in units.into_iter().enumerate() {
            let namespace = format!("ns-{:04}", rng.below(namespaces));
            let paths: Vec<Option<&'static str>> = if group == 0 {
                vec![None]
            } else {
                GROUP_PATHS[..group].iter().copied().map(Some).collect()
            };
            for path in paths {
                let i = routes.len();
                let name = format!("r-{i:06}");
                let host = match path {
                    None => format!("{name}.{namespace}.{DOMAIN}"),
                    Some(_) => format!("shared-{unit:06}.{namespace}.{DOMAIN}"),
                };
                let insecure_policy = match kind {
                    Kind::Plain => None,
                    Kind::Edge => Some(match rng.below(10) {
                        0..=6 => "Redirect",
                        7 | 8 => "Allow",
                        _ => "None",
                    }),
                    Kind::Reencrypt => Some(if rng.percent(80) { "Redirect" } else { "None" }),
                    Kind::Passthrough => Some(if rng.percent(50) { "Redirect" } else { "None" }),
                };
                let timeout = rng.percent(10).then_some("30s");
                routes.push(FleetRoute {
                    namespace: namespace.clone(),
                    service: format!("svc-{i:06}"),
                    name,
                    host,
                    path,
                    kind,
                    insecure_policy,
                    alternates: Vec::new(),
                    cert: None,
                    destination_ca: false,
                    timeout,
                    created: i as u64,
                    first_endpoint: 0,
                });
            }
        }

        // Weighted Routes, evenly spread; endpoints in order.
        let mut weighted_seen = 0;
        for i in 0..routes.len() {
            if spread(i, mix.weighted, routes.len()) {
                let route = &mut routes[i];
                let weight = 20 + rng.below(31) as u32;
                route
                    .alternates
                    .push((format!("{}-b", route.service), weight));
                if weighted_seen % 4 == 3 {
                    route.alternates.push((format!("{}-c", route.service), 10));
                }
                weighted_seen += 1;
            }
            routes[i].first_endpoint = endpoint;
            endpoint += (ENDPOINTS_PER_SERVICE * routes[i].services().count()) as u32;
        }

        // Certificates on host-only edge/reencrypt Routes, evenly spread.
        let eligible: Vec<usize> = (0..routes.len())
            .filter(|&i| {
                routes[i].path.is_none() && matches!(routes[i].kind, Kind::Edge | Kind::Reencrypt)
            })
            .collect();
        let wanted = mix.certificates.min(eligible.len());
        let mut cert_hosts = Vec::with_capacity(wanted);
        for (k, &i) in eligible.iter().enumerate() {
            if spread(k, wanted, eligible.len()) {
                routes[i].cert = Some(cert_hosts.len());
                cert_hosts.push(routes[i].host.clone());
            }
        }
        for (k, route) in routes
            .iter_mut()
            .filter(|r| r.kind == Kind::Reencrypt)
            .enumerate()
        {
            route.destination_ca = k % 2 == 0;
        }
        Fleet {
            seed,
            routes,
            cert_hosts,
        }
    }

    /// The whole fleet as one YAML stream: per Route, the Route, then each
    /// of its Services and their EndpointSlices.
    pub fn to_yaml(&self, certs: &FleetCerts) -> String {
        let mut out = String::with_capacity(self.routes.len() * 1600);
        for route in &self.routes {
            write_route(&mut out, route, certs);
            let mut endpoint = route.first_endpoint;
            for service in route.services() {
                write_service(&mut out, &route.namespace, service, endpoint);
                endpoint += ENDPOINTS_PER_SERVICE as u32;
            }
        }
        out
    }
}

/// Append `text` as a YAML literal block indented by `indent` spaces.
fn block(out: &mut String, text: &str, indent: usize) {
    for line in text.lines() {
        for _ in 0..indent {
            out.push(' ');
        }
        out.push_str(line);
        out.push('\n');
    }
}

fn write_route(out: &mut String, r: &FleetRoute, certs: &FleetCerts) {
    let created = r.created;
    let _ = write!(
        out,
        "---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: {}\n  namespace: {}\n  \
         creationTimestamp: \"2026-01-{:02}T{:02}:{:02}:{:02}Z\"\n  labels:\n    app: {}\n",
        r.name,
        r.namespace,
        1 + (created / 86_400) % 28,
        (created / 3600) % 24,
        (created / 60) % 60,
        created % 60,
        r.service,
    );
    if let Some(timeout) = r.timeout {
        let _ = writeln!(
            out,
            "  annotations:\n    haproxy.router.openshift.io/timeout: {timeout}"
        );
    }
    let _ = writeln!(out, "spec:\n  host: {}", r.host);
    if let Some(path) = r.path {
        let _ = writeln!(out, "  path: {path}");
    }
    let _ = writeln!(
        out,
        "  to:\n    kind: Service\n    name: {}\n    weight: 100",
        r.service
    );
    if !r.alternates.is_empty() {
        out.push_str("  alternateBackends:\n");
        for (service, weight) in &r.alternates {
            let _ = writeln!(
                out,
                "  - kind: Service\n    name: {service}\n    weight: {weight}"
            );
        }
    }
    out.push_str("  port:\n    targetPort: http\n");
    if let Some(termination) = r.kind.termination() {
        let _ = writeln!(out, "  tls:\n    termination: {termination}");
        if let Some(policy) = r.insecure_policy {
            let _ = writeln!(out, "    insecureEdgeTerminationPolicy: {policy}");
        }
        if let Some(cert) = r.cert.and_then(|i| certs.certs.get(i)) {
            out.push_str("    certificate: |\n");
            block(out, &cert.cert_pem, 6);
            out.push_str("    key: |\n");
            block(out, &cert.key_pem, 6);
        }
        if r.destination_ca {
            out.push_str("    destinationCACertificate: |\n");
            block(out, &certs.destination_ca_pem, 6);
        }
    }
}

fn write_service(out: &mut String, namespace: &str, service: &str, first_endpoint: u32) {
    let _ = write!(
        out,
        "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: {service}\n  namespace: {namespace}\n\
         spec:\n  selector:\n    app: {service}\n  ports:\n  - name: http\n    port: 80\n    \
         protocol: TCP\n    targetPort: 8080\n\
         ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-abcde\n  \
         namespace: {namespace}\n  labels:\n    kubernetes.io/service-name: {service}\n\
         addressType: IPv4\nports:\n- name: http\n  port: 8080\n  protocol: TCP\nendpoints:\n"
    );
    for k in 0..ENDPOINTS_PER_SERVICE {
        let [a, b, c, d] = endpoint_address(first_endpoint + k as u32);
        let _ = write!(
            out,
            "- addresses:\n  - {a}.{b}.{c}.{d}\n  conditions:\n    ready: true\n  targetRef:\n    \
             kind: Pod\n    name: {service}-{k}\n    namespace: {namespace}\n"
        );
    }
}

/// One Route certificate: PEM key (PKCS#8) and self-signed certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetCert {
    pub host: String,
    pub key_pem: String,
    pub cert_pem: String,
}

impl FleetCert {
    /// A fresh certificate for `host` (its own key: RSA-2048 or EC P-256),
    /// self-signed, valid 2025–2045.
    pub fn generate(host: &str, rsa: bool) -> Result<FleetCert, CertError> {
        make_leaf(host, rsa)
    }
}

/// The certificates of a fleet and the shared destination CA.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetCerts {
    pub certs: Vec<FleetCert>,
    pub destination_ca_pem: String,
}

/// Why certificates could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Validity of generated certificates: 2025-01-01 .. 2045-01-01 (fixed, so
/// the only randomness is OpenSSL's).
const NOT_BEFORE: i64 = 1_735_689_600;
const NOT_AFTER: i64 = 2_366_841_600;
const DESTINATION_CA_MARK: &str = "# routegen-bench destination CA";
const HOST_MARK: &str = "# routegen-bench host ";

impl FleetCerts {
    /// The certificates for `fleet`, from `dir/fleet-s<seed>-n<routes>.pem`
    /// when it holds exactly the fleet's hosts, else generated (in
    /// parallel) and stored there.
    pub fn load_or_generate(fleet: &Fleet, dir: &Path) -> Result<FleetCerts, CertError> {
        let path = cache_file(dir, fleet.seed, fleet.routes.len());
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some(certs) = parse_cache(&text) {
                let hosts: Vec<&str> = certs.certs.iter().map(|c| c.host.as_str()).collect();
                if hosts
                    == fleet
                        .cert_hosts
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                {
                    return Ok(certs);
                }
            }
        }
        let certs = FleetCerts::generate(&fleet.cert_hosts)?;
        let io = |source| CertError::Io {
            path: path.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, certs.to_cache()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)?;
        Ok(certs)
    }

    /// Fresh certificates for `hosts`: 1 in 4 RSA-2048, the rest EC P-256.
    pub fn generate(hosts: &[String]) -> Result<FleetCerts, CertError> {
        use rayon::prelude::*;
        let certs = hosts
            .par_iter()
            .enumerate()
            .map(|(i, host)| make_leaf(host, i % 4 == 3))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FleetCerts {
            certs,
            destination_ca_pem: make_ca("routegen bench service CA")?,
        })
    }

    fn to_cache(&self) -> String {
        let mut out = format!("{DESTINATION_CA_MARK}\n{}", self.destination_ca_pem);
        for cert in &self.certs {
            let _ = write!(
                out,
                "{HOST_MARK}{}\n{}{}",
                cert.host, cert.key_pem, cert.cert_pem
            );
        }
        out
    }
}

fn cache_file(dir: &Path, seed: u64, routes: usize) -> PathBuf {
    dir.join(format!("fleet-s{seed}-n{routes}.pem"))
}

fn parse_cache(text: &str) -> Option<FleetCerts> {
    let rest = text.strip_prefix(DESTINATION_CA_MARK)?.strip_prefix('\n')?;
    let mut parts = rest.split(HOST_MARK);
    let destination_ca_pem = parts.next()?.to_string();
    let mut certs = Vec::new();
    for part in parts {
        let (host, pems) = part.split_once('\n')?;
        let split = pems.find("-----BEGIN CERTIFICATE-----")?;
        let (key_pem, cert_pem) = pems.split_at(split);
        if !key_pem.contains("PRIVATE KEY-----") || !cert_pem.trim_end().ends_with("-----") {
            return None;
        }
        certs.push(FleetCert {
            host: host.to_string(),
            key_pem: key_pem.to_string(),
            cert_pem: cert_pem.to_string(),
        });
    }
    Some(FleetCerts {
        certs,
        destination_ca_pem,
    })
}

fn random_serial() -> Result<Asn1Integer, openssl::error::ErrorStack> {
    let mut serial = BigNum::new()?;
    serial.rand(120, openssl::bn::MsbOption::MAYBE_ZERO, false)?;
    serial.to_asn1_integer()
}

fn builder(cn: &str, key: &PKey<Private>) -> Result<X509Builder, openssl::error::ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)?;
    let name = name.build();
    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    let serial = random_serial()?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(key)?;
    let not_before = Asn1Time::from_unix(NOT_BEFORE)?;
    let not_after = Asn1Time::from_unix(NOT_AFTER)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    Ok(b)
}

fn make_leaf(host: &str, rsa: bool) -> Result<FleetCert, CertError> {
    let key = if rsa {
        PKey::from_rsa(Rsa::generate(2048)?)?
    } else {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        PKey::from_ec_key(EcKey::generate(&group)?)?
    };
    let mut b = builder(host, &key)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let san = SubjectAlternativeName::new()
        .dns(host)
        .build(&b.x509v3_context(None, None))?;
    b.append_extension(san)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert = b.build();
    Ok(FleetCert {
        host: host.to_string(),
        key_pem: String::from_utf8_lossy(&key.private_key_to_pem_pkcs8()?).into_owned(),
        cert_pem: String::from_utf8_lossy(&cert.to_pem()?).into_owned(),
    })
}

fn make_ca(cn: &str) -> Result<String, CertError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;
    let mut b = builder(cn, &key)?;
    b.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok(String::from_utf8_lossy(&b.build().to_pem()?).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    #[test]
    fn fleet_mix_is_exact_and_deterministic() {
        let n = 1000;
        let fleet = Fleet::layout(n, 7);
        assert_eq!(fleet, Fleet::layout(n, 7));
        assert_ne!(fleet, Fleet::layout(n, 8));
        assert_eq!(fleet.routes.len(), n);
        let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
        for r in &fleet.routes {
            *kinds.entry(r.kind).or_default() += 1;
        }
        assert_eq!(kinds[&Kind::Edge], 600);
        assert_eq!(kinds[&Kind::Plain], 150);
        assert_eq!(kinds[&Kind::Reencrypt], 150);
        assert_eq!(kinds[&Kind::Passthrough], 100);
        let paths = fleet.routes.iter().filter(|r| r.path.is_some()).count();
        assert_eq!(paths, 200);
        assert!(fleet
            .routes
            .iter()
            .all(|r| r.path.is_none() || r.kind != Kind::Passthrough));
        // Path Routes share hosts, four to a host, within one namespace.
        let mut by_host: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for r in fleet.routes.iter().filter(|r| r.path.is_some()) {
            by_host.entry(&r.host).or_default().insert(&r.namespace);
        }
        assert_eq!(by_host.len(), 50);
        assert!(by_host.values().all(|ns| ns.len() == 1));
        let weighted = fleet
            .routes
            .iter()
            .filter(|r| !r.alternates.is_empty())
            .count();
        assert_eq!(weighted, 50);
        assert_eq!(fleet.cert_hosts.len(), 85);
        let unique: BTreeSet<_> = fleet.cert_hosts.iter().collect();
        assert_eq!(unique.len(), 85);
        // Endpoint addresses are unique and loopback.
        let last = fleet.routes.last().unwrap();
        let total = last.first_endpoint as usize + ENDPOINTS_PER_SERVICE * last.services().count();
        let addrs: BTreeSet<_> = (0..total as u32).map(endpoint_address).collect();
        assert_eq!(addrs.len(), total);
        assert!(addrs.iter().all(|a| a[0] == 127 && a[1] >= 1 && a[3] >= 1));
    }

    #[test]
    fn fleet_yaml_loads_and_is_admitted() {
        let fleet = Fleet::layout(60, 3);
        let dir = tempfile::tempdir().unwrap();
        let certs = FleetCerts::load_or_generate(&fleet, dir.path()).unwrap();
        assert_eq!(certs.certs.len(), fleet.cert_hosts.len());
        // The cache gives the same certificates, hence the same YAML.
        let again = FleetCerts::load_or_generate(&fleet, dir.path()).unwrap();
        assert_eq!(certs, again);
        let yaml = fleet.to_yaml(&certs);
        assert_eq!(yaml, fleet.to_yaml(&again));

        let loaded =
            routegen_host::source::files::load_str("fleet.yaml", &yaml, "default").unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.snapshot.routes.len(), 60);
        let verdicts = routegen_core::admit::admit_at(
            &loaded.snapshot,
            &routegen_core::RouterSettings::default(),
            routegen_host::clock::now_unix(),
        );
        for v in &verdicts {
            assert!(v.is_admitted(), "{}: {:?}", v.key, v.rejection());
            assert!(v.warnings.is_empty(), "{}: {:?}", v.key, v.warnings);
        }
    }
}
