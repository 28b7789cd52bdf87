//! [`StatsSocket`]: one connection to a worker's stats socket, in prompt
//! mode, one command at a time.
//!
//! Framing (verified on HAProxy 2.6.12): after `prompt\n` HAProxy answers
//! `\n> `, and from then on every answer is followed by `\n> `; an empty
//! answer is just `\n> `. So the answer is everything before the final
//! `\n> `. (Most answers end with their own `\n`; `del server` and
//! `add server` on an unknown backend do not.) The end is recognised by the
//! buffer ending in `\n> ` when a read returns, which is unambiguous
//! because no answer routegen reads has a line starting with `> `.
//!
//! Payload commands (`<command> <<`, payload lines, one empty line): in
//! prompt mode HAProxy echoes a `+ ` continuation prompt for each line it
//! reads in payload mode (the command line and every payload line) before
//! the answer; those are stripped. The first empty line ends the payload,
//! so payloads with empty (or blank) lines are refused here.
//!
//! Limits: the whole command as sent (command line, payload and framing)
//! must be smaller than HAProxy's `tune.bufsize` (16384 by default: 16383
//! bytes work; 16384 bytes made HAProxy 2.6 wait forever, more closed the
//! connection), so larger ones are refused before sending. HAProxy closes
//! a connection idle for its `stats timeout` (10 s by default); a command
//! on such a connection fails with [`RuntimeError::Closed`] and the caller
//! reconnects.
//!
//! Writing one command and reading its whole answer before the next is
//! what keeps this deadlock-free: HAProxy stops reading while its answer
//! is not consumed.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::RuntimeError;

/// What HAProxy prints after every answer in prompt mode.
const PROMPT: &[u8] = b"\n> ";

/// What HAProxy prints for each line read in payload mode (prompt mode).
const PAYLOAD_PROMPT: &str = "+ ";

/// Largest command sent, framing included: one less than the default
/// `tune.bufsize`.
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 16 * 1024 - 1;

/// Largest answer read (`show map` of a map with a few hundred thousand
/// entries).
pub const DEFAULT_MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// A connection to an HAProxy stats socket (`stats socket <path> level
/// admin`), in prompt mode.
///
/// Every write and every answer is bounded by the timeout given to
/// [`connect`](Self::connect) (for an answer: the whole answer, not each
/// read). After an I/O error, timeout or closed connection the socket is
/// *broken*: later commands fail with [`RuntimeError::Broken`] without
/// being sent, since a late answer could be taken for theirs.
#[derive(Debug)]
pub struct StatsSocket {
    stream: UnixStream,
    path: PathBuf,
    timeout: Duration,
    max_command_bytes: usize,
    max_answer_bytes: usize,
    broken: bool,
}

impl StatsSocket {
    /// Connects to `path` and enters prompt mode, both within `timeout`.
    ///
    /// Errors: [`RuntimeError::Connect`] (path in the message) when the
    /// socket cannot be connected or does not answer `prompt` in time.
    pub fn connect(path: &Path, timeout: Duration) -> Result<StatsSocket, RuntimeError> {
        let connect_err = |source| RuntimeError::Connect {
            path: path.to_path_buf(),
            source,
        };
        let stream = connect_within(path, timeout).map_err(connect_err)?;
        let mut sock = StatsSocket {
            stream,
            path: path.to_path_buf(),
            timeout,
            max_command_bytes: DEFAULT_MAX_COMMAND_BYTES,
            max_answer_bytes: DEFAULT_MAX_ANSWER_BYTES,
            broken: false,
        };
        match sock.exchange("prompt", "prompt\n") {
            // The answer to `prompt` itself is empty.
            Ok(answer) if answer.is_empty() => Ok(sock),
            Ok(answer) => Err(connect_err(io::Error::other(format!(
                "unexpected answer to `prompt`: {answer:?} (is this a stats socket?)"
            )))),
            Err(e) => Err(connect_err(io::Error::other(e.to_string()))),
        }
    }

