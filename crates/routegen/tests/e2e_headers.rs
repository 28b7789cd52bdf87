//! Header actions through the real HAProxy (issue 19): a Route's
//! `spec.httpHeaders.actions` and the router's global actions
//! (`--header-actions`), with OpenShift's precedence both ways, on port 80
//! and on TLS-terminated traffic. Traffic only to 127.0.0.1.
//!
//! `ssl_c_der` is rendered and checked without a client certificate only:
//! routegen configures no client-certificate verification (no
//! `spec.clientTLS` in the Route API), so HAProxy never asks the client for
//! one and the fetch is empty; the test checks that the header is then set
//! to the empty value.

use routegen_core::testkit::certs;
use routegen_testsupport::e2e;

use certs::{CertSpec, Issued};
use e2e::{http_request, https_request, route, service1, Request, Response, Router, TlsOpts};
use serde_json::{json, Value};

const ROUTEGEN: &str = env!("CARGO_BIN_EXE_routegen");

/// A literal with everything HAProxy's configuration or log-format syntax
/// could misread: quotes, `#`, `$`, a backslash, `%%` (one `%`), runs of
/// spaces.
const HOSTILE: &str = r#"it's 100%% "q" # $HOME \x  two  spaces"#;
const HOSTILE_SEEN: &str = r#"it's 100% "q" # $HOME \x  two  spaces"#;

fn set(name: &str, value: &str) -> Value {
    json!({"name": name, "action": {"type": "Set", "set": {"value": value}}})
}

fn delete(name: &str) -> Value {
    json!({"name": name, "action": {"type": "Delete"}})
}

const ASKED: &str =
    "x-who,x-global,x-debug,x-internal,x-literal,x-lower,x-last,x-b64,x-client-cert";

fn get(r: &Router, tls: bool, host: &str) -> Response {
    let extra = [
        ("x-echo-headers", ASKED),
        ("X-Internal", "secret"),
        ("X-Debug", "1"),
        ("X-Who", "client"),
        ("X-In", "MiXeD Case"),
        ("X-List", "First, SECOND"),
    ];
    let req = Request {
        host,
        target: "/",
        extra: &extra,
        keep_alive: false,
    };
    let resp = if tls {
        https_request(r.https_port, TlsOpts::sni(host), &req).map(|(_, resp)| resp)
    } else {
        http_request(r.http_port, &req)
    };
    let resp = resp.unwrap_or_else(|e| panic!("GET {host} (tls {tls}): {e}"));
    assert_eq!(resp.status, 200, "{host} (tls {tls}): {resp:?}");
    resp
}

#[test]
fn header_actions_route_and_global() {
    let default_cert: Issued = CertSpec::leaf(&["default.router.test"]).self_signed();
    let mut r = Router::new(ROUTEGEN, &[], default_cert);
    // The router's global actions: request ones run before a Route's (the
    // Route wins), response ones after (the router wins).
    r.file_arg(
        "--header-actions",
        "header-actions.json",
        &json!({
            "request": [set("X-Who", "router"), set("X-Global", "g"), delete("X-Debug")],
            "response": [set("X-Who", "router"), delete("x-echo-sni")],
        })
        .to_string(),
    );

    let ns = "hdr";
    let mut objects: Vec<Value> = Vec::new();
    objects.extend(service1(ns, "app", e2e::echo_server("app")));
    objects.extend(service1(ns, "plain", e2e::echo_server("plain")));
    objects.push(
        route(ns, "app", "app.test")
            .to("app", None)
            .tls("edge")
            .insecure("Allow")
            .with_spec(|s| {
                s.http_headers = Some(json!({"actions": {
                    "request": [
                        set("X-Who", "route"),
                        set("X-Literal", HOSTILE),
                        set("X-Lower", "%[req.hdr(X-In),lower]"),
                        set("X-Last", "%[req.hdr(X-List),lower]"),
                        set("X-B64", "pre-%[req.hdr(X-In),base64]-post"),
                        set("X-Client-Cert", "%[ssl_c_der,base64]"),
                        delete("X-Internal"),
                    ],
                    "response": [
                        set("X-Who", "route"),
                        set("X-Frame-Options", "SAMEORIGIN"),
                        set("X-Id-Upper", "%[res.hdr(x-echo-id),lower]!"),
                        delete("x-echo-tls"),
                    ],
                }}));
            })
            .to_json(),
    );
    objects.push(route(ns, "plain", "plain.test").to("plain", None).to_json());
    r.render(&objects);
    r.start();

    let b64 = openssl::base64::encode_block(b"MiXeD Case");
    for tls in [false, true] {
        let resp = get(&r, tls, "app.test");
        let h = |name: &str| {
            resp.header(name)
                .unwrap_or_else(|| panic!("tls {tls}: no {name} in {resp:?}"))
                .to_string()
        };
        assert_eq!(resp.backend(), "app");
        // Request headers as the server saw them.
        assert_eq!(
            h("x-echo-h-x-who"),
            "route",
            "the Route's request action wins"
        );
        assert_eq!(h("x-echo-h-x-global"), "g");
        assert_eq!(h("x-echo-h-x-debug"), "-", "deleted by the router");
        assert_eq!(h("x-echo-h-x-internal"), "-", "deleted by the Route");
        assert_eq!(h("x-echo-h-x-literal"), HOSTILE_SEEN);
        assert_eq!(h("x-echo-h-x-lower"), "mixed case");
        // HAProxy's req.hdr is the last comma-separated element (why
        // nginx, whose $http_x is the whole header, refuses it).
        assert_eq!(h("x-echo-h-x-last"), "second");
        assert_eq!(h("x-echo-h-x-b64"), format!("pre-{b64}-post"));
        // No client certificate is ever requested: ssl_c_der is empty.
        assert_eq!(h("x-echo-h-x-client-cert"), "");
        // Response headers as the client sees them.
        assert_eq!(
            resp.headers_all("x-who"),
            ["router"],
            "the router's response action wins"
        );
        assert_eq!(h("x-frame-options"), "SAMEORIGIN");
        assert_eq!(h("x-id-upper"), "app!");
        assert_eq!(resp.header("x-echo-tls"), None, "deleted by the Route");
        assert_eq!(resp.header("x-echo-sni"), None, "deleted by the router");
    }

    // A Route without actions gets the router's.
    let resp = get(&r, false, "plain.test");
    assert_eq!(resp.backend(), "plain");
    assert_eq!(resp.header("x-echo-h-x-who"), Some("router"));
    assert_eq!(resp.header("x-echo-h-x-internal"), Some("secret"));
    assert_eq!(resp.header("x-echo-h-x-debug"), Some("-"));
    assert_eq!(resp.headers_all("x-who"), ["router"]);
    assert_eq!(resp.header("x-echo-tls"), Some("0"));
    assert_eq!(resp.header("x-frame-options"), None);
}

