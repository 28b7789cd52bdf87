//! One watcher task: a kube-rs `watcher(..).default_backoff().reflect(store)`
//! stream driven into its store ([`drive`]), and what counts as a change
//! of an object ([`fingerprint`], [`route_fingerprint`]).
//!
//! # Contract
//!
//! * Every event that can change what routegen renders bumps the shared
//!   generation counter ([`SyncState::bump`]); an object whose fingerprint
//!   did not change (e.g. a Route whose status alone changed) does not.
//! * Events, complete lists and errors are counted per kind
//!   ([`SyncState::counts`], for `/metrics`).
//! * The first `InitDone` of a kind marks it synced; errors are recorded
//!   for `/readyz` until the next good event and retried by kube's
//!   backoff, never here.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::sync::{Kind, SyncState};
use crate::route::WatchedRoute;

/// The target of this module's events: the module's path before it was
/// split off, so log filters and the `target` field of each line stay as
/// they were.
const LOG_TARGET: &str = "routegen_k8s::source";

/// Stable hash of a serializable projection (what can change the output).
pub(super) fn fingerprint<T: serde::Serialize>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // Cannot fail for these types (plain data, string map keys).
    serde_json::to_vec(value).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// What of a Route can change the output (its status cannot).
pub(super) fn route_fingerprint(r: &WatchedRoute) -> u64 {
    let m = r.metadata();
    match &r.decoded {
        Ok(route) => fingerprint(&(
            &m.labels,
            &m.annotations,
            &m.creation_timestamp,
            &m.uid,
            &route.spec,
        )),
        Err(message) => fingerprint(&(&m.uid, &m.creation_timestamp, message)),
    }
}

use crate::route::LAST_APPLIED;

/// The next item of a stream (no `futures` dependency: `WatchStreamExt`
/// has `Stream` as a supertrait).
async fn next_item<S>(mut stream: Pin<&mut S>) -> Option<S::Item>
where
    S: WatchStreamExt + ?Sized,
{
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// Drive one watcher into its store, signalling relevant changes. Every
/// object is reduced by `compact` (after its managed fields and
/// last-applied copy are dropped) before the store holds it.
pub(super) async fn drive<K, F>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    kind: Kind,
    state: Arc<SyncState>,
    compact: fn(&mut K),
    relevant: F,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    F: Fn(&K) -> u64 + Send + 'static,
{
    let reader = writer.as_reader();
    let stream = watcher::watcher(api, config)
        .modify(|o: &mut K| {
            let meta = o.meta_mut();
            meta.managed_fields = None;
            if let Some(a) = meta.annotations.as_mut() {
                a.remove(LAST_APPLIED);
            }
            compact(o);
        })
        .default_backoff()
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let key = |o: &K| (o.meta().namespace.clone(), o.meta().name.clone());
    let mut prints: HashMap<(Option<String>, Option<String>), u64> = HashMap::new();
    let mut failing = false;
    let counts = &state.counts[kind as usize];
    while let Some(item) = next_item(stream.as_mut()).await {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                let text = describe_error(kind, &error);
                if failing {
                    tracing::debug!(target: LOG_TARGET, kind = kind.name(), error = %text, "watch still failing; retrying with backoff");
                } else {
                    tracing::warn!(target: LOG_TARGET, kind = kind.name(), error = %text, "watch failed; retrying with backoff (serving the last objects seen)");
                }
                failing = true;
                counts.errors.fetch_add(1, Ordering::Relaxed);
                state.set_error(kind, Some(text));
                continue;
            }
        };
        if failing {
            tracing::info!(target: LOG_TARGET, kind = kind.name(), "watch recovered");
            failing = false;
            state.set_error(kind, None);
        }
        match event {
            Event::Apply(obj) => {
                counts.applied.fetch_add(1, Ordering::Relaxed);
                let print = relevant(&obj);
                if prints.insert(key(&obj), print) != Some(print) {
                    state.bump();
                }
            }
            Event::Delete(obj) => {
                counts.deleted.fetch_add(1, Ordering::Relaxed);
                prints.remove(&key(&obj));
                state.bump();
            }
            Event::InitDone => {
                prints = reader
                    .state()
                    .iter()
                    .map(|o| (key(o), relevant(o)))
                    .collect();
                let first = !state.synced[kind as usize].load(Ordering::SeqCst);
                state.listed(kind);
                tracing::info!(
                    target: LOG_TARGET,
                    kind = kind.name(),
                    objects = prints.len(),
                    "{}",
                    if first { "listed" } else { "listed again" }
                );
                state.bump();
            }
            Event::Init | Event::InitApply(_) => {}
        }
    }
}

/// A watcher error with a hint when it is a permission or selector problem.
fn describe_error(kind: Kind, error: &watcher::Error) -> String {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some((s.code, s.message.clone())),
        watcher::Error::WatchError(s) => Some((s.code, s.message.clone())),
        _ => None,
    };
    match status {
        Some((403, message)) => format!(
            "{message} (403 Forbidden: the ClusterRole must allow list and watch on {})",
            kind.name()
        ),
        Some((400, message)) if kind == Kind::Routes => {
            format!("{message} (400: check --route-selector and --route-field-selector)")
        }
        Some((400, message)) if kind == Kind::Namespaces => {
            format!("{message} (400: check --namespace-selector)")
        }
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_changes_do_not_change_the_fingerprint() {
        let mut a: WatchedRoute = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": "1"},
            "spec": {"host": "a.example.com", "to": {"name": "s"}}
        }))
        .unwrap();
        let before = route_fingerprint(&a);
        kube::Resource::meta_mut(&mut a).resource_version = Some("2".into());
        if let Ok(r) = a.decoded.as_mut() {
            std::sync::Arc::make_mut(r).status = Some(Default::default());
        }
        assert_eq!(before, route_fingerprint(&a));
        if let Ok(r) = a.decoded.as_mut() {
            std::sync::Arc::make_mut(r).spec.path = Some("/x".into());
        }
        assert_ne!(before, route_fingerprint(&a));
    }
}
