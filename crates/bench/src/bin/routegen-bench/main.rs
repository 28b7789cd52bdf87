//! `routegen-bench`: whole-process figures for issue 7 (see BENCHMARKS.md).
//!
//! - `routegen-bench gen N [--seed S] > fleet.yaml`: the benchmark fleet;
//! - `routegen-bench run [--sizes 1000,10000,100000]`: the table. Each run
//!   of a size is a fresh process (`routegen-bench once`, internal) so
//!   "cold" is cold (empty certificate cache, fresh heap) and its peak RSS
//!   is its own. Medians over the runs; every run is bounded in time.
//!
//! Everything HAProxy is given listens on 127.0.0.1 only, and every
//! endpoint address of the fleet is in 127.0.0.0/8.

/// mimalloc: at 10,000 Routes and more, glibc malloc spends a quarter of
/// a pass consolidating and searching free lists (measured in
/// BENCHMARKS.md); mimalloc keeps passes and peak memory lower. It counts
/// live bytes for `routegen-bench memory` only.
#[global_allocator]
static ALLOCATOR: memory::CountingMimalloc = memory::CountingMimalloc;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Parser, Subcommand};

use routegen_bench::{Fleet, FleetCerts};
use routegen_core::admit;
use routegen_core::model::Snapshot;
use routegen_core::plan::PlanSettings;
use routegen_core::RouterSettings;
use routegen_host::apply::{Applier, ApplyOutcome};
use routegen_host::defaultcert;
use routegen_host::source::files;
use routegen_render::engine::Engine;
use routegen_render::output::OutputTree;
use routegen_render::pipeline::PipelineConfig;
use routegen_render::{BindAddr, RenderSettings, Target, Templates};

mod lookup;
mod memory;
mod routing;
mod sidecar;
mod trades;

#[derive(Parser, Debug)]
#[command(
    name = "routegen-bench",
    about = "Benchmarks of routegen at scale (issue 7)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Print a fleet of N Routes (with Services and EndpointSlices) as YAML.
    Gen {
        /// Number of Routes.
        routes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Where generated certificates are kept (default: target/routegen-bench-certs).
        #[arg(long)]
        cert_dir: Option<PathBuf>,
    },
    /// Measure every size and print the table.
    Run(RunArgs),
    /// Request routing cost in HAProxy: routegen's tree vs an OpenShift-style
    /// regex-map configuration, at 10 and 10,000 plain Routes (loopback only).
    RoutingCost {
        /// Fleet sizes (plain HTTP Routes), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10,10000")]
        sizes: Vec<usize>,
        /// Seconds of load per measurement.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Concurrent keep-alive connections.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Measurements per configuration (interleaved; medians).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value = "haproxy")]
        haproxy: PathBuf,
        #[arg(long, default_value = "wrk")]
        wrk: PathBuf,
    },
    /// Does one tenant's Routes on its own host cost other hosts' requests?
    /// Latency of a request to an innocent Route and of a 503, with and
    /// without an attacker's 1,024 path depths on its own host (loopback
    /// only; `--before` adds an older routegen build to the same run).
    LookupCost {
        /// The routegen binary (default: next to this one).
        #[arg(long)]
        routegen: Option<PathBuf>,
        /// An older routegen binary, measured in the same rounds.
        #[arg(long)]
        before: Option<PathBuf>,
        /// Innocent Routes, one host each.
        #[arg(long, default_value_t = 100)]
        routes: usize,
        /// Sequential keep-alive requests per measurement (at most 60 s).
        #[arg(long, default_value_t = 5000)]
        requests: usize,
        /// Measurements per configuration (interleaved; medians).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, default_value = "haproxy")]
        haproxy: PathBuf,
    },
    /// HAProxy's RSS and time to listen on the N-Route tree with one part
    /// of what routegen emits per backend and per server turned off at a
    /// time, and with tune settings that trade memory (issue 20 item 3).
    HaproxyTrades {
        /// Fleet size (Routes).
        #[arg(long, default_value_t = 10_000)]
        routes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Measurements per variant (interleaved; medians).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// HAProxy binaries, one table each (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', default_value = "haproxy")]
        haproxy: Vec<PathBuf>,
        /// Only these variants (comma-separated; `as-rendered` is always
        /// measured, as the baseline).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        #[arg(long)]
        cert_dir: Option<PathBuf>,
    },
    /// The whole `routegen run` process holding the fleet: time until its
    /// first tree is current, steady and peak RSS, with the directory
    /// source and the kube source (a fake API server in this process).
    Sidecar {
        /// Fleet sizes (Routes), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "10000")]
        sizes: Vec<usize>,
        /// Sources measured, comma-separated: dir, kube.
        #[arg(long, value_delimiter = ',', default_value = "dir,kube")]
        sources: Vec<String>,
        /// Fresh processes per size and source (alternating; medians).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The routegen binary (default: next to this one).
        #[arg(long)]
        routegen: Option<PathBuf>,
        #[arg(long, default_value = "haproxy")]
        haproxy: PathBuf,
        /// Seconds the process is left alone after it turned ready before
        /// its steady RSS is read.
        #[arg(long, default_value_t = 5)]
        settle: u64,
        #[arg(long)]
        cert_dir: Option<PathBuf>,
    },
    /// Heap bytes per object kind and per stage after a cold pass over
    /// the fleet (a counting allocator).
    Memory {
        /// Fleet size (Routes).
        #[arg(long, default_value_t = 10_000)]
        routes: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        cert_dir: Option<PathBuf>,
    },
    /// One measurement process (used by `run`); prints `key value` lines.
    #[command(hide = true)]
    Once(OnceArgs),
    /// Per-operation OpenSSL timings behind a certificate check (EC and RSA
    /// keys): what `admit` pays per Route certificate.
    #[command(hide = true)]
    Micro,
    /// Load manifests and admit them, printing the time of each (for profiling).
    #[command(hide = true)]
    Load {
        file: PathBuf,
        /// Admissions after the load (the second and later are warm).
        #[arg(long, default_value_t = 1)]
        admit: usize,
        /// Empty the certificate check cache before every admission.
        #[arg(long)]
        cold: bool,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// Fleet sizes (Routes), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
    sizes: Vec<usize>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Fresh processes (cold runs) per size; fewer for sizes above 50,000.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Warm passes and changes of each kind per process.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Time budget per size, seconds: no new run starts after it.
    #[arg(long, default_value_t = 300)]
    budget: u64,
    /// HAProxy binary for `haproxy -c` and the memory figure.
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// Working directory (fleets, output trees).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Reuse the per-run reports of an interrupted `run` (work directory)
    /// instead of measuring those sizes again.
    #[arg(long)]
    resume: bool,
    /// What the measurement processes load: the fleet as YAML documents
    /// (`check`/`render`/`--source dir:` input), or the same objects as
    /// one JSON List (the API server's format; the cold figures are then
    /// the whole path from JSON).
    #[arg(long, value_enum, default_value_t = Input::Yaml)]
    input: Input,
}

