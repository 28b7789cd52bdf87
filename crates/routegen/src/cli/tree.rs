//! What `render` and `diff` share: the flags of one tree ([`TreeArgs`])
//! and building it ([`build_tree`]) without a cluster or a proxy, with
//! progress lines for each phase ([`super::progress`]).

use std::path::Path;

use clap::Args;

use routegen_core::admit;
use routegen_host::config::PipelineOptions;
use routegen_host::defaultcert;
use routegen_host::source::files;
use routegen_render::engine::Engine;
use routegen_render::output::OutputTree;
use routegen_render::{self as render};

use super::args::{InputArgs, RenderFlags, RouterArgs, TargetArg};
use super::out::note;
use super::progress::{self, ProgressArg};

/// What render and diff share: input, admission and rendering settings.
#[derive(Args, Debug)]
pub(crate) struct TreeArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) router: RouterArgs,
    #[command(flatten)]
    pub(crate) render: RenderFlags,
    #[command(flatten)]
    pub(crate) target: TargetArg,
    #[command(flatten)]
    pub(crate) progress: ProgressArg,
}

/// Load, admit, plan and render; rejected Routes and warnings go to stderr.
/// A dry run: nothing is written. `adjust` may change the options the
/// flags resolve to before any file they name is read (`diff` takes a
/// sidecar's stored options there). Without `--default-cert` and
/// `--state-dir`, the default certificate is the one in `state_dir` when
/// given and present (the `state/` of a sidecar output `diff` compares
/// with), else the built-in placeholder ([`defaultcert::placeholder`]), so
/// two machines render the same bytes. Admission, then plan and render,
/// are the two halves of `pipeline::render_snapshot_at` (the same engine
/// calls), timed apart for the progress lines.
pub(crate) fn build_tree(
    args: &TreeArgs,
    state_dir: Option<&Path>,
    adjust: impl FnOnce(&mut PipelineOptions) -> anyhow::Result<()>,
) -> anyhow::Result<OutputTree> {
    let progress = args.progress.reporter();
    let phase = progress.loading(&args.input.paths);
    let loaded = files::load_paths(&args.input.paths, &args.input.namespace)?;
    phase.loaded(&loaded);
    for warning in &loaded.warnings {
        note!("warning: {warning}");
    }
    let mut options = args
        .render
        .options(&args.router, None, render::DEFAULT_RUN_DIR);
    options.target = args.target.proxy;
    adjust(&mut options)?;
    if options.default_cert.is_none() && options.state_dir.is_none() {
        // Read, never generated: a dry run writes nothing.
        options.default_cert = state_dir
            .map(|dir| dir.join(defaultcert::STATE_FILE))
            .filter(|file| file.is_file());
    }
    let config = routegen_host::config::load(&options)?;
    let mut engine = Engine::new();
    let phase = progress.admitting(&loaded);
    let verdicts = engine.admit_at(&loaded.snapshot, &config, routegen_host::clock::now_unix());
    phase.admitted(&verdicts);
    let phase = progress.start(format_args!(
        "rendering the {} tree",
        config.target.proxy_name()
    ));
    let rendered = engine.render_verdicts(verdicts, &loaded.snapshot, &config)?;
    phase.done(format_args!(
        "rendered {}",
        progress::count(rendered.tree.len(), "file")
    ));
    for v in &rendered.verdicts {
        if let Some(r) = v.rejection() {
            let host = if v.host.is_empty() {
                "-".to_string()
            } else {
                admit::host::printable(&v.host)
            };
            note!("rejected: {} {host}: {}: {}", v.key, r.reason, r.message);
        }
        for w in &v.warnings {
            note!("warning: {}: {w}", v.key);
        }
    }
    for warning in rendered
        .plan
        .warnings
        .iter()
        .chain(&rendered.target_warnings)
    {
        note!("warning: {warning}");
    }
    Ok(rendered.tree)
}
