//! Renderer tests on hand-built plans (independent of `plan()`).

use std::net::IpAddr;
use std::process::Command;

use super::*;
use routegen_core::model::ObjectKey;
use routegen_core::plan::{
    AllowlistFile, CertEntry, PathRewrite, PemFile, RateLimit, ServerTls, SniEntry, StickyCookie,
};
use routegen_core::testkit;
use routegen_core::values::{Balance, SameSite};
use std::sync::Arc;

const KEY_AND_CERT: &str = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n";

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::new(ns, name)
}

fn entry(host: &str, path: PathMatch, action: LookupAction, route: ObjectKey) -> LookupEntry {
    let (suffix, depth) = match &path {
        PathMatch::Fallback => (String::new(), 0),
        PathMatch::Prefix(p) => (p.clone(), p.matches('/').count()),
        PathMatch::Under(p) => (p.clone(), p.matches('/').count() - 1),
    };
    LookupEntry {
        key: format!("{host}{suffix}").into(),
        host_key: host.into(),
        path,
        depth,
        action,
        route,
    }
}

fn server(name: &str, ip: &str, port: u16, weight: u16) -> Server {
    let mut one = [testkit::plan::server(
        name,
        ip.parse::<IpAddr>().unwrap(),
        port,
        weight,
    )];
    // The id a plan gives this name.
    routegen_core::plan::endpoints::assign_ids(&mut one);
    let [server] = one;
    server
}

pub(crate) fn http_backend(
    name: &str,
    route: ObjectKey,
    host: &str,
    servers: Vec<Server>,
) -> Backend {
    testkit::plan::backend(name, route, host, servers)
}

