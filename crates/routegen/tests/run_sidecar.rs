//! `routegen run --spawn-haproxy` end to end: the real binary starts a real
//! HAProxy (master-worker) on 127.0.0.1 ports, manifests live in a temp
//! directory, and small HTTP servers run by the test answer with their own
//! identity. Every wait is bounded; every HAProxy is stopped at the end
//! (SIGTERM through routegen, or SIGKILL of its process group through the
//! pidfile when a test fails).

use routegen_core::testkit::certs;
use routegen_core::testkit::RouteBuilder;
use routegen_testsupport::config;
use routegen_testsupport::e2e::loopback_service_yaml;
use routegen_testsupport::sidecar::{
    metric_in, process_alive, signal, wait_for, write_manifest, Sidecar,
};

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

fn routegen_bin() -> &'static str {
    env!("CARGO_BIN_EXE_routegen")
}

fn haproxy_bin() -> String {
    std::env::var("ROUTEGEN_TEST_HAPROXY").unwrap_or_else(|_| "haproxy".into())
}

// ---------------------------------------------------------------------------
// Backends: HTTP/1.1 keep-alive servers answering with their identity.

/// A backend answering every request with `200` and its identity as body.
struct Backend {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Backend {
    fn start(id: &str) -> Backend {
        Backend::start_on(id, 0)
    }

    /// On 127.0.0.1:`port` (0: any free port).
    fn start_on(id: &str, port: u16) -> Backend {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let id = id.to_string();
        let stop2 = stop.clone();
        thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let id = id.clone();
                thread::spawn(move || serve_conn(conn, &id));
            }
        });
        Backend { port, stop }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve_conn(conn: TcpStream, id: &str) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut writer = conn;
    // Bounded: at most 100k requests per connection.
    for _ in 0..100_000 {
        let mut close = false;
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let t = h.trim_end();
            if t.is_empty() {
                break;
            }
            let lower = t.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower == "connection: close" {
                close = true;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{id}",
            id.len()
        );
        if writer.write_all(resp.as_bytes()).is_err() || close {
            return;
        }
    }
}

// ---------------------------------------------------------------------------
// Client.

/// One response: status and body.
type Response = (u16, String);

/// Read one HTTP/1.1 response (Content-Length bodies only). `Err(true)`
/// when the connection closed before any byte of the response arrived.
fn read_response(reader: &mut BufReader<TcpStream>) -> Result<(Response, bool), (bool, String)> {
    let mut status_line = String::new();
    match reader.read_line(&mut status_line) {
        Ok(0) => return Err((true, "closed before the response".into())),
        Ok(_) => {}
        Err(e) => {
            let stale = matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
            return Err((stale, format!("reading status: {e}")));
        }
    }
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| (false, format!("bad status line {status_line:?}")))?;
    let mut length = 0usize;
    let mut close = false;
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) => return Err((false, "closed inside the headers".into())),
            Ok(_) => {}
            Err(e) => return Err((false, format!("headers: {e}"))),
        }
        let t = h.trim_end().to_ascii_lowercase();
        if t.is_empty() {
            break;
        }
        if let Some(v) = t.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        if t == "connection: close" {
            close = true;
        }
    }
    let mut body = vec![0; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| (false, format!("body: {e}")))?;
    Ok(((status, String::from_utf8_lossy(&body).into_owned()), close))
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// A request on a new connection (`Connection: close`).
fn get(port: u16, host: &str, path: &str) -> Result<Response, String> {
    let mut s = connect(port).map_err(|e| format!("connect: {e}"))?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut reader = BufReader::new(s);
    read_response(&mut reader)
        .map(|(r, _)| r)
        .map_err(|(_, e)| e)
}

/// A keep-alive client: reuses its connection; a reused connection closed
/// before any response byte (an idle connection the old worker closed at
/// a reload) is retried once on a new connection, as HTTP/1.1 clients do
/// for idempotent requests (RFC 9112 §9.3.1). Everything else is a failure.
struct KeepAlive {
    port: u16,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
    retried: u64,
}

