//! Route status (SPEC §10): this router's entry of `status.ingress[]`.
//!
//! The pure half ([`desired_ingress`], [`needs_patch`], [`merged_ingress`])
//! decides what our entry should be and whether the API object must be
//! written; [`StatusWriter`] is the async half that writes it.
//!
//! # Contract
//!
//! * One entry per Route, owned by `--router-name`: `host`, `routerName`,
//!   `wildcardPolicy` (`None` when unset, as the API defaults it),
//!   `routerCanonicalHostname` (when set) and one condition `Admitted`
//!   `True`, or `False` with OpenShift's reason and admission's message.
//!   `lastTransitionTime` is kept from the existing entry unless the
//!   condition's status flips.
//! * Written only when our entry differs from what the object holds: the
//!   same verdicts give the same entry, so two replicas with the same
//!   name and configuration agree and do not flap (neither writes what
//!   the other already wrote).
//! * The write is a JSON merge patch (`application/merge-patch+json`) of
//!   the `status` subresource carrying `metadata.resourceVersion` (so the
//!   API server refuses it with `409 Conflict` if the object changed since
//!   it was read) and the whole `status.ingress` array: other routers'
//!   entries as read, in their order, ours replaced or appended. (A merge
//!   patch cannot address one array element; the resourceVersion
//!   precondition is what makes rewriting the array safe.) On 409 the
//!   Route is read again (`get`) and the entry recomputed, with backoff, at
//!   most [`MAX_ATTEMPTS`] times.
//! * [`StatusWriter::submit`] never blocks: the writer runs in its own task
//!   and keeps only the latest batch of verdicts (a bounded queue of one;
//!   a newer batch replaces a pending one and interrupts one in progress,
//!   so each Route is written with its latest verdict). Failed writes are
//!   retried with backoff until a newer batch arrives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::source::WatchedRoute;
use routegen_core::admit::Verdict;
use routegen_core::model::route::{RouteIngress, RouteIngressCondition, RouteStatus};
use routegen_core::model::ObjectKey;

/// Condition type routegen writes.
pub const ADMITTED: &str = "Admitted";
/// Writes of one Route per batch before giving up (409 conflicts).
pub const MAX_ATTEMPTS: u32 = 5;
/// `fieldManager` of our patches.
pub const FIELD_MANAGER: &str = "routegen";

/// Who we are in `status.ingress[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusConfig {
    /// `routerName` (`--router-name`).
    pub router_name: String,
    /// `routerCanonicalHostname` (`--router-canonical-hostname`).
    pub canonical_hostname: Option<String>,
}

impl StatusConfig {
    pub fn new(router_name: impl Into<String>, canonical_hostname: Option<String>) -> Self {
        StatusConfig {
            router_name: router_name.into(),
            canonical_hostname,
        }
    }
}

/// What the status of one Route depends on: the part of a [`Verdict`]
/// status shows (small, cheap to queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteVerdict {
    pub key: ObjectKey,
    pub host: String,
    /// `None`: admitted; else OpenShift's reason and the message.
    pub rejection: Option<(String, String)>,
}

impl From<&Verdict> for RouteVerdict {
    fn from(v: &Verdict) -> Self {
        RouteVerdict {
            key: v.key.clone(),
            host: v.host.clone(),
            rejection: v
                .rejection()
                .map(|r| (r.reason.as_str().to_string(), r.message.clone())),
        }
    }
}

/// The current time as the API writes it (`metav1.Time`: RFC 3339, UTC, seconds).
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Our entry for a Route given its verdict. `wildcard_policy` is the
/// Route's `spec.wildcardPolicy`; `existing` our current entry, if any
/// (only its `lastTransitionTime` is used); `now` the time to record when
/// the condition flips (or is new).
pub fn desired_ingress(
    verdict: &Verdict,
    wildcard_policy: Option<&str>,
    config: &StatusConfig,
    existing: Option<&RouteIngress>,
    now: &str,
) -> RouteIngress {
    desired_entry(
        &RouteVerdict::from(verdict),
        wildcard_policy,
        config,
        existing,
        now,
    )
}