/// A plan using every feature the renderer knows.
pub(crate) fn sample_plan() -> Plan {
    let blog = key("blog", "blog");
    let store = key("shop", "storefront");
    let api = key("shop", "api");
    let stat = key("shop", "static");
    let pay = key("pay", "payments");
    let vault = key("vault", "vault");
    let wild = key("w", "wild");

    let mut b_blog = http_backend(
        "be_http:blog:blog",
        blog.clone(),
        "blog.example.com",
        vec![
            server(
                "pod:blog-0:blog:http:10.128.2.11:8080",
                "10.128.2.11",
                8080,
                1,
            ),
            server("pod:blog-1:blog:http:fd00::12:8080", "fd00::12", 8080, 1),
        ],
    );
    b_blog.health_check = Some("5000ms".parse().unwrap());
    b_blog.cookie = Some(StickyCookie {
        name: "abcdef0123".parse().unwrap(),
        secure: false,
        same_site: None,
    });
    b_blog.balance = Balance::RoundRobin;

    let mut b_store = http_backend(
        "be_edge_http:shop:storefront",
        store.clone(),
        "www.example.com",
        vec![],
    );
    b_store.termination = Some(Termination::Edge);
    b_store.cookie = Some(StickyCookie {
        name: "shopcookie".parse().unwrap(),
        secure: true,
        same_site: Some(SameSite::None),
    });
    b_store.hsts = Some("max-age=31536000;includeSubDomains".parse().unwrap());

    let mut b_api = http_backend(
        "be_edge_http:shop:api",
        api.clone(),
        "www.example.com",
        vec![server(
            "pod:api-0:api:http:10.0.0.5:8080",
            "10.0.0.5",
            8080,
            1,
        )],
    );
    b_api.termination = Some(Termination::Edge);
    b_api.path = Some("/api".into());
    b_api.timeout_server = Some("30s".parse().unwrap());
    b_api.balance = Balance::LeastConn;
    b_api.rewrite = Some(Box::new(PathRewrite {
        prefix: "/api".into(),
        target: "/v2/a%20b".parse().unwrap(),
    }));
    b_api.forwarded = Some(ForwardedPolicy::Replace);
    b_api.allowlist_file = Some("allowlists/shop:api.txt".into());
    b_api.rate_limit = Some(Box::new(RateLimit {
        concurrent_tcp: Some("10".parse().unwrap()),
        rate_tcp: Some("20".parse().unwrap()),
        rate_http: Some("30".parse().unwrap()),
    }));

    let mut b_static = http_backend(
        "be_edge_http:shop:static",
        stat.clone(),
        "www.example.com",
        vec![],
    );
    b_static.termination = Some(Termination::Edge);
    b_static.path = Some("/static/".into());
    b_static.rewrite = Some(Box::new(PathRewrite {
        prefix: "/static/".into(),
        target: "/".parse().unwrap(),
    }));
    b_static.forwarded = Some(ForwardedPolicy::IfNone);

    let mut b_pay = http_backend(
        "be_secure:pay:payments",
        pay.clone(),
        "pay.example.com",
        vec![Server {
            h2c: false,
            ..server(
                "pod:pay-0:payments:https:10.0.0.9:8443",
                "10.0.0.9",
                8443,
                1,
            )
        }],
    );
    b_pay.termination = Some(Termination::Reencrypt);
    b_pay.server_tls = Some(Box::new(ServerTls {
        verify: ServerVerify::CaFile {
            file: "cas/pay:payments.pem".into(),
            verify_host: Some("payments.pay.svc".into()),
        },
        alpn_h2: true,
    }));
    b_pay.forwarded = Some(ForwardedPolicy::Never);
    b_pay.server_maxconn = Some("100".parse().unwrap());

    let mut b_vault = http_backend(
        "be_tcp:vault:vault",
        vault.clone(),
        "vault.example.com",
        vec![server(
            "pod:vault-0:vault:https:10.0.0.7:8200",
            "10.0.0.7",
            8200,
            1,
        )],
    );
    b_vault.termination = Some(Termination::Passthrough);
    b_vault.mode = Mode::Tcp;
    b_vault.balance = Balance::Source;
    b_vault.forwarded = None;
    b_vault.timeout_tunnel = Some("1h".parse().unwrap());
    b_vault.allowlist_file = Some("allowlists/vault:vault.txt".into());
    b_vault.rate_limit = Some(Box::new(RateLimit {
        concurrent_tcp: Some("5".parse().unwrap()),
        rate_tcp: None,
        rate_http: Some("7".parse().unwrap()),
    }));

    let mut b_wild = http_backend(
        "be_http:w:wild",
        wild.clone(),
        "*.wild.example.org",
        vec![Server {
            h2c: true,
            ..server("ept:wild:http:10.0.0.8:8080", "10.0.0.8", 8080, 0)
        }],
    );
    b_wild.forwarded = Some(ForwardedPolicy::Append);

    let backends = vec![b_wild, b_vault, b_pay, b_static, b_api, b_store, b_blog];

    let http_lookup = vec![
        entry(
            "blog.example.com",
            PathMatch::Fallback,
            LookupAction::Backend("be_http:blog:blog".into()),
            blog.clone(),
        ),
        entry(
            "www.example.com",
            PathMatch::Fallback,
            LookupAction::RedirectToHttps,
            store.clone(),
        ),
        entry(
            "www.example.com",
            PathMatch::Prefix("/api".into()),
            LookupAction::RedirectToHttps,
            api.clone(),
        ),
        entry(
            "www.example.com",
            PathMatch::Under("/static/".into()),
            LookupAction::Backend("be_edge_http:shop:static".into()),
            stat.clone(),
        ),
        entry(
            "pay.example.com",
            PathMatch::Fallback,
            LookupAction::Refuse,
            pay.clone(),
        ),
        entry(
            "vault.example.com",
            PathMatch::Fallback,
            LookupAction::RedirectToHttps,
            vault.clone(),
        ),
        entry(
            "*.wild.example.org",
            PathMatch::Fallback,
            LookupAction::Backend("be_http:w:wild".into()),
            wild.clone(),
        ),
    ];
    let https_lookup = vec![
        entry(
            "www.example.com",
            PathMatch::Fallback,
            LookupAction::Backend("be_edge_http:shop:storefront".into()),
            store.clone(),
        ),
        entry(
            "www.example.com",
            PathMatch::Prefix("/api".into()),
            LookupAction::Backend("be_edge_http:shop:api".into()),
            api.clone(),
        ),
        entry(
            "www.example.com",
            PathMatch::Under("/static/".into()),
            LookupAction::Backend("be_edge_http:shop:static".into()),
            stat.clone(),
        ),
        entry(
            "pay.example.com",
            PathMatch::Fallback,
            LookupAction::Backend("be_secure:pay:payments".into()),
            pay.clone(),
        ),
    ];
    Plan {
        spares: Vec::new(),
        backends: backends.into_iter().map(std::sync::Arc::new).collect(),
        http_lookup: http_lookup.into(),
        https_lookup: https_lookup.into(),
        passthrough: vec![SniEntry {
            sni: "vault.example.com".into(),
            backend: "be_tcp:vault:vault".into(),
            route: vault.clone(),
        }]
        .into(),
        max_path_depth: 1,
        certificates: vec![CertEntry {
            file: "certs/shop:storefront.pem".into(),
            pem: KEY_AND_CERT.into(),
            sni: "www.example.com".into(),
            h2: true,
            route: store.clone(),
        }]
        .into(),
        ca_files: vec![PemFile {
            file: "cas/pay:payments.pem".into(),
            pem: "-----BEGIN CERTIFICATE-----\nCCCC\n-----END CERTIFICATE-----\n".into(),
        }]
        .into(),
        allowlist_files: vec![
            AllowlistFile {
                file: "allowlists/shop:api.txt".into(),
                list: "10.0.0.0/8 192.168.1.1 2001:db8::/32".parse().unwrap(),
            },
            AllowlistFile {
                file: "allowlists/vault:vault.txt".into(),
                list: "127.0.0.1".parse().unwrap(),
            },
        ]
        .into(),
        warnings: vec![],
    }
}

pub(crate) fn settings() -> RenderSettings {
    RenderSettings {
        default_cert_pem: KEY_AND_CERT.into(),
        ..RenderSettings::default()
    }
}

fn render(plan: &Plan) -> Result<OutputTree, RenderError> {
    render_haproxy(plan, &settings(), &Templates::embedded().unwrap())
}

fn text(tree: &OutputTree, path: &str) -> String {
    String::from_utf8(tree[path].contents.to_vec()).unwrap()
}

