//! `routegen run`: the sidecar. This module only resolves the flags into a
//! [`RunConfig`] (defaults under `--out`, the reload method implied by
//! `--spawn-haproxy`, the combinations refused) and starts the runtime;
//! the loop is the library's [`routegen::run`].
//!
//! Exit status: 0 after a clean shutdown (SIGTERM or SIGINT), 3 when it
//! cannot start; see [`super::status`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use routegen::run::{self, core::IsolationLimits, RunConfig, Source};
use routegen_host::config::PipelineOptions;
use routegen_host::reload::ReloadMethod;
use routegen_host::telemetry::{self, LogFormat};
use routegen_k8s::source::{in_cluster, KubeArgs};
use routegen_render::{self as render};

use super::args::{heading, RenderFlags, RouterArgs, TargetArg};
use super::duration;

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// Where objects come from: dir:PATH (a directory of manifests, watched recursively) or kube (the Kubernetes API) [default: kube inside a cluster, i.e. with KUBERNETES_SERVICE_HOST set].
    #[arg(long, help_heading = heading::SOURCE, env = "ROUTEGEN_SOURCE", value_name = "SOURCE")]
    pub(crate) source: Option<Source>,
    /// dir: namespace for objects that have none [default: default]; kube: watch only this namespace [default: all].
    #[arg(long, help_heading = heading::SOURCE, env = "ROUTEGEN_NAMESPACE")]
    pub(crate) namespace: Option<String>,
    /// Quiet time that ends a burst of file changes, one apply per burst (a number and its unit, e.g. 200ms).
    #[arg(long, help_heading = heading::SOURCE, env = "ROUTEGEN_DEBOUNCE", value_name = "DURATION", default_value = "200ms", value_parser = duration::parse)]
    pub(crate) debounce: std::time::Duration,
    /// Apply directory: current -> trees/<id>, history, failed trees, sockets.
    #[arg(long, help_heading = heading::OUTPUT, env = "ROUTEGEN_OUT", value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Good trees kept under <out>/trees (the current one included).
    #[arg(long, help_heading = heading::OUTPUT, env = "ROUTEGEN_KEEP_TREES", value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) keep_trees: u32,
    /// The nginx binary (validation with -t) for --target nginx.
    #[arg(
        long,
        help_heading = heading::OUTPUT, env = "ROUTEGEN_NGINX_BIN",
        value_name = "PATH",
        default_value = "nginx"
    )]
    pub(crate) nginx_bin: PathBuf,
    /// Start HAProxy (master-worker, `-W -S <out>/master.sock`) on the current tree and manage it.
    #[arg(long, help_heading = heading::HAPROXY, env = "ROUTEGEN_SPAWN_HAPROXY")]
    pub(crate) spawn_haproxy: bool,
    /// The HAProxy binary (validation with -c, and --spawn-haproxy).
    #[arg(
        long,
        help_heading = heading::HAPROXY, env = "ROUTEGEN_HAPROXY_BIN",
        value_name = "PATH",
        default_value = "haproxy"
    )]
    pub(crate) haproxy_bin: PathBuf,
    /// How to reload HAProxy: master-cli:SOCKET, signal:PIDFILE, command:CMD or none [default: none; with --spawn-haproxy: master-cli:<out>/master.sock].
    #[arg(long, help_heading = heading::RELOADS, env = "ROUTEGEN_RELOAD", value_name = "METHOD")]
    pub(crate) reload: Option<ReloadMethod>,
    /// Apply endpoint, certificate and Route-removal changes through HAProxy's runtime API, without a reload (HAProxy target with master-cli: or --spawn-haproxy); off: every change reloads.
    #[arg(long, help_heading = heading::RELOADS, env = "ROUTEGEN_RUNTIME_API", value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub(crate) runtime_api: String,
    /// Minimum time between two reloads (a number and its unit, e.g. 500ms or 1s); stretched to the last apply + reload duration when longer.
    #[arg(long, help_heading = heading::RELOADS, env = "ROUTEGEN_MIN_RELOAD_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = duration::parse)]
    pub(crate) min_reload_interval: std::time::Duration,
    /// How long HAProxy may take to load a configuration: until a started HAProxy's worker answers, and until a reload's new worker is confirmed (a number and its unit; HAProxy needs about 3 s at 10,000 Routes and 30 s at 100,000 on two cores).
    #[arg(long, help_heading = heading::RELOADS, env = "ROUTEGEN_HAPROXY_LOAD_TIMEOUT", value_name = "DURATION", default_value = "2m", value_parser = duration::parse)]
    pub(crate) haproxy_load_timeout: std::time::Duration,
    #[command(flatten, next_help_heading = heading::POLICY)]
    pub(crate) router: RouterArgs,
    #[command(flatten, next_help_heading = heading::RENDERING)]
    pub(crate) target: TargetArg,
    #[command(flatten, next_help_heading = heading::RENDERING)]
    pub(crate) render: RenderFlags,
    /// `--source kube`'s flags, under [`heading::SOURCE`] (the watches) and
    /// [`heading::STATUS`] (the status writer).
    #[command(flatten, next_help_heading = heading::STATUS)]
    pub(crate) kube: KubeArgs,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(
        long,
        help_heading = heading::OPERATIONS, env = "ROUTEGEN_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:1936"
    )]
    pub(crate) listen: SocketAddr,
    /// On --listen, a request's head must be complete this long after the server starts waiting for it (a new connection, or a kept-alive one after its last response: also the idle timeout).
    #[arg(long, help_heading = heading::OPERATIONS, env = "ROUTEGEN_OPS_HEADER_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = duration::parse)]
    pub(crate) ops_header_timeout: std::time::Duration,
    /// On --listen, at most this many connections at once; one more is closed at once.
    #[arg(long, help_heading = heading::OPERATIONS, env = "ROUTEGEN_OPS_MAX_CONNECTIONS", value_name = "N", default_value = "64", value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub(crate) ops_max_connections: u32,
    /// Per-Route metric series (routegen_route_warnings, routegen_certificate_expiry_timestamp_seconds): one series per Route; off keeps the aggregates (routegen_certificate_expiry_earliest_timestamp_seconds) for fleets too large to scrape per Route.
    #[arg(long, help_heading = heading::OPERATIONS, env = "ROUTEGEN_PER_ROUTE_METRICS", value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub(crate) per_route_metrics: String,
    /// Log format.
    #[arg(long, help_heading = heading::LOGGING, env = "ROUTEGEN_LOG_FORMAT", value_enum, default_value = "human")]
    pub(crate) log_format: LogFormat,
}

