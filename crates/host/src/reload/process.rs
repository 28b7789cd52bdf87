//! Start and stop HAProxy ourselves (`routegen run --spawn-haproxy`, tests).
//!
//! `haproxy -W -S <master socket> -f <tree>/haproxy.cfg -f <tree>/backends
//! [extra args]` (see [`config_paths`]) runs in the foreground (no `-D`) as
//! our child, in its own process group (so a Ctrl-C
//! on routegen's terminal reaches routegen, which then shuts HAProxy down
//! gracefully, and so that killing the group takes the workers along).
//! Its stdout and stderr are forwarded line by line to `tracing` (target
//! `haproxy`; `[ALERT]` as error, `[WARNING]` as warn, the rest info),
//! except that an old worker's one `Proxy … stopped` warning per proxy is
//! folded into one info line per worker ([`super::output`]); the last
//! lines are kept for error messages.
//!
//! A master-worker reload re-executes HAProxy with the same arguments, so
//! the paths are given as the caller names them (`<out>/current/...`,
//! through the `current` symlink), never resolved: each reload reads the
//! tree `current` points to then.
//!
//! Dropping a [`HaproxyProcess`] kills the whole group with SIGKILL;
//! [`HaproxyProcess::shutdown`] is the graceful way.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::output::{OutputFolder, Shown};
use super::MasterCli;
use crate::apply::haproxy_config_paths;
use routegen_render::haproxy::CONFIG_FILE;

/// Lines of HAProxy output kept for error messages.
const KEEP_LINES: usize = 200;

/// How long the output must pause before a folded run of a worker's
/// `Proxy … stopped` lines is logged as its one summary line.
const FOLD_PAUSE: Duration = Duration::from_millis(200);

/// Bounds of start and stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnOptions {
    /// How long HAProxy may take until a worker answers. Default 10 s.
    pub startup_timeout: Duration,
    /// Pause between readiness checks. Default 50 ms.
    pub poll_interval: Duration,
    /// Master CLI I/O bound. Default 1 s.
    pub io_timeout: Duration,
    /// How long [`HaproxyProcess::shutdown`] waits after SIGTERM before
    /// SIGKILL. Default 10 s.
    pub shutdown_timeout: Duration,
}

impl Default for SpawnOptions {
    fn default() -> Self {
        SpawnOptions {
            startup_timeout: Duration::from_secs(10),
            poll_interval: Duration::from_millis(50),
            io_timeout: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Starting or stopping HAProxy failed.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The binary could not be executed.
    #[error("cannot start {bin}: {source}")]
    Spawn {
        /// The HAProxy binary.
        bin: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// HAProxy exited before it was ready (bad configuration, port in use...).
    #[error("HAProxy exited during startup ({status}); its output:\n{output}")]
    Exited {
        /// Exit status, as text.
        status: String,
        /// Its last output lines, summarised (`output::summarize`).
        output: String,
    },
    /// No worker answered on the master socket in time.
    #[error(
        "HAProxy did not become ready within {waited:?} (master socket {socket}): {last}; its output:\n{output}"
    )]
    NotReady {
        /// How long we waited.
        waited: Duration,
        /// The master socket.
        socket: PathBuf,
        /// The last check's result.
        last: String,
        /// Its last output lines, summarised (`output::summarize`).
        output: String,
    },
    /// Waiting for the process failed.
    #[error("waiting for HAProxy (pid {pid}): {source}")]
    Wait {
        /// The master pid.
        pid: u32,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A HAProxy master (and its workers) started by us.
#[derive(Debug)]
pub struct HaproxyProcess {
    child: Child,
    pid: u32,
    cli: MasterCli,
    config: PathBuf,
    config_paths: Vec<PathBuf>,
    options: SpawnOptions,
    output: Arc<Mutex<VecDeque<String>>>,
}

fn forward_output<R>(stream: R, buffer: Arc<Mutex<VecDeque<String>>>, pid: u32)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        let mut folder = OutputFolder::default();
        loop {
            // A folded run of stop lines is told once the output pauses.
            let next = if folder.is_folding() {
                match tokio::time::timeout(FOLD_PAUSE, lines.next_line()).await {
                    Ok(next) => next,
                    Err(_) => {
                        show(folder.flush(), &buffer, pid);
                        continue;
                    }
                }
            } else {
                lines.next_line().await
            };
            let Ok(Some(line)) = next else {
                show(folder.flush(), &buffer, pid);
                break;
            };
            for shown in folder.push(&line) {
                show(Some(shown), &buffer, pid);
            }
        }
    });
}

