//! The proxy-neutral plan: what the router must do, decided once, from the
//! admitted Routes and the endpoints behind them (SPEC §4–§6). Renderers
//! (HAProxy, later nginx) only format it; every decision lives here, in
//! pure functions with unit tests.
//!
//! Contract: `plan` is a pure function; the same verdicts, snapshot and
//! settings give an equal `Plan` whatever the order of the inputs (every
//! list below is sorted as documented).

pub mod backends;
pub mod endpoints;
pub mod lookup;
pub mod tls;

use std::net::IpAddr;

use crate::admit::route::Termination;
use crate::admit::Verdict;
use crate::model::{ObjectKey, Snapshot};
use crate::values::{Balance, CookieName, Duration, ForwardedPolicy, HstsPolicy, IpAllowlist, PositiveInt, RewriteTarget, SameSite};

/// Router-wide settings the plan depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanSettings {
    /// `--cookie-name`: sticky cookie name for Routes without the annotation.
    pub cookie_name: Option<CookieName>,
    /// `--service-ca-file` contents (PEM): CA for reencrypt Routes without a
    /// destination CA; enables `verifyhost <svc>.<ns>.svc`.
    pub service_ca_pem: Option<String>,
    /// `--disable-http2`: never offer or use h2.
    pub disable_http2: bool,
    /// `--allow-loopback-endpoints`: keep loopback endpoint addresses (local use, tests).
    pub allow_loopback_endpoints: bool,
    /// SHA-256 of the default certificate's leaf DER: a Route certificate
    /// equal to it is not unique (no h2).
    pub default_cert_sha256: Option<[u8; 32]>,
}

/// Everything a renderer needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// One per admitted Route, sorted by `name`.
    pub backends: Vec<Backend>,
    /// Port 80 lookup table, sorted by `key`.
    pub http_lookup: Vec<LookupEntry>,
    /// Lookup table for TLS-terminated traffic (edge, reencrypt), sorted by `key`.
    pub https_lookup: Vec<LookupEntry>,
    /// SNI → passthrough backend (exact hosts and `*.domain`), sorted by `sni`.
    pub passthrough: Vec<SniEntry>,
    /// Deepest path (in segments) of any lookup entry: the number of
    /// per-request exact lookups a renderer needs (0 when no Route has a path).
    pub max_path_depth: usize,
    /// Route certificates (crt-list entries and their files), sorted by `file`.
    pub certificates: Vec<CertEntry>,
    /// CA files for reencrypt server verification, sorted by `file`.
    pub ca_files: Vec<PemFile>,
    /// Source allowlist files, sorted by `file`.
    pub allowlist_files: Vec<AllowlistFile>,
    /// Non-fatal findings of planning (e.g. Routes with no endpoints,
    /// reencrypt without verification), `namespace/name: message`, sorted.
    pub warnings: Vec<String>,
}

/// What a lookup hit does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupAction {
    /// Send to this backend (name of a [`Backend`]).
    Backend(String),
    /// Answer 302 to `https://<host without port><path and query>`.
    RedirectToHttps,
    /// The Route exists but is not served here (insecure policy None): 503.
    Refuse,
}

/// How a lookup key matches the request path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathMatch {
    /// The host's fallback: a Route without a path or with path `/`.
    Fallback,
    /// `/foo`: matches `/foo` and anything below `/foo/`, not `/foobar`.
    /// Holds the path without a trailing slash.
    Prefix(String),
    /// `/foo/`: matches anything starting with `/foo/` (not `/foo`).
    /// Holds the path with its trailing slash.
    Under(String),
}

/// One row of a lookup table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupEntry {
    /// The exact key a renderer looks up: host key (`host` or `*.domain`)
    /// followed by the path as described by `path` (nothing for Fallback,
    /// `/foo` for Prefix, `/foo/` for Under). Unique within a table.
    pub key: String,
    /// `www.example.com` or `*.example.com`.
    pub host_key: String,
    pub path: PathMatch,
    /// Number of path segments (`/a/b` and `/a/b/` are 2, Fallback 0).
    pub depth: usize,
    pub action: LookupAction,
    pub route: ObjectKey,
}

/// SNI → passthrough backend.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SniEntry {
    /// `host` or `*.domain`.
    pub sni: String,
    pub backend: String,
    pub route: ObjectKey,
}

