//! `routegen run`: the sidecar (SPEC §8, §9, §11).
//!
//! Keeps a live HAProxy in step with a source of manifests:
//!
//! 1. The source is watched *before* the first read ([`DirWatcher`]), so
//!    nothing changes unseen; bursts of changes are coalesced by its
//!    debounce.
//! 2. Each wake-up runs one [`core::Core::pass`] on a blocking thread:
//!    load → admit → plan → render → [`Applier::apply`] (staging,
//!    `haproxy -c`, atomic `current` swap, history). A tree HAProxy refuses
//!    is never swapped in; [`isolate`] finds the Routes responsible, leaves
//!    them out (reported as `ExtendedValidationFailed`) and tries again,
//!    within bounds. Identical output is a no-op.
//! 3. A new tree is followed by a reload ([`Reloader`]; confirmed through
//!    `show proc` with the master CLI). Reloads are at least
//!    `--min-reload-interval` apart, stretched to the last apply + reload
//!    duration when that is longer. Failed reloads are retried with backoff.
//!    After each reload the old-worker cap is enforced.
//! 4. `/readyz` turns ready once a validated tree is current *and* HAProxy
//!    is confirmed serving it (spawned on it, or reloaded onto it), or, for
//!    `--reload signal:`/`command:`, once the reload was requested; with
//!    `--reload none`, once the tree is current.
//! 5. SIGTERM/SIGINT: stop the operations endpoint, stop a HAProxy we
//!    started (or adopted), exit 0.
//!
//! With `--spawn-haproxy`, HAProxy runs as `haproxy -W -S <out>/master.sock
//! -p <out>/haproxy.pid -f <out>/current/haproxy.cfg -f
//! <out>/current/backends` in its own process group. When routegen starts and a master started by an earlier routegen
//! (killed without a chance to stop it) still answers on that socket with
//! that configuration path, it is *adopted*: reloaded onto the current tree
//! rather than duplicated next to it.

pub mod core;
pub mod isolate;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use routegen_core::admit::{self, Verdict};
use routegen_host::apply::Applier;
use routegen_host::config::PipelineOptions;
use routegen_host::metrics::{Metrics, Outcome};
use routegen_host::reload::{
    HaproxyProcess, MasterCli, ReloadError, ReloadMethod, ReloadOptions, Reloader,
};
use routegen_host::serve::{self, Health};
use routegen_host::source::dir::DirWatcher;
use routegen_k8s::source::{KubeArgs, KubeRun};

use self::core::{Core, CoreSettings, IsolationLimits, Pass, PassOutcome};

/// Where manifests come from (`--source`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `dir:PATH`: a watched directory of manifests.
    Dir(PathBuf),
    /// `kube`: the Kubernetes API (watchers and reflectors; Route status).
    Kube,
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("dir", path)) if !path.trim().is_empty() => Ok(Source::Dir(PathBuf::from(path))),
            Some(("dir", _)) => Err("`dir:` needs a directory: dir:PATH".into()),
            _ if s == "kube" => Ok(Source::Kube),
            _ => Err(format!(
                "unknown source `{s}`; expected dir:PATH (a directory of manifests) or kube (the Kubernetes API)"
            )),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir(p) => write!(f, "dir:{}", p.display()),
            Source::Kube => f.write_str("kube"),
        }
    }
}

/// A duration for routegen's own timers: `<digits>[us|ms|s|m|h]` (no unit
/// = seconds), `0` allowed.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{s}`: expected <digits>[us|ms|s|m|h], e.g. 500ms or 1s"))?;
    let d = match unit {
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.saturating_mul(60)),
        "h" => Duration::from_secs(n.saturating_mul(3600)),
        _ => {
            return Err(format!(
                "`{s}`: unknown unit `{unit}`; use us, ms, s, m or h"
            ))
        }
    };
    Ok(d)
}

