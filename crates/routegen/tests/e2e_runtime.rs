//! `routegen run --spawn-haproxy` with HAProxy's runtime API (issue 15),
//! end to end: the real binary, a real HAProxy, echo backends on
//! 127.0.0.1 answering with their identity, manifests in a directory.
//!
//! What is checked is what a client sees (which backend answers, which
//! certificate is presented, 503s), plus the counters and HAProxy's
//! worker pid to prove that no reload happened. Every wait is bounded
//! ([`LIMIT`]); no assertion is about time.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use routegen_core::testkit::certs::{self, Issued};
use routegen_core::testkit::{EndpointSliceBuilder, ServiceBuilder};
use routegen_testsupport::e2e::{
    self, echo_server, http_get, http_request, tls_handshake, Request, TlsOpts,
};
use routegen_testsupport::sidecar::{metric_in, process_alive, wait_for, Sidecar};
use serde_json::{json, Value};

/// Bound of every wait for a change to be served.
const LIMIT: Duration = Duration::from_secs(15);
/// Bound of a start (render, `haproxy -c`, HAProxy listening).
const START: Duration = Duration::from_secs(30);

const NS: &str = "rt";

fn sidecar(extra: &[&str]) -> Sidecar {
    Sidecar::new(env!("CARGO_BIN_EXE_routegen"), extra)
}

// ---------------------------------------------------------------------------
// Backends and manifests

/// Echo servers `<prefix>0..n`, each answering with its id.
struct Backends(BTreeMap<String, u16>);

impl Backends {
    fn start(prefix: &str, n: usize) -> Backends {
        Backends(
            (0..n)
                .map(|i| {
                    let id = format!("{prefix}{i}");
                    let port = echo_server(&id);
                    (id, port)
                })
                .collect(),
        )
    }

    fn port(&self, id: &str) -> u16 {
        self.0[id]
    }
}

/// One endpoint of a Service: a pod on the port of backend `backend`.
#[derive(Clone, Debug)]
struct Ep {
    pod: String,
    backend: String,
    ready: bool,
}

fn ep(pod: &str, backend: &str) -> Ep {
    Ep {
        pod: pod.into(),
        backend: backend.into(),
        ready: true,
    }
}

/// Service `svc` (port `http`) and one EndpointSlice per endpoint, named
/// after the pod (so a port change edits the same slice).
fn service(svc: &str, eps: &[Ep], backends: &Backends) -> Vec<Value> {
    let mut out = vec![ServiceBuilder::new(NS, svc)
        .port("http", 80, 8080)
        .to_json()];
    for e in eps {
        let mut slice = EndpointSliceBuilder::new(NS, &format!("{svc}-{}", e.pod), svc)
            .tcp_port("http", i32::from(backends.port(&e.backend)))
            .pod_endpoint("127.0.0.1", &e.pod)
            .to_json();
        if !e.ready {
            slice["endpoints"][0]["conditions"]["ready"] = json!(false);
        }
        out.push(slice);
    }
    out
}

/// Manifest text: a `kind: List` of `items`.
fn list(items: impl IntoIterator<Item = Value>) -> String {
    let items: Vec<Value> = items.into_iter().collect();
    serde_json::to_string_pretty(&json!({"apiVersion": "v1", "kind": "List", "items": items}))
        .unwrap()
}

/// Route `name` for `host` to Service `svc`.
fn route(name: &str, host: &str, svc: &str) -> Value {
    e2e::route(NS, name, host).to(svc, None).to_json()
}

fn edge_route(name: &str, host: &str, svc: &str, cert: &Issued) -> Value {
    e2e::route(NS, name, host)
        .to(svc, None)
        .tls("edge")
        .cert(cert, None)
        .to_json()
}

// ---------------------------------------------------------------------------
// Observations

/// Trees applied by this routegen process.
fn applied(sc: &Sidecar) -> f64 {
    sc.metric("routegen_applies_total{result=\"success\",reason=\"config_changed\"}")
}

/// Confirmed reloads by this routegen process.
fn reloads(sc: &Sidecar) -> f64 {
    sc.metric("routegen_reloads_total{result=\"success\",method=\"master_cli\",reason=\"none\"}")
}

fn runtime_changes(sc: &Sidecar, kind: &str) -> f64 {
    sc.metric(&format!(
        "routegen_changes_total{{path=\"runtime\",kind=\"{kind}\"}}"
    ))
}

