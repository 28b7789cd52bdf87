//! `routegen` command line: thin glue over the library.

/// mimalloc: at 10,000 Routes and more, glibc malloc spends a quarter of
/// a pass consolidating and searching free lists (measured in
/// BENCHMARKS.md); mimalloc keeps passes and peak memory lower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

use routegen::run::{self, core::IsolationLimits, RunConfig, Source};
use routegen_core::admit::{self, Verdict};
use routegen_core::values::{CookieName, Duration};
use routegen_core::RouterSettings;
use routegen_host::config::PipelineOptions;
use routegen_host::defaultcert;
use routegen_host::reload::ReloadMethod;
use routegen_host::source::files;
use routegen_host::telemetry::{self, LogFormat};
use routegen_render::output::{self, OutputTree};
use routegen_render::pipeline;
use routegen_render::{self as render, BindAddr};

/// OpenShift Routes to a validated HAProxy configuration.
#[derive(Parser, Debug)]
#[command(name = "routegen", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Decide which Routes are admitted and why not.
    ///
    /// Exit status: 0 all admitted, 2 at least one rejected, 1 unreadable input.
    Check(CheckArgs),
    /// Render the HAProxy configuration tree (dry run: no cluster, no HAProxy).
    ///
    /// Prints every file under a `# ==> path <==` header (private keys
    /// redacted unless --show-secrets), or writes the tree with --out.
    /// Rejected Routes are listed on stderr and produce no configuration.
    ///
    /// Exit status: 0 rendered (even when some Routes are rejected), 1 error.
    Render(RenderArgs),
    /// Show what `render` would change in an existing output directory.
    ///
    /// Prints a unified diff from --against DIR to the new tree, private
    /// keys redacted.
    ///
    /// Exit status: 0 no change, 1 changes, 2 error.
    Diff(DiffArgs),
    /// The sidecar: watch manifests, apply validated trees, reload HAProxy.
    ///
    /// Watches --source, renders on every change (bursts coalesced),
    /// validates each tree with `haproxy -c`, swaps it in atomically under
    /// --out (keeping the last good trees), reloads HAProxy and serves
    /// /healthz, /readyz and /metrics on --listen. Routes HAProxy itself
    /// refuses are left out and reported as ExtendedValidationFailed.
    /// With --spawn-haproxy it also starts HAProxy (master-worker) itself.
    ///
    /// Runs until SIGTERM or SIGINT; exit status 0 after a clean shutdown,
    /// 1 when it cannot start.
    Run(Box<RunArgs>),
}

/// Where manifests come from.
#[derive(Args, Debug)]
struct InputArgs {
    /// Manifest files or directories (recursive: *.yaml, *.yml, *.json); `-` reads stdin.
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true, num_args = 1..)]
    paths: Vec<PathBuf>,
    /// Namespace for objects that have none.
    #[arg(long, env = "ROUTEGEN_NAMESPACE", default_value = "default")]
    namespace: String,
}

/// Router settings that change admission (SPEC §3).
#[derive(Args, Debug)]
struct RouterArgs {
    /// Domain for Routes that set spec.subdomain: `<subdomain>.<domain>`.
    #[arg(long, env = "ROUTEGEN_ROUTER_DOMAIN", value_name = "DOMAIN")]
    router_domain: Option<String>,
    /// Host for Routes with neither host nor subdomain; `${name}` and `${namespace}` are substituted.
    #[arg(long, env = "ROUTEGEN_HOSTNAME_TEMPLATE", value_name = "TEMPLATE")]
    hostname_template: Option<String>,
    /// Admit Routes with wildcardPolicy Subdomain.
    #[arg(long, env = "ROUTEGEN_ALLOW_WILDCARD_ROUTES")]
    allow_wildcard_routes: bool,
    /// Admit only hosts in these domains (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_ALLOWED_DOMAINS",
        value_name = "DOMAINS",
        value_delimiter = ','
    )]
    allowed_domains: Vec<String>,
    /// Refuse hosts in these domains (comma-separated); checked before --allowed-domains.
    #[arg(
        long,
        env = "ROUTEGEN_DENIED_DOMAINS",
        value_name = "DOMAINS",
        value_delimiter = ','
    )]
    denied_domains: Vec<String>,
    /// Let Routes in different namespaces share a host (paths must still differ).
    #[arg(long, env = "ROUTEGEN_DISABLE_NAMESPACE_OWNERSHIP_CHECK")]
    disable_namespace_ownership_check: bool,
}

