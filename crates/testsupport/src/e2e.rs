//! End-to-end helpers: manifests, backend servers, a small HTTP/1.1 (and
//! just enough HTTP/2) client, and a harness that renders a manifest set with
//! the real `routegen render` and serves it with the real HAProxy in
//! master-worker mode.
//!
//! Everything listens on 127.0.0.1 only. Every loop is bounded in count and
//! every socket operation in time. Backend servers run in detached threads
//! for the life of the test binary; HAProxy is killed (whole process group)
//! when its [`Router`] is dropped, even when an assertion failed.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::ssl::{
    NameType, SslAcceptor, SslConnector, SslMethod, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::X509;
use routegen_core::testkit::certs::Issued;
use routegen_core::testkit::{EndpointSliceBuilder, RouteBuilder, ServiceBuilder};
use routegen_host::reload::{HaproxyProcess, ReloadMethod, ReloadOptions, Reloader, SpawnOptions};
use serde_json::{json, Value};

/// Bound of every single socket read or write.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response (or request head) we are willing to buffer.
const MAX_MESSAGE: usize = 1 << 20;

// ---------------------------------------------------------------------------
// Binaries and ports

/// `ROUTEGEN_HAPROXY_BIN`, else `/usr/sbin/haproxy`, else `haproxy` on PATH.
pub fn haproxy_bin() -> PathBuf {
    proxy_bin("ROUTEGEN_HAPROXY_BIN", "haproxy")
}

/// `ROUTEGEN_NGINX_BIN`, else `/usr/sbin/nginx`, else `nginx` on PATH.
pub fn nginx_bin() -> PathBuf {
    proxy_bin("ROUTEGEN_NGINX_BIN", "nginx")
}

/// `$variable`, else the Debian path `/usr/sbin/<name>`, else `name` on PATH.
fn proxy_bin(variable: &str, name: &str) -> PathBuf {
    if let Ok(bin) = std::env::var(variable) {
        return bin.into();
    }
    let debian = Path::new("/usr/sbin").join(name);
    if debian.exists() {
        return debian;
    }
    name.into()
}

