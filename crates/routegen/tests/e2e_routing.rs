//! Routing and TLS through the real HAProxy (issue 5, "Proof"; SPEC §4–§6).
//!
//! Each test renders one manifest set with `routegen render`, starts one
//! HAProxy in master-worker mode on it (ports and sockets on 127.0.0.1 and
//! under /tmp only), and checks with real connections to small backend
//! servers that answer with their own identity what a user gets. Binary:
//! `ROUTEGEN_HAPROXY_BIN`, else `/usr/sbin/haproxy`, else `haproxy`.

use routegen_core::testkit::certs;
use routegen_testsupport::config;
use routegen_testsupport::e2e;

use std::collections::BTreeMap;
use std::io::{Read, Write};

use certs::{CertSpec, Issued};
use e2e::{
    echo_server, fingerprint, h2_get, http_request, https_request, route, service, service1,
    tls_connect, tls_echo_server, tls_handshake, tls_info, Request, Router, TlsOpts,
};
use serde_json::Value;

/// The binary under test.
const ROUTEGEN: &str = env!("CARGO_BIN_EXE_routegen");

fn default_cert() -> Issued {
    CertSpec::leaf(&["default.router.test"]).self_signed()
}

/// Count which backend answered `n` requests (fresh connection each, no
/// cookies sent).
fn spread(r: &Router, host: &str, n: usize) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    for i in 0..n {
        let resp = r.http(host, &format!("/n{i}"));
        assert_eq!(resp.status, 200, "{host} request {i}: {resp:?}");
        *seen.entry(resp.backend().to_string()).or_default() += 1;
    }
    seen
}

/// Backends "a" and "b" took all `n` requests, each within ±10% of its
/// share of a 3:1 split.
fn assert_three_to_one(seen: &BTreeMap<String, usize>, n: usize) {
    let a = seen.get("a").copied().unwrap_or(0);
    let b = seen.get("b").copied().unwrap_or(0);
    assert_eq!(a + b, n, "{seen:?}");
    let share_a = a as f64 / n as f64;
    let share_b = b as f64 / n as f64;
    assert!(
        (0.75 * 0.9..=0.75 * 1.1).contains(&share_a)
            && (0.25 * 0.9..=0.25 * 1.1).contains(&share_b),
        "3:1 split measured as {a}:{b} over {n} requests"
    );
}

