//! Sends a live delta ([`routegen_render::haproxy::runtime::Op`]s) to the
//! running HAProxy over one stats-socket connection ([`Live::apply`]), and
//! finishes removing servers that still had connections
//! ([`Live::retry_draining`]).
//!
//! # Contract
//!
//! * One connection per delta, commands in the order given; the first
//!   command HAProxy refuses stops the delta and is returned as the error
//!   (the caller then treats HAProxy's state as unknown and reloads).
//! * A removed server is put in maintenance first (no new request reaches
//!   it), then deleted. When it still has connections (`del server`
//!   refuses), it is kept *draining*: [`Live::retry_draining`] tries the
//!   deletion again; after [`DRAIN_LIMIT`] its sessions are shut down and
//!   it is deleted. A server added again while it drains (same name, same
//!   arguments: an endpoint that flapped) is made ready again instead of
//!   added; with other arguments its sessions are shut down and it is
//!   deleted first.
//! * After a reload the draining servers are gone with the old worker
//!   ([`Live::forget_draining`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use routegen_render::haproxy::runtime::{Op, OpKind};
use routegen_render::haproxy::CRT_LIST;

use super::{Command, Expect, Outcome, RuntimeError, StatsSocket};

/// How long a removed server may keep its connections before they are
/// shut down (the `timeout server` default: a request still running after
/// it would have failed anyway).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// Bound of every socket operation.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`Live::apply`] sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveReport {
    /// Ops applied, by what they change.
    pub ops: BTreeMap<OpKind, usize>,
    /// Commands sent.
    pub commands: usize,
    /// Connecting and sending them.
    pub duration: Duration,
    /// Servers left draining by this delta.
    pub draining: usize,
}

/// A removed server that still had connections.
#[derive(Clone, Debug)]
struct Draining {
    since: Instant,
    /// Its `add server` arguments (to make it ready again if it comes back
    /// unchanged).
    args: String,
}

/// The runtime API of one HAProxy worker.
#[derive(Debug)]
pub struct Live {
    socket: PathBuf,
    /// (backend, server) → since when it drains.
    draining: BTreeMap<(String, String), Draining>,
}

impl Live {
    /// HAProxy's stats socket (`stats socket <path> level admin`).
    pub fn new(socket: PathBuf) -> Live {
        Live {
            socket,
            draining: BTreeMap::new(),
        }
    }

    /// Send `ops` (see the module contract).
    pub fn apply(&mut self, ops: &[Op]) -> Result<LiveReport, RuntimeError> {
        let started = Instant::now();
        let mut sock = StatsSocket::connect(&self.socket, IO_TIMEOUT)?;
        let mut report = LiveReport::default();
        for op in ops {
            self.apply_op(&mut sock, op, &mut report)?;
            *report.ops.entry(op.kind()).or_default() += 1;
        }
        report.draining = self.draining.len();
        report.duration = started.elapsed();
        Ok(report)
    }