impl RouterArgs {
    fn settings(&self) -> RouterSettings {
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
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    /// One aligned line per Route.
    Text,
    /// A JSON array of {namespace, name, host, admitted, reason, message, warnings}.
    Json,
}

#[derive(Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    router: RouterArgs,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        env = "ROUTEGEN_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    output: OutputFormat,
    #[command(flatten)]
    target: TargetArg,
}

/// `--target`: which proxy a tree is for (render, diff, check, run).
#[derive(Args, Debug, Clone, Copy)]
struct TargetArg {
    /// Proxy to render for: haproxy (haproxy.cfg) or nginx (nginx.conf; see
    /// docs/nginx.md). check lists what nginx cannot express; run validates
    /// with `nginx -t` and reloads with --reload command:… (no --spawn-haproxy).
    #[arg(
        long = "target",
        env = "ROUTEGEN_TARGET",
        value_name = "PROXY",
        default_value = "haproxy"
    )]
    proxy: render::Target,
}

/// What render and diff share: input, admission and rendering settings.
#[derive(Args, Debug)]
struct TreeArgs {
    #[command(flatten)]
    input: InputArgs,
    #[command(flatten)]
    router: RouterArgs,
    #[command(flatten)]
    render: RenderFlags,
    #[command(flatten)]
    target: TargetArg,
}

/// Rendering settings shared by render, diff and run.
#[derive(Args, Debug)]
struct RenderFlags {
    /// Directory with templates replacing the built-in ones (same file names, e.g. haproxy.cfg.tera).
    #[arg(long, env = "ROUTEGEN_TEMPLATE_DIR", value_name = "DIR")]
    template_dir: Option<PathBuf>,
    /// Where the self-signed default certificate is generated once and kept [default: /var/lib/routegen; for run: <out>/state].
    #[arg(long, env = "ROUTEGEN_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Default certificate: private key and certificate chain in one PEM file.
    #[arg(long, env = "ROUTEGEN_DEFAULT_CERT", value_name = "FILE")]
    default_cert: Option<PathBuf>,
    /// Address(es) of the plain HTTP frontend: :PORT, IPv4:PORT or [IPv6]:PORT (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_HTTP_BIND",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = ":80"
    )]
    http_bind: Vec<BindAddr>,
    /// Address(es) of the TLS frontend (comma-separated).
    #[arg(
        long,
        env = "ROUTEGEN_HTTPS_BIND",
        value_name = "ADDR",
        value_delimiter = ',',
        default_value = ":443"
    )]
    https_bind: Vec<BindAddr>,
    /// Directory of HAProxy's Unix sockets (runtime API, internal TLS frontend) [default: /var/lib/haproxy/run; for run: <out>/run].
    #[arg(long, env = "ROUTEGEN_RUN_DIR", value_name = "DIR")]
    run_dir: Option<String>,
    /// HAProxy global maxconn.
    #[arg(long, env = "ROUTEGEN_MAXCONN", value_name = "N", default_value_t = render::DEFAULT_MAXCONN)]
    maxconn: u32,
    /// How long old HAProxy processes may finish their connections after a reload.
    #[arg(
        long,
        env = "ROUTEGEN_HARD_STOP_AFTER",
        value_name = "DURATION",
        default_value = "30m"
    )]
    hard_stop_after: Duration,
    /// Sticky cookie name for Routes without the cookie_name annotation.
    #[arg(long, env = "ROUTEGEN_COOKIE_NAME", value_name = "NAME")]
    cookie_name: Option<CookieName>,
    /// CA (PEM) verifying reencrypt servers of Routes without a destination CA (with verifyhost <svc>.<ns>.svc).
    #[arg(long, env = "ROUTEGEN_SERVICE_CA_FILE", value_name = "FILE")]
    service_ca_file: Option<PathBuf>,
    /// Never offer or use HTTP/2.
    #[arg(long, env = "ROUTEGEN_DISABLE_HTTP2")]
    disable_http2: bool,
    /// Keep loopback endpoint addresses (local use and tests only).
    #[arg(long, env = "ROUTEGEN_ALLOW_LOOPBACK_ENDPOINTS")]
    allow_loopback_endpoints: bool,
}

