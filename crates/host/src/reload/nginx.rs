//! Reload nginx (SPEC §12): make a running nginx master load the tree that
//! apply just swapped in, and confirm it did.
//!
//! nginx reloads on `SIGHUP` to its master (what `nginx -s reload` sends,
//! after reading the pid file the configuration names). The master parses
//! the configuration again; when it is valid it starts new worker
//! processes, which take over the listening sockets it keeps open, and
//! tells the old workers to finish their connections (bounded by
//! `worker_shutdown_timeout`); when it is not, it logs why and keeps the
//! old workers. So a reload is *confirmed* when a worker of the master
//! appears that was not there before; no new worker within the bound means
//! nginx refused the configuration (its reason is in its own log).
//!
//! Methods ([`NginxReload`]): signal the pid in a pid file (the routegen
//! nginx tree writes `nginx.pid` under the `-p` prefix), signal a known
//! master pid, or run `nginx -p <prefix>/ -c <conf> -s reload`. Workers are
//! found in `/proc` (children of the master).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How routegen asks nginx to reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NginxReload {
    /// `SIGHUP` to the pid in this file (`<prefix>/nginx.pid`).
    Signal(PathBuf),
    /// `SIGHUP` to this master pid (an nginx routegen started itself).
    Pid(i32),
    /// `<bin> -p <prefix>/ -c <config> -s reload`; the master pid for the
    /// confirmation is read from `<prefix>/nginx.pid`.
    Command {
        bin: PathBuf,
        prefix: PathBuf,
        config: PathBuf,
    },
}

/// A confirmed reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NginxReloadOutcome {
    /// The master that reloaded.
    pub master: i32,
    /// Its workers that did not exist before the reload.
    pub new_workers: Vec<i32>,
    /// From the request to the confirmation.
    pub duration: Duration,
}

/// Why an nginx reload failed.
#[derive(Debug, thiserror::Error)]
pub enum NginxReloadError {
    #[error("nginx pid file {path}: {reason}")]
    PidFile { path: PathBuf, reason: String },
    #[error("cannot send SIGHUP to nginx master {pid}: {source}")]
    Signal { pid: i32, source: nix::Error },
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
    #[error("cannot list the workers of nginx master {pid}: {source}")]
    Proc { pid: i32, source: std::io::Error },
    /// The master kept its old workers: it refused the configuration (see
    /// nginx's log) or did not get to it in time.
    #[error(
        "nginx master {pid} started no new worker within {waited:?} after the reload request \
         (configuration refused? see nginx's error log); workers before: {before:?}"
    )]
    NoNewWorker {
        pid: i32,
        waited: Duration,
        before: Vec<i32>,
    },
}

impl NginxReloadError {
    /// A short, stable label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            NginxReloadError::PidFile { .. } => "pidfile",
            NginxReloadError::Signal { .. } => "signal",
            NginxReloadError::Command { .. } => "command_failed",
            NginxReloadError::Proc { .. } => "proc",
            NginxReloadError::NoNewWorker { .. } => "no_new_worker",
        }
    }
}

/// The pid in an nginx pid file (first line, a positive integer).
pub fn read_pid_file(path: &Path) -> Result<i32, NginxReloadError> {
    let bad = |reason: String| NginxReloadError::PidFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let first = text.lines().next().unwrap_or("").trim();
    match first.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(bad(format!(
            "{} is not a pid (is nginx running with this prefix?)",
            routegen_core::values::quote_for_message(first, 32)
        ))),
    }
}

/// Pids of the processes whose parent is `master` (nginx's workers), from
/// `/proc/<pid>/stat`.
pub fn workers_of(master: i32) -> std::io::Result<BTreeSet<i32>> {
    let mut out = BTreeSet::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // Processes come and go while we read: skip what vanished.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if parent_of(&stat) == Some(master) {
            out.insert(pid);
        }
    }
    Ok(out)
}

/// The parent pid in a `/proc/<pid>/stat` line: `pid (comm) state ppid ...`
/// (`comm` may hold spaces and parentheses: cut after the last `)`).
fn parent_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Ask nginx to reload and wait (at most `confirm_timeout`, polling every
/// `poll`) until its master has a worker it did not have before.
pub fn reload(
    method: &NginxReload,
    confirm_timeout: Duration,
    poll: Duration,
) -> Result<NginxReloadOutcome, NginxReloadError> {
    let started = Instant::now();
    let master = match method {
        NginxReload::Signal(pidfile) => read_pid_file(pidfile)?,
        NginxReload::Pid(pid) => *pid,
        NginxReload::Command { prefix, .. } => read_pid_file(&prefix.join("nginx.pid"))?,
    };
    let proc_err = |source| NginxReloadError::Proc {
        pid: master,
        source,
    };
    let before = workers_of(master).map_err(proc_err)?;
    match method {
        NginxReload::Signal(_) | NginxReload::Pid(_) => {
            kill(Pid::from_raw(master), Signal::SIGHUP).map_err(|source| {
                NginxReloadError::Signal {
                    pid: master,
                    source,
                }
            })?;
        }
        NginxReload::Command {
            bin,
            prefix,
            config,
        } => {
            let prefix_arg = format!("{}/", prefix.display());
            let command = format!(
                "{} -p {prefix_arg} -c {} -s reload",
                bin.display(),
                config.display()
            );
            let output = Command::new(bin)
                .arg("-p")
                .arg(&prefix_arg)
                .arg("-c")
                .arg(config)
                .arg("-e")
                .arg("stderr")
                .arg("-s")
                .arg("reload")
                .output()
                .map_err(|e| NginxReloadError::Command {
                    command: command.clone(),
                    output: e.to_string(),
                })?;
            if !output.status.success() {
                let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
                text.push_str(&String::from_utf8_lossy(&output.stderr));
                return Err(NginxReloadError::Command {
                    command,
                    output: text.trim().to_string(),
                });
            }
        }
    }
    loop {
        let now = workers_of(master).map_err(proc_err)?;
        let new: Vec<i32> = now.difference(&before).copied().collect();
        if !new.is_empty() {
            return Ok(NginxReloadOutcome {
                master,
                new_workers: new,
                duration: started.elapsed(),
            });
        }
        if started.elapsed() >= confirm_timeout {
            return Err(NginxReloadError::NoNewWorker {
                pid: master,
                waited: started.elapsed(),
                before: before.into_iter().collect(),
            });
        }
        std::thread::sleep(poll);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_parent() {
        assert_eq!(parent_of("12 (nginx) S 7 12 12 0 -1"), Some(7));
        assert_eq!(parent_of("12 (a b) c)) S 99 1"), Some(99));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn own_children_are_found() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as i32;
        let found = workers_of(me).unwrap();
        let pid = child.id() as i32;
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&pid), "{found:?} lacks {pid}");
    }

    #[test]
    fn pid_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nginx.pid");
        assert!(read_pid_file(&p).is_err());
        std::fs::write(&p, "").unwrap();
        assert!(read_pid_file(&p)
            .unwrap_err()
            .to_string()
            .contains("not a pid"));
        std::fs::write(&p, "123\n").unwrap();
        assert_eq!(read_pid_file(&p).unwrap(), 123);
    }
}
