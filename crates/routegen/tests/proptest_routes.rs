//! Property tests over hostile Route values (issue 8, parts 1 and 2).
//!
//! 1. `hostile_sets_render_exactly_what_the_plan_predicts`: sets of Routes
//!    (hosts, paths, names, annotation values and certificate fields made
//!    of CR, LF, NUL, quotes, backslashes, `%[`, `#`, `{{`, Unicode, very
//!    long strings, mixed with valid values so many are admitted) go through
//!    load → admit → plan → render in one snapshot. Every Route is either
//!    rejected with a reason and message, or rendered; the tree passes the
//!    real `haproxy -c` (one run per generated set) and holds exactly what
//!    the plan predicts: the backend sections, `server` lines, map and
//!    crt-list entries are counted, every directive is one the template can
//!    produce, no byte outside printable ASCII reaches a file, and a marker
//!    planted in hostile values only appears inside plan values. The same
//!    set is rendered for nginx too and the tree passes the real `nginx -t`:
//!    admitted means renderable for every target (issue 17).
//! 2. `arbitrary_input_never_panics_the_loader_or_admission`: arbitrary
//!    bytes and structured-but-wrong documents fed to the loader and
//!    admission never panic (size-capped input, so memory stays bounded).
//!
//! Default run: 64 cases for property 1 (64 `haproxy -c` runs), 256 for
//! property 2. Long run (the fuzzing substitute; nightly `cargo fuzz` is not
//! available on this toolchain): `ROUTEGEN_LONG_PROPTEST=1` (4096 and
//! 65536 cases), or set `PROPTEST_CASES` to choose.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

use routegen_core::plan::PlanSettings;
use routegen_core::RouterSettings;
use routegen_host::source::files;
use routegen_render::pipeline::{self, PipelineConfig};
use routegen_render::{RenderSettings, Templates};

use routegen_testsupport::config;

/// Planted in hostile values: may only reach the tree inside a plan value.
const MARKER: &str = "zq9inj";

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The RNG seed: `ROUTEGEN_PROPTEST_SEED` if set, a fixed one under
/// `CI=true` (a landing must not depend on luck), else a fresh one. It is
/// printed so any failure can be replayed with the same seed.
fn seed() -> u64 {
    let seed = match std::env::var("ROUTEGEN_PROPTEST_SEED") {
        Ok(v) => v.parse().expect("ROUTEGEN_PROPTEST_SEED must be a u64"),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => 0x005e_ed0f_2026,
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    eprintln!("proptest seed: {seed} (replay with ROUTEGEN_PROPTEST_SEED={seed})");
    seed
}

fn cases(default: u32, long: u32) -> u32 {
    if let Ok(n) = std::env::var("PROPTEST_CASES") {
        if let Ok(n) = n.parse() {
            return n;
        }
    }
    if std::env::var("ROUTEGEN_LONG_PROPTEST").is_ok_and(|v| v == "1") {
        long
    } else {
        default
    }
}

fn config() -> PipelineConfig {
    let pem = std::fs::read_to_string(root().join("testdata/certs/default.pem")).unwrap();
    PipelineConfig {
        target: Default::default(),
        router: RouterSettings::default(),
        plan: PlanSettings {
            allow_loopback_endpoints: false,
            ..PlanSettings::default()
        },
        render: RenderSettings {
            default_cert_pem: pem,
            ..RenderSettings::default()
        },
        templates: Templates::embedded().unwrap(),
        tls_cache: Default::default(),
    }
}

// ---------------------------------------------------------------- strategies

/// Pieces hostile values are made of.
const HOSTILE: &[&str] = &[
    "\r",
    "\n",
    "\r\n",
    "\0",
    "\"",
    "'",
    "\\",
    "\\n",
    "%[",
    "%[src]",
    "]",
    "#",
    "{{",
    "}}",
    "{%",
    " ",
    "\t",
    "é",
    "\u{202e}",
    "\u{1F600}",
    "\u{feff}",
    "/",
    "..",
    ".",
    "-",
    "*",
    ":",
    ";",
    "$",
    "a",
    "example.com",
    "\nbackend zq9inj\n",
    "\n  server zq9inj 127.0.0.1:1\n",
    "\r\nhttp-request deny",
    "zq9inj",
    " if TRUE",
    "\nuse_backend zq9inj",
];

fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(prop::sample::select(HOSTILE), 1..12)
            .prop_map(|v| v.concat()),
        2 => any::<String>().prop_map(|s| s.chars().take(64).collect()),
        1 => (prop::sample::select(HOSTILE), 250usize..70_000)
            .prop_map(|(p, n)| p.repeat(n / p.len().max(1)).chars().take(n).collect()),
    ]
}

