//! `routegen-bench routing-cost`: what a request costs inside HAProxy at 10
//! Routes and at 10,000, with routegen's exact-match maps and with an
//! OpenShift-style configuration (every request scanning a regex map,
//! `map_reg`), in the same run.
//!
//! Everything is on 127.0.0.1: one HAProxy process (`nbthread 1`) holds the
//! routing frontend and an "origin" frontend that answers every request
//! itself (`http-request return`), which every backend's one server points
//! at; `wrk` (one thread) sends keep-alive requests for a bounded time to
//! 10 Routes spread over the fleet, each request with a path of its own
//! (see [`wrk_script`]). Two cores: wrk and HAProxy each get about one.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};

use routegen_core::admit;
use routegen_core::plan::{self, PlanSettings};
use routegen_core::RouterSettings;
use routegen_host::source::files;
use routegen_render::{self as render, RenderSettings, Templates};

/// Options of `routing-cost`.
pub struct Options<'a> {
    pub sizes: &'a [usize],
    pub seconds: u64,
    pub connections: usize,
    pub rounds: usize,
    pub haproxy: &'a Path,
    pub wrk: &'a Path,
    pub default_cert: &'a Path,
}

/// One plain-HTTP Route of the routing fleet.
struct Target {
    host: String,
    path: Option<&'static str>,
}

/// `n` plain Routes: 80% alone on their host, 20% in groups of four paths
/// on a shared host (as in the benchmark fleet).
fn targets(n: usize) -> Vec<Target> {
    let mut out = Vec::with_capacity(n);
    let grouped = n / 5;
    for i in 0..n {
        if i < grouped {
            out.push(Target {
                host: format!("shared-{}.apps.bench.example.com", i / 4),
                path: Some(routegen_bench::GROUP_PATHS[i % 4]),
            });
        } else {
            out.push(Target {
                host: format!("r-{i}.apps.bench.example.com"),
                path: None,
            });
        }
    }
    out
}

fn fleet_yaml(targets: &[Target], origin_port: u16) -> String {
    let mut out = String::new();
    for (i, t) in targets.iter().enumerate() {
        let _ = write!(
            out,
            "---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: r-{i}\n  \
             namespace: bench\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\nspec:\n  host: {}\n",
            t.host
        );
        if let Some(path) = t.path {
            let _ = writeln!(out, "  path: {path}");
        }
        let _ = write!(
            out,
            "  to:\n    kind: Service\n    name: svc-{i}\n  port:\n    targetPort: http\n\
             ---\napiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\n  namespace: bench\n\
             spec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: {origin_port}\n\
             ---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  \
             name: svc-{i}-x\n  namespace: bench\n  labels:\n    kubernetes.io/service-name: svc-{i}\n\
             addressType: IPv4\nports:\n- name: http\n  port: {origin_port}\nendpoints:\n\
             - addresses: [\"127.0.0.1\"]\n  conditions:\n    ready: true\n"
        );
    }
    out
}

/// routegen's tree for `targets`, written to `dir`; returns the paths
/// HAProxy's `-f` options name (`haproxy.cfg`, then `backends`).
fn routegen_tree(
    targets: &[Target],
    origin_port: u16,
    http_port: u16,
    https_port: u16,
    run_dir: &Path,
    default_cert: &Path,
    dir: &Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let yaml = fleet_yaml(targets, origin_port);
    let snapshot = files::load_str("routing.yaml", &yaml, "default")?.snapshot;
    let verdicts = admit::admit_at(
        &snapshot,
        &RouterSettings::default(),
        routegen_host::clock::now_unix(),
    );
    if let Some(v) = verdicts.iter().find(|v| !v.is_admitted()) {
        bail!("{} rejected: {:?}", v.key, v.rejection());
    }
    let cert = routegen_host::defaultcert::load_file(default_cert)?;
    let plan = plan::plan(
        &verdicts,
        &snapshot,
        &PlanSettings {
            allow_loopback_endpoints: true,
            default_cert_sha256: Some(cert.sha256),
            ..PlanSettings::default()
        },
    );
    let tree = render::render_haproxy(
        &plan,
        &RenderSettings {
            http_bind: vec![super::loopback(http_port)],
            https_bind: vec![super::loopback(https_port)],
            run_dir: run_dir.display().to_string(),
            maxconn: super::BENCH_MAXCONN,
            default_cert_pem: cert.pem,
            ..RenderSettings::default()
        },
        &Templates::embedded()?,
    )?;
    routegen_host::tree::write_tree(&tree, dir)?;
    // `-f haproxy.cfg -f backends`, as routegen runs HAProxy.
    Ok(routegen_host::apply::haproxy_config_paths(dir))
}

