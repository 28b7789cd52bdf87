//! Runs a list of runtime commands over one [`StatsSocket`] and judges each
//! answer against what HAProxy prints on success.
//!
//! The answers below were observed on HAProxy 2.6.12 (the text between the
//! command and the prompt; `""` is an empty answer; payload commands after
//! the `+ ` echo is stripped). [`Expect::for_command`] encodes the success
//! column.
//!
//! | command | success | some failures |
//! |---|---|---|
//! | `add server B/S ADDR:PORT [args]` | `New server registered.` | `Already exists a server with the same name in backend.`, `'id' : custom id 9 already used at (null):0 ('server s9').`, `No such backend.`, `'server' expects <name> and <addr>[:<port>] as arguments.` |
//! | `del server B/S` | `Server deleted.` | `Only servers in maintenance mode can be deleted.`, `Server still has connections attached to it, cannot remove it.` ([`Outcome::StillInUse`]), `No such server.` |
//! | `enable server B/S`, `disable server B/S` | `""` | `No such server.` |
//! | `set server B/S state ready\|drain\|maint` | `""` | `'set server <srv> state' expects 'ready', 'drain' and 'maint'.` |
//! | `set server B/S weight N` | `""` | `Absolute weight can only be between 0 and 256 inclusive.` |
//! | `enable health B/S` | `""` | `Health check was not configured on this server, cannot enable.` |
//! | `shutdown sessions server B/S` | `""` | `No such server.` |
//! | `set dynamic-cookie-key backend B KEY` | `""` | `No such backend.` |
//! | `add map M K V`, `add map M <<` | `""` | `Unknown map identifier. Please use #<id> or <file>.` |
//! | `set map M K V` | `""` | `entry not found.` |
//! | `del map M K` | `""` | `Key not found.` |
//! | `new ssl cert F` | `New empty certificate store 'F'!` | `Certificate 'F' already exists!` |
//! | `set ssl cert F <<` | `Transaction created for certificate F!` | `Can't replace a certificate which is not referenced by the configuration!` / `unable to load certificate from file 'F'.`, then `Can't update F!` |
//! | `commit ssl cert F` | `Committing F` / `Success!` | `No ongoing transaction! !` / `Can't commit F!` |
//! | `abort ssl cert F` | `Transaction aborted for certificate 'F'!` | `No ongoing transaction!` |
//! | `del ssl cert F` | `Certificate 'F' deleted!` | `Can't remove the certificate: certificate 'F' in use, can't be deleted!` |
//! | `add ssl crt-list L <<` | `Inserting certificate 'F' in crt-list 'L'.` / `Success!` | `Can't edit the crt-list: crt-list 'L' does not exist!` |
//! | `del ssl crt-list L F` | `Entry 'F' deleted in crtlist 'L'!` | `Can't delete the entry: certificate 'F' can't be found in crt-list 'L'!` |
//! | `new ssl ca-file F` | `New CA file created 'F'!` | |
//! | `set ssl ca-file F <<` | `transaction created for CA F!` | |
//! | `commit ssl ca-file F` | `Committing F` / `Success!` | `No ongoing transaction! !` / `Can't commit F!` |
//! | `abort ssl ca-file F` | `Transaction aborted for certificate 'F'!` | `No ongoing transaction!` |
//! | `del ssl ca-file F` | `CA file 'F' deleted!` | `Can't remove the CA file: CA file 'F' in use, can't be deleted!` |
//!
//! Because some failures contain the success words (`... can't be
//! deleted!`), deletions are recognised by how the answer *starts*.
//! An unknown command answers with a list of similar commands.
//!
//! Beware: `add map` of a key already present adds a second entry (both
//! answer `""`); `set map` changes every entry of the key.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{RuntimeError, StatsSocket};

/// The part of `del server`'s answer that means "drain and retry".
const STILL_HAS_CONNECTIONS: &str = "Server still has connections attached to it";

