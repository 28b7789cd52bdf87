//! The operations endpoint (SPEC §11): `/healthz`, `/readyz`, `/metrics`.
//!
//! * `GET /healthz`: `200 ok` while the process is alive ([`Health`]'s
//!   alive flag, true unless the run loop declares itself wedged), else
//!   `503 not alive: <reason>`.
//! * `GET /readyz`: `200 ready` once the run loop has called
//!   [`Health::set_ready`] (sources synced, first tree validated, HAProxy
//!   confirmed serving it), else `503 not ready: <reason>`.
//! * `GET /metrics`: `200` with [`Metrics::encode`] as
//!   `application/openmetrics-text; version=1.0.0; charset=utf-8`.
//! * Anything else: `404` (`405` for another method on a known path).
//!
//! Bodies are plain text without a trailing newline. `HEAD` works wherever
//! `GET` does.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::metrics::{Metrics, CONTENT_TYPE};

/// How long connections still open after the shutdown signal may take to
/// finish before [`serve`] returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Liveness and readiness, shared between the run loop and the server.
/// Cheap to clone; all clones are the same state.
#[derive(Clone, Debug)]
pub struct Health {
    inner: Arc<HealthInner>,
}

#[derive(Debug)]
struct HealthInner {
    alive: Flag,
    ready: Flag,
}

/// A boolean with the reason it is false.
#[derive(Debug)]
struct Flag {
    on: AtomicBool,
    /// Why it is off; written before the flag is cleared.
    reason: Mutex<String>,
}

impl Flag {
    fn new(on: bool, reason: &str) -> Flag {
        Flag {
            on: AtomicBool::new(on),
            reason: Mutex::new(reason.to_string()),
        }
    }

    fn set(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    fn clear(&self, reason: String) {
        *lock(&self.reason) = reason;
        self.on.store(false, Ordering::SeqCst);
    }

    fn get(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }

    /// `None` when on, else why not.
    fn reason_off(&self) -> Option<String> {
        if self.get() {
            None
        } else {
            Some(lock(&self.reason).clone())
        }
    }
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Alive, not ready (reason `starting`).
    pub fn new() -> Self {
        Health {
            inner: Arc::new(HealthInner {
                alive: Flag::new(true, ""),
                ready: Flag::new(false, "starting"),
            }),
        }
    }

    /// Ready: the first tree is validated and HAProxy serves it.
    pub fn set_ready(&self) {
        self.inner.ready.set();
    }

    /// Not ready, for `reason` (shown by `/readyz`). Idempotent; a newer
    /// reason replaces the older one.
    pub fn set_not_ready(&self, reason: impl Into<String>) {
        self.inner.ready.clear(reason.into());
    }

    pub fn is_ready(&self) -> bool {
        self.inner.ready.get()
    }

    /// `None` when ready, else why not.
    pub fn not_ready_reason(&self) -> Option<String> {
        self.inner.ready.reason_off()
    }

    /// Alive again (the default).
    pub fn set_alive(&self) {
        self.inner.alive.set();
    }

    /// Not alive: `/healthz` fails so the kubelet restarts the container.
    /// For a run loop that knows it is stuck, not for ordinary failures.
    pub fn set_not_alive(&self, reason: impl Into<String>) {
        self.inner.alive.clear(reason.into());
    }

    pub fn is_alive(&self) -> bool {
        self.inner.alive.get()
    }

    /// `None` when alive, else why not.
    pub fn not_alive_reason(&self) -> Option<String> {
        self.inner.alive.reason_off()
    }
}

fn lock(m: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Why the endpoint could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("operations endpoint failed: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Arc<Metrics>,
}

/// The routes, for embedding or testing without a socket.
pub fn router(health: Health, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .fallback(not_found)
        .with_state(AppState { health, metrics })
}

/// Bind `listen` and serve until `shutdown` resolves; see [`serve_on`].
pub async fn serve<F>(
    listen: SocketAddr,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: listen,
            source,
        })?;
    serve_on(listener, health, metrics, shutdown).await
}

/// Serve on an already bound listener until `shutdown` resolves. Then stop
/// accepting, let open requests finish, and return at the latest
/// [`SHUTDOWN_GRACE`] later.
pub async fn serve_on<F>(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "operations endpoint listening (/healthz, /readyz, /metrics)");
    }
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let graceful = async move {
        let _ = stop_rx.wait_for(|stop| *stop).await;
    };
    let server = axum::serve(listener, router(health, metrics)).with_graceful_shutdown(graceful);
    let deadline = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = server.into_future() => result.map_err(ServeError::Io),
        () = deadline => {
            tracing::warn!("operations endpoint: connections still open after shutdown grace; closing");
            Ok(())
        }
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.health.not_alive_reason() {
        None => (StatusCode::OK, "ok").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not alive: {reason}"),
        )
            .into_response(),
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.health.not_ready_reason() {
        None => (StatusCode::OK, "ready").into_response(),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}"),
        )
            .into_response(),
    }
}

async fn metrics_handler(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}
