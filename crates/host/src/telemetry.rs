//! Logging setup (SPEC §11): `tracing` events to stderr, human-readable by
//! default or one JSON object per line (`--log-format json`).
//!
//! The filter uses `tracing-subscriber`'s `EnvFilter` syntax
//! (`info`, `routegen=debug,notify=warn`, ...). Precedence: the
//! [`LOG_ENV`] environment variable when set and non-empty, then the
//! `filter` argument when non-empty, then [`DEFAULT_FILTER`]. An invalid
//! filter falls back to the next one and says so once logging is up.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Environment variable that overrides the filter given to [`init`].
pub const LOG_ENV: &str = "ROUTEGEN_LOG";
/// Filter used when nothing else is given.
pub const DEFAULT_FILTER: &str = "info";

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (coloured when stderr is a terminal).
    #[default]
    Human,
    /// One JSON object per line, event fields flattened.
    Json,
}

/// Install the global subscriber. Idempotent: returns `false` (and changes
/// nothing) when a global subscriber is already installed, e.g. by an
/// earlier call or a test harness.
pub fn init(format: LogFormat, filter: &str) -> bool {
    let env = std::env::var(LOG_ENV).ok();
    let (filter, problems) = choose_filter(env.as_deref(), filter);
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    let installed = match format {
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init()
            .is_ok(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
            .is_ok(),
    };
    if installed {
        for problem in problems {
            tracing::warn!("{problem}");
        }
    }
    installed
}

/// The filter to use and what was wrong with the rejected candidates.
fn choose_filter(env: Option<&str>, arg: &str) -> (EnvFilter, Vec<String>) {
    let mut problems = Vec::new();
    let candidates = [(env.unwrap_or(""), LOG_ENV), (arg, "log filter")];
    for (text, origin) in candidates {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        match EnvFilter::try_new(text) {
            Ok(filter) => return (filter, problems),
            Err(error) => problems.push(format!("ignoring invalid {origin} {text:?}: {error}")),
        }
    }
    (EnvFilter::new(DEFAULT_FILTER), problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_over_argument() {
        let (f, problems) = choose_filter(Some("debug"), "warn");
        assert_eq!(f.to_string(), "debug");
        assert!(problems.is_empty());
    }

    #[test]
    fn argument_then_default() {
        assert_eq!(
            choose_filter(None, "routegen=debug").0.to_string(),
            "routegen=debug"
        );
        assert_eq!(choose_filter(Some("  "), "").0.to_string(), "info");
    }

    #[test]
    fn invalid_filters_fall_back_with_a_message() {
        let (f, problems) = choose_filter(Some("routegen=notalevel"), "warn");
        assert_eq!(f.to_string(), "warn");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains(LOG_ENV), "{problems:?}");
        let (f, problems) = choose_filter(None, "=[");
        assert_eq!(f.to_string(), "info");
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn init_is_idempotent() {
        // Whichever call comes first in this test binary installs; later
        // ones must not panic and report false. `off` keeps the other
        // tests of this binary quiet.
        let _ = init(LogFormat::Json, "off");
        assert!(!init(LogFormat::Human, "info"));
    }
}
