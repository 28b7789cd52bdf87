//! `routegen-measure`: change-to-serve figures of issue 15 ("changes
//! without reloads"), measured against the real `routegen run
//! --spawn-haproxy`, a real HAProxy, real backends and real traffic, with
//! the runtime API on and off side by side in one run.
//!
//! ```sh
//! cargo build --release -p routegen -p routegen-bench
//! target/release/routegen-measure --routes 10000      # uses target/release/routegen
//! target/release/routegen-measure --routes 1000 --endpoint-changes 1000
//! ```
//!
//! Per mode (`--modes on,off`: `--runtime-api on` / `off`), a fresh
//! directory of `--routes` manifest files (see `fleet.rs`), a fresh routegen
//! with `--debounce` (default 10 ms) and otherwise default timing, then:
//! 1. **Endpoint changes**: a third endpoint added to / removed from an
//!    endpoint Route; the time from the file's rename into place until a
//!    request is answered by the new endpoint / until four requests in a
//!    row (round robin over three) no longer reach the removed one.
//! 2. **Certificate rotations**: an edge Route's certificate replaced; the
//!    time until a TLS handshake with its SNI presents the new one.
//! 3. **Route added → served** (200 from its endpoint) and **Route removed
//!    → 503**.
//! 4. **One Route changed that needs a reload** (a timeout annotation):
//!    `validation_ms` and `duration_ms` of routegen's "applied tree" log
//!    line, and the time until the reload is confirmed.
//! 5. **Mixed churn** at a steady rate (90% endpoint, 5% Route add/remove,
//!    3% certificate, 2% annotation) under three bounded clients
//!    (keep-alive and new-connection on unchanged Routes, new-connection
//!    over the endpoint Routes being changed), counting failed requests,
//!    reloads, and old workers alive (master CLI `show proc` every 100 ms).
//!
//! Changes of 1–4 are made one at a time: the next waits until routegen
//! has reported the pass and, when the change needed a reload, until the
//! reload is confirmed and the pacing interval has passed (so the figures
//! are latencies, not the rate limit). Reloads and the reasons counted come
//! from `/metrics`. Every phase has a share of `--budget`; a phase that
//! runs out stops early and says how many changes it made.
//!
//! Prints a Markdown table (both modes side by side, targets, peers'
//! published figures). Exit status 1 if a change was not served in time
//! or a request failed.

/// mimalloc, as the other binaries of the workspace.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod fleet;
mod net;
mod report;

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use routegen_bench::{FleetCert, Rng};

use fleet::{Kind, RouteSpec};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "routegen-measure",
    about = "Change-to-serve with the runtime API on and off (issue 15)"
)]
pub struct Args {
    /// Routes in the fleet.
    #[arg(long, default_value_t = 10_000)]
    routes: usize,
    /// Runtime-API modes, run one after the other (`on`, `off`).
    #[arg(long, default_value = "on,off", value_delimiter = ',')]
    modes: Vec<String>,
    /// routegen's `--debounce`.
    #[arg(long, default_value = "10ms")]
    debounce: String,
    /// Endpoint changes with `--runtime-api on`.
    #[arg(long, default_value_t = 100)]
    endpoint_changes: usize,
    /// Endpoint changes with `--runtime-api off` (each one is a reload).
    #[arg(long, default_value_t = 20)]
    endpoint_changes_off: usize,
    /// Certificate rotations (on).
    #[arg(long, default_value_t = 20)]
    cert_rotations: usize,
    /// Certificate rotations (off).
    #[arg(long, default_value_t = 6)]
    cert_rotations_off: usize,
    /// Routes added then removed (on).
    #[arg(long, default_value_t = 10)]
    route_changes: usize,
    /// Routes added then removed (off).
    #[arg(long, default_value_t = 5)]
    route_changes_off: usize,
    /// Single changes that need a reload (timeout annotation), each mode.
    #[arg(long, default_value_t = 5)]
    reload_changes: usize,
    /// Changes of the mixed churn, each mode (0: no churn).
    #[arg(long, default_value_t = 1000)]
    churn: usize,
    /// Changes per second of the mixed churn.
    #[arg(long, default_value_t = 20.0)]
    churn_rate: f64,
    /// routegen's `--maxconn` (HAProxy reserves two descriptors per
    /// connection; the sandbox allows 20,000).
    #[arg(long, default_value_t = 4000)]
    maxconn: u32,
    /// Bound of the whole run, in seconds (split between the modes and
    /// their phases).
    #[arg(long, default_value_t = 900)]
    budget: u64,
    /// Seed of the churn's order.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Echo backend ports.
    #[arg(long, default_value_t = 64)]
    echo_ports: usize,
    /// The routegen binary (default: next to this one).
    #[arg(long)]
    routegen: Option<PathBuf>,
    /// Keep each mode's directory (manifests, tree, routegen.log) here.
    #[arg(long)]
    keep: Option<PathBuf>,
}

