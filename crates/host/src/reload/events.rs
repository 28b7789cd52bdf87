//! HAProxy's own event messages, received whoever started HAProxy: the
//! tree's global `log <run-dir>/events.sock local0 notice` line
//! (`RenderSettings::events_log`) makes HAProxy send its messages of level
//! notice and above (servers up and down, proxies stopped, alerts; not
//! access logs, which are level info) as syslog datagrams to a unix socket
//! that [`EventsReceiver`] binds and logs (target `haproxy`, the level
//! mapped from the syslog severity). A `routegen run` that adopts a
//! HAProxy an earlier one started binds the socket again and so keeps
//! receiving its messages.
//!
//! # Contract
//!
//! * HAProxy never blocks on the socket: it sends each message as one
//!   datagram without waiting (`MSG_DONTWAIT`) and drops it, counted in
//!   its own dropped-logs counter, when nobody is bound (between a
//!   routegen's death and the next one's start) or the receive queue is
//!   full (the kernel queues `net.unix.max_dgram_qlen` datagrams, 10 by
//!   default, so a burst such as a 10,000-proxy stop arrives in part).
//! * No message is logged twice: while this routegen reads the stdout and
//!   stderr of a HAProxy it spawned ([`EventsReceiver::set_forwarded`]),
//!   where HAProxy prints the same messages, datagrams are received and
//!   dropped; otherwise (adopted, or an external HAProxy) they are logged.
//! * A worker's run of `Proxy … stopped` messages is folded into one line
//!   as for stderr ([`super::output::OutputFolder`]).
//! * The socket file is created 0600; a stale one is replaced. The
//!   receiving thread stops when the receiver is dropped.

use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::output::{OutputFolder, Shown};

/// How long the receiving thread waits before it checks for a stop and
/// tells a folded run of stop messages.
const PAUSE: Duration = Duration::from_millis(200);

/// The largest message HAProxy sends (its default `len` is 1024).
const MAX_DATAGRAM: usize = 8192;