fn valid_host(i: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        6 => Just(format!("r{i}.example.com")),
        1 => Just(format!("shared{}.example.com", i % 3)),
        1 => Just(format!("R{i}.Example.COM")),
    ]
}

fn valid_path() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => Just(None),
        3 => "(/[a-z0-9._~%-]{1,8}){1,3}/?".prop_map(Some),
        1 => Just(Some("/".to_string())),
    ]
}

/// A valid value for each annotation (so some apply), or a hostile one.
fn annotation() -> impl Strategy<Value = (String, String)> {
    let keys = prop::sample::select(vec![
        ("haproxy.router.openshift.io/balance", "leastconn"),
        ("haproxy.router.openshift.io/timeout", "5s"),
        ("haproxy.router.openshift.io/timeout-tunnel", "1h"),
        (
            "haproxy.router.openshift.io/ip_allowlist",
            "10.0.0.0/8 192.168.1.1 ::1",
        ),
        ("haproxy.router.openshift.io/ip_whitelist", "10.1.2.3"),
        (
            "haproxy.router.openshift.io/hsts_header",
            "max-age=31536000;includeSubDomains;preload",
        ),
        ("haproxy.router.openshift.io/disable_cookies", "true"),
        ("haproxy.router.openshift.io/rewrite-target", "/x/"),
        ("haproxy.router.openshift.io/rate-limit-connections", "true"),
        (
            "haproxy.router.openshift.io/rate-limit-connections.concurrent-tcp",
            "10",
        ),
        (
            "haproxy.router.openshift.io/rate-limit-connections.rate-tcp",
            "20",
        ),
        (
            "haproxy.router.openshift.io/rate-limit-connections.rate-http",
            "30",
        ),
        (
            "haproxy.router.openshift.io/pod-concurrent-connections",
            "7",
        ),
        (
            "haproxy.router.openshift.io/set-forwarded-headers",
            "replace",
        ),
        ("router.openshift.io/cookie_name", "my_cookie"),
        ("router.openshift.io/cookie-same-site", "Strict"),
        ("router.openshift.io/haproxy.health.check.interval", "3s"),
    ]);
    (keys, any::<bool>(), hostile_string()).prop_map(|((k, valid), use_valid, hostile)| {
        (
            k.to_string(),
            if use_valid {
                valid.to_string()
            } else {
                hostile
            },
        )
    })
}

#[derive(Clone, Debug)]
enum Tls {
    None,
    /// Edge with a real certificate and key (www.example.com).
    EdgeValid,
    /// Termination and PEM fields from hostile strings.
    Hostile {
        termination: String,
        certificate: Option<String>,
        key: Option<String>,
        policy: String,
    },
    Passthrough,
}

fn tls() -> impl Strategy<Value = Tls> {
    prop_oneof![
        4 => Just(Tls::None),
        2 => Just(Tls::EdgeValid),
        1 => Just(Tls::Passthrough),
        2 => (
            prop::sample::select(vec!["edge", "reencrypt", "passthrough", "Edge", "x\ny"]),
            prop::option::of(hostile_string()),
            prop::option::of(hostile_string()),
            prop::sample::select(vec!["", "Allow", "Redirect", "None", "\"\n"]),
        )
            .prop_map(|(t, c, k, p)| Tls::Hostile {
                termination: t.to_string(),
                certificate: c.map(|c| format!("-----BEGIN CERTIFICATE-----\n{c}\n-----END CERTIFICATE-----\n")),
                key: k,
                policy: p.to_string(),
            }),
    ]
}