/// Write manifest `file` and wait until routegen applied a tree after it.
fn change(sc: &Sidecar, file: &str, text: &str) {
    let before = applied(sc);
    sc.write_manifest(file, text);
    wait_for(
        LIMIT,
        &format!("a tree applied after writing {file}"),
        || (applied(sc) > before).then_some(()),
    );
}

/// The current workers' pids (master CLI `show proc`).
fn workers(sc: &Sidecar) -> Vec<u32> {
    sc.show_proc().expect("show proc").current_pids()
}

/// Which backend answers `GET /` for `host` (`status N` when HAProxy
/// itself does), `n` times on new connections.
fn sample(sc: &Sidecar, host: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for _ in 0..n {
        let r = http_get(sc.http, host, "/");
        let key = match r.status {
            200 => r.backend().to_string(),
            s => format!("status {s}"),
        };
        *seen.entry(key).or_default() += 1;
    }
    seen
}

/// Requests for `host` are answered by exactly the backends `want` (once
/// the change is applied, nothing else may answer; each one of `want`
/// must answer within [`LIMIT`]).
fn assert_serves(sc: &Sidecar, host: &str, want: &BTreeSet<String>) {
    let mut missing = want.clone();
    wait_for(LIMIT, &format!("{host} served by {want:?}"), || {
        let seen = sample(sc, host, 2 * want.len() + 2);
        let stray: Vec<&String> = seen.keys().filter(|k| !want.contains(*k)).collect();
        assert!(
            stray.is_empty(),
            "{host}: {stray:?} answered, want only {want:?} (seen {seen:?})"
        );
        for k in seen.keys() {
            missing.remove(k);
        }
        missing.is_empty().then_some(())
    });
}

/// The backends of the ready endpoints.
fn ready(eps: &[&[Ep]]) -> BTreeSet<String> {
    eps.iter()
        .flat_map(|e| e.iter())
        .filter(|e| e.ready)
        .map(|e| e.backend.clone())
        .collect()
}

/// `host` is answered by HAProxy itself with 503 (no Route).
fn assert_503(sc: &Sidecar, host: &str) {
    for _ in 0..5 {
        let r = http_get(sc.http, host, "/");
        assert_eq!((r.status, r.backend()), (503, "-"), "{host}: {r:?}");
    }
}

/// The fingerprint of the certificate HAProxy presents for SNI `host`.
fn presented(sc: &Sidecar, host: &str) -> String {
    tls_handshake(sc.https, TlsOpts::sni(host)).fingerprint()
}