const RELOADS: &str =
    "routegen_reloads_total{result=\"success\",method=\"master_cli\",reason=\"none\"}";
const APPLIES: &str = "routegen_applies_total{result=\"success\",reason=\"config_changed\"}";
const RELOAD_TREES: &str = "routegen_changes_total{path=\"reload\",kind=\"tree\"}";
const RELOAD_SUM: &str = "routegen_reload_duration_seconds_sum";
const RELOAD_COUNT: &str = "routegen_reload_duration_seconds_count";
const OLD_WORKERS: &str = "routegen_haproxy_old_workers";
/// Pause between two requests of a probe.
const POLL: Duration = Duration::from_millis(2);
/// Pause between two TLS handshakes of a probe.
const TLS_POLL: Duration = Duration::from_millis(5);
/// Longest wait for one change to be served.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args = Args::parse();
    match measure(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("routegen-measure: {e}");
            ExitCode::from(1)
        }
    }
}

/// `/metrics` as series → value.
pub type Snap = BTreeMap<String, f64>;

fn val(m: &Snap, series: &str) -> f64 {
    m.get(series).copied().unwrap_or(0.0)
}

/// The non-zero differences of a family's series.
fn family_delta(before: &Snap, after: &Snap, family: &str) -> Vec<(String, f64)> {
    after
        .iter()
        .filter(|(k, _)| k.starts_with(family) && k[family.len()..].starts_with('{'))
        .map(|(k, v)| (k[family.len()..].to_string(), v - val(before, k)))
        .filter(|(_, d)| *d != 0.0)
        .collect()
}

/// One "applied tree" line of routegen's log.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    pub load_ms: u64,
    pub render_ms: u64,
    pub validation_ms: u64,
    pub duration_ms: u64,
    /// "live: … (N commands, X µs)".
    pub live: Option<(u64, u64)>,
    pub reload: bool,
}

fn parse_applied(line: &str) -> Option<Applied> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let message = v.get("message")?.as_str()?;
    if !message.starts_with("applied tree") {
        return None;
    }
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let live = message.rfind(" commands, ").and_then(|at| {
        let commands = message[..at].rsplit('(').next()?.trim().parse().ok()?;
        let us = message[at + " commands, ".len()..]
            .split(' ')
            .next()?
            .parse()
            .ok()?;
        Some((commands, us))
    });
    Some(Applied {
        load_ms: n("load_ms"),
        render_ms: n("render_ms"),
        validation_ms: n("validation_ms"),
        duration_ms: n("duration_ms"),
        live,
        reload: message.contains("; reload"),
    })
}

/// Figures of one phase.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Change → served, one per change.
    pub lat: Vec<Duration>,
    pub reloads: f64,
    pub applied: Vec<Applied>,
    /// Deltas of `routegen_changes_total` and `routegen_reload_reasons_total`.
    pub counted: BTreeMap<String, f64>,
    pub planned: usize,
    pub errors: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Churn {
    pub planned: usize,
    pub done: usize,
    pub took: Duration,
    pub settle: Duration,
    pub reloads: f64,
    pub counted: BTreeMap<String, f64>,
    pub ok: u64,
    pub failed: u64,
    pub examples: Vec<String>,
    pub retried: u64,
    pub max_old_workers: usize,
    pub applied: Vec<Applied>,
}

#[derive(Clone, Debug, Default)]
pub struct ModeResult {
    pub mode: String,
    pub ready: Duration,
    pub rss_idle_kib: u64,
    pub rss_hwm_kib: u64,
    pub endpoint: Figures,
    pub endpoint_add: Vec<Duration>,
    pub endpoint_remove: Vec<Duration>,
    pub cert: Figures,
    pub route_add: Figures,
    pub route_remove: Figures,
    pub reload: Figures,
    pub churn: Churn,
    pub took: Duration,
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

/// `10ms`, `1s`, `1.5s` → duration: routegen's own syntax (`humantime`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("duration {s:?}: {e}"))
}

