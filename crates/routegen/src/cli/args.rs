//! The argument groups several subcommands share: input ([`InputArgs`]),
//! admission ([`RouterArgs`]), the proxy ([`TargetArg`]) and rendering
//! ([`RenderFlags`]). Each subcommand flattens the ones it needs; what a
//! group resolves to (router settings, pipeline options) is decided here
//! once.

use std::path::{Path, PathBuf};

use clap::builder::TypedValueParser as _;
use clap::Args;

use routegen_core::plan::spares::{self, SpareSettings};
use routegen_core::values::{CookieName, Duration};
use routegen_core::RouterSettings;
use routegen_host::config::PipelineOptions;
use routegen_render::{self as render, BindAddr};

/// The headings of `run --help` (and of the shared groups wherever they
/// are flattened), so ~60 flags read as groups. Every flag of `run` has
/// one of these (a test checks it).
pub(crate) mod heading {
    pub(crate) const SOURCE: &str = routegen_k8s::source::HELP_HEADING_SOURCE;
    pub(crate) const OUTPUT: &str = "Output and apply";
    pub(crate) const HAPROXY: &str = "HAProxy process";
    pub(crate) const RELOADS: &str = "Runtime API and reloads";
    pub(crate) const POLICY: &str = "Router policy (admission)";
    pub(crate) const RENDERING: &str = "Rendering";
    pub(crate) const STATUS: &str = routegen_k8s::source::HELP_HEADING_STATUS;
    pub(crate) const OPERATIONS: &str = "Operations listener";
    pub(crate) const LOGGING: &str = "Logging";
    /// In the order `run --help` shows them.
    #[cfg(test)]
    pub(crate) const ALL: [&str; 9] = [
        SOURCE, OUTPUT, HAPROXY, RELOADS, POLICY, RENDERING, STATUS, OPERATIONS, LOGGING,
    ];
}

/// Where manifests come from.
#[derive(Args, Debug)]
pub(crate) struct InputArgs {
    /// Manifest files or directories (recursive: *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, num_args = 1..)]
    pub(crate) paths: Vec<PathBuf>,
    /// Namespace for objects that have none.
    #[arg(long, env = "ROUTEGEN_NAMESPACE", default_value = "default")]
    pub(crate) namespace: String,
}

/// Router settings that change admission (SPEC §3).
#[derive(Args, Debug)]
pub(crate) struct RouterArgs {
    /// Domain for Routes that set spec.subdomain: `<subdomain>.<domain>`.
    #[arg(long, env = "ROUTEGEN_ROUTER_DOMAIN", value_name = "DOMAIN")]
    pub(crate) router_domain: Option<String>,
    /// Host for Routes with neither host nor subdomain; `${name}` and `${namespace}` are substituted.
    #[arg(long, env = "ROUTEGEN_HOSTNAME_TEMPLATE", value_name = "TEMPLATE")]
    pub(crate) hostname_template: Option<String>,
    /// Admit Routes with wildcardPolicy Subdomain.
    #[arg(long, env = "ROUTEGEN_ALLOW_WILDCARD_ROUTES")]
    pub(crate) allow_wildcard_routes: bool,
    /// Admit only hosts in these domains (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_ALLOWED_DOMAINS",
        value_name = "DOMAINS",
        value_delimiter = ','
    )]
    pub(crate) allowed_domains: Vec<String>,
    /// Refuse hosts in these domains (comma-separated); checked before --allowed-domains.
    #[arg(
        long,
        env = "ROUTEGEN_DENIED_DOMAINS",
        value_name = "DOMAINS",
        value_delimiter = ','
    )]
    pub(crate) denied_domains: Vec<String>,
    /// Let Routes in different namespaces share a host (paths must still differ).
    #[arg(long, env = "ROUTEGEN_DISABLE_NAMESPACE_OWNERSHIP_CHECK")]
    pub(crate) disable_namespace_ownership_check: bool,
    /// At most N Routes per host (or wildcard domain): the oldest are admitted, newer ones refused (RouteNotAdmitted). 0: no bound.
    #[arg(
        long,
        env = "ROUTEGEN_MAX_ROUTES_PER_HOST",
        value_name = "N",
        default_value_t = DEFAULT_MAX_ROUTES_PER_HOST
    )]
    pub(crate) max_routes_per_host: usize,
}

