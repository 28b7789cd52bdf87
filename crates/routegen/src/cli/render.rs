//! `routegen render`: the configuration tree, printed or written (a dry
//! run: no cluster, no proxy).
//!
//! Exit status: 0 rendered (even when some Routes are rejected), 3 error;
//! see [`super::status`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use routegen_render::output;

use super::out::{self, note};
use super::progress::count;
use super::tree::{build_tree, TreeArgs};

#[derive(Args, Debug)]
pub(crate) struct RenderArgs {
    #[command(flatten)]
    pub(crate) tree: TreeArgs,
    /// Write the tree into this directory (created 0700; it must be new, empty, or written by routegen before) instead of printing it.
    #[arg(long, env = "ROUTEGEN_OUT", value_name = "DIR")]
    pub(crate) out: Option<PathBuf>,
    /// Print private keys instead of redacting them.
    #[arg(long, env = "ROUTEGEN_SHOW_SECRETS")]
    pub(crate) show_secrets: bool,
}

/// Run `render`; returns its exit status (see the module documentation).
pub(crate) fn exec(args: &RenderArgs) -> ExitCode {
    match render_cmd(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            note!("error: {e:#}");
            super::error()
        }
    }
}

fn render_cmd(args: &RenderArgs) -> anyhow::Result<()> {
    let tree = build_tree(&args.tree, None, |_| Ok(()))?;
    match &args.out {
        Some(dir) => {
            let flags = &args.tree.render;
            if flags.default_cert.is_none() && flags.state_dir.is_none() {
                note!("warning: the tree's default certificate is routegen's built-in placeholder, whose key is public: do not serve it; pass --default-cert FILE (or --state-dir DIR to generate one) for a tree to serve");
            }
            let phase = args.tree.progress.reporter().start(format_args!(
                "writing {} to {}",
                count(tree.len(), "file"),
                dir.display()
            ));
            let removed = routegen_host::tree::write_tree(&tree, dir)?;
            phase.done(format_args!("wrote {}", dir.display()));
            for path in removed {
                note!("removed stale file: {path}");
            }
        }
        None => out::print(&output::print_tree(&tree, args.show_secrets))?,
    }
    Ok(())
}
