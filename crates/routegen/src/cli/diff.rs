//! `routegen diff`: what `render` would change in an existing output
//! directory, as a unified diff (private keys redacted).
//!
//! Exit status: 0 no change, 1 changes, 3 error; see [`super::status`].

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use super::out::{self, note};
use super::tree::{build_tree, TreeArgs};
use routegen::render_options as stored;

#[derive(Args, Debug)]
pub(crate) struct DiffArgs {
    #[command(flatten)]
    pub(crate) tree: TreeArgs,
    /// The output directory to compare with: a tree written by `render
    /// --out`, or the output directory of `routegen run` (its `current`
    /// tree is compared) or that `current` link itself. For a sidecar's
    /// directory the render options it runs with (stored in
    /// OUT/state/render-options.json: binds, --run-dir, spare pools,
    /// --haproxy-log, router settings, ...) and its default certificate
    /// are used, except for the flags given here.
    #[arg(long, env = "ROUTEGEN_AGAINST", value_name = "DIR")]
    pub(crate) against: PathBuf,
}

/// Run `diff`; returns its exit status (see the module documentation).
/// `given`: the parsed arguments, to tell the flags the user gave from
/// defaults.
pub(crate) fn exec(args: &DiffArgs, given: Option<&ArgMatches>) -> ExitCode {
    let explicit = |flag: &str| given.is_some_and(|m| given_explicitly(m, flag));
    match diff_cmd(args, &explicit) {
        Ok(false) => ExitCode::SUCCESS,
        Ok(true) => super::findings(),
        Err(e) => {
            note!("error: {e:#}");
            super::error()
        }
    }
}

/// The clap id of a render flag (the field behind it).
pub(crate) fn arg_id(flag: &str) -> String {
    match flag {
        "target" => "proxy".to_string(),
        other => other.replace('-', "_"),
    }
}

/// Whether `flag` was given on the command line or by its environment
/// variable (not left to its default).
fn given_explicitly(matches: &ArgMatches, flag: &str) -> bool {
    matches!(
        matches.value_source(&arg_id(flag)),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Returns whether anything changed.
fn diff_cmd(args: &DiffArgs, explicit: &dyn Fn(&str) -> bool) -> anyhow::Result<bool> {
    let against = served_tree(&args.against);
    // A sidecar's output directory (or its `current` link, next to
    // `trees/`): render with the options it stored and its own default
    // certificate, so only what changed shows.
    let sidecar_out = if against != args.against {
        Some(args.against.clone())
    } else {
        args.against
            .parent()
            .filter(|out| args.against.ends_with("current") && out.join("trees").is_dir())
            .map(Path::to_path_buf)
    };
    let stored = match &sidecar_out {
        Some(out) => stored::load(out)?,
        None => None,
    };
    let sidecar_state = match (&stored, &sidecar_out) {
        (Some(stored), _) if stored.state_dir().is_some() => {
            stored.state_dir().map(Path::to_path_buf)
        }
        (_, Some(out)) => Some(out.join("state")),
        _ => None,
    };
    let tree = build_tree(&args.tree, sidecar_state.as_deref(), |options| {
        let Some(stored) = &stored else {
            return Ok(());
        };
        let taken = stored.apply(options, explicit)?;
        if !taken.is_empty() {
            note!(
                "note: using the render options the sidecar stored in {} (flags given here win): {}",
                sidecar_out.as_deref().unwrap_or(Path::new(".")).join(stored::FILE).display(),
                taken.join(" ")
            );
        }
        Ok(())
    })?;
    let phase = args
        .tree
        .progress
        .reporter()
        .start(format_args!("comparing with {}", against.display()));
    let diff = routegen_host::tree::diff_tree(&tree, &against)?;
    phase.done(format_args!(
        "compared {}: {}",
        against.display(),
        if diff.is_empty() {
            "no change"
        } else {
            "changes"
        }
    ));
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
    use super::{served_tree, stored};

    /// Every pipeline option, as `render` resolves its defaults.
    fn sample_options() -> routegen_host::config::PipelineOptions {
        use clap::Parser as _;
        let cli = crate::cli::Cli::try_parse_from(["routegen", "render", "-f", "x"]).unwrap();
        let crate::cli::Command::Render(args) = cli.command else {
            unreachable!()
        };
        args.tree.render.options(&args.tree.router, None, "/run")
    }

    /// Every stored option is a flag of `diff`, so a user can override it.
    #[test]
    fn every_stored_option_is_a_diff_flag() {
        use clap::CommandFactory as _;
        let cli = crate::cli::Cli::command();
        let diff = cli.find_subcommand("diff").unwrap();
        let json = serde_json::to_value(stored::StoredOptions::of(
            &routegen_host::config::PipelineOptions { ..sample_options() },
        ))
        .unwrap();
        for flag in json
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !["version", "haproxy-events"].contains(&k.as_str()))
        {
            let arg = diff
                .get_arguments()
                .find(|a| a.get_long() == Some(flag.as_str()))
                .unwrap_or_else(|| panic!("diff has no --{flag}"));
            assert_eq!(arg.get_id().as_str(), super::arg_id(flag), "--{flag}");
        }
    }

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
