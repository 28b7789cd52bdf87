//! `routegen check`: which Routes are admitted and why not.
//!
//! A summary line (`N admitted, M rejected, K warnings`, then `, E errors`
//! when `--strict` refused objects) ends stderr.
//!
//! Unknown or misplaced fields of Routes, Services and EndpointSlices are
//! warnings; with `--strict` they are errors that refuse the object (the
//! Route is rejected with `ValidationFailed`, the Service or EndpointSlice
//! is left out).
//!
//! Exit status: 0 all admitted, 1 at least one rejected or (with
//! `--strict`) an unknown field, 3 unreadable input (or output that cannot
//! be written); see [`super::status`].

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use routegen_core::admit::{self, Verdict};
use routegen_host::source::files;
use routegen_render::{self as render};

use super::args::{InputArgs, RouterArgs, TargetArg};
use super::out::{self, note};
use super::progress::ProgressArg;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One aligned line per Route.
    Text,
    /// A JSON array of {namespace, name, host, admitted, reason, message, warnings}.
    Json,
}

#[derive(Args, Debug)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    pub(crate) input: InputArgs,
    #[command(flatten)]
    pub(crate) router: RouterArgs,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        env = "ROUTEGEN_OUTPUT",
        value_enum,
        default_value = "text"
    )]
    pub(crate) output: OutputFormat,
    #[command(flatten)]
    pub(crate) target: TargetArg,
    /// Unknown or misplaced fields of Routes, Services and EndpointSlices (e.g. spec.tsl, a top-level namespace) are errors, not warnings: the Route is rejected (ValidationFailed), the Service or EndpointSlice left out, and the exit status is 1.
    #[arg(long, env = "ROUTEGEN_STRICT")]
    pub(crate) strict: bool,
    #[command(flatten)]
    pub(crate) progress: ProgressArg,
}

/// Run `check`; returns its exit status (see the module documentation).
pub(crate) fn exec(args: &CheckArgs) -> ExitCode {
    let options = files::LoadOptions {
        default_namespace: &args.input.namespace,
        strict: args.strict,
    };
    let progress = args.progress.reporter();
    let phase = progress.loading(&args.input.paths);
    let loaded = match files::load_paths_with(&args.input.paths, options) {
        Ok(loaded) => {
            phase.loaded(&loaded);
            loaded
        }
        Err(e) => {
            note!("error: {e}");
            return super::error();
        }
    };
    for warning in &loaded.warnings {
        note!("warning: {warning}");
    }
    for error in &loaded.errors {
        note!("error: {error}");
    }
    let phase = progress.admitting(&loaded);
    let verdicts = admit::admit_at(
        &loaded.snapshot,
        &args.router.settings(),
        routegen_host::clock::now_unix(),
    );
    phase.admitted(&verdicts);
    let mut warnings = loaded.warnings.len();
    if args.target.proxy == render::Target::Nginx {
        let plan = routegen_core::plan::plan(&verdicts, &loaded.snapshot, &Default::default());
        match render::nginx::warnings(&plan) {
            Ok(nginx) => {
                warnings += nginx.len();
                nginx.iter().for_each(|w| note!("warning: {w}"));
            }
            Err(e) => {
                warnings += 1;
                note!("warning: nginx: {e}");
            }
        }
    }
    let report = match args.output {
        OutputFormat::Json => {
            let reports: Vec<_> = verdicts.iter().map(Verdict::report).collect();
            match serde_json::to_string_pretty(&reports) {
                Ok(json) => json + "\n",
                Err(e) => {
                    note!("error: cannot encode JSON: {e}");
                    return super::error();
                }
            }
        }
        OutputFormat::Text => text_report(&verdicts),
    };
    if let Err(e) = out::print(&report) {
        note!("error: {e:#}");
        return super::error();
    }
    let rejected = verdicts.iter().filter(|v| !v.is_admitted()).count();
    warnings += verdicts.iter().map(|v| v.warnings.len()).sum::<usize>();
    let errors = loaded.errors.len();
    note!(
        "{}",
        summary(verdicts.len() - rejected, rejected, warnings, errors)
    );
    if rejected == 0 && errors == 0 {
        ExitCode::SUCCESS
    } else {
        super::findings()
    }
}

/// The last line on stderr: `7 admitted, 1 rejected, 2 warnings` (the
/// warnings of the input, of the Routes and of the target together), and
/// `, 3 errors` when there are errors of the input (`--strict`).
fn summary(admitted: usize, rejected: usize, warnings: usize, errors: usize) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut line = format!(
        "{admitted} admitted, {rejected} rejected, {warnings} warning{}",
        plural(warnings)
    );
    if errors > 0 {
        line.push_str(&format!(", {errors} error{}", plural(errors)));
    }
    line
}

/// One aligned line per Route: `namespace/name  host  Admitted|Reason: message  [warnings]`.
fn text_report(verdicts: &[Verdict]) -> String {
    let name_width = verdicts
        .iter()
        .map(|v| v.key.to_string().len())
        .max()
        .unwrap_or(0);
    let host_width = verdicts
        .iter()
        .map(|v| v.host.len().max(1))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for v in verdicts {
        let state = match v.rejection() {
            None => "Admitted".to_string(),
            Some(r) => format!("{}: {}", r.reason, one_line(&r.message)),
        };
        let host = if v.host.is_empty() {
            "-"
        } else {
            v.host.as_str()
        };
        let mut line = format!(
            "{:<nw$}  {:<hw$}  {state}",
            v.key.to_string(),
            admit::host::printable(host),
            nw = name_width,
            hw = host_width
        );
        if !v.warnings.is_empty() {
            line.push_str("  [warnings: ");
            line.push_str(&one_line(&v.warnings.join("; ")));
            line.push(']');
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Keep a report line one line: control characters are shown escaped.
fn one_line(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn the_summary_names_errors_only_when_there_are_some() {
        assert_eq!(summary(7, 1, 2, 0), "7 admitted, 1 rejected, 2 warnings");
        assert_eq!(summary(1, 0, 1, 0), "1 admitted, 0 rejected, 1 warning");
        assert_eq!(
            summary(0, 1, 0, 1),
            "0 admitted, 1 rejected, 0 warnings, 1 error"
        );
        assert_eq!(
            summary(2, 0, 0, 3),
            "2 admitted, 0 rejected, 0 warnings, 3 errors"
        );
    }
}
