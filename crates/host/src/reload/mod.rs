//! Reload: make a running HAProxy serve the tree that apply just swapped in
//! (SPEC §9).
//!
//! The default and only *confirmed* method is the master CLI of an HAProxy
//! running in master-worker mode (`haproxy -W -S <socket>`): routegen sends
//! `reload` and then watches `show proc` until a worker it has not seen
//! before is the current worker. The alternatives (`signal:PIDFILE`,
//! `command:...`, `none`) only report that the reload was *requested*.
//!
//! Modules:
//! - [`master_cli`]: the master CLI client, the `show proc` parser, reload
//!   with confirmation and the old-worker cap.
//! - [`signal`]: `SIGUSR2` to the master whose pid is in a pidfile.
//! - [`command`]: `sh -c <command>` with a timeout.
//! - [`process`]: start and stop HAProxy ourselves (`run --spawn-haproxy`).
//! - [`events`]: HAProxy's event messages received on a unix datagram socket.

pub mod command;
pub mod events;
pub mod master_cli;
pub mod nginx;
pub mod output;
pub mod process;
pub mod signal;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::{Duration, Instant};

pub use master_cli::{MasterCli, ProcessList, Worker};
pub use process::{HaproxyProcess, ProcessError, SpawnOptions};

/// How routegen makes HAProxy load a new configuration (`--reload`).
///
/// String forms (what [`FromStr`] accepts and [`Display`](fmt::Display)
/// prints): `master-cli:SOCKET_PATH`, `signal:PIDFILE`,
/// `command:SHELL COMMAND`, `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadMethod {
    /// Master CLI socket (`haproxy -W -S <path>`): `reload`, confirmed with
    /// `show proc`.
    MasterCli(PathBuf),
    /// Send `SIGUSR2` to the master whose pid is the first line of this file
    /// (`haproxy -W -p <pidfile>`). Not confirmed.
    Signal(PathBuf),
    /// Run this with `sh -c`; exit status 0 is success. Not confirmed.
    Command(String),
    /// Never reload (someone else watches the output tree).
    None,
}

/// The accepted `--reload` forms, for error and help messages.
pub const RELOAD_METHOD_FORMS: &str =
    "`master-cli:SOCKET_PATH`, `signal:PIDFILE`, `command:SHELL COMMAND` or `none`";

/// A `--reload` value that is none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reload method `{input}`: {reason}; expected {RELOAD_METHOD_FORMS}")]
pub struct ParseReloadMethodError {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for ReloadMethod {
    type Err = ParseReloadMethodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseReloadMethodError {
            input: s.to_string(),
            reason,
        };
        if s.trim() == "none" {
            return Ok(ReloadMethod::None);
        }
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(err("unknown method"));
        };
        match kind.trim() {
            "master-cli" => {
                if rest.trim().is_empty() {
                    return Err(err("the master CLI socket path is empty"));
                }
                Ok(ReloadMethod::MasterCli(PathBuf::from(rest)))
            }
            "signal" => {
                if rest.trim().is_empty() {
                    return Err(err("the pidfile path is empty"));
                }
                Ok(ReloadMethod::Signal(PathBuf::from(rest)))
            }
            "command" => {
                if rest.trim().is_empty() {
                    return Err(err("the command is empty"));
                }
                Ok(ReloadMethod::Command(rest.to_string()))
            }
            _ => Err(err("unknown method")),
        }
    }
}

impl fmt::Display for ReloadMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadMethod::MasterCli(p) => write!(f, "master-cli:{}", p.display()),
            ReloadMethod::Signal(p) => write!(f, "signal:{}", p.display()),
            ReloadMethod::Command(c) => write!(f, "command:{c}"),
            ReloadMethod::None => f.write_str("none"),
        }
    }
}

/// Timeouts and polling of a reload. Every wait is bounded by one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReloadOptions {
    /// How long to wait, after `reload`, for a new worker to show up in
    /// `show proc` (and, on HAProxy 2.7+, for the `reload` answer, which
    /// comes once the new configuration is loaded). Default 10 s.
    pub confirm_timeout: Duration,
    /// Pause between two `show proc` while confirming. Default 50 ms.
    pub poll_interval: Duration,
    /// Connect/write/read bound of one master CLI command. Default 2 s.
    pub io_timeout: Duration,
    /// Bound of a `command:` reload. Default 30 s.
    pub command_timeout: Duration,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions {
            confirm_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            io_timeout: Duration::from_secs(2),
            command_timeout: Duration::from_secs(30),
        }
    }
}

/// What a successful reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadOutcome {
    /// Pids of the current workers that were not current before the reload
    /// (master CLI only; empty for the other methods).
    pub new_worker_pids: Vec<u32>,
    /// Old workers still draining after the reload (master CLI only; 0 for
    /// the other methods).
    pub old_worker_count: usize,
    /// From the request to the confirmation (or to the request being sent,
    /// for unconfirmed methods).
    pub duration: Duration,
    /// True when a new worker was seen serving (master CLI); false when the
    /// method can only say that the reload was requested.
    pub confirmed: bool,
}