/// `GET /` for `host` with the sticky cookie `cookie` (`name=value`):
/// which backend answered.
fn with_cookie(sc: &Sidecar, host: &str, cookie: &str) -> String {
    let extra = [("cookie", cookie)];
    let r = http_request(
        sc.http,
        &Request {
            extra: &extra,
            ..Request::get(host, "/")
        },
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    r.backend().to_string()
}

/// A request without cookie: the backend that answered and the router's
/// sticky cookie (`name=value`; the backends' own are `app-*`).
fn pin(sc: &Sidecar, host: &str) -> (String, String) {
    let r = http_get(sc.http, host, "/");
    assert_eq!(r.status, 200, "{r:?}");
    let (name, value) = r
        .set_cookies()
        .into_iter()
        .find(|(n, _)| !n.starts_with("app-"))
        .unwrap_or_else(|| panic!("no router cookie in {r:?}"));
    (r.backend().to_string(), format!("{name}={value}"))
}

/// Start `sc`, wait until ready and `host` is served by `want`; returns
/// (reloads, worker pids) at that point.
fn start(sc: &mut Sidecar, host: &str, want: &BTreeSet<String>) -> (f64, Vec<u32>) {
    sc.start();
    sc.wait_ready(START);
    assert_serves(sc, host, want);
    (reloads(sc), workers(sc))
}

fn wait_for_old_workers_gone(sc: &Sidecar) {
    wait_for(LIMIT, "no old worker left", || {
        sc.show_proc().ok()?.old_workers.is_empty().then_some(())
    });
}

/// No reload since `before`: the counter and HAProxy's current worker.
fn assert_no_reload(sc: &Sidecar, before: &(f64, Vec<u32>), what: &str) {
    assert_eq!(reloads(sc), before.0, "{what}: reloaded\n{}", sc.metrics());
    assert_eq!(workers(sc), before.1, "{what}: another worker");
}

// ---------------------------------------------------------------------------
// Tests

/// (1) ~30 endpoint changes in a row (add, remove, not ready, ready again,
/// port change, weights through an alternate backend), each served
/// without a reload.
#[test]
fn endpoint_changes_are_served_without_reloads() {
    let b = Backends::start("ep", 10);
    let host = "eps.example.com";
    let mut s = vec![ep("s0", "ep0"), ep("s1", "ep1")];
    let mut t = vec![ep("t0", "ep2")];
    let mut weights = (1i64, 1i64);
    let services =
        |s: &[Ep], t: &[Ep]| list(service("s", s, &b).into_iter().chain(service("t", t, &b)));
    let web = |w: (i64, i64)| {
        list([e2e::route(NS, "web", host)
            .to("s", Some(w.0))
            .alt("t", Some(w.1))
            .to_json()])
    };
    let mut sc = sidecar(&[]);
    sc.write_manifest("svc.json", &services(&s, &t));
    sc.write_manifest("route.json", &web(weights));
    let started = start(&mut sc, host, &ready(&[&s, &t]));
    let endpoint_changes = runtime_changes(&sc, "endpoint");
    let tree_reloads = "routegen_changes_total{path=\"reload\",kind=\"tree\"}";
    let reload_trees = sc.metric(tree_reloads);

    // Both services keep weight > 0 (the balance algorithm stays
    // roundrobin) and at least two endpoints are ready (health checks stay
    // on): the backend's settings never change.
    let free = |s: &[Ep], t: &[Ep]| {
        b.0.keys()
            .find(|id| !s.iter().chain(t).any(|e| &e.backend == *id))
            .unwrap()
            .clone()
    };
    let mut pods = 10;
    for step in 0..30 {
        let what = match step % 6 {
            0 => {
                pods += 1;
                let backend = free(&s, &t);
                s.push(ep(&format!("s{pods}"), &backend));
                "add"
            }
            1 => {
                let i = s.iter().position(|e| e.ready).unwrap();
                s[i].ready = false;
                "not ready"
            }
            2 => {
                let backend = free(&s, &t);
                t[0].backend = backend;
                "port change"
            }
            3 => {
                for e in s.iter_mut() {
                    e.ready = true;
                }
                "ready again"
            }
            4 => {
                if s.len() > 2 {
                    s.remove(0);
                    "remove"
                } else {
                    pods += 1;
                    let backend = free(&s, &t);
                    t.push(ep(&format!("t{pods}"), &backend));
                    "add to the alternate"
                }
            }
            _ => {
                weights = if weights.0 >= weights.1 {
                    (1, 4)
                } else {
                    (4, 1)
                };
                "weights"
            }
        };
        if what == "weights" {
            change(&sc, "route.json", &web(weights));
            // The heavier service gets most requests.
            let (heavy, light) = if weights.0 > weights.1 {
                (&s, &t)
            } else {
                (&t, &s)
            };
            let (heavy, light) = (ready(&[heavy]), ready(&[light]));
            wait_for(LIMIT, "the new weights", || {
                let seen = sample(&sc, host, 40);
                let count =
                    |set: &BTreeSet<String>| set.iter().map(|k| seen.get(k).unwrap_or(&0)).sum();
                let (h, l): (usize, usize) = (count(&heavy), count(&light));
                assert_eq!(h + l, 40, "step {step}: {seen:?}");
                (h > 2 * l).then_some(())
            });
        } else {
            change(&sc, "svc.json", &services(&s, &t));
            assert_serves(&sc, host, &ready(&[&s, &t]));
        }
        assert_no_reload(&sc, &started, &format!("step {step} ({what})"));
    }
    let m = sc.metrics();
    assert!(
        metric_in(
            &m,
            "routegen_changes_total{path=\"runtime\",kind=\"endpoint\"}"
        ) >= endpoint_changes + 30.0,
        "{m}"
    );
    assert_eq!(metric_in(&m, tree_reloads), reload_trees, "{m}");
    assert!(sc.log_text().contains(" endpoint ("), "the log says live");
    assert_eq!(sc.sigterm_and_wait().code(), Some(0));
}

/// (2) A client pinned by the router's cookie stays on its endpoint while
/// other endpoints are added and removed live.
#[test]
fn sticky_cookie_holds_across_live_endpoint_changes() {
    let b = Backends::start("st", 8);
    let host = "sticky.example.com";
    let mut eps = vec![ep("p0", "st0"), ep("p1", "st1"), ep("p2", "st2")];
    let mut sc = sidecar(&[]);
    sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
    sc.write_manifest("route.json", &list([route("web", host, "s")]));
    let started = start(&mut sc, host, &ready(&[&eps]));
    let (pinned, cookie) = pin(&sc, host);
    for _ in 0..5 {
        assert_eq!(with_cookie(&sc, host, &cookie), pinned);
    }
    let others = |eps: &[Ep]| -> Vec<usize> {
        (0..eps.len())
            .filter(|i| eps[*i].ready && eps[*i].backend != pinned)
            .collect()
    };
    let mut next = 3;
    for step in 0..8 {
        match step % 4 {
            0 | 2 => {
                eps.push(ep(&format!("n{step}"), &format!("st{next}")));
                next += 1;
            }
            1 => {
                let i = others(&eps)[0];
                eps.remove(i);
            }
            _ => {
                let i = others(&eps)[0];
                eps[i].ready = false;
            }
        }
        change(&sc, "svc.json", &list(service("s", &eps, &b)));
        assert_serves(&sc, host, &ready(&[&eps]));
        for _ in 0..10 {
            assert_eq!(with_cookie(&sc, host, &cookie), pinned, "step {step}");
        }
    }
    assert_no_reload(&sc, &started, "endpoint changes");
    // The pinned endpoint goes away: the client is served by another one.
    eps.retain(|e| e.backend != pinned);
    change(&sc, "svc.json", &list(service("s", &eps, &b)));
    let other = with_cookie(&sc, host, &cookie);
    assert!(ready(&[&eps]).contains(&other), "{other}");
    assert_no_reload(&sc, &started, "the pinned endpoint removed");
}

/// (3) A Route's certificate replaced by another pair for the same host:
/// the new one is presented, without a reload.
#[test]
fn certificate_rotation_is_live() {
    let b = Backends::start("tls", 2);
    let host = "secure.example.com";
    let eps = [ep("p0", "tls0"), ep("p1", "tls1")];
    let pairs: Vec<Issued> = (0..3).map(|_| certs::self_signed_leaf(&[host])).collect();
    let mut sc = sidecar(&[]);
    sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
    sc.write_manifest(
        "route.json",
        &list([edge_route("sec", host, "s", &pairs[0])]),
    );
    sc.start();
    sc.wait_ready(START);
    assert_eq!(presented(&sc, host), e2e::fingerprint(&pairs[0].cert));
    let started = (reloads(&sc), workers(&sc));
    let before = runtime_changes(&sc, "certificate");
    for (i, pair) in pairs.iter().enumerate().skip(1) {
        change(
            &sc,
            "route.json",
            &list([edge_route("sec", host, "s", pair)]),
        );
        let want = e2e::fingerprint(&pair.cert);
        wait_for(LIMIT, &format!("certificate {i} presented"), || {
            (presented(&sc, host) == want).then_some(())
        });
        let (info, resp) = e2e::https_get(sc.https, host, "/");
        assert_eq!(info.fingerprint(), want);
        assert_eq!(resp.status, 200, "{resp:?}");
        assert!(resp.backend().starts_with("tls"), "{resp:?}");
        assert_no_reload(&sc, &started, &format!("rotation {i}"));
    }
    // Its certificate removed: the default one is presented. HAProxy 2.6
    // cannot delete the crt-list line of `certs/<ns>:<name>.pem` (its `del
    // ssl crt-list` reads the ':' as a line number), so this one reloads,
    // as planned: no runtime command refused.
    let plain = e2e::route(NS, "sec", host)
        .to("s", None)
        .tls("edge")
        .to_json();
    change(&sc, "route.json", &list([plain]));
    let last = e2e::fingerprint(&pairs[2].cert);
    wait_for(LIMIT, "the default certificate presented", || {
        (reloads(&sc) > started.0 && presented(&sc, host) != last).then_some(())
    });
    assert_eq!(e2e::https_get(sc.https, host, "/").1.status, 200);
    let m = sc.metrics();
    assert_eq!(metric_in(&m, "routegen_runtime_failures_total"), 0.0, "{m}");
    assert_eq!(
        metric_in(&m, "routegen_reload_reasons_total{reason=\"certificate\"}"),
        1.0,
        "{m}"
    );
    assert!(sc.log_text().contains("cannot delete its crt-list line"));
    // Added back: live.
    wait_for_old_workers_gone(&sc);
    let reloaded = (reloads(&sc), workers(&sc));
    change(
        &sc,
        "route.json",
        &list([edge_route("sec", host, "s", &pairs[2])]),
    );
    wait_for(LIMIT, "the certificate presented again", || {
        (presented(&sc, host) == last).then_some(())
    });
    assert_no_reload(&sc, &reloaded, "certificate added back");
    assert!(runtime_changes(&sc, "certificate") >= before + 3.0);
}

/// (4) A Route removed answers 503 and a host change is served, both
/// live; a Route removed and added back unchanged is live too; new Routes
/// of a shape HAProxy runs are served from its spare backends, live, two
/// per shape; the third reloads (`backend_added`) and every Route is
/// served under its own name after it; the next new Route is live again.
#[test]
fn route_removal_host_change_and_new_routes_are_live() {
    let b = Backends::start("ro", 12);
    let s1 = [ep("a0", "ro0"), ep("a1", "ro1")];
    let s2 = [ep("b0", "ro2"), ep("b1", "ro3")];
    let s3 = [ep("c0", "ro4"), ep("c1", "ro5")];
    let s4 = [ep("d0", "ro6"), ep("d1", "ro7")];
    let s5 = [ep("e0", "ro8"), ep("e1", "ro9")];
    let s6 = [ep("f0", "ro10"), ep("f1", "ro11")];
    let mut sc = sidecar(&[]);
    sc.write_manifest(
        "svc.json",
        &list(
            [
                service("s1", &s1, &b),
                service("s2", &s2, &b),
                service("s3", &s3, &b),
                service("s4", &s4, &b),
                service("s5", &s5, &b),
                service("s6", &s6, &b),
            ]
            .concat(),
        ),
    );
    let r1 = |host: &str| route("r1", host, "s1");
    let r2 = route("r2", "two.example.com", "s2");
    sc.write_manifest("routes.json", &list([r1("one.example.com"), r2.clone()]));
    let started = start(&mut sc, "one.example.com", &ready(&[&s1]));
    assert_serves(&sc, "two.example.com", &ready(&[&s2]));
    let route_changes = runtime_changes(&sc, "route");

    // Removed: 503 at once.
    change(&sc, "routes.json", &list([r1("one.example.com")]));
    assert_503(&sc, "two.example.com");
    assert_serves(&sc, "one.example.com", &ready(&[&s1]));
    assert_no_reload(&sc, &started, "Route removed");

    // Host changed.
    change(&sc, "routes.json", &list([r1("uno.example.com")]));
    assert_serves(&sc, "uno.example.com", &ready(&[&s1]));
    assert_503(&sc, "one.example.com");
    assert_no_reload(&sc, &started, "host changed");

    // Back unchanged: its backend is still in HAProxy.
    change(
        &sc,
        "routes.json",
        &list([r1("uno.example.com"), r2.clone()]),
    );
    assert_serves(&sc, "two.example.com", &ready(&[&s2]));
    assert_no_reload(&sc, &started, "Route added back");
    assert!(runtime_changes(&sc, "route") >= route_changes + 3.0);

    // Two new Routes of the same shape: served from the two spares.
    let r3 = route("r3", "three.example.com", "s3");
    let r4 = route("r4", "four.example.com", "s4");
    change(
        &sc,
        "routes.json",
        &list([r1("uno.example.com"), r2.clone(), r3.clone()]),
    );
    assert_serves(&sc, "three.example.com", &ready(&[&s3]));
    assert_no_reload(&sc, &started, "new Route in a spare");
    change(
        &sc,
        "routes.json",
        &list([r1("uno.example.com"), r2.clone(), r3.clone(), r4.clone()]),
    );
    assert_serves(&sc, "four.example.com", &ready(&[&s4]));
    assert_no_reload(&sc, &started, "second new Route in a spare");
    assert!(
        sc.log_text()
            .contains("new Route served from a spare backend, without a reload"),
        "the log says where it went"
    );
    let tree = sc.current_tree_text();
    assert!(
        tree.contains("be_spare:") && !tree.contains("backend be_http:rt:r3"),
        "the files say what HAProxy runs: r3 is written as its spare"
    );

    // A third: no spare left, one reload; after it every Route has its
    // own name again.
    let reasons = "routegen_reload_reasons_total{reason=\"backend_added\"}";
    let added_before = sc.metric(reasons);
    let all5 = [
        r1("uno.example.com"),
        r2.clone(),
        r3.clone(),
        r4.clone(),
        route("r5", "five.example.com", "s5"),
    ];
    change(&sc, "routes.json", &list(all5.clone()));
    wait_for(LIMIT, "the reload counted", || {
        (reloads(&sc) >= started.0 + 1.0).then_some(())
    });
    // Connections go to the new worker once the old one stopped listening.
    wait_for_old_workers_gone(&sc);
    assert_serves(&sc, "five.example.com", &ready(&[&s5]));
    assert_eq!(reloads(&sc), started.0 + 1.0);
    assert_eq!(sc.metric(reasons), added_before + 1.0);
    assert!(
        sc.log_text().contains("reload: new backend"),
        "the log says why"
    );
    assert_ne!(workers(&sc), started.1, "a new worker");
    let tree = sc.current_tree_text();
    for r in ["r1", "r2", "r3", "r4", "r5"] {
        assert!(
            tree.contains(&format!("backend be_http:rt:{r} from forwarded_append\n")),
            "{r} under its own name"
        );
    }
    // Everything else still served as before.
    assert_serves(&sc, "uno.example.com", &ready(&[&s1]));
    assert_serves(&sc, "two.example.com", &ready(&[&s2]));
    assert_serves(&sc, "three.example.com", &ready(&[&s3]));
    assert_serves(&sc, "four.example.com", &ready(&[&s4]));
    assert_503(&sc, "one.example.com");

    // The pool is there again: the next new Route is live.
    let reloaded = (reloads(&sc), workers(&sc));
    let mut all6 = all5.to_vec();
    all6.push(route("r6", "six.example.com", "s6"));
    change(&sc, "routes.json", &list(all6));
    assert_serves(&sc, "six.example.com", &ready(&[&s6]));
    assert_no_reload(&sc, &reloaded, "new Route after the reload");
}

/// (5) After live changes of endpoints, a certificate and a host, a
/// reload changes nothing a client sees: the files say what the runtime
/// held.
#[test]
fn files_equal_runtime_across_a_reload() {
    let b = Backends::start("fe", 8);
    let old = certs::self_signed_leaf(&["sec.example.com"]);
    let new = certs::self_signed_leaf(&["sec.example.com"]);
    let mut eps = vec![ep("p0", "fe0"), ep("p1", "fe1"), ep("p2", "fe2")];
    let routes = |web: &str, cert: &Issued| {
        list([
            route("web", web, "s"),
            edge_route("sec", "sec.example.com", "s", cert),
        ])
    };
    let mut sc = sidecar(&[]);
    sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
    sc.write_manifest("routes.json", &routes("web.example.com", &old));
    let started = start(&mut sc, "web.example.com", &ready(&[&eps]));

    // Live: endpoints removed, added, moved, not ready; certificate
    // rotated; host changed.
    eps.remove(0);
    eps.push(ep("p3", "fe3"));
    eps.push(ep("p4", "fe4"));
    change(&sc, "svc.json", &list(service("s", &eps, &b)));
    eps[0].backend = "fe5".into();
    eps[1].ready = false;
    change(&sc, "svc.json", &list(service("s", &eps, &b)));
    change(&sc, "routes.json", &routes("www.example.com", &new));
    assert_serves(&sc, "www.example.com", &ready(&[&eps]));
    assert_no_reload(&sc, &started, "live changes");

    // What a client sees: the same endpoints answer, the same certificate
    // is presented, the cookie pins the same endpoint.
    let (pinned, cookie) = pin(&sc, "www.example.com");
    let look = |sc: &Sidecar| {
        let web = ready(&[&eps]);
        assert_503(sc, "web.example.com");
        assert_serves(sc, "www.example.com", &web);
        for _ in 0..10 {
            let (info, resp) = e2e::https_get(sc.https, "sec.example.com", "/");
            assert_eq!(info.fingerprint(), e2e::fingerprint(&new.cert));
            assert_eq!(resp.status, 200, "{resp:?}");
            assert!(web.contains(resp.backend()), "{resp:?}");
            assert_eq!(with_cookie(sc, "www.example.com", &cookie), pinned);
        }
    };
    look(&sc);

    // A change that needs a reload (a new Route of a shape no spare has:
    // its own server timeout).
    let with_new = {
        let mut v: Value = serde_json::from_str(&routes("www.example.com", &new)).unwrap();
        let mut more = route("more", "more.example.com", "s");
        more["metadata"]["annotations"] =
            serde_json::json!({"haproxy.router.openshift.io/timeout": "7s"});
        v["items"].as_array_mut().unwrap().push(more);
        serde_json::to_string(&v).unwrap()
    };
    change(&sc, "routes.json", &with_new);
    wait_for(LIMIT, "the reload", || {
        (reloads(&sc) > started.0 && workers(&sc) != started.1).then_some(())
    });
    wait_for_old_workers_gone(&sc);
    look(&sc);
    assert_serves(&sc, "more.example.com", &ready(&[&eps]));
}

/// (6) routegen killed -9 right after a live change (and, racing, right
/// after a change was written), manifests changed while it is down, then
/// started again on the same `--out`: it adopts the HAProxy left running,
/// converges to the newest manifests, is ready, and changes are live
/// again.
#[test]
fn kill_9_after_live_changes_then_restart_converges() {
    let b = Backends::start("cr", 8);
    let host = "crash.example.com";
    let mut eps = vec![ep("p0", "cr0"), ep("p1", "cr1")];
    let mut sc = sidecar(&[]);
    sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
    sc.write_manifest("route.json", &list([route("web", host, "s")]));
    start(&mut sc, host, &ready(&[&eps]));
    let master = sc.haproxy_pid().expect("pidfile");
    let mut rng = fastrand::Rng::with_seed(15);

    for round in 0..3 {
        eps.push(ep(&format!("n{round}"), &format!("cr{}", 2 + round)));
        if round == 0 {
            // Right after the live change was logged.
            let lives = sc.log_text().matches(" endpoint (").count();
            sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
            wait_for(LIMIT, "the live change logged", || {
                (sc.log_text().matches(" endpoint (").count() > lives).then_some(())
            });
        } else {
            // Racing the pass.
            sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
            std::thread::sleep(Duration::from_millis(rng.u64(0..150)));
        }
        sc.kill9();
        assert!(process_alive(master), "HAProxy outlives routegen");
        // Changed while routegen is down.
        eps.remove(0);
        sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
        sc.start();
        sc.wait_ready(START);
        assert_serves(&sc, host, &ready(&[&eps]));
        assert_eq!(sc.haproxy_pid(), Some(master), "the same master adopted");
    }
    assert!(sc.log_text().contains("adopting the HAProxy master"));

    // Converged: an endpoint change is live again.
    let settled = (reloads(&sc), workers(&sc));
    eps.push(ep("last", "cr7"));
    change(&sc, "svc.json", &list(service("s", &eps, &b)));
    assert_serves(&sc, host, &ready(&[&eps]));
    assert_no_reload(&sc, &settled, "after the restart");
    assert!(runtime_changes(&sc, "endpoint") >= 1.0);
    assert_eq!(sc.ops("/readyz").map(|r| r.status), Some(200));
    assert_eq!(sc.sigterm_and_wait().code(), Some(0));
}

/// (7) `--runtime-api off`: an endpoint change is a reload.
#[test]
fn runtime_api_off_reloads_endpoint_changes() {
    let b = Backends::start("off", 3);
    let host = "off.example.com";
    let mut eps = vec![ep("p0", "off0"), ep("p1", "off1")];
    let mut sc = sidecar(&["--runtime-api", "off", "--min-reload-interval", "100ms"]);
    sc.write_manifest("svc.json", &list(service("s", &eps, &b)));
    sc.write_manifest("route.json", &list([route("web", host, "s")]));
    let started = start(&mut sc, host, &ready(&[&eps]));
    eps.push(ep("p2", "off2"));
    change(&sc, "svc.json", &list(service("s", &eps, &b)));
    assert_serves(&sc, host, &ready(&[&eps]));
    wait_for(LIMIT, "the reload", || {
        (reloads(&sc) >= started.0 + 1.0).then_some(())
    });
    assert_ne!(workers(&sc), started.1, "a new worker");
    assert_eq!(runtime_changes(&sc, "endpoint"), 0.0);
    assert!(
        sc.metric("routegen_changes_total{path=\"reload\",kind=\"tree\"}") >= 1.0,
        "{}",
        sc.metrics()
    );
}