/// Everything `run` needs (the CLI's flags, resolved).
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub source: Source,
    /// The apply directory (`--out`).
    pub out: PathBuf,
    /// Namespace for objects without one.
    pub namespace: String,
    pub pipeline: PipelineOptions,
    /// How to reload; with `spawn_haproxy` this is the master CLI on
    /// [`RunConfig::master_socket`].
    pub reload: ReloadMethod,
    pub spawn_haproxy: bool,
    pub haproxy_bin: PathBuf,
    /// `--nginx-bin`: validates trees when `pipeline.target` is nginx.
    pub nginx_bin: PathBuf,
    /// Operations endpoint (`/healthz`, `/readyz`, `/metrics`).
    pub listen: SocketAddr,
    pub min_reload_interval: Duration,
    /// Quiet time that ends a burst of changes.
    pub debounce: Duration,
    pub keep_trees: usize,
    pub max_old_workers: usize,
    pub limits: IsolationLimits,
    /// `--source kube`: the API source's and status writer's flags.
    pub kube: KubeArgs,
    /// `--source kube`: watch only this namespace (`--namespace` given
    /// explicitly); `None`: all namespaces.
    pub kube_namespace: Option<String>,
}

/// What wakes the loop: the directory watcher or the Kubernetes source.
enum Input {
    Dir(DirWatcher),
    Kube(Box<KubeRun>),
}

impl Input {
    /// Cancel-safe; for `kube`, the first change is the first full sync.
    async fn changed(&mut self) -> Option<()> {
        match self {
            Input::Dir(w) => w.changed().await,
            Input::Kube(k) => k.changed().await.map(|_| ()),
        }
    }
}

impl RunConfig {
    /// `<out>/master.sock`: the master CLI of a spawned HAProxy.
    pub fn master_socket(out: &Path) -> PathBuf {
        out.join("master.sock")
    }

    /// `<out>/haproxy.pid`: the pidfile of a spawned HAProxy.
    pub fn pidfile(out: &Path) -> PathBuf {
        out.join("haproxy.pid")
    }
}