/// The whole configuration as HAProxy reads it (`-f haproxy.cfg -f
/// backends`): haproxy.cfg, then every `backends/*.cfg` in lexical order.
fn full_config(tree: &OutputTree) -> String {
    let mut cfg = text(tree, CONFIG_FILE);
    for path in tree.keys() {
        if path.starts_with("backends/") && path.ends_with(".cfg") {
            cfg.push_str(&text(tree, path));
        }
    }
    cfg
}

#[test]
fn render_tree_files_and_secrets() {
    let tree = render(&sample_plan()).unwrap();
    let files: Vec<(&str, bool)> = tree.iter().map(|(p, f)| (p.as_str(), f.secret)).collect();
    assert_eq!(
        files,
        vec![
            ("allowlists/shop:api.txt", false),
            ("allowlists/vault:vault.txt", false),
            ("backends/default.cfg", false),
            ("backends/routes-000.cfg", false),
            ("cas/pay:payments.pem", false),
            ("certs/default.pem", true),
            ("certs/shop:storefront.pem", true),
            ("crt-list.txt", false),
            ("haproxy.cfg", false),
            ("maps/http.map", false),
            ("maps/https.map", false),
            ("maps/passthrough.map", false),
        ]
    );
    assert_eq!(
        text(&tree, "maps/http.map"),
        "*.wild.example.org/ be_http:w:wild\n\
         blog.example.com/ be_http:blog:blog\n\
         pay.example.com/ be_no_route\n\
         vault.example.com/ redirect\n\
         www.example.com/ redirect\n\
         www.example.com/api/ redirect\n\
         www.example.com/api? redirect\n\
         www.example.com/static/ be_edge_http:shop:static\n"
    );
    assert_eq!(
        text(&tree, "maps/https.map"),
        "pay.example.com/ be_secure:pay:payments\n\
         www.example.com/ be_edge_http:shop:storefront\n\
         www.example.com/api/ be_edge_http:shop:api\n\
         www.example.com/api? be_edge_http:shop:api\n\
         www.example.com/static/ be_edge_http:shop:static\n"
    );
    assert_eq!(
        text(&tree, "maps/passthrough.map"),
        "vault.example.com be_tcp:vault:vault\n"
    );
    assert_eq!(
        text(&tree, "crt-list.txt"),
        "certs/shop:storefront.pem [alpn h2,http/1.1] www.example.com\n"
    );
    assert_eq!(
        text(&tree, "allowlists/shop:api.txt"),
        "10.0.0.0/8\n192.168.1.1\n2001:db8::/32\n"
    );
}