/// Why a reload (or a master CLI query) failed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The master CLI socket could not be reached or the exchange failed.
    #[error("master CLI {socket}: {op}: {source}")]
    Io {
        /// The socket path.
        socket: PathBuf,
        /// What was being done (`connect`, `send "show proc"`...).
        op: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A master CLI exchange did not finish in time.
    #[error("master CLI {socket}: {op}: no answer within {after:?}")]
    Timeout {
        /// The socket path.
        socket: PathBuf,
        /// What was being done.
        op: String,
        /// The bound that expired.
        after: Duration,
    },
    /// A command that cannot be sent safely (control characters).
    #[error("refusing to send master CLI command {command:?}: it contains control characters")]
    InvalidCommand {
        /// The command.
        command: String,
    },
    /// `show proc` answered something this parser does not understand.
    #[error("cannot parse `show proc` output: {reason}; output was:\n{output}")]
    ShowProcParse {
        /// What is wrong.
        reason: String,
        /// The full answer.
        output: String,
    },
    /// The master answered `reload` with `Success=0` (HAProxy 2.7+).
    #[error("HAProxy refused the new configuration (reload answered Success=0):\n{log}")]
    Rejected {
        /// The startup log HAProxy sent after `--`.
        log: String,
    },
    /// The master answered `reload` with something unexpected (e.g. a
    /// permission error).
    #[error("unexpected answer to `{command}`: {reply}")]
    UnexpectedReply {
        /// The command sent.
        command: String,
        /// Its answer.
        reply: String,
    },
    /// `show proc` counted one more failed reload (HAProxy 2.6+ prints
    /// `[failed: N]` after the master's reload count: failures since the
    /// last successful reload).
    #[error(
        "HAProxy reported the reload as failed (failed reloads {before} -> {after}); the previous \
         worker keeps serving. HAProxy's reason is in its own log (stderr). `show proc` showed:\n{show_proc}"
    )]
    ReloadFailed {
        /// Failed reloads before.
        before: u32,
        /// Failed reloads after.
        after: u32,
        /// The `show proc` answer that showed it.
        show_proc: String,
    },
    /// No new worker became current within the bound.
    #[error(
        "HAProxy did not start a new worker within {waited:?} after `reload` (workers before: \
         {before:?}); last `show proc`:\n{show_proc}"
    )]
    NoNewWorker {
        /// How long we waited.
        waited: Duration,
        /// The current workers before the reload.
        before: Vec<u32>,
        /// The last `show proc` answer (or the last error, if none came).
        show_proc: String,
    },
    /// The pidfile of `signal:PIDFILE` is unusable.
    #[error("pidfile {path}: {reason}")]
    PidFile {
        /// The pidfile.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Sending a signal failed.
    #[error("cannot send {signal} to pid {pid}: {source}")]
    Signal {
        /// The target.
        pid: i32,
        /// The signal name.
        signal: &'static str,
        /// errno.
        source: nix::Error,
    },
    /// The old-worker cap cannot be enforced safely for this pid.
    #[error("not stopping old worker {pid}: {reason}")]
    NotOurWorker {
        /// The pid from `show proc`.
        pid: u32,
        /// Why it was left alone.
        reason: String,
    },
    /// `command:` could not be started.
    #[error("reload command `{command}`: cannot start `sh`: {source}")]
    CommandSpawn {
        /// The command.
        command: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `command:` exited non-zero (or was killed by a signal).
    #[error("reload command `{command}` failed ({status}):\n{output}")]
    CommandFailed {
        /// The command.
        command: String,
        /// The exit status, as text.
        status: String,
        /// Its stdout and stderr (truncated).
        output: String,
    },
    /// `command:` ran longer than allowed and was killed.
    #[error("reload command `{command}` did not finish within {after:?} and was killed")]
    CommandTimeout {
        /// The command.
        command: String,
        /// The bound.
        after: Duration,
    },
}

impl ReloadError {
    /// A short, stable label for metrics (`reloads_total{result="error",reason=...}`).
    pub fn reason(&self) -> &'static str {
        match self {
            ReloadError::Io { .. } => "unreachable",
            ReloadError::Timeout { .. } => "timeout",
            ReloadError::InvalidCommand { .. } => "invalid_command",
            ReloadError::ShowProcParse { .. } => "unparsable",
            ReloadError::Rejected { .. } => "rejected",
            ReloadError::UnexpectedReply { .. } => "unexpected_reply",
            ReloadError::ReloadFailed { .. } => "failed",
            ReloadError::NoNewWorker { .. } => "no_new_worker",
            ReloadError::PidFile { .. } => "pidfile",
            ReloadError::Signal { .. } => "signal",
            ReloadError::NotOurWorker { .. } => "not_our_worker",
            ReloadError::CommandSpawn { .. } => "command_spawn",
            ReloadError::CommandFailed { .. } => "command_failed",
            ReloadError::CommandTimeout { .. } => "command_timeout",
        }
    }
}

/// Performs reloads with one [`ReloadMethod`].
#[derive(Debug, Clone)]
pub struct Reloader {
    method: ReloadMethod,
    options: ReloadOptions,
}