/// `--max-routes-per-host`: far above what one application puts on one
/// host (a path per service), far below what would make the host's Routes
/// a large share of a fleet's backends (SECURITY.md, "Bounds").
pub(crate) const DEFAULT_MAX_ROUTES_PER_HOST: usize = 1000;

impl RouterArgs {
    pub(crate) fn settings(&self) -> RouterSettings {
        let clean = |list: &[String]| -> Vec<String> {
            list.iter()
                .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|d| !d.is_empty())
                .collect()
        };
        RouterSettings {
            router_domain: self.router_domain.clone().filter(|d| !d.is_empty()),
            hostname_template: self.hostname_template.clone().filter(|t| !t.is_empty()),
            allow_wildcard_routes: self.allow_wildcard_routes,
            allowed_domains: clean(&self.allowed_domains),
            denied_domains: clean(&self.denied_domains),
            disable_namespace_ownership_check: self.disable_namespace_ownership_check,
            max_routes_per_host: (self.max_routes_per_host > 0).then_some(self.max_routes_per_host),
        }
    }
}

/// `--target`: which proxy a tree is for (render, diff, check, run).
#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct TargetArg {
    /// Proxy to render for: haproxy (haproxy.cfg) or nginx (nginx.conf; see
    /// docs/nginx.md). check lists what nginx cannot express; run validates
    /// with `nginx -t` and reloads with --reload command:… (no --spawn-haproxy).
    #[arg(
        long = "target",
        env = "ROUTEGEN_TARGET",
        value_name = "PROXY",
        default_value = "haproxy"
    )]
    pub(crate) proxy: render::Target,
}

