//! `routegen-bench lookup-cost`: does one tenant's Routes on its own host
//! cost other tenants' requests? (issue 17, item 3.)
//!
//! The fleet: `--routes` plain Routes, one host each (the innocent
//! tenants), and optionally an attacker with 1,024 Routes on its own host
//! whose paths are 1 to 1,024 segments deep (`/a`, `/a/a`, …, 2,048 bytes
//! at the deepest, `spec.path`'s bound). Each routegen binary given renders
//! both fleets with `routegen render` (so a build of an older commit can be
//! measured in the same run: `--before`), and HAProxy (`nbthread 1`) serves
//! each tree on 127.0.0.1 next to an origin frontend that answers every
//! backend's server itself.
//!
//! A measurement is `--requests` sequential requests on one keep-alive
//! connection (bounded in count and in time: 60 s at most), each timed from
//! the write of the request to the end of the response: a request to an
//! innocent Route (200) and one for an unknown host (503 from HAProxy).
//! Rounds interleave every configuration so drift on a shared machine hits
//! them alike; the table gives medians over rounds of each run's p50 and
//! p99, and the ratio with the attacker to without.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

/// Routes of the attacker, one path depth each.
pub const ATTACKER_DEPTHS: usize = 1024;
const ATTACKER_HOST: &str = "attacker.bench.example.com";
/// No measurement runs longer than this, whatever `--requests` says.
const MEASUREMENT_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Options of `lookup-cost`.
pub struct Options<'a> {
    /// `(label, routegen binary)`: "after" first, then "before" if given.
    pub binaries: Vec<(String, PathBuf)>,
    pub routes: usize,
    pub requests: usize,
    pub rounds: usize,
    pub haproxy: &'a Path,
}