#[test]
fn host_and_path_routing() {
    let ns = "paths";
    let mut objects: Vec<Value> = Vec::new();
    let mut add_service = |name: &str| {
        let port = echo_server(name);
        objects.extend(service1(ns, name, port));
    };
    for name in [
        "root", "foo", "foobar", "dir", "other", "wild", "exact", "exact-x",
    ] {
        add_service(name);
    }
    objects.extend([
        route(ns, "root", "app.test").to("root", None).to_json(),
        route(ns, "foo", "app.test")
            .path("/foo")
            .to("foo", None)
            .to_json(),
        route(ns, "foobar", "app.test")
            .path("/foo/bar")
            .to("foobar", None)
            .to_json(),
        route(ns, "dir", "app.test")
            .path("/dir/")
            .to("dir", None)
            .to_json(),
        // A host with only a path Route: no fallback.
        route(ns, "other", "other.test")
            .path("/only")
            .to("other", None)
            .to_json(),
        // *.wild.test (the wildcard Route's host is any name in the domain).
        route(ns, "wild", "www.wild.test")
            .wildcard()
            .to("wild", None)
            .to_json(),
        route(ns, "exact", "exact.wild.test")
            .to("exact", None)
            .to_json(),
        // An exact host with only a path Route: other paths fall to the
        // wildcard (as OpenShift's ordered regex map does).
        route(ns, "exact-x", "pathonly.wild.test")
            .path("/x")
            .to("exact-x", None)
            .to_json(),
        // A Prefix and an Under of one path on one host, and a fallback.
        route(ns, "both-prefix", "both.test")
            .path("/p")
            .to("foo", None)
            .to_json(),
        route(ns, "both-under", "both.test")
            .path("/p/")
            .to("dir", None)
            .to_json(),
        route(ns, "both-root", "both.test")
            .to("root", None)
            .to_json(),
    ]);
    let mut r = Router::new(ROUTEGEN, &["--allow-wildcard-routes"], default_cert());
    r.render(&objects);
    r.start();

    // (Host header, request target, expected backend or None for 503)
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("app.test", "/", Some("root")),
        ("app.test", "/index.html", Some("root")),
        // Segment-boundary prefixes; the longest one wins.
        ("app.test", "/foo", Some("foo")),
        ("app.test", "/foo/", Some("foo")),
        ("app.test", "/foo/x", Some("foo")),
        ("app.test", "/foo?q=1", Some("foo")),
        ("app.test", "/foobar", Some("root")),
        ("app.test", "/foo.html", Some("root")),
        ("app.test", "/foo/bar", Some("foobar")),
        ("app.test", "/foo/bar/", Some("foobar")),
        ("app.test", "/foo/bar/baz?x=y", Some("foobar")),
        ("app.test", "/foo/barx", Some("foo")),
        ("app.test", "/fo", Some("root")),
        // Empty segments are segments.
        ("app.test", "//foo", Some("root")),
        ("app.test", "/foo//x", Some("foo")),
        // An Under path wins below it over the Prefix of the same path.
        ("both.test", "/p", Some("foo")),
        ("both.test", "/p?x=/", Some("foo")),
        ("both.test", "/p/", Some("dir")),
        ("both.test", "/p/x", Some("dir")),
        ("both.test", "/px", Some("root")),
        ("both.test", "/", Some("root")),
        // Paths are case-sensitive.
        ("app.test", "/FOO", Some("root")),
        ("app.test", "/Foo/bar", Some("root")),
        // A path ending in "/" matches what is under it, not itself.
        ("app.test", "/dir/", Some("dir")),
        ("app.test", "/dir/x", Some("dir")),
        ("app.test", "/dir/x/y", Some("dir")),
        ("app.test", "/dir", Some("root")),
        ("app.test", "/dirx", Some("root")),
        // Host: case-insensitive, trailing dot and :port ignored.
        ("APP.Test", "/", Some("root")),
        ("app.test.", "/", Some("root")),
        ("app.test:8080", "/", Some("root")),
        ("App.TEST.:80", "/foo/x", Some("foo")),
        // A host with only a path Route has no fallback.
        ("other.test", "/only", Some("other")),
        ("other.test", "/only/more", Some("other")),
        ("other.test", "/", None),
        ("other.test", "/onlyx", None),
        // Unknown hosts.
        ("unknown.test", "/", None),
        ("app.test.example", "/", None),
        ("test", "/", None),
        // Exact host beats the wildcard; the wildcard is one label deep.
        ("exact.wild.test", "/", Some("exact")),
        ("EXACT.wild.test:443", "/x", Some("exact")),
        ("www.wild.test", "/", Some("wild")),
        ("anything.wild.test", "/a/b", Some("wild")),
        ("Other.Wild.Test.", "/", Some("wild")),
        ("pathonly.wild.test", "/x/y", Some("exact-x")),
        ("pathonly.wild.test", "/", Some("wild")),
        ("pathonly.wild.test", "/xy", Some("wild")),
        ("a.b.wild.test", "/", None),
        ("wild.test", "/", None),
    ];
    let mut failures = Vec::new();
    for (host, target, want) in cases {
        let resp = r.http(host, target);
        let got = match resp.status {
            200 => Some(resp.backend()),
            503 => None,
            _ => Some("unexpected status"),
        };
        if got != *want {
            failures.push(format!(
                "Host {host:?} {target}: want {want:?}, got {} {:?}",
                resp.status, resp.body
            ));
        } else if let Some(id) = want {
            // The backend sees the request target unchanged.
            assert_eq!(resp.body, format!("{id} {target}"));
            assert_eq!(resp.header("x-echo-xfp"), Some("http"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Keep-alive: every request on one connection is routed on its own Host
    // and path.
    let mut conn = std::io::BufReader::new(e2e::tcp_connect(r.http_port).unwrap());
    for (host, target, want) in [
        ("app.test", "/foo/x", "foo"),
        ("exact.wild.test", "/", "exact"),
        ("app.test", "/", "root"),
        ("other.test", "/only", "other"),
        ("x.wild.test", "/", "wild"),
        ("app.test", "/dir/", "dir"),
    ] {
        let req = Request {
            host,
            target,
            extra: &[],
            keep_alive: true,
        };
        let resp = e2e::send(&mut conn, &req).unwrap();
        assert_eq!(resp.body, format!("{want} {target}"), "{host}{target}");
    }
    let req = Request {
        host: "unknown.test",
        target: "/",
        extra: &[],
        keep_alive: true,
    };
    assert_eq!(e2e::send(&mut conn, &req).unwrap().status, 503);

    // The 503 comes from HAProxy, not from a backend.
    let resp = r.http("unknown.test", "/");
    assert_eq!((resp.status, resp.backend()), (503, "-"), "{resp:?}");

    // A request without a path (`OPTIONS *`) is looked up as "/": the
    // host's fallback.
    let mut conn = e2e::tcp_connect(r.http_port).unwrap();
    conn.write_all(b"OPTIONS * HTTP/1.1\r\nhost: app.test\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    assert!(
        raw.starts_with("HTTP/1.1 200") && raw.contains("root *"),
        "{raw}"
    );
}

#[test]
fn weights_alternate_backends_and_sticky_cookies() {
    let ns = "weights";
    let mut objects: Vec<Value> = Vec::new();
    for name in [
        "a", "b", "alt1", "alt2", "alt3", "alt4", "z1", "z2", "pa", "pb",
    ] {
        objects.extend(service1(ns, name, echo_server(name)));
    }
    let (s0, s1) = (echo_server("sticky-0"), echo_server("sticky-1"));
    objects.extend(service(ns, "sticky", &[("sticky-0", s0), ("sticky-1", s1)]));
    let routes = |pb_weight: i64| -> Vec<Value> {
        vec![
            // 3:1 between two services with one endpoint each.
            route(ns, "split", "split.test")
                .to("a", Some(75))
                .alt("b", Some(25))
                .to_json(),
            // Three alternate backends, default weights.
            route(ns, "alts", "alts.test")
                .to("alt1", None)
                .alt("alt2", None)
                .alt("alt3", None)
                .alt("alt4", None)
                .to_json(),
            route(ns, "zero", "zero.test")
                .to("z1", Some(0))
                .alt("z2", Some(0))
                .to_json(),
            route(ns, "pin", "pin.test")
                .to("pa", Some(50))
                .alt("pb", Some(pb_weight))
                .to_json(),
            // One service, two endpoints.
            route(ns, "sticky", "sticky.test")
                .to("sticky", None)
                .to_json(),
        ]
    };
    let mut r = Router::new(ROUTEGEN, &[], default_cert());
    let mut all = objects.clone();
    all.extend(routes(50));
    r.render(&all);
    r.start();

    // 3:1 over 400 requests, within ±10% of each share.
    let n = 400;
    let seen = spread(&r, "split.test", n);
    eprintln!("split.test 75:25 over {n} requests: {seen:?}");
    assert_three_to_one(&seen, n);

    // The same split holds for requests sharing one keep-alive connection.
    let mut conn = std::io::BufReader::new(e2e::tcp_connect(r.http_port).unwrap());
    let mut ka = BTreeMap::<String, usize>::new();
    for i in 0..n {
        let target = format!("/ka{i}");
        let req = Request {
            host: "split.test",
            target: &target,
            extra: &[],
            keep_alive: true,
        };
        let resp = e2e::send(&mut conn, &req).unwrap();
        assert_eq!(resp.status, 200, "{resp:?}");
        *ka.entry(resp.backend().to_string()).or_default() += 1;
    }
    eprintln!("split.test 75:25 over {n} keep-alive requests: {ka:?}");
    assert_three_to_one(&ka, n);

    // Every alternate backend gets traffic, evenly (roundrobin, equal weights).
    let seen = spread(&r, "alts.test", 40);
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["alt1", "alt2", "alt3", "alt4"],
        "{seen:?}"
    );
    assert!(seen.values().all(|&c| (5..=15).contains(&c)), "{seen:?}");

    // All weights zero: no server takes traffic.
    for _ in 0..3 {
        let resp = r.http("zero.test", "/");
        assert_eq!((resp.status, resp.backend()), (503, "-"), "{resp:?}");
    }

    // Sticky cookie: the first response sets it (next to the application's
    // own cookie, which passes through); with it every request reaches the
    // same server; without it both servers are seen.
    let first = r.http("sticky.test", "/");
    assert_eq!(first.status, 200, "{first:?}");
    let pinned_to = first.backend().to_string();
    let cookies = first.set_cookies();
    assert!(
        cookies.contains(&(format!("app-{pinned_to}"), "1".into())),
        "application cookie passes through: {cookies:?}"
    );
    let (name, value) = router_cookie(&first);
    let line = first.set_cookie_line(&name).unwrap().to_ascii_lowercase();
    assert!(line.contains("httponly"), "{line}");
    let cookie = format!("{name}={value}");
    for i in 0..20 {
        let resp = with_cookie(&r, "sticky.test", &cookie);
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.backend(), pinned_to, "request {i} with {cookie}");
        assert!(
            resp.set_cookie_line(&name).is_none(),
            "a valid cookie is not set again: {resp:?}"
        );
    }
    let mut both = std::collections::BTreeSet::new();
    for _ in 0..60 {
        both.insert(r.http("sticky.test", "/").backend().to_string());
        if both.len() == 2 {
            break;
        }
    }
    assert_eq!(
        both.len(),
        2,
        "without the cookie both servers answer: {both:?}"
    );

    // A cookie pinned to pb keeps working after pb's weight drops to 0.
    let mut pb_cookie = None;
    for _ in 0..20 {
        let resp = r.http("pin.test", "/");
        assert_eq!(resp.status, 200, "{resp:?}");
        if resp.backend() == "pb" {
            let (name, value) = router_cookie(&resp);
            pb_cookie = Some(format!("{name}={value}"));
            break;
        }
    }
    let pb_cookie = pb_cookie.expect("pb answers within 20 roundrobin requests");
    let mut all = objects.clone();
    all.extend(routes(0));
    r.render(&all);
    let cfg = config::whole_config(&r.out());
    assert!(
        cfg.lines()
            .any(|l| l.contains("server pod:pb-0:pb:") && l.contains(" weight 0")),
        "pb kept as a weight-0 server:\n{cfg}"
    );
    r.reload();
    for i in 0..20 {
        let resp = with_cookie(&r, "pin.test", &pb_cookie);
        assert_eq!(
            (resp.status, resp.backend()),
            (200, "pb"),
            "request {i} with {pb_cookie} after pb's weight became 0"
        );
    }
    let seen = spread(&r, "pin.test", 20);
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [("pa".to_string(), 20)],
        "no new client reaches a weight-0 service"
    );
}

