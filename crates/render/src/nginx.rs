//! The nginx renderer: [`render_nginx`] turns the same [`Plan`] the HAProxy
//! renderer uses into an nginx tree (SPEC §12): `nginx.conf`, the
//! `proxy-headers/*.conf` snippets it includes, certificate, CA and
//! allowlist files. It makes no routing decision: where nginx needs a fact
//! the plan states in HAProxy-neutral form, [`model`] derives it from plan
//! data. What nginx cannot express is reported as a warning naming the
//! Route (see `docs/nginx.md` for the table).
//!
//! # Running the tree
//! `nginx -p <run dir>/ -c <tree>/nginx.conf`: certificate, CA and include
//! paths are relative to the configuration file's directory (nginx's
//! "conf prefix"), the pid file and temporary directories to the `-p`
//! prefix, and the internal listeners are Unix sockets in the run
//! directory (`--run-dir`). So one tree is validated where it was staged
//! (`nginx -t -p <scratch>/ -c <staged>/nginx.conf`) and then swapped in.
//! Nothing needs root: no `user` directive, `error_log stderr`.
//!
//! # Request routing
//! - Port 80: one `server` per host key of the plan's port-80 table
//!   (`server_name host` or `*.domain`), locations laid out by
//!   [`model::host_servers`]; a `default_server` answers 503.
//! - Port 443 is a `stream` server that reads the SNI (`ssl_preread`) and
//!   sends the connection, with a PROXY protocol header so the client
//!   address survives, to one of three Unix sockets: the passthrough hop
//!   (passthrough SNIs), the terminating listener with `http2` (SNIs whose
//!   certificate offers h2), or the terminating listener without it
//!   (everything else, no SNI included).
//! - nginx 1.22 enables HTTP/2 per listening socket (`listen ... http2`),
//!   for every server on it, not per certificate. Two terminating sockets
//!   selected by SNI give HAProxy's per-certificate ALPN: every TLS server
//!   listens on both, and only connections whose SNI names a certificate
//!   that may offer h2 arrive on the `http2` one.
//! - The passthrough hop accepts the PROXY header (so `$remote_addr` is the
//!   client for `hash $remote_addr` and allowlists), reads the SNI again
//!   and proxies the bytes untouched to the Route's servers.
//! - Wildcard Routes: nginx's `*.domain` also matches several labels;
//!   OpenShift matches exactly one, so a wildcard server answers 503 unless
//!   the host is one label under its domain (`$rg_host_tail`). The SNI maps
//!   do the same with a map on the SNI's domain.

mod headers;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::Serialize;

use crate::Files;
use routegen_core::admit::route::Termination;
use routegen_core::plan::{Backend, LookupAction, LookupEntry, Mode, Plan, Server, ServerVerify};
use routegen_core::values::{Balance, Duration, ForwardedPolicy, TimeUnit};

use self::model::{HostServer, Loc, TlsHop};
use super::escape;
use super::{BindAddr, RenderError, RenderSettings, RenderedTree, Templates};

/// File names in the tree.
pub const CONFIG_FILE: &str = "nginx.conf";
pub const DEFAULT_CERT_FILE: &str = "certs/default.pem";
/// Socket names inside the run directory.
pub const H1_SOCKET: &str = "nginx-tls-h1.sock";
pub const H2_SOCKET: &str = "nginx-tls-h2.sock";
pub const PASSTHROUGH_SOCKET: &str = "nginx-passthrough.sock";
/// Stream upstream that closes the connection (passthrough without servers
/// or from a source outside the allowlist).
pub const CLOSED_UPSTREAM: &str = "rg_closed";
/// Body of the 503 answer, as HAProxy's `be_no_route`.
const NO_ROUTE: &str = "return 503 \"No route for this host and path.\\n\";";

#[derive(Serialize)]
struct Context {
    run_dir: String,
    worker_connections: String,
    shutdown_timeout: String,
    server_names_hash_max_size: usize,
    server_names_hash_bucket_size: usize,
    stream_map_hash_max_size: usize,
    http_maps: Vec<String>,
    default_proxy_headers: String,
    upstreams: Vec<BlockCtx>,
    plain_default: ServerCtx,
    plain_servers: Vec<ServerCtx>,
    tls_default: ServerCtx,
    tls_servers: Vec<ServerCtx>,
    stream_maps: Vec<String>,
    stream_upstreams: Vec<BlockCtx>,
    tls_listen: Vec<String>,
    passthrough_socket: String,
}

#[derive(Serialize)]
struct BlockCtx {
    comment: String,
    name: String,
    lines: Vec<String>,
}

#[derive(Serialize)]
struct ServerCtx {
    comment: String,
    lines: Vec<String>,
    locations: Vec<LocationCtx>,
}

#[derive(Serialize)]
struct LocationCtx {
    matcher: String,
    lines: Vec<String>,
}