#[test]
fn render_haproxy_cfg_lines() {
    let tree = render(&sample_plan()).unwrap();
    // haproxy.cfg: global, defaults and the frontends; every backend is in
    // backends/ (be_no_route and be_terminate in default.cfg, loaded first).
    let main = text(&tree, "haproxy.cfg");
    assert!(!main.contains("\nbackend "), "{main}");
    assert!(main.ends_with(
        "# The backends (one per Route, plus be_no_route and be_terminate) are in\n\
         # backends/*.cfg, loaded after this file: haproxy -f haproxy.cfg -f backends\n"
    ));
    let defaults = text(&tree, DEFAULT_BACKENDS_FILE);
    assert!(
        defaults.starts_with("# Generated by routegen. Backends every configuration has.\n"),
        "{defaults}"
    );
    // Relative paths in backends/*.cfg resolve against the tree, not
    // backends/.
    assert!(
        defaults.contains("\nglobal\n  default-path parent\n"),
        "{defaults}"
    );
    let routes = text(&tree, "backends/routes-000.cfg");
    assert!(
        routes.starts_with("# Generated by routegen. Route backends, file 1 of 1.\n\n# route "),
        "{routes}"
    );
    for file in [&main, &defaults, &routes] {
        assert!(!file.contains("\n\n\n"), "{file}");
    }
    let cfg = full_config(&tree);
    for expected in [
        "global\n  default-path config\n  maxconn 50000\n  hard-stop-after 30m\n",
        "  stats socket /var/lib/haproxy/run/haproxy.sock mode 600 level admin expose-fd listeners\n",
        "frontend fe_http\n  bind :80\n  mode http\n",
        "frontend fe_https\n  bind :443\n  mode tcp\n",
        "  bind unix@/var/lib/haproxy/run/fe_terminate.sock mode 600 accept-proxy ssl crt certs/default.pem crt-list crt-list.txt alpn http/1.1\n",
        // fe_http and fe_terminate: one prefix-tree lookup per host kind.
        "  http-request set-var(txn.path) path\n\
         \x20 http-request set-var(txn.path) str(/) unless { var(txn.path) -m found }\n\
         \x20 http-request set-var(txn.be) var(txn.host),concat(,txn.path,?),map_beg(maps/http.map)\n\
         \x20 http-request set-var(txn.whost) var(txn.host),regsub('^[a-z0-9-]+\\.','*.') if !{ var(txn.be) -m found } { var(txn.host) -m reg '^[a-z0-9-]+\\.' }\n\
         \x20 http-request set-var(txn.be) var(txn.whost),concat(,txn.path,?),map_beg(maps/http.map) if !{ var(txn.be) -m found }\n\
         \x20 http-request redirect location https://%[var(txn.host)]%[pathq] code 302 if { var(txn.be) -m str redirect }\n",
        "  http-request set-var(txn.be) var(txn.host),concat(,txn.path,?),map_beg(maps/https.map)\n\
         \x20 http-request set-var(txn.whost) var(txn.host),regsub('^[a-z0-9-]+\\.','*.') if !{ var(txn.be) -m found } { var(txn.host) -m reg '^[a-z0-9-]+\\.' }\n\
         \x20 http-request set-var(txn.be) var(txn.whost),concat(,txn.path,?),map_beg(maps/https.map) if !{ var(txn.be) -m found }\n\
         \x20 use_backend %[var(txn.be)] if { var(txn.be) -m found }\n\
         \x20 default_backend be_no_route\n",
        "# route blog/blog host blog.example.com path - termination http\nbackend be_http:blog:blog from forwarded_append\n  mode http\n  balance roundrobin\n  cookie ",
        "  cookie abcdef0123 insert indirect nocache httponly dynamic\n\
         \x20 dynamic-cookie-key 8782832c029158e2325f1b0c8ba3650d\n\
         \x20 server pod:blog-0:blog:http:10.128.2.11:8080 10.128.2.11:8080 id 490947082 weight 1 check inter 5000ms\n\
         \x20 server pod:blog-1:blog:http:fd00::12:8080 [fd00::12]:8080 id 1291151640 weight 1 check inter 5000ms\n",
        "# route shop/api host www.example.com path /api termination edge\nbackend be_edge_http:shop:api from forwarded_replace\n  mode http\n  balance leastconn\n  timeout server 30s\n\
         \x20 tcp-request content reject if !{ src -f allowlists/shop:api.txt }\n\
         \x20 stick-table type ipv6 size 100k expire 30s store conn_cur,conn_rate(3s),http_req_rate(10s)\n\
         \x20 tcp-request content track-sc2 src\n\
         \x20 tcp-request content reject if { src_conn_cur ge 10 }\n\
         \x20 tcp-request content reject if { src_conn_rate ge 20 }\n\
         \x20 tcp-request content reject if { src_http_req_rate ge 30 }\n",
        "  http-request set-path /v2/a%%20b%[path,bytes(4)]\n",
        "  http-request set-path /%[path,bytes(8),regsub(^/,)]\n",
        "  cookie shopcookie insert indirect nocache httponly dynamic secure attr SameSite=None\n\
         \x20 dynamic-cookie-key e11df3f00817f7614380745553881b98\n\
         \x20 http-response set-header Strict-Transport-Security max-age=31536000;includeSubDomains\n",
        "  server pod:pay-0:payments:https:10.0.0.9:8443 10.0.0.9:8443 id 1697040846 weight 1 ssl verify required ca-file cas/pay:payments.pem verifyhost payments.pay.svc alpn h2,http/1.1 maxconn 100\n",
        "# route vault/vault host vault.example.com path - termination passthrough\nbackend be_tcp:vault:vault\n  mode tcp\n  balance source\n  hash-type consistent\n  timeout tunnel 1h\n\
         \x20 tcp-request content reject if !{ src -f allowlists/vault:vault.txt }\n\
         \x20 stick-table type ipv6 size 100k expire 30s store conn_cur,conn_rate(3s)\n\
         \x20 tcp-request content track-sc2 src\n\
         \x20 tcp-request content reject if { src_conn_cur ge 5 }\n\
         \x20 server pod:vault-0:vault:https:10.0.0.7:8200 10.0.0.7:8200 id 1677926238 weight 1\n",
        "  server ept:wild:http:10.0.0.8:8080 10.0.0.8:8080 id 1562885493 weight 0 proto h2\n",
        "backend be_no_route\n  mode http\n",
        "backend be_terminate\n  mode tcp\n  server fe_terminate unix@/var/lib/haproxy/run/fe_terminate.sock send-proxy-v2\n",
    ] {
        assert!(cfg.contains(expected), "missing:\n{expected}\nin:\n{cfg}");
    }
    // Never-policy backend sets no forwarded headers; TCP backends never do.
    let pay = &cfg[cfg.find("backend be_secure:pay:payments").unwrap()..];
    let pay = &pay[..pay.find("\n\n").unwrap()];
    assert!(!pay.contains("orward"), "{pay}");
    // The special backends (default.cfg), then the Routes' in name order.
    let order: Vec<&str> = cfg
        .lines()
        .filter_map(|l| l.strip_prefix("backend ")?.split(' ').next())
        .collect();
    assert_eq!(
        order,
        vec![
            "be_no_route",
            "be_terminate",
            "be_edge_http:shop:api",
            "be_edge_http:shop:static",
            "be_edge_http:shop:storefront",
            "be_http:blog:blog",
            "be_http:w:wild",
            "be_secure:pay:payments",
            "be_tcp:vault:vault",
        ]
    );
    // The section order.
    let sections: Vec<usize> = [
        "\nglobal\n",
        "\ndefaults base\n",
        "\ndefaults forwarded_append from base\n",
        "\ndefaults from base\n",
        "\nfrontend fe_http\n",
        "\nfrontend fe_https\n",
        "\nfrontend fe_terminate\n",
        "\nbackend be_no_route\n",
        "\nbackend be_edge_http:shop:api from forwarded_replace\n",
    ]
    .iter()
    .map(|s| cfg.find(s).unwrap_or_else(|| panic!("{s}")))
    .collect();
    assert!(sections.windows(2).all(|w| w[0] < w[1]), "{sections:?}");
}