/// A port on 127.0.0.1 that was free a moment ago, for a server the test
/// starts later (HAProxy, nginx, routegen). Taken below the kernel's
/// ephemeral range (`ip_local_port_range`), so that no client connection
/// of a test running beside it can take it as its source port in the
/// meantime (a port the kernel hands out for `bind(0)` can be); each call
/// of a process tries the next port of its own sequence. Falls back to a
/// kernel-chosen port when the range below is too small.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let span = low.saturating_sub(10_000);
    if span >= 1_000 {
        let start = std::process::id().wrapping_mul(7_919) % span;
        for _ in 0..span {
            let port = 10_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span;
            if TcpListener::bind(("127.0.0.1", port as u16)).is_ok() {
                return port as u16;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// SHA-256 fingerprint of a certificate, lower-case hex.
pub fn fingerprint(cert: &X509) -> String {
    hex(&cert.digest(MessageDigest::sha256()).unwrap())
}

/// The subject CN of a certificate (empty when it has none).
pub fn common_name(cert: &X509) -> String {
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .map(|e| e.data().to_string().unwrap())
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Key and certificate in one PEM (the `--default-cert` and server format).
pub fn key_and_cert_pem(issued: &Issued) -> String {
    format!("{}{}", issued.key_pem(), issued.cert_pem())
}

// ---------------------------------------------------------------------------
// Manifests (JSON, written as one `kind: List`)

/// The harness's Route `ns/name` for `host`, to no service yet: the
/// [`RouteBuilder`] with uid `uid-<ns>-<name>`, creation time
/// `2026-01-01T00:00:00Z` and `spec.port.targetPort: http` (the port name
/// of every [`service`]). Add the rest, then `to_json()`.
pub fn route(ns: &str, name: &str, host: &str) -> RouteBuilder {
    RouteBuilder::new(ns, name)
        .host(host)
        .uid(&format!("uid-{ns}-{name}"))
        .created("2026-01-01T00:00:00Z")
        .target_port("http")
}

/// A Service `ns/name` (port `http`: 80 → 8080) and one EndpointSlice
/// `<name>-<i>` per endpoint `(pod name, port)`: 127.0.0.1, ready, port
/// `http`/TCP, targetRef the pod.
pub fn service(ns: &str, name: &str, endpoints: &[(&str, u16)]) -> Vec<Value> {
    let mut out = vec![ServiceBuilder::new(ns, name)
        .port("http", 80, 8080)
        .to_json()];
    for (i, (pod, port)) in endpoints.iter().enumerate() {
        out.push(
            EndpointSliceBuilder::new(ns, &format!("{name}-{i}"), name)
                .tcp_port("http", i32::from(*port))
                .pod_endpoint("127.0.0.1", pod)
                .to_json(),
        );
    }
    out
}

/// As manifest text: a Service `ns/name` (port `http`: 80 → `port`), `---`,
/// and its EndpointSlice `<name>-1` (port `http`: `port`) with one endpoint,
/// 127.0.0.1 (`conditions.ready: true` when `ready`, no conditions
/// otherwise). For tests that write manifest files.
pub fn loopback_service_yaml(ns: &str, name: &str, port: u16, ready: bool) -> String {
    let port = i32::from(port);
    let slice = EndpointSliceBuilder::new(ns, &format!("{name}-1"), name).port("http", port);
    let slice = if ready {
        slice.ready_endpoint("127.0.0.1")
    } else {
        slice.endpoint("127.0.0.1")
    };
    format!(
        "{}---\n{}",
        ServiceBuilder::new(ns, name)
            .port("http", 80, port)
            .to_yaml(),
        slice.to_yaml()
    )
}

/// A Service with a single endpoint: a pod named `<name>-0` on `port`.
pub fn service1(ns: &str, name: &str, port: u16) -> Vec<Value> {
    service(ns, name, &[(&format!("{name}-0"), port)])
}

// ---------------------------------------------------------------------------
// Backend servers

/// A parsed request head.
struct RequestHead {
    target: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Read one request head (and discard a `content-length` body). `None` on
/// EOF, timeout or garbage.
fn read_request<R: BufRead>(r: &mut R) -> Option<RequestHead> {
    let mut line = String::new();
    let mut total = 0usize;
    let mut read_line = |line: &mut String| -> Option<()> {
        line.clear();
        let n = r.read_line(line).ok()?;
        total += n;
        (n > 0 && total < MAX_MESSAGE).then_some(())
    };
    read_line(&mut line)?;
    let target = line.split(' ').nth(1)?.to_string();
    let mut headers = Vec::new();
    for _ in 0..200 {
        read_line(&mut line)?;
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            let head = RequestHead { target, headers };
            let len: usize = head
                .header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if len > 0 {
                let mut body = vec![0u8; len.min(MAX_MESSAGE)];
                r.read_exact(&mut body).ok()?;
            }
            return Some(head);
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    None
}

/// Serve HTTP/1.1 requests on one connection (keep-alive, at most 10,000
/// requests): `200`, body `<id> <target>`, headers `x-echo-id`,
/// `x-echo-xfp` (the X-Forwarded-Proto it got, `-` when none), `x-echo-tls`
/// (0/1), `x-echo-sni` (the SNI it got over TLS, `-` otherwise) and
/// `set-cookie: app-<id>=1` (to check that the application's own cookies
/// pass through).
fn serve_http<S: Read + Write>(stream: S, id: &str, tls: bool, sni: &str) {
    let mut reader = BufReader::new(stream);
    for _ in 0..10_000 {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        let body = format!("{id} {}", req.target);
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let xfp = req.header("x-forwarded-proto").unwrap_or("-");
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
             x-echo-id: {id}\r\nx-echo-xfp: {xfp}\r\nx-echo-tls: {}\r\nx-echo-sni: {sni}\r\n\
             {}set-cookie: app-{id}=1; Path=/\r\n{}\r\n{body}",
            body.len(),
            u8::from(tls),
            echo_asked_headers(&req),
            if close { "connection: close\r\n" } else { "" },
        );
        let stream = reader.get_mut();
        if stream.write_all(resp.as_bytes()).is_err() || stream.flush().is_err() || close {
            return;
        }
    }
}

/// For a request with `x-echo-headers: a,b`: the response lines
/// `x-echo-h-a: <every value of a joined by " | ", or "-">` (one per name
/// asked), so a test sees which request headers reached the server.
fn echo_asked_headers(req: &RequestHead) -> String {
    let Some(asked) = req.header("x-echo-headers") else {
        return String::new();
    };
    let mut out = String::new();
    for name in asked.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let values: Vec<&str> = req
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        let joined = if values.is_empty() {
            "-".to_string()
        } else {
            values.join(" | ")
        };
        let _ = write!(out, "x-echo-h-{name}: {joined}\r\n");
    }
    out
}

fn spawn_listener<F>(handle: F) -> u16
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
            let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
            let handle = handle.clone();
            std::thread::spawn(move || handle(stream));
        }
    });
    port
}

