//! `routegen render` and `routegen diff` end to end, and the rendered
//! configuration checked and served by the real HAProxy (`haproxy` on PATH,
//! or `ROUTEGEN_HAPROXY_BIN`; missing HAProxy fails these tests).

use routegen_testsupport::e2e::free_port;
use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use routegen_core::admit::route::Termination;
use routegen_core::model::ObjectKey;
use routegen_core::plan::{
    Backend, CertEntry, LookupAction, LookupEntry, Mode, PathMatch, PathRewrite, Plan, Server,
    SniEntry,
};
use routegen_core::testkit;
use routegen_core::values::{Balance, ForwardedPolicy};
use routegen_render::{render_haproxy, BindAddr, RenderSettings, Templates};

use routegen_testsupport::config;

fn routegen() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routegen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn haproxy_bin() -> String {
    std::env::var("ROUTEGEN_HAPROXY_BIN").unwrap_or_else(|_| "haproxy".into())
}

fn examples() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("examples")
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run routegen")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `haproxy -c -f <dir>/haproxy.cfg -f <dir>/backends` on a written tree,
/// from an unrelated working directory (the tree must be self-contained
/// through `default-path`).
fn haproxy_check(dir: &Path) {
    assert!(
        dir.join("backends").is_dir(),
        "{}: no backends/",
        dir.display()
    );
    let out = config::haproxy_c(Path::new(&haproxy_bin()), dir);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "haproxy -c failed:\n{stderr}");
    assert!(!stderr.contains("WARNING"), "haproxy -c warned:\n{stderr}");
}

/// Every file below `dir` (relative path → bytes).
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn mode_of(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

struct Dirs {
    _tmp: tempfile::TempDir,
    out: PathBuf,
    state: PathBuf,
    run: PathBuf,
    root: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    Dirs {
        out: root.join("out"),
        state: root.join("state"),
        run: root.join("run"),
        root,
        _tmp: tmp,
    }
}

fn render_args(d: &Dirs, input: &Path) -> Vec<String> {
    vec![
        "-f".into(),
        input.display().to_string(),
        "--state-dir".into(),
        d.state.display().to_string(),
        "--run-dir".into(),
        d.run.display().to_string(),
    ]
}

#[test]
fn render_examples_to_dir_passes_haproxy_check() {
    let d = dirs();
    let out = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--out")
        .arg(&d.out));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains("rejected: marketing/promo www.example.com: HostAlreadyClaimed: "),
        "{stderr}"
    );
    haproxy_check(&d.out);

    let tree = read_tree(&d.out);
    for f in [
        "haproxy.cfg",
        "backends/default.cfg",
        "backends/routes-000.cfg",
        "maps/http.map",
        "maps/https.map",
        "maps/passthrough.map",
        "crt-list.txt",
        "certs/default.pem",
    ] {
        assert!(tree.contains_key(f), "{f} missing: {:?}", tree.keys());
    }
    // Keys are private, directories closed, the rest readable.
    for (path, _) in tree.iter().filter(|(p, _)| p.starts_with("certs/")) {
        assert_eq!(mode_of(&d.out.join(path)), 0o600, "{path}");
    }
    assert_eq!(mode_of(&d.out.join("haproxy.cfg")), 0o644);
    assert_eq!(mode_of(&d.out.join("backends/routes-000.cfg")), 0o644);
    assert_eq!(mode_of(&d.out), 0o700);
    assert_eq!(mode_of(&d.out.join("certs")), 0o700);
    assert_eq!(mode_of(&d.out.join("backends")), 0o700);
    assert_eq!(mode_of(&d.state.join("default-cert.pem")), 0o600);

    assert!(
        !text(&tree["haproxy.cfg"]).contains("\nbackend "),
        "backend sections are in backends/"
    );
    let cfg = config::whole_config_of(&tree);
    assert!(
        cfg.contains("backend be_edge_http:shop:storefront from forwarded_append\n"),
        "{cfg}"
    );
    assert!(
        !cfg.contains("marketing"),
        "a rejected Route renders nothing"
    );
    let http_map = text(&tree["maps/http.map"]);
    let mut sorted: Vec<&str> = http_map.lines().collect();
    sorted.sort_unstable();
    assert_eq!(sorted, http_map.lines().collect::<Vec<_>>(), "map sorted");
    assert!(
        http_map.lines().all(|l| l.split(' ').count() == 2),
        "{http_map}"
    );
}