/// Log one line of (folded) HAProxy output and keep it for error messages.
fn show(shown: Option<Shown>, buffer: &Mutex<VecDeque<String>>, pid: u32) {
    let line = match shown {
        None => return,
        Some(Shown::Summary(summary)) => {
            tracing::info!(target: "haproxy", master = pid, "{summary}");
            summary
        }
        Some(Shown::Line(line)) => {
            if line.contains("[ALERT]") {
                tracing::error!(target: "haproxy", master = pid, "{line}");
            } else if line.contains("[WARNING]") {
                tracing::warn!(target: "haproxy", master = pid, "{line}");
            } else {
                tracing::info!(target: "haproxy", master = pid, "{line}");
            }
            line
        }
    };
    let mut buf = buffer.lock().unwrap_or_else(|e| e.into_inner());
    if buf.len() == KEEP_LINES {
        buf.pop_front();
    }
    buf.push_back(line);
}

/// The configuration paths HAProxy is started with for the root
/// configuration file `config`, one `-f` each: for a tree's `haproxy.cfg`,
/// [`haproxy_config_paths`] of its directory (`<tree>/haproxy.cfg`, then
/// `<tree>/backends` when the tree has it), built on `config`'s own path
/// (symbolic links such as `current` are kept, not resolved); any other
/// file alone.
pub fn config_paths(config: &Path) -> Vec<PathBuf> {
    match config.parent() {
        Some(tree) if config.file_name() == Some(OsStr::new(CONFIG_FILE)) => {
            haproxy_config_paths(tree)
        }
        _ => vec![config.to_path_buf()],
    }
}

/// `-S <path>,mode,600`: the master socket gives full control of HAProxy,
/// so it is created 0600 whatever the process umask (HAProxy applies the
/// bind option `mode` after creating the socket). `-S` separates options
/// with commas, so a path with a comma cannot be passed.
fn master_socket_arg(master_socket: &Path) -> Result<OsString, ProcessError> {
    if master_socket.as_os_str().as_encoded_bytes().contains(&b',') {
        return Err(ProcessError::Spawn {
            bin: PathBuf::from("haproxy"),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "master socket path {} contains a comma, which HAProxy's -S option \
                     reads as an option separator",
                    master_socket.display()
                ),
            ),
        });
    }
    let mut arg = master_socket.as_os_str().to_os_string();
    arg.push(",mode,600");
    Ok(arg)
}

impl HaproxyProcess {
    /// Start `bin -W -S <master_socket>,mode,600 -f <path>... <extra_args...>` (the
    /// paths of [`config_paths`]`(config)`) with default [`SpawnOptions`]
    /// and wait until a worker answers.
    pub async fn spawn(
        bin: &Path,
        config: &Path,
        master_socket: &Path,
        extra_args: &[OsString],
    ) -> Result<Self, ProcessError> {
        Self::spawn_with(
            bin,
            config,
            master_socket,
            extra_args,
            SpawnOptions::default(),
        )
        .await
    }

