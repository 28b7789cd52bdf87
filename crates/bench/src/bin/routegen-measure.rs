//! `routegen-measure`: the numbers of issue 5 ("The sidecar"), measured
//! against the real `routegen run --spawn-haproxy` with 1,000 Routes.
//!
//! ```sh
//! cargo build --release --bin routegen --bin routegen-measure
//! target/release/routegen-measure            # uses target/release/routegen
//! ```
//!
//! What it does (everything on 127.0.0.1, bounded, under 5 minutes):
//! 1. Starts one echo server listening on 51 ports; a request answers
//!    `echo-<port>` (the "identity" of the backend it reached).
//! 2. Writes 1,000 plain-HTTP Routes, one file each (Route + Service +
//!    EndpointSlice at the first port), and starts routegen next to this
//!    binary with its default timing flags.
//! 3. Idle RSS of routegen (`VmRSS` in `/proc/<pid>/status`).
//! 4. Burst: rewrites all 1,000 files as fast as it can, waits until
//!    routegen is quiet, and reads how many reloads that cost.
//! 5. Change-to-serve latency: 50 times, points one Route at another port
//!    (file renamed into place → first request answered by the new
//!    identity), each change started once the minimum reload interval since
//!    the previous reload has passed, while two clients (one keep-alive, one
//!    new connection per request) hit another Route and count failures.
//!
//! Prints a table. Exit status 1 if something could not be measured or a
//! request failed.

/// mimalloc: at 10,000 Routes and more, glibc malloc spends a quarter of
/// a pass consolidating and searching free lists (measured in
/// BENCHMARKS.md); mimalloc keeps passes and peak memory lower.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const ROUTES: usize = 1000;
const CHANGES: usize = 50;
const ALT_PORTS: usize = 50;
/// Pause between a confirmed reload and the next change: more than
/// routegen's default `--min-reload-interval` (1 s, which this run keeps)
/// and than its adaptive stretch (the last apply + reload), so the
/// latency measured is the pipeline's, not the rate limit's.
const CHANGE_SPACING: Duration = Duration::from_secs(2);
/// Hard bound of the whole run.
const TOTAL_BUDGET: Duration = Duration::from_secs(290);

fn main() -> ExitCode {
    match measure() {
        Ok(ok) => {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("routegen-measure: {e}");
            ExitCode::from(1)
        }
    }
}

fn free_port() -> Result<u16, String> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .map_err(|e| e.to_string())?
        .local_addr()
        .map_err(|e| e.to_string())?
        .port())
}

/// One echo server on several ports; answers `echo-<port>`.
fn start_echo(ports: usize) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for _ in 0..ports {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        out.push(port);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                thread::spawn(move || serve_echo(conn, port));
            }
        });
    }
    Ok(out)
}

fn serve_echo(conn: TcpStream, port: u16) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(60)));
    let _ = conn.set_nodelay(true);
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = conn;
    let body = format!("echo-{port}");
    for _ in 0..1_000_000 {
        let mut line = String::new();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let mut close = false;
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if !matches!(reader.read_line(&mut h), Ok(n) if n > 0) {
                return;
            }
            let t = h.trim_end().to_ascii_lowercase();
            if t.is_empty() {
                break;
            }
            if let Some(v) = t.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            close |= t == "connection: close";
        }
        let mut discard = vec![0; length];
        if reader.read_exact(&mut discard).is_err() {
            return;
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(resp.as_bytes()).is_err() || close {
            return;
        }
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Read one response; `Err((stale, msg))`, stale = closed before any byte.
fn read_response(r: &mut BufReader<TcpStream>) -> Result<(u16, String, bool), (bool, String)> {
    let mut status = String::new();
    match r.read_line(&mut status) {
        Ok(0) => return Err((true, "closed before the response".into())),
        Ok(_) => {}
        Err(e) => {
            let stale = matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
            return Err((stale, e.to_string()));
        }
    }
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or((false, format!("bad status line {status:?}")))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut h = String::new();
        match r.read_line(&mut h) {
            Ok(0) => return Err((false, "closed in headers".into())),
            Ok(_) => {}
            Err(e) => return Err((false, e.to_string())),
        }
        let t = h.trim_end().to_ascii_lowercase();
        if t.is_empty() {
            break;
        }
        if let Some(v) = t.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        close |= t == "connection: close";
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)
        .map_err(|e| (false, e.to_string()))?;
    Ok((code, String::from_utf8_lossy(&body).into_owned(), close))
}

