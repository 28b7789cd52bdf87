//! One watcher task: a kube-rs `watcher(..).default_backoff()` stream
//! driven into where its kind is kept ([`drive`], [`Keep`]): a reflector
//! store ([`Reflected`]: Routes, Namespaces) or a cache of the model's
//! compact objects ([`Cache`]: Services, EndpointSlices); and what counts
//! as a change of an object ([`fingerprint`], [`route_fingerprint`], an
//! unequal compact object).
//!
//! # Contract
//!
//! * Every event that can change what routegen renders bumps the shared
//!   generation counter ([`SyncState::bump`]); an object whose fingerprint
//!   did not change (e.g. a Route whose status alone changed), or whose
//!   compact form equals the one held, does not.
//! * Events, complete lists and errors are counted per kind
//!   ([`SyncState::counts`], for `/metrics`).
//! * The first `InitDone` of a kind marks it synced; errors are recorded
//!   for `/readyz` until the next good event and retried by kube's
//!   backoff, never here.

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
        Ok(route) => fingerprint(&(&m.annotations, &m.creation_timestamp, &m.uid, &route.spec)),
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

/// Where a watcher's objects go, and what of an event counts as a change.
pub(super) trait Keep<K>: Send + 'static {
    /// Take one event; whether it can change what routegen renders.
    fn apply(&mut self, event: Event<K>) -> bool;
    /// How many objects are held.
    fn len(&self) -> usize;
}

/// A kube-rs reflector store (the Routes, which the status writer reads,
/// and the Namespaces), with a fingerprint of what routegen reads of an
/// object: an event that leaves an object's fingerprint unchanged is no
/// change.
pub(super) struct Reflected<K: Resource<DynamicType = ()> + Clone + 'static> {
    writer: reflector::store::Writer<K>,
    reader: reflector::Store<K>,
    relevant: fn(&K) -> u64,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Reflected<K> {
    pub(super) fn new(writer: reflector::store::Writer<K>, relevant: fn(&K) -> u64) -> Self {
        Reflected {
            reader: writer.as_reader(),
            writer,
            relevant,
        }
    }
}

impl<K> Keep<K> for Reflected<K>
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    fn apply(&mut self, event: Event<K>) -> bool {
        // The held object's fingerprint is computed again, before the event
        // replaces it, rather than kept in a map keyed by copies of every
        // object's name (a hundred bytes per Route).
        let changed = match &event {
            Event::Apply(obj) => self
                .reader
                .get(&reflector::ObjectRef::from_obj(obj))
                .is_none_or(|held| (self.relevant)(&held) != (self.relevant)(obj)),
            Event::Delete(_) | Event::InitDone => true,
            Event::Init | Event::InitApply(_) => false,
        };
        self.writer.apply_watcher_event(&event);
        changed
    }

    fn len(&self) -> usize {
        self.reader.len()
    }
}

/// A kind kept in the model's own compact type (Services, EndpointSlices):
/// converted as it arrives, so the full object is never held.
pub(super) trait Compact: Eq + Send + Sync + 'static {
    /// `(namespace, name)`.
    fn key(&self) -> (&str, &str);
}

impl Compact for routegen_core::model::Service {
    fn key(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

impl Compact for routegen_core::model::EndpointSlice {
    fn key(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

/// An object of a [`Cache`], hashed and compared by `namespace/name`.
struct ByKey<T>(Arc<T>);

impl<T: Compact> PartialEq for ByKey<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0.key() == other.0.key()
    }
}

impl<T: Compact> Eq for ByKey<T> {}

impl<T: Compact> Hash for ByKey<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.key().hash(state)
    }
}

type Objects<T> = std::collections::HashSet<ByKey<T>>;

/// The objects of one compact kind, shared between its watcher task and
/// the source's snapshots. Like a reflector store, a (re)list is buffered
/// and swapped in whole at `InitDone`. An object that arrives equal to the
/// one held (an edit of a field the model does not keep) keeps the held
/// `Arc` and is no change.
pub(super) struct Cache<T> {
    objects: Arc<std::sync::RwLock<Objects<T>>>,
    /// The list being received (between `Init` and `InitDone`).
    relist: Option<Objects<T>>,
}

impl<T: Compact> Cache<T> {
    pub(super) fn new() -> Self {
        Cache {
            objects: Arc::default(),
            relist: None,
        }
    }