/// Render the whole nginx tree for `plan`. Byte-identical output for equal
/// inputs.
pub fn render_nginx(
    plan: &Plan,
    settings: &RenderSettings,
    templates: &Templates,
) -> Result<RenderedTree, RenderError> {
    let mut r = Renderer::new(plan, settings)?;
    let mut files = Files::default();

    // The router's own header actions must map exactly, or no Route could
    // be served: refuse the setting rather than answer 503 everywhere.
    if let Err(reason) = headers::lines(&settings.header_actions, &Default::default()) {
        return Err(RenderError::Setting {
            setting: "header actions (--header-actions)",
            message: format!("not expressible in nginx: {reason}"),
        });
    }
    // Files.
    if !settings.default_cert_pem.contains("PRIVATE KEY-----") {
        return Err(RenderError::Setting {
            setting: "default certificate",
            message: "no private key in the default certificate PEM".into(),
        });
    }
    files.insert(
        DEFAULT_CERT_FILE,
        settings.default_cert_pem.clone().into_bytes(),
        true,
    )?;
    for cert in plan.certificates.iter() {
        let object = format!("certificate of Route {}", cert.route);
        let file = escape::relative_path("certificate file", &cert.file)
            .map_err(RenderError::unsafe_value(&object))?;
        files.insert(file, cert.pem.as_bytes().to_vec(), true)?;
    }
    for ca in plan.ca_files.iter() {
        let file = escape::relative_path("CA file", &ca.file)
            .map_err(RenderError::unsafe_value("CA file"))?;
        files.insert(file, ca.pem.clone().into_bytes(), false)?;
    }
    for list in plan.allowlist_files.iter() {
        let file = escape::relative_path("allowlist file", &list.file)
            .map_err(RenderError::unsafe_value("allowlist file"))?;
        let mut text =
            String::from("# Generated by routegen: sources allowed to reach the Route.\n");
        for net in list.list.entries() {
            let net = net.to_string();
            let net = escape::nginx_word("allowlist entry", &net)
                .map_err(RenderError::unsafe_value(file))?;
            text.push_str(&format!("allow {net};\n"));
        }
        text.push_str("deny all;\n");
        files.insert(file, text.into_bytes(), false)?;
    }
    for (policy, lines) in proxy_header_files() {
        files.insert(&proxy_headers_file(policy), lines.into_bytes(), false)?;
    }

    let context = r.context()?;
    let context = tera::Context::from_serialize(&context).map_err(|e| RenderError::Template {
        name: "nginx.conf.tera".into(),
        message: e.to_string(),
    })?;
    let config = templates.render("nginx.conf.tera", &context)?;
    files.insert(CONFIG_FILE, config.into_bytes(), false)?;
    let mut warnings = r.warnings;
    warnings.sort();
    warnings.dedup();
    Ok(RenderedTree {
        tree: files.0,
        warnings,
    })
}

/// What nginx cannot express for `plan` (the warnings [`render_nginx`]
/// returns), without rendering a tree: for `check --target nginx`.
pub fn warnings(plan: &Plan) -> Result<Vec<String>, RenderError> {
    let settings = RenderSettings::default();
    let mut r = Renderer::new(plan, &settings)?;
    r.context()?;
    let mut warnings = r.warnings;
    warnings.sort();
    warnings.dedup();
    Ok(warnings)
}

/// The `set-forwarded-headers` policy of Routes without the annotation
/// (OpenShift's default), set once in the http block.
pub const DEFAULT_FORWARDED: ForwardedPolicy = ForwardedPolicy::Append;

/// `proxy-headers/<policy>.conf`.
fn proxy_headers_file(policy: ForwardedPolicy) -> String {
    format!("proxy-headers/{}.conf", policy.as_str())
}

/// The request headers sent to HTTP servers, per `set-forwarded-headers`
/// policy, as HAProxy's renderer sets them (see `forwarded_lines` there).
/// A location that sets any `proxy_set_header` inherits none, so each file
/// is complete: Host as sent by the client, WebSocket upgrade, forwarding.
fn proxy_header_files() -> Vec<(ForwardedPolicy, String)> {
    let common = [
        "proxy_set_header Host $http_host;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $rg_connection;",
    ];
    let forwarded = |policy| -> Vec<&'static str> {
        match policy {
            ForwardedPolicy::Replace => vec![
                "proxy_set_header X-Forwarded-For $remote_addr;",
                "proxy_set_header X-Forwarded-Host $http_host;",
                "proxy_set_header X-Forwarded-Port $rg_server_port;",
                "proxy_set_header X-Forwarded-Proto $scheme;",
                "proxy_set_header X-Forwarded-Proto-Version $http2;",
                "proxy_set_header Forwarded \"for=$rg_forwarded_for;host=$http_host;proto=$scheme\";",
            ],
            ForwardedPolicy::Append => vec![
                "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "proxy_set_header X-Forwarded-Host $rg_append_x_forwarded_host;",
                "proxy_set_header X-Forwarded-Port $rg_append_x_forwarded_port;",
                "proxy_set_header X-Forwarded-Proto $rg_append_x_forwarded_proto;",
                "proxy_set_header X-Forwarded-Proto-Version $rg_append_x_forwarded_proto_version;",
                "proxy_set_header Forwarded $rg_append_forwarded;",
            ],
            ForwardedPolicy::IfNone => vec![
                "proxy_set_header X-Forwarded-For $rg_ifnone_x_forwarded_for;",
                "proxy_set_header X-Forwarded-Host $rg_ifnone_x_forwarded_host;",
                "proxy_set_header X-Forwarded-Port $rg_ifnone_x_forwarded_port;",
                "proxy_set_header X-Forwarded-Proto $rg_ifnone_x_forwarded_proto;",
                "proxy_set_header X-Forwarded-Proto-Version $rg_ifnone_x_forwarded_proto_version;",
                "proxy_set_header Forwarded $rg_ifnone_forwarded;",
            ],
            // The client's headers pass through untouched, as in OpenShift.
            ForwardedPolicy::Never => vec![],
        }
    };
    [
        ForwardedPolicy::Append,
        ForwardedPolicy::IfNone,
        ForwardedPolicy::Never,
        ForwardedPolicy::Replace,
    ]
    .into_iter()
    .map(|policy| {
        let mut text = format!(
            "# Generated by routegen: request headers for set-forwarded-headers={}.\n",
            policy.as_str()
        );
        for line in common.iter().chain(forwarded(policy).iter()) {
            text.push_str(line);
            text.push('\n');
        }
        (policy, text)
    })
    .collect()
}