fn get(port: u16, host: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = connect(port).map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    read_response(&mut r)
        .map(|(c, b, _)| (c, b))
        .map_err(|(_, e)| e)
}

/// Keep-alive client with the standard retry of a request sent on an idle
/// connection the server closed (RFC 9112 §9.3.1).
struct KeepAlive {
    port: u16,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
    retried: u64,
}

impl KeepAlive {
    fn get(&mut self, host: &str) -> Result<(u16, String), String> {
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let s = connect(self.port).map_err(|e| e.to_string())?;
                let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
                self.conn = Some((s, r));
            }
            let (s, r) = self.conn.as_mut().expect("connected");
            let res =
                match s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()) {
                    Ok(()) => read_response(r),
                    Err(e) => Err((true, e.to_string())),
                };
            match res {
                Ok((code, body, close)) => {
                    if close {
                        self.conn = None;
                    }
                    return Ok((code, body));
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

fn manifest(i: usize, port: u16, annotation: &str) -> String {
    let ns = format!("ns{}", i % 20);
    format!(
        "apiVersion: route.openshift.io/v1
kind: Route
metadata:
  name: r{i}
  namespace: {ns}
  creationTimestamp: \"2026-01-01T00:00:00Z\"
  annotations: {{{annotation}}}
spec:
  host: r{i}.bench.example.com
  to: {{kind: Service, name: s{i}}}
---
apiVersion: v1
kind: Service
metadata: {{name: s{i}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80, targetPort: {port}}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: s{i}-1
  namespace: {ns}
  labels: {{kubernetes.io/service-name: s{i}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints:
- addresses: [\"127.0.0.1\"]
"
    )
}

fn write_atomic(dir: &Path, name: &str, text: &str) -> Result<(), String> {
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, dir.join(name)).map_err(|e| format!("{name}: {e}"))
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Sum of every series of a family (`name{...} v` and `name v`).
fn metric_sum(text: &str, family: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

struct Routegen {
    child: Child,
    out: PathBuf,
}

impl Drop for Routegen {
    fn drop(&mut self) {
        // Graceful: SIGTERM lets routegen stop its HAProxy.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Ok(pid) = fs::read_to_string(self.out.join("haproxy.pid")) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", pid.trim())])
                .status();
        }
    }
}

fn measure() -> Result<bool, String> {
    let started = Instant::now();
    let over_budget = || started.elapsed() > TOTAL_BUDGET;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let routegen = exe.parent().ok_or("no directory")?.join("routegen");
    if !routegen.is_file() {
        return Err(format!(
            "{} not found: build it next to this binary (cargo build --release --bin routegen)",
            routegen.display()
        ));
    }
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let manifests = tmp.path().join("manifests");
    let out = tmp.path().join("out");
    fs::create_dir(&manifests).map_err(|e| e.to_string())?;

    let ports = start_echo(1 + ALT_PORTS)?;
    let base = ports[0];
    for i in 0..ROUTES {
        write_atomic(&manifests, &format!("r{i:04}.yaml"), &manifest(i, base, ""))?;
    }
    let (http, https, listen) = (free_port()?, free_port()?, free_port()?);
    let log = fs::File::create(tmp.path().join("routegen.log")).map_err(|e| e.to_string())?;
    let child = Command::new(&routegen)
        .env("ROUTEGEN_LOG", "warn")
        .arg("run")
        .arg("--source")
        .arg(format!("dir:{}", manifests.display()))
        .arg("--out")
        .arg(&out)
        .arg("--spawn-haproxy")
        .args(["--http-bind", &format!("127.0.0.1:{http}")])
        .args(["--https-bind", &format!("127.0.0.1:{https}")])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--allow-loopback-endpoints", "--maxconn", "4000"])
        // Extra flags for routegen: `routegen-measure -- --runtime-api off`.
        .args(std::env::args().skip_while(|a| a != "--").skip(1))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", routegen.display()))?;
    let pid = child.id();
    let rg = Routegen {
        child,
        out: out.clone(),
    };
    let ops = |path: &str| get(listen, "localhost", path).ok();
    let metrics = || ops("/metrics").map(|r| r.1).unwrap_or_default();
    let reloads_series = "routegen_reloads_total{result=\"success\",reason=\"master_cli\"}";

    // Ready with 1,000 Routes.
    let t = Instant::now();
    loop {
        if ops("/readyz").is_some_and(|r| r.0 == 200) {
            break;
        }
        if t.elapsed() > Duration::from_secs(60) {
            return Err("routegen not ready within 60 s".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
    let ready_after = t.elapsed();
    let first = get(http, "r0.bench.example.com", "/")?;
    if first.1 != format!("echo-{base}") {
        return Err(format!("unexpected first answer {first:?}"));
    }

    // Idle RSS.
    thread::sleep(Duration::from_secs(3));
    let rss_idle = rss_kib(pid, "VmRSS:").unwrap_or(0);

    // Burst of 1,000 file changes.
    let m = metrics();
    let reloads_before = metric(&m, reloads_series);
    let applies_before = metric(
        &m,
        "routegen_applies_total{result=\"success\",reason=\"config_changed\"}",
    );
    let t = Instant::now();
    for i in 0..ROUTES {
        write_atomic(
            &manifests,
            &format!("r{i:04}.yaml"),
            &manifest(i, base, "haproxy.router.openshift.io/timeout: 31s"),
        )?;
    }
    let burst_write = t.elapsed();
    // Quiet: no new reload for 3 s after the burst's reload(s).
    let mut last = metric(&metrics(), reloads_series);
    let mut last_change = Instant::now();
    while last_change.elapsed() < Duration::from_secs(3) || last <= reloads_before {
        if t.elapsed() > Duration::from_secs(60) {
            return Err("burst did not settle within 60 s".into());
        }
        thread::sleep(Duration::from_millis(100));
        let now = metric(&metrics(), reloads_series);
        if now != last {
            last = now;
            last_change = Instant::now();
        }
    }
    let m = metrics();
    let burst_reloads = metric(&m, reloads_series) - reloads_before;
    let burst_applies = metric(
        &m,
        "routegen_applies_total{result=\"success\",reason=\"config_changed\"}",
    ) - applies_before;
    let burst_served = get(http, "r999.bench.example.com", "/")?;
    let rss_after_burst = rss_kib(pid, "VmRSS:").unwrap_or(0);

    // Latency of 50 changes under a request loop.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for keep_alive in [true, false] {
        let stop = stop.clone();
        let expect = format!("echo-{base}");
        clients.push(thread::spawn(move || {
            let (mut ok, mut failed, mut examples) = (0u64, 0u64, Vec::new());
            let mut ka = KeepAlive {
                port: http,
                conn: None,
                retried: 0,
            };
            let deadline = Instant::now() + Duration::from_secs(200);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                let r = if keep_alive {
                    ka.get("r999.bench.example.com")
                } else {
                    get(http, "r999.bench.example.com", "/")
                };
                match r {
                    Ok((200, body)) if body == expect => ok += 1,
                    other => {
                        failed += 1;
                        if examples.len() < 5 {
                            examples.push(format!("{other:?}"));
                        }
                    }
                }
                thread::sleep(Duration::from_millis(2));
            }
            (keep_alive, ok, failed, ka.retried, examples)
        }));
    }
    let reloads_before = metric(&metrics(), reloads_series);
    let applies_series = "routegen_applies_total{result=\"success\",reason=\"config_changed\"}";
    let applies_before = metric(&metrics(), applies_series);
    let mut latencies = Vec::new();
    let mut last_reload_seen = Instant::now();
    for c in 0..CHANGES {
        if over_budget() {
            break;
        }
        // Leave the minimum reload interval behind us, so the number is the
        // pipeline's latency, not the rate limit's.
        let since = last_reload_seen.elapsed();
        if since < CHANGE_SPACING {
            thread::sleep(CHANGE_SPACING - since);
        }
        let route = c * 19 % (ROUTES - 1); // never r999, the loop's Route
        let port = ports[1 + c % ALT_PORTS];
        let want = format!("echo-{port}");
        let host = format!("r{route}.bench.example.com");
        let reloads_at_change = metric(&metrics(), reloads_series);
        let t = Instant::now();
        write_atomic(
            &manifests,
            &format!("r{route:04}.yaml"),
            &manifest(route, port, "haproxy.router.openshift.io/timeout: 31s"),
        )?;
        loop {
            if let Ok((200, body)) = get(http, &host, "/") {
                if body == want {
                    break;
                }
            }
            if t.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "change {c}: {host} did not answer {want} within 20 s"
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
        latencies.push(t.elapsed());
        // Wait for routegen to have counted the apply, and the reload when
        // the change needed one (it confirms after the new worker answers;
        // a change served through the runtime API needs none).
        let target = applies_before + (c + 1) as f64;
        let w = Instant::now();
        while metric(&metrics(), applies_series) < target && w.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(10));
        }
        let w = Instant::now();
        while metric(&metrics(), reloads_series) <= reloads_at_change
            && w.elapsed() < Duration::from_millis(1500)
        {
            thread::sleep(Duration::from_millis(10));
        }
        last_reload_seen = Instant::now();
    }
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let mut client_rows = Vec::new();
    let mut total_failed = 0;
    for c in clients {
        let (keep_alive, ok, failed, retried, examples) =
            c.join().map_err(|_| "client thread panicked")?;
        total_failed += failed;
        client_rows.push((keep_alive, ok, failed, retried, examples));
    }
    let m = metrics();
    let reloads_during = metric(&m, reloads_series) - reloads_before;
    let reload_failures = metric_sum(&m, "routegen_reloads_total") - metric(&m, reloads_series);
    let apply_sum = metric(&m, "routegen_apply_duration_seconds_sum");
    let apply_count = metric(&m, "routegen_apply_duration_seconds_count");
    let render_sum = metric(&m, "routegen_render_duration_seconds_sum");
    let render_count = metric(&m, "routegen_render_duration_seconds_count");
    let reload_sum = metric(&m, "routegen_reload_duration_seconds_sum");
    let reload_count = metric(&m, "routegen_reload_duration_seconds_count");
    let rss_end = rss_kib(pid, "VmRSS:").unwrap_or(0);
    let hwm = rss_kib(pid, "VmHWM:").unwrap_or(0);
    drop(rg);

    latencies.sort();
    let mut t = String::new();
    let _ = writeln!(t, "routegen run --spawn-haproxy, {ROUTES} plain-HTTP Routes (one file each), default --debounce 200ms and --min-reload-interval 1s; changes {}s apart",
        CHANGE_SPACING.as_secs());
    let _ = writeln!(t, "{:<58} value", "metric");
    let _ = writeln!(t, "{}", "-".repeat(80));
    let row = |t: &mut String, k: &str, v: String| {
        let _ = writeln!(t, "{k:<58} {v}");
    };
    row(
        &mut t,
        "start → /readyz 200 (first tree rendered, validated, HAProxy up)",
        format!("{:.0} ms", ready_after.as_secs_f64() * 1e3),
    );
    row(
        &mut t,
        &format!("change-to-serve latency p50 ({} changes)", latencies.len()),
        format!("{:.0} ms", percentile(&latencies, 50.0).as_secs_f64() * 1e3),
    );
    row(
        &mut t,
        &format!("change-to-serve latency p99 ({} changes)", latencies.len()),
        format!("{:.0} ms", percentile(&latencies, 99.0).as_secs_f64() * 1e3),
    );
    row(
        &mut t,
        "change-to-serve latency min / max",
        format!(
            "{:.0} / {:.0} ms",
            latencies.first().map_or(0.0, |d| d.as_secs_f64() * 1e3),
            latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
        ),
    );
    row(
        &mut t,
        &format!("burst: {ROUTES} files rewritten in"),
        format!("{:.0} ms", burst_write.as_secs_f64() * 1e3),
    );
    row(
        &mut t,
        "burst: reloads for the burst",
        format!("{burst_reloads:.0}"),
    );
    row(
        &mut t,
        "burst: applies (new trees) for the burst",
        format!("{burst_applies:.0}"),
    );
    row(
        &mut t,
        "burst: traffic after the burst",
        format!("{} {}", burst_served.0, burst_served.1),
    );
    row(
        &mut t,
        "reloads during the request loop",
        format!("{reloads_during:.0}"),
    );
    for (keep_alive, ok, failed, retried, examples) in &client_rows {
        let kind = if *keep_alive {
            "keep-alive client"
        } else {
            "new-connection client"
        };
        row(
            &mut t,
            &format!("{kind}: requests ok / failed"),
            format!(
                "{ok} / {failed} {}",
                if examples.is_empty() {
                    String::new()
                } else {
                    format!("{examples:?}")
                }
            ),
        );
        if *keep_alive {
            row(
                &mut t,
                "keep-alive client: idle connections closed by a reload, retried",
                format!("{retried}"),
            );
        }
    }
    row(
        &mut t,
        "failed requests across the reloads (total)",
        format!("{total_failed}"),
    );
    row(
        &mut t,
        "failed reloads (all reasons)",
        format!("{reload_failures:.0}"),
    );
    row(
        &mut t,
        "mean apply (load+render+haproxy -c+swap)",
        format!(
            "{:.0} ms over {apply_count:.0}",
            if apply_count > 0.0 {
                apply_sum / apply_count * 1e3
            } else {
                0.0
            }
        ),
    );
    row(
        &mut t,
        "  of which admit + plan + render",
        format!(
            "{:.0} ms",
            if render_count > 0.0 {
                render_sum / render_count * 1e3
            } else {
                0.0
            }
        ),
    );
    row(
        &mut t,
        "mean reload (master CLI, confirmed)",
        format!(
            "{:.0} ms over {reload_count:.0}",
            if reload_count > 0.0 {
                reload_sum / reload_count * 1e3
            } else {
                0.0
            }
        ),
    );
    row(
        &mut t,
        "routegen RSS idle with 1,000 Routes (VmRSS)",
        format!("{:.1} MiB", rss_idle as f64 / 1024.0),
    );
    row(
        &mut t,
        "routegen RSS after the burst / at the end",
        format!(
            "{:.1} / {:.1} MiB",
            rss_after_burst as f64 / 1024.0,
            rss_end as f64 / 1024.0
        ),
    );
    row(
        &mut t,
        "routegen peak RSS (VmHWM)",
        format!("{:.1} MiB", hwm as f64 / 1024.0),
    );
    row(
        &mut t,
        "total measurement time",
        format!("{:.0} s", started.elapsed().as_secs_f64()),
    );
    print!("{t}");
    Ok(total_failed == 0 && latencies.len() == CHANGES)
}
