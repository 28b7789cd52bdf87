//! Client for the HAProxy master CLI (`haproxy -W -S <unix socket>`).
//!
//! One connection per command, non-interactive: routegen writes the command
//! and a newline, then half-closes its side. HAProxy answers and closes once
//! it sees end of input; without the half-close, HAProxy 2.6 keeps the
//! connection open after answering (verified on 2.6.12), so the half-close is
//! what makes "read until EOF" terminate. Every step is bounded by a timeout.
//!
//! `show proc` formats understood (columns separated by runs of spaces):
//!
//! ```text
//! HAProxy 2.5 .. 3.x (2.6.12 captured):
//! #<PID>          <type>          <reloads>       <uptime>        <version>
//! 31229           master          4 [failed: 0]   0d00h00m21s     2.6.12-1+deb12u4
//! # workers
//! 32179           worker          0               0d00h00m00s     2.6.12-1+deb12u4
//! # old workers
//! 32050           worker          1               0d00h00m01s     2.6.12-1+deb12u4
//! # programs
//!
//! HAProxy 2.0 .. 2.4 (an extra <relative PID> column; old ones `[was: N]`):
//! #<PID>          <type>          <relative PID>  <reloads>       <uptime>        <version>
//! 1162            master          0               5               0d00h02m07s     2.4.0
//! # workers
//! 1271            worker          1               0               0d00h00m00s     2.4.0
//! # old workers
//! 1233            worker          [was: 1]        3               0d00h00m43s     2.4.0
//! ```
//!
//! The parser keys on the section lines (`# workers`, `# old workers`,
//! `# programs`, `# old programs`), the pid in the first column, the uptime
//! token (`<d>d<hh>h<mm>m<ss>s`) and bracketed annotations, so extra columns
//! in later versions do not break it.
//!
//! `reload`: HAProxy 2.6 answers nothing and closes the connection (the
//! master re-executes itself); 2.7+ answers `Success=1` or `Success=0`,
//! then `--` and the startup log, once the new configuration is loaded.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use super::{ReloadError, ReloadOptions, ReloadOutcome};

/// Largest answer read from the master CLI; `show proc` and startup logs
/// are a few KiB.
const MAX_REPLY_BYTES: u64 = 4 * 1024 * 1024;

/// A master CLI endpoint. Cheap to clone; holds no connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterCli {
    socket: PathBuf,
    io_timeout: Duration,
}

/// One HAProxy process as listed by `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Worker {
    /// Its pid (in HAProxy's pid namespace).
    pub pid: u32,
    /// The relative pid (HAProxy 2.0 .. 2.4 only; `[was: N]` for old ones).
    pub relative_pid: Option<u32>,
    /// How many reloads this process has lived through (for old workers: how
    /// many since it stopped being current, plus one).
    pub reloads: Option<u32>,
    /// Uptime as printed, e.g. `0d00h00m21s`.
    pub uptime_text: String,
    /// HAProxy version of that process.
    pub version: String,
}

impl Worker {
    /// Uptime, when `uptime_text` has the usual `<d>d<hh>h<mm>m<ss>s` form.
    pub fn uptime(&self) -> Option<Duration> {
        parse_uptime(&self.uptime_text)
    }
}

/// The parsed answer to `show proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessList {
    /// The master's pid.
    pub master_pid: u32,
    /// Reloads the master has done (successful and failed).
    pub master_reloads: Option<u32>,
    /// Failed reloads (`[failed: N]`, HAProxy 2.6+). HAProxy 2.6 counts the
    /// failures since the last successful reload (back to 0 after one).
    pub failed_reloads: Option<u32>,
    /// The master's HAProxy version.
    pub version: String,
    /// Workers serving the current configuration.
    pub current_workers: Vec<Worker>,
    /// Workers of previous configurations, still draining connections.
    pub old_workers: Vec<Worker>,
}

impl ProcessList {
    /// Pids of the current workers.
    pub fn current_pids(&self) -> Vec<u32> {
        self.current_workers.iter().map(|w| w.pid).collect()
    }
}