    /// [`spawn`](Self::spawn) with explicit bounds.
    pub async fn spawn_with(
        bin: &Path,
        config: &Path,
        master_socket: &Path,
        extra_args: &[OsString],
        options: SpawnOptions,
    ) -> Result<Self, ProcessError> {
        let config_paths = config_paths(config);
        let mut cmd = Command::new(bin);
        cmd.arg("-W")
            .arg("-S")
            .arg(master_socket_arg(master_socket)?);
        for path in &config_paths {
            cmd.arg("-f").arg(path);
        }
        cmd.args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|source| ProcessError::Spawn {
            bin: bin.to_path_buf(),
            source,
        })?;
        let pid = child.id().expect("a just-spawned child has a pid");
        let output = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            forward_output(out, output.clone(), pid);
        }
        if let Some(err) = child.stderr.take() {
            forward_output(err, output.clone(), pid);
        }
        tracing::info!(pid, config = ?config_paths, socket = %master_socket.display(), "started HAProxy");
        let mut process = HaproxyProcess {
            child,
            pid,
            cli: MasterCli::new(master_socket).with_io_timeout(options.io_timeout),
            config: config.to_path_buf(),
            config_paths,
            options,
            output,
        };
        // On error `process` is dropped, which kills the group.
        process.wait_ready().await?;
        Ok(process)
    }

    /// Poll until the master socket, answered by *our* master, lists a
    /// current worker that answers a forwarded command.
    async fn wait_ready(&mut self) -> Result<(), ProcessError> {
        let start = Instant::now();
        let deadline = start + self.options.startup_timeout;
        let mut last: String;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    // Let the output forwarders catch the last lines.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return Err(ProcessError::Exited {
                        status: status.to_string(),
                        output: super::output::summarize(&self.recent_output()),
                    });
                }
                Ok(None) => {}
                Err(source) => {
                    return Err(ProcessError::Wait {
                        pid: self.pid,
                        source,
                    })
                }
            }
            match self.cli.show_proc().await {
                Ok(list) if list.master_pid != self.pid => {
                    last = format!(
                        "the socket is answered by another HAProxy master (pid {})",
                        list.master_pid
                    );
                }
                Ok(list) if list.current_workers.is_empty() => last = "no worker yet".into(),
                Ok(list) => {
                    if self.cli.workers_answer(&list.current_pids()).await {
                        tracing::info!(pid = self.pid, workers = ?list.current_pids(), "HAProxy ready");
                        return Ok(());
                    }
                    last = "the worker does not answer yet".into();
                }
                Err(e) => last = e.to_string(),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ProcessError::NotReady {
                    waited: start.elapsed(),
                    socket: self.cli.socket().to_path_buf(),
                    last,
                    output: super::output::summarize(&self.recent_output()),
                });
            }
            tokio::time::sleep(self.options.poll_interval.min(deadline - now)).await;
        }
    }

    /// The master's pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A client for its master CLI.
    pub fn master_cli(&self) -> &MasterCli {
        &self.cli
    }

    /// The root configuration file it was started with.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// Every `-f` path it was started with, in order (see
    /// [`config_paths`]); reloads read the same paths.
    pub fn config_paths(&self) -> &[PathBuf] {
        &self.config_paths
    }

    /// The last lines HAProxy printed (stdout and stderr, interleaved).
    pub fn recent_output(&self) -> Vec<String> {
        let buf = self.output.lock().unwrap_or_else(|e| e.into_inner());
        buf.iter().cloned().collect()
    }

    /// True while the master runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Graceful stop: SIGTERM to the master (which passes it to the
    /// workers), wait up to `shutdown_timeout`, then SIGKILL the group.
    pub async fn shutdown(mut self) -> Result<ExitStatus, ProcessError> {
        let pid = self.pid;
        let wait_err = |source| ProcessError::Wait { pid, source };
        if let Some(status) = self.child.try_wait().map_err(wait_err)? {
            return Ok(status);
        }
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        match tokio::time::timeout(self.options.shutdown_timeout, self.child.wait()).await {
            Ok(status) => {
                let status = status.map_err(wait_err)?;
                tracing::info!(pid, %status, "HAProxy stopped");
                Ok(status)
            }
            Err(_) => {
                tracing::warn!(pid, timeout = ?self.options.shutdown_timeout, "HAProxy did not stop after SIGTERM; killing it");
                let _ = killpg(Pid::from_raw(pid as i32), Signal::SIGKILL);
                tokio::time::timeout(Duration::from_secs(5), self.child.wait())
                    .await
                    .map_err(|_| {
                        wait_err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "still running 5 s after SIGKILL",
                        ))
                    })?
                    .map_err(wait_err)
            }
        }
    }
}

impl Drop for HaproxyProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // The group is ours (process_group(0)) and still has its leader,
            // so the pgid cannot have been reused.
            let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
            let _ = self.child.start_kill();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_paths_name_the_backends_through_the_symlink() {
        let out = tempfile::tempdir().unwrap();
        let tree = out.path().join("trees/00000001-aa");
        std::fs::create_dir_all(tree.join("backends")).unwrap();
        std::fs::write(tree.join("haproxy.cfg"), "").unwrap();
        std::os::unix::fs::symlink("trees/00000001-aa", out.path().join("current")).unwrap();
        let current = out.path().join("current");
        assert_eq!(
            config_paths(&current.join("haproxy.cfg")),
            vec![current.join("haproxy.cfg"), current.join("backends")]
        );
        // A tree from before the split: haproxy.cfg alone.
        let old = out.path().join("old");
        std::fs::create_dir_all(&old).unwrap();
        assert_eq!(
            config_paths(&old.join("haproxy.cfg")),
            vec![old.join("haproxy.cfg")]
        );
        // Any other file: itself alone, even beside a backends directory.
        assert_eq!(
            config_paths(&current.join("other.cfg")),
            vec![current.join("other.cfg")]
        );
    }
}