/// The `map`s the proxy-header snippets and wildcard servers use.
const HTTP_MAPS: &[&str] = &[
    "map $http_upgrade $rg_connection { default upgrade; \"\" \"\"; }",
    "map $host $rg_host_tail { \"~^[a-z0-9-]+\\.(?<tail>.+)$\" $tail; default \"\"; }",
    "map $proxy_protocol_server_port $rg_server_port { \"\" $server_port; default $proxy_protocol_server_port; }",
    "map $remote_addr $rg_forwarded_for { \"~:\" \"\\\"[$remote_addr]\\\"\"; default $remote_addr; }",
    "map $http_x_forwarded_host $rg_append_x_forwarded_host { \"\" $http_host; default \"$http_x_forwarded_host, $http_host\"; }",
    "map $http_x_forwarded_port $rg_append_x_forwarded_port { \"\" $rg_server_port; default \"$http_x_forwarded_port, $rg_server_port\"; }",
    "map $http_x_forwarded_proto $rg_append_x_forwarded_proto { \"\" $scheme; default \"$http_x_forwarded_proto, $scheme\"; }",
    "map $http_x_forwarded_proto_version:$http2 $rg_append_x_forwarded_proto_version { \":\" \"\"; \"~^:(?<v>.+)$\" $v; \"~^(?<o>.*):$\" $o; \"~^(?<o>.*):(?<v>.+)$\" \"$o, $v\"; }",
    "map $http_forwarded $rg_append_forwarded { \"\" \"for=$rg_forwarded_for;host=$http_host;proto=$scheme\"; default \"$http_forwarded, for=$rg_forwarded_for;host=$http_host;proto=$scheme\"; }",
    "map $http_x_forwarded_for $rg_ifnone_x_forwarded_for { \"\" $remote_addr; default $http_x_forwarded_for; }",
    "map $http_x_forwarded_host $rg_ifnone_x_forwarded_host { \"\" $http_host; default $http_x_forwarded_host; }",
    "map $http_x_forwarded_port $rg_ifnone_x_forwarded_port { \"\" $rg_server_port; default $http_x_forwarded_port; }",
    "map $http_x_forwarded_proto $rg_ifnone_x_forwarded_proto { \"\" $scheme; default $http_x_forwarded_proto; }",
    "map $http_x_forwarded_proto_version $rg_ifnone_x_forwarded_proto_version { \"\" $http2; default $http_x_forwarded_proto_version; }",
    "map $http_forwarded $rg_ifnone_forwarded { \"\" \"for=$rg_forwarded_for;host=$http_host;proto=$scheme\"; default $http_forwarded; }",
];

/// An nginx upstream name for a backend: its name with `:` (a port
/// separator in `proxy_pass http://NAME`) replaced by `.`:
/// `be_http:ns:name` → `be_http.ns.name`. Namespaces are DNS labels, so
/// this is one-to-one for every name the plan makes; the renderer still
/// checks that no two backends get the same name.
pub fn upstream_name(backend: &str) -> String {
    backend.replace(':', ".")
}

/// A duration in nginx syntax: nginx has `ms s m h d` like HAProxy but no
/// `us`; microseconds are rounded up to milliseconds.
pub fn nginx_duration(d: &Duration) -> String {
    if d.unit() == TimeUnit::Us {
        format!("{}ms", d.as_millis_ceil().max(1))
    } else {
        d.to_string()
    }
}

/// A duration for a directive that takes whole seconds (`fail_timeout`):
/// rounded up, at least `1s`.
pub fn nginx_seconds(d: &Duration) -> String {
    format!("{}s", d.as_millis_ceil().div_ceil(1000).max(1))
}

fn server_address(s: &Server) -> String {
    match s.address {
        IpAddr::V4(ip) => format!("{ip}:{}", s.port),
        IpAddr::V6(ip) => format!("[{ip}]:{}", s.port),
    }
}

/// `listen` address form for a bind address: `*:80`, `127.0.0.1:80`, `[::]:443`.
fn listen_addr(b: &BindAddr) -> String {
    match b.ip {
        None => format!("*:{}", b.port),
        Some(_) => b.to_string(),
    }
}

/// Regex (for an nginx map key) matching `$upstream_addr` whose last
/// attempt is `addr`.
fn upstream_addr_regex(addr: &str) -> String {
    let mut re = String::from("~(^|, )");
    for c in addr.chars() {
        if matches!(c, '.' | '[' | ']') {
            re.push('\\');
        }
        re.push(c);
    }
    re.push('$');
    re
}

struct Renderer<'p> {
    plan: &'p Plan,
    settings: &'p RenderSettings,
    backends: BTreeMap<&'p str, &'p Backend>,
    /// Backend name → upstream name (only backends with servers).
    upstreams: BTreeMap<&'p str, String>,
    /// Backend name → variable holding the per-server verify name.
    ssl_name_vars: BTreeMap<&'p str, String>,
    http_maps: Vec<String>,
    warnings: Vec<String>,
    run_dir: String,
}

fn setting_err(setting: &'static str) -> impl Fn(escape::EscapeError) -> RenderError {
    move |e| RenderError::Setting {
        setting,
        message: e.to_string(),
    }
}