#[test]
fn render_is_byte_identical_across_runs_and_diff_is_empty() {
    let d = dirs();
    let first = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--out")
        .arg(&d.out));
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let again = d.root.join("again");
    let second = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--out")
        .arg(&again));
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(
        read_tree(&d.out),
        read_tree(&again),
        "same input, same state dir: same bytes"
    );

    // Printing is stable too, and equals the written tree.
    let p1 = run(routegen().arg("render").args(render_args(&d, &examples())));
    let p2 = run(routegen().arg("render").args(render_args(&d, &examples())));
    assert_eq!(p1.status.code(), Some(0));
    assert_eq!(p1.stdout, p2.stdout);

    // Writing again over the same directory changes nothing.
    let third = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--out")
        .arg(&d.out));
    assert_eq!(third.status.code(), Some(0));
    assert_eq!(read_tree(&d.out), read_tree(&again));

    let diff = run(routegen()
        .arg("diff")
        .args(render_args(&d, &examples()))
        .arg("--against")
        .arg(&d.out));
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stderr));
    assert_eq!(text(&diff.stdout), "");
}

#[test]
fn diff_after_editing_a_manifest() {
    let d = dirs();
    let input = d.root.join("input");
    fs::create_dir(&input).unwrap();
    for entry in fs::read_dir(examples()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            fs::copy(&p, input.join(p.file_name().unwrap())).unwrap();
        }
    }
    let out = run(routegen()
        .arg("render")
        .args(render_args(&d, &input))
        .arg("--out")
        .arg(&d.out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let blog = input.join("01-blog-http.yaml");
    let edited = fs::read_to_string(&blog)
        .unwrap()
        .replace("host: blog.example.com", "host: news.example.com");
    fs::write(&blog, edited).unwrap();
    let diff = run(routegen()
        .arg("diff")
        .args(render_args(&d, &input))
        .arg("--against")
        .arg(&d.out));
    let stdout = text(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "{stdout}{}",
        text(&diff.stderr)
    );
    assert!(
        stdout.contains("--- a/maps/http.map\n+++ b/maps/http.map\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n-blog.example.com/ be_http:blog:blog\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\n+news.example.com/ be_http:blog:blog\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+# route blog/blog host news.example.com"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("BEGIN PRIVATE KEY-----\nMIG"),
        "keys stay redacted: {stdout}"
    );

    // Rendering into the same directory brings it up to date.
    let out = run(routegen()
        .arg("render")
        .args(render_args(&d, &input))
        .arg("--out")
        .arg(&d.out));
    assert_eq!(out.status.code(), Some(0));
    let diff = run(routegen()
        .arg("diff")
        .args(render_args(&d, &input))
        .arg("--against")
        .arg(&d.out));
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stdout));

    // Errors: exit 3.
    let missing = run(routegen()
        .arg("diff")
        .args(render_args(&d, &input))
        .arg("--against")
        .arg(d.root.join("nope")));
    assert_eq!(missing.status.code(), Some(3));
    assert!(
        text(&missing.stderr).contains("error: "),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn render_prints_tree_with_keys_redacted() {
    let d = dirs();
    let out = run(routegen().arg("render").args(render_args(&d, &examples())));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let headers: Vec<&str> = stdout.lines().filter(|l| l.starts_with("# ==> ")).collect();
    assert!(headers.contains(&"# ==> haproxy.cfg <=="), "{headers:?}");
    assert!(
        headers.contains(&"# ==> backends/default.cfg <=="),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"# ==> backends/routes-000.cfg <=="),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"# ==> certs/shop:storefront.pem <=="),
        "{headers:?}"
    );
    let mut sorted = headers.clone();
    sorted.sort_unstable();
    assert_eq!(headers, sorted);
    // The example's key (examples/02) never shows.
    assert!(
        !stdout.contains("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZ1YGQTLjlQNX"),
        "key leaked"
    );
    assert!(stdout.contains("-----BEGIN PRIVATE KEY-----\n<redacted>\n-----END PRIVATE KEY-----"));

    let shown = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--show-secrets"));
    assert!(text(&shown.stdout)
        .contains("MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZ1YGQTLjlQNX"));
}

