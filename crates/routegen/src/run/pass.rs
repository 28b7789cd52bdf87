//! The pass itself (load → admit → plan → render → apply, see
//! [`Core::pass`]) as the async loop runs it: on a blocking thread, the
//! [`Core`] shared behind a mutex.
//!
//! # Contract
//!
//! * One pass at a time: the loop awaits each before the next.
//! * A poisoned mutex is taken over as it is (a pass that panicked left
//!   the apply directory consistent: `current` is swapped atomically).

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::task::JoinError;

use super::core::{Core, FullCheck, Pass};

/// The [`Core`] as the loop shares it with its blocking passes.
pub(super) type SharedCore = Arc<Mutex<Core>>;

/// The core, poisoned or not.
pub(super) fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run one pass on a blocking thread; `Err` only when that task failed.
pub(super) async fn run(core: &SharedCore) -> Result<Pass, JoinError> {
    let core = core.clone();
    tokio::task::spawn_blocking(move || lock(&core).pass()).await
}

/// Whether a validated tree is current.
pub(super) fn has_current(core: &Mutex<Core>) -> bool {
    lock(core).applier().current_id().is_some()
}

/// Audit HAProxy's runtime state against the model (on a blocking
/// thread); `true` when it drifted (counted; HAProxy must be reloaded).
pub(super) async fn audit(core: &SharedCore, metrics: &routegen_host::metrics::Metrics) -> bool {
    let core = core.clone();
    match tokio::task::spawn_blocking(move || lock(&core).audit()).await {
        Ok(Some(drift)) if !drift.is_empty() => {
            metrics.record_runtime_drift(drift.len());
            true
        }
        _ => false,
    }
}

/// Try again to delete the servers that still had connections when they
/// were removed (on a blocking thread; nothing to do most of the time).
pub(super) async fn retry_draining(core: &SharedCore, metrics: &routegen_host::metrics::Metrics) {
    let core = core.clone();
    if let Ok(left) = tokio::task::spawn_blocking(move || lock(&core).retry_draining()).await {
        metrics.set_draining_servers(left);
    }
}

/// The full `haproxy -c` of trees made current after a subset check, run
/// in the background (seconds at 10,000 Routes) so that passes go on.
#[derive(Default)]
pub(super) struct FullChecker {
    task: Option<tokio::task::JoinHandle<Option<CheckResult>>>,
}

/// A check and what `haproxy -c` said.
type CheckResult = (FullCheck, Result<(), String>);

impl FullChecker {
    /// On a tick: collect a finished check, start a due one. `true` when a
    /// check refused the tree and `current` was rolled back: HAProxy must
    /// be reloaded.
    pub(super) async fn on_tick(&mut self, core: &SharedCore) -> bool {
        if let Some(task) = &self.task {
            if !task.is_finished() {
                return false;
            }
            let task = self.task.take().expect("checked above");
            if let Ok(Some((check, result))) = task.await {
                let core = core.clone();
                return tokio::task::spawn_blocking(move || {
                    lock(&core).full_check_done(&check, result)
                })
                .await
                .unwrap_or(false);
            }
            return false;
        }
        if let Some(check) = lock(core).full_check_due() {
            self.task = Some(tokio::task::spawn_blocking(move || match check.run() {
                Ok(result) => Some((check, result)),
                Err(e) => {
                    tracing::warn!(tree = %check.id, error = %e, "cannot run the full haproxy -c");
                    None
                }
            }));
        }
        false
    }
}