/// The answer to `reload`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadReply {
    /// Nothing: HAProxy 2.6 closes the connection when it re-executes.
    Closed,
    /// `Success=1` (HAProxy 2.7+) with the startup log after `--`.
    Success {
        /// Startup log.
        log: String,
    },
    /// `Success=0` (HAProxy 2.7+) with the startup log after `--`.
    Failure {
        /// Startup log (HAProxy's reason).
        log: String,
    },
    /// Anything else (an error message, e.g. permission denied).
    Other(String),
}

/// Interpret the answer to `reload`.
pub fn parse_reload_reply(text: &str) -> ReloadReply {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return ReloadReply::Closed;
    }
    let mut lines = trimmed.lines();
    let first = lines.next().unwrap_or("").trim();
    let Some(value) = first.strip_prefix("Success=") else {
        return ReloadReply::Other(trimmed.to_string());
    };
    let rest: Vec<&str> = lines.collect();
    let log_lines = match rest.iter().position(|l| l.trim() == "--") {
        Some(i) => &rest[i + 1..],
        None => &rest[..],
    };
    let log = log_lines.join("\n").trim().to_string();
    match value.trim() {
        "1" => ReloadReply::Success { log },
        "0" => ReloadReply::Failure { log },
        _ => ReloadReply::Other(trimmed.to_string()),
    }
}

/// Parse `<d>d<hh>h<mm>m<ss>s` (e.g. `1d02h03m04s`).
fn parse_uptime(s: &str) -> Option<Duration> {
    let mut total: u64 = 0;
    let mut digits = String::new();
    let mut units = ['d', 'h', 'm', 's'].into_iter();
    for c in s.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = units.next()?;
        if c != unit || digits.is_empty() {
            return None;
        }
        let n: u64 = digits.parse().ok()?;
        digits.clear();
        let mult = match unit {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            _ => 1,
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
    }
    if !digits.is_empty() || units.next().is_some() {
        return None;
    }
    Some(Duration::from_secs(total))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Head,
    Workers,
    OldWorkers,
    Other,
}

/// One data line of `show proc`, split into what we understand.
struct Row {
    pid: u32,
    kind: String,
    numbers: Vec<u32>,
    annotations: Vec<(String, String)>,
    uptime_text: String,
    version: String,
}

fn parse_row(line: &str) -> Result<Row, String> {
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let pid = tokens
        .first()
        .and_then(|t| t.parse::<u32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("line `{line}`: the first column is not a pid"))?;
    let kind = tokens
        .get(1)
        .ok_or_else(|| format!("line `{line}`: no type column"))?
        .to_string();
    let uptime_at = tokens
        .iter()
        .skip(2)
        .position(|t| parse_uptime(t).is_some())
        .map(|i| i + 2);
    let (middle, uptime_text, version) = match uptime_at {
        Some(i) => (
            &tokens[2..i],
            tokens[i].to_string(),
            tokens[i + 1..].join(" "),
        ),
        None => (&tokens[2..], String::new(), String::new()),
    };
    // Middle columns: plain numbers and `[key: value]` annotations.
    let mut numbers = Vec::new();
    let mut annotations = Vec::new();
    let middle = middle.join(" ");
    let mut rest = middle.as_str();
    while !rest.is_empty() {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').unwrap_or(after.len());
            let inner = &after[..end];
            if let Some((k, v)) = inner.split_once(':') {
                annotations.push((k.trim().to_string(), v.trim().to_string()));
            }
            rest = after.get(end + 1..).unwrap_or("");
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == '[')
                .unwrap_or(rest.len());
            if let Ok(n) = rest[..end].parse::<u32>() {
                numbers.push(n);
            }
            rest = &rest[end..];
        }
    }
    Ok(Row {
        pid,
        kind,
        numbers,
        annotations,
        uptime_text,
        version,
    })
}

fn annotation(row: &Row, key: &str) -> Option<u32> {
    row.annotations
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .and_then(|(_, v)| v.parse().ok())
}