/// A plain HTTP echo server named `id`; its port. Every request gets
/// `200`, body `<id> <target>`, headers `x-echo-id`, `x-echo-xfp` (the
/// X-Forwarded-Proto it got, `-` when none), `x-echo-tls` (0/1),
/// `x-echo-sni` (`-` over plain HTTP) and `set-cookie: app-<id>=1`.
pub fn echo_server(id: &str) -> u16 {
    let id = id.to_string();
    spawn_listener(move |stream| serve_http(stream, &id, false, "-"))
}

/// A TLS server named `id` presenting `cert` (with `chain` after it), then
/// the same HTTP echo as [`echo_server`] over TLS. Used both behind
/// reencrypt Routes (HAProxy is the TLS client) and behind passthrough
/// Routes (the test client is). No ALPN is selected, so HTTP/1.1 is spoken.
pub fn tls_echo_server(id: &str, cert: &Issued, chain: &[&Issued]) -> u16 {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).unwrap();
    b.set_private_key(&cert.key).unwrap();
    b.set_certificate(&cert.cert).unwrap();
    for c in chain {
        b.add_extra_chain_cert(c.cert.clone()).unwrap();
    }
    b.check_private_key().unwrap();
    let acceptor = Arc::new(b.build());
    let id = id.to_string();
    spawn_listener(move |stream| {
        let Ok(tls) = acceptor.accept(stream) else {
            return;
        };
        let sni = tls
            .ssl()
            .servername(NameType::HOST_NAME)
            .unwrap_or("-")
            .to_string();
        serve_http(tls, &id, true, &sni);
    })
}

// ---------------------------------------------------------------------------
// Client

/// One HTTP response.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    /// Header names lower-cased, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header.
    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Which backend answered (`x-echo-id`), or `-` for HAProxy itself.
    pub fn backend(&self) -> &str {
        self.header("x-echo-id").unwrap_or("-")
    }

    /// The `name=value` part of every Set-Cookie.
    pub fn set_cookies(&self) -> Vec<(String, String)> {
        self.headers_all("set-cookie")
            .into_iter()
            .filter_map(|c| {
                let first = c.split(';').next()?;
                let (k, v) = first.split_once('=')?;
                Some((k.trim().to_string(), v.trim().to_string()))
            })
            .collect()
    }

    /// The full Set-Cookie line for cookie `name`.
    pub fn set_cookie_line(&self, name: &str) -> Option<&str> {
        self.headers_all("set-cookie")
            .into_iter()
            .find(|c| c.split('=').next().map(str::trim) == Some(name))
    }
}

/// A request to send; `extra` headers are added verbatim.
pub struct Request<'a> {
    pub host: &'a str,
    pub target: &'a str,
    pub extra: &'a [(&'a str, &'a str)],
    pub keep_alive: bool,
}

impl<'a> Request<'a> {
    pub fn get(host: &'a str, target: &'a str) -> Self {
        Request {
            host,
            target,
            extra: &[],
            keep_alive: false,
        }
    }
}

