//! Progress lines on stderr for the one-shot commands (`--progress`): one
//! short line as each phase starts (`loading …`, `admitting 10,000
//! Routes…`) and one as it ends, with counts and the time it took
//! (`admitted 9,980 Routes, 20 rejected (0.9 s)`). Plain lines, no
//! spinner and no thread; by default only when stderr is a terminal, so
//! scripts and CI logs see nothing new. Stdout never changes.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};

use routegen_core::admit::Verdict;
use routegen_host::source::files::Loaded;

use super::out::note;

/// When to print progress lines.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum When {
    /// Only when stderr is a terminal.
    Auto,
    /// Always (also into a pipe or a file).
    Always,
    /// Never.
    Never,
}

/// The `--progress` flag.
#[derive(Args, Debug)]
pub(crate) struct ProgressArg {
    /// Progress on stderr: a line as each phase (load, admit, render, write or compare) starts and ends, with counts and times. auto: only when stderr is a terminal.
    #[arg(
        long,
        env = "ROUTEGEN_PROGRESS",
        value_enum,
        value_name = "WHEN",
        default_value = "auto"
    )]
    pub(crate) progress: When,
}

impl ProgressArg {
    /// The reporter the flag asks for.
    pub(crate) fn reporter(&self) -> Progress {
        Progress {
            on: match self.progress {
                When::Always => true,
                When::Never => false,
                When::Auto => std::io::stderr().is_terminal(),
            },
        }
    }
}

/// Prints progress lines, or nothing when off.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    on: bool,
}

/// A phase under way: [`Phase::done`] prints its end with the time since
/// it started.
#[must_use = "a phase ends with `done`"]
pub(crate) struct Phase {
    on: bool,
    start: Instant,
}

impl Progress {
    /// Print `what` followed by `…` and start timing the phase.
    pub(crate) fn start(self, what: fmt::Arguments<'_>) -> Phase {
        if self.on {
            note!("{what}…");
        }
        Phase {
            on: self.on,
            start: Instant::now(),
        }
    }

    /// Start the load of `paths`: `loading FILE…` (or `N paths`).
    pub(crate) fn loading(self, paths: &[PathBuf]) -> Phase {
        match paths {
            [one] if one.as_os_str() == "-" => self.start(format_args!("loading stdin")),
            [one] => self.start(format_args!("loading {}", one.display())),
            many => self.start(format_args!("loading {} paths", many.len())),
        }
    }

    /// Start the admission of what `loaded` holds.
    pub(crate) fn admitting(self, loaded: &Loaded) -> Phase {
        self.start(format_args!(
            "admitting {}",
            count(routes_in(loaded), "Route")
        ))
    }
}

/// Routes loaded, decodable or not.
fn routes_in(loaded: &Loaded) -> usize {
    loaded.snapshot.routes.len() + loaded.snapshot.undecodable_routes.len()
}

impl Phase {
    /// Print `what` and the time since the phase started: `… (1.2 s)`.
    pub(crate) fn done(self, what: fmt::Arguments<'_>) {
        if self.on {
            note!("{what} ({:.1} s)", self.start.elapsed().as_secs_f64());
        }
    }

    /// End a load: `loaded 10,000 Routes, 20,001 other objects, 2 warnings`.
    pub(crate) fn loaded(self, loaded: &Loaded) {
        let s = &loaded.snapshot;
        let routes = routes_in(loaded);
        let others =
            s.services.len() + s.endpoint_slices.len() + s.namespaces.len() + s.secrets.len();
        self.done(format_args!(
            "loaded {}, {}, {}",
            count(routes, "Route"),
            count(others, "other object"),
            count(loaded.warnings.len(), "warning")
        ));
    }

    /// End an admission: `admitted 9,980 Routes, 20 rejected`.
    pub(crate) fn admitted(self, verdicts: &[Verdict]) {
        let admitted = verdicts.iter().filter(|v| v.is_admitted()).count();
        self.done(format_args!(
            "admitted {}, {} rejected",
            count(admitted, "Route"),
            grouped(verdicts.len() - admitted)
        ));
    }
}

/// `1 Route`, `10,000 Routes`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    let plural = if n == 1 { "" } else { "s" };
    format!("{} {noun}{plural}", grouped(n))
}

/// `n` with its digits in groups of three: `12,345`.
fn grouped(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands_and_pluralised() {
        let cases = [
            (0, "0 Routes"),
            (1, "1 Route"),
            (999, "999 Routes"),
            (1_000, "1,000 Routes"),
            (12_345, "12,345 Routes"),
            (1_234_567, "1,234,567 Routes"),
        ];
        for (n, text) in cases {
            assert_eq!(count(n, "Route"), text);
        }
    }
}