/// The router's sticky cookie in a response: the Set-Cookie that is not
/// the application's own `app-*` one.
fn router_cookie(resp: &e2e::Response) -> (String, String) {
    let cookies = resp.set_cookies();
    cookies
        .into_iter()
        .find(|(k, _)| !k.starts_with("app-"))
        .unwrap_or_else(|| panic!("no router cookie in {resp:?}"))
}

fn with_cookie(r: &Router, host: &str, cookie: &str) -> e2e::Response {
    let extra = [("cookie", cookie)];
    http_request(
        r.http_port,
        &Request {
            host,
            target: "/",
            extra: &extra,
            keep_alive: false,
        },
    )
    .unwrap()
}

#[test]
fn edge_reencrypt_passthrough_and_insecure_policies() {
    let ns = "tls";
    let route_ca = CertSpec::ca("e2e route CA").self_signed();
    let backend_ca = CertSpec::ca("e2e backend CA").self_signed();
    let other_ca = CertSpec::ca("e2e unrelated CA").self_signed();
    let edge_cert = CertSpec::leaf(&["edge.test"]).signed_by(&route_ca);
    let reenc_backend = CertSpec::leaf(&["reenc.tls.svc"]).signed_by(&backend_ca);
    let service_ca = CertSpec::ca("e2e service CA").self_signed();
    let svc_backend = CertSpec::leaf(&["svcca.tls.svc"]).signed_by(&service_ca);
    let svc_backend_misnamed = CertSpec::leaf(&["other.tls.svc"]).signed_by(&service_ca);
    let pass_backend = CertSpec::leaf(&["pass.test"])
        .cn("pass backend")
        .self_signed();

    let mut objects: Vec<Value> = Vec::new();
    for name in ["edge", "redirect", "allow", "none"] {
        objects.extend(service1(ns, name, echo_server(name)));
    }
    objects.extend(service1(
        ns,
        "reenc",
        tls_echo_server("reenc", &reenc_backend, &[]),
    ));
    objects.extend(service1(
        ns,
        "reenc-bad",
        tls_echo_server("reenc-bad", &reenc_backend, &[]),
    ));
    objects.extend(service1(
        ns,
        "svcca",
        tls_echo_server("svcca", &svc_backend, &[]),
    ));
    objects.extend(service1(
        ns,
        "svcca-misnamed",
        tls_echo_server("svcca-misnamed", &svc_backend_misnamed, &[]),
    ));
    objects.extend(service1(
        ns,
        "pass",
        tls_echo_server("pass", &pass_backend, &[]),
    ));
    objects.extend([
        route(ns, "edge", "edge.test")
            .to("edge", None)
            .tls("edge")
            .cert(&edge_cert, Some(&route_ca))
            .to_json(),
        route(ns, "redirect", "redirect.test")
            .to("redirect", None)
            .tls("edge")
            .insecure("Redirect")
            .to_json(),
        route(ns, "allow", "allow.test")
            .to("allow", None)
            .tls("edge")
            .insecure("Allow")
            .to_json(),
        route(ns, "none", "none.test")
            .to("none", None)
            .tls("edge")
            .insecure("None")
            .to_json(),
        route(ns, "reenc", "reenc.test")
            .to("reenc", None)
            .tls("reencrypt")
            .dest_ca(&backend_ca)
            .to_json(),
        route(ns, "reenc-bad", "reenc-bad.test")
            .to("reenc-bad", None)
            .tls("reencrypt")
            .dest_ca(&other_ca)
            .to_json(),
        // No destination CA: the service CA, with the service's name.
        route(ns, "svcca", "svcca.test")
            .to("svcca", None)
            .tls("reencrypt")
            .to_json(),
        route(ns, "svcca-misnamed", "svcca-misnamed.test")
            .to("svcca-misnamed", None)
            .tls("reencrypt")
            .to_json(),
        route(ns, "pass", "pass.test")
            .to("pass", None)
            .tls("passthrough")
            .insecure("Redirect")
            .to_json(),
    ]);
    let mut r = Router::new(ROUTEGEN, &[], default_cert());
    r.file_arg(
        "--service-ca-file",
        "service-ca.pem",
        &service_ca.cert_pem(),
    );
    r.render(&objects);
    r.start();
    let default_fp = fingerprint(&r.default_cert.cert);

    // Edge: terminated by HAProxy with the Route's certificate; the backend
    // gets plain HTTP, marked as https.
    let (tls, resp) = r.https("edge.test", "/e?x=1");
    assert_eq!(tls.fingerprint(), fingerprint(&edge_cert.cert));
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.body, "edge /e?x=1");
    assert_eq!(resp.header("x-echo-tls"), Some("0"));
    assert_eq!(resp.header("x-echo-xfp"), Some("https"));
    // Its sticky cookie is Secure and SameSite=None (policy is not Allow).
    let line = resp
        .set_cookie_line(&router_cookie(&resp).0)
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        line.contains("secure") && line.contains("samesite=none") && line.contains("httponly"),
        "{line}"
    );
    // Edge without its own certificate: the default one.
    let (tls, resp) = r.https("redirect.test", "/");
    assert_eq!(tls.fingerprint(), default_fp);
    assert_eq!((resp.status, resp.backend()), (200, "redirect"));
    // An unknown SNI over TLS: default certificate, 503.
    let (tls, resp) = r.https("unknown.test", "/");
    assert_eq!(tls.fingerprint(), default_fp);
    assert_eq!((resp.status, resp.backend()), (503, "-"));

    // Reencrypt: the backend's certificate is verified against the
    // destination CA; the backend gets TLS.
    let (tls, resp) = r.https("reenc.test", "/r");
    assert_eq!(tls.fingerprint(), default_fp);
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.body, "reenc /r");
    assert_eq!(resp.header("x-echo-tls"), Some("1"));
    assert_eq!(resp.header("x-echo-xfp"), Some("https"));

    // Reencrypt without a destination CA: verified against the service CA
    // and the service's DNS name (<svc>.<ns>.svc).
    let (_, resp) = r.https("svcca.test", "/s");
    assert_eq!(
        (resp.status, resp.body.as_str()),
        (200, "svcca /s"),
        "{resp:?}"
    );

    // A destination CA that did not sign the backend's certificate, and a
    // backend certificate for another name, fail the request (HAProxy
    // retries the connection first: both run at once to save time).
    let port = r.https_port;
    let failed = std::thread::scope(|s| {
        let bad_ca = s.spawn(|| e2e::https_get(port, "reenc-bad.test", "/r").1);
        let bad_name = s.spawn(|| e2e::https_get(port, "svcca-misnamed.test", "/s").1);
        [bad_ca.join().unwrap(), bad_name.join().unwrap()]
    });
    for resp in failed {
        assert_eq!((resp.status, resp.backend()), (503, "-"), "{resp:?}");
    }

    // Passthrough: the client talks TLS with the backend itself, which sees
    // the client's SNI; any case of the SNI.
    for sni in ["pass.test", "PASS.Test"] {
        let (tls, resp) = https_request(
            r.https_port,
            TlsOpts::sni(sni),
            &Request::get("pass.test", "/p"),
        )
        .unwrap();
        assert_eq!(
            tls.fingerprint(),
            fingerprint(&pass_backend.cert),
            "{sni}: the backend's own certificate"
        );
        assert_eq!(e2e::common_name(&tls.peer), "pass backend");
        assert_eq!(resp.body, "pass /p", "{resp:?}");
        assert_eq!(resp.header("x-echo-sni"), Some(sni), "SNI untouched");
    }

    // Insecure policies on port 80.
    // Redirect: 302 to https, without the port, path and query kept.
    for (host, target, location) in [
        (
            "redirect.test",
            "/a/b?x=1&y=two",
            "https://redirect.test/a/b?x=1&y=two",
        ),
        ("redirect.test:8080", "/", "https://redirect.test/"),
        ("Redirect.Test.:80", "/p?q", "https://redirect.test/p?q"),
        (
            "redirect.test",
            "/a%20b/?x=%2F&y=",
            "https://redirect.test/a%20b/?x=%2F&y=",
        ),
        // Passthrough with Redirect too.
        ("pass.test:80", "/ui?x=1", "https://pass.test/ui?x=1"),
    ] {
        let resp = r.http(host, target);
        assert_eq!(resp.status, 302, "{host}{target}: {resp:?}");
        assert_eq!(resp.header("location"), Some(location), "{host}{target}");
        assert_eq!(resp.backend(), "-");
    }
    // None (explicit, and the default when unset): 503 on port 80.
    for host in ["none.test", "edge.test", "reenc.test"] {
        let resp = r.http(host, "/");
        assert_eq!(
            (resp.status, resp.backend()),
            (503, "-"),
            "{host}: {resp:?}"
        );
    }
    // ... while served over TLS.
    let (_, resp) = r.https("none.test", "/n");
    assert_eq!((resp.status, resp.body.as_str()), (200, "none /n"));
    // Allow: served on port 80 (plain) and on 443.
    let resp = r.http("allow.test", "/plain");
    assert_eq!((resp.status, resp.body.as_str()), (200, "allow /plain"));
    assert_eq!(resp.header("x-echo-xfp"), Some("http"));
    // Its cookie must work over plain HTTP: not Secure.
    let line = resp
        .set_cookie_line(&router_cookie(&resp).0)
        .unwrap()
        .to_ascii_lowercase();
    assert!(!line.contains("secure"), "{line}");
    let (_, resp) = r.https("allow.test", "/tls");
    assert_eq!((resp.status, resp.body.as_str()), (200, "allow /tls"));
    assert_eq!(resp.header("x-echo-xfp"), Some("https"));
}

