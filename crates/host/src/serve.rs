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
//!
//! Bounds ([`OpsLimits`], SECURITY.md "Bounds"): the listener may be
//! reachable from tenant pods, so what a client can hold is bounded. HTTP/1
//! only; a request's head must be complete within
//! [`OpsLimits::header_read_timeout`] of the moment the server starts
//! waiting for it, on a new connection and between keep-alive requests
//! alike (hyper's `header_read_timeout`, which is so also the idle
//! keep-alive timeout); the head may be at most
//! [`OpsLimits::max_head_bytes`]; at most [`OpsLimits::max_connections`]
//! connections are open at once, and one over the cap is closed at once
//! (counted in a warning log line at most once a second), never queued.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::{Metrics, CONTENT_TYPE};

/// How long connections still open after the shutdown signal may take to
/// finish before [`serve`] returns anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Default [`OpsLimits::header_read_timeout`]: a kubelet probe or a
/// Prometheus scrape sends its whole request at once.
pub const OPS_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Default [`OpsLimits::max_connections`]: probes and a few scrapers need
/// a handful; each connection costs a task and a file descriptor.
pub const OPS_MAX_CONNECTIONS: usize = 64;

/// Default [`OpsLimits::max_head_bytes`] (hyper's minimum buffer is 8 KiB).
pub const OPS_MAX_HEAD_BYTES: usize = 8 * 1024;

/// What one client of the operations endpoint can hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpsLimits {
    /// From the moment the server waits for a request (a new connection,
    /// or a kept-alive one after its last response) until the request's
    /// head is complete; then the connection is closed.
    pub header_read_timeout: Duration,
    /// Connections open at once; one more is closed as soon as accepted.
    pub max_connections: usize,
    /// Read buffer, and so the largest request head.
    pub max_head_bytes: usize,
}

impl Default for OpsLimits {
    fn default() -> Self {
        OpsLimits {
            header_read_timeout: OPS_HEADER_READ_TIMEOUT,
            max_connections: OPS_MAX_CONNECTIONS,
            max_head_bytes: OPS_MAX_HEAD_BYTES,
        }
    }
}

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

/// Serve on an already bound listener until `shutdown` resolves, with the
/// default [`OpsLimits`]; see [`serve_on_with`].
pub async fn serve_on<F>(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    serve_on_with(listener, health, metrics, OpsLimits::default(), shutdown).await
}

/// Serve on an already bound listener until `shutdown` resolves, within
/// `limits`. Then stop accepting, let open requests finish, and return at
/// the latest [`SHUTDOWN_GRACE`] later.
pub async fn serve_on_with<F>(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
    limits: OpsLimits,
    shutdown: F,
) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "operations endpoint listening (/healthz, /readyz, /metrics)");
    }
    let service = TowerToHyperService::new(router(health, metrics));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(8 * 1024));
    let mut refused: u64 = 0;
    let mut last_refusal_log: Option<std::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!(%error, "operations endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            drop(stream);
            refused += 1;
            if last_refusal_log.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                tracing::warn!(
                    refused,
                    max_connections = limits.max_connections,
                    "operations endpoint: connection refused: at the connection cap"
                );
                last_refusal_log = Some(std::time::Instant::now());
            }
            continue;
        };
        let connection =
            graceful.watch(http.serve_connection(TokioIo::new(stream), service.clone()));
        tokio::spawn(async move {
            // Errors here are the client's (timeouts, bad requests, resets).
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("operations endpoint: connections still open after shutdown grace; closing");
        }
    }
    Ok(())
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