/// Every `set-forwarded-headers` policy through the real HAProxy, over
/// plain HTTP and edge TLS, with a client that sends its own forwarded
/// headers: `append` adds HAProxy's after the client's, `replace` keeps
/// HAProxy's only, `if-none` keeps the client's where it sent one and adds
/// the rest, `never` passes the client's untouched and adds none. The rules
/// live once per policy in haproxy.cfg's defaults sections (issue 20);
/// these are the headers the per-backend rules gave.
#[test]
fn every_forwarded_headers_policy_sets_what_openshift_sets() {
    let default_cert: Issued = CertSpec::leaf(&["default.router.test"]).self_signed();
    let mut r = Router::new(ROUTEGEN, &[], default_cert);
    let ns = "fwd";
    let mut objects: Vec<Value> = Vec::new();
    for policy in ["append", "replace", "if-none", "never"] {
        objects.extend(service1(ns, policy, e2e::echo_server(policy)));
        objects.push(
            route(ns, policy, &format!("{policy}.test"))
                .to(policy, None)
                .tls("edge")
                .insecure("Allow")
                .annotation("haproxy.router.openshift.io/set-forwarded-headers", policy)
                .to_json(),
        );
    }
    r.render(&objects);
    let cfg = std::fs::read_to_string(r.out().join("haproxy.cfg")).unwrap();
    // append 1, replace 1, if-none 2 (the rule and its condition).
    assert_eq!(
        cfg.matches("X-Forwarded-Host").count(),
        4,
        "once per policy"
    );
    r.start();

    let asked = "x-forwarded-for,x-forwarded-host,x-forwarded-port,x-forwarded-proto,forwarded";
    let extra = [
        ("x-echo-headers", asked),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Proto", "gopher"),
    ];
    for tls in [false, true] {
        let (port, proto) = if tls {
            (r.https_port, "https")
        } else {
            (r.http_port, "http")
        };
        let see = |policy: &str| {
            let host = format!("{policy}.test");
            let req = Request {
                host: &host,
                target: "/",
                extra: &extra,
                keep_alive: false,
            };
            let resp = if tls {
                https_request(port, TlsOpts::sni(&host), &req).map(|(_, resp)| resp)
            } else {
                http_request(port, &req)
            };
            let resp = resp.unwrap_or_else(|e| panic!("{host} (tls {tls}): {e}"));
            assert_eq!(resp.status, 200, "{host}: {resp:?}");
            assert_eq!(resp.backend(), policy);
            let h = |name: &str| {
                resp.header(&format!("x-echo-h-{name}"))
                    .unwrap()
                    .to_string()
            };
            [
                h("x-forwarded-for"),
                h("x-forwarded-host"),
                h("x-forwarded-port"),
                h("x-forwarded-proto"),
                h("forwarded"),
            ]
        };
        let host = |p: &str| format!("{p}.test");
        let fwd = |p: &str, proto: &str| format!("for=127.0.0.1;host={p}.test;proto={proto}");
        let port = port.to_string();
        assert_eq!(
            see("append"),
            [
                "203.0.113.7 | 127.0.0.1".to_string(),
                host("append"),
                port.clone(),
                format!("gopher | {proto}"),
                // proto= is what req.hdr(X-Forwarded-Proto) gives: the last.
                fwd("append", proto),
            ],
            "tls {tls}"
        );
        assert_eq!(
            see("replace"),
            [
                "127.0.0.1".to_string(),
                host("replace"),
                port.clone(),
                proto.to_string(),
                fwd("replace", proto),
            ],
            "tls {tls}"
        );
        assert_eq!(
            see("if-none"),
            [
                "203.0.113.7".to_string(),
                host("if-none"),
                port.clone(),
                "gopher".to_string(),
                fwd("if-none", "gopher"),
            ],
            "tls {tls}"
        );
        assert_eq!(
            see("never"),
            [
                "203.0.113.7".to_string(),
                "-".to_string(),
                "-".to_string(),
                "gopher".to_string(),
                "-".to_string(),
            ],
            "tls {tls}"
        );
    }
}