#[test]
fn render_flags_from_environment_and_errors() {
    let d = dirs();
    let out = run(routegen()
        .args(["render", "-f"])
        .arg(examples())
        .env("ROUTEGEN_STATE_DIR", &d.state)
        .env("ROUTEGEN_RUN_DIR", &d.run)
        .env("ROUTEGEN_HTTP_BIND", "127.0.0.1:8080,[::1]:8080")
        .env("ROUTEGEN_HTTPS_BIND", "127.0.0.1:8443")
        .env("ROUTEGEN_MAXCONN", "1234")
        .env("ROUTEGEN_HARD_STOP_AFTER", "5m")
        .env("ROUTEGEN_OUT", &d.out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cfg = fs::read_to_string(d.out.join("haproxy.cfg")).unwrap();
    for expected in [
        "  bind 127.0.0.1:8080\n  bind [::1]:8080\n",
        "  bind 127.0.0.1:8443\n",
        "  maxconn 1234\n",
        "  hard-stop-after 5m\n",
        &format!("  stats socket {}/haproxy.sock ", d.run.display()),
    ] {
        assert!(cfg.contains(expected), "{expected} in {cfg}");
    }
    haproxy_check(&d.out);

    // Unreadable input, bad flags, bad default certificate, foreign --out: exit 3.
    let bad_input = run(routegen()
        .args(["render", "-f"])
        .arg(d.root.join("missing.yaml"))
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(bad_input.status.code(), Some(3));
    assert!(
        text(&bad_input.stderr).starts_with("error: "),
        "{}",
        text(&bad_input.stderr)
    );
    let garbage = d.root.join("garbage.pem");
    fs::write(&garbage, "not a certificate").unwrap();
    let bad_cert = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--default-cert")
        .arg(&garbage));
    assert_eq!(bad_cert.status.code(), Some(3));
    assert!(
        text(&bad_cert.stderr).contains("default certificate"),
        "{}",
        text(&bad_cert.stderr)
    );
    let foreign = d.root.join("foreign");
    fs::create_dir(&foreign).unwrap();
    fs::write(foreign.join("keep.txt"), "x").unwrap();
    let refused = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--out")
        .arg(&foreign));
    assert_eq!(refused.status.code(), Some(3));
    assert_eq!(fs::read_to_string(foreign.join("keep.txt")).unwrap(), "x");
    for bad in [
        ["--http-bind", "localhost:80"],
        ["--cookie-name", "a b"],
        ["--hard-stop-after", "soon"],
    ] {
        let out = run(routegen()
            .arg("render")
            .args(render_args(&d, &examples()))
            .args(bad));
        assert_eq!(out.status.code(), Some(2), "clap usage error for {bad:?}");
    }
    let bad_run_dir = run(routegen()
        .args(["render", "--run-dir", "relative/run", "-f"])
        .arg(examples())
        .arg("--state-dir")
        .arg(&d.state));
    assert_eq!(bad_run_dir.status.code(), Some(3));
}

#[test]
fn render_with_template_dir_and_operator_certificate() {
    let d = dirs();
    let templates = d.root.join("templates");
    fs::create_dir(&templates).unwrap();
    let builtin = fs::read_to_string(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .join("crates/render/templates/haproxy/haproxy.cfg.tera"),
    )
    .unwrap();
    fs::write(
        templates.join("haproxy.cfg.tera"),
        format!("# custom template\n{builtin}"),
    )
    .unwrap();
    let cert = d.root.join("default.pem");
    fs::write(
        &cert,
        routegen_host::defaultcert::generate_self_signed().unwrap(),
    )
    .unwrap();
    let out = run(routegen()
        .arg("render")
        .args(render_args(&d, &examples()))
        .arg("--template-dir")
        .arg(&templates)
        .arg("--default-cert")
        .arg(&cert)
        .arg("--out")
        .arg(&d.out));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let cfg = fs::read_to_string(d.out.join("haproxy.cfg")).unwrap();
    assert!(cfg.starts_with("# custom template\n"));
    assert!(
        !d.state.exists(),
        "no generated certificate when --default-cert is given"
    );
    assert_eq!(
        fs::read_to_string(d.out.join("certs/default.pem")).unwrap(),
        routegen_host::defaultcert::load_file(&cert).unwrap().pem
    );
    haproxy_check(&d.out);
}

// ---------------------------------------------------------------------------
// Live traffic through the real HAProxy with a hand-built plan.

/// A plain HTTP server answering `<id> <request target> xfp=<X-Forwarded-Proto>`.
fn echo_server(id: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head.split(' ').nth(1).unwrap_or("").to_string();
                let xfp = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("x-forwarded-proto: ")
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "-".into());
                let body = format!("{id} {target} xfp={xfp}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(resp.as_bytes());
            });
        }
    });
    port
}