/// routegen and its HAProxy, stopped on drop.
struct Harness {
    child: Child,
    _dir: Option<tempfile::TempDir>,
    manifests: PathBuf,
    out: PathBuf,
    log: PathBuf,
    http: u16,
    https: u16,
    listen: u16,
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Graceful: SIGTERM lets routegen stop its HAProxy.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
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

impl Harness {
    fn snap(&self) -> Snap {
        for _ in 0..5 {
            if let Ok((200, text)) = net::get(self.listen, "localhost", "/metrics") {
                return text
                    .lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| {
                        let (k, v) = l.rsplit_once(' ')?;
                        Some((k.to_string(), v.parse().ok()?))
                    })
                    .collect();
            }
            thread::sleep(Duration::from_millis(50));
        }
        Snap::new()
    }

    fn log_len(&self) -> u64 {
        fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    fn applied_since(&self, offset: u64) -> Vec<Applied> {
        let Ok(mut f) = fs::File::open(&self.log) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(offset)).is_err() {
            return Vec::new();
        }
        BufReader::new(f)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| parse_applied(&l))
            .collect()
    }

    fn master_socket(&self) -> PathBuf {
        self.out.join("master.sock")
    }

    /// After a change was served: wait until routegen reported its pass
    /// and, when the pass asked for a reload, until the reload is
    /// confirmed and routegen's pacing interval (the last reload's cost,
    /// at least `--min-reload-interval` 1 s, doubled per old worker) has
    /// passed.
    fn settle(&self, before: &Snap) -> Snap {
        let t = Instant::now();
        let mut m = self.snap();
        while val(&m, APPLIES) <= val(before, APPLIES) && t.elapsed() < CHANGE_TIMEOUT {
            thread::sleep(Duration::from_millis(5));
            m = self.snap();
        }
        if val(&m, RELOAD_TREES) > val(before, RELOAD_TREES) {
            while val(&m, RELOADS) <= val(before, RELOADS) && t.elapsed() < CHANGE_TIMEOUT {
                thread::sleep(Duration::from_millis(10));
                m = self.snap();
            }
            self.pace(before, &m);
            m = self.snap();
        }
        m
    }

    /// Sleep routegen's reload pacing interval after the reloads between
    /// `before` and `after`.
    fn pace(&self, before: &Snap, after: &Snap) {
        let n = val(after, RELOAD_COUNT) - val(before, RELOAD_COUNT);
        let cost = if n > 0.0 {
            (val(after, RELOAD_SUM) - val(before, RELOAD_SUM)) / n
        } else {
            0.0
        };
        let old = val(after, OLD_WORKERS).clamp(0.0, 4.0) as u32;
        let gap = Duration::from_secs_f64(cost.max(1.0)) * (1 << old) + Duration::from_millis(300);
        thread::sleep(gap.min(Duration::from_secs(30)));
    }

    /// Probe every `every` until `probe` says yes (requests cost CPU that
    /// routegen and HAProxy share on this machine: 2 ms between requests,
    /// 5 ms between TLS handshakes).
    fn until<T>(
        &self,
        what: &str,
        every: Duration,
        mut probe: impl FnMut() -> Option<T>,
    ) -> Result<(Instant, T), String> {
        let t = Instant::now();
        loop {
            if let Some(v) = probe() {
                return Ok((Instant::now(), v));
            }
            if t.elapsed() > CHANGE_TIMEOUT {
                return Err(format!("{what}: not within {CHANGE_TIMEOUT:?}"));
            }
            thread::sleep(every);
        }
    }

    /// A request to `host` answered by `want`.
    fn until_answer(&self, host: &str, want: &str) -> Result<Instant, String> {
        self.until(&format!("{host} answered by {want}"), POLL, || {
            matches!(net::get(self.http, host, "/"), Ok((200, ref b)) if b == want).then_some(())
        })
        .map(|(t, ())| t)
    }

    /// Four requests in a row to `host` answered, none by `gone`: the
    /// time of the first of them.
    fn until_gone(&self, host: &str, gone: &str) -> Result<Instant, String> {
        let mut first: Option<Instant> = None;
        let mut run = 0;
        self.until(&format!("{host} no longer reaching {gone}"), POLL, || {
            match net::get(self.http, host, "/") {
                Ok((200, b)) if b != gone => {
                    first.get_or_insert_with(Instant::now);
                    run += 1;
                }
                _ => {
                    first = None;
                    run = 0;
                }
            }
            if run >= 4 {
                first
            } else {
                None
            }
        })
        .map(|(_, t)| t)
    }

    fn until_status(&self, host: &str, status: u16) -> Result<Instant, String> {
        self.until(&format!("{host} answering {status}"), POLL, || {
            matches!(net::get(self.http, host, "/"), Ok((s, _)) if s == status).then_some(())
        })
        .map(|(t, ())| t)
    }

    fn until_cert(&self, sni: &str, digest: &[u8]) -> Result<Instant, String> {
        self.until(
            &format!("{sni} presenting its new certificate"),
            TLS_POLL,
            || {
                net::presented_digest(self.https, sni)
                    .ok()
                    .filter(|d| d == digest)
                    .map(|_| ())
            },
        )
        .map(|(t, ())| t)
    }
}