    /// Sets the largest command sent (framing and payload included); set it
    /// below HAProxy's `tune.bufsize` when that is not the default.
    pub fn set_max_command_bytes(&mut self, bytes: usize) {
        self.max_command_bytes = bytes;
    }

    /// Sets the largest answer read.
    pub fn set_max_answer_bytes(&mut self, bytes: usize) {
        self.max_answer_bytes = bytes;
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sends one command and returns HAProxy's answer without the prompt.
    ///
    /// The answer is returned whatever it says; judging it is the caller's
    /// (see [`super::batch`]). Refused before sending: a command that is
    /// empty, contains `\n`, `\r`, `;` (HAProxy would chain commands) or a
    /// NUL, ends in `<<` (it would start a payload), or is too large.
    pub fn command(&mut self, cmd: &str) -> Result<String, RuntimeError> {
        check_command(cmd)?;
        let wire = format!("{cmd}\n");
        self.check_size(cmd, &wire, false)?;
        self.exchange(cmd, &wire)
    }

    /// Sends `cmd <<`, the payload lines and the ending empty line, and
    /// returns HAProxy's answer without the prompts.
    ///
    /// Trailing newlines of `payload` are dropped. Refused before sending,
    /// besides what [`command`](Self::command) refuses: an empty payload, a
    /// payload with an empty or whitespace-only line (HAProxy would end the
    /// payload there and run the rest as commands) or a NUL, and a command
    /// whose framed size reaches `tune.bufsize`.
    pub fn command_with_payload(
        &mut self,
        cmd: &str,
        payload: &str,
    ) -> Result<String, RuntimeError> {
        check_command(cmd)?;
        let payload = payload.trim_end_matches(['\n', '\r']);
        check_payload(cmd, payload)?;
        let wire = format!("{cmd} <<\n{payload}\n\n");
        self.check_size(cmd, &wire, true)?;
        let answer = self.exchange(cmd, &wire)?;
        // One `+ ` for the command line and one per payload line.
        let prompts = payload.lines().count() + 1;
        Ok(strip_payload_prompts(&answer, prompts).to_string())
    }

    fn check_size(&self, cmd: &str, wire: &str, payload: bool) -> Result<(), RuntimeError> {
        if wire.len() <= self.max_command_bytes {
            return Ok(());
        }
        let command = cmd.to_string();
        let reason = format!(
            "{} bytes as sent, more than the {} HAProxy's buffer holds",
            wire.len(),
            self.max_command_bytes
        );
        Err(if payload {
            RuntimeError::BadPayload { command, reason }
        } else {
            RuntimeError::BadCommand { command, reason }
        })
    }

    /// Writes `wire` and reads up to the prompt; any failure breaks the
    /// connection.
    fn exchange(&mut self, cmd: &str, wire: &str) -> Result<String, RuntimeError> {
        if self.broken {
            return Err(RuntimeError::Broken {
                path: self.path.clone(),
                command: cmd.to_string(),
            });
        }
        let result = self.write_then_read(cmd, wire);
        self.broken = result.is_err();
        result
    }

    fn write_then_read(&mut self, cmd: &str, wire: &str) -> Result<String, RuntimeError> {
        let deadline = Instant::now() + self.timeout;
        let io_err = |source: io::Error| {
            if is_timeout(&source) {
                RuntimeError::Timeout {
                    path: self.path.clone(),
                    command: cmd.to_string(),
                    after: self.timeout,
                }
            } else {
                RuntimeError::Io {
                    path: self.path.clone(),
                    command: cmd.to_string(),
                    source,
                }
            }
        };
        self.stream
            .set_write_timeout(Some(self.timeout))
            .map_err(io_err)?;
        self.stream.write_all(wire.as_bytes()).map_err(io_err)?;

        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        while !buf.ends_with(PROMPT) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io_err(io::ErrorKind::TimedOut.into()));
            }
            self.stream.set_read_timeout(Some(left)).map_err(io_err)?;
            let n = match self.stream.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err(e)),
            };
            if n == 0 {
                return Err(RuntimeError::Closed {
                    path: self.path.clone(),
                    command: cmd.to_string(),
                });
            }
            if buf.len() + n > self.max_answer_bytes + PROMPT.len() {
                return Err(RuntimeError::AnswerTooLarge {
                    command: cmd.to_string(),
                    limit: self.max_answer_bytes,
                });
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.truncate(buf.len() - PROMPT.len());
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// `UnixStream::connect` has no timeout and blocks while the listener's
/// backlog is full (HAProxy accepts 10 CLI connections by default), so it
/// runs on a helper thread; on timeout that thread ends when the kernel
/// settles the connect, dropping the stream.
fn connect_within(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let (tx, rx) = mpsc::channel();
    let target = path.to_path_buf();
    std::thread::Builder::new()
        .name("stats-socket-connect".into())
        .spawn(move || {
            let _ = tx.send(UnixStream::connect(target));
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("connect did not complete within {timeout:?}"),
        )),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn check_command(cmd: &str) -> Result<(), RuntimeError> {
    let reason = if cmd.trim().is_empty() {
        "it is empty"
    } else if cmd.contains(['\n', '\r']) {
        "it contains a line break (one command per call)"
    } else if cmd.contains(';') {
        "it contains `;`, which HAProxy treats as a command separator"
    } else if cmd.contains('\0') {
        "it contains a NUL byte"
    } else if cmd.trim_end().ends_with("<<") {
        "it ends in `<<` (use command_with_payload)"
    } else {
        return Ok(());
    };
    Err(RuntimeError::BadCommand {
        command: cmd.to_string(),
        reason: reason.to_string(),
    })
}

fn check_payload(cmd: &str, payload: &str) -> Result<(), RuntimeError> {
    let refuse = |reason: String| {
        Err(RuntimeError::BadPayload {
            command: cmd.to_string(),
            reason,
        })
    };
    if payload.is_empty() {
        return refuse("it is empty".into());
    }
    if payload.contains('\0') {
        return refuse("it contains a NUL byte".into());
    }
    // HAProxy ends the payload at an empty line (after dropping `\r`);
    // blank lines are refused too, as they are never meant in a PEM, map
    // or crt-list payload.
    if let Some(n) = payload.lines().position(|l| l.trim().is_empty()) {
        return refuse(format!(
            "line {} is empty or blank, which would end the payload early",
            n + 1
        ));
    }
    Ok(())
}

/// Drops up to `count` leading `+ ` continuation prompts.
fn strip_payload_prompts(answer: &str, count: usize) -> &str {
    let mut rest = answer;
    for _ in 0..count {
        match rest.strip_prefix(PAYLOAD_PROMPT) {
            Some(r) => rest = r,
            None => break,
        }
    }
    rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_that_would_chain_or_open_a_payload_are_refused() {
        for cmd in [
            "",
            "  ",
            "a\nb",
            "a\rb",
            "show info; show stat",
            "add map m <<",
            "x\0",
        ] {
            assert!(
                matches!(check_command(cmd), Err(RuntimeError::BadCommand { .. })),
                "{cmd:?}"
            );
        }
        assert!(check_command("set server be/s weight 3").is_ok());
    }

    #[test]
    fn payloads_with_a_blank_line_are_refused_and_name_the_command() {
        for payload in ["a b\n\nc d", "a b\n \nc d", "a b\n\r\nc d", "", "a\0"] {
            match check_payload("add map m", payload) {
                Err(RuntimeError::BadPayload { command, .. }) => assert_eq!(command, "add map m"),
                other => panic!("{payload:?}: {other:?}"),
            }
        }
        assert!(check_payload("add map m", "a b\nc d").is_ok());
    }

    #[test]
    fn payload_prompts_are_stripped_up_to_the_count() {
        assert_eq!(strip_payload_prompts("+ + + ", 3), "");
        assert_eq!(strip_payload_prompts("+ + Success!\n", 2), "Success!\n");
        assert_eq!(strip_payload_prompts("+ + + x", 2), "+ x");
    }
}