/// A TLS server presenting its own certificate (for passthrough).
fn tls_server(pem: String) -> u16 {
    use openssl::ssl::{SslAcceptor, SslMethod};
    let key = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).unwrap();
    let cert = openssl::x509::X509::from_pem(pem.as_bytes()).unwrap();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    b.set_private_key(&key).unwrap();
    b.set_certificate(&cert).unwrap();
    let acceptor = std::sync::Arc::new(b.build());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let acceptor = acceptor.clone();
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                if let Ok(mut tls) = acceptor.accept(stream) {
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf);
                    let _ = tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\nconnection: close\r\n\r\npassthrough");
                    let _ = tls.shutdown();
                }
            });
        }
    });
    port
}

fn key(ns: &str, name: &str) -> ObjectKey {
    ObjectKey::new(ns, name)
}

fn backend(name: &str, route: ObjectKey, host: &str, port: u16) -> Backend {
    let address = IpAddr::from([127, 0, 0, 1]);
    let server = Server {
        service: name.into(),
        ..testkit::plan::server(&format!("ept:{name}:{address}:{port}"), address, port, 1)
    };
    Backend {
        forwarded: Some(ForwardedPolicy::Replace),
        ..testkit::plan::backend(name, route, host, vec![server])
    }
}

fn lookup(host: &str, path: PathMatch, action: LookupAction, route: ObjectKey) -> LookupEntry {
    let suffix = match &path {
        PathMatch::Fallback => String::new(),
        PathMatch::Prefix(p) | PathMatch::Under(p) => p.clone(),
    };
    LookupEntry {
        key: format!("{host}{suffix}").into(),
        host_key: host.into(),
        depth: suffix.trim_end_matches('/').matches('/').count(),
        path,
        action,
        route,
    }
}

