//! `routegen diff`: what `render` would change in an existing output
//! directory, as a unified diff (private keys redacted).
//!
//! Exit status: 0 no change, 1 changes, 3 error; see [`super::status`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::out::{self, note};
use super::tree::{build_tree, TreeArgs};

#[derive(Args, Debug)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    pub(crate) tree: TreeArgs,
    /// The output directory to compare with: a tree written by `render
    /// --out`, or the output directory of `routegen run` (its `current`
    /// tree is compared) or that `current` link itself.
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
    let against = served_tree(&args.against);
    // A sidecar's output directory: compare with its own default
    // certificate (`<out>/state`), so only what changed shows.
    let sidecar_state = if against != args.against {
        Some(args.against.join("state"))
    } else {
        // The `current` link itself, next to the sidecar's `state/`.
        args.against
            .parent()
            .filter(|out| args.against.ends_with("current") && out.join("trees").is_dir())
            .map(|out| out.join("state"))
    };
    let tree = build_tree(&args.tree, sidecar_state.as_deref())?;
    let diff = routegen_host::tree::diff_tree(&tree, &against)?;
    out::print(&diff)?;
    Ok(!diff.is_empty())
}

/// The tree to compare with: `dir` itself, or `dir/current` when `dir` is
/// the output directory of `routegen run` (a `current` link next to the
/// `trees/` it points into), which is the tree being served.
fn served_tree(dir: &Path) -> PathBuf {
    let current = dir.join("current");
    let is_link = fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink());
    if is_link && dir.join("trees").is_dir() {
        current
    } else {
        dir.to_path_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::served_tree;

    #[test]
    fn a_sidecar_output_directory_is_compared_through_its_current_link() {
        let out = tempfile::tempdir().unwrap();
        let dir = out.path();
        assert_eq!(served_tree(dir), dir, "a plain tree is itself");
        std::fs::create_dir_all(dir.join("trees/00000001-a")).unwrap();
        std::os::unix::fs::symlink("trees/00000001-a", dir.join("current")).unwrap();
        assert_eq!(served_tree(dir), dir.join("current"));
        let link = dir.join("current");
        assert_eq!(served_tree(&link), link, "the link itself is a tree");
    }
}