/// A Route's own certificate: one crt-list line and one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEntry {
    /// Path in the output tree: `certs/<ns>:<name>.pem`.
    pub file: String,
    /// File contents: key, certificate chain, CA (PEM). Secret: mode 0600.
    pub pem: String,
    /// SNI filter: the Route's host, or `*.domain` for wildcard Routes.
    pub sni: String,
    /// Offer h2 on this certificate (unique, non-wildcard, h2 not disabled).
    pub h2: bool,
    pub route: ObjectKey,
}

/// A PEM file in the output tree (not secret).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PemFile {
    /// Path in the output tree, e.g. `cas/<ns>:<name>.pem` or `cas/service-ca.pem`.
    pub file: String,
    pub pem: String,
}

/// A source allowlist file: one address or CIDR per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowlistFile {
    /// `allowlists/<ns>:<name>.txt`.
    pub file: String,
    pub list: IpAllowlist,
}

/// HTTP or TCP proxying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Http,
    Tcp,
}

/// One backend per admitted Route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `be_http:<ns>:<name>`, `be_edge_http:…`, `be_secure:…`, `be_tcp:…`.
    pub name: String,
    pub route: ObjectKey,
    /// For the comment naming the Route: host key and path.
    pub host_key: String,
    pub path: Option<String>,
    pub termination: Option<Termination>,
    pub mode: Mode,
    pub balance: Balance,
    /// Sorted by server name.
    pub servers: Vec<Server>,
    /// `check inter <d>` on every server; `Some` only with more than one server.
    pub health_check: Option<Duration>,
    pub cookie: Option<StickyCookie>,
    /// `timeout server` (HTTP backends).
    pub timeout_server: Option<Duration>,
    /// `timeout tunnel`.
    pub timeout_tunnel: Option<Duration>,
    /// Path of the allowlist file ([`AllowlistFile::file`]) when the Route restricts sources.
    pub allowlist_file: Option<String>,
    /// `Strict-Transport-Security` response header (edge/reencrypt only).
    pub hsts: Option<HstsPolicy>,
    pub rewrite: Option<PathRewrite>,
    pub rate_limit: Option<RateLimit>,
    /// `maxconn` on every server.
    pub server_maxconn: Option<PositiveInt>,
    /// How `Forwarded`/`X-Forwarded-*` are set (HTTP backends; `None` for TCP).
    pub forwarded: Option<ForwardedPolicy>,
    /// TLS towards the servers (reencrypt only).
    pub server_tls: Option<ServerTls>,
}

/// A server line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server {
    /// `pod:<pod>:<service>:<portName>:<ip>:<port>`, `ept:` prefix without a pod.
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    /// 0..=256 (0 only on HTTP backends: drained but cookie-reachable).
    pub weight: u16,
    /// Cookie value: hex md5 of the server name.
    pub cookie: String,
    /// Endpoint speaks h2c (appProtocol `h2c` / `kubernetes.io/h2c`).
    pub h2c: bool,
}

/// Sticky session cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StickyCookie {
    pub name: CookieName,
    /// `secure` + `SameSite` (edge/reencrypt whose insecure policy is not Allow).
    pub secure: bool,
    pub same_site: Option<SameSite>,
}

/// `rewrite-target`: replace the Route's path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRewrite {
    /// The Route path (prefix being replaced), e.g. `/api`.
    pub prefix: String,
    pub target: RewriteTarget,
}

/// Per-source limits (`rate-limit-connections`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub concurrent_tcp: Option<PositiveInt>,
    pub rate_tcp: Option<PositiveInt>,
    pub rate_http: Option<PositiveInt>,
}

/// TLS from the router to reencrypt servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    pub verify: ServerVerify,
    /// Offer h2 to the servers (`alpn h2,http/1.1`) unless h2 is disabled.
    pub alpn_h2: bool,
}

/// How reencrypt servers are verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerVerify {
    /// `verify required ca-file <file>` (+ `verifyhost <name>` for the service CA).
    CaFile { file: String, verify_host: Option<String> },
    /// `verify none` (warned in `Plan::warnings`).
    None,
}

/// Build the plan from admission verdicts and the snapshot they came from.
pub fn plan(verdicts: &[Verdict], snapshot: &Snapshot, settings: &PlanSettings) -> Plan {
    let _ = (verdicts, snapshot, settings);
    unimplemented!("being written")
}
