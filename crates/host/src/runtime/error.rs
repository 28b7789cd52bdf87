//! The one error type of the runtime API client.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to an HAProxy stats socket.
///
/// Every variant names the command (or, for [`Connect`](Self::Connect), the
/// socket path), so a log line alone says what failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The socket could not be connected, or did not answer `prompt`.
    #[error("HAProxy stats socket {path}: cannot connect: {source}")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The cause (a timeout is `ErrorKind::TimedOut`).
        source: io::Error,
    },
    /// Writing a command or reading its answer failed.
    #[error("HAProxy stats socket {path}: {command:?}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The command being sent or answered.
        command: String,
        /// The cause.
        source: io::Error,
    },
    /// The answer did not end (with the prompt) within the timeout.
    #[error("HAProxy stats socket {path}: {command:?}: no complete answer within {after:?}")]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// The command whose answer was incomplete.
        command: String,
        /// The timeout.
        after: Duration,
    },
    /// HAProxy closed the connection before the answer ended (its `stats
    /// timeout`, 10 s by default, closes idle connections).
    #[error("HAProxy stats socket {path}: {command:?}: connection closed before the answer ended")]
    Closed {
        /// The socket path.
        path: PathBuf,
        /// The command whose answer was cut.
        command: String,
    },
    /// The answer grew past the size bound.
    #[error("HAProxy stats socket: answer to {command:?} exceeds {limit} bytes")]
    AnswerTooLarge {
        /// The command.
        command: String,
        /// The bound, in bytes.
        limit: usize,
    },
    /// An earlier failure left the connection in an unknown state (a late
    /// answer could be taken for this command's), so nothing more is sent.
    #[error("HAProxy stats socket {path}: {command:?} not sent: the connection failed earlier")]
    Broken {
        /// The socket path.
        path: PathBuf,
        /// The command not sent.
        command: String,
    },
    /// The command text was refused before sending (a newline, `;`, a
    /// trailing `<<`, a NUL, empty, or too large).
    #[error("HAProxy runtime command {command:?} refused before sending: {reason}")]
    BadCommand {
        /// The command.
        command: String,
        /// Why.
        reason: String,
    },
    /// The payload was refused before sending (an empty or blank line would
    /// end it early; NULs; empty; too large).
    #[error("payload of HAProxy runtime command {command:?} refused before sending: {reason}")]
    BadPayload {
        /// The command the payload belongs to.
        command: String,
        /// Why.
        reason: String,
    },
    /// HAProxy answered the command with something other than its success
    /// answer.
    #[error("HAProxy refused {command:?}: {}", answer.trim_end())]
    Refused {
        /// The command.
        command: String,
        /// HAProxy's answer.
        answer: String,
    },
    /// `del server` answered that the server still has connections; drain
    /// it and try again.
    #[error("HAProxy refused {command:?} (server still in use): {}", answer.trim_end())]
    StillInUse {
        /// The command.
        command: String,
        /// HAProxy's answer.
        answer: String,
    },
    /// An answer did not have the expected shape.
    #[error("cannot parse HAProxy's answer to {command:?}: {reason}")]
    Parse {
        /// The command.
        command: String,
        /// What was wrong.
        reason: String,
    },
}
