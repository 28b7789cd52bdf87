//! The loop ([`Sidecar`]): wait for a reason, run a pass, publish its
//! status, make HAProxy serve the result, update readiness; until
//! shutdown.
//!
//! # Contract
//!
//! * A pass runs when the source changed, when a retry is due (apply,
//!   HAProxy start, reload: see [`Backoff`]), when the managed HAProxy
//!   exited, and at once at start-up for a directory (the Kubernetes
//!   source wakes the loop when its first full sync is complete).
//! * Changes that arrive during a pass are coalesced into the next one;
//!   one pass at a time.
//! * Once running, failures are logged, counted and retried, never fatal:
//!   only the shutdown future ends the loop.
//! * Every second (a tick): readiness while the Kubernetes source syncs,
//!   the managed HAProxy's liveness, and (every fifth) the old-worker
//!   gauge.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use routegen_host::metrics::Metrics;
use routegen_host::serve::Health;

use super::backoff::Backoff;
use super::config::RunConfig;
use super::core::PassOutcome;
use super::input::Input;
use super::ops::OpsEndpoint;
use super::pass::{self, SharedCore};
use super::readiness::Readiness;
use super::report::{report_pass, Reported};
use super::serving::{Served, Serving};
use super::shutdown::shut_down;
use super::LOG_TARGET;

/// What to do after a cycle.
enum Next {
    /// Wait for the next wake-up.
    Wait,
    /// Run another pass at once.
    PassAgain,
}

/// The running sidecar: what the loop keeps from pass to pass.
pub(super) struct Sidecar {
    config: RunConfig,
    health: Health,
    metrics: Arc<Metrics>,
    input: Input,
    ops: OpsEndpoint,
    core: SharedCore,
    serving: Serving,
    apply_backoff: Backoff,
    readiness: Readiness,
    reported: Reported,
    /// A pass is due.
    pending: bool,
    tick: tokio::time::Interval,
    ticks: u64,
    full_checker: pass::FullChecker,
    /// HAProxy was (re)started or reloaded: audit its state on the next tick.
    audit_due: bool,
}

/// Ticks (seconds) between two audits of HAProxy's runtime state.
const AUDIT_TICKS: u64 = 30;

impl Sidecar {
    /// The loop's state after start-up (see [`super::startup`]).
    pub(super) fn new(
        config: RunConfig,
        health: Health,
        metrics: Arc<Metrics>,
        input: Input,
        ops: OpsEndpoint,
        core: SharedCore,
        serving: Serving,
    ) -> Sidecar {
        // A directory is read at once; the Kubernetes source wakes the loop
        // when its first full sync is complete.
        let pending = matches!(input, Input::Dir(_));
        Readiness::at_start(&health, &input);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Sidecar {
            config,
            health,
            metrics,
            input,
            ops,
            core,
            serving,
            apply_backoff: Backoff::default(),
            readiness: Readiness::default(),
            reported: Reported::new(),
            pending,
            tick,
            ticks: 0,
            full_checker: pass::FullChecker::default(),
            audit_due: false,
        }
    }

    /// Run until `shutdown` resolves, then shut down.
    pub(super) async fn run<F>(mut self, shutdown: F)
    where
        F: Future<Output = ()> + Send,
    {
        tokio::pin!(shutdown);
        loop {
            if self.pending {
                self.pending = false;
                match self.cycle().await {
                    Next::Wait => {}
                    Next::PassAgain => continue,
                }
            }
            if !self.wait(&mut shutdown).await {
                break;
            }
        }
        shut_down(&self.health, self.ops, self.serving).await;
    }

    /// One pass and what follows it: pace, pass, report, publish status,
    /// serve, readiness.
    async fn cycle(&mut self) -> Next {
        let pass = match pass::run(&self.core).await {
            Ok(pass) => pass,
            Err(e) => {
                tracing::error!(target: LOG_TARGET, error = %e, "apply task failed; retrying");
                self.apply_backoff.schedule();
                return Next::Wait;
            }
        };
        report_pass(&pass, &self.metrics, &mut self.reported);
        self.input.publish_status(&pass);
        match &pass.outcome {
            PassOutcome::Applied { .. } => {
                self.apply_backoff.reset();
                if pass.needs_reload {
                    self.serving.tree_applied(&self.config);
                }
            }
            PassOutcome::Unchanged => self.apply_backoff.reset(),
            PassOutcome::Failed { .. } => {
                let delay = self.apply_backoff.schedule();
                tracing::info!(target: LOG_TARGET, retry_in = ?delay, "will retry the apply");
            }
            _ => {}
        }
        let has_current = pass::has_current(&self.core);

        // Make HAProxy serve `current`.
        if has_current && self.serving.serve_current(&self.config).await == Served::HaproxyExited {
            self.health.set_not_ready("HAProxy exited; restarting it");
            pass::lock(&self.core).haproxy_state_unknown();
            self.pending = true;
            return Next::PassAgain;
        }
        if self.serving.take_runs_current() {
            pass::lock(&self.core).haproxy_runs_current();
            self.audit_due = true;
        }

        self.readiness.after_pass(
            &self.health,
            &self.config,
            &mut self.serving,
            has_current,
            &pass,
        );
        Next::Wait
    }

    /// Wait for the next reason to run a pass (or for a tick's checks);
    /// `false` once shutdown is asked for.
    async fn wait<F>(&mut self, shutdown: &mut Pin<&mut F>) -> bool
    where
        F: Future<Output = ()>,
    {
        let retry_at = [
            self.serving.retry_at(self.config.min_reload_interval),
            self.apply_backoff.at,
        ]
        .into_iter()
        .flatten()
        .min();
        tokio::select! {
            biased;
            _ = &mut *shutdown => return false,
            Some(changes) = self.input.changed() => {
                if let Some(changes) = changes {
                    pass::lock(&self.core).note_dir_changes(changes);
                }
                self.pending = true;
            }
            _ = sleep_until_opt(retry_at), if retry_at.is_some() => {
                let [reload, start] = self.serving.backoffs();
                for b in [reload, &mut self.apply_backoff, start] {
                    b.clear_if_due();
                }
                self.pending = true;
            }
            _ = self.tick.tick() => self.on_tick().await,
        }
        true
    }

    /// Once a second: readiness while the source syncs, HAProxy's
    /// liveness, and every fifth tick the old-worker gauge.
    async fn on_tick(&mut self) {
        self.ticks += 1;
        self.readiness.on_tick(&self.health, &self.input);
        if self.serving.exited(&self.config) {
            self.health.set_not_ready("HAProxy exited; restarting it");
            pass::lock(&self.core).haproxy_state_unknown();
            self.pending = true;
        }
        pass::retry_draining(&self.core, &self.metrics).await;
        if (self.audit_due || self.ticks.is_multiple_of(AUDIT_TICKS))
            && pass::audit(&self.core, &self.metrics).await
        {
            self.serving.tree_applied(&self.config);
            self.pending = true;
        }
        self.audit_due = false;
        if self.full_checker.on_tick(&self.core).await {
            self.serving.tree_applied(&self.config);
            self.pending = true;
        }
        if self.ticks.is_multiple_of(5) {
            self.serving.refresh_old_workers(&self.config).await;
        }
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
