//! Files always equal runtime (issue 15): changes applied to a running
//! HAProxy through its runtime API, with reloads at fixed points in
//! between, leave it holding and serving exactly what a fresh HAProxy
//! started from the same files holds and serves.
//!
//! One HAProxy ("live") is started on the first tree. Each step changes
//! the manifests (endpoints added, removed, re-weighted, not ready; an edge
//! certificate rotated; a Route removed, re-added, its host changed; a
//! reencrypt destination CA changed; a new Route), renders the tree with
//! `routegen render` over the live one's files, and makes live serve it
//! as the sidecar does: the live delta ([`runtime::delta`]) through
//! [`Live`] when it is fully live, else a reload. Then a fresh HAProxy is
//! started from a render of the same manifests and both are compared:
//! `observe` (servers with ids, weights and admin state; maps;
//! certificates; crt-list; CA files), a request to every host, the
//! certificate presented for the edge host, and a sticky cookie issued by
//! the fresh one routed the same way by the live one. Deterministic (a
//! fixed list of steps), bounded (about 20 HAProxy starts).

use std::collections::BTreeMap;
use std::path::Path;

use routegen_core::testkit::certs::{CertSpec, Issued};
use routegen_host::runtime::live::Live;
use routegen_host::runtime::{observe, AdminState, Observed, StatsSocket};
use routegen_render::haproxy::runtime::{self, RuntimeState};
use routegen_render::output::{OutputFile, OutputTree};
use routegen_testsupport::e2e::{
    echo_server, http_request, route, service, tls_echo_server, Request, Router,
};
use routegen_testsupport::golden::read_tree;
use serde_json::Value;

const ROUTEGEN: &str = env!("CARGO_BIN_EXE_routegen");
const NS: &str = "eq";
const MAPS: [&str; 3] = ["maps/http.map", "maps/https.map", "maps/passthrough.map"];

/// What the manifests say at one step.
#[derive(Clone, Debug)]
struct World {
    /// Endpoints (pod name → echo server port) of Service `web`, with their
    /// readiness.
    web: BTreeMap<String, (u16, bool)>,
    /// Weight of the alternate backend `alt` of Route `web` (0..=256).
    alt_weight: i64,
    /// Which certificate the edge Route presents (index into the pairs).
    edge_cert: usize,
    /// Which destination CA the reencrypt Route trusts (the backend's CA
    /// is 0).
    dest_ca: usize,
    /// Route `gone` present.
    gone: bool,
    /// Host of Route `moving`.
    moving_host: String,
    /// Route `late` (a new backend: needs a reload) present.
    late: bool,
    /// Route `edge` (with its own certificate) present.
    edge: bool,
}

struct Fixture {
    ports: Vec<u16>,
    alt_port: u16,
    tls_port: u16,
    edge_ca: Issued,
    edge_certs: Vec<Issued>,
    dest_cas: Vec<Issued>,
}

impl Fixture {
    /// The identity of the echo server on `port`.
    fn name_of(&self, port: u16) -> String {
        let i = self
            .ports
            .iter()
            .position(|p| *p == port)
            .expect("a web port");
        format!("web{i}")
    }

    fn new() -> Fixture {
        let edge_ca = CertSpec::ca("eq route CA").self_signed();
        let edge_certs = (0..2)
            .map(|i| {
                CertSpec::leaf(&["edge.eq.test"])
                    .cn(&format!("edge {i}"))
                    .signed_by(&edge_ca)
            })
            .collect();
        let backend_ca = CertSpec::ca("eq backend CA").self_signed();
        let backend = CertSpec::leaf(&["secure.eq.svc"]).signed_by(&backend_ca);
        let tls_port = tls_echo_server("secure", &backend, &[]);
        let other_ca = CertSpec::ca("eq other CA").self_signed();
        Fixture {
            ports: (0..4).map(|i| echo_server(&format!("web{i}"))).collect(),
            alt_port: echo_server("alt"),
            tls_port,
            edge_ca,
            edge_certs,
            dest_cas: vec![backend_ca, other_ca],
        }
    }

    fn objects(&self, w: &World) -> Vec<Value> {
        let ready: Vec<(&str, u16)> = w
            .web
            .iter()
            .filter(|(_, (_, ready))| *ready)
            .map(|(pod, (port, _))| (pod.as_str(), *port))
            .collect();
        let mut objects = service(NS, "web", &ready);
        objects.extend(service(NS, "alt", &[("alt-0", self.alt_port)]));
        objects.extend(service(NS, "edge", &[("edge-0", self.ports[0])]));
        objects.extend(service(NS, "secure", &[("secure-0", self.tls_port)]));
        objects.extend(service(NS, "plain", &[("plain-0", self.ports[1])]));
        objects.push(
            route(NS, "web", "web.eq.test")
                .to("web", Some(100))
                .alt("alt", Some(w.alt_weight))
                .to_json(),
        );
        if w.edge {
            objects.push(
                route(NS, "edge", "edge.eq.test")
                    .to("edge", None)
                    .tls("edge")
                    .cert(&self.edge_certs[w.edge_cert], Some(&self.edge_ca))
                    .to_json(),
            );
        }
        objects.push(
            route(NS, "secure", "secure.eq.test")
                .to("secure", None)
                .tls("reencrypt")
                .dest_ca(&self.dest_cas[w.dest_ca])
                .to_json(),
        );
        objects.push(
            route(NS, "moving", &w.moving_host)
                .to("plain", None)
                .path("/m")
                .to_json(),
        );
        if w.gone {
            objects.push(
                route(NS, "gone", "gone.eq.test")
                    .to("plain", None)
                    .to_json(),
            );
        }
        if w.late {
            objects.push(
                route(NS, "late", "late.eq.test")
                    .to("plain", None)
                    .to_json(),
            );
        }
        objects
    }
}

