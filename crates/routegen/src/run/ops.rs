//! The operations endpoint (`/healthz`, `/readyz`, `/metrics` on
//! `--listen`) as a task of the loop ([`OpsEndpoint`]).
//!
//! # Contract
//!
//! * [`OpsEndpoint::start`] binds before returning: a port in use is a
//!   start-up error.
//! * It serves the [`Health`] and [`Metrics`] it was given; the loop's
//!   phases update those, never the endpoint.
//! * Stopping is two steps, so HAProxy can be stopped in between:
//!   [`request_stop`](OpsEndpoint::request_stop), then
//!   [`finished`](OpsEndpoint::finished).

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::{JoinError, JoinHandle};

use routegen_host::metrics::Metrics;
use routegen_host::serve::{self, Health, OpsLimits, ServeError};

/// The running operations endpoint.
pub(super) struct OpsEndpoint {
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), ServeError>>,
}

impl OpsEndpoint {
    /// Listen on `listen` and serve in a task of its own.
    pub(super) async fn start(
        listen: SocketAddr,
        limits: OpsLimits,
        health: Health,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<OpsEndpoint> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(serve::serve_on_with(
            listener,
            health,
            metrics,
            limits,
            async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            },
        ));
        Ok(OpsEndpoint { stop, task })
    }

    /// Tell the endpoint to stop (returns at once).
    pub(super) fn request_stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Resolves when the endpoint has stopped, with how it ended.
    pub(super) async fn finished(self) -> Result<Result<(), ServeError>, JoinError> {
        self.task.await
    }
}
