//! `--reload signal:PIDFILE`: send `SIGUSR2` to the HAProxy master.
//!
//! In master-worker mode (`haproxy -W -p PIDFILE`) the pidfile holds the
//! master's pid and `SIGUSR2` makes the master re-execute itself with the
//! configuration on disk. Nothing answers, so the reload is reported as
//! requested, not confirmed; use `master-cli:` to confirm.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::ReloadError;

/// Read the pid in `path`: the first line, a positive integer, of a process
/// that exists (signal 0 succeeds).
pub fn read_pidfile(path: &Path) -> Result<Pid, ReloadError> {
    let bad = |reason: String| ReloadError::PidFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let first = text.lines().next().unwrap_or("").trim();
    if first.is_empty() {
        return Err(bad("empty (is HAProxy started with -p?)".into()));
    }
    let pid: i32 = first
        .parse()
        .map_err(|_| bad(format!("`{first}` is not a pid")))?;
    if pid <= 0 {
        return Err(bad(format!("`{first}` is not a positive pid")));
    }
    let pid = Pid::from_raw(pid);
    match kill(pid, None) {
        Ok(()) => Ok(pid),
        Err(Errno::ESRCH) => Err(bad(format!("no process with pid {pid} (stale pidfile?)"))),
        Err(Errno::EPERM) => Err(bad(format!(
            "process {pid} exists but routegen may not signal it"
        ))),
        Err(e) => Err(bad(format!("cannot check process {pid}: {e}"))),
    }
}

/// Send `SIGUSR2` (master-worker reload) to the pid in `pidfile`; returns
/// that pid.
pub fn send_reload(pidfile: &Path) -> Result<i32, ReloadError> {
    let pid = read_pidfile(pidfile)?;
    kill(pid, Signal::SIGUSR2).map_err(|source| ReloadError::Signal {
        pid: pid.as_raw(),
        signal: "SIGUSR2",
        source,
    })?;
    Ok(pid.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pidfile(content: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haproxy.pid");
        std::fs::write(&path, content).unwrap();
        (dir, path)
    }

    #[test]
    fn reads_own_pid() {
        let me = std::process::id();
        let (_d, path) = pidfile(&format!("{me}\n"));
        assert_eq!(read_pidfile(&path).unwrap().as_raw() as u32, me);
    }

    #[test]
    fn first_line_only() {
        let me = std::process::id();
        let (_d, path) = pidfile(&format!("{me}\n12345\n"));
        assert_eq!(read_pidfile(&path).unwrap().as_raw() as u32, me);
    }

    #[test]
    fn rejects_bad_pidfiles() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_pidfile(&dir.path().join("absent.pid")).unwrap_err();
        assert!(err.to_string().contains("cannot read"), "{err}");
        for (content, needle) in [
            ("", "empty"),
            ("\n", "empty"),
            ("abc\n", "not a pid"),
            ("0\n", "not a positive pid"),
            ("-1\n", "not a positive pid"),
            ("99999999999\n", "not a pid"),
            // Above the kernel's pid_max (at most 2^22): cannot exist.
            ("2147483646\n", "no process"),
        ] {
            let (_d, path) = pidfile(content);
            let err = read_pidfile(&path).unwrap_err();
            assert_eq!(err.reason(), "pidfile");
            assert!(err.to_string().contains(needle), "{content:?}: {err}");
            assert!(err.to_string().contains("haproxy.pid"), "{err}");
        }
    }
}