impl Reloader {
    /// A reloader for `method` with these bounds.
    pub fn new(method: ReloadMethod, options: ReloadOptions) -> Self {
        Reloader { method, options }
    }

    /// The method.
    pub fn method(&self) -> &ReloadMethod {
        &self.method
    }

    /// The bounds.
    pub fn options(&self) -> &ReloadOptions {
        &self.options
    }

    /// The master CLI client, when the method is `master-cli:`.
    pub fn master_cli(&self) -> Option<MasterCli> {
        match &self.method {
            ReloadMethod::MasterCli(p) => {
                Some(MasterCli::new(p.clone()).with_io_timeout(self.options.io_timeout))
            }
            _ => None,
        }
    }

    /// Reload HAProxy. With the master CLI this returns only once a new
    /// worker is current (or fails saying why); the other methods return
    /// once the request is made.
    pub async fn reload(&self) -> Result<ReloadOutcome, ReloadError> {
        let start = Instant::now();
        let unconfirmed = |start: Instant| ReloadOutcome {
            new_worker_pids: Vec::new(),
            old_worker_count: 0,
            duration: start.elapsed(),
            confirmed: false,
        };
        match &self.method {
            ReloadMethod::MasterCli(socket) => {
                MasterCli::new(socket.clone())
                    .with_io_timeout(self.options.io_timeout)
                    .reload(&self.options)
                    .await
            }
            ReloadMethod::Signal(pidfile) => {
                let pid = signal::send_reload(pidfile)?;
                tracing::info!(pid, pidfile = %pidfile.display(), "sent SIGUSR2 to HAProxy master");
                Ok(unconfirmed(start))
            }
            ReloadMethod::Command(cmd) => {
                let out = command::run(cmd, self.options.command_timeout).await?;
                tracing::info!(command = %cmd, output = %out.trim_end(), "reload command succeeded");
                Ok(unconfirmed(start))
            }
            ReloadMethod::None => Ok(unconfirmed(start)),
        }
    }

    /// Number of old (draining) workers, when the method can tell
    /// (`master-cli:` only; `None` otherwise).
    pub async fn old_workers(&self) -> Result<Option<usize>, ReloadError> {
        match self.master_cli() {
            Some(cli) => cli.old_workers().await.map(Some),
            None => Ok(None),
        }
    }

    /// Stop the oldest old workers beyond `max` (see
    /// [`MasterCli::enforce_old_worker_cap`]); returns the pids told to stop.
    /// Without a master CLI there is nothing to count: returns no pids.
    pub async fn enforce_old_worker_cap(&self, max: usize) -> Result<Vec<u32>, ReloadError> {
        match self.master_cli() {
            Some(cli) => cli.enforce_old_worker_cap(max).await,
            None => Ok(Vec::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!(
            "master-cli:/run/haproxy/master.sock".parse::<ReloadMethod>(),
            Ok(ReloadMethod::MasterCli("/run/haproxy/master.sock".into()))
        );
        assert_eq!(
            "signal:/run/haproxy.pid".parse::<ReloadMethod>(),
            Ok(ReloadMethod::Signal("/run/haproxy.pid".into()))
        );
        assert_eq!(
            "command:systemctl reload haproxy".parse::<ReloadMethod>(),
            Ok(ReloadMethod::Command("systemctl reload haproxy".into()))
        );
        // Only the first colon separates: commands keep theirs.
        assert_eq!(
            "command:echo a:b".parse::<ReloadMethod>(),
            Ok(ReloadMethod::Command("echo a:b".into()))
        );
        assert_eq!("none".parse::<ReloadMethod>(), Ok(ReloadMethod::None));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "master-cli:/tmp/m.sock",
            "signal:/tmp/h.pid",
            "command:kill -USR2 1",
            "none",
        ] {
            let m: ReloadMethod = s.parse().unwrap();
            assert_eq!(m.to_string(), s);
        }
    }

    #[test]
    fn errors_name_the_accepted_forms() {
        for bad in [
            "",
            "sighup",
            "master-cli:",
            "signal:  ",
            "command:",
            "ssh:host",
        ] {
            let err = bad.parse::<ReloadMethod>().unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("master-cli:SOCKET_PATH"), "{msg}");
            assert!(msg.contains("signal:PIDFILE"), "{msg}");
            assert!(msg.contains("command:SHELL COMMAND"), "{msg}");
            assert!(msg.contains("`none`"), "{msg}");
            assert!(msg.contains(&format!("`{bad}`")), "{msg}");
        }
        assert!("master-cli:"
            .parse::<ReloadMethod>()
            .unwrap_err()
            .to_string()
            .contains("socket path is empty"));
    }

    #[tokio::test]
    async fn none_reports_unconfirmed_success() {
        let r = Reloader::new(ReloadMethod::None, ReloadOptions::default());
        let out = r.reload().await.unwrap();
        assert!(!out.confirmed);
        assert!(out.new_worker_pids.is_empty());
        assert_eq!(r.old_workers().await.unwrap(), None);
        assert!(r.enforce_old_worker_cap(0).await.unwrap().is_empty());
    }
}
