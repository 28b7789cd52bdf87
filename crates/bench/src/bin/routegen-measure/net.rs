//! The measurement's network side, all on 127.0.0.1: echo backends, a
//! small HTTP/1.1 client (new connection or keep-alive), a TLS handshake
//! that reports the certificate presented for an SNI name, and HAProxy's
//! master CLI (`show proc`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::Duration;

pub fn free_port() -> Result<u16, String> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .map_err(|e| e.to_string())?
        .local_addr()
        .map_err(|e| e.to_string())?
        .port())
}

/// One echo server on `ports` ports; a request answers `echo-<port>` (the
/// identity of the endpoint it reached). A connection idle for 10 s is
/// closed (HAProxy keeps idle server connections of many backends).
pub fn start_echo(ports: usize) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for _ in 0..ports {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        out.push(port);
        thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                thread::spawn(move || serve_echo(conn, port));
            }
        });
    }
    Ok(out)
}

fn serve_echo(conn: TcpStream, port: u16) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = conn.set_nodelay(true);
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = conn;
    let body = format!("echo-{port}");
    for _ in 0..1_000_000 {
        let mut line = String::new();
        if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            return;
        }
        let mut close = false;
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if !matches!(reader.read_line(&mut h), Ok(n) if n > 0) {
                return;
            }
            let t = h.trim_end().to_ascii_lowercase();
            if t.is_empty() {
                break;
            }
            if let Some(v) = t.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            close |= t == "connection: close";
        }
        let mut discard = vec![0; length];
        if reader.read_exact(&mut discard).is_err() {
            return;
        }
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(resp.as_bytes()).is_err() || close {
            return;
        }
    }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_secs(2),
    )?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Read one response; `Err((stale, msg))`, stale = closed before any byte.
fn read_response(r: &mut BufReader<TcpStream>) -> Result<(u16, String, bool), (bool, String)> {
    let mut status = String::new();
    match r.read_line(&mut status) {
        Ok(0) => return Err((true, "closed before the response".into())),
        Ok(_) => {}
        Err(e) => {
            let stale = matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            );
            return Err((stale, e.to_string()));
        }
    }
    let code: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or((false, format!("bad status line {status:?}")))?;
    let (mut length, mut close) = (0usize, false);
    loop {
        let mut h = String::new();
        match r.read_line(&mut h) {
            Ok(0) => return Err((false, "closed in headers".into())),
            Ok(_) => {}
            Err(e) => return Err((false, e.to_string())),
        }
        let t = h.trim_end().to_ascii_lowercase();
        if t.is_empty() {
            break;
        }
        if let Some(v) = t.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        close |= t == "connection: close";
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)
        .map_err(|e| (false, e.to_string()))?;
    Ok((code, String::from_utf8_lossy(&body).into_owned(), close))
}

/// One request on a new connection (`Connection: close`).
pub fn get(port: u16, host: &str, path: &str) -> Result<(u16, String), String> {
    let mut s = connect(port).map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| e.to_string())?;
    let mut r = BufReader::new(s);
    read_response(&mut r)
        .map(|(c, b, _)| (c, b))
        .map_err(|(_, e)| e)
}

/// Keep-alive client with the standard retry of a request sent on an idle
/// connection the server closed (RFC 9112 §9.3.1).
pub struct KeepAlive {
    pub port: u16,
    conn: Option<(TcpStream, BufReader<TcpStream>)>,
    pub retried: u64,
}

impl KeepAlive {
    pub fn new(port: u16) -> KeepAlive {
        KeepAlive {
            port,
            conn: None,
            retried: 0,
        }
    }

    pub fn get(&mut self, host: &str) -> Result<(u16, String), String> {
        for attempt in 0..2 {
            let reused = self.conn.is_some();
            if self.conn.is_none() {
                let s = connect(self.port).map_err(|e| e.to_string())?;
                let r = BufReader::new(s.try_clone().map_err(|e| e.to_string())?);
                self.conn = Some((s, r));
            }
            let (s, r) = self.conn.as_mut().expect("connected");
            let res =
                match s.write_all(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()) {
                    Ok(()) => read_response(r),
                    Err(e) => Err((true, e.to_string())),
                };
            match res {
                Ok((code, body, close)) => {
                    if close {
                        self.conn = None;
                    }
                    return Ok((code, body));
                }
                Err((stale, e)) => {
                    self.conn = None;
                    if stale && reused && attempt == 0 {
                        self.retried += 1;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
        Err("retry failed".into())
    }
}

/// A TLS handshake with `sni` on 127.0.0.1:`port`: the SHA-256 digest of
/// the certificate HAProxy presents.
pub fn presented_digest(port: u16, sni: &str) -> Result<Vec<u8>, String> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_verify(SslVerifyMode::NONE);
    let connector = b.build();
    let s = connect(port).map_err(|e| e.to_string())?;
    let mut config = connector.configure().map_err(|e| e.to_string())?;
    config.set_verify_hostname(false);
    let tls = config.connect(sni, s).map_err(|e| e.to_string())?;
    let cert = tls
        .ssl()
        .peer_certificate()
        .ok_or("no certificate presented")?;
    let digest = cert
        .digest(openssl::hash::MessageDigest::sha256())
        .map_err(|e| e.to_string())?;
    Ok(digest.to_vec())
}

/// SHA-256 digest of a PEM certificate (what [`presented_digest`] returns
/// when HAProxy presents it).
pub fn pem_digest(pem: &str) -> Result<Vec<u8>, String> {
    let cert = openssl::x509::X509::from_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
    Ok(cert
        .digest(openssl::hash::MessageDigest::sha256())
        .map_err(|e| e.to_string())?
        .to_vec())
}

/// Old workers alive, from the master CLI's `show proc`.
pub fn old_workers(master_socket: &Path) -> Option<usize> {
    let mut s = std::os::unix::net::UnixStream::connect(master_socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"show proc\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    routegen_host::reload::master_cli::parse_show_proc(&text)
        .ok()
        .map(|p| p.old_workers.len())
}