/// [`desired_ingress`] from the compact [`RouteVerdict`].
pub fn desired_entry(
    verdict: &RouteVerdict,
    wildcard_policy: Option<&str>,
    config: &StatusConfig,
    existing: Option<&RouteIngress>,
    now: &str,
) -> RouteIngress {
    let status = if verdict.rejection.is_none() {
        "True"
    } else {
        "False"
    };
    let kept_time = existing
        .and_then(|e| e.conditions.iter().find(|c| c.type_ == ADMITTED))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone());
    let (reason, message) = match &verdict.rejection {
        None => (None, None),
        Some((reason, message)) => (Some(reason.clone()), Some(message.clone())),
    };
    RouteIngress {
        host: verdict.host.clone(),
        router_name: config.router_name.clone(),
        wildcard_policy: Some(
            wildcard_policy
                .filter(|p| !p.is_empty())
                .unwrap_or("None")
                .to_string(),
        ),
        router_canonical_hostname: config.canonical_hostname.clone(),
        conditions: vec![RouteIngressCondition {
            type_: ADMITTED.to_string(),
            status: status.to_string(),
            reason,
            message,
            last_transition_time: Some(kept_time.unwrap_or_else(|| now.to_string())),
        }],
    }
}

/// Our entry in `status` (the first with our router name).
pub fn our_entry<'a>(
    status: Option<&'a RouteStatus>,
    router_name: &str,
) -> Option<&'a RouteIngress> {
    status?
        .ingress
        .iter()
        .find(|i| i.router_name == router_name)
}

/// Whether the object must be written: our entry (by `routerName`) is
/// missing, different from `desired`, or duplicated. Other routers'
/// entries are not looked at.
pub fn needs_patch(current: Option<&RouteStatus>, desired: &RouteIngress) -> bool {
    let mut ours = current
        .map(|s| s.ingress.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|i| i.router_name == desired.router_name);
    match (ours.next(), ours.next()) {
        (Some(entry), None) => entry != desired,
        _ => true,
    }
}

/// The `status.ingress` array to write: every other router's entry as it
/// is, in order; ours in place of the first entry with our name (later
/// duplicates dropped), or appended.
pub fn merged_ingress(current: Option<&RouteStatus>, desired: &RouteIngress) -> Vec<RouteIngress> {
    let mut out = Vec::new();
    let mut placed = false;
    for entry in current.map(|s| s.ingress.as_slice()).unwrap_or_default() {
        if entry.router_name == desired.router_name {
            if !placed {
                out.push(desired.clone());
                placed = true;
            }
        } else {
            out.push(entry.clone());
        }
    }
    if !placed {
        out.push(desired.clone());
    }
    out
}

/// The merge patch body: resourceVersion precondition and the whole array.
pub fn patch_body(resource_version: &str, ingress: &[RouteIngress]) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "resourceVersion": resource_version },
        "status": { "ingress": ingress },
    })
}

/// Equal except for `lastTransitionTime` (which `desired_entry` takes
/// from the clock when the stored entry is stale).
fn same_entry(a: &RouteIngress, b: &RouteIngress) -> bool {
    let strip = |i: &RouteIngress| {
        let mut i = i.clone();
        for c in &mut i.conditions {
            c.last_transition_time = None;
        }
        i
    };
    strip(a) == strip(b)
}

/// Up to `max_ms` of jitter (from the clock: no random source needed).
fn jitter(max_ms: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    Duration::from_millis(u64::from(nanos % max_ms.max(1)))
}

/// Counters of the writer (for tests and metrics).
#[derive(Debug, Default)]
pub struct StatusStats {
    /// Successful PATCH calls.
    pub patches: AtomicU64,
    /// PATCH calls refused with 409 Conflict.
    pub conflicts: AtomicU64,
    /// Writes given up (other errors, or conflicts beyond [`MAX_ATTEMPTS`]).
    pub failures: AtomicU64,
}

/// The async status writer; see the module documentation. Dropping it
/// stops the task.
#[derive(Debug)]
pub struct StatusWriter {
    tx: watch::Sender<(u64, Arc<Vec<RouteVerdict>>)>,
    done: watch::Receiver<u64>,
    stats: Arc<StatusStats>,
    task: JoinHandle<()>,
}

impl Drop for StatusWriter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StatusWriter {
    /// Start the writer task. `routes` is the Route store of the Kubernetes
    /// source (current status is read from it, never fetched, except
    /// after a conflict). Must be called within a Tokio runtime.
    pub fn spawn(
        client: Client,
        routes: Store<WatchedRoute>,
        config: StatusConfig,
    ) -> StatusWriter {
        let (tx, rx) = watch::channel((0u64, Arc::new(Vec::new())));
        let (done_tx, done) = watch::channel(0u64);
        let stats = Arc::new(StatusStats::default());
        let worker = Worker {
            client,
            routes,
            config,
            stats: stats.clone(),
            recent: HashMap::new(),
        };
        let task = tokio::spawn(worker.run(rx, done_tx));
        StatusWriter {
            tx,
            done,
            stats,
            task,
        }
    }