/// The steps: (what changes, whether HAProxy is reloaded afterwards
/// whatever the delta says).
/// One step: what changes, the change, reload afterwards anyway.
type Step = (&'static str, Box<dyn Fn(&mut World)>, bool);

fn steps(f: &Fixture) -> Vec<Step> {
    let p = f.ports.clone();
    let add = move |pod: &'static str, i: usize| -> Box<dyn Fn(&mut World)> {
        let port = p[i];
        Box::new(move |w: &mut World| {
            w.web.insert(pod.to_string(), (port, true));
        })
    };
    vec![
        ("endpoint added", add("web-b", 1), false),
        ("endpoint added", add("web-c", 2), false),
        (
            "endpoint not ready",
            Box::new(|w| w.web.get_mut("web-a").unwrap().1 = false),
            false,
        ),
        (
            "endpoint removed",
            Box::new(|w| {
                w.web.remove("web-b");
            }),
            true,
        ),
        (
            "endpoint ready again",
            Box::new(|w| w.web.get_mut("web-a").unwrap().1 = true),
            false,
        ),
        ("weights", Box::new(|w| w.alt_weight = 50), false),
        ("certificate rotated", Box::new(|w| w.edge_cert = 1), false),
        ("route removed", Box::new(|w| w.gone = false), false),
        (
            "host changed",
            Box::new(|w| w.moving_host = "moved.eq.test".into()),
            false,
        ),
        ("route re-added", Box::new(|w| w.gone = true), true),
        ("destination CA changed", Box::new(|w| w.dest_ca = 1), false),
        ("destination CA back", Box::new(|w| w.dest_ca = 0), false),
        ("new route (reload)", Box::new(|w| w.late = true), false),
        ("endpoint added", add("web-d", 3), false),
        ("weights", Box::new(|w| w.alt_weight = 0), false),
        (
            "certificate rotated back",
            Box::new(|w| w.edge_cert = 0),
            false,
        ),
        (
            "route with a certificate removed",
            Box::new(|w| w.edge = false),
            false,
        ),
        (
            "route with a certificate re-added",
            Box::new(|w| w.edge = true),
            false,
        ),
        (
            "all endpoints replaced",
            Box::new(|w| {
                w.web.clear();
                w.web.insert("web-z".into(), (0, true));
            }),
            false,
        ),
    ]
}

fn tree_of(dir: &Path) -> OutputTree {
    read_tree(dir)
        .into_iter()
        .map(|(path, bytes)| (path, OutputFile::public(bytes)))
        .collect()
}

fn state_of(r: &Router) -> RuntimeState {
    RuntimeState::of_tree(&tree_of(&r.out())).unwrap()
}

fn socket(r: &Router) -> std::path::PathBuf {
    r.dir.path().join("run/haproxy.sock")
}

fn observed(r: &Router) -> Observed {
    let mut sock = StatsSocket::connect(&socket(r), std::time::Duration::from_secs(5)).unwrap();
    observe(&mut sock, &MAPS, Some("crt-list.txt")).unwrap()
}

/// `live` as far as the files of `fresh` go: backends the live HAProxy
/// still has but no file names (removed Routes), servers it keeps in
/// maintenance while they drain, CA files it loaded for them.
fn comparable(mut live: Observed, fresh: &Observed) -> Observed {
    live.servers.retain(|b, _| fresh.servers.contains_key(b));
    for servers in live.servers.values_mut() {
        servers.retain(|_, s| s.admin != AdminState::Maint);
    }
    live.ca_files.retain(|f, _| fresh.ca_files.contains_key(f));
    live
}

/// A router with the one default certificate of the test (live and fresh
/// must present the same).
fn router() -> Router {
    static DEFAULT: std::sync::OnceLock<Issued> = std::sync::OnceLock::new();
    let cert = DEFAULT.get_or_init(|| CertSpec::leaf(&["default.eq.test"]).self_signed());
    Router::new(ROUTEGEN, &[], cert.clone())
}

/// Who answers `host` (`status backend`), for 8 requests.
fn answers(r: &Router, host: &str, target: &str) -> Vec<String> {
    (0..8)
        .map(|_| {
            let resp = r.http(host, target);
            format!("{} {}", resp.status, resp.backend())
        })
        .collect()
}