/// An OpenShift-style configuration for the same Routes (one file, its
/// path in a list like [`routegen_tree`]'s): the backend is found by
/// `base,map_reg(...)` over one regex per Route, most specific first, as
/// the OpenShift router's `os_http_be.map` does.
fn openshift_config(
    targets: &[Target],
    origin_port: u16,
    http_port: u16,
    dir: &Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut entries: Vec<(String, String)> = targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let host = t.host.replace('.', "\\.");
            let pattern = match t.path {
                None | Some("/") => format!("^{host}(:[0-9]+)?(/.*)?$"),
                Some(path) => format!("^{host}(:[0-9]+)?{path}(/.*)?$"),
            };
            (pattern, format!("be_http:bench:r-{i}"))
        })
        .collect();
    // Longest (most specific) patterns first, as the router sorts them.
    entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    let mut map = String::new();
    for (pattern, backend) in &entries {
        let _ = writeln!(map, "{pattern} {backend}");
    }
    std::fs::write(dir.join("os_http_be.map"), map)?;
    let mut cfg = format!(
        "global\n  maxconn {}\n\ndefaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  \
         timeout server 30s\n  timeout http-request 10s\n  timeout http-keep-alive 300s\n\n\
         frontend public\n  bind 127.0.0.1:{http_port}\n  mode http\n  \
         http-request set-header Host %[req.hdr(host),lower]\n  \
         use_backend %[base,map_reg({}/os_http_be.map)]\n  default_backend openshift_default\n\n\
         backend openshift_default\n  mode http\n  http-request deny deny_status 503\n",
        super::BENCH_MAXCONN,
        dir.display()
    );
    for (i, _) in targets.iter().enumerate() {
        let _ = write!(
            cfg,
            "\nbackend be_http:bench:r-{i}\n  mode http\n  server pod 127.0.0.1:{origin_port}\n"
        );
    }
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg)?;
    Ok(vec![path])
}

/// The origin every backend points at, and one thread for HAProxy.
pub(super) fn origin_config(origin_port: u16, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("origin.cfg");
    std::fs::write(
        &path,
        format!(
            "global\n  nbthread 1\n\nfrontend origin\n  bind 127.0.0.1:{origin_port}\n  mode http\n  \
             timeout client 30s\n  http-request return status 200 content-type text/plain string ok\n"
        ),
    )?;
    Ok(path)
}

/// wrk's Lua script. Requests go to 10 of the Routes, evenly spread over
/// the fleet (all of them at 10 Routes), so both sizes reuse server
/// connections alike and only the lookup differs; every request has a
/// path of its own (`<route path>/<counter>`), as real traffic's variety
/// does, so HAProxy's pattern cache (which remembers `map_reg` results
/// per input) cannot hide the regex scan.
fn wrk_script(targets: &[Target], dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let picks: Vec<&Target> = (0..10.min(targets.len()))
        .map(|k| &targets[k * targets.len() / 10.min(targets.len())])
        .collect();
    let mut lua = String::from("local list = {\n");
    for t in picks {
        let path = match t.path {
            None | Some("/") => "/items".to_string(),
            Some(p) => format!("{p}/items"),
        };
        let _ = writeln!(lua, "  {{\"{}\", \"{path}\"}},", t.host);
    }
    lua.push_str(
        "}\nlocal i = 0\n\
         request = function()\n  i = i + 1\n  local t = list[i % #list + 1]\n  \
         return wrk.format(\"GET\", t[2] .. \"/\" .. i, {[\"Host\"] = t[1]})\nend\n",
    );
    let path = dir.join("requests.lua");
    std::fs::write(&path, lua)?;
    Ok(path)
}