/// Send `req` and read one response (content-length, chunked, or until
/// EOF). The stream stays usable for the next request when keep-alive.
pub fn send<S: Read + Write>(stream: &mut BufReader<S>, req: &Request<'_>) -> io::Result<Response> {
    let mut head = format!("GET {} HTTP/1.1\r\nhost: {}\r\n", req.target, req.host);
    for (k, v) in req.extra {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str(if req.keep_alive {
        "\r\n"
    } else {
        "connection: close\r\n\r\n"
    });
    stream.get_mut().write_all(head.as_bytes())?;
    stream.get_mut().flush()?;
    read_response(stream)
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_response<R: BufRead>(r: &mut R) -> io::Result<Response> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a response",
        ));
    }
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("bad status line {line:?}")))?;
    let mut resp = Response {
        status,
        ..Response::default()
    };
    let mut done = false;
    for _ in 0..200 {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("EOF in response head"));
        }
        let l = line.trim_end_matches(['\r', '\n']);
        if l.is_empty() {
            done = true;
            break;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header {l:?}")))?;
        resp.headers
            .push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    if !done {
        return Err(bad("response head too long"));
    }
    let mut body = Vec::new();
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        for _ in 0..10_000 {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad(format!("bad chunk size {line:?}")))?;
            if size == 0 {
                // Trailers until the empty line.
                for _ in 0..100 {
                    line.clear();
                    if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            if body.len() + size > MAX_MESSAGE {
                return Err(bad("body too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(len) = resp.header("content-length") {
        let len: usize = len
            .trim()
            .parse()
            .map_err(|_| bad(format!("bad content-length {len:?}")))?;
        if len > MAX_MESSAGE {
            return Err(bad("body too large"));
        }
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if !matches!(status, 204 | 304) {
        r.take(MAX_MESSAGE as u64).read_to_end(&mut body)?;
    }
    resp.body = String::from_utf8_lossy(&body).into_owned();
    Ok(resp)
}

/// A plain TCP connection to 127.0.0.1:`port`, with I/O bounds.
pub fn tcp_connect(port: u16) -> io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&loopback(port), Duration::from_secs(5))?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// One request over a fresh plain connection.
pub fn http_request(port: u16, req: &Request<'_>) -> io::Result<Response> {
    let mut s = BufReader::new(tcp_connect(port)?);
    send(&mut s, req)
}

/// `GET target` with `Host: host` over a fresh plain connection; panics on
/// I/O errors (HAProxy always answers).
pub fn http_get(port: u16, host: &str, target: &str) -> Response {
    http_request(port, &Request::get(host, target))
        .unwrap_or_else(|e| panic!("GET http://{host}{target} on port {port}: {e}"))
}

/// TLS client options. Certificates are never verified here: tests compare
/// the peer certificate explicitly.
#[derive(Clone, Copy, Debug)]
pub struct TlsOpts<'a> {
    /// SNI to send; `None` sends none.
    pub sni: Option<&'a str>,
    /// ALPN protocols to offer; empty offers none.
    pub alpn: &'a [&'a str],
}

impl<'a> TlsOpts<'a> {
    pub fn sni(sni: &'a str) -> Self {
        TlsOpts {
            sni: Some(sni),
            alpn: &[],
        }
    }

    pub fn alpn(mut self, alpn: &'a [&'a str]) -> Self {
        self.alpn = alpn;
        self
    }
}

/// A TLS connection to 127.0.0.1:`port`.
pub fn tls_connect(port: u16, opts: TlsOpts<'_>) -> io::Result<SslStream<TcpStream>> {
    let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
    b.set_verify(SslVerifyMode::NONE);
    b.set_min_proto_version(Some(SslVersion::TLS1_2)).unwrap();
    if !opts.alpn.is_empty() {
        let mut wire = Vec::new();
        for p in opts.alpn {
            wire.push(u8::try_from(p.len()).unwrap());
            wire.extend_from_slice(p.as_bytes());
        }
        b.set_alpn_protos(&wire).unwrap();
    }
    let connector = b.build();
    let mut cfg = connector.configure().unwrap();
    cfg.set_verify_hostname(false);
    cfg.set_use_server_name_indication(opts.sni.is_some());
    let s = tcp_connect(port)?;
    cfg.connect(opts.sni.unwrap_or(""), s)
        .map_err(|e| io::Error::other(format!("TLS handshake: {e}")))
}

/// What a TLS connection negotiated.
#[derive(Clone, Debug)]
pub struct TlsInfo {
    pub alpn: Option<String>,
    pub peer: X509,
}

impl TlsInfo {
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.peer)
    }
}