#[derive(Clone, Debug)]
struct GenRoute {
    name: Option<String>,
    host: Result<String, String>,
    path: Result<Option<String>, String>,
    annotations: Vec<(String, String)>,
    tls: Tls,
    service: String,
    port: Option<String>,
}

fn route(i: usize) -> impl Strategy<Value = GenRoute> {
    (
        prop::option::weighted(0.05, hostile_string()),
        prop_oneof![8 => valid_host(i).prop_map(Ok), 1 => hostile_string().prop_map(Err)],
        prop_oneof![6 => valid_path().prop_map(Ok), 1 => hostile_string().prop_map(Err)],
        prop::collection::vec(annotation(), 0..4),
        tls(),
        prop_oneof![8 => Just("svc".to_string()), 1 => hostile_string()],
        prop_oneof![4 => Just(None), 1 => Just(Some("http".to_string())), 1 => hostile_string().prop_map(Some)],
    )
        .prop_map(|(name, host, path, annotations, tls, service, port)| GenRoute {
            name,
            host,
            path,
            annotations,
            tls,
            service,
            port,
        })
}

fn route_set(n: usize) -> impl Strategy<Value = Vec<GenRoute>> {
    (0..n).map(route).collect::<Vec<_>>()
}

// ---------------------------------------------------------------- manifests

fn manifest(routes: &[GenRoute]) -> Value {
    let www_crt = std::fs::read_to_string(root().join("testdata/certs/www.crt")).unwrap();
    let www_key = std::fs::read_to_string(root().join("testdata/certs/www.key")).unwrap();
    let mut items = Vec::new();
    for ns in ["ns-a", "ns-b"] {
        items.push(json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "svc", "namespace": ns},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }));
        items.push(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "svc-1", "namespace": ns,
                          "labels": {"kubernetes.io/service-name": "svc"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.1.0.1"], "targetRef": {"kind": "Pod", "name": "p1"}},
                {"addresses": ["10.1.0.2"], "targetRef": {"kind": "Pod", "name": "p2"}}
            ]
        }));
    }
    for (i, r) in routes.iter().enumerate() {
        let ns = if i % 2 == 0 { "ns-a" } else { "ns-b" };
        let name = match &r.name {
            Some(hostile) => format!("r{i}{hostile}"),
            None => format!("r{i}"),
        };
        let host = match &r.host {
            Ok(h) | Err(h) => h.clone(),
        };
        let mut spec = json!({
            "host": host,
            "to": {"kind": "Service", "name": r.service, "weight": 100},
        });
        let path = match &r.path {
            Ok(p) => p.clone(),
            Err(hostile) => Some(hostile.clone()),
        };
        if let Some(p) = path {
            spec["path"] = json!(p);
        }
        if let Some(port) = &r.port {
            spec["port"] = json!({"targetPort": port});
        }
        match &r.tls {
            Tls::None => {}
            Tls::EdgeValid => {
                spec["host"] = json!(format!("www{i}.example.com"));
                spec["tls"] = json!({"termination": "edge", "certificate": www_crt, "key": www_key,
                                      "insecureEdgeTerminationPolicy": "Redirect"});
            }
            Tls::Passthrough => {
                spec["tls"] = json!({"termination": "passthrough"});
                spec.as_object_mut().unwrap().remove("path");
            }
            Tls::Hostile {
                termination,
                certificate,
                key,
                policy,
            } => {
                let mut t = json!({"termination": termination,
                                   "insecureEdgeTerminationPolicy": policy});
                if let Some(c) = certificate {
                    t["certificate"] = json!(c);
                }
                if let Some(k) = key {
                    t["key"] = json!(k);
                }
                spec["tls"] = t;
            }
        }
        let annotations: BTreeMap<&str, &str> = r
            .annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        items.push(json!({
            "apiVersion": "route.openshift.io/v1", "kind": "Route",
            "metadata": {"name": name, "namespace": ns, "annotations": annotations,
                          "uid": format!("uid-{i:04}"),
                          "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": spec,
        }));
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items})
}

