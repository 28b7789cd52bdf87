//! The measured fleet: one manifest file per Route (Route + Service +
//! EndpointSlice), endpoints on the echo servers' ports at 127.0.0.1, so
//! every request reaches a real backend that says which endpoint it is.
//!
//! - 1 Route in 10 (`i % 10 == 0`) is an *endpoint Route*: two endpoints,
//!   `balance roundrobin` (so a third endpoint shows up within three
//!   requests and its absence is certain after four) and a health check
//!   every 300 s (routegen checks servers of backends with more than one
//!   endpoint; a long interval keeps 1,000 checked servers from loading
//!   the machine). Endpoint changes add and remove a third endpoint.
//! - 1 Route in 10 (`i % 10 == 5`) is an edge Route with its own EC P-256
//!   certificate for its host (rotated by the certificate measurements).
//! - The rest are plain HTTP Routes with one endpoint (timeout annotation
//!   changes use `i % 10 == 3` and `7`).
//!
//! Routes 1 and 2 carry the background clients' traffic and are never
//! changed.

use std::fs;
use std::path::Path;

use routegen_bench::FleetCert;

#[derive(Clone, Debug)]
pub enum Kind {
    Plain,
    Endpoints,
    Edge(FleetCert),
}

#[derive(Clone, Debug)]
pub struct RouteSpec {
    pub index: usize,
    pub kind: Kind,
    /// Endpoint ports (all on 127.0.0.1).
    pub ports: Vec<u16>,
    /// `haproxy.router.openshift.io/timeout` in seconds.
    pub timeout: Option<u32>,
}

/// Routes of the background clients (never changed).
pub const CLIENT_ROUTES: [usize; 2] = [1, 2];

pub fn host(index: usize) -> String {
    format!("r{index}.bench.example.com")
}

pub fn file_name(index: usize) -> String {
    format!("r{index:06}.yaml")
}

impl RouteSpec {
    /// Route `index` of the fleet (`ports`: the echo servers; `cert`: its
    /// certificate when it is an edge Route).
    pub fn of_fleet(index: usize, ports: &[u16], cert: Option<FleetCert>) -> RouteSpec {
        let p = |k: usize| ports[k % ports.len()];
        let (kind, endpoints) = match (index % 10, cert) {
            (5, Some(cert)) => (Kind::Edge(cert), vec![p(index)]),
            (0, _) => (Kind::Endpoints, vec![p(index), p(index + 1)]),
            _ => (Kind::Plain, vec![p(index)]),
        };
        RouteSpec {
            index,
            kind,
            ports: endpoints,
            timeout: None,
        }
    }

    pub fn manifest(&self) -> String {
        let i = self.index;
        let ns = format!("ns{}", i % 20);
        let mut annotations = Vec::new();
        if matches!(self.kind, Kind::Endpoints) {
            annotations.push("haproxy.router.openshift.io/balance: roundrobin".to_string());
            annotations.push("router.openshift.io/haproxy.health.check.interval: 300s".into());
        }
        if let Some(t) = self.timeout {
            annotations.push(format!("haproxy.router.openshift.io/timeout: {t}s"));
        }
        let tls = match &self.kind {
            Kind::Edge(cert) => format!(
                "  tls:\n    termination: edge\n    certificate: |\n{}    key: |\n{}",
                indent(&cert.cert_pem, 6),
                indent(&cert.key_pem, 6)
            ),
            _ => String::new(),
        };
        let target = self.ports[0];
        let mut endpoints = String::new();
        for (k, port) in self.ports.iter().enumerate() {
            // One slice per endpoint port: a slice has one port list.
            endpoints.push_str(&format!(
                "---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s{i}-{k}
  namespace: {ns}
  labels: {{kubernetes.io/service-name: s{i}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints:
- addresses: [\"127.0.0.1\"]
"
            ));
        }
        format!(
            "apiVersion: route.openshift.io/v1
kind: Route
metadata:
  name: r{i}
  namespace: {ns}
  creationTimestamp: \"2026-01-01T00:00:00Z\"
  annotations: {{{}}}
spec:
  host: {}
  to: {{kind: Service, name: s{i}}}
{tls}---
apiVersion: v1
kind: Service
metadata: {{name: s{i}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80, targetPort: {target}}}]
{endpoints}",
            annotations.join(", "),
            host(i),
        )
    }

    /// Write the manifest into `dir` atomically (rename into place).
    pub fn write(&self, dir: &Path) -> Result<(), String> {
        write_atomic(dir, &file_name(self.index), &self.manifest())
    }
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

pub fn write_atomic(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

pub fn remove(dir: &Path, index: usize) -> Result<(), String> {
    fs::remove_file(dir.join(file_name(index))).map_err(|e| format!("{}: {e}", file_name(index)))
}