/// The format of the fleet a `run` loads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Input {
    Yaml,
    Json,
}

#[derive(Args, Debug)]
struct OnceArgs {
    #[arg(long)]
    file: PathBuf,
    /// The same objects as one JSON List (the API server's format): its
    /// load time is reported as `cold_parse_json`.
    #[arg(long)]
    json_file: Option<PathBuf>,
    #[arg(long)]
    default_cert: PathBuf,
    #[arg(long)]
    out: PathBuf,
    #[arg(long)]
    run_dir: String,
    #[arg(long)]
    http_port: u16,
    #[arg(long)]
    https_port: u16,
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    #[arg(long, default_value = "haproxy")]
    haproxy: PathBuf,
    /// Only the in-memory passes (cold, warm, and each change without
    /// writing): for profiling the pipeline (`perf record`).
    #[arg(long)]
    passes_only: bool,
}

fn main() -> ExitCode {
    if std::env::args_os().nth(1).is_some_and(|a| a == "memory") {
        memory::COUNTING.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Gen {
            routes,
            seed,
            cert_dir,
        } => gen(routes, seed, cert_dir),
        Cmd::Run(args) => run(&args),
        Cmd::RoutingCost {
            sizes,
            seconds,
            connections,
            rounds,
            haproxy,
            wrk,
        } => routing_cost(&sizes, seconds, connections, rounds, &haproxy, &wrk),
        Cmd::LookupCost {
            routegen,
            before,
            routes,
            requests,
            rounds,
            haproxy,
        } => lookup_cost(routegen, before, routes, requests, rounds, &haproxy),
        Cmd::HaproxyTrades {
            routes,
            seed,
            rounds,
            haproxy,
            only,
            cert_dir,
        } => haproxy_trades(routes, seed, rounds, &haproxy, &only, cert_dir),
        Cmd::Sidecar {
            sizes,
            sources,
            runs,
            seed,
            routegen,
            haproxy,
            settle,
            cert_dir,
        } => sidecar_scale(
            &sizes, &sources, runs, seed, routegen, &haproxy, settle, cert_dir,
        ),
        Cmd::Memory {
            routes,
            seed,
            cert_dir,
        } => memory_parts(routes, seed, cert_dir),
        Cmd::Once(args) => once(&args),
        Cmd::Load { file, admit, cold } => load(&file, admit, cold),
        Cmd::Micro => micro(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("target"))
}

fn default_cert_dir() -> PathBuf {
    target_dir().join("routegen-bench-certs")
}

/// The fleet's YAML (certificates from the cache, generated once).
fn fleet_yaml(routes: usize, seed: u64, cert_dir: &Path) -> anyhow::Result<String> {
    let fleet = Fleet::layout(routes, seed);
    let started = Instant::now();
    let certs = FleetCerts::load_or_generate(&fleet, cert_dir)
        .with_context(|| format!("certificates in {}", cert_dir.display()))?;
    if started.elapsed() > Duration::from_secs(2) {
        eprintln!(
            "{} certificates ready in {:.1} s (kept in {})",
            certs.certs.len(),
            started.elapsed().as_secs_f64(),
            cert_dir.display()
        );
    }
    Ok(fleet.to_yaml(&certs))
}

/// The fleet's YAML, kept as `<work>/fleet-s<seed>-n<routes>.yaml`
/// (written only when it differs): the file's path and the text.
fn write_fleet(
    work: &Path,
    routes: usize,
    seed: u64,
    cert_dir: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    let path = work.join(format!("fleet-s{seed}-n{routes}.yaml"));
    let yaml = fleet_yaml(routes, seed, cert_dir)?;
    if std::fs::read(&path).ok().as_deref() != Some(yaml.as_bytes()) {
        std::fs::write(&path, &yaml)?;
    }
    Ok((path, yaml))
}

fn gen(routes: usize, seed: u64, cert_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let yaml = fleet_yaml(routes, seed, &cert_dir.unwrap_or_else(default_cert_dir))?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(yaml.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// CPU time of the calling thread, seconds (`/proc/thread-self/schedstat`):
/// unlike wall time, not inflated by other processes on a shared machine.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e9)
}

fn load(file: &Path, admissions: usize, cold: bool) -> anyhow::Result<()> {
    let t = Instant::now();
    let loaded = files::load_paths(&[file.to_path_buf()], "default")?;
    eprintln!(
        "load: {:.3} s, {} Routes, {} warnings, peak RSS {}, RSS now {}",
        t.elapsed().as_secs_f64(),
        loaded.snapshot.routes.len(),
        loaded.warnings.len(),
        mib(peak_rss() as f64),
        mib((proc_status_kib("self", "VmRSS:") * 1024) as f64)
    );
    let tls_cache = admit::tls::TlsCheckCache::default();
    for i in 0..admissions {
        if cold {
            tls_cache.clear();
        }
        let t = Instant::now();
        let cpu = thread_cpu();
        let verdicts = admit::admit_memo(
            &mut admit::AdmitMemo::default(),
            &tls_cache,
            &loaded.snapshot,
            &RouterSettings::default(),
            routegen_host::clock::now_unix(),
        );
        eprintln!(
            "admit {}: {:.3} s (cpu {:.3} s), {} admitted, peak RSS {}",
            i + 1,
            t.elapsed().as_secs_f64(),
            thread_cpu() - cpu,
            verdicts.iter().filter(|v| v.is_admitted()).count(),
            mib(peak_rss() as f64)
        );
    }
    Ok(())
}

fn micro() -> anyhow::Result<()> {
    use openssl::pkey::PKey;
    let fleet = Fleet::layout(40, 1);
    let hosts: Vec<String> = (0..4).map(|i| format!("h{i}.example.com")).collect();
    let _ = &fleet;
    let certs = FleetCerts::generate(&hosts)?;
    for (i, c) in certs.certs.iter().enumerate() {
        let key_der = {
            let k = PKey::private_key_from_pem(c.key_pem.as_bytes())?;
            k.private_key_to_pkcs8()?
        };
        let cert = openssl::x509::X509::from_pem(c.cert_pem.as_bytes())?;
        let cert_der = cert.to_der()?;
        let n = 200;
        let time = |label: &str, f: &dyn Fn()| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            eprintln!(
                "cert {i} {label}: {:.1} us",
                t.elapsed().as_secs_f64() * 1e6 / n as f64
            );
        };
        time("X509::from_der", &|| {
            openssl::x509::X509::from_der(&cert_der).unwrap();
        });
        time("PKey::private_key_from_pkcs8", &|| {
            PKey::private_key_from_pkcs8(&key_der).unwrap();
        });
        time("PKey::private_key_from_der", &|| {
            PKey::private_key_from_der(&key_der).unwrap();
        });
        let key = PKey::private_key_from_pkcs8(&key_der)?;
        time("private_key_to_pem_pkcs8", &|| {
            key.private_key_to_pem_pkcs8().unwrap();
        });
        time("private_key_to_pkcs8", &|| {
            key.private_key_to_pkcs8().unwrap();
        });
        time("cert.public_key", &|| {
            cert.public_key().unwrap();
        });
        let public = cert.public_key()?;
        time("public_eq", &|| {
            assert!(key.public_eq(&public));
        });
        time("cert.verify(self)", &|| {
            cert.verify(&public).unwrap();
        });
        time("cert.to_pem", &|| {
            cert.to_pem().unwrap();
        });
        time("sign+verify probe", &|| {
            let mut s =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
            s.update(b"probe").unwrap();
            let sig = s.sign_to_vec().unwrap();
            let mut v =
                openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public)
                    .unwrap();
            v.update(b"probe").unwrap();
            assert!(v.verify(&sig).unwrap());
        });
        time("store+verify", &|| {
            let mut store = openssl::x509::store::X509StoreBuilder::new().unwrap();
            store.add_cert(cert.clone()).unwrap();
            let store = store.build();
            let chain = openssl::stack::Stack::new().unwrap();
            let mut ctx = openssl::x509::X509StoreContext::new().unwrap();
            ctx.init(&store, &cert, &chain, |c| c.verify_cert())
                .unwrap();
        });
        time("security_bits", &|| {
            key.security_bits();
        });
    }
    Ok(())
}