/// The `Forwarded`/`X-Forwarded-*` rules of each policy, as OpenShift sets
/// them, written by the template from the policy the renderer chose.
#[test]
fn render_forwarded_policies() {
    let tree = |policy: Option<ForwardedPolicy>| {
        let mut b = http_backend(
            "be_http:f:f",
            key("f", "f"),
            "f.example.com",
            vec![server("pod:f-0:f:http:10.0.0.1:80", "10.0.0.1", 80, 1)],
        );
        b.forwarded = policy;
        let plan = Plan {
            spares: Vec::new(),
            backends: vec![Arc::new(b)],
            ..Plan::default()
        };
        render(&plan).unwrap()
    };
    let section = |policy| text(&tree(policy), "backends/routes-000.cfg");
    // The backend names its policy's defaults section and holds no rule.
    let body = "\n  mode http\n  balance random\n  server pod:f-0:f:http:10.0.0.1:80 10.0.0.1:80 id 1876351683 weight 1\n";
    for (policy, from) in [
        (ForwardedPolicy::IfNone, " from forwarded_if_none"),
        (ForwardedPolicy::Append, " from forwarded_append"),
        (ForwardedPolicy::Replace, " from forwarded_replace"),
        (ForwardedPolicy::Never, ""),
    ] {
        let want = format!("backend be_http:f:f{from}{body}");
        assert!(section(Some(policy)).ends_with(&want), "{policy:?}");
    }
    assert!(section(None).ends_with(&format!("backend be_http:f:f{body}")));
    // The rules, once each, in haproxy.cfg whatever the Routes.
    let cfg = text(&tree(None), CONFIG_FILE);
    let v6 = "for=\\\"[%[src]]\\\";host=%[req.hdr(host)];proto=%[req.hdr(X-Forwarded-Proto)] if { src -m sub : }";
    let v4 =
        "for=%[src];host=%[req.hdr(host)];proto=%[req.hdr(X-Forwarded-Proto)] if !{ src -m sub : }";
    let if_none = format!(
        "defaults forwarded_if_none from base\n\
         \x20 option forwardfor if-none\n\
         \x20 http-request set-header X-Forwarded-Host %[req.hdr(host)] if !{{ req.hdr(X-Forwarded-Host) -m found }}\n\
         \x20 http-request set-header X-Forwarded-Port %[dst_port] if !{{ req.hdr(X-Forwarded-Port) -m found }}\n\
         \x20 http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }} !{{ req.hdr(X-Forwarded-Proto) -m found }}\n\
         \x20 http-request set-header X-Forwarded-Proto https if {{ ssl_fc }} !{{ req.hdr(X-Forwarded-Proto) -m found }}\n\
         \x20 http-request set-header X-Forwarded-Proto-Version h2 if {{ ssl_fc_alpn -i h2 }} !{{ req.hdr(X-Forwarded-Proto-Version) -m found }}\n\
         \x20 http-request set-header Forwarded {v6} !{{ req.hdr(Forwarded) -m found }}\n\
         \x20 http-request set-header Forwarded {v4} !{{ req.hdr(Forwarded) -m found }}\n\n"
    );
    let append = format!(
        "defaults forwarded_append from base\n\
         \x20 option forwardfor\n\
         \x20 http-request add-header X-Forwarded-Host %[req.hdr(host)]\n\
         \x20 http-request add-header X-Forwarded-Port %[dst_port]\n\
         \x20 http-request add-header X-Forwarded-Proto http if !{{ ssl_fc }}\n\
         \x20 http-request add-header X-Forwarded-Proto https if {{ ssl_fc }}\n\
         \x20 http-request add-header X-Forwarded-Proto-Version h2 if {{ ssl_fc_alpn -i h2 }}\n\
         \x20 http-request add-header Forwarded {v6}\n\
         \x20 http-request add-header Forwarded {v4}\n\n"
    );
    let replace = format!(
        "defaults forwarded_replace from base\n\
         \x20 http-request set-header X-Forwarded-For %[src]\n\
         \x20 http-request set-header X-Forwarded-Host %[req.hdr(host)]\n\
         \x20 http-request set-header X-Forwarded-Port %[dst_port]\n\
         \x20 http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}\n\
         \x20 http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}\n\
         \x20 http-request set-header X-Forwarded-Proto-Version h2 if {{ ssl_fc_alpn -i h2 }}\n\
         \x20 http-request set-header Forwarded {v6}\n\
         \x20 http-request set-header Forwarded {v4}\n\n"
    );
    for section in [&append, &replace, &if_none] {
        assert_eq!(
            cfg.matches(section.as_str()).count(),
            1,
            "{section}\nin\n{cfg}"
        );
    }
    // Frontends and backends without "from" use an unnamed copy of base.
    assert!(cfg.contains("\ndefaults base\n"));
    let last = cfg.rfind("\ndefaults").unwrap();
    assert!(cfg[last..].starts_with("\ndefaults from base\n"));
    assert!(last < cfg.find("\nfrontend ").unwrap());
}