    /// A reader of what the cache holds.
    pub(super) fn reader(&self) -> CacheReader<T> {
        CacheReader(Arc::clone(&self.objects))
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Objects<T>> {
        self.objects.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `object`, or the equal object `held` has (its `Arc`).
    fn reuse(held: &Objects<T>, object: T) -> (ByKey<T>, bool) {
        let object = ByKey(Arc::new(object));
        match held.get(&object) {
            Some(old) if *old.0 == *object.0 => (ByKey(Arc::clone(&old.0)), false),
            _ => (object, true),
        }
    }
}

impl<K, T> Keep<K> for Cache<T>
where
    K: Send + 'static,
    T: Compact + From<K>,
{
    fn apply(&mut self, event: Event<K>) -> bool {
        match event {
            Event::Apply(obj) => {
                let mut held = self.write();
                let (object, changed) = Self::reuse(&held, T::from(obj));
                if changed {
                    held.replace(object);
                }
                changed
            }
            Event::Delete(obj) => {
                let object = ByKey(Arc::new(T::from(obj)));
                self.write().remove(&object)
            }
            Event::Init => {
                self.relist = Some(Objects::default());
                false
            }
            Event::InitApply(obj) => {
                let object = {
                    let held = self.objects.read().unwrap_or_else(|e| e.into_inner());
                    Self::reuse(&held, T::from(obj)).0
                };
                self.relist.get_or_insert_default().replace(object);
                false
            }
            Event::InitDone => {
                if let Some(list) = self.relist.take() {
                    *self.write() = list;
                }
                true
            }
        }
    }

    fn len(&self) -> usize {
        self.objects.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// Reads a [`Cache`].
#[derive(Clone)]
pub(super) struct CacheReader<T>(Arc<std::sync::RwLock<Objects<T>>>);

impl<T> CacheReader<T> {
    /// Every object held (in no particular order).
    pub(super) fn state(&self) -> Vec<Arc<T>> {
        let held = self.0.read().unwrap_or_else(|e| e.into_inner());
        held.iter().map(|o| Arc::clone(&o.0)).collect()
    }
}

/// Drive one watcher into `keep`, signalling relevant changes. Every
/// object's managed fields and last-applied copy are dropped as it
/// arrives.
pub(super) async fn drive<K>(
    api: Api<K>,
    config: watcher::Config,
    mut keep: impl Keep<K>,
    kind: Kind,
    state: Arc<SyncState>,
) where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let stream = watcher::watcher(api, config)
        .modify(|o: &mut K| {
            let meta = o.meta_mut();
            meta.managed_fields = None;
            if let Some(a) = meta.annotations.as_mut() {
                a.remove(LAST_APPLIED);
            }
        })
        .default_backoff();
    let mut stream = std::pin::pin!(stream);
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
        let done = matches!(event, Event::InitDone);
        match &event {
            Event::Apply(_) => counts.applied.fetch_add(1, Ordering::Relaxed),
            Event::Delete(_) => counts.deleted.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let changed = keep.apply(event);
        if done {
            // Marked synced before the bump, so a listener woken by it
            // sees the kind synced.
            let first = !state.synced[kind as usize].load(Ordering::SeqCst);
            state.listed(kind);
            tracing::info!(
                target: LOG_TARGET,
                kind = kind.name(),
                objects = keep.len(),
                "{}",
                if first { "listed" } else { "listed again" }
            );
        }
        if changed {
            state.bump();
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
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use routegen_core::model;

    fn slice(name: &str, address: &str, zone: &str) -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "ns",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [address], "zone": zone}]
        }))
        .unwrap()
    }

    fn held(cache: &Cache<model::EndpointSlice>) -> Vec<Arc<model::EndpointSlice>> {
        let mut all = cache.reader().state();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    #[test]
    fn a_cache_keeps_compact_objects_and_ignores_edits_it_does_not_keep() {
        let mut cache = Cache::<model::EndpointSlice>::new();
        assert!(!cache.apply(Event::<EndpointSlice>::Init));
        assert!(!cache.apply(Event::InitApply(slice("a", "10.0.0.1", "z1"))));
        assert!(!cache.apply(Event::InitApply(slice("b", "10.0.0.2", "z1"))));
        assert!(held(&cache).is_empty(), "a list is swapped in whole");
        assert!(cache.apply(Event::<EndpointSlice>::InitDone));
        let first = held(&cache);
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].service.as_deref(), Some("web"));

        // Only the zone changed: not kept, so the same Arc and no change.
        assert!(!cache.apply(Event::Apply(slice("a", "10.0.0.1", "z2"))));
        assert!(Arc::ptr_eq(&held(&cache)[0], &first[0]));
        assert!(cache.apply(Event::Apply(slice("a", "10.0.0.9", "z2"))));
        assert_eq!(held(&cache)[0].endpoints[0].addresses, ["10.0.0.9"]);
        assert!(cache.apply(Event::Delete(slice("b", "10.0.0.2", "z1"))));
        assert!(!cache.apply(Event::Delete(slice("b", "10.0.0.2", "z1"))));
        assert_eq!(held(&cache).len(), 1);

        // A relist replaces everything; equal objects keep their Arcs.
        let a = Arc::clone(&held(&cache)[0]);
        cache.apply(Event::<EndpointSlice>::Init);
        cache.apply(Event::InitApply(slice("a", "10.0.0.9", "z3")));
        cache.apply(Event::InitApply(slice("c", "10.0.0.3", "z1")));
        assert!(cache.apply(Event::<EndpointSlice>::InitDone));
        let after = held(&cache);
        assert_eq!(after.len(), 2);
        assert!(Arc::ptr_eq(&after[0], &a));
        assert_eq!(after[1].name, "c");
    }

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