pub fn tls_info(s: &SslStream<TcpStream>) -> TlsInfo {
    TlsInfo {
        alpn: s
            .ssl()
            .selected_alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        peer: s.ssl().peer_certificate().expect("a peer certificate"),
    }
}

/// One HTTP/1.1 request over a fresh TLS connection (ALPN as in `opts`;
/// offer `http/1.1` only, or nothing, to get HTTP/1.1).
pub fn https_request(
    port: u16,
    opts: TlsOpts<'_>,
    req: &Request<'_>,
) -> io::Result<(TlsInfo, Response)> {
    let tls = tls_connect(port, opts)?;
    let info = tls_info(&tls);
    if info.alpn.as_deref() == Some("h2") {
        return Err(bad("h2 negotiated: use h2_get"));
    }
    let mut s = BufReader::new(tls);
    let resp = send(&mut s, req)?;
    Ok((info, resp))
}

/// `GET target` over TLS with SNI = Host = `host`, no ALPN; panics on I/O
/// errors.
pub fn https_get(port: u16, host: &str, target: &str) -> (TlsInfo, Response) {
    https_request(port, TlsOpts::sni(host), &Request::get(host, target))
        .unwrap_or_else(|e| panic!("GET https://{host}{target} on port {port}: {e}"))
}

/// Just the handshake: what ALPN and certificate the server picked.
pub fn tls_handshake(port: u16, opts: TlsOpts<'_>) -> TlsInfo {
    let tls = tls_connect(port, opts).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
    tls_info(&tls)
}

// --- HTTP/2, just enough for one GET -----------------------------------------

fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut f = Vec::with_capacity(9 + payload.len());
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.push(kind);
    f.push(flags);
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn hpack_literal(index: u8, value: &str, block: &mut Vec<u8>) {
    // Literal header field without indexing, indexed name (RFC 7541 6.2.2),
    // value not Huffman-coded.
    assert!(index < 16 && value.len() < 127);
    block.push(index);
    block.push(u8::try_from(value.len()).unwrap());
    block.extend_from_slice(value.as_bytes());
}

/// The `:status` of a HPACK header block whose first field is `:status`
/// (what HAProxy sends): indexed (RFC 7541 static table 8..=14) or a
/// literal with the indexed name 8 and a plain 3-digit value.
fn h2_status(block: &[u8]) -> Option<u16> {
    const INDEXED: [u16; 7] = [200, 204, 206, 304, 400, 404, 500];
    let first = *block.first()?;
    if first & 0x80 != 0 {
        let i = usize::from(first & 0x7f);
        return (8..=14).contains(&i).then(|| INDEXED[i - 8]);
    }
    if matches!(first, 0x48 | 0x08 | 0x18) && block.get(1) == Some(&3) {
        return std::str::from_utf8(block.get(2..5)?).ok()?.parse().ok();
    }
    None
}

