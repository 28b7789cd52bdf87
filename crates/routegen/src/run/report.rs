//! What one pass leaves in the logs and the metrics ([`report_pass`]).
//!
//! # Contract
//!
//! * Every pass is counted: render time, one apply per tree HAProxy
//!   refused, the pass's own outcome, and (when the manifests loaded) the
//!   verdicts and the Routes left out by fault isolation.
//! * Logs say what changed, not what is: a rejection is logged when it
//!   appears or its text changes, "admitted again" when it goes away, a
//!   warning once until it disappears ([`Reported`] remembers what was
//!   said).

use std::collections::{BTreeMap, BTreeSet};

use routegen_core::admit::{self, Verdict};
use routegen_core::model::ObjectKey;
use routegen_host::metrics::{Metrics, Outcome};

use super::core::{Pass, PassOutcome, RouteChanges};
use super::LOG_TARGET;

/// What the loop remembers between passes, for logging only what changed.
#[derive(Debug, Default)]
pub(super) struct Reported {
    rejections: BTreeMap<String, String>,
    warnings: BTreeSet<String>,
    /// Manifest files that did not load in the last pass that loaded.
    failing_files: BTreeSet<std::path::PathBuf>,
    first: bool,
}

impl Reported {
    /// Nothing said yet; the first pass reports no "admitted again".
    pub(super) fn new() -> Reported {
        Reported {
            first: true,
            ..Reported::default()
        }
    }
}

/// Log and count one pass.
pub(super) fn report_pass(pass: &Pass, metrics: &Metrics, reported: &mut Reported) {
    metrics.record_render(pass.render_time);
    // Every tree HAProxy refused counts as a failed apply; the last one is
    // the pass's own outcome when isolation gave up.
    let refused_rounds = match pass.outcome {
        PassOutcome::Refused { .. } => pass.refused.len().saturating_sub(1),
        _ => pass.refused.len(),
    };
    for refused in &pass.refused[..refused_rounds] {
        metrics.record_apply(Outcome::Failure, "validation_failed", refused.after);
    }
    let (result, reason) = match &pass.outcome {
        PassOutcome::Applied { .. } => (Outcome::Success, pass.outcome.metric_reason()),
        PassOutcome::Unchanged => (Outcome::Unchanged, pass.outcome.metric_reason()),
        other => (Outcome::Failure, other.metric_reason()),
    };
    metrics.record_apply(result, reason, pass.duration);
    if let Some(live) = &pass.live {
        metrics.record_runtime(
            live.ops.iter().map(|(k, n)| (k.as_str(), *n)),
            live.duration,
        );
        metrics.set_draining_servers(live.draining);
    }
    if pass.live_error.is_some() {
        metrics.record_runtime_failure();
    }
    if matches!(pass.outcome, PassOutcome::Applied { .. }) && pass.needs_reload {
        let mut reasons: Vec<&str> = pass.reload_reasons.iter().map(|r| r.label()).collect();
        if pass.live_error.is_some() {
            reasons.push("runtime_refused");
        } else if reasons.is_empty() && !pass.runtime_api {
            reasons.push("runtime_api_off");
        } else if reasons.is_empty() {
            reasons.push("runtime_state_unknown");
        }
        metrics.record_reload_needed(reasons);
    }
    if let Some(verdicts) = &pass.verdicts {
        metrics.record_verdicts(verdicts);
        metrics.set_excluded_routes(
            pass.excluded
                .keys()
                .map(|k| (k.namespace.as_str(), k.name.as_str())),
        );
        metrics.set_servers_left_out(
            pass.servers_left_out
                .iter()
                .map(|(k, n)| (k.namespace.as_str(), k.name.as_str(), *n)),
        );
        report_verdicts(verdicts, pass, reported);
    }
    if let Some(failing) = &pass.failing_files {
        report_failing_files(failing, metrics, reported);
    }
    let warnings: BTreeSet<String> = pass.warnings.iter().cloned().collect();
    for w in warnings.difference(&reported.warnings) {
        tracing::warn!(target: LOG_TARGET, "{w}");
    }
    if pass.verdicts.is_some() {
        reported.warnings = warnings;
    }

    let counts = pass.verdicts.as_ref().map(|v| {
        let admitted = v.iter().filter(|v| v.is_admitted()).count();
        (admitted, v.len() - admitted)
    });
    match &pass.outcome {
        PassOutcome::Applied {
            id,
            summary,
            validation,
        } => {
            let (admitted, rejected) = counts.unwrap_or_default();
            let routes = pass
                .route_changes
                .as_ref()
                .map(describe_route_changes)
                .unwrap_or_default();
            let served = describe_serving(pass);
            tracing::info!(
                target: LOG_TARGET,
                load_ms = pass.load_time.as_millis() as u64,
                render_ms = pass.render_time.as_millis() as u64,
                validation_ms = validation.as_millis() as u64,
                duration_ms = pass.duration.as_millis() as u64,
                "applied tree {id}: files {summary}; Routes {admitted} admitted, {rejected} rejected{}; {routes}; {served}",
                if pass.excluded.is_empty() { String::new() } else { format!(" ({} left out by fault isolation)", pass.excluded.len()) },
            );
        }
        PassOutcome::Unchanged => {
            tracing::debug!(target: LOG_TARGET, duration_ms = pass.duration.as_millis() as u64, "no change")
        }
        PassOutcome::LoadFailed(e) => {
            tracing::error!(target: LOG_TARGET, error = %e, "cannot load the manifests; keeping the last good tree")
        }
        PassOutcome::RenderFailed(e) => {
            tracing::error!(target: LOG_TARGET, error = %e, "cannot render; keeping the last good tree")
        }
        PassOutcome::Refused { proxy, output, why } => tracing::error!(
            target: LOG_TARGET,
            %why,
            "{proxy} refused the configuration and no Route alone could be left out; keeping the last good tree. {proxy} said:\n{output}"
        ),
        PassOutcome::Failed { error, reason } => {
            tracing::error!(target: LOG_TARGET, %error, %reason, "apply failed; keeping the last good tree")
        }
    }
}