// ---------------------------------------------------------------- checks

/// Directive words the template and the renderer can write, per section
/// kind, collected from every golden tree (all of them rendered from the
/// template) plus the fixed sections.
fn allowlist() -> BTreeMap<&'static str, BTreeSet<String>> {
    let mut allowed: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("testdata")).unwrap() {
        let expected = entry.unwrap().path().join("expected");
        if !expected.join("haproxy.cfg").is_file() {
            continue;
        }
        let text = config::whole_config(&expected);
        let mut kind = "";
        for line in text.lines() {
            if let Some(word) = line.split_whitespace().next() {
                if !line.starts_with(' ') {
                    kind = match word {
                        "global" => "global",
                        "defaults" => "defaults",
                        "frontend" => "frontend",
                        "backend" => "backend",
                        _ => kind,
                    };
                } else {
                    allowed.entry(kind).or_default().insert(word.to_string());
                }
            }
        }
    }
    allowed
}

/// Distinct keys of a lookup map (README, "Output"): `<host>/` for a
/// fallback, `<host><path>` for an Under path, `<host><path>?` and
/// `<host><path>/` for a Prefix path (the latter shared with an Under path
/// of the same host).
fn map_keys(table: &[std::sync::Arc<routegen_core::plan::LookupEntry>]) -> usize {
    use routegen_core::plan::PathMatch;
    let mut keys = BTreeSet::new();
    for e in table {
        match &e.path {
            PathMatch::Fallback => {
                keys.insert(format!("{}/", e.host_key));
            }
            PathMatch::Under(p) => {
                keys.insert(format!("{}{p}", e.host_key));
            }
            PathMatch::Prefix(p) => {
                keys.insert(format!("{}{p}?", e.host_key));
                keys.insert(format!("{}{p}/", e.host_key));
            }
        }
    }
    keys.len()
}