/// Over an established TLS connection that negotiated h2: `GET target` for
/// `authority`; returns (status, body). Bounded to 100 frames.
pub fn h2_get<S: Read + Write>(
    stream: &mut S,
    authority: &str,
    target: &str,
) -> io::Result<(u16, String)> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(0x4, 0, 0, &[]));
    let mut block = vec![0x82, 0x87]; // :method GET, :scheme https
    hpack_literal(4, target, &mut block); // :path
    hpack_literal(1, authority, &mut block); // :authority
    out.extend(h2_frame(0x1, 0x5, 1, &block)); // END_STREAM | END_HEADERS
    stream.write_all(&out)?;
    stream.flush()?;
    let mut status = None;
    let mut body = Vec::new();
    for _ in 0..100 {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head)?;
        let len = usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
        let (kind, flags) = (head[3], head[4]);
        let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        if len > MAX_MESSAGE {
            return Err(bad("h2 frame too large"));
        }
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        match (kind, id) {
            (0x4, 0) if flags & 0x1 == 0 => {
                stream.write_all(&h2_frame(0x4, 0x1, 0, &[]))?;
            }
            (0x7, _) => return Err(bad(format!("h2 GOAWAY {payload:?}"))),
            (0x3, 1) => return Err(bad(format!("h2 RST_STREAM {payload:?}"))),
            (0x1, 1) => {
                let mut p = &payload[..];
                if flags & 0x8 != 0 {
                    let pad = usize::from(*p.first().unwrap_or(&0));
                    p = &p[1..p.len().saturating_sub(pad)];
                }
                if flags & 0x20 != 0 {
                    p = p.get(5..).unwrap_or_default();
                }
                if status.is_none() {
                    status = Some(
                        h2_status(p)
                            .ok_or_else(|| bad(format!("cannot read :status from {p:?}")))?,
                    );
                }
            }
            (0x0, 1) => {
                let mut p = &payload[..];
                if flags & 0x8 != 0 {
                    let pad = usize::from(*p.first().unwrap_or(&0));
                    p = &p[1..p.len().saturating_sub(pad)];
                }
                body.extend_from_slice(p);
            }
            _ => {}
        }
        if id == 1 && flags & 0x1 != 0 && matches!(kind, 0x0 | 0x1) {
            let status = status.ok_or_else(|| bad("stream ended without headers"))?;
            return Ok((status, String::from_utf8_lossy(&body).into_owned()));
        }
    }
    Err(bad("no complete h2 response within 100 frames"))
}

// ---------------------------------------------------------------------------
// Harness: routegen render + HAProxy master-worker

