//! nginx with real traffic (SPEC §12): Routes in YAML go through the real
//! admission, plan and nginx renderer, the tree through `Applier` (with
//! `nginx -t`), and a real nginx (Debian package, stream module) serves it
//! on 127.0.0.1 to plain HTTP and TLS clients; the servers behind it are
//! threads of this test. Then the same under 50 reloads with a bounded
//! request loop that must see zero failed requests.
//!
//! Every nginx runs in its own process group, owned by [`Nginx`], whose
//! drop kills the group even when an assertion fails. Binary:
//! `ROUTEGEN_NGINX_BIN`, else `/usr/sbin/nginx`, else `nginx` on PATH.

use routegen_core::testkit::certs;
use routegen_testsupport::e2e::free_port;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use certs::{CertSpec, Issued};
use openssl::ssl::{SslAcceptor, SslConnector, SslMethod, SslVerifyMode};
use routegen_core::plan::{self, PlanSettings};
use routegen_core::testkit::RouteBuilder;
use routegen_core::RouterSettings;
use routegen_host::apply::{Applier, ApplyOutcome, Validator};
use routegen_host::reload::nginx::{reload, NginxReload};
use routegen_render::{self as render, BindAddr, RenderSettings, Templates};
use routegen_testsupport::e2e::{loopback_service_yaml, nginx_bin};

// ---------------------------------------------------------------------------
// Servers behind nginx.

/// Answer one HTTP/1.1 request on `stream`:
/// `<id> <target> xfp=<X-Forwarded-Proto> xff=<X-Forwarded-For>`.
fn answer<S: Read + Write>(id: &str, mut stream: S) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 65536 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("").to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
            .unwrap_or_else(|| "-".into())
    };
    let body = format!(
        "{id} {target} xfp={} xff={}",
        header("x-forwarded-proto"),
        header("x-forwarded-for")
    );
    let resp = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes());
    let _ = stream.flush();
}

/// A plain HTTP server (one thread per connection); returns its port.
fn echo_server(id: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                answer(id, stream);
            });
        }
    });
    port
}

/// A TLS server presenting `cert` (key + chain PEM). With `http`, it
/// answers HTTP like [`echo_server`]; else it answers `passthrough <id>`.
fn tls_server(id: &'static str, pem: String, http: bool) -> u16 {
    let key = openssl::pkey::PKey::private_key_from_pem(pem.as_bytes()).unwrap();
    let chain = openssl::x509::X509::stack_from_pem(pem.as_bytes()).unwrap();
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    b.set_private_key(&key).unwrap();
    b.set_certificate(&chain[0]).unwrap();
    for extra in chain.iter().skip(1) {
        b.add_extra_chain_cert(extra.clone()).unwrap();
    }
    let acceptor = Arc::new(b.build());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let acceptor = acceptor.clone();
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let Ok(mut tls) = acceptor.accept(stream) else {
                    return;
                };
                if http {
                    answer(id, tls);
                } else {
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf);
                    let body = format!("passthrough {id}");
                    let _ = tls.write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    );
                    let _ = tls.shutdown();
                }
            });
        }
    });
    port
}

fn key_and_chain(issued: &Issued, ca: Option<&Issued>) -> String {
    let mut pem = issued.key_pem();
    pem.push_str(&issued.cert_pem());
    if let Some(ca) = ca {
        pem.push_str(&ca.cert_pem());
    }
    pem
}

// ---------------------------------------------------------------------------
// Clients.

#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: String,
}