    /// Queue the verdicts of a pass whose tree is being served (never
    /// blocks; replaces a batch not yet written). Returns the batch number.
    pub fn submit(&self, verdicts: &[Verdict]) -> u64 {
        let batch: Vec<RouteVerdict> = verdicts.iter().map(RouteVerdict::from).collect();
        self.submit_compact(batch)
    }

    /// [`submit`](Self::submit) with verdicts already in compact form.
    pub fn submit_compact(&self, batch: Vec<RouteVerdict>) -> u64 {
        let mut seq = 0;
        self.tx.send_modify(|(n, b)| {
            *n += 1;
            seq = *n;
            *b = Arc::new(batch);
        });
        seq
    }

    /// Resolves when batch `seq` (or a later one) has been fully processed.
    pub async fn flushed(&self, seq: u64) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d >= seq).await;
    }

    pub fn stats(&self) -> &StatusStats {
        &self.stats
    }
}

/// What writing one Route came to.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    Unchanged,
    Patched,
    Gone,
    /// Why (logged once per batch, with the count).
    Failed(String),
}

struct Worker {
    client: Client,
    routes: Store<WatchedRoute>,
    config: StatusConfig,
    stats: Arc<StatusStats>,
    /// Per Route: the resourceVersion we patched from and what we wrote,
    /// so a store that has not yet seen our write does not cause a second.
    recent: HashMap<ObjectKey, (String, RouteIngress)>,
}