/// How to recognise a command's success from HAProxy's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// The answer is empty (or whitespace).
    Empty,
    /// The answer starts with this text.
    StartsWith(&'static str),
    /// The answer contains this text.
    Contains(&'static str),
}

impl Expect {
    /// Whether `answer` is a success by this expectation.
    pub fn matches(self, answer: &str) -> bool {
        match self {
            Expect::Empty => answer.trim().is_empty(),
            Expect::StartsWith(text) => answer.starts_with(text),
            Expect::Contains(text) => answer.contains(text),
        }
    }

    /// The expectation for a command of one of the kinds in the module
    /// table, by its text; `None` for other commands.
    pub fn for_command(text: &str) -> Option<Expect> {
        classify(text).map(|(_, expect)| expect)
    }
}

/// Command kinds with their success answer: (kind, expectation).
fn classify(text: &str) -> Option<(&'static str, Expect)> {
    use Expect::{Contains, Empty, StartsWith};
    let words: Vec<&str> = text.split_whitespace().collect();
    let known = match words.as_slice() {
        ["add", "server", ..] => ("add server", StartsWith("New server registered.")),
        ["del", "server", ..] => ("del server", StartsWith("Server deleted.")),
        ["enable", "server", ..] => ("enable server", Empty),
        ["disable", "server", ..] => ("disable server", Empty),
        ["set", "server", _, "state", ..] => ("set server state", Empty),
        ["set", "server", _, "weight", ..] => ("set server weight", Empty),
        ["enable", "health", ..] => ("enable health", Empty),
        ["shutdown", "sessions", "server", ..] => ("shutdown sessions server", Empty),
        ["set", "dynamic-cookie-key", "backend", ..] => ("set dynamic-cookie-key", Empty),
        ["add", "map", ..] => ("add map", Empty),
        ["set", "map", ..] => ("set map", Empty),
        ["del", "map", ..] => ("del map", Empty),
        ["new", "ssl", "cert", ..] => ("new ssl cert", StartsWith("New empty certificate store")),
        ["set", "ssl", "cert", ..] => (
            "set ssl cert",
            StartsWith("Transaction created for certificate"),
        ),
        ["commit", "ssl", "cert", ..] => ("commit ssl cert", Contains("\nSuccess!")),
        ["abort", "ssl", "cert", ..] => ("abort ssl cert", StartsWith("Transaction aborted")),
        ["del", "ssl", "cert", ..] => ("del ssl cert", StartsWith("Certificate '")),
        ["add", "ssl", "crt-list", ..] => ("add ssl crt-list", Contains("\nSuccess!")),
        ["del", "ssl", "crt-list", ..] => ("del ssl crt-list", StartsWith("Entry '")),
        ["new", "ssl", "ca-file", ..] => ("new ssl ca-file", StartsWith("New CA file created")),
        ["set", "ssl", "ca-file", ..] => {
            ("set ssl ca-file", StartsWith("transaction created for CA"))
        }
        ["commit", "ssl", "ca-file", ..] => ("commit ssl ca-file", Contains("\nSuccess!")),
        ["abort", "ssl", "ca-file", ..] => ("abort ssl ca-file", StartsWith("Transaction aborted")),
        ["del", "ssl", "ca-file", ..] => ("del ssl ca-file", StartsWith("CA file '")),
        _ => return None,
    };
    Some(known)
}

/// One runtime command: its text, an optional payload (sent with `<<`) and
/// how to recognise success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The command line, without `<<` (added when there is a payload).
    pub text: String,
    /// Payload lines (no empty line; see [`StatsSocket::command_with_payload`]).
    pub payload: Option<String>,
    /// What a successful answer looks like.
    pub expect: Expect,
}

impl Command {
    /// A command without payload.
    pub fn new(text: impl Into<String>, expect: Expect) -> Command {
        Command {
            text: text.into(),
            payload: None,
            expect,
        }
    }

    /// A command with a payload.
    pub fn with_payload(
        text: impl Into<String>,
        payload: impl Into<String>,
        expect: Expect,
    ) -> Command {
        Command {
            text: text.into(),
            payload: Some(payload.into()),
            expect,
        }
    }