/// What the tool knows of the fleet it wrote (the truth routegen reads).
struct World {
    routes: BTreeMap<usize, RouteSpec>,
    ports: Vec<u16>,
    next_new: usize,
    /// Cursors of the change generators.
    endpoint_cursor: usize,
    edge_cursor: usize,
    annotation_cursor: usize,
    timeout_value: u32,
}

impl World {
    fn indices(&self, pred: impl Fn(&RouteSpec) -> bool) -> Vec<usize> {
        self.routes
            .values()
            .filter(|r| pred(r) && !fleet::CLIENT_ROUTES.contains(&r.index))
            .map(|r| r.index)
            .collect()
    }

    fn endpoint_routes(&self) -> Vec<usize> {
        self.indices(|r| matches!(r.kind, Kind::Endpoints))
    }

    fn edge_routes(&self) -> Vec<usize> {
        self.indices(|r| matches!(r.kind, Kind::Edge(_)))
    }

    /// Add or remove the third endpoint of the next endpoint Route:
    /// `(index, added, port)`.
    fn toggle_endpoint(&mut self, dir: &Path) -> Result<(usize, bool, u16), String> {
        let pool = self.endpoint_routes();
        let index = pool[(self.endpoint_cursor / 2) % pool.len()];
        self.endpoint_cursor += 1;
        let ports = self.ports.clone();
        let r = self.routes.get_mut(&index).expect("listed");
        let (added, port) = if r.ports.len() == 2 {
            let port = *ports
                .iter()
                .find(|p| !r.ports.contains(p))
                .expect("more echo ports than endpoints");
            r.ports.push(port);
            (true, port)
        } else {
            (false, r.ports.pop().expect("three endpoints"))
        };
        r.write(dir)?;
        Ok((index, added, port))
    }

    fn rotate_cert(&mut self, dir: &Path, cert: FleetCert) -> Result<usize, String> {
        let edges = self.edge_routes();
        let index = edges[self.edge_cursor % edges.len()];
        self.edge_cursor += 1;
        let r = self.routes.get_mut(&index).expect("listed");
        r.kind = Kind::Edge(cert);
        r.write(dir)?;
        Ok(index)
    }

    fn add_route(&mut self, dir: &Path) -> Result<(usize, u16), String> {
        let index = self.next_new;
        self.next_new += 1;
        // index % 10 == 1 for every new Route: a plain one.
        let index = index * 10 + 1;
        let port = self.ports[index % self.ports.len()];
        let r = RouteSpec {
            index,
            kind: Kind::Plain,
            ports: vec![port],
            timeout: None,
        };
        r.write(dir)?;
        self.routes.insert(index, r);
        Ok((index, port))
    }

    fn remove_route(&mut self, dir: &Path, index: usize) -> Result<(), String> {
        self.routes.remove(&index);
        fleet::remove(dir, index)
    }

    /// A new timeout annotation on the next plain Route (`i % 10` 3 or 7).
    fn change_annotation(&mut self, dir: &Path) -> Result<usize, String> {
        let plain = self.indices(|r| {
            matches!(r.kind, Kind::Plain) && matches!(r.index % 10, 3 | 7) && r.index < 1 << 40
        });
        let index = plain[self.annotation_cursor % plain.len()];
        self.annotation_cursor += 1;
        self.timeout_value = 30 + (self.timeout_value + 1) % 60;
        let r = self.routes.get_mut(&index).expect("listed");
        r.timeout = Some(self.timeout_value);
        r.write(dir)?;
        Ok(index)
    }
}