impl KeepAlive {
    fn get(&mut self, host: &str) -> Result<Response, String> {
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let s = connect(self.port).map_err(|e| format!("connect: {e}"))?;
                let r = BufReader::new(s.try_clone().unwrap());
                self.conn = Some((s, r));
            }
            let (s, r) = self.conn.as_mut().unwrap();
            let sent = s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes());
            let result = match sent {
                Ok(()) => read_response(r),
                Err(e) => Err((true, format!("write: {e}"))),
            };
            match result {
                Ok((resp, close)) => {
                    if close {
                        self.conn = None;
                    }
                    return Ok(resp);
                }
                Err((stale, e)) => {
                    self.conn = None;
                    if stale && reused && attempt == 0 {
                        self.retried += 1;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Err("retry failed".into())
    }
}

// ---------------------------------------------------------------------------
// Manifests.

/// Route `ns/name` for `host` to Service `service`, created
/// 2026-01-01T00:00:00Z; `to_yaml()` it once complete.
fn route(ns: &str, name: &str, host: &str, service: &str) -> RouteBuilder {
    RouteBuilder::new(ns, name)
        .host(host)
        .to(service, None)
        .created("2026-01-01T00:00:00Z")
}

/// A Service and its EndpointSlice pointing at a loopback port.
fn service(ns: &str, name: &str, port: u16) -> String {
    loopback_service_yaml(ns, name, port, false)
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// `current` points at a complete tree HAProxy accepts; key files are 0600.
fn assert_current_complete(out: &Path) {
    let target = fs::read_link(out.join("current")).expect("current is a symlink");
    let dir = out.join(&target);
    assert!(
        dir.join(".routegen-tree").is_file(),
        "{target:?} has the tree marker"
    );
    assert!(
        dir.join("haproxy.cfg").is_file(),
        "{target:?} has haproxy.cfg"
    );
    assert!(dir.join("backends").is_dir(), "{target:?} has backends/");
    let check = config::haproxy_c(Path::new(&haproxy_bin()), &dir);
    assert!(
        check.status.success(),
        "current tree {target:?} refused: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    for entry in fs::read_dir(dir.join("certs")).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
}

/// The sidecar under test, with `--haproxy-bin` [`haproxy_bin`].
fn sidecar(extra: &[&str]) -> Sidecar {
    let mut sc = Sidecar::new(routegen_bin(), extra);
    sc.haproxy = haproxy_bin().into();
    sc
}

// ---------------------------------------------------------------------------
// Tests.

/// Write `services` and Route shop/web (web.example.com → service `a`),
/// start `sc` and wait until it serves backend-a.
fn start_serving_web(sc: &mut Sidecar, services: &str) {
    write_manifest(&sc.manifests, "svc.yaml", services);
    write_manifest(
        &sc.manifests,
        "web.yaml",
        &route("shop", "web", "web.example.com", "a").to_yaml(),
    );
    sc.start();
    sc.wait_ready(Duration::from_secs(20));
    assert_eq!(sc.body("web.example.com").as_deref(), Some("backend-a"));
}

/// `--haproxy-metrics-bind`: HAProxy serves its own Prometheus metrics
/// (its built-in exporter) there, and nothing else.
#[test]
fn haproxy_serves_its_own_metrics_where_asked() {
    let a = Backend::start("backend-a");
    let metrics_port = routegen_testsupport::e2e::free_port();
    let bind = format!("127.0.0.1:{metrics_port}");
    let mut sc = sidecar(&["--haproxy-metrics-bind", &bind]);
    start_serving_web(&mut sc, &service("shop", "a", a.port));
    // The exporter answers chunked: the harness's client reads that.
    let metrics = routegen_testsupport::e2e::http_get(metrics_port, "localhost", "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("haproxy_process_"),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains("haproxy_backend_"),
        "{}",
        metrics.body
    );
    let other = routegen_testsupport::e2e::http_get(metrics_port, "localhost", "/");
    assert_eq!(other.status, 404);
}

/// `--haproxy-log`: HAProxy sends one access-log line per request (with
/// the frontend and the Route's backend) to a syslog receiver over UDP.
#[test]
fn haproxy_sends_its_access_log_where_asked() {
    let a = Backend::start("backend-a");
    let syslog = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let target = syslog.local_addr().unwrap().to_string();
    let mut sc = sidecar(&["--haproxy-log", &target]);
    start_serving_web(&mut sc, &service("shop", "a", a.port));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let found = loop {
        assert_eq!(sc.body("web.example.com").as_deref(), Some("backend-a"));
        while let Ok(n) = syslog.recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = line.contains("fe_http") && line.contains("be_http:shop:web");
            seen.push(line);
            if hit {
                break;
            }
        }
        if seen.iter().any(|l| l.contains("be_http:shop:web")) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(found, "no access-log line for the request; got {seen:?}");
}

/// `DroppedLogs` of HAProxy's `show info` (its worker's stats socket).
fn dropped_logs(out: &Path) -> u64 {
    let mut conn = std::os::unix::net::UnixStream::connect(
        out.join("run").join(routegen_render::haproxy::STATS_SOCKET),
    )
    .unwrap();
    conn.write_all(b"show info\n").unwrap();
    let mut info = String::new();
    conn.read_to_string(&mut info).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("DroppedLogs: "))
        .unwrap_or_else(|| panic!("no DroppedLogs in show info: {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// HAProxy's own messages after adoption (issue 18): routegen is killed
/// with -9, HAProxy keeps serving; while nobody receives its event socket
/// (its receive queue filled by the test, as a stuck reader would leave
/// it) HAProxy neither blocks nor slows down while it marks a server DOWN;
/// a new routegen adopts HAProxy, binds the socket again and logs the
/// server coming back UP, received from HAProxy's `log` line.
#[test]
fn events_from_an_adopted_haproxy_reach_the_new_routegen() {
    let a = Backend::start("backend-a");
    let b = Backend::start("backend-b");
    let b_port = b.port;
    let mut sc = sidecar(&[]);
    let services: Vec<serde_json::Value> =
        routegen_testsupport::e2e::service("shop", "web", &[("a", a.port), ("b", b_port)]);
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": services});
    write_manifest(&sc.manifests, "svc.json", &list.to_string());
    // Two endpoints: health-checked servers (fast, for the test).
    write_manifest(
        &sc.manifests,
        "web.yaml",
        &route("shop", "web", "web.example.com", "web")
            .annotation("router.openshift.io/haproxy.health.check.interval", "100ms")
            .to_yaml(),
    );
    sc.start();
    sc.wait_ready(Duration::from_secs(30));
    let events = sc
        .out
        .join("run")
        .join(routegen_render::haproxy::EVENTS_SOCKET);
    let cfg = fs::read_to_string(sc.out.join("current/haproxy.cfg")).unwrap();
    assert!(
        cfg.contains(&format!("  log {} local0 notice\n", events.display())),
        "{cfg}"
    );
    let bodies = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| sc.body("web.example.com").unwrap_or_default())
            .collect()
    };
    wait_for(Duration::from_secs(10), "both servers serve", || {
        let seen = bodies(6);
        (seen.contains(&"backend-a".to_string()) && seen.contains(&"backend-b".to_string()))
            .then_some(())
    });

    // routegen dies; HAProxy serves on. A reader that never reads: the
    // socket's queue is full (sends beyond it would block a blocking
    // sender).
    sc.kill9();
    let _ = fs::remove_file(&events);
    let stuck = std::os::unix::net::UnixDatagram::bind(&events).unwrap();
    let filler = std::os::unix::net::UnixDatagram::unbound().unwrap();
    filler.set_nonblocking(true).unwrap();
    let mut queued = 0;
    while filler
        .send_to(b"<133>x haproxy[1]: filler", &events)
        .is_ok()
    {
        queued += 1;
        assert!(queued < 100_000, "the queue never fills");
    }
    // Server b goes DOWN: HAProxy's health checks (every 100 ms, down
    // after 3 failures) send that event into the full queue. Requests go
    // on being served meanwhile, without delay, and HAProxy counts the
    // message it could not send (`show info`: DroppedLogs).
    let dropped_before = dropped_logs(&sc.out);
    drop(b);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut slow = 0;
    let mut requests = 0;
    let mut failed = 0;
    while start.elapsed() < Duration::from_millis(1500) || dropped_logs(&sc.out) == dropped_before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "HAProxy dropped no message"
        );
        let t = Instant::now();
        let body = sc.body("web.example.com");
        slowest = slowest.max(t.elapsed());
        slow += usize::from(t.elapsed() >= Duration::from_millis(500));
        requests += 1;
        match body.as_deref() {
            Some("backend-a") => {}
            // A connection b's listener accepted as it closed.
            _ => failed += 1,
        }
    }
    assert!(
        failed <= 1,
        "{failed} requests failed while nobody read HAProxy's events"
    );
    let dropped = dropped_logs(&sc.out) - dropped_before;
    eprintln!(
        "events queue full ({queued} datagrams queued by the test): {requests} requests in {:?}, slowest {slowest:?}; HAProxy dropped {dropped} messages",
        start.elapsed()
    );
    // A worker blocked on the full socket would hold every request from
    // the first event on. One slow request is allowed: on a loaded
    // machine a connection's SYN is sometimes retransmitted (1 s), which
    // says nothing about logging.
    assert!(
        slow <= 1 && requests >= 100,
        "{slow} of {requests} requests took 500 ms or more (slowest {slowest:?})"
    );
    drop(stuck);

    // A new routegen adopts HAProxy and receives its events: b comes back.
    let before = sc.log_text().len();
    sc.start();
    sc.wait_ready(Duration::from_secs(30));
    // The adopted HAProxy is reloaded onto `current`: its new worker finds
    // b DOWN (an event this routegen receives) before b comes back.
    let event = |what: &str| {
        let log = sc.log_text();
        log[before..]
            .lines()
            .find(|l| l.contains(what) && l.contains("via=\"events\""))
            .map(str::to_string)
    };
    let start = Instant::now();
    while event(" is DOWN").is_none() && start.elapsed() < Duration::from_secs(2) {
        thread::sleep(Duration::from_millis(20));
    }
    let _b = Backend::start_on("backend-b", b_port);
    let line = wait_for(
        Duration::from_secs(15),
        "b UP in the new routegen's log",
        || event(" is UP"),
    );
    let new_log = sc.log_text()[before..].to_string();
    assert!(new_log.contains("adopting the HAProxy master"), "{new_log}");
    assert!(line.contains("be_http:shop:web/"), "{line}");
    assert!(!new_log.contains("are not shown here"), "{new_log}");
}

/// (1) start → ready → A; (2) edit → B; (4) a file that stops parsing
/// keeps its last good objects while the other files' edits are served,
/// and is counted; (7) SIGTERM → exit 0 and HAProxy stopped.
#[test]
fn serves_follows_edits_survives_bad_yaml_and_stops_cleanly() {
    let a = Backend::start("backend-a");
    let b = Backend::start("backend-b");
    let mut sc = sidecar(&["--min-reload-interval", "200ms"]);
    start_serving_web(
        &mut sc,
        &format!(
            "{}---\n{}",
            service("shop", "a", a.port),
            service("shop", "b", b.port)
        ),
    );
    // Host matching through HAProxy: case and port ignored; unknown host 503.
    assert_eq!(
        sc.body("WEB.example.com:8080").as_deref(),
        Some("backend-a")
    );
    assert_eq!(get(sc.http, "nope.example.com", "/").unwrap().0, 503);

    // (2) Point the Route at B.
    let edited = Instant::now();
    write_manifest(
        &sc.manifests,
        "web.yaml",
        &route("shop", "web", "web.example.com", "b").to_yaml(),
    );
    sc.wait_body("web.example.com", "backend-b", Duration::from_secs(10));
    eprintln!("change served after {:?}", edited.elapsed());
    // Another Service's endpoints in the same backend: served through
    // the runtime API, without a reload.
    wait_for(
        Duration::from_secs(5),
        "the live change to be counted",
        || {
            (sc.metric("routegen_changes_total{path=\"runtime\",kind=\"endpoint\"}") >= 1.0)
                .then_some(())
        },
    );
    assert_eq!(
        sc.metric(
            "routegen_reloads_total{result=\"success\",method=\"master_cli\",reason=\"none\"}"
        ),
        0.0,
        "no reload for an endpoint change"
    );
    assert_current_complete(&sc.out);

    // (4) A file that stops parsing keeps its last good objects; the other
    // files' edits are served; it is logged once with its file and line
    // and counted; the sidecar stays ready.
    let load_failures =
        sc.metric("routegen_applies_total{result=\"failure\",reason=\"load_failed\"}");
    write_manifest(
        &sc.manifests,
        "broken.yaml",
        &route("shop", "other", "other.example.com", "b").to_yaml(),
    );
    sc.wait_body("other.example.com", "backend-b", Duration::from_secs(10));
    assert_eq!(sc.metric("routegen_source_files_failing"), 0.0);
    write_manifest(
        &sc.manifests,
        "broken.yaml",
        "kind: Route\nmetadata: [unclosed\n",
    );
    wait_for(Duration::from_secs(10), "the failing file counted", || {
        (sc.metric("routegen_source_files_failing") == 1.0).then_some(())
    });
    write_manifest(
        &sc.manifests,
        "web.yaml",
        &route("shop", "web", "web.example.com", "a").to_yaml(),
    );
    sc.wait_body("web.example.com", "backend-a", Duration::from_secs(10));
    for _ in 0..5 {
        assert_eq!(
            sc.body("other.example.com").as_deref(),
            Some("backend-b"),
            "the broken file's last good Route is still served"
        );
    }
    assert_eq!(sc.metric("routegen_source_files_failing"), 1.0);
    assert_eq!(
        sc.metric("routegen_applies_total{result=\"failure\",reason=\"load_failed\"}"),
        load_failures,
        "no pass failed as a whole"
    );
    assert_eq!(
        sc.ops("/readyz").unwrap().status,
        200,
        "still ready while a file fails"
    );
    let log = sc.log_text();
    let broken = sc.manifests.join("broken.yaml").display().to_string();
    assert!(
        log.contains(&format!("{broken}:2: document 1: invalid YAML")),
        "the log names the file and line:\n{log}"
    );
    assert_eq!(
        log.matches("cannot load a manifest file").count(),
        1,
        "logged once for this version of the file:\n{log}"
    );
    // Fixed: its new version is served and nothing fails any more.
    fix_other(&sc, "broken.yaml");
    fs::remove_file(sc.manifests.join("broken.yaml")).unwrap();
    wait_for(Duration::from_secs(10), "the removed Route gone", || {
        (get(sc.http, "other.example.com", "/").ok()?.0 == 503).then_some(())
    });

    // HAProxy dies (kill -9 of its whole process group): routegen notices,
    // is not ready meanwhile, and starts it again on the current tree.
    let crashed = sc.haproxy_pid().expect("pidfile");
    Command::new("kill")
        .args(["-KILL", "--", &format!("-{crashed}")])
        .status()
        .unwrap();
    wait_for(Duration::from_secs(15), "a new HAProxy", || {
        sc.haproxy_pid()
            .filter(|p| *p != crashed && process_alive(*p))
    });
    sc.wait_ready(Duration::from_secs(15));
    sc.wait_body("web.example.com", "backend-a", Duration::from_secs(5));
    assert!(sc.log_text().contains("HAProxy exited"));
    // /metrics counted the start, the exit and the start after it, and
    // says how routegen's own process is doing.
    let m = sc.metrics();
    let series = |s: &str| metric_in(&m, s);
    assert_eq!(
        series("routegen_haproxy_starts_total{result=\"spawned\",reason=\"first_start\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        series("routegen_haproxy_starts_total{result=\"spawned\",reason=\"after_exit\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        series("routegen_haproxy_exits_total{reason=\"while_serving\"}")
            + series("routegen_haproxy_exits_total{reason=\"during_reload\"}"),
        1.0,
        "{m}"
    );
    assert!(series("process_cpu_seconds_total") > 0.0, "{m}");
    assert!(series("process_resident_memory_bytes") > 1e6, "{m}");
    assert!(series("process_threads") >= 1.0, "{m}");
    let fds = series("process_open_fds");
    assert!(fds >= 3.0 && fds <= series("process_max_fds"), "{m}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = series("process_start_time_seconds");
    assert!(started > now - 600.0 && started <= now + 1.0, "{m}");

    // (7) SIGTERM: exit 0, HAProxy stopped, ports closed.
    let haproxy = sc.haproxy_pid().expect("pidfile");
    assert!(process_alive(haproxy));
    let status = sc.sigterm_and_wait();
    assert_eq!(status.code(), Some(0), "{}", sc.log_text());
    wait_for(Duration::from_secs(10), "HAProxy gone", || {
        (!process_alive(haproxy)).then_some(())
    });
    assert!(connect(sc.http).is_err(), "HTTP port closed");
    assert!(connect(sc.listen).is_err(), "operations port closed");
}

/// Write `shop/other` (to Service `a`) into `file`, fixing it: the
/// Route is served and no file fails.
fn fix_other(sc: &Sidecar, file: &str) {
    write_manifest(
        &sc.manifests,
        file,
        &route("shop", "other", "other.example.com", "a").to_yaml(),
    );
    sc.wait_body("other.example.com", "backend-a", Duration::from_secs(10));
    assert_eq!(sc.metric("routegen_source_files_failing"), 0.0);
}

/// A file that does not parse at start-up: its objects are absent, it is
/// reported by file and line and counted, and the other files are served
/// (ready); once fixed, its Route is served.
#[test]
fn starts_with_a_file_that_does_not_parse() {
    let a = Backend::start("backend-a");
    let mut sc = sidecar(&[]);
    write_manifest(&sc.manifests, "svc.yaml", &service("shop", "a", a.port));
    write_manifest(
        &sc.manifests,
        "web.yaml",
        &route("shop", "web", "web.example.com", "a").to_yaml(),
    );
    write_manifest(
        &sc.manifests,
        "bad.yaml",
        &format!(
            "{}---\n- a list\n",
            route("shop", "other", "other.example.com", "a").to_yaml()
        ),
    );
    sc.start();
    sc.wait_ready(Duration::from_secs(20));
    assert_eq!(sc.body("web.example.com").as_deref(), Some("backend-a"));
    assert_eq!(get(sc.http, "other.example.com", "/").unwrap().0, 503);
    assert_eq!(sc.metric("routegen_source_files_failing"), 1.0);
    let log = sc.log_text();
    let bad = sc.manifests.join("bad.yaml").display().to_string();
    assert!(
        log.contains(&format!("{bad}:"))
            && log.contains("document 2: expected a Kubernetes object"),
        "file, line and document:\n{log}"
    );
    assert!(
        log.contains("its objects are left out until it loads"),
        "{log}"
    );
    fix_other(&sc, "bad.yaml");
}

/// The path of `team/worse`.
const WORSE_PATH: &str = "/w1/w2/w3/w4/w5/w6/w7";

/// The embedded HAProxy templates with lines injected for two Routes: an
/// unknown keyword inside `team/bad`'s backend section (`backend.cfg.tera`;
/// found through `[backends/routes-000.cfg:N]`) and one in a `listen`
/// section written after `team/worse`'s backend. A line outside every
/// Route's backend names no Route: found by bisection.
fn breaking_templates(dir: &Path) {
    let template = |name: &str| {
        routegen_render::HAPROXY_TEMPLATES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no built-in {name}"))
            .1
            .to_string()
    };
    let mut t = template("backend.cfg.tera");
    let backend_line = "backend {{ name }}{% if forwarded %} from {{ forwarded }}{% endif %}\n";
    assert!(t.contains(backend_line));
    t = t.replace(
        backend_line,
        &format!("{backend_line}{{%- if name == \"be_http:team:bad\" %}}\n  bogus-keyword-for-test on\n{{%- endif %}}\n"),
    );
    // Before the template's last newline: each section ends with one.
    t = format!(
        "{}{{%- if name == \"be_http:team:worse\" %}}\n\nlisten bogus_for_test\n  another-bogus-keyword on{{% endif %}}\n",
        t.trim_end_matches('\n')
    );
    fs::write(dir.join("backend.cfg.tera"), t).unwrap();
}

/// (3) Routes HAProxy refuses only at `haproxy -c` time are left out and
/// reported; the others keep working.
#[test]
fn routes_haproxy_refuses_are_left_out_and_reported() {
    let good = Backend::start("good");
    let tdir = tempfile::tempdir().unwrap();
    breaking_templates(tdir.path());
    let mut sc = sidecar(&[
        "--template-dir",
        tdir.path().to_str().unwrap(),
        "--min-reload-interval",
        "100ms",
    ]);
    write_manifest(&sc.manifests, "svc.yaml", &service("team", "s", good.port));
    write_manifest(
        &sc.manifests,
        "routes.yaml",
        &format!(
            "{}---\n{}---\n{}",
            route("team", "good", "good.example.com", "s").to_yaml(),
            route("team", "bad", "bad.example.com", "s").to_yaml(),
            route("team", "worse", "worse.example.com", "s")
                .path(WORSE_PATH)
                .to_yaml()
        ),
    );
    sc.start();
    sc.wait_ready(Duration::from_secs(30));
    assert_eq!(sc.body("good.example.com").as_deref(), Some("good"));
    assert_eq!(get(sc.http, "bad.example.com", "/").unwrap().0, 503);
    assert_eq!(
        get(sc.http, "worse.example.com", WORSE_PATH).unwrap().0,
        503
    );
    let m = sc.metrics();
    assert_eq!(
        metric_in(
            &m,
            "routegen_routes{state=\"rejected\",reason=\"ExtendedValidationFailed\"}"
        ),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric_in(&m, "routegen_routes{state=\"admitted\",reason=\"none\"}"),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_in(
            &m,
            "routegen_route_excluded{route_namespace=\"team\",route_name=\"bad\"}"
        ),
        1.0,
        "{m}"
    );
    assert_eq!(
        metric_in(
            &m,
            "routegen_route_excluded{route_namespace=\"team\",route_name=\"worse\"}"
        ),
        1.0,
        "{m}"
    );
    let log = sc.log_text();
    assert!(
        log.contains("team/bad bad.example.com: ExtendedValidationFailed: HAProxy refused the configuration for this Route: config : parsing [backends/routes-000.cfg:"),
        "{log}"
    );
    assert!(
        log.contains("unknown keyword 'bogus-keyword-for-test'"),
        "{log}"
    );
    assert!(log.contains("team/worse worse.example.com: ExtendedValidationFailed: HAProxy refused the configuration for this Route:"), "{log}");
    assert!(log.contains("bisecting"), "{log}");
    assert_current_complete(&sc.out);
    // The refused trees were kept for inspection, never made current.
    assert!(fs::read_dir(sc.out.join("failed")).unwrap().count() >= 1);

    // Later changes do not pay for refused trees again: the exclusions are
    // remembered while those Routes stay the same.
    let refused_before = fs::read_dir(sc.out.join("failed")).unwrap().count();
    write_manifest(
        &sc.manifests,
        "more.yaml",
        &route("team", "other", "other.example.com", "s").to_yaml(),
    );
    sc.wait_body("other.example.com", "good", Duration::from_secs(10));
    assert_eq!(
        fs::read_dir(sc.out.join("failed")).unwrap().count(),
        refused_before
    );

    // Removing the bad Routes clears their reports.
    write_manifest(
        &sc.manifests,
        "routes.yaml",
        &route("team", "good", "good.example.com", "s").to_yaml(),
    );
    wait_for(Duration::from_secs(10), "exclusions cleared", || {
        let m = sc.metrics();
        (!m.contains("routegen_route_excluded{")
            && metric_in(&m, "routegen_routes{state=\"admitted\",reason=\"none\"}") == 2.0)
            .then_some(())
    });
    assert_eq!(sc.sigterm_and_wait().code(), Some(0));
}

/// (5) No request fails while 50 reloads happen under a steady request
/// loop: one keep-alive client, one new-connection-per-request client.
#[test]
fn zero_failed_requests_across_50_reloads() {
    let a = Backend::start("steady");
    let mut sc = sidecar(&["--min-reload-interval", "0s"]);
    write_manifest(&sc.manifests, "svc.yaml", &service("load", "s", a.port));
    let write_route = |sc: &Sidecar, i: u32| {
        write_manifest(
            &sc.manifests,
            "route.yaml",
            &route("load", "web", "load.example.com", "s")
                .annotation(
                    "haproxy.router.openshift.io/timeout",
                    &format!("{}s", 30 + i),
                )
                .to_yaml(),
        )
    };
    write_route(&sc, 0);
    sc.start();
    sc.wait_ready(Duration::from_secs(20));
    sc.wait_body("load.example.com", "steady", Duration::from_secs(5));

    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(60);
    let port = sc.http;
    let mut clients = Vec::new();
    for keep_alive in [true, false] {
        let stop = stop.clone();
        clients.push(thread::spawn(move || {
            let (mut ok, mut failed, mut errors) = (0u64, 0u64, Vec::new());
            let mut ka = KeepAlive {
                port,
                conn: None,
                retried: 0,
            };
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let r = if keep_alive {
                    ka.get("load.example.com")
                } else {
                    get(port, "load.example.com", "/")
                };
                match r {
                    Ok((200, body)) if body == "steady" => ok += 1,
                    other => {
                        failed += 1;
                        if errors.len() < 5 {
                            errors.push(format!("{other:?}"));
                        }
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
            (keep_alive, ok, failed, ka.retried, errors)
        }));
    }

    let series = "routegen_reloads_total{result=\"success\",method=\"master_cli\",reason=\"none\"}";
    let start_reloads = sc.metric(series);
    let started = Instant::now();
    for i in 1..=50u32 {
        write_route(&sc, i);
        wait_for(Duration::from_secs(10), &format!("reload {i}"), || {
            (sc.metric(series) >= start_reloads + i as f64).then_some(())
        });
    }
    let took = started.elapsed();
    thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let mut total_ok = 0;
    for c in clients {
        let (keep_alive, ok, failed, retried, errors) = c.join().unwrap();
        eprintln!("client keep_alive={keep_alive}: {ok} ok, {failed} failed, {retried} stale keep-alive connections retried; {errors:?}");
        assert_eq!(failed, 0, "keep_alive={keep_alive}: {errors:?}");
        assert!(ok > 100, "keep_alive={keep_alive}: only {ok} requests");
        total_ok += ok;
    }
    let reloads = sc.metric(series) - start_reloads;
    eprintln!("{reloads} reloads in {took:?}, {total_ok} requests, 0 failed");
    assert!(reloads >= 50.0);
    assert_eq!(
        sc.metric(
            "routegen_reloads_total{result=\"failure\",method=\"master_cli\",reason=\"failed\"}"
        ),
        0.0
    );
    // The old-worker gauge is exported and bounded by the cap.
    assert!(sc.metric("routegen_haproxy_old_workers") <= 5.0);
    // An old worker's one warning per proxy is folded into one line.
    let log = sc.log_text();
    assert!(
        !log.contains("stopped (cumulated conns"),
        "per-proxy stop lines logged"
    );
    assert!(log.contains("stopped its"), "no stop summary line");
    assert_eq!(sc.sigterm_and_wait().code(), Some(0));
}

/// (6) `kill -9` of routegen in the middle of an apply, then a restart:
/// HAProxy keeps serving a complete good tree, the restarted routegen
/// adopts it and serves the newest manifests; keys stay 0600.
#[test]
fn kill_9_mid_apply_then_restart_serves_a_good_tree() {
    let backends: Vec<Backend> = (0..4)
        .map(|i| Backend::start(&format!("gen-{i}")))
        .collect();
    let mut sc = sidecar(&["--min-reload-interval", "0s"]);
    let mut svcs = String::new();
    for (i, b) in backends.iter().enumerate() {
        svcs.push_str(&service("crash", &format!("s{i}"), b.port));
        svcs.push_str("---\n");
    }
    write_manifest(&sc.manifests, "svc.yaml", &svcs);
    let cert = certs::self_signed_leaf(&["tls.example.com"]);
    let write_gen = |sc: &Sidecar, gen: usize| {
        write_manifest(
            &sc.manifests,
            "routes.yaml",
            &format!(
                "{}---\n{}",
                route("crash", "web", "crash.example.com", &format!("s{gen}")).to_yaml(),
                route("crash", "tls", "tls.example.com", &format!("s{gen}"))
                    .tls("edge")
                    .insecure("Allow")
                    .cert(&cert, None)
                    .to_yaml()
            ),
        )
    };
    write_gen(&sc, 0);
    sc.start();
    sc.wait_ready(Duration::from_secs(20));
    sc.wait_body("crash.example.com", "gen-0", Duration::from_secs(5));
    let haproxy = sc.haproxy_pid().unwrap();
    // Started on `current` (not on a resolved tree), backends included, so
    // every reload reads the tree `current` points to then.
    let cmdline = fs::read(format!("/proc/{haproxy}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let current = sc.out.join("current");
    let want = [
        "-f".to_string(),
        current.join("haproxy.cfg").display().to_string(),
        "-f".to_string(),
        current.join("backends").display().to_string(),
    ];
    assert!(args.windows(4).any(|w| w == want), "{args:?}");

    let mut rng = fastrand::Rng::with_seed(7);
    for round in 1..=4usize {
        let gen = round % backends.len();
        let log_len = sc.log_text().len();
        write_gen(&sc, gen);
        if round % 2 == 1 {
            // Right when it starts applying.
            wait_for(Duration::from_secs(10), "the apply to start", || {
                sc.log_text()[log_len..]
                    .contains("applying: writing the tree")
                    .then_some(())
            });
        } else {
            // At a random point of the cycle.
            thread::sleep(Duration::from_millis(rng.u64(0..400)));
        }
        sc.kill9();
        // HAProxy, orphaned, still serves a complete good tree.
        assert!(process_alive(haproxy), "HAProxy survived routegen");
        assert_current_complete(&sc.out);
        let body = sc.body("crash.example.com").expect("HAProxy still serves");
        assert!(body.starts_with("gen-"), "{body}");
        // Restart: adopts HAProxy and serves the newest manifests.
        sc.start();
        sc.wait_ready(Duration::from_secs(20));
        sc.wait_body(
            "crash.example.com",
            &format!("gen-{gen}"),
            Duration::from_secs(10),
        );
        assert_current_complete(&sc.out);
        assert_eq!(
            sc.haproxy_pid(),
            Some(haproxy),
            "the same master was adopted"
        );
    }
    assert!(sc.log_text().contains("adopting the HAProxy master"));
    // The adopted HAProxy's messages still arrive (events socket; see
    // events_from_an_adopted_haproxy_reach_the_new_routegen): none lost.
    assert!(
        !sc.log_text().contains("are not shown here"),
        "no lost output to explain"
    );
    // Staging leftovers of the killed applies are gone after the restarts.
    let leftovers: Vec<_> = fs::read_dir(sc.out.join("staging"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.len() <= 1, "{leftovers:?}");
    assert_eq!(sc.sigterm_and_wait().code(), Some(0));
    wait_for(Duration::from_secs(10), "adopted HAProxy stopped", || {
        (!process_alive(haproxy)).then_some(())
    });
}

/// Issue 17, item 6: one instance per output directory. A second `routegen
/// run --spawn-haproxy` on the `--out` of a running one exits at once with
/// status 1, naming the directory and the holder's pid, and neither adopts
/// nor disturbs the first one's HAProxy. Once the holder is killed with
/// `kill -9`, the kernel has released the lock: a new instance starts
/// (adopting the orphaned HAProxy) and records its own pid.
#[test]
fn a_second_run_on_the_same_out_exits_at_once_naming_the_holder() {
    let backend = Backend::start("one");
    let mut sc = sidecar(&[]);
    write_manifest(
        &sc.manifests,
        "site.yaml",
        &format!(
            "{}---\n{}",
            route("lock", "web", "lock.example.com", "s").to_yaml(),
            service("lock", "s", backend.port)
        ),
    );
    sc.start();
    sc.wait_ready(Duration::from_secs(20));
    sc.wait_body("lock.example.com", "one", Duration::from_secs(5));
    let haproxy = sc.haproxy_pid().unwrap();
    let holder = sc.pid().unwrap();
    let lock_file = sc.out.join("routegen.lock");
    assert_eq!(
        fs::read_to_string(&lock_file).unwrap(),
        format!("{holder}\n")
    );
    assert_eq!(mode(&lock_file), 0o600);

    let free_port = routegen_testsupport::e2e::free_port;
    let stderr = sc.out.with_file_name("second.log");
    let mut cmd = Command::new(routegen_bin());
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    let started = Instant::now();
    let mut second = cmd
        .arg("run")
        .arg("--source")
        .arg(format!("dir:{}", sc.manifests.display()))
        .arg("--out")
        .arg(&sc.out)
        .arg("--spawn-haproxy")
        .args(["--haproxy-bin", &haproxy_bin()])
        .args(["--http-bind", &format!("127.0.0.1:{}", free_port())])
        .args(["--https-bind", &format!("127.0.0.1:{}", free_port())])
        .args(["--listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--allow-loopback-endpoints", "--maxconn", "2000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    let _second_guard = scopeguard(second.id());
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the second instance still runs on a locked --out"
        );
        thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let text = fs::read_to_string(&stderr).unwrap();
    // 3: `run` cannot start (README "Exit status").
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        text.contains(&format!(
            "output directory {} is in use by another routegen run (pid {holder}); only one instance may use an output directory (lock file {})",
            sc.out.display(),
            lock_file.display()
        )),
        "{text}"
    );
    // The first one is untouched: same HAProxy, still serving, still ready.
    assert_eq!(sc.haproxy_pid(), Some(haproxy));
    assert!(process_alive(haproxy));
    assert_eq!(sc.body("lock.example.com").as_deref(), Some("one"));
    assert_eq!(sc.ops("/readyz").map(|r| r.status), Some(200));
    assert_eq!(
        fs::read_to_string(&lock_file).unwrap(),
        format!("{holder}\n")
    );

    // kill -9: the kernel drops the lock with the process.
    sc.kill9();
    sc.start();
    sc.wait_ready(Duration::from_secs(20));
    let next = sc.pid().unwrap();
    assert_ne!(next, holder);
    assert_eq!(fs::read_to_string(&lock_file).unwrap(), format!("{next}\n"));
    assert_eq!(
        sc.haproxy_pid(),
        Some(haproxy),
        "the orphaned master was adopted"
    );
    assert_eq!(sc.body("lock.example.com").as_deref(), Some("one"));
}

/// `--reload master-cli:SOCKET` with a HAProxy started by someone else (the
/// deployment's HAProxy container): not ready until that HAProxy exists
/// and confirmed the reload; failed reloads are retried.
#[test]
fn external_haproxy_through_the_master_cli() {
    let a = Backend::start("external");
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("master.sock");
    let mut sc = sidecar(&[]);
    sc.extra = vec![
        "--reload".into(),
        format!("master-cli:{}", socket.display()),
        "--min-reload-interval".into(),
        "0s".into(),
    ];
    write_manifest(
        &sc.manifests,
        "all.yaml",
        &format!(
            "{}---\n{}",
            service("ext", "s", a.port),
            route("ext", "web", "ext.example.com", "s").to_yaml()
        ),
    );
    // Without --spawn-haproxy: start routegen with the flags, minus the spawn.
    sc.start_without_spawn();
    let current = sc.out.join("current").join("haproxy.cfg");
    wait_for(Duration::from_secs(10), "the first tree", || {
        current.is_file().then_some(())
    });
    // Not ready: the reload cannot reach a master yet.
    wait_for(Duration::from_secs(10), "/readyz to say why", || {
        let r = sc.ops("/readyz")?;
        assert_eq!(r.status, 503, "{}", r.body);
        r.body.contains("HAProxy has not confirmed").then_some(())
    });
    // The deployment starts HAProxy on `current`: `-f current/haproxy.cfg
    // -f current/backends`, through the symlink.
    let f_args = config::haproxy_f_args(&sc.out.join("current"));
    assert_eq!(f_args.len(), 4, "{f_args:?}");
    let mut haproxy = Command::new(haproxy_bin())
        .arg("-W")
        .arg("-S")
        .arg(&socket)
        .args(&f_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let guard = scopeguard(haproxy.id());
    // routegen retries its reload (backoff 1–2 s, 2–4 s, ...) and then is ready.
    sc.wait_ready(Duration::from_secs(15));
    sc.wait_body("ext.example.com", "external", Duration::from_secs(5));
    assert!(sc.metric("routegen_reloads_total{result=\"failure\",method=\"master_cli\",reason=\"unreachable\"}") >= 1.0);
    assert!(
        sc.metric(
            "routegen_reloads_total{result=\"success\",method=\"master_cli\",reason=\"none\"}"
        ) >= 1.0
    );
    assert_eq!(sc.sigterm_and_wait().code(), Some(0));
    // Not ours to stop: HAProxy still runs after routegen exits.
    assert!(haproxy.try_wait().unwrap().is_none());
    signal(haproxy.id() as i32, "TERM");
    wait_for(Duration::from_secs(10), "HAProxy to stop", || {
        haproxy.try_wait().unwrap()
    });
    drop(guard);
}

/// Kills the process group of `pid` when dropped.
struct KillGroup(u32);

fn scopeguard(pid: u32) -> KillGroup {
    KillGroup(pid)
}

impl Drop for KillGroup {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}