impl RenderFlags {
    /// The pipeline options, with the state and run directories defaulted
    /// as given when the flags leave them out.
    fn options(
        &self,
        router: &RouterArgs,
        default_state_dir: &Path,
        default_run_dir: &str,
    ) -> PipelineOptions {
        PipelineOptions {
            target: render::Target::Haproxy,
            router: router.settings(),
            template_dir: self.template_dir.clone(),
            state_dir: self
                .state_dir
                .clone()
                .unwrap_or_else(|| default_state_dir.to_path_buf()),
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
        }
    }
}

#[derive(Args, Debug)]
struct RenderArgs {
    #[command(flatten)]
    tree: TreeArgs,
    /// Write the tree into this directory (created 0700; it must be new, empty, or written by routegen before) instead of printing it.
    #[arg(long, env = "ROUTEGEN_OUT", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Print private keys instead of redacting them.
    #[arg(long, env = "ROUTEGEN_SHOW_SECRETS")]
    show_secrets: bool,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Where objects come from: dir:PATH (a directory of manifests, watched recursively) or kube (the Kubernetes API) [default: kube inside a cluster, i.e. with KUBERNETES_SERVICE_HOST set].
    #[arg(long, env = "ROUTEGEN_SOURCE", value_name = "SOURCE")]
    source: Option<Source>,
    /// Apply directory: current -> trees/<id>, history, failed trees, sockets.
    #[arg(long, env = "ROUTEGEN_OUT", value_name = "DIR")]
    out: PathBuf,
    /// How to reload HAProxy: master-cli:SOCKET, signal:PIDFILE, command:CMD or none [default: none; with --spawn-haproxy: master-cli:<out>/master.sock].
    #[arg(long, env = "ROUTEGEN_RELOAD", value_name = "METHOD")]
    reload: Option<ReloadMethod>,
    /// Start HAProxy (master-worker, `-W -S <out>/master.sock`) on the current tree and manage it.
    #[arg(long, env = "ROUTEGEN_SPAWN_HAPROXY")]
    spawn_haproxy: bool,
    /// The HAProxy binary (validation with -c, and --spawn-haproxy).
    #[arg(
        long,
        env = "ROUTEGEN_HAPROXY_BIN",
        value_name = "PATH",
        default_value = "haproxy"
    )]
    haproxy_bin: PathBuf,
    #[command(flatten)]
    target: TargetArg,
    /// The nginx binary (validation with -t) for --target nginx.
    #[arg(
        long,
        env = "ROUTEGEN_NGINX_BIN",
        value_name = "PATH",
        default_value = "nginx"
    )]
    nginx_bin: PathBuf,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "ROUTEGEN_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:1936"
    )]
    listen: SocketAddr,
    /// Log format.
    #[arg(long, env = "ROUTEGEN_LOG_FORMAT", value_enum, default_value = "human")]
    log_format: LogFormat,
    /// Minimum time between two reloads; stretched to the last apply + reload duration when longer.
    #[arg(long, env = "ROUTEGEN_MIN_RELOAD_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = run::parse_duration)]
    min_reload_interval: std::time::Duration,
    /// Quiet time that ends a burst of file changes (one apply per burst).
    #[arg(long, env = "ROUTEGEN_DEBOUNCE", value_name = "DURATION", default_value = "200ms", value_parser = run::parse_duration)]
    debounce: std::time::Duration,
    /// Good trees kept under <out>/trees (the current one included).
    #[arg(long, env = "ROUTEGEN_KEEP_TREES", value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    keep_trees: u32,
    /// Old HAProxy workers allowed to keep draining after reloads; the oldest beyond this are stopped.
    #[arg(
        long,
        env = "ROUTEGEN_MAX_OLD_WORKERS",
        value_name = "N",
        default_value_t = 5
    )]
    max_old_workers: usize,
    /// dir: namespace for objects that have none [default: default]; kube: watch only this namespace [default: all].
    #[arg(long, env = "ROUTEGEN_NAMESPACE")]
    namespace: Option<String>,
    #[command(flatten)]
    router: RouterArgs,
    #[command(flatten)]
    render: RenderFlags,
    #[command(flatten)]
    kube: routegen_k8s::source::KubeArgs,
}

