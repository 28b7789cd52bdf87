//! The async half of Route status: [`StatusWriter`], the task that keeps
//! each Route's entry in step with the latest verdicts. See the
//! [`status`](super) contract; what to write is decided by the pure half
//! (`desired`), this module reads the Route store, takes the time, patches
//! and retries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use routegen_core::admit::Verdict;
use routegen_core::model::route::RouteIngress;
use routegen_core::model::ObjectKey;

use super::desired::{
    desired_entry, merged_ingress, needs_patch, our_entry, patch_body, same_entry, RouteVerdict,
    StatusConfig,
};
use crate::route::WatchedRoute;

/// The target of this module's events: the module's path before it was
/// split off, so log filters and the `target` field of each line stay as
/// they were.
const LOG_TARGET: &str = "routegen_k8s::status";

/// Writes of one Route per batch before giving up (409 conflicts).
pub const MAX_ATTEMPTS: u32 = 5;
/// `fieldManager` of our patches.
pub const FIELD_MANAGER: &str = "routegen";

/// The current time as the API writes it (`metav1.Time`: RFC 3339, UTC, seconds).
pub fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// After a 409 Conflict, the wait before reading the Route again: 50 ms
/// doubling (800 ms after the fifth), with jitter at most 1.6 s.
const CONFLICT_DELAYS: (Duration, Duration) =
    (Duration::from_millis(50), Duration::from_millis(1600));
/// After a batch with failed writes, the wait before trying it again:
/// 2 s doubling to 30 s, until a batch is written whole.
const BATCH_DELAYS: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(30));

/// `backon`'s exponential backoff from `min` doubling to `max`, each
/// delay stretched by a random part of itself (up to 100%: replicas and
/// Routes in conflict do not retry in step) and clamped to `max`: the
/// n-th delay lies in `[min(2ⁿ·min, max), min(2ⁿ⁺¹·min, max)]`.
fn delays((min, max): (Duration, Duration)) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    backon::ExponentialBuilder::new()
        .with_min_delay(min)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
        .map(move |d| d.min(max))
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
        self.submit_with(verdicts, &[])
    }

    /// [`submit`](Self::submit), with the Routes whose backend leaves
    /// ready endpoints out (a `ServersLeftOut` condition each).
    pub fn submit_with(
        &self,
        verdicts: &[Verdict],
        servers_left_out: &[(ObjectKey, usize)],
    ) -> u64 {
        let left_out: HashMap<&ObjectKey, usize> =
            servers_left_out.iter().map(|(k, n)| (k, *n)).collect();
        let batch: Vec<RouteVerdict> = verdicts
            .iter()
            .map(|v| RouteVerdict {
                servers_left_out: left_out.get(&v.key).copied().unwrap_or(0),
                ..RouteVerdict::from(v)
            })
            .collect();
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

    /// The same counters, shared (read by `/metrics` at each scrape).
    pub fn shared_stats(&self) -> Arc<StatusStats> {
        self.stats.clone()
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
        let mut retry_delays = delays(BATCH_DELAYS);
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
                let delay = retry_delays.next().unwrap_or(BATCH_DELAYS.1);
                tracing::warn!(
                    target: LOG_TARGET,
                    failed,
                    first = first_error.as_deref().unwrap_or(""),
                    retry_in = ?delay,
                    "Route status writes failed; will retry"
                );
                retry = Some(delay);
            } else {
                retry_delays = delays(BATCH_DELAYS);
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
        let mut conflict_delays = delays(CONFLICT_DELAYS);
        for attempt in 0..MAX_ATTEMPTS {
            let rv = route
                .metadata()
                .resource_version
                .clone()
                .unwrap_or_default();
            let status = route.status();
            let existing = our_entry(status, &self.config.router_name);
            let desired = desired_entry(
                verdict,
                route.wildcard_policy(),
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
                    tracing::debug!(target: LOG_TARGET, route = %key, admitted = verdict.rejection.is_none(), "status written");
                    self.recent.insert(key.clone(), (rv, desired));
                    return Written::Patched;
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    self.stats.conflicts.fetch_add(1, Ordering::Relaxed);
                    let delay = conflict_delays.next().unwrap_or(CONFLICT_DELAYS.1);
                    tracing::debug!(target: LOG_TARGET, route = %key, attempt, ?delay, "status conflict; reading the Route again");
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
        tracing::debug!(target: LOG_TARGET, route = %key, error = %error, "cannot write Route status{hint}");
        Written::Failed(format!("{error}{hint}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each run's n-th delay between the undisturbed doubling and twice
    /// it, within the maximum; and not all runs alike (jitter).
    fn assert_bounds((min, max): (Duration, Duration), n: usize) {
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..50 {
            for (i, d) in delays((min, max)).take(n).enumerate() {
                let base = (min * (1 << i)).min(max);
                assert!(d >= base && d <= (base * 2).min(max), "delay {i}: {d:?}");
                if i == 0 {
                    firsts.insert(d);
                }
            }
        }
        assert!(firsts.len() > 1, "{firsts:?}");
    }

    #[test]
    fn conflict_and_batch_retries_back_off_with_jitter_within_bounds() {
        assert_bounds(CONFLICT_DELAYS, MAX_ATTEMPTS as usize);
        assert_bounds(BATCH_DELAYS, 8);
        // The last conflict wait is at most 1.6 s; a batch retry at most 30 s.
        let last = delays(CONFLICT_DELAYS)
            .nth(MAX_ATTEMPTS as usize - 1)
            .unwrap();
        assert!(last <= Duration::from_millis(1600), "{last:?}");
        assert_eq!(delays(BATCH_DELAYS).nth(8), Some(Duration::from_secs(30)));
    }

    #[test]
    fn time_format() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z'));
    }
}