/// Reload the HAProxy whose master CLI is `master` (confirmed by `show
/// proc`), then wait (at most 5 s) until no old worker is left, so that
/// every later connection, and the worker's stats socket, is the new
/// configuration's. `rt` runs the master CLI client.
pub fn master_reload(rt: &tokio::runtime::Runtime, master: &Path) -> Result<(), String> {
    let reloader = Reloader::new(
        ReloadMethod::MasterCli(master.to_path_buf()),
        ReloadOptions {
            confirm_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(25),
            io_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
        },
    );
    let outcome = rt
        .block_on(reloader.reload())
        .map_err(|e| format!("reload: {e}"))?;
    if !outcome.confirmed {
        return Err(format!("reload not confirmed: {outcome:?}"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let old = rt
            .block_on(reloader.old_workers())
            .map_err(|e| format!("show proc: {e}"))?
            .unwrap_or(0);
        if old == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{old} old workers still running 5 s after the reload"
            ));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A rendered manifest set served by a real HAProxy on two fresh ports.
pub struct Router {
    /// Scenario root (short, under /tmp: unix socket paths are limited).
    pub dir: tempfile::TempDir,
    pub http_port: u16,
    pub https_port: u16,
    /// The certificate given with `--default-cert`.
    pub default_cert: Issued,
    routegen: PathBuf,
    extra_args: Vec<String>,
    objects: Vec<Value>,
    rt: tokio::runtime::Runtime,
    haproxy: Option<HaproxyProcess>,
}

impl Router {
    /// A scenario rendered by the `routegen` binary (the calling test's
    /// `env!("CARGO_BIN_EXE_routegen")`) with `routegen render` flags
    /// `extra_args` (beyond the ones the harness sets) and this default
    /// certificate.
    pub fn new(routegen: impl Into<PathBuf>, extra_args: &[&str], default_cert: Issued) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rge2e")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::fs::write(
            dir.path().join("default.pem"),
            key_and_cert_pem(&default_cert),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        Router {
            dir,
            http_port: free_port(),
            https_port: free_port(),
            default_cert,
            routegen: routegen.into(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            objects: Vec::new(),
            rt,
            haproxy: None,
        }
    }

    /// Write `contents` to `name` in the scenario directory and pass its
    /// path with `flag` to every later render (e.g. `--service-ca-file`).
    pub fn file_arg(&mut self, flag: &str, name: &str, contents: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        self.extra_args.push(flag.to_string());
        self.extra_args.push(path.display().to_string());
    }

    pub fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn master_socket(&self) -> PathBuf {
        self.dir.path().join("master.sock")
    }

    /// Render `objects` with `routegen render --out`; returns its stderr.
    /// Panics when routegen fails or rejects a Route.
    pub fn render(&mut self, objects: &[Value]) -> String {
        self.objects = objects.to_vec();
        let stderr = self.render_current();
        assert!(
            !stderr.contains("rejected:"),
            "a Route was rejected:\n{stderr}"
        );
        stderr
    }

    fn render_current(&self) -> String {
        let input = self.dir.path().join("in");
        std::fs::create_dir_all(&input).unwrap();
        let list = json!({ "apiVersion": "v1", "kind": "List", "items": self.objects });
        std::fs::write(
            input.join("manifests.json"),
            serde_json::to_vec_pretty(&list).unwrap(),
        )
        .unwrap();
        let d = self.dir.path();
        let mut cmd = Command::new(&self.routegen);
        for (k, _) in std::env::vars() {
            if k.starts_with("ROUTEGEN_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("render")
            .arg("-f")
            .arg(&input)
            .arg("--out")
            .arg(self.out())
            .arg("--state-dir")
            .arg(d.join("state"))
            .arg("--default-cert")
            .arg(d.join("default.pem"))
            .arg("--run-dir")
            .arg(d.join("run"))
            .arg("--http-bind")
            .arg(format!("127.0.0.1:{}", self.http_port))
            .arg("--https-bind")
            .arg(format!("127.0.0.1:{}", self.https_port))
            .arg("--allow-loopback-endpoints")
            // The default (50000) needs a higher open-files limit than a
            // test environment may grant.
            .arg("--maxconn")
            .arg("2000")
            .args(&self.extra_args)
            .stdin(Stdio::null());
        let out = cmd.output().expect("run routegen render");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "routegen render failed:\n{stderr}");
        stderr
    }

    /// Start HAProxy on the rendered tree (master-worker, foreground, its
    /// own process group; `-f out/haproxy.cfg -f out/backends`, see
    /// `routegen_host::reload::process::config_paths`). When a port turned out to be taken meanwhile,
    /// pick new ones, render again and retry (at most 3 attempts).
    pub fn start(&mut self) {
        assert!(self.haproxy.is_none(), "already started");
        let opts = SpawnOptions {
            startup_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(3),
            ..SpawnOptions::default()
        };
        let mut last = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                self.http_port = free_port();
                self.https_port = free_port();
                self.render_current();
            }
            let spawned = self.rt.block_on(HaproxyProcess::spawn_with(
                &haproxy_bin(),
                &self.out().join("haproxy.cfg"),
                &self.master_socket(),
                &[] as &[OsString],
                opts,
            ));
            match spawned {
                Ok(p) => {
                    self.haproxy = Some(p);
                    self.wait_listening();
                    return;
                }
                Err(e) => {
                    last = e.to_string();
                    if !last.contains("bind") {
                        break;
                    }
                }
            }
        }
        panic!("HAProxy did not start:\n{last}");
    }

    fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for _ in 0..200 {
            if tcp_connect(self.http_port).is_ok() && tcp_connect(self.https_port).is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "HAProxy does not listen");
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("HAProxy does not listen");
    }

    /// Reload through the master CLI (confirmed by `show proc`), then wait
    /// (at most 5 s) until no old worker is left, so that every later
    /// connection is served by the new configuration.
    pub fn reload(&mut self) {
        assert!(self.haproxy.is_some(), "not started");
        master_reload(&self.rt, &self.master_socket())
            .unwrap_or_else(|e| panic!("{e}\n{}", self.haproxy_output()));
    }

    /// HAProxy's last output lines, for failure messages.
    pub fn haproxy_output(&self) -> String {
        self.haproxy
            .as_ref()
            .map(|p| p.recent_output().join("\n"))
            .unwrap_or_default()
    }

    pub fn http(&self, host: &str, target: &str) -> Response {
        http_get(self.http_port, host, target)
    }

    pub fn https(&self, host: &str, target: &str) -> (TlsInfo, Response) {
        https_get(self.https_port, host, target)
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        if let Some(p) = self.haproxy.take() {
            let _guard = self.rt.enter();
            drop(p);
        }
    }
}