/// Count the manifest files that do not load; log each failing version
/// once, and a file that loads again.
fn report_failing_files(
    failing: &[routegen_host::source::files::FailingFile],
    metrics: &Metrics,
    reported: &mut Reported,
) {
    metrics.set_source_files_failing(failing.len());
    for f in failing.iter().filter(|f| f.new) {
        if f.kept_last_good {
            tracing::error!(target: LOG_TARGET, file = %f.path.display(), "cannot load a manifest file; its last good objects are kept, the other files are loaded: {}", f.error);
        } else {
            tracing::error!(target: LOG_TARGET, file = %f.path.display(), "cannot load a manifest file; its objects are left out until it loads, the other files are loaded: {}", f.error);
        }
    }
    let now: BTreeSet<std::path::PathBuf> = failing.iter().map(|f| f.path.clone()).collect();
    for path in reported.failing_files.difference(&now) {
        tracing::info!(target: LOG_TARGET, file = %path.display(), "manifest file loads again (or is gone)");
    }
    reported.failing_files = now;
}

/// How HAProxy comes to serve an applied tree: live commands, a reload
/// (with up to 5 reasons), or both.
fn describe_serving(pass: &Pass) -> String {
    let live = pass.live.as_ref().map(|l| {
        let ops: Vec<String> = l
            .ops
            .iter()
            .map(|(k, n)| format!("{n} {}", k.as_str()))
            .collect();
        format!(
            "live: {} ({} commands, {} µs)",
            ops.join(", "),
            l.commands,
            l.duration.as_micros()
        )
    });
    let reload = pass.needs_reload.then(|| {
        if let Some(e) = &pass.live_error {
            return format!("reload: HAProxy refused a live change ({e})");
        }
        if pass.reload_reasons.is_empty() {
            return "reload".to_string();
        }
        const SHOWN: usize = 5;
        let mut reasons: Vec<String> = pass
            .reload_reasons
            .iter()
            .take(SHOWN)
            .map(|r| r.to_string())
            .collect();
        if pass.reload_reasons.len() > SHOWN {
            reasons.push(format!("… {} more", pass.reload_reasons.len() - SHOWN));
        }
        format!("reload: {}", reasons.join(", "))
    });
    match (live, reload) {
        (Some(l), Some(r)) => format!("{l}; {r}"),
        (Some(l), None) => l,
        (None, Some(r)) => r,
        (None, None) => "live: no command needed".into(),
    }
}

fn describe_route_changes(c: &RouteChanges) -> String {
    if c.is_empty() {
        return "no Route changed".into();
    }
    const SHOWN: usize = 10;
    let list = |sign: &str, keys: &[ObjectKey]| -> Option<String> {
        if keys.is_empty() {
            return None;
        }
        let mut s: Vec<String> = keys
            .iter()
            .take(SHOWN)
            .map(|k| format!("{sign}{k}"))
            .collect();
        if keys.len() > SHOWN {
            s.push(format!("… {} more", keys.len() - SHOWN));
        }
        Some(s.join(" "))
    };
    let parts: Vec<String> = [
        list("+", &c.added),
        list("~", &c.changed),
        list("-", &c.removed),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "Routes changed: {} added, {} changed, {} removed: {}",
        c.added.len(),
        c.changed.len(),
        c.removed.len(),
        parts.join(" ")
    )
}

/// Log rejections as they appear or change (check-style lines), and
/// Routes admitted again.
fn report_verdicts(verdicts: &[Verdict], pass: &Pass, reported: &mut Reported) {
    let mut now = BTreeMap::new();
    for v in verdicts {
        if let Some(r) = v.rejection() {
            let host = if v.host.is_empty() {
                "-".to_string()
            } else {
                admit::host::printable(&v.host)
            };
            let line = format!("{} {host}: {}: {}", v.key, r.reason, r.message);
            now.insert(v.key.to_string(), line);
        }
    }
    let excluded: BTreeSet<String> = pass.excluded.keys().map(|k| k.to_string()).collect();
    for (key, line) in &now {
        if reported.rejections.get(key) != Some(line) {
            let excluded = excluded.contains(key);
            if excluded {
                tracing::warn!(target: LOG_TARGET, route = %key, "rejected (left out by fault isolation): {line}");
            } else {
                tracing::warn!(target: LOG_TARGET, route = %key, "rejected: {line}");
            }
        }
    }
    if !reported.first {
        let present: BTreeSet<String> = verdicts.iter().map(|v| v.key.to_string()).collect();
        for key in reported.rejections.keys() {
            if !now.contains_key(key) && present.contains(key) {
                tracing::info!(target: LOG_TARGET, route = %key, "admitted again");
            }
        }
    }
    reported.first = false;
    reported.rejections = now;
}