    /// The kind used to group durations: the table's name for known
    /// commands (e.g. `set server weight`), else the first two words.
    pub fn kind(&self) -> String {
        match classify(&self.text) {
            Some((kind, _)) => kind.to_string(),
            None => self
                .text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// Judges HAProxy's answer to this command.
    pub fn judge(&self, answer: String) -> Outcome {
        if self.expect.matches(&answer) {
            Outcome::Done
        } else if self.text.trim_start().starts_with("del server")
            && answer.contains(STILL_HAS_CONNECTIONS)
        {
            Outcome::StillInUse { answer }
        } else {
            Outcome::Refused { answer }
        }
    }

    /// Sends this command and judges the answer.
    pub fn run(&self, sock: &mut StatsSocket) -> Outcome {
        let answer = match &self.payload {
            Some(payload) => sock.command_with_payload(&self.text, payload),
            None => sock.command(&self.text),
        };
        match answer {
            Ok(answer) => self.judge(answer),
            Err(e) => Outcome::Error(e),
        }
    }
}

/// The result of one command.
#[derive(Debug)]
pub enum Outcome {
    /// HAProxy gave the expected answer.
    Done,
    /// `del server` of a server that still has connections: drain it
    /// (`set server B/S state maint`, `shutdown sessions server B/S`) and
    /// retry.
    StillInUse {
        /// HAProxy's answer.
        answer: String,
    },
    /// Any other answer.
    Refused {
        /// HAProxy's answer.
        answer: String,
    },
    /// The command was not sent or not answered (refused before sending,
    /// I/O, timeout); the socket may be broken.
    Error(RuntimeError),
}

/// The first command of a batch that did not succeed.
#[derive(Debug)]
pub struct BatchFailure {
    /// Its index in the batch.
    pub index: usize,
    /// Its text.
    pub command: String,
    /// What happened (never [`Outcome::Done`]).
    pub outcome: Outcome,
}

/// What [`run_batch`] did.
#[derive(Debug)]
pub struct BatchReport {
    /// How many commands succeeded: exactly `cmds[..done]`.
    pub done: usize,
    /// The command that stopped the batch, if one did; it is `cmds[done]`.
    pub failure: Option<BatchFailure>,
    /// Time taken per command run (the succeeded ones, then the failed one).
    pub durations: Vec<Duration>,
}

impl BatchReport {
    /// Whether every command succeeded.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }

    /// Total time of the commands run.
    pub fn total(&self) -> Duration {
        self.durations.iter().sum()
    }

    /// Count and total time per [`Command::kind`]; `cmds` is the batch that
    /// was run.
    pub fn totals_by_kind(&self, cmds: &[Command]) -> BTreeMap<String, (usize, Duration)> {
        let mut totals = BTreeMap::<String, (usize, Duration)>::new();
        for (cmd, took) in cmds.iter().zip(&self.durations) {
            let entry = totals.entry(cmd.kind()).or_default();
            entry.0 += 1;
            entry.1 += *took;
        }
        totals
    }

    /// `Ok` when every command succeeded; else the failure as an error
    /// ([`RuntimeError::Refused`], [`RuntimeError::StillInUse`] or the
    /// error itself).
    pub fn into_result(self) -> Result<(), RuntimeError> {
        let Some(BatchFailure {
            command, outcome, ..
        }) = self.failure
        else {
            return Ok(());
        };
        Err(match outcome {
            Outcome::StillInUse { answer } => RuntimeError::StillInUse { command, answer },
            Outcome::Refused { answer } => RuntimeError::Refused { command, answer },
            Outcome::Error(e) => e,
            Outcome::Done => unreachable!("a batch failure is never Done"),
        })
    }
}

/// Runs `cmds` in order over `sock`, stopping at the first that does not
/// succeed (later commands may depend on it: a server is added before it is
/// enabled).
pub fn run_batch(sock: &mut StatsSocket, cmds: &[Command]) -> BatchReport {
    let mut report = BatchReport {
        done: 0,
        failure: None,
        durations: Vec::with_capacity(cmds.len()),
    };
    for (index, cmd) in cmds.iter().enumerate() {
        let started = Instant::now();
        let outcome = cmd.run(sock);
        report.durations.push(started.elapsed());
        if !matches!(outcome, Outcome::Done) {
            report.failure = Some(BatchFailure {
                index,
                command: cmd.text.clone(),
                outcome,
            });
            break;
        }
        report.done += 1;
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_failures_that_mention_deleted_are_not_success() {
        let del = Command::new(
            "del ssl cert c.pem",
            Expect::for_command("del ssl cert c.pem").unwrap(),
        );
        let failed =
            "Can't remove the certificate: certificate 'c.pem' in use, can't be deleted!\n\n";
        assert!(matches!(del.judge(failed.into()), Outcome::Refused { .. }));
        assert!(matches!(
            del.judge("Certificate 'c.pem' deleted!\n".into()),
            Outcome::Done
        ));
    }

    #[test]
    fn del_server_with_connections_is_still_in_use() {
        let del = Command::new(
            "del server be/s",
            Expect::for_command("del server be/s").unwrap(),
        );
        let answer = "Server still has connections attached to it, cannot remove it.";
        assert!(matches!(
            del.judge(answer.into()),
            Outcome::StillInUse { .. }
        ));
        let maint = "Only servers in maintenance mode can be deleted.";
        assert!(matches!(del.judge(maint.into()), Outcome::Refused { .. }));
    }

    #[test]
    fn kinds_group_by_command_not_by_argument() {
        assert_eq!(
            Command::new("set server be/s weight 3", Expect::Empty).kind(),
            "set server weight"
        );
        assert_eq!(Command::new("show info", Expect::Empty).kind(), "show info");
        assert_eq!(Expect::for_command("set server be/s addr 1.2.3.4"), None);
    }
}