#[test]
fn live_changes_equal_a_fresh_haproxy_started_from_the_files() {
    let f = Fixture::new();
    let mut world = World {
        web: [("web-a".to_string(), (f.ports[0], true))]
            .into_iter()
            .collect(),
        alt_weight: 0,
        edge_cert: 0,
        dest_ca: 0,
        gone: true,
        moving_host: "moving.eq.test".into(),
        late: false,
        edge: true,
    };
    let mut live = router();
    live.render(&f.objects(&world));
    live.start();
    let mut running = state_of(&live);
    let mut live_steps = 0;
    let mut reloads = 0;
    for (i, (what, change, reload_after)) in steps(&f).into_iter().enumerate() {
        change(&mut world);
        if world.web.contains_key("web-z") {
            world.web.insert("web-z".into(), (f.ports[3], true));
        }
        let objects = f.objects(&world);
        live.render(&objects);
        let new = state_of(&live);
        let delta = runtime::delta(&running, &new);
        let is_live = delta.is_live();
        let reasons: Vec<String> = delta.reload.iter().map(|r| r.to_string()).collect();
        if is_live {
            Live::new(socket(&live))
                .apply(&delta.ops)
                .unwrap_or_else(|e| panic!("step {i} ({what}): {e}"));
            running = delta.after;
            live_steps += 1;
        }
        if !is_live || reload_after {
            live.reload();
            running = new;
            reloads += 1;
        }

        eprintln!("step {i} ({what}): live {is_live}, reasons {reasons:?}");
        let mut fresh = router();
        fresh.render(&objects);
        fresh.start();
        let context = format!("step {i} ({what}, live: {is_live}, reload reasons {reasons:?})");
        let fresh_seen = observed(&fresh);
        let live_seen = comparable(observed(&live), &fresh_seen);
        assert_eq!(live_seen, fresh_seen, "{context}: HAProxy state differs");

        let mut hosts = vec![
            ("web.eq.test", "/"),
            ("gone.eq.test", "/"),
            ("late.eq.test", "/"),
            ("moving.eq.test", "/m"),
            ("moved.eq.test", "/m"),
        ];
        hosts.sort();
        for (host, target) in hosts {
            let mut a = answers(&live, host, target);
            let mut b = answers(&fresh, host, target);
            a.sort();
            a.dedup();
            b.sort();
            b.dedup();
            // Balancing may reach a subset; both sets come from the same
            // endpoints and agree on the status.
            let status = |v: &[String]| {
                let mut s: Vec<String> = v.iter().map(|s| s[..3].to_string()).collect();
                s.dedup();
                s
            };
            assert_eq!(
                status(&a),
                status(&b),
                "{context}: {host}{target}: {a:?} vs {b:?}"
            );
            // Who may answer: the ready endpoints (and the alternate
            // backend when weighted) for web, the one endpoint elsewhere.
            let mut allowed: Vec<String> = match host {
                "web.eq.test" => world
                    .web
                    .values()
                    .filter(|(_, ready)| *ready)
                    .map(|(port, _)| f.name_of(*port))
                    .chain((world.alt_weight > 0).then(|| "alt".to_string()))
                    .collect(),
                _ => b.iter().map(|x| x[4..].to_string()).collect(),
            };
            allowed.push("-".to_string()); // a 503 names no backend
            for x in a.iter().chain(&b) {
                assert!(
                    allowed.contains(&x[4..].to_string()),
                    "{context}: {host}{target}: {x} not among {allowed:?} ({a:?} vs {b:?})"
                );
            }
        }
        let (live_tls, _) = live.https("edge.eq.test", "/");
        let (fresh_tls, _) = fresh.https("edge.eq.test", "/");
        assert_eq!(
            live_tls.fingerprint(),
            fresh_tls.fingerprint(),
            "{context}: certificate presented"
        );
        let secure = |r: &Router| r.https("secure.eq.test", "/").1.status;
        assert_eq!(secure(&live), secure(&fresh), "{context}: reencrypt");

        // A client pinned by the fresh HAProxy's cookie lands on the same
        // endpoint through the live one.
        let first = fresh.http("web.eq.test", "/");
        if let Some((name, value)) = first
            .set_cookies()
            .into_iter()
            .find(|(k, _)| !k.starts_with("app-"))
        {
            let cookie = format!("{name}={value}");
            let extra = [("cookie", cookie.as_str())];
            let pinned = http_request(
                live.http_port,
                &Request {
                    host: "web.eq.test",
                    target: "/",
                    extra: &extra,
                    keep_alive: false,
                },
            )
            .unwrap();
            assert_eq!(pinned.backend(), first.backend(), "{context}: {cookie}");
        }
    }
    eprintln!("{live_steps} steps live, {reloads} reloads");
    assert!(live_steps >= 7, "the live steps stay live: {live_steps}");
}
