//! The HAProxy runtime API: a synchronous client of a worker's stats
//! socket (`stats socket <path> level admin`), for blocking threads.
//!
//! - [`socket`]: [`StatsSocket`], one connection in prompt mode; one
//!   command, then its whole answer; every write and answer bounded by a
//!   timeout.
//! - [`batch`]: [`Command`]s with the answer that means success
//!   ([`Expect`]), run in order until the first failure ([`run_batch`]).
//! - [`observe`](mod@observe): what a running HAProxy serves (servers, maps,
//!   certificates, crt-list, CA files), normalised so that a process updated
//!   at runtime and one started from the same files compare equal.
//! - [`error`](mod@error): [`RuntimeError`].
//!
//! This is the worker's socket, not the master CLI ([`crate::reload`]):
//! master-only commands such as `show proc` do not exist here.

pub mod audit;
pub mod batch;
pub mod error;
pub mod live;
pub mod observe;
pub mod socket;

pub use batch::{run_batch, BatchFailure, BatchReport, Command, Expect, Outcome};
pub use error::RuntimeError;
pub use observe::{observe, AdminState, CaFile, CertIdentity, Observed, ServerState};
pub use socket::StatsSocket;