/// Parse the answer to `show proc` (see the module documentation for the
/// formats). Fails when there is no master line or a line in a worker
/// section has no pid.
pub fn parse_show_proc(text: &str) -> Result<ProcessList, String> {
    let mut has_relative_pid = false;
    let mut section = Section::Head;
    let mut master: Option<Row> = None;
    let mut current = Vec::new();
    let mut old = Vec::new();

    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with("#<") || line.starts_with("# <") {
            has_relative_pid = line.contains("<relative PID>");
            continue;
        }
        if let Some(title) = line.strip_prefix('#') {
            section = match title.trim().to_ascii_lowercase().as_str() {
                "workers" => Section::Workers,
                "old workers" => Section::OldWorkers,
                _ => Section::Other,
            };
            continue;
        }
        match section {
            Section::Head => {
                let row = parse_row(line)?;
                if row.kind == "master" {
                    master = Some(row);
                }
            }
            Section::Workers | Section::OldWorkers => {
                let row = parse_row(line)?;
                let (relative_pid, reloads) = if has_relative_pid && row.numbers.len() >= 2 {
                    (Some(row.numbers[0]), Some(row.numbers[1]))
                } else {
                    (annotation(&row, "was"), row.numbers.last().copied())
                };
                let worker = Worker {
                    pid: row.pid,
                    relative_pid,
                    reloads,
                    uptime_text: row.uptime_text,
                    version: row.version,
                };
                if section == Section::Workers {
                    current.push(worker);
                } else {
                    old.push(worker);
                }
            }
            Section::Other => {}
        }
    }

    let master = master.ok_or_else(|| "no `master` line".to_string())?;
    let master_reloads = if has_relative_pid && master.numbers.len() >= 2 {
        Some(master.numbers[1])
    } else {
        master.numbers.last().copied()
    };
    Ok(ProcessList {
        master_pid: master.pid,
        master_reloads,
        failed_reloads: annotation(&master, "failed"),
        version: master.version,
        current_workers: current,
        old_workers: old,
    })
}

/// Refuse commands that could smuggle a second line to the CLI.
fn check_command(cmd: &str) -> Result<(), ReloadError> {
    if cmd.chars().any(char::is_control) {
        return Err(ReloadError::InvalidCommand {
            command: cmd.to_string(),
        });
    }
    Ok(())
}

/// The peer went away: for `reload` on HAProxy 2.6 this is the normal end.
fn is_disconnect(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected
    )
}