// ---------------------------------------------------------------- once

/// `VmHWM` (peak resident set) of this process, bytes.
fn peak_rss() -> u64 {
    proc_status_kib("self", "VmHWM:") * 1024
}

/// A `kB` field of `/proc/<pid>/status`.
fn proc_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The pipeline as `run` uses it: one [`Engine`] whose memos live from
/// pass to pass (the cold pass starts with empty memos).
struct Pipeline {
    config: PipelineConfig,
    engine: Engine,
    now: i64,
    /// sha256 by (address, length) of shared file contents, each entry
    /// holding its Arc (see the applier's hash memo).
    hashes: HashMemo,
}

type HashMemo = std::collections::HashMap<(usize, usize), (Arc<[u8]>, [u8; 32])>;

/// Stage times of one pass, seconds.
#[derive(Default, Clone, Copy)]
struct Stages {
    admit: f64,
    plan: f64,
    render: f64,
    hash: f64,
}

impl Stages {
    fn total(&self) -> f64 {
        self.admit + self.plan + self.render + self.hash
    }
}

impl Pipeline {
    /// admit → plan → render → sha256 of every file (what apply compares).
    fn pass(&mut self, snapshot: &Snapshot) -> anyhow::Result<(OutputTree, Stages, [u8; 32])> {
        let t = Instant::now();
        let verdicts = self.engine.admit_at(snapshot, &self.config, self.now);
        let admit = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let plan = self.engine.plan(&verdicts, snapshot, &self.config);
        let plan_time = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let tree = self.engine.render_plan(&plan, &self.config)?.tree;
        let render = t.elapsed().as_secs_f64();
        let t = Instant::now();
        // sha256 per distinct contents, as `Applier::apply` does: contents
        // shared with the previous pass (same Arc) are not hashed again.
        let mut all = openssl::sha::Sha256::new();
        let mut next = std::collections::HashMap::with_capacity(tree.len());
        for (path, file) in &tree {
            let key = (
                Arc::as_ptr(&file.contents) as *const u8 as usize,
                file.contents.len(),
            );
            let sum = match self.hashes.remove(&key) {
                Some(entry) => entry,
                None => (file.contents.clone(), openssl::sha::sha256(&file.contents)),
            };
            all.update(path.as_bytes());
            all.update(&sum.1);
            next.insert(key, sum);
        }
        self.hashes = next;
        let digest = all.finish();
        let hash = t.elapsed().as_secs_f64();
        let rejected = verdicts.iter().filter(|v| !v.is_admitted()).count();
        if rejected > 0 {
            bail!("{rejected} Routes of the fleet were rejected");
        }
        Ok((
            tree,
            Stages {
                admit,
                plan: plan_time,
                render,
                hash,
            },
            digest,
        ))
    }
}

