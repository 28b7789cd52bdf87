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

use super::core::{Core, Pass};

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