fn exchange<S: Read + Write>(mut stream: S, host: &str, target: &str) -> std::io::Result<Resp> {
    let req = format!("GET {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    stream.write_all(req.as_bytes())?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    let mut body = Vec::new();
    match length {
        Some(n) => {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        }
        None => {
            let _ = reader.read_to_end(&mut body);
        }
    }
    Ok(Resp {
        status,
        head: head.to_ascii_lowercase(),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn http_get(port: u16, host: &str, target: &str) -> std::io::Result<Resp> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    exchange(s, host, target)
}

struct TlsInfo {
    cn: String,
    alpn: Option<String>,
}

/// TLS to nginx with `sni`, offering `alpn`; then one HTTP/1.1 request
/// unless h2 was negotiated.
fn https_get(
    port: u16,
    sni: &str,
    alpn: &[u8],
    target: &str,
) -> Result<(TlsInfo, Option<Resp>), String> {
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_alpn_protos(alpn).unwrap();
    let connector = b.build();
    let s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut cfg = connector.configure().unwrap();
    cfg.set_verify_hostname(false);
    let tls = cfg.connect(sni, s).map_err(|e| e.to_string())?;
    let cn = tls
        .ssl()
        .peer_certificate()
        .and_then(|c| {
            c.subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .map(|e| String::from_utf8_lossy(e.data().as_slice()).into_owned())
        })
        .unwrap_or_default();
    let alpn = tls
        .ssl()
        .selected_alpn_protocol()
        .map(|p| String::from_utf8_lossy(p).into_owned());
    let info = TlsInfo { cn, alpn };
    if info.alpn.as_deref() == Some("h2") {
        return Ok((info, None));
    }
    let resp = exchange(tls, sni, target).map_err(|e| e.to_string())?;
    Ok((info, Some(resp)))
}

const H1: &[u8] = b"\x08http/1.1";
const H2_H1: &[u8] = b"\x02h2\x08http/1.1";

// ---------------------------------------------------------------------------
// Manifests.

/// Route `ns/name` for `host` as every Route of these tests starts: created
/// 2026-01-01T00:00:00Z, uid `<ns>-<name>`, `spec.port.targetPort: http`.
fn route(ns: &str, name: &str, host: &str) -> RouteBuilder {
    RouteBuilder::new(ns, name)
        .created("2026-01-01T00:00:00Z")
        .uid(&format!("{ns}-{name}"))
        .host(host)
        .target_port("http")
}

/// A Service and its EndpointSlice: one ready endpoint 127.0.0.1:`port`;
/// each document followed by `---`.
fn service(ns: &str, name: &str, port: u16) -> String {
    loopback_service_yaml(ns, name, port, true) + "---\n"
}

// ---------------------------------------------------------------------------
// The proxy.

/// A running nginx (master in its own process group); drop kills the group.
struct Nginx {
    child: Child,
}

impl Nginx {
    fn master(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

struct Env {
    dir: tempfile::TempDir,
    http_port: u16,
    https_port: u16,
    service_ca: String,
    default_cert: routegen_host::defaultcert::DefaultCert,
    applier: Applier,
    /// The router's global header actions.
    header_actions: routegen_core::values::HeaderActions,
}

impl Env {
    fn new(service_ca: &Issued) -> Env {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        let default = CertSpec::leaf(&["default.invalid"])
            .cn("default")
            .self_signed();
        let pem = key_and_chain(&default, None);
        std::fs::write(dir.path().join("default.pem"), &pem).unwrap();
        let default_cert =
            routegen_host::defaultcert::load_file(&dir.path().join("default.pem")).unwrap();
        let applier = Applier::open_with(
            &dir.path().join("out"),
            Validator::Nginx { bin: nginx_bin() },
            3,
        )
        .unwrap();
        Env {
            http_port: free_port(),
            https_port: free_port(),
            service_ca: service_ca.cert_pem(),
            default_cert,
            applier,
            header_actions: Default::default(),
            dir,
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// Admit, plan, render for nginx and apply (validated by `nginx -t`).
    /// Returns the nginx warnings.
    fn apply(&mut self, manifests: &str) -> Vec<String> {
        let loaded =
            routegen_host::source::files::load_str("e2e.yaml", manifests, "default").unwrap();
        let router = RouterSettings {
            allow_wildcard_routes: true,
            ..RouterSettings::default()
        };
        let verdicts = routegen_core::admit::admit_at(&loaded.snapshot, &router, 0);
        for v in &verdicts {
            assert!(v.is_admitted(), "{} rejected: {:?}", v.key, v.rejection());
        }
        let plan = plan::plan(
            &verdicts,
            &loaded.snapshot,
            &PlanSettings {
                service_ca_pem: Some(self.service_ca.clone()),
                allow_loopback_endpoints: true,
                default_cert_sha256: Some(self.default_cert.sha256),
                ..PlanSettings::default()
            },
        );
        let settings = RenderSettings {
            http_bind: vec![format!("127.0.0.1:{}", self.http_port)
                .parse::<BindAddr>()
                .unwrap()],
            https_bind: vec![format!("127.0.0.1:{}", self.https_port)
                .parse::<BindAddr>()
                .unwrap()],
            run_dir: self.run_dir().display().to_string(),
            maxconn: 1024,
            hard_stop_after: "20s".parse().unwrap(),
            max_old_workers: 5,
            default_cert_pem: self.default_cert.pem.clone(),
            header_actions: self.header_actions.clone(),
            metrics_bind: Vec::new(),
            log_target: None,
            events_log: false,
        };
        let out = render::render_nginx(&plan, &settings, &Templates::embedded().unwrap()).unwrap();
        match self.applier.apply(&out.tree) {
            Ok(ApplyOutcome::Applied { .. } | ApplyOutcome::Unchanged) => {}
            Err(e) => panic!("apply: {e}"),
        }
        out.warnings
    }

    fn start(&self) -> Nginx {
        let log = std::fs::File::create(self.dir.path().join("nginx.log")).unwrap();
        let child = Command::new(nginx_bin())
            .arg("-p")
            .arg(format!("{}/", self.run_dir().display()))
            .arg("-c")
            .arg(self.applier.current_config())
            .arg("-e")
            .arg("stderr")
            .arg("-g")
            .arg("daemon off;")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start nginx");
        let nginx = Nginx { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.http_port)).is_err()
            || TcpStream::connect(("127.0.0.1", self.https_port)).is_err()
            || !self.run_dir().join("nginx-tls-h1.sock").exists()
            || !self.run_dir().join("nginx.pid").exists()
        {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(self.dir.path().join("nginx.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }
}

/// Counts assertions so the test can report how many it made.
#[derive(Default)]
struct Checks(usize);

impl Checks {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, got: T, want: T, what: &str) {
        self.0 += 1;
        assert_eq!(got, want, "{what}");
    }
    fn ok(&mut self, cond: bool, what: &str) {
        self.0 += 1;
        assert!(cond, "{what}");
    }
}

#[test]
fn nginx_routes_live_traffic() {
    let ca = CertSpec::ca("e2e service CA").self_signed();
    let mut env = Env::new(&ca);

    // Servers.
    let p_blog = echo_server("blog");
    let p_deep = echo_server("deep");
    let p_under = echo_server("under");
    let p_wild = echo_server("wild");
    let p_exact = echo_server("exact-api");
    let p_a = echo_server("a");
    let p_b = echo_server("b");
    let p_zero = echo_server("zero");
    let p_edge = echo_server("edge");
    let p_allow = echo_server("allow");
    let p_none = echo_server("none");
    let re_leaf = CertSpec::leaf(&["resvc.e2e.svc"]).signed_by(&ca);
    let p_re = tls_server("re", key_and_chain(&re_leaf, None), true);
    let bad_leaf = CertSpec::leaf(&["wrong.example"]).signed_by(&ca);
    let p_rebad = tls_server("rebad", key_and_chain(&bad_leaf, None), true);
    let pt_cert = CertSpec::leaf(&["pt.test"])
        .cn("passthrough backend")
        .self_signed();
    let p_pt = tls_server("pt", key_and_chain(&pt_cert, None), false);
    let p_ptnone = tls_server("ptnone", key_and_chain(&pt_cert, None), false);

    let edge_cert = CertSpec::leaf(&["edge.test"]).self_signed();
    let routes = [
        route("e2e", "blog", "blog.test").to("blog", None),
        route("e2e", "deep", "blog.test")
            .path("/x/y")
            .to("deep", None),
        route("e2e", "under", "blog.test")
            .path("/x/")
            .to("under", None),
        route("e2e", "wild", "any.wild.test")
            .wildcard()
            .to("wild", None),
        route("e2e", "exact", "exact.wild.test")
            .path("/api")
            .to("exact", None),
        route("e2e", "ab", "ab.test")
            .to("a", Some(30))
            .alt("b", Some(10))
            .alt("zero", Some(0)),
        route("e2e", "edge", "edge.test")
            .to("edge", None)
            .tls("edge")
            .insecure("Redirect")
            .cert(&edge_cert, None),
        route("e2e", "allow", "allow.test")
            .to("allow", None)
            .tls("edge")
            .insecure("Allow"),
        route("e2e", "none", "none.test")
            .to("none", None)
            .tls("edge")
            .insecure("None"),
        route("e2e", "re", "re.test")
            .to("resvc", None)
            .tls("reencrypt"),
        route("e2e", "rebad", "rebad.test")
            .to("rebad", None)
            .tls("reencrypt"),
        route("e2e", "pt", "pt.test")
            .to("pt", None)
            .tls("passthrough")
            .insecure("Redirect"),
        route("e2e", "ptnone", "ptnone.test")
            .to("ptnone", None)
            .tls("passthrough")
            .insecure("None"),
    ];
    let mut m = String::new();
    for r in &routes {
        m += &r.to_yaml();
        m += "---\n";
    }
    for (name, port) in [
        ("blog", p_blog),
        ("deep", p_deep),
        ("under", p_under),
        ("wild", p_wild),
        ("exact", p_exact),
        ("a", p_a),
        ("b", p_b),
        ("zero", p_zero),
        ("edge", p_edge),
        ("allow", p_allow),
        ("none", p_none),
        ("resvc", p_re),
        ("rebad", p_rebad),
        ("pt", p_pt),
        ("ptnone", p_ptnone),
    ] {
        m += &service("e2e", name, port);
    }
    let warnings = env.apply(&m);
    eprintln!("nginx warnings: {warnings:#?}");
    let _nginx = env.start();
    let (hp, sp) = (env.http_port, env.https_port);
    let mut c = Checks::default();

    // Host and path routing: segment boundaries, longest path first, the
    // host's fallback, Under paths without nginx's automatic redirect.
    for (host, target, status, body) in [
        ("blog.test", "/", 200, "blog /"),
        ("BLOG.test.", "/q?x=1", 200, "blog /q?x=1"),
        ("blog.test:80", "/x", 200, "blog /x"),
        ("blog.test", "/x/", 200, "under /x/"),
        ("blog.test", "/x/z", 200, "under /x/z"),
        ("blog.test", "/x/y", 200, "deep /x/y"),
        ("blog.test", "/x/y/", 200, "deep /x/y/"),
        ("blog.test", "/x/y/z?q", 200, "deep /x/y/z?q"),
        ("blog.test", "/x/yz", 200, "under /x/yz"),
        ("blog.test", "/xx", 200, "blog /xx"),
        ("blog.test", "/a%20b", 200, "blog /a%20b"),
        // Wildcard: one label; the exact host's keys first, then the wildcard's.
        ("foo.wild.test", "/", 200, "wild /"),
        ("exact.wild.test", "/api/v1", 200, "exact-api /api/v1"),
        ("exact.wild.test", "/api", 200, "exact-api /api"),
        ("exact.wild.test", "/apix", 200, "wild /apix"),
        ("exact.wild.test", "/", 200, "wild /"),
        ("a.b.wild.test", "/", 503, ""),
        ("wild.test", "/", 503, ""),
        ("unknown.test", "/", 503, ""),
    ] {
        let r = http_get(hp, host, target).unwrap();
        c.eq(r.status, status, &format!("{host} {target}: {r:?}"));
        if status == 200 {
            c.eq(
                r.body.clone(),
                format!("{body} xfp=http xff=127.0.0.1"),
                &format!("{host} {target}"),
            );
        }
    }

    // Weights: a 30, b 10 (servers 256 and 85), zero 0 (never chosen).
    let (mut a, mut b, mut other) = (0, 0, 0);
    for _ in 0..400 {
        let r = http_get(hp, "ab.test", "/").unwrap();
        match r.body.split(' ').next() {
            Some("a") => a += 1,
            Some("b") => b += 1,
            _ => other += 1,
        }
    }
    eprintln!("weights: a={a} b={b} other={other}");
    c.eq(other, 0, "weight-0 service never receives traffic");
    c.ok((70..=130).contains(&b), &format!("b ~ 100 of 400, got {b}"));

    // Edge, own unique certificate: h2 offered; port 80 redirects.
    let (info, _) = https_get(sp, "edge.test", H2_H1, "/").unwrap();
    c.eq(info.cn.as_str(), "edge.test", "edge certificate");
    c.eq(
        info.alpn.as_deref(),
        Some("h2"),
        "h2 on a unique certificate",
    );
    let (info, r) = https_get(sp, "EDGE.test", H1, "/p?q=1").unwrap();
    c.eq(info.cn.as_str(), "edge.test", "SNI is case-insensitive");
    let r = r.unwrap();
    c.eq(
        (r.status, r.body.as_str()),
        (200, "edge /p?q=1 xfp=https xff=127.0.0.1"),
        "edge over TLS keeps the client address through the PROXY hop",
    );
    let r = http_get(hp, "Edge.Test:80", "/p?q=1").unwrap();
    c.eq(r.status, 302, "Redirect policy");
    c.ok(
        r.head.contains("\r\nlocation: https://edge.test/p?q=1\r\n"),
        &format!("redirect location: {}", r.head),
    );

    // Edge without a certificate (default certificate): http/1.1 only.
    let (info, r) = https_get(sp, "allow.test", H2_H1, "/s").unwrap();
    c.eq(info.cn.as_str(), "default", "default certificate");
    c.eq(
        info.alpn.as_deref(),
        Some("http/1.1"),
        "no h2 on the default certificate",
    );
    c.eq(
        r.unwrap().body,
        "allow /s xfp=https xff=127.0.0.1".to_string(),
        "allow over TLS",
    );
    // Allow: served on port 80 too. None: 503 on port 80, served on TLS.
    let r = http_get(hp, "allow.test", "/s").unwrap();
    c.eq(
        (r.status, r.body.as_str()),
        (200, "allow /s xfp=http xff=127.0.0.1"),
        "Allow policy",
    );
    c.eq(
        http_get(hp, "none.test", "/").unwrap().status,
        503,
        "None policy",
    );
    let (_, r) = https_get(sp, "none.test", H1, "/").unwrap();
    c.eq(r.unwrap().status, 200, "None policy route over TLS");
    // No SNI / unknown SNI: default certificate, 503.
    let (info, r) = https_get(sp, "nothing.test", H2_H1, "/").unwrap();
    c.eq(
        (info.cn.as_str(), info.alpn.as_deref(), r.unwrap().status),
        ("default", Some("http/1.1"), 503),
        "unknown SNI",
    );

    // Reencrypt: the server is verified against the service CA and
    // <service>.<namespace>.svc; a wrong name is refused (502).
    let (_, r) = https_get(sp, "re.test", H1, "/r").unwrap();
    let r = r.unwrap();
    c.eq(
        (r.status, r.body.as_str()),
        (200, "re /r xfp=https xff=127.0.0.1"),
        "reencrypt",
    );
    let (_, r) = https_get(sp, "rebad.test", H1, "/").unwrap();
    c.eq(
        r.unwrap().status,
        502,
        "reencrypt to a server with the wrong name",
    );

    // Passthrough: the backend's own certificate, bytes untouched.
    for sni in ["pt.test", "PT.Test"] {
        let (info, r) = https_get(sp, sni, H1, "/").unwrap();
        c.eq(
            info.cn.as_str(),
            "passthrough backend",
            "passthrough certificate",
        );
        c.eq(
            r.unwrap().body,
            "passthrough pt".to_string(),
            "passthrough body",
        );
    }
    let r = http_get(hp, "pt.test", "/ui?a=b").unwrap();
    c.eq(r.status, 302, "passthrough Redirect on port 80");
    c.ok(
        r.head.contains("location: https://pt.test/ui?a=b"),
        &format!("passthrough redirect: {}", r.head),
    );
    let (info, _) = https_get(sp, "ptnone.test", H1, "/").unwrap();
    c.eq(
        info.cn.as_str(),
        "passthrough backend",
        "passthrough None over TLS",
    );
    c.eq(
        http_get(hp, "ptnone.test", "/").unwrap().status,
        503,
        "passthrough None on port 80",
    );

    eprintln!("nginx e2e: {} assertions", c.0);
}

#[test]
fn nginx_reloads_drop_no_request() {
    const RELOADS: usize = 50;
    let ca = CertSpec::ca("e2e reload CA").self_signed();
    let mut env = Env::new(&ca);
    let p_one = echo_server("one");
    let p_two = echo_server("two");
    let manifests = |generation: usize| {
        let mut m = String::new();
        m += &route("rl", "web", "web.test")
            .to("one", None)
            .tls("edge")
            .insecure("Allow")
            .to_yaml();
        m += "---\n";
        // Changes every generation: the path and the weight split.
        m += &route("rl", "gen", "web.test")
            .path(&format!("/gen{generation}"))
            .to("one", Some((1 + generation % 7) as i64))
            .alt("two", Some(10))
            .to_yaml();
        m += "---\n";
        m += &service("rl", "one", p_one);
        m += &service("rl", "two", p_two);
        m
    };
    env.apply(&manifests(0));
    let nginx = env.start();
    let (hp, sp) = (env.http_port, env.https_port);

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for worker in 0..3 {
        let (stop, ok, failures) = (stop.clone(), ok.clone(), failures.clone());
        clients.push(std::thread::spawn(move || {
            // Bounded: at most 20,000 requests or 120 s per client.
            let deadline = Instant::now() + Duration::from_secs(120);
            for i in 0..20_000 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let result = if (i + worker) % 2 == 0 {
                    http_get(hp, "web.test", "/").map_err(|e| e.to_string())
                } else {
                    https_get(sp, "web.test", H1, "/")
                        .and_then(|(_, r)| r.ok_or_else(|| "no response".to_string()))
                };
                match result {
                    Ok(r) if r.status == 200 && r.body.starts_with("one / ") => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures.lock().unwrap().push(format!("{r:?}")),
                    Err(e) => failures.lock().unwrap().push(e),
                }
            }
        }));
    }

    let mut durations = Vec::new();
    for generation in 1..=RELOADS {
        env.apply(&manifests(generation));
        // Alternate the two ways of asking: SIGHUP to the master, and
        // `nginx -s reload` with the same prefix and configuration.
        let method = if generation % 2 == 0 {
            NginxReload::Pid(nginx.master())
        } else {
            NginxReload::Command {
                bin: nginx_bin(),
                prefix: env.run_dir(),
                config: env.applier.current_config(),
            }
        };
        let outcome = reload(&method, Duration::from_secs(10), Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("reload {generation}: {e}"));
        durations.push(outcome.duration);
        // The new configuration is served.
        let r = http_get(hp, "web.test", &format!("/gen{generation}")).unwrap();
        assert_eq!(r.status, 200, "generation {generation}: {r:?}");
        std::thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    let ok = ok.load(Ordering::Relaxed);
    let max = durations.iter().max().unwrap();
    eprintln!(
        "{RELOADS} reloads (longest {max:?}), {ok} requests served, {} failed",
        failures.len()
    );
    assert!(ok > 200, "the request loop ran: {ok}");
    assert!(
        failures.is_empty(),
        "{} failed requests across {RELOADS} reloads, first: {:?}",
        failures.len(),
        failures.iter().take(5).collect::<Vec<_>>()
    );
}

#[test]
fn nginx_t_refuses_a_bad_tree_and_current_stays() {
    use routegen_host::apply::ApplyError;
    use routegen_render::output::{OutputFile, OutputTree};
    let dir = tempfile::tempdir().unwrap();
    let tree = |extra: &str| {
        let mut t = OutputTree::new();
        t.insert(
            "nginx.conf".into(),
            OutputFile::public(format!(
                "pid nginx.pid;\nerror_log stderr;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path client_body_temp;\n  proxy_temp_path proxy_temp;\n  fastcgi_temp_path fastcgi_temp;\n  uwsgi_temp_path uwsgi_temp;\n  scgi_temp_path scgi_temp;\n  server {{ listen 127.0.0.1:1; {extra} }}\n}}\n"
            )),
        );
        t
    };
    let mut applier = Applier::open_with(
        &dir.path().join("out"),
        Validator::Nginx { bin: nginx_bin() },
        3,
    )
    .unwrap();
    assert!(matches!(
        applier.apply(&tree("return 200;")),
        Ok(ApplyOutcome::Applied { .. })
    ));
    let good = applier.current_id().unwrap().to_string();
    assert!(applier.current_config().ends_with("current/nginx.conf"));
    match applier.apply(&tree("no_such_directive on;")) {
        Err(ApplyError::Invalid {
            output,
            kept,
            validator,
            ..
        }) => {
            assert_eq!(validator, "nginx -t");
            assert!(output.contains("no_such_directive"), "{output}");
            assert!(kept.join("nginx.conf").exists());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(applier.current_id(), Some(good.as_str()));
    // A missing binary is a clear error.
    let mut missing = Applier::open_with(
        &dir.path().join("out2"),
        Validator::Nginx {
            bin: "/nonexistent/nginx".into(),
        },
        3,
    )
    .unwrap();
    match missing.apply(&tree("return 200;")) {
        Err(ApplyError::HaproxyMissing { bin, .. }) => assert!(bin.contains("nonexistent")),
        other => panic!("{other:?}"),
    }
}

// ---------------------------------------------------------------------------
// The sidecar with the nginx target.

/// Kills `routegen run` (and what it started) when the test ends, however.
struct RunProcess(Child);

impl Drop for RunProcess {
    fn drop(&mut self) {
        let pgid = nix::unistd::Pid::from_raw(-(self.0.id() as i32));
        let _ = nix::sys::signal::kill(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.wait();
    }
}

/// `routegen run --target nginx` on the directory `manifests`, with
/// `--out`, `--run-dir` and `--state-dir` under `base` (`out`, `run`,
/// `state`), the given `--reload`, and HTTP, HTTPS and operations ports on
/// 127.0.0.1; loopback endpoints allowed.
fn nginx_run(
    base: &std::path::Path,
    manifests: &std::path::Path,
    reload: &str,
    ports: [u16; 3],
) -> Command {
    let [http_port, https_port, listen] = ports;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routegen"));
    cmd.arg("run")
        .arg("--source")
        .arg(format!("dir:{}", manifests.display()))
        .arg("--out")
        .arg(base.join("out"))
        .args(["--target", "nginx", "--reload", reload])
        .arg("--nginx-bin")
        .arg(nginx_bin())
        .arg("--run-dir")
        .arg(base.join("run"))
        .arg("--state-dir")
        .arg(base.join("state"))
        .args(["--http-bind", &format!("127.0.0.1:{http_port}")])
        .args(["--https-bind", &format!("127.0.0.1:{https_port}")])
        .args(["--listen", &format!("127.0.0.1:{listen}")])
        .arg("--allow-loopback-endpoints")
        .env_remove("KUBERNETES_SERVICE_HOST");
    cmd
}

/// `routegen run --target nginx`: trees validated with the real `nginx -t`
/// and made current atomically; after each new tree the `--reload command:`
/// reloads the running nginx, which then serves the edited Route.
#[test]
fn run_loop_with_the_nginx_target() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    let out = dir.path().join("out");
    let run_dir = dir.path().join("run");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::create_dir_all(&run_dir).unwrap();
    let one = echo_server("one");
    let two = echo_server("two");
    let write = |port: u16| {
        let text = route("web", "site", "site.test").to("site", None).to_yaml()
            + "---\n"
            + &service("web", "site", port);
        let tmp = manifests.join(".site.yaml.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, manifests.join("site.yaml")).unwrap();
    };
    write(one);
    let (http_port, https_port, listen) = (free_port(), free_port(), free_port());
    let prefix = format!("{}/", run_dir.display());
    let current = out.join("current/nginx.conf");
    let reload = format!(
        "command:{} -s reload -p {prefix} -c {}",
        nginx_bin().display(),
        current.display()
    );
    let child = nginx_run(
        dir.path(),
        &manifests,
        &reload,
        [http_port, https_port, listen],
    )
    .args(["--maxconn", "1024", "--debounce", "50ms"])
    .args(["--min-reload-interval", "100ms"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .process_group(0)
    .spawn()
    .unwrap();
    let _run = RunProcess(child);

    // The first tree, validated by nginx -t, becomes current.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !current.exists() {
        assert!(std::time::Instant::now() < deadline, "no current tree");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _nginx = Nginx {
        child: Command::new(nginx_bin())
            .arg("-p")
            .arg(&prefix)
            .arg("-c")
            .arg(&current)
            .args(["-e", "stderr", "-g", "daemon off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    };
    let until = |want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(r) = http_get(http_port, "site.test", "/x") {
                if r.status == 200 && r.body.starts_with(want) {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never answered {want}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    until("one");
    // Edit the Route's endpoints: a new tree, nginx -t, swap, reload.
    write(two);
    until("two");
    let kept = std::fs::read_dir(out.join("trees")).unwrap().count();
    assert!(kept >= 2, "history keeps the previous good tree ({kept})");
}

/// Header actions on nginx (issue 19): literal values map exactly (the
/// Route's request actions win over the router's, the router's response
/// actions over the Route's); a dynamic value refuses that Route on nginx
/// (503, warning naming the part) while the others are served.
#[test]
fn nginx_header_actions() {
    use routegen_testsupport::e2e::{self as harness, Request};
    use serde_json::json;

    let ca = CertSpec::ca("e2e service CA").self_signed();
    let mut env = Env::new(&ca);
    let set = |name: &str, value: &str| json!({"name": name, "action": {"type": "Set", "set": {"value": value}}});
    let delete = |name: &str| json!({"name": name, "action": {"type": "Delete"}});
    env.header_actions = routegen_core::admit::validation::validate_global_header_actions(
        &json!({
            "request": [set("X-Who", "router"), delete("X-Debug")],
            "response": [set("X-Who", "router"), delete("x-echo-sni")],
        }),
        "actions",
    )
    .unwrap();
    let p_app = harness::echo_server("app");
    let p_dyn = harness::echo_server("dyn");
    let hostile = r#"it's 100%% "q" # \x  two  spaces {;}"#;
    let routes = [
        route("e2e", "app", "app.test")
            .to("app", None)
            .with_spec(|s| {
                s.http_headers = Some(json!({"actions": {
                    "request": [set("X-Who", "route"), set("X-Literal", hostile), delete("X-Internal")],
                    "response": [set("X-Who", "route"), set("X-Frame-Options", "SAMEORIGIN"), delete("x-echo-tls")],
                }}));
            }),
        route("e2e", "dyn", "dyn.test")
            .to("dyn", None)
            .with_spec(|s| {
                s.http_headers = Some(json!({"actions": {
                    "request": [set("X-Lower", "%[req.hdr(X-In),lower]")],
                }}));
            }),
    ];
    let mut m = String::new();
    for r in &routes {
        m += &r.to_yaml();
        m += "---\n";
    }
    m += &service("e2e", "app", p_app);
    m += &service("e2e", "dyn", p_dyn);
    let warnings = env.apply(&m);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("e2e/dyn: nginx: spec.httpHeaders")
                && w.contains("%[req.hdr(X-In),lower]")),
        "{warnings:?}"
    );
    assert!(
        !warnings.iter().any(|w| w.starts_with("e2e/app:")),
        "{warnings:?}"
    );
    let _nginx = env.start();

    let extra = [
        ("x-echo-headers", "x-who,x-literal,x-internal,x-debug"),
        ("X-Internal", "secret"),
        ("X-Debug", "1"),
        ("X-Who", "client"),
    ];
    let req = |host| Request {
        host,
        target: "/",
        extra: &extra,
        keep_alive: false,
    };
    let resp = harness::http_request(env.http_port, &req("app.test")).unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("x-echo-h-x-who"), Some("route"));
    assert_eq!(
        resp.header("x-echo-h-x-literal"),
        Some(r#"it's 100% "q" # \x  two  spaces {;}"#)
    );
    assert_eq!(resp.header("x-echo-h-x-internal"), Some("-"));
    assert_eq!(resp.header("x-echo-h-x-debug"), Some("-"));
    assert_eq!(resp.headers_all("x-who"), ["router"]);
    assert_eq!(resp.header("x-frame-options"), Some("SAMEORIGIN"));
    assert_eq!(resp.header("x-echo-tls"), None);
    assert_eq!(resp.header("x-echo-sni"), None);

    let resp = harness::http_request(env.http_port, &req("dyn.test")).unwrap();
    assert_eq!(resp.status, 503, "refused on nginx: {resp:?}");
}

/// Issue 17, item 2: on the nginx target, `run`'s messages name nginx, not
/// HAProxy. A template nginx refuses makes every tree fail `nginx -t`
/// (even without any Route): the log and `/readyz` say that nginx refused
/// it, and nothing says HAProxy.
#[test]
fn run_messages_name_nginx_when_nginx_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    let templates = dir.path().join("templates");
    let out = dir.path().join("out");
    let run_dir = dir.path().join("run");
    for d in [&manifests, &templates, &run_dir] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(
        manifests.join("site.yaml"),
        route("web", "site", "site.test").to("site", None).to_yaml()
            + "---\n"
            + &service("web", "site", free_port()),
    )
    .unwrap();
    std::fs::write(
        templates.join("nginx-modules.tera"),
        "load_module /nonexistent/routegen-test-missing-module.so;\n",
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let (http_port, https_port, listen) = (free_port(), free_port(), free_port());
    let child = nginx_run(
        dir.path(),
        &manifests,
        "command:true",
        [http_port, https_port, listen],
    )
    .arg("--template-dir")
    .arg(&templates)
    .args(["--debounce", "50ms"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap())
    .process_group(0)
    .spawn()
    .unwrap();
    let _run = RunProcess(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    let readyz = loop {
        if let Ok(r) = http_get(listen, "localhost", "/readyz") {
            if r.body.contains("refused") {
                break r;
            }
        }
        assert!(Instant::now() < deadline, "/readyz never said why");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(readyz.status, 503, "{}", readyz.body);
    assert!(
        readyz
            .body
            .contains("no valid configuration yet: nginx refused it (the configuration is refused even without any Route:"),
        "{}",
        readyz.body
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("nginx refused the configuration and no Route alone could be left out"),
        "{text}"
    );
    assert!(text.contains("nginx -t refused the tree"), "{text}");
    assert!(!text.contains("HAProxy"), "{text}");
    assert!(!out.join("current").exists());
}
