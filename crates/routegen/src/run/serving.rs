//! Making HAProxy serve the current tree ([`Serving`]): start (or adopt)
//! it with `--spawn-haproxy`, reload it, pace the reloads, cap the old
//! workers.
//!
//! # Contract
//!
//! * A new tree that the runtime API could not make HAProxy serve is
//!   followed by a reload (confirmed through `show proc` with the master
//!   CLI). Reloads are paced ([`Serving::reload_due_at`]): at least
//!   `--min-reload-interval` apart, stretched to the last reload's cost
//!   when that is longer, and doubled for each old worker still draining
//!   (up to 16 times), so reload-needing changes coalesce while old
//!   workers pile up; changes that arrive meanwhile are applied to the
//!   current tree (and, when live, to HAProxy) and ride the same reload.
//! * Failed starts and reloads are retried with backoff; HAProxy keeps
//!   serving its previous configuration meanwhile.
//! * After each confirmed reload the old-worker cap is enforced and the
//!   gauge refreshed; every fifth tick the gauge is refreshed anyway.
//! * A managed HAProxy that exits (seen on a tick, or during a reload) is
//!   forgotten and started again by the next pass. Starts (spawned,
//!   adopted, failed; first, after an exit, retry) and unasked exits are
//!   counted (`routegen_haproxy_starts_total`, `routegen_haproxy_exits_total`).
//! * HAProxy's event messages arrive on `<run-dir>/events.sock`, bound
//!   here whoever started HAProxy, and are logged unless this process
//!   spawned that HAProxy and logs its stderr, which carries the same
//!   messages (`routegen_host::reload::events`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use routegen_host::metrics::{Metrics, Outcome};
use routegen_host::reload::events::EventsReceiver;
use routegen_host::reload::{ReloadError, ReloadMethod, ReloadOptions, Reloader};

use super::backoff::Backoff;
use super::config::RunConfig;
use super::haproxy::{start_haproxy, wait_exit, Managed};
use super::LOG_TARGET;

/// What [`Serving::serve_current`] came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Served {
    /// Done for this pass (HAProxy serves the tree, or a retry is due).
    Done,
    /// The managed HAProxy exited (found before or during the reload):
    /// run a pass again at once (it starts HAProxy again).
    HaproxyExited,
}

/// HAProxy, as far as the loop is concerned.
pub(super) struct Serving {
    reloader: Reloader,
    master_socket: PathBuf,
    /// `<out>/current/haproxy.cfg`: what a spawned HAProxy runs on.
    current_config: PathBuf,
    managed: Managed,
    /// Whether HAProxy may serve something other than `current`.
    need_reload: bool,
    start_backoff: Backoff,
    /// Why the last start of a spawned HAProxy failed (cleared by a
    /// start that succeeds): `/readyz` says it.
    start_error: Option<String>,
    reload_backoff: Backoff,
    last_reload_end: Option<Instant>,
    /// The last reload's duration (until the new worker was confirmed).
    last_cost: Duration,
    /// Old workers still draining, as last seen.
    old_workers: usize,
    /// HAProxy was started on `current`, or a reload onto it confirmed,
    /// since the loop last asked ([`Serving::take_runs_current`]).
    runs_current: bool,
    /// HAProxy's event messages (`<run-dir>/events.sock`), logged unless
    /// they come from a HAProxy whose output this process already reads.
    events: Option<EventsReceiver>,
    metrics: Arc<Metrics>,
    /// The `reason` of the next start in `routegen_haproxy_starts_total`.
    next_start: &'static str,
}

impl Serving {
    /// Nothing started yet; `current_config` is the configuration path a
    /// spawned HAProxy runs on.
    pub(super) fn new(
        config: &RunConfig,
        current_config: PathBuf,
        metrics: Arc<Metrics>,
    ) -> Serving {
        Serving {
            reloader: Reloader::new(
                config.reload.clone(),
                ReloadOptions {
                    confirm_timeout: config.haproxy_load_timeout,
                    ..ReloadOptions::default()
                },
            ),
            master_socket: RunConfig::master_socket(&config.out),
            current_config,
            managed: Managed::Nothing,
            need_reload: !matches!(config.reload, ReloadMethod::None),
            start_backoff: Backoff::default(),
            start_error: None,
            reload_backoff: Backoff::default(),
            last_reload_end: None,
            last_cost: Duration::ZERO,
            old_workers: 0,
            runs_current: false,
            events: bind_events(config),
            metrics,
            next_start: "first_start",
        }
    }

