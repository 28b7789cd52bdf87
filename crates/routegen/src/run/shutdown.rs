//! Shutdown: the signal that asks for it ([`shutdown_signal`]) and what
//! the loop does then ([`shut_down`]).
//!
//! # Contract
//!
//! On SIGTERM/SIGINT: `/readyz` turns not ready, the operations endpoint
//! is told to stop, a HAProxy we started (or adopted) is stopped
//! (gracefully, bounded), the endpoint is awaited; `run` then returns
//! `Ok` (exit status 0).

use std::future::Future;

use routegen_host::serve::Health;

use super::ops::OpsEndpoint;
use super::serving::Serving;
use super::LOG_TARGET;

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
                    _ = term.recv() => tracing::info!(target: LOG_TARGET, "SIGTERM received; shutting down"),
                    _ = int.recv() => tracing::info!(target: LOG_TARGET, "SIGINT received; shutting down"),
                }
            }
            _ => {
                tracing::error!(target: LOG_TARGET, "cannot install signal handlers; only Ctrl-C stops routegen");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

/// Stop everything the loop started, in order (see the module
/// documentation). Errors are logged, not returned.
pub(super) async fn shut_down(health: &Health, ops: OpsEndpoint, serving: Serving) {
    tracing::info!(target: LOG_TARGET, "stopping");
    health.set_not_ready("shutting down");
    ops.request_stop();
    serving.stop().await;
    match ops.finished().await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(target: LOG_TARGET, error = %e, "operations endpoint"),
        Err(e) => tracing::error!(target: LOG_TARGET, error = %e, "operations endpoint task"),
    }
    tracing::info!(target: LOG_TARGET, "stopped");
}
