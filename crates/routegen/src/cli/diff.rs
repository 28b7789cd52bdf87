//! `routegen diff`: what `render` would change in an existing output
//! directory, as a unified diff (private keys redacted).
//!
//! Exit status: 0 no change, 1 changes, 3 error; see [`super::status`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::out::{self, note};
use super::tree::{build_tree, TreeArgs};

#[derive(Args, Debug)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    pub(crate) tree: TreeArgs,
    /// The output directory to compare with.
    #[arg(long, env = "ROUTEGEN_AGAINST", value_name = "DIR")]
    pub(crate) against: PathBuf,
}

/// Run `diff`; returns its exit status (see the module documentation).
pub(crate) fn exec(args: &DiffArgs) -> ExitCode {
    match diff_cmd(args) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => super::findings(),
        Err(e) => {
            note!("error: {e:#}");
            super::error()
        }
    }
}

/// Returns whether anything changed.
fn diff_cmd(args: &DiffArgs) -> anyhow::Result<bool> {
    let tree = build_tree(&args.tree)?;
    let diff = routegen_host::tree::diff_tree(&tree, &args.against)?;
    out::print(&diff)?;
    Ok(!diff.is_empty())
}
