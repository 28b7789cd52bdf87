//! The operations endpoint over a real socket on 127.0.0.1 (ephemeral
//! port), spoken to with a minimal raw HTTP/1.1 client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use routegen_host::metrics::{Metrics, Outcome};
use routegen_host::serve::{serve, serve_on_with, Health, OpsLimits, ServeError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const IO: Duration = Duration::from_secs(3);

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let exchange = async {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(IO, exchange)
        .await
        .expect("reply in time");
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("complete head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_string(), v.trim().to_string())
        })
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

struct Server {
    addr: SocketAddr,
    health: Health,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
}

async fn start() -> Server {
    start_with(OpsLimits::default()).await
}

async fn start_with(limits: OpsLimits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let health = Health::new();
    let metrics = Arc::new(Metrics::new());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_on_with(
        listener,
        health.clone(),
        metrics.clone(),
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        health,
        metrics,
        stop: Some(stop),
        task,
    }
}

impl Server {
    async fn shutdown(mut self) -> Result<(), ServeError> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(8), self.task)
            .await
            .expect("server stops in time")
            .expect("server task did not panic")
    }
}

#[tokio::test]
async fn healthz_is_ok_while_alive() {
    let s = start().await;
    let r = request(s.addr, "GET", "/healthz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));

    s.health.set_not_alive("run loop stuck for 10m");
    let r = request(s.addr, "GET", "/healthz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "not alive: run loop stuck for 10m")
    );
    s.health.set_alive();
    assert_eq!(request(s.addr, "GET", "/healthz").await.status, 200);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn readiness_flips_with_reason() {
    let s = start().await;
    let r = request(s.addr, "GET", "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (503, "not ready: starting"));

    s.health.set_not_ready("first tree failed validation");
    let r = request(s.addr, "GET", "/readyz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "not ready: first tree failed validation")
    );

    s.health.set_ready();
    let r = request(s.addr, "GET", "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (200, "ready"));
    assert_eq!(s.health.not_ready_reason(), None);

    s.health.set_not_ready("haproxy master socket unreachable");
    let r = request(s.addr, "GET", "/readyz").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "not ready: haproxy master socket unreachable")
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn metrics_are_openmetrics_text() {
    let s = start().await;
    s.metrics.record_apply(
        Outcome::Success,
        "config_changed",
        Duration::from_millis(12),
    );
    s.metrics.set_old_workers(2);
    let r = request(s.addr, "GET", "/metrics").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(r.body.ends_with("# EOF\n"), "{}", r.body);
    assert!(
        r.body
            .contains("routegen_applies_total{result=\"success\",reason=\"config_changed\"} 1\n"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains("routegen_haproxy_old_workers 2\n"),
        "{}",
        r.body
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_paths_and_methods() {
    let s = start().await;
    for path in ["/", "/health", "/metrics/x", "/readyz/"] {
        let r = request(s.addr, "GET", path).await;
        assert_eq!(r.status, 404, "{path}");
    }
    assert_eq!(request(s.addr, "POST", "/healthz").await.status, 405);
    let r = request(s.addr, "HEAD", "/readyz").await;
    assert_eq!((r.status, r.body.as_str()), (503, ""));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_stops_listening() {
    let s = start().await;
    let addr = s.addr;
    assert_eq!(request(addr, "GET", "/healthz").await.status, 200);
    // An idle keep-alive connection must not hold shutdown up.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(IO, idle.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    let started = std::time::Instant::now();
    s.shutdown().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

#[tokio::test]
async fn a_stalled_client_cannot_block_shutdown_forever() {
    let s = start().await;
    let mut stalled = TcpStream::connect(s.addr).await.unwrap();
    stalled.write_all(b"GET /heal").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    s.shutdown().await.unwrap();
    assert!(
        started.elapsed() <= routegen_host::serve::SHUTDOWN_GRACE + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn serve_binds_and_reports_bind_errors() {
    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = serve(addr, Health::new(), Arc::new(Metrics::new()), async {})
        .await
        .unwrap_err();
    assert!(matches!(err, ServeError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr.to_string()), "{err}");

    // And binding an ephemeral port works; an immediate shutdown returns.
    let done = tokio::time::timeout(
        Duration::from_secs(3),
        serve(
            "127.0.0.1:0".parse().unwrap(),
            Health::new(),
            Arc::new(Metrics::new()),
            async {},
        ),
    )
    .await
    .expect("returns after shutdown");
    done.unwrap();
}

/// Limits with a short header timeout, so a test waits well under 5 s.
fn short(header_read_timeout: Duration, max_connections: usize) -> OpsLimits {
    OpsLimits {
        header_read_timeout,
        max_connections,
        ..OpsLimits::default()
    }
}

/// Read until the server closes the connection (EOF or reset); what was read.
async fn until_closed(s: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "connection still open after {within:?}");
    raw
}

#[tokio::test]
async fn a_half_sent_request_is_disconnected_after_the_header_timeout() {
    let timeout = Duration::from_millis(500);
    let s = start_with(short(timeout, 64)).await;
    // Half a request, then silence.
    let mut half = TcpStream::connect(s.addr).await.unwrap();
    half.write_all(b"GET /heal").await.unwrap();
    // A slow drip: a byte every 100 ms never completes the head in time.
    let mut drip = TcpStream::connect(s.addr).await.unwrap();
    let started = std::time::Instant::now();
    let dripping = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaa" {
            if drip.write_all(&[*b]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drip
    });
    let raw = until_closed(&mut half, Duration::from_secs(3)).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= timeout - Duration::from_millis(100),
        "{elapsed:?}"
    );
    assert!(!String::from_utf8_lossy(&raw).contains(" 200 "), "{raw:?}");
    let mut drip = dripping.await.unwrap();
    let raw = until_closed(&mut drip, Duration::from_secs(3)).await;
    assert!(!String::from_utf8_lossy(&raw).contains(" 200 "), "{raw:?}");
    // Still serving everyone else.
    assert_eq!(request(s.addr, "GET", "/healthz").await.status, 200);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let timeout = Duration::from_millis(500);
    let s = start_with(short(timeout, 64)).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let raw = until_closed(&mut c, Duration::from_secs(3)).await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(text.ends_with("ok"), "{text}");
    assert!(started.elapsed() >= timeout - Duration::from_millis(100));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_and_slots_come_back() {
    let s = start_with(short(Duration::from_secs(4), 2)).await;
    let mut held = vec![
        TcpStream::connect(s.addr).await.unwrap(),
        TcpStream::connect(s.addr).await.unwrap(),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The third is accepted by the kernel and closed at once, unanswered.
    let mut over = TcpStream::connect(s.addr).await.unwrap();
    let _ = over
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let started = std::time::Instant::now();
    let raw = until_closed(&mut over, Duration::from_secs(2)).await;
    assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));
    assert!(started.elapsed() < Duration::from_secs(1));
    // A held connection ends: its slot serves the next client.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(request(s.addr, "GET", "/readyz").await.status, 503);
    drop(held);
    s.shutdown().await.unwrap();
}