/// `n` copies of the sample's blog backend, `be_http:many:r<i>`.
fn many_backends(n: usize) -> Plan {
    let sample = sample_plan();
    let blog = sample
        .backends
        .iter()
        .find(|b| b.name == "be_http:blog:blog")
        .unwrap();
    let mut plan = Plan::default();
    for i in 0..n {
        let mut b = (**blog).clone();
        b.name = format!("be_http:many:r{i}").into();
        b.route = key("many", &format!("r{i}"));
        plan.backends.push(std::sync::Arc::new(b));
    }
    plan
}

#[test]
fn render_spreads_backends_over_files() {
    assert_eq!(backend_file_count(0), 1);
    assert_eq!(backend_file_count(128), 1);
    assert_eq!(backend_file_count(129), 2);
    assert_eq!(backend_file_count(1000), 8);
    assert_eq!(backend_file_path(7, 8), "backends/routes-007.cfg");
    assert_eq!(backend_file_path(1234, 4096), "backends/routes-1234.cfg");

    let plan = many_backends(1000);
    let tree = render(&plan).unwrap();
    let files: Vec<&str> = tree
        .keys()
        .filter(|k| k.starts_with("backends/"))
        .map(String::as_str)
        .collect();
    let mut want = vec![DEFAULT_BACKENDS_FILE.to_string()];
    want.extend((0..8).map(|i| format!("backends/routes-{i:03}.cfg")));
    assert_eq!(files, want);
    assert!(!text(&tree, CONFIG_FILE).contains("\nbackend "));
    let mut seen = BTreeSet::new();
    for (index, path) in files[1..].iter().enumerate() {
        let file = text(&tree, path);
        assert!(
            file.starts_with(&format!(
                "# Generated by routegen. Route backends, file {} of 8.\n",
                index + 1
            )),
            "{path}"
        );
        let names: Vec<&str> = file
            .lines()
            .filter_map(|l| l.strip_prefix("backend ")?.split(' ').next())
            .collect();
        // About 128 per file, in name order, each in its hash's file.
        assert!((80..180).contains(&names.len()), "{path}: {}", names.len());
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{path}");
        for name in &names {
            assert_eq!(backend_file_index(name, 8), index, "{name} in {path}");
            assert!(seen.insert(name.to_string()), "{name} twice");
        }
    }
    assert_eq!(seen.len(), 1000);
}

#[test]
fn render_is_deterministic_and_order_independent() {
    let a = render(&sample_plan()).unwrap();
    let mut shuffled = sample_plan();
    shuffled.backends.reverse();
    shuffled.http_lookup.make_mut().reverse();
    shuffled.https_lookup.make_mut().reverse();
    for b in &mut shuffled.backends {
        std::sync::Arc::make_mut(b).servers.reverse();
    }
    let b = render(&shuffled).unwrap();
    assert_eq!(a, b);
    assert_eq!(a, render(&sample_plan()).unwrap());
}

#[test]
fn render_empty_plan() {
    let tree = render(&Plan::default()).unwrap();
    assert_eq!(text(&tree, "maps/http.map"), "");
    assert_eq!(text(&tree, "crt-list.txt"), "");
    assert!(tree["certs/default.pem"].secret);
}

#[test]
fn render_lookup_keys_encode_paths_and_frontends_never_change() {
    let r = key("a", "b");
    let be = |n: &str| LookupAction::Backend(n.into());
    let plan_of = |table: Vec<LookupEntry>| {
        let mut plan = sample_plan();
        plan.http_lookup = table.into();
        plan
    };
    let table = vec![
        entry(
            "a.example.com",
            PathMatch::Fallback,
            be("be_http:blog:blog"),
            r.clone(),
        ),
        entry(
            "a.example.com",
            PathMatch::Prefix("/x/y/z".into()),
            be("be_http:blog:blog"),
            r.clone(),
        ),
        // A Prefix and an Under of one path: the Under has the key below it.
        entry(
            "a.example.com",
            PathMatch::Prefix("/x".into()),
            LookupAction::RedirectToHttps,
            r.clone(),
        ),
        entry(
            "a.example.com",
            PathMatch::Under("/x/".into()),
            LookupAction::Refuse,
            r.clone(),
        ),
        entry(
            "*.example.com",
            PathMatch::Prefix("/q".into()),
            be("be_http:blog:blog"),
            r.clone(),
        ),
    ];
    let tree = render(&plan_of(table)).unwrap();
    assert_eq!(
        text(&tree, "maps/http.map"),
        "*.example.com/q/ be_http:blog:blog\n\
         *.example.com/q? be_http:blog:blog\n\
         a.example.com/ be_http:blog:blog\n\
         a.example.com/x/ be_no_route\n\
         a.example.com/x/y/z/ be_http:blog:blog\n\
         a.example.com/x/y/z? be_http:blog:blog\n\
         a.example.com/x? redirect\n"
    );
    // The frontends are the same for any table: a path never reloads.
    let empty = render(&plan_of(Vec::new())).unwrap();
    assert_eq!(text(&tree, "haproxy.cfg"), text(&empty, "haproxy.cfg"));
    // Two Routes of one key in a table are a planning error.
    let fallback = entry(
        "a.example.com",
        PathMatch::Fallback,
        be("be_http:blog:blog"),
        r.clone(),
    );
    let twice = vec![fallback.clone(), fallback];
    let err = render(&plan_of(twice)).unwrap_err().to_string();
    assert!(err.contains("duplicate key a.example.com"), "{err}");
}