/// The median of owned values (sorted in place).
fn median_of(mut values: Vec<f64>) -> f64 {
    median(&mut values)
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// A change to the snapshot, as a watch event would bring it.
#[derive(Clone, Copy, Debug)]
enum Change {
    RouteChanged,
    RouteAdded,
    EndpointChanged,
}

impl Change {
    fn key(self) -> &'static str {
        match self {
            Change::RouteChanged => "route_changed",
            Change::RouteAdded => "route_added",
            Change::EndpointChanged => "endpoint_changed",
        }
    }

    fn apply(self, snapshot: &mut Snapshot, round: usize) {
        match self {
            Change::RouteChanged => {
                // A new timeout annotation on a Route (a backend's lines change).
                let i = (round * 7919) % snapshot.routes.len();
                let route = std::sync::Arc::make_mut(&mut snapshot.routes[i]);
                route
                    .metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(
                        "haproxy.router.openshift.io/timeout".into(),
                        format!("{}s", 40 + round),
                    );
            }
            Change::RouteAdded => {
                // A copy of a plain Route under a new name and host, on the
                // same Service.
                let template = snapshot
                    .routes
                    .iter()
                    .find(|r| r.spec.tls.is_none() && r.spec.path.is_none())
                    .cloned()
                    .expect("the fleet has plain Routes");
                let mut route = (*template).clone();
                let name = format!("added-{round}");
                let namespace = route.metadata.namespace.clone().unwrap_or_default();
                route.spec.host = Some(format!("{name}.{namespace}.{}", routegen_bench::DOMAIN));
                route.metadata.name = Some(name);
                route.metadata.uid = None;
                snapshot.routes.push(std::sync::Arc::new(route));
            }
            Change::EndpointChanged => {
                // One pod of one Service replaced (a new address).
                let i = (round * 104_729) % snapshot.endpoint_slices.len();
                let slice = std::sync::Arc::make_mut(&mut snapshot.endpoint_slices[i]);
                if let Some(endpoint) = slice.endpoints.first_mut() {
                    endpoint.addresses =
                        vec![format!("127.251.{}.{}", round / 250, round % 250 + 1)];
                }
            }
        }
    }
}

/// `maxconn` of the measured configuration: HAProxy needs about two file
/// descriptors per connection and refuses to start when it cannot raise
/// its limit that far (20,000 in this sandbox); the default 50,000 would
/// need 100,000.
const BENCH_MAXCONN: u32 = 8_000;

fn loopback(port: u16) -> BindAddr {
    BindAddr {
        ip: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        port,
    }
}

impl Pipeline {
    /// The bench's pipeline with empty memos: HAProxy target, loopback
    /// endpoints allowed, binds on 127.0.0.1 `http_port`/`https_port`,
    /// Unix sockets in `run_dir`, `maxconn` [`BENCH_MAXCONN`].
    fn new(
        default_cert: &Path,
        http_port: u16,
        https_port: u16,
        run_dir: String,
    ) -> anyhow::Result<Pipeline> {
        let default_cert = defaultcert::load_file(default_cert)?;
        Ok(Pipeline {
            config: PipelineConfig {
                target: Target::Haproxy,
                router: RouterSettings::default(),
                plan: PlanSettings {
                    allow_loopback_endpoints: true,
                    default_cert_sha256: Some(default_cert.sha256),
                    ..PlanSettings::default()
                },
                render: RenderSettings {
                    http_bind: vec![loopback(http_port)],
                    https_bind: vec![loopback(https_port)],
                    run_dir,
                    maxconn: BENCH_MAXCONN,
                    default_cert_pem: default_cert.pem,
                    ..RenderSettings::default()
                },
                templates: Templates::embedded()?,
                tls_cache: Default::default(),
            },
            engine: Engine::new(),
            hashes: Default::default(),
            now: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64,
        })
    }
}