    /// Count a start of the managed HAProxy (see the metric's reasons).
    fn count_start(&mut self, result: &'static str) {
        self.metrics.record_haproxy_start(result, self.next_start);
        self.next_start = if result == "failed" {
            "retry"
        } else {
            "after_exit"
        };
    }

    /// Count an exit of the managed HAProxy nobody asked for.
    fn count_exit(&mut self, reason: &'static str) {
        self.metrics.record_haproxy_exit(reason);
        self.next_start = "after_exit";
    }

    /// A HAProxy was started or adopted: it serves `current` when spawned;
    /// an adopted one may not, and its messages reach this process only
    /// through the events socket.
    fn started(&mut self, m: Managed) {
        self.count_start(match m {
            Managed::Adopted { .. } => "adopted",
            _ => "spawned",
        });
        self.need_reload = matches!(m, Managed::Adopted { .. });
        self.runs_current = !self.need_reload;
        if let Some(events) = &self.events {
            events.set_forwarded(matches!(m, Managed::Spawned(_)));
        }
        self.managed = m;
    }

    /// At start-up, with `--spawn-haproxy` and a last good tree: start
    /// HAProxy on it (or adopt the master left running); a failure is
    /// retried later.
    pub(super) async fn start_on_last_good(&mut self, config: &RunConfig) {
        match start_haproxy(config, &self.current_config, &self.master_socket).await {
            Ok(m) => self.started(m),
            Err(e) => {
                self.count_start("failed");
                let error = format!("{e:#}");
                let hint = start_hint(&error);
                tracing::error!(
                    target: LOG_TARGET,
                    error,
                    hint = hint.as_deref().unwrap_or(""),
                    "cannot start HAProxy on the last good tree; will retry"
                );
                self.start_error = Some(hint.unwrap_or(error));
                self.start_backoff.schedule();
            }
        }
    }

    /// When the pending reload may happen (`None`: none is pending, or it
    /// may happen now): see the module contract.
    pub(super) fn reload_due_at(&self, min_reload_interval: Duration) -> Option<Instant> {
        if !self.need_reload {
            return None;
        }
        let gap = min_reload_interval.max(self.last_cost) * (1u32 << self.old_workers.min(4));
        self.last_reload_end.map(|end| end + gap)
    }

    /// Whether HAProxy was started on `current`, or reloaded onto it,
    /// since the last call.
    pub(super) fn take_runs_current(&mut self) -> bool {
        std::mem::take(&mut self.runs_current)
    }

    /// A new tree is current: HAProxy must be reloaded onto it (unless
    /// `--reload none`).
    pub(super) fn tree_applied(&mut self, config: &RunConfig) {
        if !matches!(config.reload, ReloadMethod::None) {
            self.need_reload = true;
        }
    }