#[test]
fn alpn_and_default_certificate() {
    let ns = "alpn";
    let ca = CertSpec::ca("e2e ALPN CA").self_signed();
    let unique = CertSpec::leaf(&["h2.test"]).signed_by(&ca);
    let shared = CertSpec::leaf(&["shared-a.test", "shared-b.test"]).signed_by(&ca);
    let default = default_cert();

    let mut objects: Vec<Value> = Vec::new();
    for name in ["h2", "shared-a", "shared-b", "plain", "as-default"] {
        objects.extend(service1(ns, name, echo_server(name)));
    }
    objects.extend([
        route(ns, "h2", "h2.test")
            .to("h2", None)
            .tls("edge")
            .cert(&unique, Some(&ca))
            .to_json(),
        route(ns, "shared-a", "shared-a.test")
            .to("shared-a", None)
            .tls("edge")
            .cert(&shared, Some(&ca))
            .to_json(),
        route(ns, "shared-b", "shared-b.test")
            .to("shared-b", None)
            .tls("edge")
            .cert(&shared, Some(&ca))
            .to_json(),
        route(ns, "plain", "plain.test")
            .to("plain", None)
            .tls("edge")
            .to_json(),
        // A Route whose own certificate is the default one.
        route(ns, "as-default", "default.router.test")
            .to("as-default", None)
            .tls("edge")
            .cert(&default, None)
            .to_json(),
    ]);
    let mut r = Router::new(ROUTEGEN, &[], default.clone());
    r.render(&objects);
    r.start();
    let offer: &[&str] = &["h2", "http/1.1"];
    let port = r.https_port;

    // The SNI is matched case-insensitively, h2 included.
    let info = tls_handshake(port, TlsOpts::sni("H2.Test").alpn(offer));
    assert_eq!(info.fingerprint(), fingerprint(&unique.cert));
    assert_eq!(info.alpn.as_deref(), Some("h2"));
    // A unique certificate: h2, and the request is routed over h2.
    let mut tls = tls_connect(port, TlsOpts::sni("h2.test").alpn(offer)).unwrap();
    let info = tls_info(&tls);
    assert_eq!(info.alpn.as_deref(), Some("h2"));
    assert_eq!(info.fingerprint(), fingerprint(&unique.cert));
    let (status, body) = h2_get(&mut tls, "h2.test", "/over/h2?x=1").unwrap();
    assert_eq!((status, body.as_str()), (200, "h2 /over/h2?x=1"));
    // Offered http/1.1 only, the same Route speaks HTTP/1.1.
    let (info, resp) = https_request(
        port,
        TlsOpts::sni("h2.test").alpn(&["http/1.1"]),
        &Request::get("h2.test", "/one"),
    )
    .unwrap();
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(resp.body, "h2 /one");

    // Two Routes sharing one certificate, a Route on the default
    // certificate, a Route whose certificate is the default one, an unknown
    // SNI: http/1.1 only.
    for (sni, cert) in [
        ("shared-a.test", &shared),
        ("shared-b.test", &shared),
        ("plain.test", &default),
        ("default.router.test", &default),
        ("unknown.test", &default),
    ] {
        let info = tls_handshake(port, TlsOpts::sni(sni).alpn(offer));
        assert_eq!(info.alpn.as_deref(), Some("http/1.1"), "{sni}");
        assert_eq!(info.fingerprint(), fingerprint(&cert.cert), "{sni}");
    }
    let (info, resp) = https_request(
        port,
        TlsOpts::sni("shared-b.test").alpn(offer),
        &Request::get("shared-b.test", "/s"),
    )
    .unwrap();
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(resp.body, "shared-b /s");

    // No SNI: the default certificate (and http/1.1); the Host header still
    // routes.
    let info = tls_handshake(
        port,
        TlsOpts {
            sni: None,
            alpn: offer,
        },
    );
    assert_eq!(info.fingerprint(), fingerprint(&default.cert));
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    let (info, resp) = https_request(
        port,
        TlsOpts {
            sni: None,
            alpn: &[],
        },
        &Request::get("plain.test", "/nosni"),
    )
    .unwrap();
    assert_eq!(info.fingerprint(), fingerprint(&default.cert));
    assert_eq!(resp.body, "plain /nosni");
}