#[derive(Args, Debug)]
struct DiffArgs {
    #[command(flatten)]
    tree: TreeArgs,
    /// The output directory to compare with.
    #[arg(long, env = "ROUTEGEN_AGAINST", value_name = "DIR")]
    against: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check(&args),
        Command::Render(args) => match render_cmd(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        },
        Command::Diff(args) => match diff_cmd(&args) {
            Ok(false) => ExitCode::SUCCESS,
            Ok(true) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Run(args) => run_cmd(*args),
    }
}

fn run_cmd(args: RunArgs) -> ExitCode {
    telemetry::init(args.log_format, "");
    match run_config(&args).and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async { run::run(config, run::shutdown_signal()).await })
    }) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// The flags of `run`, resolved: default run and state directories under
/// --out, the reload method implied by --spawn-haproxy.
fn run_config(args: &RunArgs) -> anyhow::Result<RunConfig> {
    let out =
        std::path::absolute(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let source = match &args.source {
        Some(Source::Dir(dir)) => Source::Dir(
            std::path::absolute(dir).with_context(|| format!("--source dir:{}", dir.display()))?,
        ),
        Some(Source::Kube) => Source::Kube,
        None if routegen_k8s::source::in_cluster() => Source::Kube,
        None => anyhow::bail!(
            "--source is required outside a cluster: dir:PATH (a directory of manifests) or kube"
        ),
    };
    args.kube.validate().map_err(anyhow::Error::msg)?;
    if args.target.proxy == render::Target::Nginx {
        if args.spawn_haproxy {
            anyhow::bail!(
                "--spawn-haproxy starts HAProxy; it cannot be combined with --target nginx"
            );
        }
        if matches!(
            args.reload,
            Some(ReloadMethod::MasterCli(_) | ReloadMethod::Signal(_))
        ) {
            anyhow::bail!(
                "--target nginx reloads with --reload command:… (e.g. command:nginx -s reload -p PREFIX -c OUT/current/nginx.conf) or none; master-cli: and signal: (SIGUSR2) are HAProxy's"
            );
        }
    }
    let master = RunConfig::master_socket(&out);
    let reload = match (&args.reload, args.spawn_haproxy) {
        (None, false) => ReloadMethod::None,
        (None, true) => ReloadMethod::MasterCli(master),
        (Some(ReloadMethod::MasterCli(p)), true)
            if std::path::absolute(p).ok() == Some(master.clone()) =>
        {
            ReloadMethod::MasterCli(master)
        }
        (Some(other), true) => anyhow::bail!(
            "--spawn-haproxy reloads through master-cli:{}; drop --reload {other}",
            master.display()
        ),
        (Some(method), false) => method.clone(),
    };
    let run_dir = out.join("run");
    let state_dir = out.join("state");
    let pipeline = PipelineOptions {
        target: args.target.proxy,
        ..args
            .render
            .options(&args.router, &state_dir, &run_dir.display().to_string())
    };
    if args.render.run_dir.is_none() {
        create_private_dir(&out)?;
        create_private_dir(&run_dir)?;
    }
    Ok(RunConfig {
        source,
        out,
        namespace: args.namespace.clone().unwrap_or_else(|| "default".into()),
        kube_namespace: args.namespace.clone(),
        kube: args.kube.clone(),
        pipeline,
        reload,
        spawn_haproxy: args.spawn_haproxy,
        haproxy_bin: args.haproxy_bin.clone(),
        nginx_bin: args.nginx_bin.clone(),
        listen: args.listen,
        min_reload_interval: args.min_reload_interval,
        debounce: args.debounce,
        keep_trees: args.keep_trees as usize,
        max_old_workers: args.max_old_workers,
        limits: IsolationLimits::default(),
    })
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Load, admit, plan and render; rejected Routes and warnings go to stderr.
fn build_tree(args: &TreeArgs) -> anyhow::Result<OutputTree> {
    let loaded = files::load_paths(&args.input.paths, &args.input.namespace)?;
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let options = args.render.options(
        &args.router,
        Path::new(defaultcert::DEFAULT_STATE_DIR),
        render::DEFAULT_RUN_DIR,
    );
    let options = PipelineOptions {
        target: args.target.proxy,
        ..options
    };
    let config = routegen_host::config::load(&options)?;
    let rendered =
        pipeline::render_snapshot_at(&loaded.snapshot, &config, routegen_host::clock::now_unix())?;
    for v in &rendered.verdicts {
        if let Some(r) = v.rejection() {
            let host = if v.host.is_empty() {
                "-".to_string()
            } else {
                admit::host::printable(&v.host)
            };
            eprintln!("rejected: {} {host}: {}: {}", v.key, r.reason, r.message);
        }
        for w in &v.warnings {
            eprintln!("warning: {}: {w}", v.key);
        }
    }
    for warning in rendered
        .plan
        .warnings
        .iter()
        .chain(&rendered.target_warnings)
    {
        eprintln!("warning: {warning}");
    }
    Ok(rendered.tree)
}

fn render_cmd(args: &RenderArgs) -> anyhow::Result<()> {
    let tree = build_tree(&args.tree)?;
    match &args.out {
        Some(dir) => {
            let removed = routegen_host::tree::write_tree(&tree, dir)?;
            for path in removed {
                eprintln!("removed stale file: {path}");
            }
        }
        None => {
            use std::io::Write;
            let text = output::print_tree(&tree, args.show_secrets);
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(text.as_bytes())
                .context("cannot write to stdout")?;
            stdout.flush().context("cannot write to stdout")?;
        }
    }
    Ok(())
}

/// Returns whether anything changed.
fn diff_cmd(args: &DiffArgs) -> anyhow::Result<bool> {
    let tree = build_tree(&args.tree)?;
    let diff = routegen_host::tree::diff_tree(&tree, &args.against)?;
    print!("{diff}");
    Ok(!diff.is_empty())
}

fn check(args: &CheckArgs) -> ExitCode {
    let loaded = match files::load_paths(&args.input.paths, &args.input.namespace) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    for warning in &loaded.warnings {
        eprintln!("warning: {warning}");
    }
    let verdicts = admit::admit_at(
        &loaded.snapshot,
        &args.router.settings(),
        routegen_host::clock::now_unix(),
    );
    if args.target.proxy == render::Target::Nginx {
        let plan = routegen_core::plan::plan(&verdicts, &loaded.snapshot, &Default::default());
        match render::nginx::warnings(&plan) {
            Ok(warnings) => warnings.iter().for_each(|w| eprintln!("warning: {w}")),
            Err(e) => eprintln!("warning: nginx: {e}"),
        }
    }
    match args.output {
        OutputFormat::Json => {
            let reports: Vec<_> = verdicts.iter().map(Verdict::report).collect();
            match serde_json::to_string_pretty(&reports) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("error: cannot encode JSON: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        OutputFormat::Text => print!("{}", text_report(&verdicts)),
    }
    if verdicts.iter().all(Verdict::is_admitted) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// One aligned line per Route: `namespace/name  host  Admitted|Reason: message  [warnings]`.
fn text_report(verdicts: &[Verdict]) -> String {
    let name_width = verdicts
        .iter()
        .map(|v| v.key.to_string().len())
        .max()
        .unwrap_or(0);
    let host_width = verdicts
        .iter()
        .map(|v| v.host.len().max(1))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for v in verdicts {
        let state = match v.rejection() {
            None => "Admitted".to_string(),
            Some(r) => format!("{}: {}", r.reason, one_line(&r.message)),
        };
        let host = if v.host.is_empty() {
            "-"
        } else {
            v.host.as_str()
        };
        let mut line = format!(
            "{:<nw$}  {:<hw$}  {state}",
            v.key.to_string(),
            admit::host::printable(host),
            nw = name_width,
            hw = host_width
        );
        if !v.warnings.is_empty() {
            line.push_str("  [warnings: ");
            line.push_str(&one_line(&v.warnings.join("; ")));
            line.push(']');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Keep a report line one line: control characters are shown escaped.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}