    /// Make HAProxy serve `current` (call only when a tree is current):
    /// start it if it is managed and not running (unless a start retry is
    /// not due yet), then reload it if needed and due ([`Serving::reload_due_at`]).
    pub(super) async fn serve_current(&mut self, config: &RunConfig) -> Served {
        let metrics = self.metrics.clone();
        // A HAProxy that died since the last tick: logged with its last
        // output and forgotten, as on a tick; the loop runs a pass again,
        // which starts it.
        if self.exited(config) {
            return Served::HaproxyExited;
        }
        if config.spawn_haproxy
            && !self.managed.is_running()
            && self
                .start_backoff
                .at
                .is_none_or(|at| tokio::time::Instant::now() >= at)
        {
            match start_haproxy(config, &self.current_config, &self.master_socket).await {
                Ok(m) => {
                    self.started(m);
                    self.start_backoff.reset();
                    self.start_error = None;
                }
                Err(e) => {
                    self.count_start("failed");
                    let delay = self.start_backoff.schedule();
                    let error = format!("{e:#}");
                    let hint = start_hint(&error);
                    tracing::error!(target: LOG_TARGET, error, hint = hint.as_deref().unwrap_or(""), retry_in = ?delay, "cannot start HAProxy");
                    self.start_error = Some(hint.unwrap_or(error));
                }
            }
        }
        let can_reload = !config.spawn_haproxy || self.managed.is_running();
        let due = self
            .reload_due_at(config.min_reload_interval)
            .is_none_or(|at| Instant::now() >= at);
        if self.need_reload && can_reload && due {
            // A spawned HAProxy that dies mid-reload would otherwise
            // hold us until the confirmation timeout.
            let result = tokio::select! {
                r = self.reloader.reload() => Some(r),
                () = wait_exit(&mut self.managed), if config.spawn_haproxy => None,
            };
            let Some(result) = result else {
                tracing::error!(target: LOG_TARGET, haproxy = %self.managed.describe(), "HAProxy exited during a reload; restarting it");
                self.count_exit("during_reload");
                self.managed = Managed::Nothing;
                return Served::HaproxyExited;
            };
            match result {
                Ok(outcome) => {
                    self.need_reload = false;
                    self.reload_backoff.reset();
                    metrics.record_reload(
                        Outcome::Success,
                        method_label(&config.reload),
                        "",
                        outcome.duration,
                    );
                    if outcome.confirmed {
                        metrics.set_old_workers(outcome.old_worker_count);
                        self.old_workers = outcome.old_worker_count;
                        self.runs_current = true;
                        enforce_cap(&self.reloader, config.max_old_workers, &metrics).await;
                    }
                    self.last_reload_end = Some(Instant::now());
                    self.last_cost = outcome.duration;
                }
                Err(e) => {
                    let delay = self.reload_backoff.schedule();
                    metrics.record_reload(
                        Outcome::Failure,
                        method_label(&config.reload),
                        e.reason(),
                        Duration::ZERO,
                    );
                    tracing::error!(target: LOG_TARGET, error = %e, retry_in = ?delay, "reload failed; HAProxy keeps serving its previous configuration");
                    if matches!(e, ReloadError::Io { .. } | ReloadError::Timeout { .. })
                        && config.spawn_haproxy
                    {
                        tracing::warn!(target: LOG_TARGET, haproxy = %self.managed.describe(), "master CLI unreachable");
                    }
                }
            }
        }
        Served::Done
    }

    /// HAProxy serves `current` (given that a tree is current): no reload
    /// pending, and a managed HAProxy is running.
    pub(super) fn serves_current(&mut self, config: &RunConfig) -> bool {
        !self.need_reload && (!config.spawn_haproxy || self.managed.is_running())
    }

    /// A managed HAProxy is not running.
    pub(super) fn haproxy_down(&mut self, config: &RunConfig) -> bool {
        config.spawn_haproxy && !self.managed.is_running()
    }

    /// Whether HAProxy may serve something other than `current`.
    /// Why the last start of a spawned HAProxy failed, while it does.
    pub(super) fn start_error(&self) -> Option<&str> {
        self.start_error.as_deref()
    }

    pub(super) fn needs_reload(&self) -> bool {
        self.need_reload
    }

    /// On a tick: whether the managed HAProxy has exited since the last
    /// look; if so it is logged (with its last output) and forgotten, so
    /// the next pass starts it again.
    pub(super) fn exited(&mut self, config: &RunConfig) -> bool {
        if config.spawn_haproxy
            && !matches!(self.managed, Managed::Nothing)
            && !self.managed.is_running()
        {
            let recent = match &self.managed {
                Managed::Spawned(p) => routegen_host::reload::output::summarize(&p.recent_output()),
                _ => String::new(),
            };
            tracing::error!(target: LOG_TARGET, haproxy = %self.managed.describe(), output = %recent, "HAProxy exited; restarting it");
            self.count_exit("while_serving");
            self.managed = Managed::Nothing;
            return true;
        }
        false
    }

