//! The `routegen` command line: one module per subcommand ([`check`],
//! [`render`], [`diff`], [`run`]), the argument groups they share in
//! [`args`] (and, for render and diff, [`tree`]); every duration flag is
//! read by [`duration`], and the `--progress` lines of the one-shot
//! commands are printed by [`progress`]. Each subcommand module owns its
//! flags, its work and its exit status; `main` parses and dispatches.

pub(crate) mod args;
pub(crate) mod check;
pub(crate) mod diff;
pub(crate) mod duration;
pub(crate) mod out;
pub(crate) mod progress;
pub(crate) mod render;
pub(crate) mod run;
pub(crate) mod tree;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use check::CheckArgs;
use diff::DiffArgs;
use render::RenderArgs;
use run::RunArgs;

/// The exit statuses, the same for every subcommand (README, "Exit
/// status"): a CI job tells findings from usage errors from failures.
pub(crate) mod status {
    /// Findings: `check` rejected some Routes (or, with `--strict`, found
    /// unknown fields), `diff` found differences.
    pub(crate) const FINDINGS: u8 = 1;
    /// A usage error (unknown flag, bad value): clap's own status.
    pub(crate) const USAGE: u8 = 2;
    /// The work could not be done: unreadable input, I/O, a bad
    /// certificate, `run` unable to start.
    pub(crate) const ERROR: u8 = 3;
}

/// Printed at the end of `--help`, for every subcommand.
const EXIT_STATUS_HELP: &str = "Exit status: 0 success; 1 findings (check: some Routes rejected, or unknown fields with --strict; diff: differences); 2 usage error; 3 error (unreadable input, I/O, run cannot start). Output cut short by a closed pipe (`| head`) keeps the status.";

/// Exit with [`status::FINDINGS`].
pub(crate) fn findings() -> ExitCode {
    ExitCode::from(status::FINDINGS)
}

/// Exit with [`status::ERROR`].
pub(crate) fn error() -> ExitCode {
    ExitCode::from(status::ERROR)
}

/// OpenShift Routes to a validated HAProxy configuration.
#[derive(Parser, Debug)]
#[command(
    name = "routegen",
    version,
    about,
    propagate_version = true,
    after_help = EXIT_STATUS_HELP
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Decide which Routes are admitted and why not.
    ///
    /// Unknown or misplaced fields of Routes, Services and EndpointSlices
    /// (spec.tsl, a top-level namespace) are warned about, with the file
    /// line and the field probably meant; --strict makes them errors.
    ///
    /// Exit status: 0 all admitted, 1 at least one rejected (or, with
    /// --strict, an unknown field), 2 usage error, 3 unreadable input.
    #[command(after_help = EXIT_STATUS_HELP)]
    Check(CheckArgs),
    /// Render the HAProxy configuration tree (dry run: no cluster, no HAProxy).
    ///
    /// Prints every file under a `# ==> path <==` header (private keys
    /// redacted unless --show-secrets), or writes the tree with --out.
    /// Rejected Routes are listed on stderr and produce no configuration.
    ///
    /// Exit status: 0 rendered (even when some Routes are rejected), 2
    /// usage error, 3 error.
    #[command(after_help = EXIT_STATUS_HELP)]
    Render(RenderArgs),
    /// Show what `render` would change in an existing output directory.
    ///
    /// Prints a unified diff from --against DIR to the new tree, private
    /// keys redacted. Against the output directory of `routegen run` (or
    /// its `current` link), the render options the sidecar stored in
    /// OUT/state/render-options.json and its default certificate are used,
    /// so no other flag is needed; flags given here win.
    ///
    /// Exit status: 0 no change, 1 changes, 2 usage error, 3 error.
    #[command(after_help = EXIT_STATUS_HELP)]
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
    /// 2 usage error, 3 when it cannot start.
    #[command(after_help = EXIT_STATUS_HELP)]
    Run(Box<RunArgs>),
}