/// Rendering settings shared by render, diff and run.
#[derive(Args, Debug)]
pub(crate) struct RenderFlags {
    /// Directory with templates replacing the built-in ones (same file names, e.g. haproxy.cfg.tera).
    #[arg(long, env = "ROUTEGEN_TEMPLATE_DIR", value_name = "DIR")]
    pub(crate) template_dir: Option<PathBuf>,
    /// Where the self-signed default certificate is generated once and kept [default for run: <out>/state; render and diff without it or --default-cert write nothing and use a built-in placeholder certificate, see README].
    #[arg(long, env = "ROUTEGEN_STATE_DIR", value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Default certificate: private key and certificate chain in one PEM file.
    #[arg(long, env = "ROUTEGEN_DEFAULT_CERT", value_name = "FILE")]
    pub(crate) default_cert: Option<PathBuf>,
    /// Address(es) of the plain HTTP frontend: :PORT, IPv4:PORT or [IPv6]:PORT (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_HTTP_BIND",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = ":80"
    )]
    pub(crate) http_bind: Vec<BindAddr>,
    /// Address(es) of the TLS frontend (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_HTTPS_BIND",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = ":443"
    )]
    pub(crate) https_bind: Vec<BindAddr>,
    /// Directory of HAProxy's Unix sockets (runtime API, internal TLS frontend; run creates it 0700 when missing) [default: /var/lib/haproxy/run; for run: <out>/run].
    #[arg(long, env = "ROUTEGEN_RUN_DIR", value_name = "DIR")]
    pub(crate) run_dir: Option<String>,
    /// HAProxy global maxconn.
    #[arg(long, env = "ROUTEGEN_MAXCONN", value_name = "N", default_value_t = render::DEFAULT_MAXCONN)]
    pub(crate) maxconn: u32,
    /// How long old HAProxy processes may finish their connections after a reload (a number and its unit, e.g. 30m or 90s).
    #[arg(
        long,
        help_heading = heading::HAPROXY,
        env = "ROUTEGEN_HARD_STOP_AFTER",
        value_name = "DURATION",
        default_value = "30m",
        value_parser = super::duration::haproxy_duration
    )]
    pub(crate) hard_stop_after: Duration,
    /// Old HAProxy workers allowed to finish their connections after reloads (HAProxy's mworker-max-reloads; routegen also stops the oldest beyond it).
    #[arg(long, help_heading = heading::HAPROXY, env = "ROUTEGEN_MAX_OLD_WORKERS", value_name = "N", default_value_t = render::DEFAULT_MAX_OLD_WORKERS, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_old_workers: u32,
    /// Sticky cookie name for Routes without the cookie_name annotation.
    #[arg(long, env = "ROUTEGEN_COOKIE_NAME", value_name = "NAME")]
    pub(crate) cookie_name: Option<CookieName>,
    /// CA (PEM) verifying reencrypt servers of Routes without a destination CA (with verifyhost <svc>.<ns>.svc).
    #[arg(long, env = "ROUTEGEN_SERVICE_CA_FILE", value_name = "FILE")]
    pub(crate) service_ca_file: Option<PathBuf>,
    /// Never offer or use HTTP/2.
    #[arg(long, env = "ROUTEGEN_DISABLE_HTTP2")]
    disable_http2: bool,
    /// Keep loopback endpoint addresses (local use and tests only).
    #[arg(long, env = "ROUTEGEN_ALLOW_LOOPBACK_ENDPOINTS")]
    pub(crate) allow_loopback_endpoints: bool,
    /// Global header actions for every HTTP and TLS-terminated request: a YAML/JSON file like the IngressController's spec.httpHeaders.actions ({request: [...], response: [...]}); a Route's request actions run after these, its response actions before.
    #[arg(long, env = "ROUTEGEN_HEADER_ACTIONS", value_name = "FILE")]
    pub(crate) header_actions: Option<PathBuf>,
    /// Empty spare backends per backend shape (HAProxy): `routegen run` serves a new Route of a shape HAProxy runs from a spare, without a reload, until the next reload; 0 turns them off.
    #[arg(long, env = "ROUTEGEN_SPARE_BACKENDS", value_name = "N", default_value_t = spares::DEFAULT_PER_SHAPE, value_parser = clap::value_parser!(u64).range(0..=spares::PER_SHAPE_LIMIT as u64).map(|n| n as usize))]
    pub(crate) spare_backends: usize,
    /// Spare backends in all, the shapes of the most Routes first (each is a backend HAProxy parses and holds).
    #[arg(long, env = "ROUTEGEN_MAX_SPARE_BACKENDS", value_name = "N", default_value_t = spares::DEFAULT_MAX, value_parser = clap::value_parser!(u64).range(0..=spares::MAX_LIMIT as u64).map(|n| n as usize))]
    pub(crate) max_spare_backends: usize,
    /// Where HAProxy serves its own Prometheus metrics (its built-in exporter, GET /metrics): :PORT, IPv4:PORT or [IPv6]:PORT (comma-separated); none by default. HAProxy target only.
    #[arg(
        long,
        env = "ROUTEGEN_HAPROXY_METRICS_BIND",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub(crate) haproxy_metrics_bind: Vec<BindAddr>,
    /// Where HAProxy sends its access log (one line per request or TCP connection, `option httplog`/`tcplog`) and its events: syslog over UDP to IPv4:PORT or [IPv6]:PORT (facility local0); none by default. HAProxy target only.
    #[arg(long, env = "ROUTEGEN_HAPROXY_LOG", value_name = "ADDR")]
    pub(crate) haproxy_log: Option<std::net::SocketAddr>,
}

impl RenderFlags {
    /// The pipeline options, with the state and run directories defaulted
    /// as given when the flags leave them out.
    pub(crate) fn options(
        &self,
        router: &RouterArgs,
        default_state_dir: Option<&Path>,
        default_run_dir: &str,
    ) -> PipelineOptions {
        PipelineOptions {
            target: render::Target::Haproxy,
            router: router.settings(),
            template_dir: self.template_dir.clone(),
            state_dir: self
                .state_dir
                .clone()
                .or_else(|| default_state_dir.map(Path::to_path_buf)),
            default_cert: self.default_cert.clone(),
            service_ca_file: self.service_ca_file.clone(),
            cookie_name: self.cookie_name.clone(),
            disable_http2: self.disable_http2,
            allow_loopback_endpoints: self.allow_loopback_endpoints,
            http_bind: self.http_bind.clone(),
            https_bind: self.https_bind.clone(),
            run_dir: self
                .run_dir
                .clone()
                .unwrap_or_else(|| default_run_dir.to_string()),
            maxconn: self.maxconn,
            hard_stop_after: self.hard_stop_after,
            max_old_workers: self.max_old_workers,
            header_actions_file: self.header_actions.clone(),
            spares: SpareSettings {
                per_shape: self.spare_backends,
                max: self.max_spare_backends,
            },
            haproxy_metrics_bind: self.haproxy_metrics_bind.clone(),
            haproxy_log: self.haproxy_log,
            haproxy_events: false,
        }
    }
}