fn count_lines(bytes: &[u8]) -> usize {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

/// Values the plan holds as text (typed, validated): the only places a
/// hostile marker may appear.
fn plan_values(rendered: &pipeline::Rendered) -> Vec<String> {
    let mut v = Vec::new();
    for b in &rendered.plan.backends {
        v.push(b.name.to_string());
        v.push(b.route.to_string());
        v.push(b.host_key.to_string());
        v.extend(b.path.as_ref().map(|p| p.to_string()));
        for s in &b.servers {
            v.push(s.name.clone());
        }
        // Typed annotation values are plan values too: a valid cookie name
        // or rewrite target may legitimately equal the marker.
        if let Some(c) = &b.cookie {
            v.push(c.name.to_string());
        }
        if let Some(r) = &b.rewrite {
            v.push(r.prefix.clone());
            v.push(r.target.to_string());
        }
        if let Some(h) = &b.hsts {
            v.push(h.to_string());
        }
        v.extend(b.allowlist_file.clone());
    }
    for e in rendered
        .plan
        .http_lookup
        .iter()
        .chain(rendered.plan.https_lookup.iter())
    {
        v.push(e.key.to_string());
        v.push(e.route.to_string());
    }
    for c in rendered.plan.certificates.iter() {
        v.push(c.file.clone());
        v.push(c.sni.to_string());
    }
    v.sort_by_key(|s| std::cmp::Reverse(s.len()));
    v
}

fn check_set(routes: &[GenRoute], scratch: &Path, haproxy_runs: &mut usize) -> Result<(), String> {
    let config = config();
    let file = scratch.join("routes.json");
    std::fs::write(&file, serde_json::to_vec(&manifest(routes)).unwrap()).unwrap();
    let loaded = files::load_paths(&[file], "default").map_err(|e| format!("load: {e}"))?;
    let rendered = pipeline::render_snapshot_at(&loaded.snapshot, &config, 1_750_000_000)
        .map_err(|e| format!("render failed (one Route broke the tree): {e}"))?;

    // Every Route has a verdict: admitted, or rejected with a reason.
    let route_count = loaded.snapshot.routes.len() + loaded.snapshot.undecodable_routes.len();
    if rendered.verdicts.len() != route_count {
        return Err(format!(
            "{} verdicts for {route_count} Routes",
            rendered.verdicts.len()
        ));
    }
    for v in &rendered.verdicts {
        if let Some(r) = v.rejection() {
            if r.message.trim().is_empty() {
                return Err(format!("{}: rejected without a message", v.key));
            }
        }
    }
    let admitted: BTreeSet<String> = rendered
        .verdicts
        .iter()
        .filter(|v| v.is_admitted())
        .map(|v| v.key.to_string())
        .collect();
    for b in &rendered.plan.backends {
        if !admitted.contains(&b.route.to_string()) {
            return Err(format!("backend {} for a rejected Route", b.name));
        }
    }

    let tree = &rendered.tree;
    let get = |p: &str| tree.get(p).map(|f| f.contents.to_vec()).unwrap_or_default();
    let plan = &rendered.plan;

    // Printable ASCII only in every non-secret file.
    for (path, f) in tree {
        if f.secret || path.ends_with(".pem") || path.ends_with(".crt") {
            continue;
        }
        if let Some(b) = f
            .contents
            .iter()
            .find(|&&b| b != b'\n' && !(0x20..0x7f).contains(&b))
        {
            return Err(format!("{path}: byte {b:#04x} outside printable ASCII"));
        }
    }

    // Counts the plan predicts, over haproxy.cfg and backends/*.cfg.
    let cfg = config::whole_config_of_tree(tree);
    if String::from_utf8_lossy(&get("haproxy.cfg")).contains("\nbackend ") {
        return Err("a backend section in haproxy.cfg".into());
    }
    let backends = cfg.lines().filter(|l| l.starts_with("backend ")).count();
    if backends != plan.backends.len() + plan.spares.len() + 2 {
        return Err(format!(
            "{backends} backend sections, plan has {} + {} spares + 2",
            plan.backends.len(),
            plan.spares.len()
        ));
    }
    // Spares are empty (a new Route's servers are added to one at runtime).
    if let Some(s) = plan.spares.iter().find(|s| !s.servers.is_empty()) {
        return Err(format!("spare {} has servers", s.name));
    }
    let servers = cfg
        .lines()
        .filter(|l| l.trim_start().starts_with("server "))
        .count();
    let planned: usize = plan.backends.iter().map(|b| b.servers.len()).sum::<usize>() + 1;
    if servers != planned {
        return Err(format!("{servers} server lines, plan has {planned}"));
    }
    for (map, n) in [
        ("maps/http.map", map_keys(&plan.http_lookup)),
        ("maps/https.map", map_keys(&plan.https_lookup)),
        ("maps/passthrough.map", plan.passthrough.len()),
        ("crt-list.txt", plan.certificates.len()),
    ] {
        let lines = count_lines(&get(map));
        if lines != n {
            return Err(format!("{map}: {lines} lines, plan has {n}"));
        }
    }
    let sections: BTreeSet<String> = cfg
        .lines()
        .filter(|l| l.starts_with("backend "))
        // `backend <name> [from <defaults>]`
        .filter_map(|l| l["backend ".len()..].split(' ').next())
        .map(str::to_string)
        .collect();
    let mut expected: BTreeSet<String> = plan
        .backends
        .iter()
        .chain(&plan.spares)
        .map(|b| b.name.to_string())
        .collect();
    expected.insert("be_no_route".into());
    expected.insert("be_terminate".into());
    if sections != expected {
        return Err(format!(
            "backend sections {sections:?} != plan {expected:?}"
        ));
    }

    // Every line is a comment, a known section header, or a directive the
    // template can write for that kind of section.
    let allowed = allowlist();
    let mut kind = "";
    for line in cfg.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if !line.starts_with(' ') {
            kind = match line {
                "global" => "global",
                "defaults base"
                | "defaults forwarded_append from base"
                | "defaults forwarded_replace from base"
                | "defaults forwarded_if_none from base"
                | "defaults from base" => "defaults",
                "frontend fe_http" | "frontend fe_https" | "frontend fe_terminate" => "frontend",
                // `backend <name>`, or with one of the forwarded-header defaults.
                l if l.starts_with("backend ")
                    && matches!(
                        l.split(' ').collect::<Vec<_>>()[..],
                        [_, _]
                            | [_, _, "from", "forwarded_append"]
                            | [_, _, "from", "forwarded_replace"]
                            | [_, _, "from", "forwarded_if_none"]
                    ) =>
                {
                    "backend"
                }
                other => return Err(format!("unexpected top-level line {other:?}")),
            };
            continue;
        }
        if !line.starts_with("  ") || line.starts_with("   ") {
            return Err(format!("unexpected indentation {line:?}"));
        }
        let word = line.split_whitespace().next().unwrap_or("");
        if !allowed.get(kind).is_some_and(|set| set.contains(word)) {
            return Err(format!(
                "directive {word:?} not allowed in {kind}: {line:?}"
            ));
        }
    }

    // The marker appears only inside plan values.
    let values = plan_values(&rendered);
    for (path, f) in tree {
        let text = String::from_utf8_lossy(&f.contents);
        for line in text.lines().filter(|l| l.contains(MARKER)) {
            let mut rest = line.to_string();
            for v in &values {
                if !v.is_empty() {
                    rest = rest.replace(v.as_str(), "");
                }
            }
            if rest.contains(MARKER) {
                return Err(format!(
                    "{path}: hostile marker outside plan values: {line:?}"
                ));
            }
        }
    }

    // The real haproxy -c, once per set.
    let dir = scratch.join(format!("tree{haproxy_runs}"));
    routegen_host::tree::write_tree(tree, &dir).map_err(|e| e.to_string())?;
    let out = config::haproxy_c(Path::new("haproxy"), &dir);
    *haproxy_runs += 1;
    std::fs::remove_dir_all(&dir).ok();
    if !out.status.success() {
        return Err(format!(
            "haproxy -c refused the tree: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }

    // The same set for nginx: it renders, and the real nginx -t accepts it.
    let run_dir = scratch.join("nginx-run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut nginx = config;
    nginx.target = routegen_render::Target::Nginx;
    nginx.render.run_dir = run_dir.display().to_string();
    let rendered = pipeline::render_snapshot_at(&loaded.snapshot, &nginx, 1_750_000_000)
        .map_err(|e| format!("nginx render failed (one Route broke the tree): {e}"))?;
    let dir = scratch.join(format!("nginx{haproxy_runs}"));
    routegen_host::tree::write_tree(&rendered.tree, &dir).map_err(|e| e.to_string())?;
    let checked = config::nginx_t(&routegen_testsupport::e2e::nginx_bin(), &dir);
    std::fs::remove_dir_all(&dir).ok();
    checked.map_err(|e| format!("nginx -t refused the tree: {e}"))
}

#[test]
fn hostile_sets_render_exactly_what_the_plan_predicts() {
    let scratch = tempfile::tempdir().unwrap();
    let n = cases(64, 4096);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed()),
        max_shrink_iters: 64,
        ..Config::default()
    });
    let haproxy_runs = std::cell::Cell::new(0usize);
    let admitted = std::cell::Cell::new(0usize);
    let total = std::cell::Cell::new(0usize);
    let started = std::time::Instant::now();
    let result = runner.run(&route_set(30), |routes| {
        let mut runs = haproxy_runs.get();
        let r = check_set(&routes, scratch.path(), &mut runs);
        haproxy_runs.set(runs);
        total.set(total.get() + routes.len());
        if r.is_ok() {
            // Count admitted Routes of this set for the summary.
            let file = scratch.path().join("routes.json");
            if let Ok(l) = files::load_paths(&[file], "default") {
                let v = routegen_core::admit::admit_at(&l.snapshot, &RouterSettings::default(), 0);
                admitted.set(admitted.get() + v.iter().filter(|v| v.is_admitted()).count());
            }
        }
        r.map_err(proptest::test_runner::TestCaseError::fail)
    });
    eprintln!(
        "hostile sets: {n} cases, {} Routes ({} admitted), {} haproxy -c and as many nginx -t runs, {:.1}s",
        total.get(),
        admitted.get(),
        haproxy_runs.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(admitted.get() > 0, "the generator must admit some Routes");
}

// ---------------------------------------------------------------- property 2

/// Documents with the right shape but wrong types and hostile values.
fn structured_doc() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        hostile_string().prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "kind",
                    "metadata",
                    "spec",
                    "name",
                    "namespace",
                    "host",
                    "path",
                    "to",
                    "tls",
                    "items",
                    "annotations",
                    "termination",
                    "alternateBackends",
                    "weight",
                    "port",
                    "targetPort",
                    "endpoints",
                    "ports",
                    "addresses",
                ])
                .prop_map(str::to_string),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    (
        prop::sample::select(vec![
            "Route",
            "Service",
            "EndpointSlice",
            "Namespace",
            "List",
            "X",
        ]),
        value.clone(),
        value,
    )
        .prop_map(|(kind, metadata, spec)| {
            serde_json::to_string(&json!({
                "apiVersion": "route.openshift.io/v1",
                "kind": kind,
                "metadata": metadata,
                "spec": spec,
                "items": [{"kind": kind, "metadata": {"name": "x"}, "spec": spec}],
            }))
            .unwrap()
        })
}

