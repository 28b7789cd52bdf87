//! `--reload command:...`: run a shell command (`sh -c`) with a timeout.
//!
//! The command runs in its own process group so that, on timeout, the whole
//! group (the shell and what it started) is killed.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::process::Command;

use super::ReloadError;

/// Keep at most this much of the command's output in errors and logs.
const MAX_OUTPUT: usize = 8 * 1024;

fn truncate(mut s: String) -> String {
    if s.len() > MAX_OUTPUT {
        let mut end = MAX_OUTPUT;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push_str("\n[... truncated]");
    }
    s
}

/// Run `sh -c <command>`; Ok with its stdout+stderr when it exits 0, an
/// error with the exit status and output otherwise, or when it runs longer
/// than `timeout` (it is then killed).
pub async fn run(command: &str, timeout: Duration) -> Result<String, ReloadError> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|source| ReloadError::CommandSpawn {
        command: command.to_string(),
        source,
    })?;
    let pgid = child.id();
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if !stderr.is_empty() {
                if !text.is_empty() && !text.ends_with('\n') {
                    text.push('\n');
                }
                text.push_str(&stderr);
            }
            let text = truncate(text);
            if out.status.success() {
                Ok(text)
            } else {
                Err(ReloadError::CommandFailed {
                    command: command.to_string(),
                    status: out.status.to_string(),
                    output: text,
                })
            }
        }
        Ok(Err(source)) => Err(ReloadError::CommandSpawn {
            command: command.to_string(),
            source,
        }),
        Err(_) => {
            // The future owning the child was dropped (kill_on_drop kills
            // `sh`); kill the rest of its group too.
            if let Some(pgid) = pgid {
                let _ = killpg(Pid::from_raw(pgid as i32), Signal::SIGKILL);
            }
            Err(ReloadError::CommandTimeout {
                command: command.to_string(),
                after: timeout,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[tokio::test]
    async fn true_succeeds_with_output() {
        let out = run("echo hello; echo warn >&2", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(out, "hello\nwarn\n");
    }

    #[tokio::test]
    async fn non_zero_is_an_error_with_output() {
        let err = run("echo out; echo err >&2; exit 3", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "command_failed");
        let msg = err.to_string();
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.contains("out") && msg.contains("err"), "{msg}");
    }

    #[tokio::test]
    async fn timeout_kills_the_group() {
        let start = Instant::now();
        let err = run("sleep 5 & sleep 5; echo late", Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(err.reason(), "command_timeout");
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn truncates_long_output() {
        let s = truncate("é".repeat(MAX_OUTPUT));
        assert!(s.len() <= MAX_OUTPUT + 20);
        assert!(s.ends_with("[... truncated]"));
    }
}