fn once(args: &OnceArgs) -> anyhow::Result<()> {
    let mut report = BTreeMap::<String, f64>::new();
    let mut pipeline = Pipeline::new(
        &args.default_cert,
        args.http_port,
        args.https_port,
        args.run_dir.clone(),
    )?;

    // Cold: read and parse, then the pure stages.
    let t = Instant::now();
    let loaded = files::load_paths(std::slice::from_ref(&args.file), "default")?;
    let parse = t.elapsed().as_secs_f64();
    if !loaded.warnings.is_empty() {
        bail!("loading the fleet warned: {}", loaded.warnings[0]);
    }
    let mut snapshot = loaded.snapshot;
    let (tree, cold, digest) = pipeline.pass(&snapshot)?;

    report.insert("cold_parse".into(), parse);
    report.insert("cold_admit".into(), cold.admit);
    report.insert("cold_plan".into(), cold.plan);
    report.insert("cold_render".into(), cold.render);
    report.insert("cold_hash".into(), cold.hash);
    report.insert("cold_total".into(), parse + cold.total());
    report.insert("rss_after_cold".into(), peak_rss() as f64);
    report.insert("tree_files".into(), tree.len() as f64);
    report.insert(
        "tree_bytes".into(),
        tree.values().map(|f| f.contents.len()).sum::<usize>() as f64,
    );

    // Warm: the same snapshot again, through the same functions.
    let misses = pipeline.config.tls_cache.stats().misses;
    let mut warm = Vec::new();
    let mut warm_admit = Vec::new();
    for _ in 0..args.repeats {
        let (again, stages, d) = pipeline.pass(&snapshot)?;
        if d != digest {
            bail!("a warm pass gave a different tree");
        }
        drop(again);
        warm.push(stages.total());
        warm_admit.push(stages.admit);
    }
    report.insert("warm_total".into(), median(&mut warm));
    report.insert("warm_admit".into(), median(&mut warm_admit));
    report.insert(
        "warm_tls_misses".into(),
        (pipeline.config.tls_cache.stats().misses - misses) as f64,
    );

    if args.passes_only {
        for change in [
            Change::RouteChanged,
            Change::RouteAdded,
            Change::EndpointChanged,
        ] {
            let mut pipe = vec![];
            for round in 0..args.repeats {
                change.apply(&mut snapshot, round);
                let (_, stages, _) = pipeline.pass(&snapshot)?;
                pipe.push(stages.total());
                report.insert(format!("{}_admit", change.key()), stages.admit);
                report.insert(format!("{}_plan", change.key()), stages.plan);
                report.insert(format!("{}_render", change.key()), stages.render);
                report.insert(format!("{}_hash", change.key()), stages.hash);
            }
            report.insert(format!("{}_pipeline", change.key()), median(&mut pipe));
        }
        for (key, value) in &report {
            println!("{key} {value}");
        }
        return Ok(());
    }

    // Onto disk through apply, then one change at a time.
    let mut applier = Applier::open(&args.out, &args.haproxy, 2)?;
    let t = Instant::now();
    let outcome = applier.apply(&tree)?;
    report.insert("initial_apply".into(), t.elapsed().as_secs_f64());
    if let ApplyOutcome::Applied { validation, .. } = outcome {
        report.insert("initial_validation".into(), validation.as_secs_f64());
    }
    drop(tree);
    for change in [
        Change::RouteChanged,
        Change::RouteAdded,
        Change::EndpointChanged,
    ] {
        let (mut total, mut pipe, mut write, mut validate) = (vec![], vec![], vec![], vec![]);
        for round in 0..args.repeats {
            change.apply(&mut snapshot, round);
            let t = Instant::now();
            let (tree, stages, _) = pipeline.pass(&snapshot)?;
            let t_apply = Instant::now();
            let outcome = applier.apply(&tree)?;
            let applied = t_apply.elapsed().as_secs_f64();
            let elapsed = t.elapsed().as_secs_f64();
            let ApplyOutcome::Applied { validation, .. } = outcome else {
                bail!("{}: the change left the tree unchanged", change.key());
            };
            total.push(elapsed);
            pipe.push(stages.total());
            validate.push(validation.as_secs_f64());
            write.push(applied - validation.as_secs_f64());
        }
        let key = change.key();
        report.insert(format!("{key}_total"), median(&mut total));
        report.insert(format!("{key}_pipeline"), median(&mut pipe));
        report.insert(format!("{key}_write"), median(&mut write));
        report.insert(format!("{key}_validate"), median(&mut validate));
    }
    report.insert("rss_peak".into(), peak_rss() as f64);
    // Last, so its memory is in no figure above.
    if let Some(json) = &args.json_file {
        let t = Instant::now();
        let loaded = files::load_paths(std::slice::from_ref(json), "default")?;
        report.insert("cold_parse_json".into(), t.elapsed().as_secs_f64());
        if loaded.snapshot.routes.len() + args.repeats != snapshot.routes.len() {
            bail!("the JSON fleet differs from the YAML one");
        }
    }
    for (key, value) in &report {
        println!("{key} {value}");
    }
    Ok(())
}

// ----------------------------------------------------------------- run

/// The fleet's objects as one JSON `List`, as the API server would send
/// them.
fn write_json_list(yaml: &str, path: &Path) -> anyhow::Result<()> {
    let items = fleet_json_objects(yaml)?;
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": items});
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer(file, &list)?;
    Ok(())
}

/// Every Route, Service and EndpointSlice of the fleet's YAML as JSON
/// values, as the API server holds them: each document as written (the
/// fleet writer starts every document with a `---` line; no other line of
/// it is `---`).
fn fleet_json_objects(yaml: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    use rayon::prelude::*;
    let documents: Vec<&str> = yaml
        .strip_prefix("---\n")
        .unwrap_or(yaml)
        .split("\n---\n")
        .filter(|d| !d.trim().is_empty())
        .collect();
    documents
        .par_iter()
        .map(|d| Ok(serde_saphyr::from_str::<serde_json::Value>(d)?))
        .collect()
}

fn lookup_cost(
    routegen: Option<PathBuf>,
    before: Option<PathBuf>,
    routes: usize,
    requests: usize,
    rounds: usize,
    haproxy: &Path,
) -> anyhow::Result<()> {
    let routegen = routegen_binary(routegen)?;
    let mut binaries = vec![("after".to_string(), routegen)];
    binaries.extend(before.map(|b| ("before".to_string(), b)));
    let work = work_dir()?;
    let table = lookup::run(
        &lookup::Options {
            binaries,
            routes,
            requests,
            rounds,
            haproxy,
        },
        &work,
    )?;
    print!("{table}");
    Ok(())
}

fn haproxy_trades(
    routes: usize,
    seed: u64,
    rounds: usize,
    haproxies: &[PathBuf],
    only: &[String],
    cert_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(rounds >= 1, "--rounds is at least 1");
    let work = work_dir()?;
    let report = trades::run(
        &trades::Options {
            routes,
            seed,
            rounds,
            haproxies,
            only,
            cert_dir: &cert_dir.unwrap_or_else(default_cert_dir),
            command: command_line(),
        },
        &work,
    )?;
    print!("{report}");
    Ok(())
}