/// Run `run` until SIGTERM or SIGINT; returns its exit status (see the
/// module documentation).
pub(crate) fn exec(args: RunArgs) -> ExitCode {
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
            // Target `routegen` (the binary's root, where this line was
            // logged before the CLI had modules): log filters keep working.
            tracing::error!(target: "routegen", "{e:#}");
            super::error()
        }
    }
}

/// The flags of `run`, resolved: default run and state directories under
/// --out, the reload method implied by --spawn-haproxy.
fn run_config(args: &RunArgs) -> anyhow::Result<RunConfig> {
    anyhow::ensure!(
        !args.haproxy_load_timeout.is_zero(),
        "--haproxy-load-timeout must be above 0 (HAProxy could never start or reload)"
    );
    anyhow::ensure!(
        !args.ops_header_timeout.is_zero(),
        "--ops-header-timeout must be above 0 (it would close every connection before its request)"
    );
    let out =
        std::path::absolute(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let source = match &args.source {
        Some(Source::Dir(dir)) => Source::Dir(
            std::path::absolute(dir).with_context(|| format!("--source dir:{}", dir.display()))?,
        ),
        Some(Source::Kube) => Source::Kube,
        None if in_cluster() => Source::Kube,
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
        // routegen reads HAProxy's event messages from <run-dir>/events.sock.
        haproxy_events: args.target.proxy == render::Target::Haproxy,
        ..args.render.options(
            &args.router,
            Some(&state_dir),
            &run_dir.display().to_string(),
        )
    };
    if args.render.run_dir.is_none() {
        create_private_dir(&out)?;
    }
    // HAProxy binds its sockets in the run directory but does not create
    // it: a missing one (the default under --out, or a given --run-dir)
    // is made here, 0700. A relative --run-dir is left to the pipeline
    // options, which refuse it.
    let run_dir = Path::new(&pipeline.run_dir);
    if run_dir.is_absolute() {
        create_private_dir(run_dir).context("--run-dir")?;
    }
    // The runtime API needs a reload that is confirmed (the master CLI):
    // only then is it known when HAProxy runs the current tree.
    let stats_socket = (args.runtime_api == "on"
        && matches!(pipeline.target, routegen_render::Target::Haproxy)
        && matches!(reload, ReloadMethod::MasterCli(_)))
    .then(|| Path::new(&pipeline.run_dir).join(routegen_render::haproxy::STATS_SOCKET));
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
        ops_limits: routegen_host::serve::OpsLimits {
            header_read_timeout: args.ops_header_timeout,
            max_connections: args.ops_max_connections as usize,
            ..Default::default()
        },
        min_reload_interval: args.min_reload_interval,
        haproxy_load_timeout: args.haproxy_load_timeout,
        debounce: args.debounce,
        keep_trees: args.keep_trees as usize,
        max_old_workers: args.render.max_old_workers as usize,
        limits: IsolationLimits::default(),
        stats_socket,
        per_route_metrics: args.per_route_metrics == "on",
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::super::args::heading;
    use super::super::Cli;

    /// Every flag of `run` is under one of the headings of `run --help`,
    /// and every heading has flags.
    #[test]
    fn every_run_flag_has_a_heading() {
        let cli = Cli::command();
        let run = cli.find_subcommand("run").expect("run");
        let mut used = std::collections::BTreeSet::new();
        for arg in run.get_arguments() {
            let Some(long) = arg.get_long() else {
                continue;
            };
            if matches!(long, "help" | "version") {
                continue;
            }
            let h = arg.get_help_heading();
            assert!(
                h.is_some_and(|h| heading::ALL.contains(&h)),
                "--{long}: heading {h:?} is not one of {:?}",
                heading::ALL
            );
            used.extend(h);
        }
        for h in heading::ALL {
            assert!(used.contains(h), "no flag under {h}");
        }
    }
}