/// Requests per second, p50 and p99 latency (ms) of one wrk run, after
/// checking every answer was a 200.
struct Measured {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn parse_latency(text: &str) -> Option<f64> {
    let text = text.trim();
    let (value, factor) = if let Some(v) = text.strip_suffix("us") {
        (v, 1e-3)
    } else if let Some(v) = text.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = text.strip_suffix('s') {
        (v, 1e3)
    } else {
        return None;
    };
    value.trim().parse::<f64>().ok().map(|v| v * factor)
}

fn run_wrk(opts: &Options<'_>, script: &Path, port: u16) -> anyhow::Result<Measured> {
    let output = Command::new(opts.wrk)
        .args(["-t1", &format!("-c{}", opts.connections)])
        .arg(format!("-d{}s", opts.seconds))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .stdin(Stdio::null())
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("wrk failed: {text}");
    }
    if text.contains("Non-2xx or 3xx responses") || text.contains("Socket errors") {
        bail!("some requests failed:\n{text}");
    }
    let find = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(str::trim))
    };
    Ok(Measured {
        rps: find("Requests/sec:")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("no Requests/sec in wrk output:\n{text}"))?,
        p50_ms: find("50%").and_then(parse_latency).unwrap_or(f64::NAN),
        p99_ms: find("99%").and_then(parse_latency).unwrap_or(f64::NAN),
    })
}

/// Start HAProxy on `configs` (one `-f` each, in order), wait for `port`,
/// measure, stop it.
fn measure(
    opts: &Options<'_>,
    configs: &[&Path],
    port: u16,
    script: &Path,
) -> anyhow::Result<Measured> {
    let mut cmd = Command::new(opts.haproxy);
    cmd.arg("-db");
    for cfg in configs {
        cmd.arg("-f").arg(cfg);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting haproxy")?;
    let deadline = Instant::now() + Duration::from_secs(60);
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
            break run_wrk(opts, script, port);
        }
        if Instant::now() > deadline {
            break Err(anyhow!("haproxy did not listen within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    result
}

use super::median_of as median;

/// Run the comparison and return the Markdown table.
pub fn run(opts: &Options<'_>, work: &Path) -> anyhow::Result<String> {
    let [origin_port, http_port, https_port] = super::free_ports()?;
    let run_dir = tempfile::Builder::new().prefix("rgr-").tempdir_in("/tmp")?;
    let base = work.join("routing");
    let _ = std::fs::remove_dir_all(&base);
    let origin = origin_config(origin_port, &base)?;
    // (label, size) -> measurements
    let mut rows: Vec<(String, usize, Vec<Measured>)> = Vec::new();
    let mut setups = Vec::new();
    for &n in opts.sizes {
        let targets = targets(n);
        let dir = base.join(format!("n{n}"));
        std::fs::create_dir_all(&dir)?;
        let script = wrk_script(&targets, &dir)?;
        let ours = routegen_tree(
            &targets,
            origin_port,
            http_port,
            https_port,
            run_dir.path(),
            opts.default_cert,
            &dir.join("routegen"),
        )?;
        let theirs = openshift_config(&targets, origin_port, http_port, &dir.join("openshift"))?;
        setups.push(("routegen (exact maps)".to_string(), n, ours, script.clone()));
        setups.push(("OpenShift-style (map_reg)".to_string(), n, theirs, script));
    }
    for (label, n, _, _) in &setups {
        rows.push((label.clone(), *n, Vec::new()));
    }
    // Rounds interleave the setups so drift on a shared machine hits all.
    for round in 0..opts.rounds {
        for (i, (label, n, cfgs, script)) in setups.iter().enumerate() {
            let configs: Vec<&Path> = cfgs
                .iter()
                .map(|p| p.as_path())
                .chain([origin.as_path()])
                .collect();
            let m = measure(opts, &configs, http_port, script)
                .with_context(|| format!("{label} at {n} Routes"))?;
            eprintln!(
                "round {}: {label}, {n} Routes: {:.0} req/s, p99 {:.2} ms",
                round + 1,
                m.rps,
                m.p99_ms
            );
            rows[i].2.push(m);
        }
    }
    let mut out = String::from(
        "| configuration | Routes | requests/s | p50 | p99 | throughput vs 10 Routes |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let smallest = opts.sizes.iter().copied().min().unwrap_or(0);
    for (label, n, ms) in &rows {
        let rps = median(ms.iter().map(|m| m.rps).collect());
        let base_rps = rows
            .iter()
            .find(|(l, k, _)| l == label && *k == smallest)
            .map(|(_, _, v)| median(v.iter().map(|m| m.rps).collect()))
            .unwrap_or(f64::NAN);
        let _ = writeln!(
            out,
            "| {label} | {n} | {rps:.0} | {:.2} ms | {:.2} ms | {:.0}% |",
            median(ms.iter().map(|m| m.p50_ms).collect()),
            median(ms.iter().map(|m| m.p99_ms).collect()),
            100.0 * rps / base_rps
        );
    }
    Ok(out)
}