fn measure(args: &Args) -> Result<bool, String> {
    if args.routes < 20 {
        return Err("--routes: at least 20".into());
    }
    let started = Instant::now();
    let routegen = match &args.routegen {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("no directory")?
            .join("routegen"),
    };
    if !routegen.is_file() {
        return Err(format!(
            "{} not found: build it next to this binary (cargo build --release -p routegen)",
            routegen.display()
        ));
    }
    let debounce = parse_duration(&args.debounce)?;
    let ports = net::start_echo(args.echo_ports.max(4))?;
    // The fleet's certificates, shared by the modes.
    let t = Instant::now();
    let hosts: Vec<(usize, String)> = (0..args.routes)
        .filter(|i| i % 10 == 5)
        .map(|i| (i, fleet::host(i)))
        .collect();
    // EC P-256 only (rotations make EC keys too: one figure, one key type).
    let mut certs: BTreeMap<usize, FleetCert> = BTreeMap::new();
    for (i, host) in &hosts {
        certs.insert(
            *i,
            FleetCert::generate(host, false).map_err(|e| e.to_string())?,
        );
    }
    eprintln!(
        "routegen-measure: {} certificates in {:.1} s",
        certs.len(),
        t.elapsed().as_secs_f64()
    );

    let mut results = Vec::new();
    let modes: Vec<String> = args.modes.iter().map(|m| m.trim().to_string()).collect();
    for (k, mode) in modes.iter().enumerate() {
        if mode != "on" && mode != "off" {
            return Err(format!("--modes: {mode:?} is neither on nor off"));
        }
        let left = Duration::from_secs(args.budget).saturating_sub(started.elapsed());
        let budget = left / (modes.len() - k) as u32;
        eprintln!(
            "routegen-measure: --runtime-api {mode}, {} Routes, budget {:.0} s",
            args.routes,
            budget.as_secs_f64()
        );
        results.push(run_mode(args, mode, &routegen, &ports, &certs, budget)?);
    }
    let ok = results.iter().all(|r| {
        let errors = [
            &r.endpoint,
            &r.cert,
            &r.route_add,
            &r.route_remove,
            &r.reload,
        ]
        .iter()
        .all(|f| f.errors.is_empty());
        errors && r.churn.failed == 0
    });
    print!(
        "{}",
        report::table(args, debounce, &results, started.elapsed())
    );
    Ok(ok)
}