/// A future resolving when SIGTERM or SIGINT arrives. The handlers are
/// installed when this is *called* (inside a Tokio runtime), so a signal
/// arriving before the future is first polled is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
                    _ = int.recv() => tracing::info!("SIGINT received; shutting down"),
                }
            }
            _ => {
                tracing::error!("cannot install signal handlers; only Ctrl-C stops routegen");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// The HAProxy routegen manages with `--spawn-haproxy`.
#[derive(Debug)]
enum Managed {
    /// Not managed (external HAProxy, or none).
    Nothing,
    /// Started by this process.
    Spawned(Box<HaproxyProcess>),
    /// Started by an earlier routegen that died; found on the master socket.
    Adopted { pid: u32 },
}

impl Managed {
    fn is_running(&mut self) -> bool {
        match self {
            Managed::Nothing => false,
            Managed::Spawned(p) => p.is_running(),
            Managed::Adopted { pid } => pid_alive(*pid),
        }
    }

    fn describe(&self) -> String {
        match self {
            Managed::Nothing => "none".into(),
            Managed::Spawned(p) => format!("spawned master {}", p.pid()),
            Managed::Adopted { pid } => format!("adopted master {pid}"),
        }
    }

    /// Graceful stop: SIGTERM, bounded wait, then SIGKILL of the group.
    async fn stop(self) {
        match self {
            Managed::Nothing => {}
            Managed::Spawned(p) => {
                let pid = p.pid();
                match p.shutdown().await {
                    Ok(status) => tracing::info!(pid, %status, "HAProxy stopped"),
                    Err(e) => tracing::error!(pid, error = %e, "stopping HAProxy"),
                }
            }
            Managed::Adopted { pid } => {
                let p = Pid::from_raw(pid as i32);
                let _ = kill(p, Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(10);
                while pid_alive(pid) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if pid_alive(pid) {
                    tracing::warn!(
                        pid,
                        "adopted HAProxy did not stop after SIGTERM; killing it"
                    );
                    let _ = killpg(p, Signal::SIGKILL);
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while pid_alive(pid) && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                tracing::info!(pid, "adopted HAProxy stopped");
            }
        }
    }
}

/// True while `pid` exists and is not a zombie.
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// The command line of `pid`, arguments joined by spaces.
fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Exponential backoff for retries (1 s doubling up to 30 s).
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    at: Option<tokio::time::Instant>,
}

impl Backoff {
    fn schedule(&mut self) -> Duration {
        let delay = Duration::from_secs(1 << self.failures.min(5)).min(Duration::from_secs(30));
        self.failures += 1;
        self.at = Some(tokio::time::Instant::now() + delay);
        delay
    }

    fn reset(&mut self) {
        self.failures = 0;
        self.at = None;
    }
}

/// The `reason` label of a successful reload.
fn method_label(method: &ReloadMethod) -> &'static str {
    match method {
        ReloadMethod::MasterCli(_) => "master_cli",
        ReloadMethod::Signal(_) => "signal",
        ReloadMethod::Command(_) => "command",
        ReloadMethod::None => "none",
    }
}

/// What the loop remembers between passes, for logging only what changed.
#[derive(Debug, Default)]
struct Reported {
    rejections: BTreeMap<String, String>,
    warnings: BTreeSet<String>,
    first: bool,
}

/// Run the sidecar until `shutdown` resolves. Errors are startup errors
/// (bad flags, unusable directories, port in use); once running, failures
/// are logged, counted and retried, never fatal.
pub async fn run<F>(config: RunConfig, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let health = Health::new();
    let metrics = Arc::new(Metrics::new());
    tracing::info!(
        source = %config.source,
        out = %config.out.display(),
        reload = %config.reload,
        spawn_haproxy = config.spawn_haproxy,
        "routegen run starting"
    );

    // 1. Watch before the first read.
    let mut input = match &config.source {
        Source::Dir(source_dir) => Input::Dir(
            DirWatcher::start(source_dir, config.debounce)
                .with_context(|| format!("cannot watch {}", source_dir.display()))?,
        ),
        Source::Kube => Input::Kube(Box::new(
            KubeRun::start(&config.kube, config.kube_namespace.clone(), config.debounce)
                .await
                .context("cannot use the Kubernetes API")?,
        )),
    };
    let kube_source = match &input {
        Input::Kube(k) => Some(k.source.clone()),
        Input::Dir(_) => None,
    };

    // 2. Operations endpoint.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let serve_task = tokio::spawn(serve::serve_on(
        listener,
        health.clone(),
        metrics.clone(),
        async move {
            let _ = stop_rx.wait_for(|stop| *stop).await;
        },
    ));

    // 3. The pipeline configuration and the apply directory (blocking: may
    //    generate the default certificate).
    let setup = {
        let config = config.clone();
        let kube_source = kube_source.clone();
        tokio::task::spawn_blocking(move || -> anyhow::Result<Core> {
            let pipeline = routegen_host::config::load(&config.pipeline)?;
            let validator = match config.pipeline.target {
                routegen_render::Target::Haproxy => routegen_host::apply::Validator::Haproxy {
                    bin: config.haproxy_bin.clone(),
                },
                routegen_render::Target::Nginx => routegen_host::apply::Validator::Nginx {
                    bin: config.nginx_bin.clone(),
                },
            };
            let applier = Applier::open_with(&config.out, validator, config.keep_trees)
                .with_context(|| format!("cannot use output directory {}", config.out.display()))?;
            let source_dir = match &config.source {
                Source::Dir(dir) => dir.clone(),
                Source::Kube => PathBuf::new(),
            };
            Ok(Core::new(
                CoreSettings {
                    source_dir,
                    kube: kube_source,
                    namespace: config.namespace.clone(),
                    out: config.out.clone(),
                    haproxy_bin: config.haproxy_bin.clone(),
                    limits: config.limits,
                },
                pipeline,
                applier,
            ))
        })
        .await
        .context("setup task")?
    };
    let core = match setup {
        Ok(core) => Arc::new(Mutex::new(core)),
        Err(e) => {
            let _ = stop_tx.send(true);
            let _ = serve_task.await;
            return Err(e);
        }
    };
    let current_config = lock(&core).applier().current_config();
    let has_current = lock(&core).applier().current_id().is_some();

    let reloader = Reloader::new(config.reload.clone(), ReloadOptions::default());
    let master_socket = RunConfig::master_socket(&config.out);
    let mut managed = Managed::Nothing;
    // Whether HAProxy may serve something other than `current`.
    let mut need_reload = !matches!(config.reload, ReloadMethod::None);
    let mut start_backoff = Backoff::default();
    if config.spawn_haproxy && has_current {
        match start_haproxy(&config, &current_config, &master_socket).await {
            Ok(m) => {
                // A spawned HAProxy serves `current`; an adopted one may not.
                need_reload = matches!(m, Managed::Adopted { .. });
                managed = m;
            }
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "cannot start HAProxy on the last good tree; will retry"
                );
                start_backoff.schedule();
            }
        }
    }

    let mut reload_backoff = Backoff::default();
    let mut apply_backoff = Backoff::default();
    let mut last_reload_end: Option<Instant> = None;
    let mut last_cost = Duration::ZERO;
    let mut ever_ready = false;
    let mut reported = Reported {
        first: true,
        ..Reported::default()
    };
    // A directory is read at once; the Kubernetes source wakes the loop
    // when its first full sync is complete.
    let mut pending = matches!(input, Input::Dir(_));
    if let Input::Kube(k) = &input {
        health.set_not_ready(k.source.not_synced_reason());
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    tokio::pin!(shutdown);

    loop {
        if pending {
            pending = false;
            // Reloads at least `gap` apart, the gap adapting to slow cycles.
            if let Some(end) = last_reload_end {
                let gap = config.min_reload_interval.max(last_cost);
                let at = end + gap;
                if Instant::now() < at {
                    tokio::select! {
                        _ = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                        _ = &mut shutdown => break,
                    }
                }
            }
            let cycle = Instant::now();
            let pass = {
                let core = core.clone();
                match tokio::task::spawn_blocking(move || lock(&core).pass()).await {
                    Ok(pass) => pass,
                    Err(e) => {
                        tracing::error!(error = %e, "apply task failed; retrying");
                        apply_backoff.schedule();
                        continue;
                    }
                }
            };
            report_pass(&pass, &metrics, &mut reported);
            // Route status for a tree that is served (never blocks).
            if let (Input::Kube(k), Some(verdicts)) = (&input, &pass.verdicts) {
                if matches!(
                    pass.outcome,
                    PassOutcome::Applied { .. } | PassOutcome::Unchanged
                ) {
                    k.publish(verdicts);
                }
            }
            match &pass.outcome {
                PassOutcome::Applied { .. } => {
                    apply_backoff.reset();
                    if !matches!(config.reload, ReloadMethod::None) {
                        need_reload = true;
                    }
                }
                PassOutcome::Unchanged => apply_backoff.reset(),
                PassOutcome::Failed { .. } => {
                    let delay = apply_backoff.schedule();
                    tracing::info!(retry_in = ?delay, "will retry the apply");
                }
                _ => {}
            }
            let has_current = lock(&core).applier().current_id().is_some();

            // Make HAProxy serve `current`.
            if has_current {
                if config.spawn_haproxy
                    && !managed.is_running()
                    && start_backoff
                        .at
                        .is_none_or(|at| tokio::time::Instant::now() >= at)
                {
                    match start_haproxy(&config, &current_config, &master_socket).await {
                        Ok(m) => {
                            need_reload = matches!(m, Managed::Adopted { .. });
                            managed = m;
                            start_backoff.reset();
                        }
                        Err(e) => {
                            let delay = start_backoff.schedule();
                            tracing::error!(error = format!("{e:#}"), retry_in = ?delay, "cannot start HAProxy");
                        }
                    }
                }
                let can_reload = !config.spawn_haproxy || managed.is_running();
                if need_reload && can_reload {
                    // A spawned HAProxy that dies mid-reload would otherwise
                    // hold us until the confirmation timeout.
                    let result = tokio::select! {
                        r = reloader.reload() => Some(r),
                        () = wait_exit(&mut managed), if config.spawn_haproxy => None,
                    };
                    let Some(result) = result else {
                        tracing::error!(haproxy = %managed.describe(), "HAProxy exited during a reload; restarting it");
                        managed = Managed::Nothing;
                        pending = true;
                        continue;
                    };
                    match result {
                        Ok(outcome) => {
                            need_reload = false;
                            reload_backoff.reset();
                            metrics.record_reload(
                                Outcome::Success,
                                method_label(&config.reload),
                                outcome.duration,
                            );
                            if outcome.confirmed {
                                metrics.set_old_workers(outcome.old_worker_count);
                                enforce_cap(&reloader, config.max_old_workers, &metrics).await;
                            }
                            last_reload_end = Some(Instant::now());
                            last_cost = cycle.elapsed();
                        }
                        Err(e) => {
                            let delay = reload_backoff.schedule();
                            metrics.record_reload(Outcome::Failure, e.reason(), Duration::ZERO);
                            tracing::error!(error = %e, retry_in = ?delay, "reload failed; HAProxy keeps serving its previous configuration");
                            if matches!(e, ReloadError::Io { .. } | ReloadError::Timeout { .. })
                                && config.spawn_haproxy
                            {
                                tracing::warn!(haproxy = %managed.describe(), "master CLI unreachable");
                            }
                        }
                    }
                }
            }

            // Readiness.
            let serving =
                has_current && !need_reload && (!config.spawn_haproxy || managed.is_running());
            if serving {
                if !ever_ready {
                    match config.reload {
                        ReloadMethod::None => tracing::info!(
                            "ready: a validated tree is current (--reload none: HAProxy is reloaded by someone else)"
                        ),
                        ReloadMethod::MasterCli(_) => {
                            tracing::info!("ready: HAProxy confirmed serving a validated tree")
                        }
                        _ => tracing::info!("ready: a validated tree is current and HAProxy was asked to reload"),
                    }
                }
                ever_ready = true;
                health.set_ready();
            } else if !ever_ready || (config.spawn_haproxy && !managed.is_running()) {
                health.set_not_ready(not_ready_reason(has_current, need_reload, &pass));
            }
        }

        let retry_at = [reload_backoff.at, apply_backoff.at, start_backoff.at]
            .into_iter()
            .flatten()
            .min();
        tokio::select! {
            biased;
            _ = &mut shutdown => break,
            Some(()) = input.changed() => pending = true,
            _ = sleep_until_opt(retry_at), if retry_at.is_some() => {
                for b in [&mut reload_backoff, &mut apply_backoff, &mut start_backoff] {
                    if b.at.is_some_and(|at| at <= tokio::time::Instant::now()) {
                        b.at = None;
                    }
                }
                pending = true;
            }
            _ = tick.tick() => {
                ticks += 1;
                if let Input::Kube(k) = &input {
                    if !ever_ready && !k.source.is_synced() {
                        health.set_not_ready(k.source.not_synced_reason());
                    }
                }
                if config.spawn_haproxy
                    && !matches!(managed, Managed::Nothing)
                    && !managed.is_running()
                {
                    let recent = match &managed {
                        Managed::Spawned(p) => p.recent_output().join("\n"),
                        _ => String::new(),
                    };
                    tracing::error!(haproxy = %managed.describe(), output = %recent, "HAProxy exited; restarting it");
                    managed = Managed::Nothing;
                    health.set_not_ready("HAProxy exited; restarting it");
                    pending = true;
                }
                if ticks.is_multiple_of(5) && (!config.spawn_haproxy || managed.is_running()) {
                    if let Ok(Some(n)) = reloader.old_workers().await {
                        metrics.set_old_workers(n);
                    }
                }
            }
        }
    }

    tracing::info!("stopping");
    health.set_not_ready("shutting down");
    let _ = stop_tx.send(true);
    managed.stop().await;
    match serve_task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "operations endpoint"),
        Err(e) => tracing::error!(error = %e, "operations endpoint task"),
    }
    tracing::info!("stopped");
    Ok(())
}