/// The bound events socket and the thread that logs what arrives.
#[derive(Debug)]
pub struct EventsReceiver {
    path: PathBuf,
    state: Arc<State>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct State {
    stop: AtomicBool,
    forwarded: AtomicBool,
    received: AtomicU64,
    logged: AtomicU64,
}

/// Cannot bind the events socket.
#[derive(Debug, thiserror::Error)]
#[error("cannot receive HAProxy's events on {path}: {source}")]
pub struct EventsError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl EventsReceiver {
    /// Bind `path` (replacing a stale socket file; refusing to replace
    /// anything else) 0600, and start logging what arrives.
    pub fn bind(path: &Path) -> Result<EventsReceiver, EventsError> {
        let err = |source| EventsError {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => {
                std::fs::remove_file(path).map_err(err)?;
            }
            Ok(_) => {
                return Err(err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a socket",
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let socket = UnixDatagram::bind(path).map_err(err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        socket.set_read_timeout(Some(PAUSE)).map_err(err)?;
        let state = Arc::new(State::default());
        let thread = {
            let state = state.clone();
            std::thread::Builder::new()
                .name("haproxy-events".into())
                .spawn(move || receive(&socket, &state))
                .map_err(err)?
        };
        tracing::debug!(socket = %path.display(), "receiving HAProxy's event messages");
        Ok(EventsReceiver {
            path: path.to_path_buf(),
            state,
            thread: Some(thread),
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this process reads the output of the HAProxy that sends
    /// (one it spawned): then datagrams are dropped, not logged twice.
    pub fn set_forwarded(&self, forwarded: bool) {
        self.state.forwarded.store(forwarded, Ordering::SeqCst);
    }

    /// Datagrams received so far, and how many of them were logged.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.state.received.load(Ordering::SeqCst),
            self.state.logged.load(Ordering::SeqCst),
        )
    }
}

impl Drop for EventsReceiver {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn receive(socket: &UnixDatagram, state: &State) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut folder = OutputFolder::default();
    while !state.stop.load(Ordering::SeqCst) {
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                show(folder.flush());
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(error = %e, "stopped receiving HAProxy's event messages");
                break;
            }
        };
        state.received.fetch_add(1, Ordering::SeqCst);
        if state.forwarded.load(Ordering::SeqCst) {
            continue;
        }
        let Some(line) = as_output_line(&String::from_utf8_lossy(&buf[..n])) else {
            continue;
        };
        state.logged.fetch_add(1, Ordering::SeqCst);
        for shown in folder.push(&line) {
            show(Some(shown));
        }
    }
    show(folder.flush());
}

fn show(shown: Option<Shown>) {
    match shown {
        None => {}
        Some(Shown::Summary(summary)) => {
            tracing::info!(target: "haproxy", via = "events", "{summary}")
        }
        Some(Shown::Line(line)) if line.starts_with("[ALERT]") => {
            tracing::error!(target: "haproxy", via = "events", "{line}")
        }
        Some(Shown::Line(line)) if line.starts_with("[WARNING]") => {
            tracing::warn!(target: "haproxy", via = "events", "{line}")
        }
        Some(Shown::Line(line)) => tracing::info!(target: "haproxy", via = "events", "{line}"),
    }
}

/// A syslog datagram as HAProxy sends it (RFC 3164: `<PRI>Mmm dd
/// hh:mm:ss [host ]haproxy[PID]: message`) as the line HAProxy would print
/// on stderr: `[WARNING]  (PID) : message`, the tag from the severity
/// (`PRI % 8`: 0–3 ALERT, 4 WARNING, 5 NOTICE, 6 INFO, 7 DEBUG). `None`
/// for what is not such a datagram.
pub fn as_output_line(datagram: &str) -> Option<String> {
    let rest = datagram.strip_prefix('<')?;
    let (pri, rest) = rest.split_once('>')?;
    let tag = match pri.parse::<u16>().ok()? % 8 {
        0..=3 => "[ALERT]  ",
        4 => "[WARNING]",
        5 => "[NOTICE] ",
        6 => "[INFO]   ",
        _ => "[DEBUG]  ",
    };
    let (head, message) = rest.split_once("]: ")?;
    let (_, pid) = head.rsplit_once('[')?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let message = message.trim_end_matches(['\n', '\0']);
    Some(format!("{tag}  ({pid}) : {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_become_the_lines_haproxy_prints() {
        assert_eq!(
            as_output_line("<132>Dec  6 06:41:21 haproxy[7204]: Proxy f stopped (cumulated conns: FE: 5, BE: 0).\n").as_deref(),
            Some("[WARNING]  (7204) : Proxy f stopped (cumulated conns: FE: 5, BE: 0).")
        );
        assert_eq!(
            as_output_line("<129>Dec  6 06:41:21 host haproxy[12]: Server b/s is DOWN.").as_deref(),
            Some("[ALERT]    (12) : Server b/s is DOWN.")
        );
        assert_eq!(
            as_output_line("<133>Dec  6 06:41:21 haproxy[12]: Server b/s is UP.").as_deref(),
            Some("[NOTICE]   (12) : Server b/s is UP.")
        );
        assert_eq!(as_output_line("no syslog"), None);
        assert_eq!(as_output_line("<x>a haproxy[1]: m"), None);
        assert_eq!(as_output_line("<132>a haproxy[pid]: m"), None);
    }

    #[test]
    fn a_stale_socket_is_replaced_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sock");
        let first = EventsReceiver::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A second routegen after the first died: the file is left behind.
        std::mem::forget(first);
        let second = EventsReceiver::bind(&path).unwrap();
        let sender = UnixDatagram::unbound().unwrap();
        sender
            .send_to(b"<133>Dec  6 06:41:21 haproxy[1]: Server b/s is UP.", &path)
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while second.counts() != (1, 1) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(second.counts(), (1, 1));
        second.set_forwarded(true);
        sender.send_to(b"<133>x haproxy[1]: again", &path).unwrap();
        while second.counts().0 != 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(second.counts(), (2, 1), "received, not logged twice");
        drop(second);

        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let e = EventsReceiver::bind(&file).unwrap_err().to_string();
        assert!(e.contains("not a socket"), "{e}");
    }
}