impl MasterCli {
    /// A client for the master CLI at `socket` (2 s I/O bound).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        MasterCli {
            socket: socket.into(),
            io_timeout: Duration::from_secs(2),
        }
    }

    /// Bound of connect, write and read of one ordinary command.
    pub fn with_io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Send one command and return the whole answer (until HAProxy closes),
    /// bounded by the I/O timeout. A command may be prefixed with `@!<pid> `
    /// or `@<relative pid> ` to reach a worker.
    pub async fn command(&self, cmd: &str) -> Result<String, ReloadError> {
        self.exchange(cmd, self.io_timeout).await
    }

    async fn exchange(&self, cmd: &str, read_timeout: Duration) -> Result<String, ReloadError> {
        check_command(cmd)?;
        let io_err = |op: &str, source| ReloadError::Io {
            socket: self.socket.clone(),
            op: op.to_string(),
            source,
        };
        let timeout_err = |op: &str, after| ReloadError::Timeout {
            socket: self.socket.clone(),
            op: op.to_string(),
            after,
        };

        let mut stream = tokio::time::timeout(self.io_timeout, UnixStream::connect(&self.socket))
            .await
            .map_err(|_| timeout_err("connect", self.io_timeout))?
            .map_err(|e| io_err("connect", e))?;

        let op = format!("send {cmd:?}");
        let line = format!("{cmd}\n");
        let write = async {
            stream.write_all(line.as_bytes()).await?;
            // Half-close: tells HAProxy there is no further command, so it
            // closes after answering.
            match stream.shutdown().await {
                Err(e) if !is_disconnect(&e) => Err(e),
                _ => Ok(()),
            }
        };
        tokio::time::timeout(self.io_timeout, write)
            .await
            .map_err(|_| timeout_err(&op, self.io_timeout))?
            .map_err(|e| io_err(&op, e))?;

        let op = format!("read answer to {cmd:?}");
        let mut buf = Vec::new();
        let read = async {
            let mut limited = (&mut stream).take(MAX_REPLY_BYTES);
            match limited.read_to_end(&mut buf).await {
                Err(e) if !is_disconnect(&e) => Err(e),
                _ => Ok(()),
            }
        };
        tokio::time::timeout(read_timeout, read)
            .await
            .map_err(|_| timeout_err(&op, read_timeout))?
            .map_err(|e| io_err(&op, e))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    /// `show proc`, parsed, together with the raw answer.
    pub async fn show_proc_raw(&self) -> Result<(ProcessList, String), ReloadError> {
        let raw = self.command("show proc").await?;
        let list = parse_show_proc(&raw).map_err(|reason| ReloadError::ShowProcParse {
            reason,
            output: raw.clone(),
        })?;
        Ok((list, raw))
    }

    /// `show proc`, parsed.
    pub async fn show_proc(&self) -> Result<ProcessList, ReloadError> {
        Ok(self.show_proc_raw().await?.0)
    }

    /// Number of old workers still draining.
    pub async fn old_workers(&self) -> Result<usize, ReloadError> {
        Ok(self.show_proc().await?.old_workers.len())
    }

    /// Reload and confirm.
    ///
    /// 1. `show proc`: remember the current worker pids and the failed-reload
    ///    count.
    /// 2. `reload`: an empty answer / closed connection (2.6) or
    ///    `Success=1` (2.7+) go on; `Success=0` fails with HAProxy's log.
    /// 3. Every `poll_interval` until `confirm_timeout` (counted from the
    ///    start): `show proc`. A higher failed-reload count fails at once; a
    ///    current worker that was not current before, and that answers a
    ///    command forwarded to it (`@!<pid> show info`, so its event loop
    ///    runs and it has told the old workers to stop accepting), confirms.
    ///    Connection errors while the master re-executes are retried.
    pub async fn reload(&self, opts: &ReloadOptions) -> Result<ReloadOutcome, ReloadError> {
        let start = Instant::now();
        let before = self.show_proc().await?;
        let before_pids = before.current_pids();

        let reply = self.exchange("reload", opts.confirm_timeout).await?;
        match parse_reload_reply(&reply) {
            ReloadReply::Closed => {
                tracing::debug!(socket = %self.socket.display(), "reload: connection closed (HAProxy <= 2.6)")
            }
            ReloadReply::Success { log } => {
                tracing::debug!(socket = %self.socket.display(), %log, "reload: Success=1")
            }
            ReloadReply::Failure { log } => return Err(ReloadError::Rejected { log }),
            ReloadReply::Other(reply) => {
                return Err(ReloadError::UnexpectedReply {
                    command: "reload".into(),
                    reply,
                })
            }
        }

        let deadline = start + opts.confirm_timeout;
        let mut last: String;
        loop {
            match self.show_proc_raw().await {
                Ok((list, raw)) => {
                    if let (Some(b), Some(a)) = (before.failed_reloads, list.failed_reloads) {
                        if a > b {
                            return Err(ReloadError::ReloadFailed {
                                before: b,
                                after: a,
                                show_proc: raw,
                            });
                        }
                    }
                    let new: Vec<u32> = list
                        .current_pids()
                        .into_iter()
                        .filter(|p| !before_pids.contains(p))
                        .collect();
                    if !new.is_empty() && self.workers_answer(&new).await {
                        let outcome = ReloadOutcome {
                            new_worker_pids: new,
                            old_worker_count: list.old_workers.len(),
                            duration: start.elapsed(),
                            confirmed: true,
                        };
                        tracing::info!(
                            new_workers = ?outcome.new_worker_pids,
                            old_workers = outcome.old_worker_count,
                            duration_ms = outcome.duration.as_millis() as u64,
                            "HAProxy reloaded"
                        );
                        return Ok(outcome);
                    }
                    last = raw;
                }
                Err(e) => last = format!("(error: {e})"),
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(opts.poll_interval.min(deadline - now)).await;
        }
        Err(ReloadError::NoNewWorker {
            waited: start.elapsed(),
            before: before_pids,
            show_proc: last,
        })
    }

    /// True when every pid answers a command forwarded through the master.
    pub(crate) async fn workers_answer(&self, pids: &[u32]) -> bool {
        for pid in pids {
            match self.command(&format!("@!{pid} show info")).await {
                Ok(reply) if reply.contains(&format!("Pid: {pid}")) => {}
                Ok(reply) => {
                    tracing::debug!(pid, %reply, "new worker not answering yet");
                    return false;
                }
                Err(e) => {
                    tracing::debug!(pid, error = %e, "new worker not answering yet");
                    return false;
                }
            }
        }
        true
    }

    /// Keep at most `max` old workers: when more are draining, send SIGTERM
    /// (HAProxy's hard stop: the worker closes its remaining connections
    /// and exits) to the oldest ones (most reloads survived, then longest
    /// uptime). Returns the pids signalled.
    ///
    /// The master CLI has no command that stops one worker (2.6: `@!<pid>`
    /// reaches an old worker, but it offers only per-session `shutdown
    /// session`), so this uses a signal, which needs routegen to see
    /// HAProxy's processes: each pid must be a child of the master according
    /// to `/proc/<pid>/stat` (same pid namespace), else it is left alone and
    /// [`ReloadError::NotOurWorker`] is returned when nothing could be
    /// stopped. Independently, `hard-stop-after` and `mworker-max-reloads`
    /// in the configuration bound old workers inside HAProxy.
    pub async fn enforce_old_worker_cap(&self, max: usize) -> Result<Vec<u32>, ReloadError> {
        let list = self.show_proc().await?;
        if list.old_workers.len() <= max {
            return Ok(Vec::new());
        }
        let mut old = list.old_workers.clone();
        old.sort_by(|a, b| {
            b.reloads
                .cmp(&a.reloads)
                .then_with(|| b.uptime().cmp(&a.uptime()))
        });
        let excess = old.len() - max;
        let mut stopped = Vec::new();
        let mut first_err = None;
        for w in old.iter().take(excess) {
            let res = check_child_of(w.pid, list.master_pid).and_then(|()| {
                kill(Pid::from_raw(w.pid as i32), Signal::SIGTERM).map_err(|source| {
                    ReloadError::Signal {
                        pid: w.pid as i32,
                        signal: "SIGTERM",
                        source,
                    }
                })
            });
            match res {
                Ok(()) => {
                    tracing::info!(pid = w.pid, reloads = ?w.reloads, uptime = %w.uptime_text, max, "old worker cap: stopping old HAProxy worker");
                    stopped.push(w.pid);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "old worker cap");
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) if stopped.is_empty() => Err(e),
            _ => Ok(stopped),
        }
    }
}

/// Check through `/proc` that `pid` is a child of `master` in our pid
/// namespace, so a pid printed by HAProxy is never mistaken for another
/// process.
fn check_child_of(pid: u32, master: u32) -> Result<(), ReloadError> {
    let not_ours = |reason: String| ReloadError::NotOurWorker { pid, reason };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| {
        not_ours(format!(
            "cannot read /proc/{pid}/stat ({e}); is HAProxy in another pid namespace?"
        ))
    })?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
    let after = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| not_ours("unreadable /proc stat".into()))?;
    let ppid: u32 = after
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| not_ours("unreadable /proc stat".into()))?;
    if ppid != master {
        return Err(not_ours(format!(
            "its parent is {ppid}, not the HAProxy master {master}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from HAProxy 2.6.12 (Debian), right after start.
    const V26_FRESH: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n31229           master          0 [failed: 0]   0d00h00m01s     2.6.12-1+deb12u4\n# workers\n31232           worker          0               0d00h00m01s     2.6.12-1+deb12u4\n# programs\n\n";

    /// Captured from HAProxy 2.6.12 after two reloads while connections were
    /// held open: two old workers, the newer one listed first.
    const V26_OLD: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n31229           master          4 [failed: 0]   0d00h00m21s     2.6.12-1+deb12u4\n# workers\n32179           worker          0               0d00h00m00s     2.6.12-1+deb12u4\n# old workers\n32050           worker          1               0d00h00m01s     2.6.12-1+deb12u4\n31903           worker          2               0d00h00m05s     2.6.12-1+deb12u4\n# programs\n\n";

    /// Captured from HAProxy 2.6.12 after a reload with a configuration that
    /// failed: the failed count went up, the worker stayed.
    const V26_FAILED: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>      \n31229           master          5 [failed: 1]   0d00h00m32s     2.6.12-1+deb12u4\n# workers\n32179           worker          1               0d00h00m11s     2.6.12-1+deb12u4\n# programs\n\n";

    /// HAProxy 2.0 .. 2.4 layout (management guide), with programs.
    const V24: &str = "#<PID>          <type>          <relative PID>  <reloads>       <uptime>        <version>\n1162            master          0               5               0d00h02m07s     2.4.0\n# workers\n1271            worker          1               0               0d00h00m00s     2.4.0\n1272            worker          2               0               0d00h00m00s     2.4.0\n# old workers\n1233            worker          [was: 1]        3               0d00h00m43s     2.0-dev3-6019f6-289\n# programs\n1244            foo             -               0               0d00h00m00s     -\n# old programs\n1200            bar             -               2               0d00h01m00s     -\n";

    /// 3.x-style layout (management guide): programs with a dash version,
    /// an extra annotation column.
    const V3X: &str = "#<PID>          <type>          <reloads>       <uptime>        <version>\n4001            master          12 [failed: 2]  1d02h03m04s     3.0.5\n# workers\n4100            worker          0               0d00h00m03s     3.0.5\n# old workers\n4050            worker          1               0d00h10m00s     3.0.5\n# programs\n4010            dataplane       0               0d00h00m03s     -\n";

    #[test]
    fn parses_captured_2_6_fresh() {
        let p = parse_show_proc(V26_FRESH).unwrap();
        assert_eq!(p.master_pid, 31229);
        assert_eq!(p.master_reloads, Some(0));
        assert_eq!(p.failed_reloads, Some(0));
        assert_eq!(p.version, "2.6.12-1+deb12u4");
        assert_eq!(
            p.current_workers,
            vec![Worker {
                pid: 31232,
                relative_pid: None,
                reloads: Some(0),
                uptime_text: "0d00h00m01s".into(),
                version: "2.6.12-1+deb12u4".into(),
            }]
        );
        assert!(p.old_workers.is_empty());
    }

    #[test]
    fn parses_captured_2_6_with_old_workers() {
        let p = parse_show_proc(V26_OLD).unwrap();
        assert_eq!(p.master_reloads, Some(4));
        assert_eq!(p.current_pids(), vec![32179]);
        let old: Vec<(u32, Option<u32>)> =
            p.old_workers.iter().map(|w| (w.pid, w.reloads)).collect();
        assert_eq!(old, vec![(32050, Some(1)), (31903, Some(2))]);
        assert_eq!(p.old_workers[1].uptime(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn parses_captured_2_6_failed_reload() {
        let p = parse_show_proc(V26_FAILED).unwrap();
        assert_eq!(p.master_reloads, Some(5));
        assert_eq!(p.failed_reloads, Some(1));
        assert_eq!(p.current_pids(), vec![32179]);
        assert_eq!(p.current_workers[0].reloads, Some(1));
    }

    #[test]
    fn parses_2_4_layout_with_relative_pids_and_programs() {
        let p = parse_show_proc(V24).unwrap();
        assert_eq!(p.master_pid, 1162);
        assert_eq!(p.master_reloads, Some(5));
        assert_eq!(p.failed_reloads, None);
        assert_eq!(p.current_pids(), vec![1271, 1272]);
        assert_eq!(p.current_workers[1].relative_pid, Some(2));
        assert_eq!(p.current_workers[1].reloads, Some(0));
        assert_eq!(p.old_workers.len(), 1);
        let old = &p.old_workers[0];
        assert_eq!(
            (old.pid, old.relative_pid, old.reloads),
            (1233, Some(1), Some(3))
        );
        assert_eq!(old.version, "2.0-dev3-6019f6-289");
    }

    #[test]
    fn parses_3x_layout_and_ignores_programs() {
        let p = parse_show_proc(V3X).unwrap();
        assert_eq!(p.master_pid, 4001);
        assert_eq!(p.master_reloads, Some(12));
        assert_eq!(p.failed_reloads, Some(2));
        assert_eq!(p.current_pids(), vec![4100]);
        assert_eq!(p.old_workers[0].uptime(), Some(Duration::from_secs(600)));
        assert_eq!(p.version, "3.0.5");
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_show_proc("").unwrap_err().contains("no `master`"));
        assert!(parse_show_proc("Unknown command: 'show'\n").is_err());
        let bad_worker = "#<PID> <type>\n1 master 0 0d00h00m01s 2.6\n# workers\nabc worker 0\n";
        assert!(parse_show_proc(bad_worker)
            .unwrap_err()
            .contains("not a pid"));
    }

    #[test]
    fn uptime_forms() {
        assert_eq!(
            parse_uptime("1d02h03m04s"),
            Some(Duration::from_secs(86_400 + 2 * 3600 + 3 * 60 + 4))
        );
        for bad in [
            "",
            "0d00h00m",
            "00h00m01s",
            "0d00h00m01",
            "0d00m00h01s",
            "xd",
        ] {
            assert_eq!(parse_uptime(bad), None, "{bad}");
        }
    }

    #[test]
    fn reload_replies() {
        assert_eq!(parse_reload_reply(""), ReloadReply::Closed);
        assert_eq!(parse_reload_reply("\n"), ReloadReply::Closed);
        assert_eq!(
            parse_reload_reply(
                "Success=1\n--\n[NOTICE]   (1) : New worker (2) forked\n[NOTICE]   (1) : Loading success.\n"
            ),
            ReloadReply::Success {
                log: "[NOTICE]   (1) : New worker (2) forked\n[NOTICE]   (1) : Loading success.".into()
            }
        );
        assert_eq!(
            parse_reload_reply("Success=0\n--\n[ALERT]    (1) : config : parsing [h.cfg:10] : 'bind' : invalid address\n"),
            ReloadReply::Failure {
                log: "[ALERT]    (1) : config : parsing [h.cfg:10] : 'bind' : invalid address".into()
            }
        );
        assert_eq!(
            parse_reload_reply("Permission denied\n\n"),
            ReloadReply::Other("Permission denied".into())
        );
    }

    #[tokio::test]
    async fn refuses_multi_line_commands() {
        let cli = MasterCli::new("/nonexistent/socket");
        let err = cli.command("show proc\nreload").await.unwrap_err();
        assert!(matches!(err, ReloadError::InvalidCommand { .. }), "{err}");
    }

    #[tokio::test]
    async fn unreachable_socket_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        let cli = MasterCli::new(dir.path().join("absent.sock"));
        let err = cli.show_proc().await.unwrap_err();
        assert_eq!(err.reason(), "unreachable");
        assert!(err.to_string().contains("absent.sock"), "{err}");
    }

    /// A fake master speaking the HAProxy 2.7+ dialect: `reload` answers
    /// `Success=…` and (on success) replaces the worker.
    async fn fake_master(
        socket: &Path,
        reload_answer: &'static str,
        silent: bool,
    ) -> tokio::task::JoinHandle<()> {
        let listener = tokio::net::UnixListener::bind(socket).unwrap();
        tokio::spawn(async move {
            let mut worker = 200u32;
            // Bounded: a test never needs more than a few dozen exchanges.
            for _ in 0..200 {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let mut line = Vec::new();
                let _ = (&mut conn).take(1024).read_to_end(&mut line).await;
                let cmd = String::from_utf8_lossy(&line).trim().to_string();
                if silent {
                    // Never answer and never close: the client must time out.
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    continue;
                }
                let answer = if cmd == "show proc" {
                    format!(
                        "#<PID>          <type>          <reloads>       <uptime>        <version>\n100             master          0 [failed: 0]   0d00h00m01s     3.0.0\n# workers\n{worker}             worker          0               0d00h00m01s     3.0.0\n# programs\n\n"
                    )
                } else if cmd == "reload" {
                    if reload_answer.starts_with("Success=1") {
                        worker += 1;
                    }
                    reload_answer.to_string()
                } else if let Some(rest) = cmd.strip_prefix("@!") {
                    let pid = rest.split_whitespace().next().unwrap_or("");
                    format!("Name: HAProxy\nPid: {pid}\n\n")
                } else {
                    "Unknown command.\n".to_string()
                };
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        })
    }

    fn fast() -> ReloadOptions {
        ReloadOptions {
            confirm_timeout: Duration::from_millis(800),
            poll_interval: Duration::from_millis(20),
            io_timeout: Duration::from_millis(300),
            command_timeout: Duration::from_secs(1),
        }
    }

    #[tokio::test]
    async fn success_1_dialect_is_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("m.sock");
        let server = fake_master(&sock, "Success=1\n--\n[NOTICE] Loading success.\n", false).await;
        let cli = MasterCli::new(&sock).with_io_timeout(Duration::from_millis(300));
        let out = cli.reload(&fast()).await.unwrap();
        assert_eq!(out.new_worker_pids, vec![201]);
        assert!(out.confirmed);
        server.abort();
    }

    #[tokio::test]
    async fn success_0_dialect_is_a_rejection_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("m.sock");
        let server = fake_master(
            &sock,
            "Success=0\n--\n[ALERT]    (7) : config : parsing [x.cfg:3] : unknown keyword 'bnd'\n",
            false,
        )
        .await;
        let cli = MasterCli::new(&sock);
        let err = cli.reload(&fast()).await.unwrap_err();
        assert_eq!(err.reason(), "rejected");
        assert!(err.to_string().contains("unknown keyword 'bnd'"), "{err}");
        server.abort();
    }

    #[tokio::test]
    async fn closed_without_new_worker_is_no_new_worker() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("m.sock");
        // Answers nothing to reload (2.6 style) but never replaces the worker.
        let server = fake_master(&sock, "", false).await;
        let cli = MasterCli::new(&sock);
        let err = cli.reload(&fast()).await.unwrap_err();
        assert_eq!(err.reason(), "no_new_worker");
        let msg = err.to_string();
        assert!(msg.contains("did not start a new worker"), "{msg}");
        assert!(msg.contains("# workers"), "{msg}");
        server.abort();
    }

    #[tokio::test]
    async fn silent_master_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("m.sock");
        let server = fake_master(&sock, "", true).await;
        let cli = MasterCli::new(&sock).with_io_timeout(Duration::from_millis(200));
        let start = Instant::now();
        let err = cli.show_proc().await.unwrap_err();
        assert_eq!(err.reason(), "timeout");
        assert!(start.elapsed() < Duration::from_secs(2));
        server.abort();
    }

    #[test]
    fn check_child_of_refuses_strangers() {
        // Our own pid is not a child of pid 1 in most test environments,
        // and certainly not of u32::MAX.
        let me = std::process::id();
        let err = check_child_of(me, u32::MAX).unwrap_err();
        assert_eq!(err.reason(), "not_our_worker");
        let err = check_child_of(u32::MAX - 1, 1).unwrap_err();
        assert!(err.to_string().contains("/proc"), "{err}");
    }
}