fn lock(core: &Mutex<Core>) -> std::sync::MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

/// Resolves once the managed HAProxy is no longer running (polled).
async fn wait_exit(managed: &mut Managed) {
    while managed.is_running() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn not_ready_reason(has_current: bool, need_reload: bool, pass: &Pass) -> String {
    if !has_current {
        match &pass.outcome {
            PassOutcome::LoadFailed(e) => format!("no valid configuration yet: {e}"),
            PassOutcome::Refused { why, .. } => {
                format!("no valid configuration yet: HAProxy refused it ({why})")
            }
            PassOutcome::RenderFailed(e) => format!("no valid configuration yet: {e}"),
            PassOutcome::Failed { error, .. } => format!("no valid configuration yet: {error}"),
            _ => "no valid configuration yet".into(),
        }
    } else if need_reload {
        "HAProxy has not confirmed serving the current configuration".into()
    } else {
        "HAProxy is not running".into()
    }
}

/// Stop old workers beyond the cap and refresh the gauge.
async fn enforce_cap(reloader: &Reloader, max: usize, metrics: &Metrics) {
    match reloader.enforce_old_worker_cap(max).await {
        Ok(stopped) if !stopped.is_empty() => {
            tracing::info!(?stopped, max, "stopped old HAProxy workers beyond the cap");
            if let Ok(Some(n)) = reloader.old_workers().await {
                metrics.set_old_workers(n);
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot enforce the old-worker cap"),
    }
}

/// How long a master an earlier routegen left running (alive per its
/// pidfile, on our configuration) may stay silent on its socket, e.g. in
/// the middle of a reload, before routegen gives up on adopting it.
const ADOPT_WAIT: Duration = Duration::from_secs(60);

/// Start HAProxy on `config_path`, or adopt the master an earlier routegen
/// left running on the same socket and configuration.
async fn start_haproxy(
    config: &RunConfig,
    config_path: &Path,
    master_socket: &Path,
) -> anyhow::Result<Managed> {
    let wanted = config_path.display().to_string();
    // The master an earlier routegen started (its pidfile), if it still
    // runs on our configuration: while it is busy (a reload re-reads the
    // whole configuration, seconds for a large one) its socket does not
    // answer, and starting a second master next to it would be wrong.
    let pidfile_master = std::fs::read_to_string(RunConfig::pidfile(&config.out))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|pid| pid_alive(*pid) && cmdline(*pid).unwrap_or_default().contains(&wanted));
    let deadline = tokio::time::Instant::now() + ADOPT_WAIT;
    while master_socket.exists() {
        let cli = MasterCli::new(master_socket).with_io_timeout(Duration::from_secs(1));
        match cli.show_proc().await {
            Ok(list) => {
                let pid = list.master_pid;
                let cmd = cmdline(pid).unwrap_or_default();
                let backends = config_path
                    .parent()
                    .map(|tree| tree.join(routegen_render::haproxy::BACKENDS_DIR))
                    .unwrap_or_default();
                if cmd.contains(&wanted)
                    && pid_alive(pid)
                    && !cmd.contains(&backends.display().to_string())
                {
                    // Started by a routegen from before backends/ existed:
                    // reloading it onto a split tree would fail every time.
                    anyhow::bail!(
                        "the HAProxy master {pid} left running on {} was started without -f {} (an older routegen); stop it (kill -USR1 {pid} stops it softly) and start routegen again",
                        master_socket.display(),
                        backends.display()
                    );
                }
                if cmd.contains(&wanted) && pid_alive(pid) {
                    tracing::info!(
                        pid,
                        "adopting the HAProxy master left running by an earlier routegen"
                    );
                    return Ok(Managed::Adopted { pid });
                }
                anyhow::bail!(
                    "{} is answered by another HAProxy master (pid {pid}, command line {cmd:?}); stop it or use another --out",
                    master_socket.display()
                );
            }
            Err(e) => match pidfile_master {
                Some(pid) if pid_alive(pid) => {
                    if tokio::time::Instant::now() >= deadline {
                        anyhow::bail!(
                            "the HAProxy master {pid} an earlier routegen started is running but does not answer on {} ({e}); stop it, or wait and restart",
                            master_socket.display()
                        );
                    }
                    tracing::info!(pid, error = %e, "the HAProxy master left running is busy; waiting to adopt it");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                _ => break,
            },
        }
    }
    let extra = [
        std::ffi::OsString::from("-p"),
        RunConfig::pidfile(&config.out).into_os_string(),
    ];
    let process = HaproxyProcess::spawn(&config.haproxy_bin, config_path, master_socket, &extra)
        .await
        .context("starting HAProxy")?;
    Ok(Managed::Spawned(Box::new(process)))
}

/// Log and count one pass.
fn report_pass(pass: &Pass, metrics: &Metrics, reported: &mut Reported) {
    metrics.record_render(pass.render_time);
    // Every tree HAProxy refused counts as a failed apply; the last one is
    // the pass's own outcome when isolation gave up.
    let refused_rounds = match pass.outcome {
        PassOutcome::Refused { .. } => pass.refused.len().saturating_sub(1),
        _ => pass.refused.len(),
    };
    for refused in &pass.refused[..refused_rounds] {
        metrics.record_apply(Outcome::Failure, "validation_failed", refused.after);
    }
    let (result, reason) = match &pass.outcome {
        PassOutcome::Applied { .. } => (Outcome::Success, pass.outcome.metric_reason()),
        PassOutcome::Unchanged => (Outcome::Unchanged, pass.outcome.metric_reason()),
        other => (Outcome::Failure, other.metric_reason()),
    };
    metrics.record_apply(result, reason, pass.duration);
    if let Some(verdicts) = &pass.verdicts {
        metrics.record_verdicts(verdicts);
        metrics.set_excluded_routes(
            pass.excluded
                .keys()
                .map(|k| (k.namespace.as_str(), k.name.as_str())),
        );
        report_verdicts(verdicts, pass, reported);
    }
    let warnings: BTreeSet<String> = pass.warnings.iter().cloned().collect();
    for w in warnings.difference(&reported.warnings) {
        tracing::warn!("{w}");
    }
    if pass.verdicts.is_some() {
        reported.warnings = warnings;
    }

    let counts = pass.verdicts.as_ref().map(|v| {
        let admitted = v.iter().filter(|v| v.is_admitted()).count();
        (admitted, v.len() - admitted)
    });
    match &pass.outcome {
        PassOutcome::Applied {
            id,
            summary,
            validation,
        } => {
            let (admitted, rejected) = counts.unwrap_or_default();
            let routes = pass
                .route_changes
                .as_ref()
                .map(describe_route_changes)
                .unwrap_or_default();
            tracing::info!(
                load_ms = pass.load_time.as_millis() as u64,
                render_ms = pass.render_time.as_millis() as u64,
                validation_ms = validation.as_millis() as u64,
                duration_ms = pass.duration.as_millis() as u64,
                "applied tree {id}: files {summary}; Routes {admitted} admitted, {rejected} rejected{}; {routes}",
                if pass.excluded.is_empty() { String::new() } else { format!(" ({} left out by fault isolation)", pass.excluded.len()) },
            );
        }
        PassOutcome::Unchanged => {
            tracing::debug!(duration_ms = pass.duration.as_millis() as u64, "no change")
        }
        PassOutcome::LoadFailed(e) => {
            tracing::error!(error = %e, "cannot load the manifests; keeping the last good tree")
        }
        PassOutcome::RenderFailed(e) => {
            tracing::error!(error = %e, "cannot render; keeping the last good tree")
        }
        PassOutcome::Refused { output, why } => tracing::error!(
            %why,
            "HAProxy refused the configuration and no Route alone could be left out; keeping the last good tree. HAProxy said:\n{output}"
        ),
        PassOutcome::Failed { error, reason } => {
            tracing::error!(%error, %reason, "apply failed; keeping the last good tree")
        }
    }
}

fn describe_route_changes(c: &core::RouteChanges) -> String {
    if c.is_empty() {
        return "no Route changed".into();
    }
    const SHOWN: usize = 10;
    let list = |sign: &str, keys: &[routegen_core::model::ObjectKey]| -> Option<String> {
        if keys.is_empty() {
            return None;
        }
        let mut s: Vec<String> = keys
            .iter()
            .take(SHOWN)
            .map(|k| format!("{sign}{k}"))
            .collect();
        if keys.len() > SHOWN {
            s.push(format!("… {} more", keys.len() - SHOWN));
        }
        Some(s.join(" "))
    };
    let parts: Vec<String> = [
        list("+", &c.added),
        list("~", &c.changed),
        list("-", &c.removed),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "Routes changed: {} added, {} changed, {} removed: {}",
        c.added.len(),
        c.changed.len(),
        c.removed.len(),
        parts.join(" ")
    )
}

/// Log rejections as they appear or change (check-style lines), and
/// Routes admitted again.
fn report_verdicts(verdicts: &[Verdict], pass: &Pass, reported: &mut Reported) {
    let mut now = BTreeMap::new();
    for v in verdicts {
        if let Some(r) = v.rejection() {
            let host = if v.host.is_empty() {
                "-".to_string()
            } else {
                admit::host::printable(&v.host)
            };
            let line = format!("{} {host}: {}: {}", v.key, r.reason, r.message);
            now.insert(v.key.to_string(), line);
        }
    }
    let excluded: BTreeSet<String> = pass.excluded.keys().map(|k| k.to_string()).collect();
    for (key, line) in &now {
        if reported.rejections.get(key) != Some(line) {
            let excluded = excluded.contains(key);
            if excluded {
                tracing::warn!(route = %key, "rejected (left out by fault isolation): {line}");
            } else {
                tracing::warn!(route = %key, "rejected: {line}");
            }
        }
    }
    if !reported.first {
        let present: BTreeSet<String> = verdicts.iter().map(|v| v.key.to_string()).collect();
        for key in reported.rejections.keys() {
            if !now.contains_key(key) && present.contains(key) {
                tracing::info!(route = %key, "admitted again");
            }
        }
    }
    reported.first = false;
    reported.rejections = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_forms() {
        assert_eq!(
            "dir:/etc/routes".parse::<Source>(),
            Ok(Source::Dir("/etc/routes".into()))
        );
        assert_eq!(Source::Dir("x".into()).to_string(), "dir:x");
        assert_eq!("kube".parse::<Source>(), Ok(Source::Kube));
        assert_eq!(Source::Kube.to_string(), "kube");
        let e = "dir:".parse::<Source>().unwrap_err();
        assert!(e.contains("dir:PATH"), "{e}");
        let e = "/etc/routes".parse::<Source>().unwrap_err();
        assert!(e.contains("expected dir:PATH"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("1d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| b.schedule().as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        b.reset();
        assert_eq!(b.schedule().as_secs(), 1);
    }
}
