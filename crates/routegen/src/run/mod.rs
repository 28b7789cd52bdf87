//! `routegen run`: the sidecar (SPEC §8, §9, §11).
//!
//! Keeps a live HAProxy in step with a source of manifests:
//!
//! 1. The source is watched *before* the first read ([`DirWatcher`](routegen_host::source::dir::DirWatcher)), so
//!    nothing changes unseen; bursts of changes are coalesced by its
//!    debounce.
//! 2. Each wake-up runs one [`core::Core::pass`] on a blocking thread:
//!    load → admit → plan → render → [`Applier::apply`](routegen_host::apply::Applier::apply) (staging,
//!    `haproxy -c`, atomic `current` swap, history). A tree HAProxy refuses
//!    is never swapped in; [`isolate`] finds the Routes responsible, leaves
//!    them out (reported as `ExtendedValidationFailed`) and tries again,
//!    within bounds. Identical output is a no-op.
//! 3. A new tree is followed by a reload ([`Reloader`](routegen_host::reload::Reloader); confirmed through
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
//! <out>/current/backends` in its own process group. When routegen starts
//! and a master started by an earlier routegen (killed without a chance to
//! stop it) still answers on that socket with that configuration path, it
//! is *adopted*: reloaded onto the current tree rather than duplicated
//! next to it.
//!
//! # Layout
//!
//! [`run`] is start-up, then the loop, then shutdown; each phase is a
//! module with one job:
//!
//! | module | job |
//! | --- | --- |
//! | `config` | [`RunConfig`], [`Source`]: the flags, resolved (pure) |
//! | `startup` | everything before the first pass, in order; loading the pipeline configuration |
//! | `input` | the source (dir watcher or Kubernetes) that wakes the loop; Route status publication |
//! | `kube_metrics` | the Kubernetes source's `/metrics` families (watches, status writes) |
//! | `pass` | one [`core::Core::pass`] on a blocking thread |
//! | `report` | what a pass leaves in the logs and the metrics |
//! | `serving` | HAProxy serving the current tree: start/adopt, reload, pacing, old-worker cap |
//! | `haproxy` | the HAProxy process `--spawn-haproxy` manages |
//! | `readiness` | what `/readyz` says |
//! | `ops` | the operations endpoint task (`/healthz`, `/readyz`, `/metrics`) |
//! | `shutdown` | [`shutdown_signal`] and the stop sequence |
//! | `sidecar` | the loop tying them together |
//! | `backoff` | retry timing |
//!
//! The modules import one another one way: `startup` → `sidecar` → the
//! phases; among the phases `readiness` → `serving` → `haproxy`,
//! `shutdown` → `ops`, `serving`; all of them at most → `config`, `core`,
//! `backoff`. Nothing imports `startup` or `sidecar` back.

pub mod core;
pub mod isolate;

mod backoff;
mod config;
mod fingerprint;
mod haproxy;
mod input;
mod kube_metrics;
mod ops;
mod pass;
pub mod placement;
mod readiness;
mod report;
mod serving;
mod shutdown;
mod sidecar;
mod startup;

use std::future::Future;

pub use config::{RunConfig, Source};
pub use shutdown::shutdown_signal;

/// The target of the loop's events, whichever phase module logs them:
/// `routegen::run`, as before the loop was split into modules, so the
/// log lines and filters on them (`ROUTEGEN_LOG=routegen::run=debug`)
/// stay as they were. (`core` and `isolate` log under their own paths.)
const LOG_TARGET: &str = "routegen::run";

/// Run the sidecar until `shutdown` resolves. Errors are startup errors
/// (bad flags, unusable directories, port in use, another instance on the
/// same `--out`); once running, failures are logged, counted and retried,
/// never fatal.
///
/// The output directory's exclusive lock
/// ([`routegen_host::apply::OutputLock`]) is the first thing taken, before
/// any port is bound, file written or HAProxy adopted, and held until the
/// sidecar has stopped (its HAProxy included): a second `run` on the same
/// `--out` fails at once naming the directory and the holder's pid.
pub async fn run<F>(config: RunConfig, shutdown: F) -> anyhow::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let lock = routegen_host::apply::OutputLock::acquire(&config.out)?;
    tracing::debug!(target: LOG_TARGET, lock = %lock.path().display(), "output directory locked");
    // What the trees are rendered with, for `diff --against OUT`.
    crate::render_options::write(&config.out, &config.pipeline)?;
    let sidecar = startup::start(config).await?;
    sidecar.run(shutdown).await;
    drop(lock);
    Ok(())
}