impl<'p> Renderer<'p> {
    fn new(plan: &'p Plan, settings: &'p RenderSettings) -> Result<Self, RenderError> {
        let mut backends = BTreeMap::new();
        for b in &plan.backends {
            if backends.insert(b.name.as_str(), &**b).is_some() {
                return Err(RenderError::Plan("two backends have the same name".into()));
            }
        }
        let mut upstreams = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for b in &plan.backends {
            let name = upstream_name(&b.name);
            escape::nginx_word("upstream name", &name)
                .map_err(RenderError::unsafe_value(format!("backend {}", b.name)))?;
            if !seen.insert(name.clone()) || name == CLOSED_UPSTREAM {
                return Err(RenderError::Plan(format!(
                    "backend {}: nginx upstream name {name} is not unique",
                    b.name
                )));
            }
            if b.servers.iter().any(|s| s.weight.get() > 0) {
                upstreams.insert(b.name.as_str(), name);
            }
        }
        let run_dir = escape::absolute_dir("run directory", &settings.run_dir)
            .map_err(setting_err("run directory"))?
            .trim_end_matches('/')
            .to_string();
        Ok(Renderer {
            plan,
            settings,
            backends,
            upstreams,
            ssl_name_vars: BTreeMap::new(),
            http_maps: HTTP_MAPS.iter().map(|s| s.to_string()).collect(),
            warnings: Vec::new(),
            run_dir,
        })
    }

    fn warn(&mut self, route: impl std::fmt::Display, message: impl std::fmt::Display) {
        self.warnings.push(format!("{route}: nginx: {message}"));
    }

    fn socket(&self, name: &str) -> Result<String, RenderError> {
        let path = format!("{}/{name}", self.run_dir);
        escape::socket_path("socket path", &path).map_err(setting_err("run directory"))?;
        Ok(format!("unix:{path}"))
    }

    fn context(&mut self) -> Result<Context, RenderError> {
        let s = self.settings;
        if s.maxconn == 0 || s.maxconn > routegen_core::values::POSITIVE_INT_MAX {
            return Err(RenderError::Setting {
                setting: "maxconn",
                message: "must be from 1 to 2147483647".into(),
            });
        }
        let binds =
            |list: &[BindAddr], setting: &'static str| -> Result<Vec<String>, RenderError> {
                if list.is_empty() {
                    return Err(RenderError::Setting {
                        setting,
                        message: "at least one address is needed".into(),
                    });
                }
                let unique: BTreeSet<&BindAddr> = list.iter().collect();
                unique
                    .into_iter()
                    .map(|b| {
                        escape::nginx_word("listen address", &listen_addr(b))
                            .map(str::to_string)
                            .map_err(setting_err(setting))
                    })
                    .collect()
            };
        let http_binds = binds(&s.http_bind, "HTTP bind address")?;
        let https_binds = binds(&s.https_bind, "HTTPS bind address")?;
        let h1 = self.socket(H1_SOCKET)?;
        let h2 = self.socket(H2_SOCKET)?;
        let passthrough_socket = self.socket(PASSTHROUGH_SOCKET)?;

        self.backend_warnings();
        let upstreams = self.http_upstreams()?;

        // Port 80.
        let plain_listen: Vec<String> = http_binds.iter().map(|b| format!("listen {b};")).collect();
        let plain_default = ServerCtx {
            comment: "# No Route for this host: 503.".into(),
            lines: http_binds
                .iter()
                .map(|b| format!("listen {b} default_server;"))
                .chain([NO_ROUTE.to_string()])
                .collect(),
            locations: Vec::new(),
        };
        let plain_table = model::host_servers(&self.plan.http_lookup);
        let mut plain_servers = Vec::with_capacity(plain_table.len());
        for server in &plain_table {
            plain_servers.push(self.server(server, &plain_listen, None)?);
        }

        // TLS terminated.
        let tls_listen = vec![
            format!("listen {h1} ssl proxy_protocol;"),
            format!("listen {h2} ssl http2 proxy_protocol;"),
        ];
        let tls_default = ServerCtx {
            comment: "# TLS without a Route for the host (and clients without SNI): default certificate, 503.".into(),
            lines: vec![
                format!("listen {h1} ssl proxy_protocol default_server;"),
                format!("listen {h2} ssl http2 proxy_protocol default_server;"),
                format!("ssl_certificate {DEFAULT_CERT_FILE};"),
                format!("ssl_certificate_key {DEFAULT_CERT_FILE};"),
                NO_ROUTE.to_string(),
            ],
            locations: Vec::new(),
        };
        let tls_table = model::host_servers(&self.plan.https_lookup);
        let mut tls_servers = Vec::with_capacity(tls_table.len());
        for server in &tls_table {
            let (cert, extra) = model::certificate_for(server.host_key, &self.plan.certificates);
            for other in extra {
                self.warn(
                    &other.route,
                    format_args!(
                        "host {} has several Route certificates; nginx serves one per host: {} (this Route's certificate is not used)",
                        server.host_key,
                        cert.map(|c| c.file.as_str()).unwrap_or(DEFAULT_CERT_FILE)
                    ),
                );
            }
            let file = match cert {
                Some(c) => escape::relative_path("certificate file", &c.file).map_err(
                    RenderError::unsafe_value(format!("certificate of Route {}", c.route)),
                )?,
                None => DEFAULT_CERT_FILE,
            };
            tls_servers.push(self.server(server, &tls_listen, Some(file))?);
        }

        // Stream: SNI routing and passthrough.
        let (stream_maps, stream_upstreams) = self.stream(&h1, &h2, &passthrough_socket)?;

        let names = plain_table.len() + tls_table.len();
        let longest = plain_table
            .iter()
            .chain(tls_table.iter())
            .map(|s| s.host_key.len())
            .max()
            .unwrap_or(0);
        let sni_entries = self.plan.passthrough.len() + self.plan.certificates.len();