fn start(
    args: &Args,
    mode: &str,
    routegen: &Path,
    world: &World,
) -> Result<(Harness, Duration, u32), String> {
    let (dir, base) = match &args.keep {
        Some(keep) => {
            let base = keep.join(format!("n{}-{mode}", args.routes));
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
            (None, base)
        }
        None => {
            let d = tempfile::tempdir().map_err(|e| e.to_string())?;
            let base = d.path().to_path_buf();
            (Some(d), base)
        }
    };
    let manifests = base.join("manifests");
    let out = base.join("out");
    fs::create_dir(&manifests).map_err(|e| e.to_string())?;
    for r in world.routes.values() {
        r.write(&manifests)?;
    }
    let (http, https, listen) = (net::free_port()?, net::free_port()?, net::free_port()?);
    let log = base.join("routegen.log");
    let log_file = fs::File::create(&log).map_err(|e| e.to_string())?;
    let child = Command::new(routegen)
        .env("ROUTEGEN_LOG", "info")
        .arg("run")
        .arg("--source")
        .arg(format!("dir:{}", manifests.display()))
        .arg("--out")
        .arg(&out)
        .arg("--spawn-haproxy")
        .args(["--http-bind", &format!("127.0.0.1:{http}")])
        .args(["--https-bind", &format!("127.0.0.1:{https}")])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .args(["--allow-loopback-endpoints", "--log-format", "json"])
        .args(["--maxconn", &args.maxconn.to_string()])
        .args(["--debounce", &args.debounce])
        .args(["--runtime-api", mode])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("{}: {e}", routegen.display()))?;
    let pid = child.id();
    let h = Harness {
        child,
        _dir: dir,
        manifests,
        out,
        log,
        http,
        https,
        listen,
    };
    let t = Instant::now();
    loop {
        if matches!(net::get(listen, "localhost", "/readyz"), Ok((200, _))) {
            break;
        }
        if t.elapsed() > Duration::from_secs(300) {
            return Err(format!(
                "routegen not ready within 300 s (log: {})",
                h.log.display()
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    let ready = t.elapsed();
    let r1 = &world.routes[&fleet::CLIENT_ROUTES[0]];
    h.until_answer(&fleet::host(r1.index), &format!("echo-{}", r1.ports[0]))?;
    Ok((h, ready, pid))
}

fn run_mode(
    args: &Args,
    mode: &str,
    routegen: &Path,
    ports: &[u16],
    certs: &BTreeMap<usize, FleetCert>,
    budget: Duration,
) -> Result<ModeResult, String> {
    let mode_start = Instant::now();
    let mut world = World {
        routes: (0..args.routes)
            .map(|i| (i, RouteSpec::of_fleet(i, ports, certs.get(&i).cloned())))
            .collect(),
        ports: ports.to_vec(),
        next_new: args.routes,
        endpoint_cursor: 0,
        edge_cursor: 0,
        annotation_cursor: 0,
        timeout_value: 0,
    };
    let (h, ready, pid) = start(args, mode, routegen, &world)?;
    thread::sleep(Duration::from_secs(2));
    let mut res = ModeResult {
        mode: mode.to_string(),
        ready,
        rss_idle_kib: rss_kib(pid, "VmRSS:").unwrap_or(0),
        ..ModeResult::default()
    };
    // Shares of the budget, cumulative: endpoints, certificates, Routes,
    // reload-needing changes, churn.
    let shares = [0.30, 0.40, 0.60, 0.70, 1.0];
    let deadline = |k: usize| mode_start + budget.mul_f64(shares[k]);
    let on = mode == "on";
    let dir = h.manifests.clone();

    // 1. Endpoint changes.
    let n = if on {
        args.endpoint_changes
    } else {
        args.endpoint_changes_off
    };
    res.endpoint = phase(&h, n, deadline(0), |h, _| {
        let (index, added, port) = world.toggle_endpoint(&dir)?;
        let t = Instant::now();
        let host = fleet::host(index);
        let echo = format!("echo-{port}");
        let at = if added {
            h.until_answer(&host, &echo)?
        } else {
            h.until_gone(&host, &echo)?
        };
        let d = at - t;
        if added {
            res.endpoint_add.push(d);
        } else {
            res.endpoint_remove.push(d);
        }
        Ok(d)
    });
    eprintln!("  endpoint changes: {}", res.endpoint.lat.len());

    // 2. Certificate rotations.
    let n = if on {
        args.cert_rotations
    } else {
        args.cert_rotations_off
    };
    res.cert = phase(&h, n, deadline(1), |h, _| {
        let edges = world.edge_routes();
        let index = edges[world.edge_cursor % edges.len()];
        let cert = FleetCert::generate(&fleet::host(index), false).map_err(|e| e.to_string())?;
        let digest = net::pem_digest(&cert.cert_pem)?;
        let index = world.rotate_cert(&dir, cert)?;
        let t = Instant::now();
        Ok(h.until_cert(&fleet::host(index), &digest)? - t)
    });
    eprintln!("  certificate rotations: {}", res.cert.lat.len());

    // 3. Routes added (served) then removed (503), in turns.
    let n = if on {
        args.route_changes
    } else {
        args.route_changes_off
    };
    res.route_add.planned = n;
    res.route_remove.planned = n;
    for _ in 0..n {
        if Instant::now() > deadline(2) {
            break;
        }
        let mut index = 0;
        one(&h, &mut res.route_add, |h, _| {
            let (i, port) = world.add_route(&dir)?;
            index = i;
            let t = Instant::now();
            Ok(h.until_answer(&fleet::host(i), &format!("echo-{port}"))? - t)
        });
        one(&h, &mut res.route_remove, |h, _| {
            world.remove_route(&dir, index)?;
            let t = Instant::now();
            Ok(h.until_status(&fleet::host(index), 503)? - t)
        });
        if res.route_add.errors.len() + res.route_remove.errors.len() >= 3 {
            break;
        }
    }
    eprintln!("  Routes added/removed: {}", res.route_add.lat.len());

    // 4. One change that needs a reload.
    res.reload = phase(&h, args.reload_changes, deadline(3), |h, before| {
        world.change_annotation(&dir)?;
        let t = Instant::now();
        let (at, ()) = h.until("the reload of a timeout annotation", POLL, || {
            (val(&h.snap(), RELOADS) > val(before, RELOADS)).then_some(())
        })?;
        Ok(at - t)
    });
    eprintln!("  reload-needing changes: {}", res.reload.lat.len());

    // 5. Mixed churn.
    if args.churn > 0 {
        res.churn = churn(args, &h, &mut world, deadline(4))?;
        eprintln!(
            "  churn: {} changes, {} reloads, {} failed requests",
            res.churn.done, res.churn.reloads, res.churn.failed
        );
    }
    res.rss_hwm_kib = rss_kib(pid, "VmHWM:").unwrap_or(0);
    res.took = mode_start.elapsed();
    drop(h);
    Ok(res)
}

/// Run up to `n` changes one at a time ([`one`]); stop at `deadline` or
/// after three errors.
fn phase(
    h: &Harness,
    n: usize,
    deadline: Instant,
    mut change: impl FnMut(&Harness, &Snap) -> Result<Duration, String>,
) -> Figures {
    let mut f = Figures {
        planned: n,
        ..Figures::default()
    };
    for _ in 0..n {
        if Instant::now() > deadline || f.errors.len() >= 3 {
            break;
        }
        one(h, &mut f, &mut change);
    }
    f
}

/// One change (`change` returns its change-to-serve time), then
/// [`Harness::settle`]; what it cost is added to `f`.
fn one(
    h: &Harness,
    f: &mut Figures,
    change: impl FnOnce(&Harness, &Snap) -> Result<Duration, String>,
) {
    let before = h.snap();
    let offset = h.log_len();
    match change(h, &before) {
        Ok(d) => f.lat.push(d),
        Err(e) => f.errors.push(e),
    }
    let after = h.settle(&before);
    f.reloads += val(&after, RELOADS) - val(&before, RELOADS);
    for family in ["routegen_changes_total", "routegen_reload_reasons_total"] {
        for (k, d) in family_delta(&before, &after, family) {
            *f.counted.entry(format!("{family}{k}")).or_default() += d;
        }
    }
    f.applied.extend(h.applied_since(offset));
    thread::sleep(Duration::from_millis(20));
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChurnOp {
    Endpoint,
    Route,
    Cert,
    Annotation,
}

fn churn(args: &Args, h: &Harness, world: &mut World, deadline: Instant) -> Result<Churn, String> {
    let n = args.churn;
    let counts = [
        (ChurnOp::Endpoint, n * 90 / 100),
        (ChurnOp::Route, n * 5 / 100),
        (ChurnOp::Cert, n * 3 / 100),
    ];
    let mut ops: Vec<ChurnOp> = Vec::with_capacity(n);
    for (op, c) in counts {
        ops.extend(std::iter::repeat_n(op, c));
    }
    ops.resize(n, ChurnOp::Annotation);
    let mut rng = Rng::new(args.seed);
    rng.shuffle(&mut ops);
    // Certificates made before the clock starts.
    let edges = world.edge_routes();
    let mut certs: VecDeque<FleetCert> = VecDeque::new();
    for k in 0..ops.iter().filter(|o| **o == ChurnOp::Cert).count() {
        let index = edges[(world.edge_cursor + k) % edges.len()];
        certs
            .push_back(FleetCert::generate(&fleet::host(index), false).map_err(|e| e.to_string())?);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let max_old = Arc::new(AtomicUsize::new(0));
    let bound = Instant::now() + Duration::from_secs(600);
    let mut clients = Vec::new();
    let endpoint_hosts: Vec<String> = world
        .endpoint_routes()
        .iter()
        .map(|i| fleet::host(*i))
        .collect();
    let http = h.http;
    for client in 0..3 {
        let stop = stop.clone();
        let fixed: Vec<(String, String)> = fleet::CLIENT_ROUTES
            .iter()
            .map(|i| {
                (
                    fleet::host(*i),
                    format!("echo-{}", world.routes[i].ports[0]),
                )
            })
            .collect();
        let endpoint_hosts = endpoint_hosts.clone();
        clients.push(thread::spawn(move || {
            let (mut ok, mut failed, mut examples) = (0u64, 0u64, Vec::new());
            let mut ka = net::KeepAlive::new(http);
            let mut k = 0usize;
            while !stop.load(Ordering::SeqCst) && Instant::now() < bound {
                let r = match client {
                    0 => ka.get(&fixed[0].0).map(|(s, b)| (s, b == fixed[0].1, b)),
                    1 => net::get(http, &fixed[1].0, "/").map(|(s, b)| (s, b == fixed[1].1, b)),
                    _ => {
                        k += 1;
                        let host = &endpoint_hosts[k % endpoint_hosts.len()];
                        net::get(http, host, "/").map(|(s, b)| (s, b.starts_with("echo-"), b))
                    }
                };
                match r {
                    Ok((200, true, _)) => ok += 1,
                    other => {
                        failed += 1;
                        if examples.len() < 5 {
                            examples.push(format!("client {client}: {other:?}"));
                        }
                    }
                }
                thread::sleep(Duration::from_millis(3));
            }
            (ok, failed, ka.retried, examples)
        }));
    }
    let sampler = {
        let stop = stop.clone();
        let max_old = max_old.clone();
        let socket = h.master_socket();
        thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) && Instant::now() < bound {
                if let Some(n) = net::old_workers(&socket) {
                    max_old.fetch_max(n, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let m0 = h.snap();
    let off0 = h.log_len();
    let dir = h.manifests.clone();
    let mut added: VecDeque<usize> = VecDeque::new();
    let mut add_next = true;
    let t0 = Instant::now();
    let mut done = 0;
    let mut error = None;
    for (k, op) in ops.iter().enumerate() {
        let at = t0 + Duration::from_secs_f64(k as f64 / args.churn_rate);
        if let Some(wait) = at.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if Instant::now() > deadline {
            break;
        }
        let r = match op {
            ChurnOp::Endpoint => world.toggle_endpoint(&dir).map(|_| ()),
            ChurnOp::Route => {
                let r = if add_next || added.is_empty() {
                    world.add_route(&dir).map(|(i, _)| added.push_back(i))
                } else {
                    let i = added.pop_front().expect("checked");
                    world.remove_route(&dir, i)
                };
                add_next = !add_next;
                r
            }
            ChurnOp::Cert => {
                let cert = certs.pop_front().expect("made above");
                world.rotate_cert(&dir, cert).map(|_| ())
            }
            ChurnOp::Annotation => world.change_annotation(&dir).map(|_| ()),
        };
        if let Err(e) = r {
            error = Some(e);
            break;
        }
        done += 1;
    }
    let took = t0.elapsed();
    // Quiet: nothing applied or reloaded for max(3 s, 2.5 × a reload).
    let t1 = Instant::now();
    let mut last = h.snap();
    let mut last_change = Instant::now();
    loop {
        thread::sleep(Duration::from_millis(200));
        let m = h.snap();
        let moved = [APPLIES, RELOADS, RELOAD_TREES]
            .iter()
            .any(|s| val(&m, s) != val(&last, s));
        let n = val(&m, RELOAD_COUNT);
        let cost = if n > 0.0 {
            val(&m, RELOAD_SUM) / n
        } else {
            0.0
        };
        let quiet = Duration::from_secs_f64((2.5 * cost).max(3.0));
        if moved {
            last_change = Instant::now();
        }
        last = m;
        if last_change.elapsed() >= quiet || t1.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let settle = t1.elapsed();
    stop.store(true, Ordering::SeqCst);
    let mut c = Churn {
        planned: n,
        done,
        took,
        settle,
        ..Churn::default()
    };
    for client in clients {
        let (ok, failed, retried, examples) = client.join().map_err(|_| "client panicked")?;
        c.ok += ok;
        c.failed += failed;
        c.retried += retried;
        c.examples.extend(examples);
    }
    let _ = sampler.join();
    let m1 = h.snap();
    c.reloads = val(&m1, RELOADS) - val(&m0, RELOADS);
    for family in ["routegen_changes_total", "routegen_reload_reasons_total"] {
        for (k, d) in family_delta(&m0, &m1, family) {
            c.counted.insert(format!("{family}{k}"), d);
        }
    }
    c.max_old_workers = max_old.load(Ordering::SeqCst);
    c.applied = h.applied_since(off0);
    if let Some(e) = error {
        c.examples.push(format!("churn stopped: {e}"));
    }
    Ok(c)
}