fn be(name: &str) -> LookupAction {
    LookupAction::Backend(name.into())
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request over `stream`; returns (status, headers, body).
fn exchange<S: Read + Write>(mut stream: S, host: &str, target: &str) -> (u16, String, String) {
    let req = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = stream.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn http_get(port: u16, host: &str, target: &str) -> (u16, String, String) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    exchange(s, host, target)
}

/// TLS to the proxy with `sni`; returns (peer certificate CN, ALPN, response).
fn https_get(
    port: u16,
    sni: &str,
    target: &str,
) -> (String, Option<String>, (u16, String, String)) {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();
    let connector = b.build();
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut cfg = connector.configure().unwrap();
    cfg.set_verify_hostname(false);
    // When h2 is selected only the negotiation is of interest here.
    let tls = cfg.connect(sni, s).unwrap();
    let cn = tls
        .ssl()
        .peer_certificate()
        .and_then(|c| {
            c.subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .map(|e| e.data().to_string().unwrap())
        })
        .unwrap_or_default();
    let alpn = tls
        .ssl()
        .selected_alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    if alpn.as_deref() == Some("h2") {
        return (cn, alpn, (0, String::new(), String::new()));
    }
    let resp = exchange(tls, sni, target);
    (cn, alpn, resp)
}

fn self_signed(cn: &str) -> String {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::{X509Builder, X509NameBuilder};
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    let name = name.build();
    let mut b = X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    let mut pem = String::from_utf8(key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    pem.push_str(&String::from_utf8(b.build().to_pem().unwrap()).unwrap());
    pem
}

#[test]
fn rendered_config_routes_live_traffic() {
    let d = dirs();
    fs::create_dir(&d.run).unwrap();
    let p_blog = echo_server("blog");
    let p_www = echo_server("www");
    let p_api = echo_server("api");
    let p_static = echo_server("static");
    let p_deep = echo_server("deep");
    let p_wild = echo_server("wild");
    let p_wild_ab = echo_server("wild-ab");
    let p_vault = tls_server(self_signed("vault backend"));

    let mut b_www = backend(
        "be_edge_http:shop:www",
        key("shop", "www"),
        "www.test",
        p_www,
    );
    b_www.termination = Some(Termination::Edge);
    b_www.hsts = Some("max-age=600".parse().unwrap());
    let mut b_api = backend(
        "be_edge_http:shop:api",
        key("shop", "api"),
        "www.test",
        p_api,
    );
    b_api.termination = Some(Termination::Edge);
    b_api.path = Some("/api".into());
    b_api.rewrite = Some(Box::new(PathRewrite {
        prefix: "/api".into(),
        target: "/v2".parse().unwrap(),
    }));
    let mut b_static = backend(
        "be_edge_http:shop:static",
        key("shop", "static"),
        "www.test",
        p_static,
    );
    b_static.termination = Some(Termination::Edge);
    b_static.path = Some("/static/".into());
    b_static.rewrite = Some(Box::new(PathRewrite {
        prefix: "/static/".into(),
        target: "/".parse().unwrap(),
    }));
    let mut b_vault = backend(
        "be_tcp:vault:vault",
        key("vault", "vault"),
        "vault.test",
        p_vault,
    );
    b_vault.mode = Mode::Tcp;
    b_vault.termination = Some(Termination::Passthrough);
    b_vault.forwarded = None;
    b_vault.balance = Balance::Source;

    let plan = Plan {
        spares: Vec::new(),
        backends: vec![
            backend(
                "be_http:blog:blog",
                key("blog", "blog"),
                "blog.test",
                p_blog,
            ),
            backend(
                "be_http:deep:deep",
                key("deep", "deep"),
                "blog.test",
                p_deep,
            ),
            backend("be_http:w:wild", key("w", "wild"), "*.wild.test", p_wild),
            backend("be_http:w:ab", key("w", "ab"), "*.wild.test", p_wild_ab),
            b_www,
            b_api,
            b_static,
            b_vault,
        ]
        .into_iter()
        .map(std::sync::Arc::new)
        .collect(),
        http_lookup: vec![
            lookup(
                "blog.test",
                PathMatch::Fallback,
                be("be_http:blog:blog"),
                key("blog", "blog"),
            ),
            lookup(
                "blog.test",
                PathMatch::Prefix("/x/y/z".into()),
                be("be_http:deep:deep"),
                key("deep", "deep"),
            ),
            lookup(
                "*.wild.test",
                PathMatch::Fallback,
                be("be_http:w:wild"),
                key("w", "wild"),
            ),
            lookup(
                "*.wild.test",
                PathMatch::Prefix("/a/b".into()),
                be("be_http:w:ab"),
                key("w", "ab"),
            ),
            lookup(
                "www.test",
                PathMatch::Fallback,
                LookupAction::RedirectToHttps,
                key("shop", "www"),
            ),
            lookup(
                "www.test",
                PathMatch::Prefix("/api".into()),
                LookupAction::Refuse,
                key("shop", "api"),
            ),
            lookup(
                "www.test",
                PathMatch::Under("/static/".into()),
                be("be_edge_http:shop:static"),
                key("shop", "static"),
            ),
            lookup(
                "vault.test",
                PathMatch::Fallback,
                LookupAction::RedirectToHttps,
                key("vault", "vault"),
            ),
        ]
        .into(),
        https_lookup: vec![
            lookup(
                "www.test",
                PathMatch::Fallback,
                be("be_edge_http:shop:www"),
                key("shop", "www"),
            ),
            lookup(
                "www.test",
                PathMatch::Prefix("/api".into()),
                be("be_edge_http:shop:api"),
                key("shop", "api"),
            ),
            lookup(
                "www.test",
                PathMatch::Under("/static/".into()),
                be("be_edge_http:shop:static"),
                key("shop", "static"),
            ),
        ]
        .into(),
        passthrough: vec![
            SniEntry {
                sni: "vault.test".into(),
                backend: "be_tcp:vault:vault".into(),
                route: key("vault", "vault"),
            },
            SniEntry {
                sni: "*.tcp.test".into(),
                backend: "be_tcp:vault:vault".into(),
                route: key("vault", "vault"),
            },
        ]
        .into(),
        max_path_depth: 3,
        certificates: vec![CertEntry {
            file: "certs/shop:www.pem".into(),
            pem: self_signed("www.test").into(),
            sni: "www.test".into(),
            h2: true,
            route: key("shop", "www"),
        }]
        .into(),
        ca_files: vec![].into(),
        allowlist_files: vec![].into(),
        warnings: vec![],
    };
    let http_port = free_port();
    let https_port = free_port();
    let settings = RenderSettings {
        http_bind: vec![format!("127.0.0.1:{http_port}")
            .parse::<BindAddr>()
            .unwrap()],
        https_bind: vec![format!("127.0.0.1:{https_port}")
            .parse::<BindAddr>()
            .unwrap()],
        run_dir: d.run.display().to_string(),
        maxconn: 200,
        default_cert_pem: self_signed("default"),
        ..RenderSettings::default()
    };
    let tree = render_haproxy(&plan, &settings, &Templates::embedded().unwrap()).unwrap();
    routegen_host::tree::write_tree(&tree, &d.out).unwrap();
    haproxy_check(&d.out);

    let child = Command::new(haproxy_bin())
        .arg("-db")
        .args(config::haproxy_f_args(&d.out))
        .current_dir("/")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start haproxy");
    let _proxy = Proxy(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", http_port)).is_err()
        || !d.run.join("fe_terminate.sock").exists()
    {
        assert!(Instant::now() < deadline, "haproxy did not start");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Host normalisation, fallback, path prefixes on segment boundaries.
    let cases: &[(&str, &str, u16, &str)] = &[
        ("blog.test", "/", 200, "blog / xfp=http"),
        (
            "BLOG.Test.:80",
            "/anything?q=1",
            200,
            "blog /anything?q=1 xfp=http",
        ),
        ("blog.test", "/x/y/z", 200, "deep /x/y/z xfp=http"),
        ("blog.test", "/x/y/z/", 200, "deep /x/y/z/ xfp=http"),
        ("blog.test", "/x/y/z/more", 200, "deep /x/y/z/more xfp=http"),
        ("blog.test", "/x/y/zz", 200, "blog /x/y/zz xfp=http"),
        ("blog.test", "/x/y", 200, "blog /x/y xfp=http"),
        // Wildcard: one label, exact host entries first.
        ("foo.wild.test", "/", 200, "wild / xfp=http"),
        ("foo.wild.test", "/a/b/c", 200, "wild-ab /a/b/c xfp=http"),
        ("foo.wild.test", "/a/bc", 200, "wild /a/bc xfp=http"),
        ("a.foo.wild.test", "/", 503, ""),
        ("foo_bar.wild.test", "/", 503, ""),
        // Under (/static/) does not match /static; Refuse gives 503.
        (
            "www.test",
            "/static/img/a.png",
            200,
            "static /img/a.png xfp=http",
        ),
        ("www.test", "/api/v1", 503, ""),
        // A Host carrying a path never selects a path entry.
        ("www.test/static", "/", 503, ""),
        ("unknown.test", "/", 503, ""),
    ];
    for (host, target, status, body) in cases {
        let (s, _, b) = http_get(http_port, host, target);
        assert_eq!(s, *status, "{host} {target}: {b}");
        if *status == 200 {
            assert_eq!(b, *body, "{host} {target}");
        }
    }
    let (s, head, _) = http_get(http_port, "WWW.test:80", "/static?x=1");
    assert_eq!(s, 302, "{head}");
    assert!(
        head.contains("\r\nlocation: https://www.test/static?x=1"),
        "{head}"
    );
    let (s, head, _) = http_get(http_port, "vault.test", "/ui");
    assert_eq!(s, 302);
    assert!(head.contains("location: https://vault.test/ui"), "{head}");

    // TLS: the Route's certificate (with h2 offered) for its SNI, the
    // default certificate (http/1.1 only) otherwise; routed like port 80.
    let (cn, alpn, _) = https_get(https_port, "www.test", "/");
    assert_eq!((cn.as_str(), alpn.as_deref()), ("www.test", Some("h2")));
    let (cn, alpn, (s, _, b)) = https_get(https_port, "other.test", "/");
    assert_eq!(
        (cn.as_str(), alpn.as_deref(), s),
        ("default", Some("http/1.1"), 503),
        "{b}"
    );
    // Same host without h2 on the client side: routed by host and path.
    let http11 = |sni: &str, host: &str, target: &str| {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        let c = b.build();
        let s = TcpStream::connect(("127.0.0.1", https_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let tls = c
            .configure()
            .unwrap()
            .verify_hostname(false)
            .connect(sni, s)
            .unwrap();
        exchange(tls, host, target)
    };
    let (s, head, body) = http11("www.test", "www.test", "/");
    assert_eq!((s, body.as_str()), (200, "www / xfp=https"));
    assert!(
        head.contains("\r\nstrict-transport-security: max-age=600"),
        "{head}"
    );
    assert_eq!(
        http11("www.test", "www.test", "/api/users?id=1").2,
        "api /v2/users?id=1 xfp=https"
    );
    assert_eq!(
        http11("www.test", "www.test", "/api").2,
        "api /v2 xfp=https"
    );
    assert_eq!(
        http11("www.test", "www.test", "/apix").2,
        "www /apix xfp=https"
    );
    assert_eq!(
        http11("www.test", "www.test", "/static/").2,
        "static / xfp=https"
    );
    assert_eq!(
        http11("www.test", "www.test", "/static").2,
        "www /static xfp=https"
    );

    // Passthrough: the backend's own certificate, end to end, any case of SNI.
    for sni in ["vault.test", "VAULT.test"] {
        let (cn, _, (s, _, b)) = https_get(https_port, sni, "/");
        assert_eq!(
            (cn.as_str(), s, b.as_str()),
            ("vault backend", 200, "passthrough"),
            "{sni}"
        );
    }
}

/// A Deployment scaled past `MAX_SERVERS_PER_BACKEND` (SECURITY.md,
/// "Bounds"): the Route keeps serving with 1,000 servers, the warning names
/// the Route, the count and the bound, and the tree at the cap passes
/// `haproxy -c` (its time is printed: `--nocapture`).
#[test]
fn a_service_over_the_server_bound_renders_at_the_cap_and_passes_haproxy_check() {
    use std::fmt::Write as _;
    let d = dirs();
    let mut yaml = String::from(
        "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: big\n  \
         namespace: fleet\n  creationTimestamp: \"2026-01-10T09:00:00Z\"\nspec:\n  host: \
         big.example.com\n  to:\n    kind: Service\n    name: big\n",
    );
    // Two slices of 750 ready endpoints (the API's slices hold up to 1,000).
    for slice in 0..2 {
        write!(
            yaml,
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: \
             big-{slice}\n  namespace: fleet\n  labels:\n    kubernetes.io/service-name: big\n\
             addressType: IPv4\nports:\n- name: http\n  port: 8080\nendpoints:\n"
        )
        .unwrap();
        for i in 0..750u32 {
            let n = slice * 750 + i;
            writeln!(
                yaml,
                "- addresses: [\"10.{}.{}.{}\"]\n  targetRef:\n    kind: Pod\n    name: big-{n}",
                128 + n / 65536,
                (n / 256) % 256,
                n % 256
            )
            .unwrap();
        }
    }
    let input = d.root.join("fleet.yaml");
    std::fs::write(&input, yaml).unwrap();
    let out = run(routegen()
        .arg("render")
        .args(render_args(&d, &input))
        .arg("--out")
        .arg(&d.out));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for part in [
        "fleet/big",
        "1500 ready endpoints",
        "first 1000",
        "MAX_SERVERS_PER_BACKEND",
    ] {
        assert!(stderr.contains(part), "{part:?} missing:\n{stderr}");
    }
    let backends = config::whole_config(&d.out);
    let servers = backends
        .lines()
        .filter(|l| l.trim_start().starts_with("server pod:big-"))
        .count();
    assert_eq!(servers, 1000);
    let started = std::time::Instant::now();
    haproxy_check(&d.out);
    eprintln!(
        "haproxy -c, one backend at the cap (1,000 servers): {:?}",
        started.elapsed()
    );
}