fn raw_input() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        // Arbitrary bytes.
        (prop::collection::vec(any::<u8>(), 0..2048), any::<bool>()),
        // YAML-looking text from hostile pieces and YAML syntax.
        (
            prop::collection::vec(
                prop::sample::select(vec![
                    "---\n",
                    "...\n",
                    "kind: Route\n",
                    "kind: List\nitems:\n",
                    "- ",
                    "  ",
                    "metadata: {name: a}\n",
                    "spec:\n",
                    "  host: ",
                    "&a ",
                    "*a ",
                    "!!binary ",
                    "{",
                    "}",
                    "[",
                    "]",
                    ":",
                    "\"",
                    "'",
                    "\n",
                    "\t",
                    "\0",
                    "%YAML 1.2\n",
                    "<<: *a\n",
                    "? ",
                    "|\n",
                    ">-\n",
                    "#",
                    "\u{feff}",
                    "\r\n",
                ]),
                0..80
            )
            .prop_map(|v| v.concat().into_bytes()),
            any::<bool>()
        ),
        // Structured documents with wrong types.
        (
            prop::collection::vec(structured_doc(), 1..4)
                .prop_map(|v| v.join("\n---\n").into_bytes()),
            Just(false)
        ),
        structured_doc().prop_map(|d| (d.into_bytes(), true)),
    ]
}

#[test]
fn arbitrary_input_never_panics_the_loader_or_admission() {
    let scratch = tempfile::tempdir().unwrap();
    let n = cases(256, 65_536);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed()),
        max_shrink_iters: 256,
        ..Config::default()
    });
    let config = config();
    let started = std::time::Instant::now();
    let loaded_ok = std::cell::Cell::new(0usize);
    let result = runner.run(&raw_input(), |(bytes, json)| {
        let file: PathBuf = scratch
            .path()
            .join(if json { "in.json" } else { "in.yaml" });
        std::fs::write(&file, &bytes).unwrap();
        // Errors are fine; panics (caught by the runner) are not.
        if let Ok(loaded) = files::load_paths(&[file], "default") {
            loaded_ok.set(loaded_ok.get() + 1);
            let rendered = pipeline::render_snapshot_at(&loaded.snapshot, &config, 0);
            if let Ok(r) = rendered {
                for v in &r.verdicts {
                    if let Some(rej) = v.rejection() {
                        prop_assert!(!rej.message.is_empty());
                    }
                }
            }
        }
        Ok(())
    });
    eprintln!(
        "arbitrary input: {n} cases ({} loaded), {:.1}s",
        loaded_ok.get(),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