fn memory_parts(routes: usize, seed: u64, cert_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let work = work_dir()?;
    let default_cert = default_cert_file(&work)?;
    let cert_dir = cert_dir.unwrap_or_else(default_cert_dir);
    let (fleet_file, _) = write_fleet(&work, routes, seed, &cert_dir)?;
    let run_dir = tempfile::Builder::new().prefix("rgb-").tempdir_in("/tmp")?;
    let report = memory::run(&fleet_file, routes, &default_cert, run_dir.path())?;
    println!("`routegen-bench memory --routes {routes} --seed {seed}`\n");
    print!("{report}");
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sidecar_scale(
    sizes: &[usize],
    sources: &[String],
    runs: usize,
    seed: u64,
    routegen: Option<PathBuf>,
    haproxy: &Path,
    settle: u64,
    cert_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    anyhow::ensure!(runs >= 1, "--runs is at least 1");
    let sources = sources
        .iter()
        .map(|s| sidecar::Source::parse(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let routegen = routegen_binary(routegen)?;
    let work = work_dir()?;
    let default_cert = default_cert_file(&work)?;
    let cert_dir = cert_dir.unwrap_or_else(default_cert_dir);
    let report = sidecar::run(
        &sidecar::Options {
            sizes,
            sources: &sources,
            runs,
            routegen: &routegen,
            haproxy,
            fleet_yaml: &|routes| fleet_yaml(routes, seed, &cert_dir),
            default_cert: &default_cert,
            settle: Duration::from_secs(settle),
            timeout: Duration::from_secs(900),
            command: command_line(),
        },
        &work,
    )?;
    print!("{report}");
    Ok(())
}

/// `<target>/routegen-bench`, created if missing.
fn work_dir() -> anyhow::Result<PathBuf> {
    let work = target_dir().join("routegen-bench");
    std::fs::create_dir_all(&work)?;
    Ok(work)
}

/// This process's command line, for a report.
fn command_line() -> String {
    std::iter::once("routegen-bench".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `given`, or else the `routegen` binary next to this one.
fn routegen_binary(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = given {
        return Ok(path);
    }
    let path = std::env::current_exe()?
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no directory"))?
        .join("routegen");
    anyhow::ensure!(
        path.is_file(),
        "{} not found: build it next to this binary (cargo build --release -p routegen)",
        path.display()
    );
    Ok(path)
}

fn routing_cost(
    sizes: &[usize],
    seconds: u64,
    connections: usize,
    rounds: usize,
    haproxy: &Path,
    wrk: &Path,
) -> anyhow::Result<()> {
    anyhow::ensure!(seconds <= 60, "--seconds is at most 60");
    let work = work_dir()?;
    let default_cert = default_cert_file(&work)?;
    let table = routing::run(
        &routing::Options {
            sizes,
            seconds,
            connections,
            rounds,
            haproxy,
            wrk,
            default_cert: &default_cert,
        },
        &work,
    )?;
    print!("{table}");
    Ok(())
}

/// `<work>/default-cert.pem`, a self-signed default certificate made the
/// first time.
fn default_cert_file(work: &Path) -> anyhow::Result<PathBuf> {
    let path = work.join("default-cert.pem");
    if !path.exists() {
        std::fs::write(&path, defaultcert::generate_self_signed()?)?;
    }
    Ok(path)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `N` free loopback ports.
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let mut ports = [0; N];
    for port in &mut ports {
        *port = free_port()?;
    }
    Ok(ports)
}

/// Run `cmd` under `/usr/bin/time -v`: (wall seconds, max RSS bytes, success).
fn timed(cmd: &mut Command) -> anyhow::Result<(f64, u64, bool, String)> {
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(&program)
        .args(&args)
        .stdin(Stdio::null())
        .output()
        .context("running /usr/bin/time -v (package `time`)")?;
    let wall = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let rss_kib: u64 = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok((wall, rss_kib * 1024, output.status.success(), stderr))
}

/// Added to every HAProxy run of the bench: the sandbox allows 20,000
/// file descriptors, and HAProxy sizes its table for `maxconn` plus one
/// per health-checked server (30,000 at 10,000 Routes) unless capped.
const FD_LIMIT_CFG: &str = "global\n  fd-hard-limit 19000\n";

/// `haproxy -c -f <tree>/haproxy.cfg -f <tree>/backends -f <limits>` on
/// the tree in `tree`, `runs` times: median wall seconds and max RSS bytes.
fn check_tree(
    haproxy: &Path,
    tree: &Path,
    limits: &Path,
    runs: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let mut cmd = Command::new(haproxy);
        cmd.arg("-c");
        for cfg in routegen_host::apply::haproxy_config_paths(tree) {
            cmd.arg("-f").arg(cfg);
        }
        let (wall, max_rss, ok, text) = timed(cmd.arg("-f").arg(limits))?;
        if !ok {
            bail!("haproxy -c refused the tree: {text}");
        }
        times.push(wall);
        rss.push(max_rss as f64);
    }
    Ok((median(&mut times), median(&mut rss)))
}

/// The directory of the tree's Unix sockets (from its `stats socket`
/// line), created if a resumed run's temporary directory is gone.
fn ensure_run_dir(cfg: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(cfg)?;
    if let Some(socket) = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("stats socket "))
        .and_then(|rest| rest.split_whitespace().next())
    {
        if let Some(dir) = Path::new(socket).parent() {
            std::fs::create_dir_all(dir)?;
        }
    }
    Ok(())
}

/// The tree in `tree` without the servers' `check inter ...`, as the `-f`
/// paths to start HAProxy with: `haproxy.cfg.no-checks` beside
/// `haproxy.cfg` and, when the tree has `backends/` (where the server
/// lines are), `backends.no-checks/` beside it with every `backends/*.cfg`
/// rewritten under the same name. Beside the originals, so relative paths
/// resolve the same way (`default-path config` for haproxy.cfg, `parent`
/// for the backend files). HAProxy reserves one file descriptor per
/// health-checked server (30,000 at 10,000 Routes) and will not start
/// when that exceeds the sandbox's limit of 20,000, so its memory is
/// measured without health checks (which would otherwise probe the
/// loopback endpoints every 5 s).
fn without_health_checks(tree: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for original in routegen_host::apply::haproxy_config_paths(tree) {
        if original.is_dir() {
            let copy = original.with_extension("no-checks");
            let _ = std::fs::remove_dir_all(&copy);
            std::fs::create_dir(&copy)?;
            let mut files: Vec<PathBuf> = std::fs::read_dir(&original)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()?;
            files.retain(|f| f.extension().is_some_and(|x| x == "cfg") && f.is_file());
            files.sort();
            for file in files {
                let name = file.file_name().expect("a file name");
                std::fs::write(
                    copy.join(name),
                    strip_checks(&std::fs::read_to_string(&file)?),
                )?;
            }
            paths.push(copy);
        } else {
            let copy = original.with_extension("cfg.no-checks");
            std::fs::write(&copy, strip_checks(&std::fs::read_to_string(&original)?))?;
            paths.push(copy);
        }
    }
    Ok(paths)
}

/// `text` without ` check inter <interval>` on its `server` lines.
fn strip_checks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        match line.find(" check inter ") {
            Some(at) if line.trim_start().starts_with("server ") => {
                out.push_str(&line[..at]);
                let rest = &line[at + " check inter ".len()..];
                if let Some(space) = rest.find(' ') {
                    out.push_str(&rest[space..]);
                }
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The port of the tree's plain HTTP frontend (its first `bind` line).
fn http_port_of(cfg: &Path) -> anyhow::Result<u16> {
    let text = std::fs::read_to_string(cfg)?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("bind 127.0.0.1:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("{}: no bind 127.0.0.1:PORT line", cfg.display()))
}

/// Start HAProxy in the foreground on the tree in `tree` (without health
/// checks), wait until it listens on its HTTP port, let it settle, and
/// return the worker's VmRSS (bytes) and the time until it listened.
fn haproxy_rss(haproxy: &Path, tree: &Path, limits: &Path) -> anyhow::Result<(u64, f64)> {
    let cfg = tree.join(routegen_render::haproxy::CONFIG_FILE);
    ensure_run_dir(&cfg)?;
    let port = http_port_of(&cfg)?;
    let configs = without_health_checks(tree)?;
    let started = Instant::now();
    let mut cmd = Command::new(haproxy);
    cmd.arg("-db");
    for cfg in &configs {
        cmd.arg("-f").arg(cfg);
    }
    let mut child = cmd
        .arg("-f")
        .arg(limits)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting haproxy")?;
    let pid = child.id().to_string();
    let deadline = started + Duration::from_secs(120);
    let result = loop {
        if let Some(status) = child.try_wait()? {
            let mut text = String::new();
            if let Some(mut err) = child.stderr.take() {
                use std::io::Read;
                let _ = err.read_to_string(&mut text);
            }
            break Err(anyhow!("haproxy exited ({status}): {}", text.trim()));
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let listening = started.elapsed().as_secs_f64();
            // Settle: until two readings a quarter second apart agree.
            let mut last = proc_status_kib(&pid, "VmRSS:");
            for _ in 0..12 {
                std::thread::sleep(Duration::from_millis(250));
                let now = proc_status_kib(&pid, "VmRSS:");
                if now == last {
                    break;
                }
                last = now;
            }
            break Ok((last * 1024, listening));
        }
        if Instant::now() > deadline {
            break Err(anyhow!("haproxy did not listen within 120 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn parse_report(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn ms(seconds: f64) -> String {
    if seconds.is_nan() {
        "-".into()
    } else if seconds >= 10.0 {
        format!("{seconds:.1} s")
    } else if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else if seconds >= 0.01 {
        format!("{:.0} ms", seconds * 1e3)
    } else {
        format!("{:.1} ms", seconds * 1e3)
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.0} MiB", bytes / (1024.0 * 1024.0))
}

/// The figures of one size.
struct SizeResult {
    routes: usize,
    runs: usize,
    repeats: usize,
    yaml_bytes: usize,
    values: BTreeMap<String, Vec<f64>>,
    check_time: f64,
    check_rss: f64,
    haproxy_rss: f64,
    haproxy_listen: f64,
}

impl SizeResult {
    fn med(&self, key: &str) -> f64 {
        let mut v = self.values.get(key).cloned().unwrap_or_default();
        median(&mut v)
    }

    fn spread(&self, key: &str) -> String {
        let v = self.values.get(key).cloned().unwrap_or_default();
        if v.len() < 2 {
            return String::new();
        }
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!(" ({}–{})", ms(lo), ms(hi))
    }
}

fn run(args: &RunArgs) -> anyhow::Result<()> {
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| target_dir().join("routegen-bench"));
    std::fs::create_dir_all(&work)?;
    let cert_dir = args.cert_dir.clone().unwrap_or_else(default_cert_dir);
    let exe = std::env::current_exe()?;
    let default_cert = default_cert_file(&work)?;
    let mut results = Vec::new();
    for &routes in &args.sizes {
        let started = Instant::now();
        let (fleet_file, yaml) = write_fleet(&work, routes, args.seed, &cert_dir)?;
        let yaml_bytes = yaml.len();
        let json_file = work.join(format!("fleet-s{}-n{routes}.json", args.seed));
        write_json_list(&yaml, &json_file)?;
        drop(yaml);
        let runs = if routes > 50_000 {
            args.runs.min(3)
        } else {
            args.runs
        };
        let repeats = if routes > 50_000 {
            args.repeats.min(3)
        } else {
            args.repeats
        };
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let run_dir = tempfile::Builder::new().prefix("rgb-").tempdir_in("/tmp")?;
        let (http_port, https_port) = (free_port()?, free_port()?);
        let out = work.join(format!("out-n{routes}"));
        let mut done = 0;
        if args.resume {
            for run in 1..=runs {
                let Ok(text) =
                    std::fs::read_to_string(work.join(format!("report-n{routes}-run{run}.txt")))
                else {
                    break;
                };
                for (k, v) in parse_report(&text) {
                    values.entry(k).or_default().push(v);
                }
                done += 1;
            }
            if done > 0 {
                eprintln!("n={routes}: {done} earlier runs reused");
            }
        }
        // Fresh runs: all of them, or after a resume only one when the
        // tree HAProxy is measured on is gone.
        let planned: Vec<usize> = if done == 0 {
            (0..runs).collect()
        } else if !out.join("current/haproxy.cfg").exists() {
            vec![done]
        } else {
            Vec::new()
        };
        for (k, run) in planned.into_iter().enumerate() {
            if k > 0 && started.elapsed() > Duration::from_secs(args.budget) {
                eprintln!("n={routes}: time budget reached after {run} runs");
                break;
            }
            let _ = std::fs::remove_dir_all(&out);
            let mut once = Command::new(&exe);
            once.arg("once").arg("--file");
            match args.input {
                Input::Yaml => once.arg(&fleet_file).arg("--json-file").arg(&json_file),
                Input::Json => once.arg(&json_file),
            };
            let output = once
                .arg("--default-cert")
                .arg(&default_cert)
                .arg("--out")
                .arg(&out)
                .arg("--run-dir")
                .arg(run_dir.path())
                .arg("--http-port")
                .arg(http_port.to_string())
                .arg("--https-port")
                .arg(https_port.to_string())
                .arg("--repeats")
                .arg(repeats.to_string())
                .arg("--haproxy")
                .arg(&args.haproxy)
                .stdin(Stdio::null())
                .output()?;
            if !output.status.success() {
                bail!(
                    "n={routes}: measurement process failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            let text = String::from_utf8_lossy(&output.stdout);
            std::fs::write(
                work.join(format!("report-n{routes}-run{}.txt", run + 1)),
                &*text,
            )?;
            for (k, v) in parse_report(&text) {
                values.entry(k).or_default().push(v);
            }
            done += 1;
            eprintln!(
                "n={routes}: run {}/{runs} done ({:.0} s)",
                run + 1,
                started.elapsed().as_secs_f64()
            );
        }
        // HAProxy on the last tree written.
        let tree = out.join("current");
        let limits = work.join("fd-limit.cfg");
        std::fs::write(&limits, FD_LIMIT_CFG)?;
        let (check_time, check_rss) = match check_tree(&args.haproxy, &tree, &limits, 3) {
            Ok(figures) => figures,
            Err(e) => {
                eprintln!("n={routes}: haproxy -c: {e:#}");
                (f64::NAN, f64::NAN)
            }
        };
        let (rss, listen) = match haproxy_rss(&args.haproxy, &tree, &limits) {
            Ok((rss, listen)) => (rss as f64, listen),
            Err(e) => {
                eprintln!("n={routes}: HAProxy memory: {e:#}");
                (f64::NAN, f64::NAN)
            }
        };
        results.push(SizeResult {
            routes,
            runs: done,
            repeats,
            yaml_bytes,
            values,
            check_time,
            check_rss,
            haproxy_rss: rss,
            haproxy_listen: listen,
        });
    }
    print!("{}", table(&results, args.input));
    Ok(())
}

fn table(results: &[SizeResult], input: Input) -> String {
    let mut out = String::new();
    let header = |out: &mut String, title: &str| {
        let _ = write!(out, "| {title} |");
        for r in results {
            let _ = write!(out, " {} Routes |", r.routes);
        }
        out.push('\n');
        out.push_str("|---|");
        for _ in results {
            out.push_str("---:|");
        }
        out.push('\n');
    };
    let row = |out: &mut String, label: &str, f: &dyn Fn(&SizeResult) -> String| {
        let _ = write!(out, "| {label} |");
        for r in results {
            let _ = write!(out, " {} |", f(r));
        }
        out.push('\n');
    };
    header(&mut out, "median of runs (fresh process each)");
    row(&mut out, "runs × repeats", &|r| {
        format!("{} × {}", r.runs, r.repeats)
    });
    row(&mut out, "fleet YAML", &|r| mib(r.yaml_bytes as f64));
    row(
        &mut out,
        "**cold full render** (parse+admit+plan+render+hash)",
        &|r| format!("**{}**{}", ms(r.med("cold_total")), r.spread("cold_total")),
    );
    for (label, key) in [
        (
            match input {
                Input::Yaml => "— parse (read + YAML + typed)",
                Input::Json => "— parse (read + one JSON List + typed)",
            },
            "cold_parse",
        ),
        (
            "   (parse of the same objects as one JSON List)",
            "cold_parse_json",
        ),
        ("— admit (incl. certificate checks)", "cold_admit"),
        ("— plan", "cold_plan"),
        ("— render", "cold_render"),
        ("— hash (sha256 per file)", "cold_hash"),
    ] {
        row(&mut out, label, &|r| ms(r.med(key)));
    }
    row(
        &mut out,
        "**warm full render** (same snapshot, admit+plan+render+hash)",
        &|r| format!("**{}**", ms(r.med("warm_total"))),
    );
    row(&mut out, "— of which admit", &|r| ms(r.med("warm_admit")));
    row(&mut out, "— certificate checks not from cache", &|r| {
        format!("{:.0}", r.med("warm_tls_misses"))
    });
    for (label, key) in [
        ("one Route changed", "route_changed"),
        ("one Route added", "route_added"),
        ("one endpoint changed", "endpoint_changed"),
    ] {
        row(
            &mut out,
            &format!("**{label} → new tree on disk** (incl. haproxy -c)"),
            &|r| format!("**{}**", ms(r.med(&format!("{key}_total")))),
        );
        row(&mut out, "— pipeline / write tree / haproxy -c", &|r| {
            format!(
                "{} / {} / {}",
                ms(r.med(&format!("{key}_pipeline"))),
                ms(r.med(&format!("{key}_write"))),
                ms(r.med(&format!("{key}_validate")))
            )
        });
    }
    row(
        &mut out,
        "first apply of the tree (write all + haproxy -c)",
        &|r| ms(r.med("initial_apply")),
    );
    row(&mut out, "**peak RSS** after cold render", &|r| {
        format!("**{}**", mib(r.med("rss_after_cold")))
    });
    row(
        &mut out,
        "peak RSS of the whole measurement process",
        &|r| mib(r.med("rss_peak")),
    );
    row(&mut out, "output tree", &|r| {
        format!(
            "{:.0} files, {}",
            r.med("tree_files"),
            mib(r.med("tree_bytes"))
        )
    });
    row(&mut out, "`haproxy -c` time / max RSS", &|r| {
        format!("{} / {}", ms(r.check_time), mib(r.check_rss))
    });
    row(
        &mut out,
        "HAProxy RSS after loading (-db, health checks off)",
        &|r| {
            format!(
                "{} (listening after {})",
                mib(r.haproxy_rss),
                ms(r.haproxy_listen)
            )
        },
    );
    out
}
