//! The pipeline as one library call: snapshot → admit → plan → render.
//! These are [`Engine`] passes with empty memos; long-running callers
//! (`run`) keep an [`Engine`] to reuse unchanged objects' results.
//!
//! `render`, `diff` and `run` all go through [`render_snapshot_at`] (or
//! [`render_verdicts`] when `run` has turned some verdicts into rejections
//! after HAProxy refused a tree; `render` and `diff` call its two halves,
//! [`Engine::admit_at`] then [`Engine::render_verdicts`], to time them
//! apart), so there is exactly one copy of the decisions. Everything here is synchronous and pure: the operator's files
//! are read by `routegen-host` (`config::load`) into a [`PipelineConfig`],
//! and "now" is an argument.

use std::collections::BTreeMap;

use routegen_core::admit::{Reason, Rejection, Verdict};
use routegen_core::model::{ObjectKey, Snapshot};

use crate::engine::Engine;
use crate::{RenderError, Target};

pub use crate::pass::{PipelineConfig, Rendered};

/// Admit at `now_unix` (seconds since the epoch; only certificate validity
/// warnings depend on it), plan and render one snapshot.
pub fn render_snapshot_at(
    snapshot: &Snapshot,
    config: &PipelineConfig,
    now_unix: i64,
) -> Result<Rendered, RenderError> {
    Engine::new().render_snapshot_at(snapshot, config, now_unix)
}

/// Plan and render from verdicts already decided (possibly edited with
/// [`exclude_routes`]).
pub fn render_verdicts(
    verdicts: Vec<Verdict>,
    snapshot: &Snapshot,
    config: &PipelineConfig,
) -> Result<Rendered, RenderError> {
    Engine::new().render_verdicts(verdicts, snapshot, config)
}

/// Message of a Route excluded because the `target` proxy refused the
/// configuration it produced; `alert` is the proxy's own line.
pub fn excluded_message(target: Target, alert: &str) -> String {
    format!(
        "{} refused the configuration for this Route: {alert}",
        target.proxy_name()
    )
}

/// Turn the verdicts of `excluded` Routes (key → the proxy's alert line)
/// into `ExtendedValidationFailed` rejections. Routes already rejected keep
/// their own reason. Returns how many verdicts changed.
pub fn exclude_routes(
    verdicts: &mut [Verdict],
    excluded: &BTreeMap<ObjectKey, String>,
    target: Target,
) -> usize {
    let mut changed = 0;
    for v in verdicts.iter_mut() {
        if !v.is_admitted() {
            continue;
        }
        if let Some(alert) = excluded.get(&v.key) {
            v.outcome = Err(Rejection::new(
                Reason::ExtendedValidationFailed,
                excluded_message(target, alert),
            ));
            changed += 1;
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use routegen_core::testkit;
    use routegen_core::RouterSettings;

    #[test]
    fn exclude_turns_admitted_into_extended_validation_failed() {
        let snapshot = testkit::snapshot([
            testkit::route("ns", "a", "a.example.com", "s"),
            testkit::route("ns", "b", "b.example.com", "s"),
        ]);
        let mut verdicts = routegen_core::admit::admit_at(&snapshot, &RouterSettings::default(), 0);
        let mut excluded = BTreeMap::new();
        excluded.insert(ObjectKey::new("ns", "b"), "alert text".to_string());
        excluded.insert(ObjectKey::new("ns", "missing"), "x".to_string());
        assert_eq!(exclude_routes(&mut verdicts, &excluded, Target::Haproxy), 1);
        assert!(verdicts[0].is_admitted());
        let r = verdicts[1].rejection().unwrap();
        assert_eq!(r.reason, Reason::ExtendedValidationFailed);
        assert_eq!(
            r.message,
            "HAProxy refused the configuration for this Route: alert text"
        );
        // Idempotent: already rejected Routes are left alone.
        assert_eq!(exclude_routes(&mut verdicts, &excluded, Target::Haproxy), 0);
        // The message names the proxy of the target (issue 17).
        let mut verdicts = routegen_core::admit::admit_at(&snapshot, &RouterSettings::default(), 0);
        assert_eq!(exclude_routes(&mut verdicts, &excluded, Target::Nginx), 1);
        assert_eq!(
            verdicts[1].rejection().unwrap().message,
            "nginx refused the configuration for this Route: alert text"
        );
    }
}