impl Worker {
    async fn run(
        mut self,
        mut rx: watch::Receiver<(u64, Arc<Vec<RouteVerdict>>)>,
        done: watch::Sender<u64>,
    ) {
        let mut retry: Option<Duration> = None;
        let mut failures_in_row = 0u32;
        loop {
            match retry {
                None => {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
                Some(delay) => {
                    tokio::select! {
                        r = rx.changed() => if r.is_err() { return },
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
            let (seq, batch) = rx.borrow_and_update().clone();
            let live: std::collections::HashSet<&ObjectKey> =
                batch.iter().map(|v| &v.key).collect();
            self.recent.retain(|k, _| live.contains(k));
            let mut interrupted = false;
            let mut failed = 0usize;
            let mut first_error = None;
            for verdict in batch.iter() {
                if rx.has_changed().unwrap_or(false) {
                    interrupted = true;
                    break;
                }
                if let Written::Failed(why) = self.write(verdict).await {
                    failed += 1;
                    first_error.get_or_insert(format!("{}: {why}", verdict.key));
                }
            }
            if interrupted {
                retry = None;
                // The newer batch is pending: `changed` resolves at once.
                continue;
            }
            if failed > 0 {
                failures_in_row += 1;
                let delay = Duration::from_secs(1u64 << failures_in_row.min(5))
                    .min(Duration::from_secs(30));
                tracing::warn!(
                    failed,
                    first = first_error.as_deref().unwrap_or(""),
                    retry_in = ?delay,
                    "Route status writes failed; will retry"
                );
                retry = Some(delay);
            } else {
                failures_in_row = 0;
                retry = None;
            }
            let _ = done.send(seq);
        }
    }

    /// Bring one Route's entry up to date.
    async fn write(&mut self, verdict: &RouteVerdict) -> Written {
        let key = &verdict.key;
        let Some(mut route) = self
            .routes
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
        else {
            // Deleted, or not (yet) seen: nothing to write.
            return Written::Gone;
        };
        let api: Api<WatchedRoute> = Api::namespaced(self.client.clone(), &key.namespace);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        for attempt in 0..MAX_ATTEMPTS {
            let rv = route.metadata.resource_version.clone().unwrap_or_default();
            let status = route.status.as_ref();
            let existing = our_entry(status, &self.config.router_name);
            let desired = desired_entry(
                verdict,
                route.wildcard_policy.as_deref(),
                &self.config,
                existing,
                &now_rfc3339(),
            );
            if !needs_patch(status, &desired) {
                return Written::Unchanged;
            }
            if let Some((from, written)) = self.recent.get(key) {
                if *from == rv && same_entry(written, &desired) {
                    // Our write is not in the store yet.
                    return Written::Unchanged;
                }
            }
            let body = patch_body(&rv, &merged_ingress(status, &desired));
            match api
                .patch_status(&key.name, &params, &Patch::Merge(&body))
                .await
            {
                Ok(_) => {
                    self.stats.patches.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(route = %key, admitted = verdict.rejection.is_none(), "status written");
                    self.recent.insert(key.clone(), (rv, desired));
                    return Written::Patched;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    let delay = Duration::from_millis(50 << attempt.min(5)) + jitter(50);
                    tracing::debug!(route = %key, attempt, ?delay, "status conflict; reading the Route again");
                    tokio::time::sleep(delay).await;
                    match api.get(&key.name).await {
                        Ok(fresh) => route = Arc::new(fresh),
                        Err(kube::Error::Api(s)) if s.code == 404 => return Written::Gone,
                        Err(e) => return self.fail(key, &e),
                    }
                }
                Err(kube::Error::Api(s)) if s.code == 404 => return Written::Gone,
                Err(e) => return self.fail(key, &e),
            }
        }
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        Written::Failed(format!("409 Conflict on all {MAX_ATTEMPTS} attempts"))
    }

    fn fail(&self, key: &ObjectKey, error: &kube::Error) -> Written {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        let hint = match error {
            kube::Error::Api(s) if s.code == 403 => {
                " (403 Forbidden: the ClusterRole must allow patch on routes/status)"
            }
            _ => "",
        };
        tracing::debug!(route = %key, error = %error, "cannot write Route status{hint}");
        Written::Failed(format!("{error}{hint}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StatusConfig {
        StatusConfig::new("r1", None)
    }

    fn verdict(rejection: Option<(&str, &str)>) -> RouteVerdict {
        RouteVerdict {
            key: ObjectKey::new("ns", "a"),
            host: "a.example.com".into(),
            rejection: rejection.map(|(r, m)| (r.into(), m.into())),
        }
    }

    #[test]
    fn admitted_entry() {
        let e = desired_entry(&verdict(None), None, &cfg(), None, "2026-01-01T00:00:00Z");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "host": "a.example.com", "routerName": "r1", "wildcardPolicy": "None",
                "conditions": [{"type": "Admitted", "status": "True",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]
            })
        );
    }

    #[test]
    fn transition_time_changes_only_on_flip() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-02T00:00:00Z";
        let rejected = desired_entry(
            &verdict(Some(("HostAlreadyClaimed", "taken"))),
            Some("None"),
            &cfg(),
            None,
            t0,
        );
        // Another reason, same status: time kept.
        let other = desired_entry(
            &verdict(Some(("ExtendedValidationFailed", "bad cert"))),
            None,
            &cfg(),
            Some(&rejected),
            t1,
        );
        assert_eq!(
            other.conditions[0].last_transition_time.as_deref(),
            Some(t0)
        );
        assert_eq!(
            other.conditions[0].reason.as_deref(),
            Some("ExtendedValidationFailed")
        );
        // Flip: new time.
        let admitted = desired_entry(&verdict(None), None, &cfg(), Some(&other), t1);
        assert_eq!(
            admitted.conditions[0].last_transition_time.as_deref(),
            Some(t1)
        );
        assert_eq!(admitted.conditions[0].reason, None);
        // Same again: no patch.
        let status = RouteStatus {
            ingress: vec![admitted.clone()],
        };
        let again = desired_entry(
            &verdict(None),
            None,
            &cfg(),
            our_entry(Some(&status), "r1"),
            "later",
        );
        assert!(!needs_patch(Some(&status), &again));
    }

    #[test]
    fn only_our_entry_is_compared_and_replaced() {
        let ours = desired_entry(&verdict(None), None, &cfg(), None, "t");
        let theirs = RouteIngress {
            router_name: "other".into(),
            host: "x".into(),
            ..RouteIngress::default()
        };
        let status = RouteStatus {
            ingress: vec![theirs.clone(), ours.clone()],
        };
        assert!(!needs_patch(Some(&status), &ours));
        assert!(needs_patch(None, &ours));
        let mut newer = ours.clone();
        newer.host = "b.example.com".into();
        assert!(needs_patch(Some(&status), &newer));
        assert_eq!(
            merged_ingress(Some(&status), &newer),
            vec![theirs.clone(), newer.clone()]
        );
        // Duplicates of ours collapse; absent: appended.
        let dup = RouteStatus {
            ingress: vec![ours.clone(), theirs.clone(), ours.clone()],
        };
        assert!(needs_patch(Some(&dup), &ours));
        assert_eq!(
            merged_ingress(Some(&dup), &ours),
            vec![ours.clone(), theirs.clone()]
        );
        let only_theirs = RouteStatus {
            ingress: vec![theirs.clone()],
        };
        assert_eq!(
            merged_ingress(Some(&only_theirs), &ours),
            vec![theirs, ours]
        );
    }

    #[test]
    fn canonical_hostname_and_wildcard() {
        let c = StatusConfig::new("r1", Some("lb.example.com".into()));
        let e = desired_entry(&verdict(None), Some("Subdomain"), &c, None, "t");
        assert_eq!(
            e.router_canonical_hostname.as_deref(),
            Some("lb.example.com")
        );
        assert_eq!(e.wildcard_policy.as_deref(), Some("Subdomain"));
    }

    #[test]
    fn time_format() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}
