//! The HAProxy process `run --spawn-haproxy` manages ([`Managed`]):
//! starting it, adopting the master an earlier routegen left running
//! ([`start_haproxy`]), watching it exit and stopping it.
//!
//! # Contract
//!
//! * A master is adopted only when it answers on our master socket and
//!   runs on our configuration with `-f <tree>/backends`; another master
//!   on the socket, or one started without `backends/`, is a start-up
//!   error (never a second master next to it).
//! * A master an earlier routegen started that is alive per its pidfile
//!   but silent on its socket (busy reloading) is waited for, up to
//!   [`ADOPT_WAIT`].
//! * [`Managed::stop`] is graceful: SIGTERM, a bounded wait, then SIGKILL
//!   of the process group.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

use routegen_host::reload::{HaproxyProcess, MasterCli, SpawnOptions};

use super::config::RunConfig;
use super::LOG_TARGET;

/// The HAProxy routegen manages with `--spawn-haproxy`.
#[derive(Debug)]
pub(super) enum Managed {
    /// Not managed (external HAProxy, or none).
    Nothing,
    /// Started by this process.
    Spawned(Box<HaproxyProcess>),
    /// Started by an earlier routegen that died; found on the master socket.
    Adopted { pid: u32 },
}

impl Managed {
    pub(super) fn is_running(&mut self) -> bool {
        match self {
            Managed::Nothing => false,
            Managed::Spawned(p) => p.is_running(),
            Managed::Adopted { pid } => pid_alive(*pid),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Managed::Nothing => "none".into(),
            Managed::Spawned(p) => format!("spawned master {}", p.pid()),
            Managed::Adopted { pid } => format!("adopted master {pid}"),
        }
    }

    /// Graceful stop: SIGTERM, bounded wait, then SIGKILL of the group.
    pub(super) async fn stop(self) {
        match self {
            Managed::Nothing => {}
            Managed::Spawned(p) => {
                let pid = p.pid();
                match p.shutdown().await {
                    Ok(status) => {
                        tracing::info!(target: LOG_TARGET, pid, %status, "HAProxy stopped")
                    }
                    Err(e) => {
                        tracing::error!(target: LOG_TARGET, pid, error = %e, "stopping HAProxy")
                    }
                }
            }
            Managed::Adopted { pid } => {
                let p = Pid::from_raw(pid as i32);
                let _ = kill(p, Signal::SIGTERM);
                let deadline = Instant::now() + Duration::from_secs(10);
                while pid_alive(pid) && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                if pid_alive(pid) {
                    tracing::warn!(
                        target: LOG_TARGET,
                        pid,
                        "adopted HAProxy did not stop after SIGTERM; killing it"
                    );
                    let _ = killpg(p, Signal::SIGKILL);
                    let deadline = Instant::now() + Duration::from_secs(5);
                    while pid_alive(pid) && Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
                tracing::info!(target: LOG_TARGET, pid, "adopted HAProxy stopped");
            }
        }
    }
}

/// True while `pid` exists and is not a zombie.
fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// The command line of `pid`, arguments joined by spaces.
fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Resolves once the managed HAProxy is no longer running (polled).
pub(super) async fn wait_exit(managed: &mut Managed) {
    while managed.is_running() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a master an earlier routegen left running (alive per its
/// pidfile, on our configuration) may stay silent on its socket, e.g. in
/// the middle of a reload, before routegen gives up on adopting it.
const ADOPT_WAIT: Duration = Duration::from_secs(60);

/// Start HAProxy on `config_path`, or adopt the master an earlier routegen
/// left running on the same socket and configuration.
pub(super) async fn start_haproxy(
    config: &RunConfig,
    config_path: &Path,
    master_socket: &Path,
) -> anyhow::Result<Managed> {
    let wanted = config_path.display().to_string();
    // The master an earlier routegen started (its pidfile), if it still
    // runs on our configuration: while it is busy (a reload re-reads the
    // whole configuration, seconds for a large one) its socket does not
    // answer, and starting a second master next to it would be wrong.
    let pidfile_master = std::fs::read_to_string(RunConfig::pidfile(&config.out))
        .ok()
        .and_then(|text| text.trim().parse::<u32>().ok())
        .filter(|pid| pid_alive(*pid) && cmdline(*pid).unwrap_or_default().contains(&wanted));
    let deadline = tokio::time::Instant::now() + ADOPT_WAIT;
    while master_socket.exists() {
        let cli = MasterCli::new(master_socket).with_io_timeout(Duration::from_secs(1));
        match cli.show_proc().await {
            Ok(list) => {
                let pid = list.master_pid;
                let cmd = cmdline(pid).unwrap_or_default();
                let backends = config_path
                    .parent()
                    .map(|tree| tree.join(routegen_render::haproxy::BACKENDS_DIR))
                    .unwrap_or_default();
                if cmd.contains(&wanted)
                    && pid_alive(pid)
                    && !cmd.contains(&backends.display().to_string())
                {
                    // Started by a routegen from before backends/ existed:
                    // reloading it onto a split tree would fail every time.
                    anyhow::bail!(
                        "the HAProxy master {pid} left running on {} was started without -f {} (an older routegen); stop it (kill -USR1 {pid} stops it softly) and start routegen again",
                        master_socket.display(),
                        backends.display()
                    );
                }
                if cmd.contains(&wanted) && pid_alive(pid) {
                    tracing::info!(
                        target: LOG_TARGET,
                        pid,
                        "adopting the HAProxy master left running by an earlier routegen"
                    );
                    // Its stdout and stderr were the earlier process's
                    // pipes; its events still arrive on the events socket.
                    if !config.pipeline.haproxy_events {
                        tracing::info!(
                            target: LOG_TARGET,
                            pid,
                            "the adopted HAProxy's own messages are not shown here (they went to the routegen that started it); --haproxy-log sends them to syslog whoever started it"
                        );
                    }
                    return Ok(Managed::Adopted { pid });
                }
                anyhow::bail!(
                    "{} is answered by another HAProxy master (pid {pid}, command line {cmd:?}); stop it or use another --out",
                    master_socket.display()
                );
            }
            Err(e) => match pidfile_master {
                Some(pid) if pid_alive(pid) => {
                    if tokio::time::Instant::now() >= deadline {
                        anyhow::bail!(
                            "the HAProxy master {pid} an earlier routegen started is running but does not answer on {} ({e}); stop it, or wait and restart",
                            master_socket.display()
                        );
                    }
                    tracing::info!(target: LOG_TARGET, pid, error = %e, "the HAProxy master left running is busy; waiting to adopt it");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                _ => break,
            },
        }
    }
    let extra = [
        std::ffi::OsString::from("-p"),
        RunConfig::pidfile(&config.out).into_os_string(),
    ];
    let options = SpawnOptions {
        startup_timeout: config.haproxy_load_timeout,
        ..SpawnOptions::default()
    };
    let process = HaproxyProcess::spawn_with(
        &config.haproxy_bin,
        config_path,
        master_socket,
        &extra,
        options,
    )
    .await
    .context("starting HAProxy")?;
    Ok(Managed::Spawned(Box::new(process)))
}