#[test]
fn render_refuses_hostile_values() {
    let hostile_names = [
        "be_http:a:b\n  server evil 1.2.3.4:80",
        "be_http:a b",
        "be_http:a#b",
        "be_http:a\"b",
        "be_http:a\0b",
        "",
    ];
    for bad in hostile_names {
        // As a backend name.
        let mut plan = sample_plan();
        std::sync::Arc::make_mut(&mut plan.backends[0]).name = bad.into();
        plan.http_lookup
            .make_mut()
            .retain(|e| e.route != plan.backends[0].route);
        assert!(render(&plan).is_err(), "backend name {bad:?}");
        // As a server name.
        let mut plan = sample_plan();
        std::sync::Arc::make_mut(&mut plan.backends[1]).servers[0].name = bad.to_string();
        let err = render(&plan).unwrap_err();
        assert!(
            err.to_string().contains("backend be_tcp:vault:vault"),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'), "{err}");
    }
    // Map keys: whitespace, newlines, over-long lines.
    for path in [
        "/a b",
        "/a\nwww.victim.com be_http:evil",
        "/a\rb",
        "/a\u{a0}b",
    ] {
        let mut plan = sample_plan();
        let r = plan.https_lookup[1].route.clone();
        plan.https_lookup.make_mut()[1] = Arc::new(entry(
            "www.example.com",
            PathMatch::Prefix(path.into()),
            LookupAction::Backend("be_edge_http:shop:api".into()),
            r,
        ));
        assert!(render(&plan).is_err(), "{path:?}");
    }
    let mut plan = sample_plan();
    let r = plan.https_lookup[1].route.clone();
    plan.https_lookup.make_mut()[1] = Arc::new(entry(
        "www.example.com",
        PathMatch::Prefix(format!("/{}victim.example.com", "a".repeat(16_400))),
        LookupAction::Backend("be_edge_http:shop:api".into()),
        r,
    ));
    let err = render(&plan).unwrap_err();
    assert!(err.to_string().contains("too long"), "{err}");
    // Comments.
    let mut plan = sample_plan();
    std::sync::Arc::make_mut(&mut plan.backends[3]).path =
        Some("/x\n  server evil 1.2.3.4:80".into());
    assert!(render(&plan).is_err());
    // File names and SNI filters.
    let mut plan = sample_plan();
    std::sync::Arc::make_mut(&mut plan.certificates)[0].file = "../../etc/cron.d/x".into();
    assert!(render(&plan).is_err());
    let mut plan = sample_plan();
    std::sync::Arc::make_mut(&mut plan.certificates)[0].sni = "www.example.com !evil".into();
    assert!(render(&plan).is_err());
    let mut plan = sample_plan();
    std::sync::Arc::make_mut(&mut plan.certificates)[0].file = "haproxy.cfg".into();
    assert!(render(&plan).is_err(), "a file may not replace another");
    let mut plan = sample_plan();
    std::sync::Arc::make_mut(&mut plan.backends[2]).server_tls = Some(Box::new(ServerTls {
        verify: ServerVerify::CaFile {
            file: "cas/x.pem".into(),
            verify_host: Some("svc.ns.svc ssl verify none".into()),
        },
        alpn_h2: false,
    }));
    assert!(render(&plan).is_err());
    // Settings.
    let templates = Templates::embedded().unwrap();
    for run_dir in ["relative", "/a b", "/a/../b", "/x\n"] {
        let s = RenderSettings {
            run_dir: run_dir.into(),
            ..settings()
        };
        assert!(
            render_haproxy(&sample_plan(), &s, &templates).is_err(),
            "{run_dir:?}"
        );
    }
    let s = RenderSettings {
        default_cert_pem: String::new(),
        ..settings()
    };
    assert!(render_haproxy(&sample_plan(), &s, &templates).is_err());
}

#[test]
fn render_refuses_inconsistent_plans() {
    let mut plan = sample_plan();
    Arc::make_mut(&mut plan.http_lookup.make_mut()[0]).action =
        LookupAction::Backend("be_http:missing:x".into());
    assert!(matches!(render(&plan), Err(RenderError::Plan(_))));
    let mut plan = sample_plan();
    Arc::make_mut(&mut plan.http_lookup.make_mut()[0]).key = "other.example.com".into();
    assert!(matches!(render(&plan), Err(RenderError::Plan(_))));
    let mut plan = sample_plan();
    let dup = plan.http_lookup[0].clone();
    plan.http_lookup.make_mut().push(dup);
    assert!(matches!(render(&plan), Err(RenderError::Plan(_))));
    let mut plan = sample_plan();
    let dup = plan.backends[0].clone();
    plan.backends.push(dup);
    assert!(matches!(render(&plan), Err(RenderError::Plan(_))));
    let mut plan = sample_plan();
    Arc::make_mut(&mut plan.passthrough.make_mut()[0]).backend = "be_tcp:nope:nope".into();
    assert!(matches!(render(&plan), Err(RenderError::Plan(_))));
}

#[test]
fn render_template_override() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("haproxy.cfg.tera"),
        "maxconn={{ global.maxconn }}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("backend.cfg.tera"),
        "{{ name }} {{ servers | length }}\n",
    )
    .unwrap();
    let templates = Templates::with_replacements(
        ["haproxy.cfg.tera", "backend.cfg.tera"]
            .into_iter()
            .map(|n| {
                (
                    n.to_string(),
                    std::fs::read_to_string(dir.path().join(n)).unwrap(),
                )
            })
            .collect(),
    )
    .unwrap();
    let tree = render_haproxy(&sample_plan(), &settings(), &templates).unwrap();
    assert_eq!(text(&tree, "haproxy.cfg"), "maxconn=50000\n");
    let routes = text(&tree, "backends/routes-000.cfg");
    assert!(
        routes.starts_with(
            "# Generated by routegen. Route backends, file 1 of 1.\n\nbe_edge_http:shop:api "
        ),
        "{routes}"
    );
    assert_eq!(routes.lines().filter(|l| l.starts_with("be_")).count(), 7);
    // The template not overridden is the built-in one.
    assert!(text(&tree, DEFAULT_BACKENDS_FILE).contains("\nbackend be_no_route\n"));
    // No HTML escaping: the config keeps its quotes and ampersands.
    let cfg = full_config(&render(&sample_plan()).unwrap());
    assert!(
        cfg.contains("string \"No route") && !cfg.contains("&quot;") && !cfg.contains("&#x27;")
    );
}