        let mut http_maps = std::mem::take(&mut self.http_maps);
        http_maps.sort();
        Ok(Context {
            run_dir: self.run_dir.clone(),
            worker_connections: s.maxconn.to_string(),
            shutdown_timeout: nginx_duration(&s.hard_stop_after),
            server_names_hash_max_size: hash_max_size(names),
            // nginx needs a bucket to hold a few names: with one name per
            // bucket it tries every table size up to the maximum (slow).
            server_names_hash_bucket_size: if longest > 100 { 1024 } else { 512 },
            stream_map_hash_max_size: hash_max_size(sni_entries),
            http_maps,
            default_proxy_headers: proxy_headers_file(DEFAULT_FORWARDED),
            upstreams,
            plain_default,
            plain_servers,
            tls_default,
            tls_servers,
            stream_maps,
            stream_upstreams,
            tls_listen: https_binds,
            passthrough_socket,
        })
    }

    /// Route features nginx cannot express, reported once per backend.
    fn backend_warnings(&mut self) {
        let mut sticky = 0usize;
        let backends: Vec<&Backend> = self.plan.backends.iter().map(|b| &**b).collect();
        for b in backends {
            let tcp = b.mode == Mode::Tcp;
            if b.cookie.is_some() && b.servers.iter().filter(|s| s.weight.get() > 0).count() > 1 {
                sticky += 1;
            }
            if b.servers.iter().any(|s| s.h2c && s.weight.get() > 0) {
                self.warn(
                    &b.route,
                    "endpoints with appProtocol h2c are reached with HTTP/1.1 (nginx proxies HTTP/1.x only)",
                );
            }
            if let Some(rl) = &b.rate_limit {
                if tcp {
                    self.warn(
                        &b.route,
                        "rate-limit-connections is not applied to passthrough Routes (all passthrough traffic shares one nginx stream server)",
                    );
                } else {
                    if rl.rate_tcp.is_some() {
                        self.warn(
                            &b.route,
                            "rate-limit-connections.rate-tcp has no nginx equivalent: not applied",
                        );
                    }
                    if rl.rate_http.is_some() {
                        self.warn(
                            &b.route,
                            "rate-limit-connections.rate-http is approximated with limit_req (leaky bucket, 503) instead of a 10s sliding window",
                        );
                    }
                }
            }
            if tcp && (b.timeout_server.is_some() || b.timeout_tunnel.is_some()) {
                self.warn(
                    &b.route,
                    "timeout/timeout-tunnel are not applied to passthrough Routes (one nginx stream server: proxy_timeout 1h)",
                );
            }
            if !tcp && b.timeout_tunnel.is_some() {
                self.warn(
                    &b.route,
                    "timeout-tunnel has no separate nginx setting: upgraded (WebSocket) connections use the server timeout",
                );
            }
            if let Some(tls) = &b.server_tls {
                if let ServerVerify::CaFile {
                    verify_host: None, ..
                } = &tls.verify
                {
                    if b.servers.iter().any(|s| s.verify_host.is_none()) {
                        self.warn(
                            &b.route,
                            "destinationCACertificate: nginx also checks the server certificate's name (<service>.<namespace>.svc); HAProxy checks the chain only",
                        );
                    }
                }
            }
        }
        if sticky > 0 {
            self.warnings.push(format!(
                "nginx: {sticky} Route(s) with more than one server would get a sticky-session cookie; nginx OSS cannot set one, so their requests are balanced without session affinity (see docs/nginx.md)"
            ));
        }
    }

    fn http_upstreams(&mut self) -> Result<Vec<BlockCtx>, RenderError> {
        let mut out = Vec::new();
        let backends: Vec<&'p Backend> = self.plan.backends.iter().map(|b| &**b).collect();
        for b in backends {
            if b.mode != Mode::Http {
                continue;
            }
            let Some(name) = self.upstreams.get(b.name.as_str()).cloned() else {
                continue;
            };
            out.push(self.upstream(b, &name)?);
            if let Some(rl) = &b.rate_limit {
                if rl.concurrent_tcp.is_some() {
                    self.http_maps.push(format!(
                        "limit_conn_zone $binary_remote_addr zone={name}.conn:1m;"
                    ));
                }
                if let Some(n) = rl.rate_http {
                    self.http_maps.push(format!(
                        "limit_req_zone $binary_remote_addr zone={name}.req:1m rate={}r/m;",
                        u64::from(n.get()) * 6
                    ));
                }
            }
            // Per-server verify names (reencrypt): a map on the address of
            // the server nginx connected to.
            if let Some(tls) = &b.server_tls {
                if let ServerVerify::CaFile { verify_host, .. } = &tls.verify {
                    let names: BTreeMap<String, String> = b
                        .servers
                        .iter()
                        .filter(|s| s.weight.get() > 0)
                        .map(|s| {
                            (
                                server_address(s),
                                self.verify_name(b, s, verify_host.as_deref()),
                            )
                        })
                        .collect();
                    let distinct: BTreeSet<&String> = names.values().collect();
                    if distinct.len() > 1 {
                        let var = format!("$rg_ssl_name_{}", self.ssl_name_vars.len());
                        let default = verify_host
                            .clone()
                            .unwrap_or_else(|| names.values().next().cloned().unwrap_or_default());
                        let default = escape::dns_name("verify name", &default)
                            .map_err(RenderError::unsafe_value(format!("backend {}", b.name)))?;
                        let mut map = format!("map $upstream_addr {var} {{ default {default};");
                        for (addr, host) in &names {
                            let host = escape::dns_name("verify name", host).map_err(
                                RenderError::unsafe_value(format!("backend {}", b.name)),
                            )?;
                            let key = escape::nginx_quoted("map key", &upstream_addr_regex(addr))
                                .map_err(RenderError::unsafe_value(format!(
                                "backend {}",
                                b.name
                            )))?;
                            map.push_str(&format!(" {key} {host};"));
                        }
                        map.push_str(" }");
                        self.http_maps.push(map);
                        self.ssl_name_vars.insert(b.name.as_str(), var);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The name a reencrypt server's certificate is checked against.
    fn verify_name(&self, b: &Backend, s: &Server, route_default: Option<&str>) -> String {
        s.verify_host
            .as_ref()
            .map(|h| h.to_string())
            .or_else(|| route_default.map(str::to_string))
            .unwrap_or_else(|| format!("{}.{}.svc", s.service, b.route.namespace))
    }

    /// An `upstream` block (http or stream) for a backend with servers.
    fn upstream(&self, b: &Backend, name: &str) -> Result<BlockCtx, RenderError> {
        let object = format!("backend {}", b.name);
        let mut lines = Vec::new();
        match b.balance {
            Balance::RoundRobin => {}
            Balance::LeastConn => lines.push("least_conn;".to_string()),
            Balance::Source => lines.push("hash $remote_addr consistent;".to_string()),
            Balance::Random => lines.push("random;".to_string()),
        }
        let mut servers: Vec<&Server> = b.servers.iter().filter(|s| s.weight.get() > 0).collect();
        servers.sort_by(|a, b| a.name.cmp(&b.name));
        for s in servers {
            let addr = server_address(s);
            let addr = escape::nginx_word("server address", &addr)
                .map_err(RenderError::unsafe_value(&object))?;
            let mut line = format!("server {addr} weight={}", s.weight);
            match &b.health_check {
                Some(inter) => line.push_str(&format!(
                    " max_fails=1 fail_timeout={}",
                    nginx_seconds(inter)
                )),
                None => line.push_str(" max_fails=0"),
            }
            if let Some(n) = b.server_maxconn {
                line.push_str(&format!(" max_conns={}", n.get()));
            }
            escape::nginx_comment("server name", &s.name)
                .map_err(RenderError::unsafe_value(&object))?;
            line.push_str(&format!("; # {}", s.name));
            lines.push(line);
        }
        let termination = b.termination.map(Termination::as_str).unwrap_or("http");
        let comment = format!(
            "# {} route {} host {} path {} termination {termination}",
            b.name,
            b.route,
            b.host_key,
            b.path.as_deref().unwrap_or("-"),
        );
        escape::nginx_comment("comment", &comment).map_err(RenderError::unsafe_value(&object))?;
        Ok(BlockCtx {
            comment,
            name: name.to_string(),
            lines,
        })
    }

    /// One `server` for a host key of a lookup table.
    fn server(
        &mut self,
        server: &HostServer<'p>,
        listen: &[String],
        certificate: Option<&str>,
    ) -> Result<ServerCtx, RenderError> {
        let object = format!("server {}", server.host_key);
        escape::host_key("host", server.host_key).map_err(RenderError::unsafe_value(&object))?;
        let mut lines: Vec<String> = listen.to_vec();
        lines.push(format!("server_name {};", server.host_key));
        if let Some(file) = certificate {
            lines.push(format!("ssl_certificate {file};"));
            lines.push(format!("ssl_certificate_key {file};"));
        }
        if let Some(domain) = server.wildcard_domain() {
            // nginx's `*.domain` also matches deeper names; a Route's
            // wildcard covers exactly one label.
            lines.push(format!(
                "if ($rg_host_tail != \"{domain}\") {{ {NO_ROUTE} }}"
            ));
        }
        let mut locations = Vec::with_capacity(server.locations.len());
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for location in &server.locations {
            let raw = location.loc.representative();
            let Some(decoded) = model::decoded_path(raw) else {
                if let Some(e) = location.entry {
                    self.warn(
                        &e.route,
                        format_args!(
                            "path {} cannot be expressed as an nginx location (nginx matches the decoded path): not served on {}",
                            routegen_core::values::quote_for_message(route_path(&e.path), 64),
                            server.host_key
                        ),
                    );
                }
                continue;
            };
            let path = match escape::nginx_word("location path", &decoded) {
                Ok(bare) => bare.to_string(),
                Err(_) => escape::nginx_quoted("location path", &decoded)
                    .map_err(RenderError::unsafe_value(&object))?,
            };
            let matcher = match &location.loc {
                Loc::Exact(_) => format!("= {path}"),
                Loc::Prefix(_) => path,
            };
            if !seen.insert(matcher.clone()) {
                if let Some(e) = location.entry {
                    self.warn(
                        &e.route,
                        format_args!(
                            "path {} decodes to a location already used on {}: not served separately",
                            routegen_core::values::quote_for_message(route_path(&e.path), 64),
                            server.host_key
                        ),
                    );
                }
                continue;
            }
            let lines = self.location_lines(location.entry, raw)?;
            locations.push(LocationCtx { matcher, lines });
        }
        collapse(&mut lines, &mut locations);
        Ok(ServerCtx {
            comment: format!("# host {}", server.host_key),
            lines,
            locations,
        })
    }

    /// The body of a location answering with `entry`'s action.
    fn location_lines(
        &mut self,
        entry: Option<&'p LookupEntry>,
        location: &str,
    ) -> Result<Vec<String>, RenderError> {
        let Some(entry) = entry else {
            return Ok(vec!["# no Route".into(), NO_ROUTE.into()]);
        };
        let mut lines = vec![format!("# route {}", entry.route)];
        escape::nginx_comment("comment", &lines[0])
            .map_err(RenderError::unsafe_value(format!("Route {}", entry.route)))?;
        let name = match &entry.action {
            LookupAction::Refuse => {
                lines.push(NO_ROUTE.into());
                return Ok(lines);
            }
            LookupAction::RedirectToHttps => {
                lines.push("return 302 https://$host$request_uri;".into());
                return Ok(lines);
            }
            LookupAction::Backend(name) => name,
        };
        let Some(b) = self.backends.get(name.as_str()).copied() else {
            return Err(RenderError::Plan(format!(
                "lookup entry of Route {}: no backend {name}",
                entry.route
            )));
        };
        let object = format!("backend {}", b.name);
        let err = RenderError::unsafe_value;
        let Some(upstream) = self.upstreams.get(b.name.as_str()).cloned() else {
            lines.push("# no server with weight > 0".into());
            lines.push(NO_ROUTE.into());
            return Ok(lines);
        };
        let header_lines = match headers::lines(&self.settings.header_actions, &b.headers) {
            Ok(header_lines) => header_lines,
            Err(reason) => {
                self.warn(
                    &entry.route,
                    format_args!("spec.httpHeaders: {reason}: the Route answers 503 on nginx"),
                );
                lines.push(NO_ROUTE.into());
                return Ok(lines);
            }
        };
        if let Some(file) = &b.allowlist_file {
            let file = escape::relative_path("allowlist file", file).map_err(err(&object))?;
            lines.push(format!("include {file};"));
        }
        if let Some(rl) = &b.rate_limit {
            if let Some(n) = rl.concurrent_tcp {
                lines.push(format!("limit_conn {upstream}.conn {};", n.get()));
            }
            if let Some(n) = rl.rate_http {
                lines.push(format!(
                    "limit_req zone={upstream}.req burst={} nodelay;",
                    n.get()
                ));
            }
        }
        let scheme = if b.server_tls.is_some() {
            "https"
        } else {
            "http"
        };
        let uri = match &b.rewrite {
            None => String::new(),
            Some(rw) => match model::rewrite_uri(&rw.prefix, rw.target.as_str(), location) {
                Some(uri) => uri,
                None => {
                    return Err(RenderError::Plan(format!(
                        "{object}: location {location} does not start with the rewritten prefix {}",
                        rw.prefix
                    )))
                }
            },
        };
        if uri.is_empty() {
            lines.push(format!("proxy_pass {scheme}://{upstream};"));
        } else {
            // With a URI, nginx replaces the part of the path that matched
            // the location with it (and keeps the query string).
            match escape::nginx_script_quoted(
                "rewritten path",
                &format!("{scheme}://{upstream}{uri}"),
            ) {
                Ok(target) => lines.push(format!("proxy_pass {target};")),
                Err(_) => {
                    self.warn(
                        &entry.route,
                        format_args!(
                            "rewrite-target: the rewritten path {} contains '$', which nginx cannot write literally: location {} answers 503",
                            routegen_core::values::quote_for_message(&uri, 64),
                            routegen_core::values::quote_for_message(location, 64)
                        ),
                    );
                    lines.push(NO_ROUTE.into());
                    return Ok(lines);
                }
            }
        }
        // The http block includes the default (OpenShift's `append`); a
        // location with its own `proxy_set_header` inherits none of them.
        let policy = b.forwarded.unwrap_or(DEFAULT_FORWARDED);
        if policy != DEFAULT_FORWARDED
            || headers::sets_request_headers(&self.settings.header_actions, &b.headers)
        {
            lines.push(format!("include {};", proxy_headers_file(policy)));
        }
        if let Some(t) = &b.timeout_server {
            let t = nginx_duration(t);
            lines.push(format!("proxy_read_timeout {t};"));
            lines.push(format!("proxy_send_timeout {t};"));
        }
        if let Some(tls_to_server) = &b.server_tls {
            match &tls_to_server.verify {
                ServerVerify::CaFile { file, verify_host } => {
                    let file = escape::relative_path("CA file", file).map_err(err(&object))?;
                    lines.push("proxy_ssl_verify on;".into());
                    lines.push("proxy_ssl_verify_depth 100;".into());
                    lines.push(format!("proxy_ssl_trusted_certificate {file};"));
                    let name = match self.ssl_name_vars.get(b.name.as_str()) {
                        Some(var) => var.clone(),
                        None => {
                            let first = b.servers.iter().find(|s| s.weight.get() > 0);
                            let name = match first {
                                Some(s) => self.verify_name(b, s, verify_host.as_deref()),
                                None => String::new(),
                            };
                            escape::dns_name("verify name", &name)
                                .map_err(err(&object))?
                                .to_string()
                        }
                    };
                    lines.push(format!("proxy_ssl_name {name};"));
                    lines.push("proxy_ssl_server_name on;".into());
                }
                ServerVerify::None => lines.push("proxy_ssl_verify off;".into()),
            }
        }
        if let Some(hsts) = &b.hsts {
            let value = escape::nginx_script_quoted("HSTS header", &hsts.to_string())
                .map_err(err(&object))?;
            lines.push("proxy_hide_header Strict-Transport-Security;".into());
            lines.push(format!(
                "add_header Strict-Transport-Security {value} always;"
            ));
        }
        lines.extend(header_lines);
        Ok(lines)
    }

    /// Maps and upstreams of the `stream` block.
    fn stream(
        &mut self,
        h1: &str,
        h2: &str,
        passthrough: &str,
    ) -> Result<(Vec<String>, Vec<BlockCtx>), RenderError> {
        let plan = self.plan;
        let routing = model::tls_routing(&plan.passthrough, &plan.certificates);
        let hop = |h: TlsHop| match h {
            TlsHop::Passthrough => passthrough,
            TlsHop::H2 => h2,
        };
        let mut maps = Vec::new();
        let mut upstreams = Vec::new();

        // Allowlisted passthrough Routes: a geo per Route selects its
        // upstream or the closed one by client address.
        let mut targets: BTreeMap<&str, String> = BTreeMap::new();
        let mut geos = 0usize;
        let lists: BTreeMap<&str, &routegen_core::plan::AllowlistFile> = plan
            .allowlist_files
            .iter()
            .map(|l| (l.file.as_str(), l))
            .collect();
        for b in plan.backends.iter().filter(|b| b.mode == Mode::Tcp) {
            let object = format!("backend {}", b.name);
            let target = match self.upstreams.get(b.name.as_str()).cloned() {
                Some(name) => {
                    upstreams.push(self.upstream(b, &name)?);
                    name
                }
                None => CLOSED_UPSTREAM.to_string(),
            };
            let target = match b.allowlist_file.as_deref().and_then(|f| lists.get(f)) {
                Some(list) if target != CLOSED_UPSTREAM => {
                    let var = format!("$rg_allow_{geos}");
                    geos += 1;
                    let mut geo = format!("geo {var} {{ default {CLOSED_UPSTREAM};");
                    for net in list.list.entries() {
                        let net = net.to_string();
                        let net = escape::nginx_word("allowlist entry", &net)
                            .map_err(RenderError::unsafe_value(&object))?;
                        geo.push_str(&format!(" {net} {target};"));
                    }
                    geo.push_str(" }");
                    maps.push(geo);
                    var
                }
                _ => target,
            };
            targets.insert(b.name.as_str(), target);
        }
        upstreams.push(BlockCtx {
            comment: "# Closes the connection: passthrough Route without servers, or a source outside its allowlist.".into(),
            name: CLOSED_UPSTREAM.into(),
            lines: vec!["server 127.0.0.1:1 down;".into()],
        });

        // Public listener: SNI → hop.
        maps.push(
            "map $ssl_preread_server_name $rg_sni_tail { \"~*^[a-z0-9-]+\\.(?<tail>.+)$\" $tail; default \"\"; }"
                .into(),
        );
        let mut wild = format!("map $rg_sni_tail $rg_tls_wildcard {{ hostnames; default {h1};");
        for (domain, h) in &routing.wildcard {
            let domain = escape::host_key("SNI domain", domain)
                .map_err(RenderError::unsafe_value("SNI routing"))?;
            wild.push_str(&format!(" {domain} {};", hop(*h)));
        }
        wild.push_str(" }");
        maps.push(wild);
        let mut exact =
            "map $ssl_preread_server_name $rg_tls_hop { hostnames; default $rg_tls_wildcard;"
                .to_string();
        for (sni, h) in &routing.exact {
            let sni =
                escape::host_key("SNI", sni).map_err(RenderError::unsafe_value("SNI routing"))?;
            exact.push_str(&format!(" {sni} {};", hop(*h)));
        }
        exact.push_str(" }");
        maps.push(exact);

        // Passthrough hop: SNI → upstream.
        let mut pt_wild = format!(
            "map $rg_sni_tail $rg_passthrough_wildcard {{ hostnames; default {CLOSED_UPSTREAM};"
        );
        let mut pt_exact = "map $ssl_preread_server_name $rg_passthrough { hostnames; default $rg_passthrough_wildcard;".to_string();
        for e in plan.passthrough.iter() {
            let object = format!("SNI entry of Route {}", e.route);
            let Some(target) = targets.get(e.backend.as_str()) else {
                return Err(RenderError::Plan(format!(
                    "{object}: no backend {}",
                    e.backend
                )));
            };
            let sni =
                escape::host_key("SNI", &e.sni).map_err(RenderError::unsafe_value(&object))?;
            match sni.strip_prefix("*.") {
                Some(domain) => pt_wild.push_str(&format!(" {domain} {target};")),
                None => pt_exact.push_str(&format!(" {sni} {target};")),
            }
        }
        pt_wild.push_str(" }");
        pt_exact.push_str(" }");
        maps.push(pt_wild);
        maps.push(pt_exact);
        Ok((maps, upstreams))
    }
}

/// When every location of a server does the same thing (the same lines
/// apart from the `# route` comments), one location `/` does it for every
/// path, and a `return` needs no location at all: fewer locations keep
/// nginx's memory and load time down (each location costs a full set of
/// per-location settings). Comments of the Routes involved are kept.
fn collapse(server_lines: &mut Vec<String>, locations: &mut Vec<LocationCtx>) {
    let body = |l: &LocationCtx| -> Vec<String> {
        l.lines
            .iter()
            .filter(|x| !x.starts_with('#'))
            .cloned()
            .collect()
    };
    let Some(first) = locations.first() else {
        return;
    };
    let first_body = body(first);
    // A proxy_pass with a URI replaces the location's own path: it cannot
    // move to another location.
    let rewrites = first_body.iter().any(|x| x.starts_with("proxy_pass \""));
    if rewrites || locations.iter().any(|l| body(l) != first_body) {
        return;
    }
    let mut comments: Vec<String> = locations
        .iter()
        .flat_map(|l| l.lines.iter().filter(|x| x.starts_with('#')).cloned())
        .collect();
    comments.sort();
    comments.dedup();
    let mut lines = comments;
    lines.extend(first_body.iter().cloned());
    if first_body.len() == 1 && first_body[0].starts_with("return ") {
        server_lines.extend(lines);
        locations.clear();
    } else {
        *locations = vec![LocationCtx {
            matcher: "/".into(),
            lines,
        }];
    }
}

/// A Route path as written (`/` for the fallback).
fn route_path(path: &routegen_core::plan::PathMatch) -> &str {
    match path {
        routegen_core::plan::PathMatch::Fallback => "/",
        routegen_core::plan::PathMatch::Prefix(p) | routegen_core::plan::PathMatch::Under(p) => p,
    }
}

/// A `*_hash_max_size` large enough for `n` keys (nginx's default is 512).
fn hash_max_size(n: usize) -> usize {
    n.next_power_of_two().max(1024)
}

#[cfg(test)]
mod tests;