    /// Refresh the old-worker gauge (when HAProxy is there to ask).
    pub(super) async fn refresh_old_workers(&mut self, config: &RunConfig) {
        if !config.spawn_haproxy || self.managed.is_running() {
            if let Ok(Some(n)) = self.reloader.old_workers().await {
                self.metrics.set_old_workers(n);
                self.old_workers = n;
            }
        }
    }

    /// The start and reload retries, for the loop's timer.
    pub(super) fn backoffs(&mut self) -> [&mut Backoff; 2] {
        [&mut self.reload_backoff, &mut self.start_backoff]
    }

    /// When the next start or reload retry, or the paced reload, is due,
    /// if any.
    pub(super) fn retry_at(&self, min_reload_interval: Duration) -> Option<tokio::time::Instant> {
        let paced = self
            .reload_due_at(min_reload_interval)
            .map(tokio::time::Instant::from_std);
        [self.reload_backoff.at, self.start_backoff.at, paced]
            .into_iter()
            .flatten()
            .min()
    }

    /// Stop a HAProxy we started (or adopted).
    pub(super) async fn stop(self) {
        self.managed.stop().await;
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

/// Stop old workers beyond the cap and refresh the gauge.
async fn enforce_cap(reloader: &Reloader, max: usize, metrics: &Metrics) {
    match reloader.enforce_old_worker_cap(max).await {
        Ok(stopped) if !stopped.is_empty() => {
            tracing::info!(target: LOG_TARGET, ?stopped, max, "stopped old HAProxy workers beyond the cap");
            if let Ok(Some(n)) = reloader.old_workers().await {
                metrics.set_old_workers(n);
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(target: LOG_TARGET, error = %e, "cannot enforce the old-worker cap")
        }
    }
}

/// What to do about a start failure HAProxy explained, in routegen's
/// terms; `None` when the output has no known cause.
///
/// `Cannot raise FD limit to N, limit is M`: HAProxy needs about two
/// descriptors per connection of `--maxconn`, plus listeners and health
/// checks, and may not exceed the process's `nofile` limit (raised only as
/// far as the hard limit allows). `haproxy -c` does not check it.
pub(super) fn start_hint(output: &str) -> Option<String> {
    let rest = output.split("Cannot raise FD limit to ").nth(1)?;
    let (need, rest) = rest.split_once(", limit is ")?;
    let limit: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let (need, limit) = (need.trim().parse::<u64>().ok()?, limit.parse::<u64>().ok()?);
    Some(format!(
        "HAProxy needs {need} file descriptors (about 2 per connection of --maxconn, plus listeners and health checks) but may open only {limit} (`ulimit -n`): raise the open-files limit (the container's or unit's nofile, LimitNOFILE) to at least {need}, or lower --maxconn by at least {} connections",
        (need.saturating_sub(limit)).div_ceil(2)
    ))
}

/// Bind the events socket the tree's `log` line names, when `run` renders
/// that line; a failure costs only the messages (HAProxy drops them) and
/// is logged.
fn bind_events(config: &RunConfig) -> Option<EventsReceiver> {
    if !config.pipeline.haproxy_events || config.pipeline.target != routegen_render::Target::Haproxy
    {
        return None;
    }
    let path = Path::new(&config.pipeline.run_dir).join(routegen_render::haproxy::EVENTS_SOCKET);
    EventsReceiver::bind(&path)
        .inspect_err(
            |e| tracing::warn!(target: LOG_TARGET, "{e}; HAProxy's event messages are not logged"),
        )
        .ok()
}

#[cfg(test)]
mod tests {
    use super::start_hint;

    #[test]
    fn the_fd_limit_failure_says_what_to_change() {
        let output = "starting HAProxy: HAProxy exited during startup (exit status: 1); its output:\n[NOTICE]   (16730) : haproxy version is 2.6.12-1+deb12u4\n[ALERT]    (16730) : [haproxy.main()] Cannot raise FD limit to 39917, limit is 20000.";
        let hint = start_hint(output).unwrap();
        assert!(hint.contains("needs 39917 file descriptors"), "{hint}");
        assert!(hint.contains("only 20000"), "{hint}");
        assert!(hint.contains("lower --maxconn by at least 9959"), "{hint}");
        assert_eq!(start_hint("[ALERT] something else"), None);
    }
}