/// The rendered sample passes the real `haproxy -c` (HAProxy 2.6+).
#[test]
fn render_sample_passes_haproxy_check() {
    let dir = tempfile::tempdir().unwrap();
    let pem = TEST_PEM.to_string();
    let cert_only = pem[pem.find("-----BEGIN CERTIFICATE").unwrap()..].to_string();
    let mut plan = sample_plan();
    std::sync::Arc::make_mut(&mut plan.certificates)[0].pem = SECOND_TEST_PEM.into();
    std::sync::Arc::make_mut(&mut plan.ca_files)[0].pem = cert_only;
    let s = RenderSettings {
        default_cert_pem: pem,
        run_dir: dir.path().join("run").display().to_string(),
        ..settings()
    };
    let tree = render_haproxy(&plan, &s, &Templates::embedded().unwrap()).unwrap();
    write_files(&tree, dir.path());
    haproxy_check(dir.path());
}

/// `haproxy -c -f <dir>/haproxy.cfg -f <dir>/backends`, run from `/` (so
/// relative paths resolve through `default-path`, not the working
/// directory): passes without a warning.
fn haproxy_check(dir: &std::path::Path) {
    let paths = [dir.join(CONFIG_FILE), dir.join(BACKENDS_DIR)];
    let mut cmd = Command::new(haproxy_bin());
    cmd.arg("-c");
    for path in &paths {
        cmd.arg("-f").arg(path);
    }
    let out = cmd
        .current_dir("/")
        .output()
        .expect("haproxy must be installed to run the renderer tests");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "haproxy -c failed:\n{stderr}");
    assert!(!stderr.contains("WARNING"), "haproxy -c warned:\n{stderr}");
}

/// Many backends over several files (the CA and allowlist paths of each
/// resolve against the tree) pass the real `haproxy -c`.
#[test]
fn render_many_backends_passes_haproxy_check() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = many_backends(300);
    let sample = sample_plan();
    for b in &sample.backends {
        plan.backends.push(b.clone());
    }
    let pem = TEST_PEM.to_string();
    plan.ca_files = sample.ca_files.clone();
    std::sync::Arc::make_mut(&mut plan.ca_files)[0].pem =
        pem[pem.find("-----BEGIN CERTIFICATE").unwrap()..].to_string();
    plan.allowlist_files = sample.allowlist_files.clone();
    let s = RenderSettings {
        default_cert_pem: pem,
        run_dir: dir.path().join("run").display().to_string(),
        ..settings()
    };
    let tree = render_haproxy(&plan, &s, &Templates::embedded().unwrap()).unwrap();
    assert!(tree.contains_key("backends/routes-003.cfg"));
    write_files(&tree, dir.path());
    haproxy_check(dir.path());
}

/// A key and self-signed certificate (`testdata/certs/default.pem`).
const TEST_PEM: &str = include_str!("../../../../testdata/certs/default.pem");
/// Another key and certificate (`testdata/certs/shared.{key,crt}`).
const SECOND_TEST_PEM: &str = concat!(
    include_str!("../../../../testdata/certs/shared.key"),
    include_str!("../../../../testdata/certs/shared.crt")
);

/// The tree's files under `dir`, plainly (the atomic writer is
/// `routegen-host`'s; these tests only need the bytes on disk).
fn write_files(tree: &OutputTree, dir: &std::path::Path) {
    for (path, file) in tree {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, file.bytes()).unwrap();
    }
}

fn haproxy_bin() -> String {
    std::env::var("ROUTEGEN_HAPROXY_BIN").unwrap_or_else(|_| "haproxy".into())
}