/// The manifests: `routes` innocent Routes and, with `attacker`, the
/// attacker's 1,024; every Service's one endpoint is the origin.
fn fleet_yaml(routes: usize, attacker: bool, origin_port: u16) -> String {
    let mut out = String::new();
    let mut route = |ns: &str, name: &str, host: &str, path: Option<&str>| {
        let _ = write!(
            out,
            "---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: {name}\n  \
             namespace: {ns}\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\nspec:\n  host: {host}\n"
        );
        if let Some(path) = path {
            let _ = writeln!(out, "  path: {path}");
        }
        let _ = write!(
            out,
            "  to:\n    kind: Service\n    name: svc\n  port:\n    targetPort: http\n"
        );
    };
    for i in 0..routes {
        route(
            &format!("tenant-{i}"),
            "web",
            &format!("r-{i}.bench.example.com"),
            None,
        );
    }
    if attacker {
        for depth in 1..=ATTACKER_DEPTHS {
            route(
                "attacker",
                &format!("deep-{depth}"),
                ATTACKER_HOST,
                Some(&"/a".repeat(depth)),
            );
        }
    }
    let namespaces = (0..routes)
        .map(|i| format!("tenant-{i}"))
        .chain(attacker.then(|| "attacker".to_string()));
    for ns in namespaces {
        let _ = write!(
            out,
            "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc\n  namespace: {ns}\n\
             spec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: {origin_port}\n\
             ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
             name: svc-x\n  namespace: {ns}\n  labels:\n    kubernetes.io/service-name: svc\n\
             addressType: IPv4\nports:\n- name: http\n  port: {origin_port}\nendpoints:\n\
             - addresses: [\"127.0.0.1\"]\n  conditions:\n    ready: true\n"
        );
    }
    out
}

/// Render `manifests` with `routegen` into `out`; returns HAProxy's `-f`
/// paths. The per-host bound is lifted where the binary has one: the
/// benchmark measures the attacker's whole 1,024 Routes.
fn render(
    routegen: &Path,
    manifests: &Path,
    out: &Path,
    http_port: u16,
    https_port: u16,
    run_dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let help = Command::new(routegen)
        .args(["render", "--help"])
        .output()
        .with_context(|| format!("running {}", routegen.display()))?;
    let mut cmd = Command::new(routegen);
    cmd.arg("render")
        .arg("-f")
        .arg(manifests)
        .arg("--out")
        .arg(out)
        .arg(format!("--http-bind=127.0.0.1:{http_port}"))
        .arg(format!("--https-bind=127.0.0.1:{https_port}"))
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--allow-loopback-endpoints")
        .arg(format!("--maxconn={}", super::BENCH_MAXCONN));
    if String::from_utf8_lossy(&help.stdout).contains("--max-routes-per-host") {
        cmd.arg("--max-routes-per-host=0");
    }
    let output = cmd.stdin(Stdio::null()).output()?;
    if !output.status.success() {
        bail!(
            "{} render failed: {}",
            routegen.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut paths = vec![out.join("haproxy.cfg")];
    if out.join("backends").is_dir() {
        paths.push(out.join("backends"));
    }
    Ok(paths)
}

/// A HAProxy serving `configs`, stopped on drop.
struct Haproxy(Child);

impl Haproxy {
    fn start(haproxy: &Path, configs: &[PathBuf], port: u16) -> anyhow::Result<Haproxy> {
        let mut cmd = Command::new(haproxy);
        cmd.arg("-db");
        for cfg in configs {
            cmd.arg("-f").arg(cfg);
        }
        let mut child = Haproxy(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("starting haproxy")?,
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.0.try_wait()? {
                let mut text = String::new();
                if let Some(mut err) = child.0.stderr.take() {
                    let _ = err.read_to_string(&mut text);
                }
                bail!("haproxy exited ({status}): {}", text.trim());
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(child);
            }
            if Instant::now() > deadline {
                bail!("haproxy did not listen within 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// p50 and p99 of one measurement, µs.
#[derive(Clone, Copy)]
struct Latency {
    p50_us: f64,
    p99_us: f64,
}

/// One response's status, reading (and discarding) its body by
/// Content-Length.
fn read_response(conn: &mut BufReader<TcpStream>) -> anyhow::Result<u16> {
    let mut line = String::new();
    conn.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {line:?}"))?;
    let mut length = 0usize;
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            bail!("connection closed in the response head");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse()?;
            }
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)?;
    Ok(status)
}

/// `requests` sequential keep-alive requests for `host` (paths
/// `/items/<n>`), each expected to answer `status`.
fn measure(port: u16, host: &str, status: u16, requests: usize) -> anyhow::Result<Latency> {
    let stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut conn = BufReader::new(stream);
    let started = Instant::now();
    let mut took = Vec::with_capacity(requests);
    for n in 0..requests {
        if started.elapsed() > MEASUREMENT_TIME_LIMIT {
            break;
        }
        let request = format!("GET /items/{n} HTTP/1.1\r\nhost: {host}\r\n\r\n");
        let sent = Instant::now();
        conn.get_mut().write_all(request.as_bytes())?;
        let got = read_response(&mut conn)?;
        took.push(sent.elapsed().as_secs_f64() * 1e6);
        if got != status {
            bail!("{host}: status {got}, expected {status}");
        }
    }
    // The first requests warm HAProxy's and the kernel's caches up.
    let warm = took.split_off(took.len() / 10);
    let mut sorted = warm;
    sorted.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    Ok(Latency {
        p50_us: at(0.5),
        p99_us: at(0.99),
    })
}

/// Run the comparison and return the Markdown table.
pub fn run(opts: &Options<'_>, work: &Path) -> anyhow::Result<String> {
    if opts.requests < 100 {
        bail!("--requests: at least 100");
    }
    let [origin_port, http_port, https_port] = super::free_ports()?;
    let run_dir = tempfile::Builder::new().prefix("rgl-").tempdir_in("/tmp")?;
    let base = work.join("lookup");
    let _ = std::fs::remove_dir_all(&base);
    let origin = super::routing::origin_config(origin_port, &base)?;
    // (binary label, attacker) -> HAProxy's -f paths.
    let mut setups: Vec<(String, bool, Vec<PathBuf>)> = Vec::new();
    for attacker in [false, true] {
        let manifests = base.join(if attacker { "attacked" } else { "quiet" });
        std::fs::create_dir_all(&manifests)?;
        std::fs::write(
            manifests.join("fleet.yaml"),
            fleet_yaml(opts.routes, attacker, origin_port),
        )?;
        for (label, binary) in &opts.binaries {
            let out = base.join(format!(
                "{label}-{}",
                if attacker { "attacked" } else { "quiet" }
            ));
            let mut configs = render(
                binary,
                &manifests,
                &out,
                http_port,
                https_port,
                run_dir.path(),
            )
            .with_context(|| format!("{label}, attacker {attacker}"))?;
            configs.push(origin.clone());
            setups.push((label.clone(), attacker, configs));
        }
    }
    let innocent = format!("r-{}.bench.example.com", opts.routes / 2);
    let kinds = [
        ("innocent Route (200)", innocent.as_str(), 200),
        ("unknown host (503)", "nobody.bench.example.com", 503),
    ];
    // (setup, kind) -> measurements over rounds.
    let mut results: Vec<Vec<Vec<Latency>>> = vec![vec![Vec::new(); kinds.len()]; setups.len()];
    for round in 0..opts.rounds {
        for (s, (label, attacker, configs)) in setups.iter().enumerate() {
            let _haproxy = Haproxy::start(opts.haproxy, configs, http_port)
                .with_context(|| format!("{label}, attacker {attacker}"))?;
            for (k, (kind, host, status)) in kinds.iter().enumerate() {
                let m = measure(http_port, host, *status, opts.requests)
                    .with_context(|| format!("{label}, attacker {attacker}, {kind}"))?;
                eprintln!(
                    "round {}: {label}, attacker {attacker}, {kind}: p50 {:.0} µs, p99 {:.0} µs",
                    round + 1,
                    m.p50_us,
                    m.p99_us
                );
                results[s][k].push(m);
            }
        }
    }
    let median = |v: &[Latency], f: fn(&Latency) -> f64| {
        let mut values: Vec<f64> = v.iter().map(f).collect();
        super::median(&mut values)
    };
    let mut out = format!(
        "{} innocent Routes; the attacker adds {ATTACKER_DEPTHS} Routes on its own host, paths 1 to {ATTACKER_DEPTHS} segments deep. \
         Medians of {} rounds of {} keep-alive requests each (the first tenth not counted).\n\n\
         | routegen | request | p50 without / with attacker | p99 without / with attacker | p50 with / without |\n\
         |---|---|---:|---:|---:|\n",
        opts.routes, opts.rounds, opts.requests
    );
    for (label, _) in &opts.binaries {
        let index = |attacker: bool| {
            setups
                .iter()
                .position(|(l, a, _)| l == label && *a == attacker)
                .expect("every binary has both setups")
        };
        let (quiet, attacked) = (index(false), index(true));
        for (k, (kind, _, _)) in kinds.iter().enumerate() {
            let p50 = |s: usize| median(&results[s][k], |m| m.p50_us);
            let p99 = |s: usize| median(&results[s][k], |m| m.p99_us);
            let _ = writeln!(
                out,
                "| {label} | {kind} | {:.0} / {:.0} µs | {:.0} / {:.0} µs | {:.2} |",
                p50(quiet),
                p50(attacked),
                p99(quiet),
                p99(attacked),
                p50(attacked) / p50(quiet)
            );
        }
    }
    Ok(out)
}
