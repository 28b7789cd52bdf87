//! The `routegen` command line: one module per subcommand ([`check`],
//! [`render`], [`diff`], [`run`]), the argument groups they share in
//! [`args`] (and, for render and diff, [`tree`]). Each subcommand module
//! owns its flags, its work and its exit status; `main` parses and
//! dispatches.

pub(crate) mod args;
pub(crate) mod check;
pub(crate) mod diff;
pub(crate) mod out;
pub(crate) mod render;
pub(crate) mod run;
pub(crate) mod tree;

use clap::{Parser, Subcommand};

use check::CheckArgs;
use diff::DiffArgs;
use render::RenderArgs;
use run::RunArgs;

/// OpenShift Routes to a validated HAProxy configuration.
#[derive(Parser, Debug)]
#[command(name = "routegen", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Decide which Routes are admitted and why not.
    ///
    /// Exit status: 0 all admitted, 2 at least one rejected, 1 unreadable input.
    Check(CheckArgs),
    /// Render the HAProxy configuration tree (dry run: no cluster, no HAProxy).
    ///
    /// Prints every file under a `# ==> path <==` header (private keys
    /// redacted unless --show-secrets), or writes the tree with --out.
    /// Rejected Routes are listed on stderr and produce no configuration.
    ///
    /// Exit status: 0 rendered (even when some Routes are rejected), 1 error.
    Render(RenderArgs),
    /// Show what `render` would change in an existing output directory.
    ///
    /// Prints a unified diff from --against DIR to the new tree, private
    /// keys redacted.
    ///
    /// Exit status: 0 no change, 1 changes, 2 error.
    Diff(DiffArgs),
    /// The sidecar: watch manifests, apply validated trees, reload HAProxy.
    ///
    /// Watches --source, renders on every change (bursts coalesced),
    /// validates each tree with `haproxy -c`, swaps it in atomically under
    /// --out (keeping the last good trees), reloads HAProxy and serves
    /// /healthz, /readyz and /metrics on --listen. Routes HAProxy itself
    /// refuses are left out and reported as ExtendedValidationFailed.
    /// With --spawn-haproxy it also starts HAProxy (master-worker) itself.
    ///
    /// Runs until SIGTERM or SIGINT; exit status 0 after a clean shutdown,
    /// 1 when it cannot start.
    Run(Box<RunArgs>),
}