    /// Try again to delete the servers that were draining; returns how many
    /// still are. Errors are logged (the server stays in maintenance, and
    /// the next reload drops it anyway).
    pub fn retry_draining(&mut self) -> usize {
        if self.draining.is_empty() {
            return 0;
        }
        let mut sock = match StatsSocket::connect(&self.socket, IO_TIMEOUT) {
            Ok(sock) => sock,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach HAProxy to delete drained servers");
                return self.draining.len();
            }
        };
        let keys: Vec<(String, String)> = self.draining.keys().cloned().collect();
        for (backend, server) in keys {
            let since = self.draining[&(backend.clone(), server.clone())].since;
            let target = format!("{backend}/{server}");
            if since.elapsed() >= DRAIN_LIMIT {
                let _ = run(
                    &mut sock,
                    format!("shutdown sessions server {target}"),
                    None,
                );
            }
            match run(&mut sock, format!("del server {target}"), None) {
                Ok(()) => {
                    self.draining.remove(&(backend, server));
                }
                Err(RuntimeError::StillInUse { .. }) => {}
                Err(e) => {
                    tracing::warn!(server = %target, error = %e, "cannot delete a drained server; it stays in maintenance until the next reload");
                    self.draining.remove(&(backend, server));
                }
            }
        }
        self.draining.len()
    }

    /// How many removed servers still have connections.
    pub fn draining(&self) -> usize {
        self.draining.len()
    }

    /// The servers still draining, as (backend, server).
    pub fn draining_servers(&self) -> std::collections::BTreeSet<(&str, &str)> {
        self.draining
            .keys()
            .map(|(b, s)| (b.as_str(), s.as_str()))
            .collect()
    }

    /// The worker the draining servers were in is gone (a reload).
    pub fn forget_draining(&mut self) {
        self.draining.clear();
    }

    fn apply_op(
        &mut self,
        sock: &mut StatsSocket,
        op: &Op,
        report: &mut LiveReport,
    ) -> Result<(), RuntimeError> {
        match op {
            Op::AddServer {
                backend,
                server,
                args,
                check,
            } => {
                let target = format!("{backend}/{server}");
                let key = (backend.clone(), server.clone());
                if let Some(d) = self.draining.remove(&key) {
                    if d.args == *args {
                        // Came back unchanged while draining: serve again.
                        return send(
                            sock,
                            report,
                            format!("set server {target} state ready"),
                            None,
                        );
                    }
                    send(
                        sock,
                        report,
                        format!("shutdown sessions server {target}"),
                        None,
                    )?;
                    send(sock, report, format!("del server {target}"), None)?;
                }
                send(sock, report, format!("add server {target} {args}"), None)?;
                send(sock, report, format!("enable server {target}"), None)?;
                if *check {
                    send(sock, report, format!("enable health {target}"), None)?;
                }
                Ok(())
            }
            Op::SetWeight {
                backend,
                server,
                weight,
            } => send(
                sock,
                report,
                format!("set server {backend}/{server} weight {weight}"),
                None,
            ),
            Op::RemoveServer {
                backend,
                server,
                args,
            } => {
                let target = format!("{backend}/{server}");
                send(
                    sock,
                    report,
                    format!("set server {target} state maint"),
                    None,
                )?;
                match send(sock, report, format!("del server {target}"), None) {
                    Err(RuntimeError::StillInUse { .. }) => {
                        self.draining.insert(
                            (backend.clone(), server.clone()),
                            Draining {
                                since: Instant::now(),
                                args: args.clone(),
                            },
                        );
                        Ok(())
                    }
                    other => other,
                }
            }
            Op::SetCookieKey { backend, key } => send(
                sock,
                report,
                format!("set dynamic-cookie-key backend {backend} {key}"),
                None,
            ),
            Op::AddMap { map, key, value } => {
                send(sock, report, format!("add map {map} {key} {value}"), None)
            }
            Op::SetMap { map, key, value } => {
                send(sock, report, format!("set map {map} {key} {value}"), None)
            }
            Op::DelMap { map, key } => send(sock, report, format!("del map {map} {key}"), None),
            Op::NewCert { file } => send(sock, report, format!("new ssl cert {file}"), None),
            Op::UpdateCert { file, pem } => {
                send(sock, report, format!("set ssl cert {file}"), Some(pem))?;
                send(sock, report, format!("commit ssl cert {file}"), None)
            }
            Op::AddCrtListLine { line } => send(
                sock,
                report,
                format!("add ssl crt-list {CRT_LIST}"),
                Some(line.as_bytes()),
            ),
            Op::DelCrtListLine { file } => send(
                sock,
                report,
                format!("del ssl crt-list {CRT_LIST} {file}"),
                None,
            ),
            Op::DelCert { file } => send(sock, report, format!("del ssl cert {file}"), None),
            Op::NewCaFile { file } => send(sock, report, format!("new ssl ca-file {file}"), None),
            Op::UpdateCaFile { file, pem } => {
                send(sock, report, format!("set ssl ca-file {file}"), Some(pem))?;
                send(sock, report, format!("commit ssl ca-file {file}"), None)
            }
        }
    }
}

/// Run one command (with a payload: a PEM or a crt-list line, sent with
/// `<<`) and count it; a failure as an error naming the command.
fn send(
    sock: &mut StatsSocket,
    report: &mut LiveReport,
    text: String,
    payload: Option<&[u8]>,
) -> Result<(), RuntimeError> {
    report.commands += 1;
    run(sock, text, payload)
}

fn run(sock: &mut StatsSocket, text: String, payload: Option<&[u8]>) -> Result<(), RuntimeError> {
    let expect = Expect::for_command(&text).unwrap_or(Expect::Empty);
    let command = match payload {
        Some(p) => {
            let p = String::from_utf8_lossy(p).trim_end().to_string();
            Command::with_payload(text, p, expect)
        }
        None => Command::new(text, expect),
    };
    match command.run(sock) {
        Outcome::Done => Ok(()),
        Outcome::StillInUse { answer } => Err(RuntimeError::StillInUse {
            command: command.text,
            answer,
        }),
        Outcome::Refused { answer } => Err(RuntimeError::Refused {
            command: command.text,
            answer,
        }),
        Outcome::Error(e) => Err(e),
    }
}
