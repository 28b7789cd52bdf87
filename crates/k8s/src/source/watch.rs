//! The running source ([`KubeSource`]): one watcher task per kind feeding
//! reflector stores, read as a [`Snapshot`]; and its change listener
//! ([`Changes`]). The contract is the [`source`](super) module's.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use routegen_core::model;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use routegen_core::model::{ObjectKey, Snapshot};

use super::config::KubeSourceConfig;
use super::drive::{drive, route_fingerprint, Cache, CacheReader, Reflected};
use super::secrets::{self, SecretWatches};
use super::sync::{Kind, SyncState, WatchStats, KINDS};
use crate::route::WatchedRoute;

/// The running Kubernetes source; see the [`source`](super) documentation. Cheap to
/// clone (all clones share the watchers); the watchers stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct KubeSource {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Store<WatchedRoute>,
    /// Services and EndpointSlices in the model's compact types.
    services: CacheReader<model::Service>,
    endpoint_slices: CacheReader<model::EndpointSlice>,
    namespaces: Option<Store<Namespace>>,
    /// Watches of the Secrets Routes name (external certificates).
    secrets: Arc<SecretWatches>,
    state: Arc<SyncState>,
    config: KubeSourceConfig,
    client: Client,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl std::fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource")
            .field("config", &self.inner.config)
            .field("synced", &self.is_synced())
            .field("routes", &self.inner.routes.len())
            .finish()
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

impl KubeSource {
    /// Start the watchers. Must be called within a Tokio runtime. Returns
    /// at once; see [`is_synced`](Self::is_synced) and [`subscribe`](Self::subscribe).
    pub fn start(client: Client, config: KubeSourceConfig) -> KubeSource {
        let (generation, _) = watch::channel(0u64);
        let state = Arc::new(SyncState {
            generation,
            synced: [
                AtomicBool::new(false),
                AtomicBool::new(false),
                AtomicBool::new(false),
                AtomicBool::new(config.namespace_selector.is_none()),
            ],
            all_synced: AtomicBool::new(false),
            errors: Mutex::new(Default::default()),
            pending_secrets: AtomicUsize::new(0),
            counts: Default::default(),
        });
        let ns = config.namespace.as_deref();
        let mut tasks = Vec::new();

        let mut route_cfg = watcher::Config::default();
        if let Some(sel) = &config.route_selector {
            route_cfg = route_cfg.labels(sel);
        }
        if let Some(sel) = &config.route_field_selector {
            route_cfg = route_cfg.fields(sel);
        }
        let (routes, writer) = reflector::store();
        tasks.push(tokio::spawn(drive(
            api::<WatchedRoute>(&client, ns),
            route_cfg,
            Reflected::new(writer, route_fingerprint),
            Kind::Routes,
            state.clone(),
        )));

        // Held for their presence only: a Service's compact form is its
        // identity, so an edit of one is no change.
        let cache = Cache::<model::Service>::new();
        let services = cache.reader();
        tasks.push(tokio::spawn(drive(
            api::<Service>(&client, ns),
            watcher::Config::default(),
            cache,
            Kind::Services,
            state.clone(),
        )));

        let cache = Cache::<model::EndpointSlice>::new();
        let endpoint_slices = cache.reader();
        tasks.push(tokio::spawn(drive(
            api::<EndpointSlice>(&client, ns),
            watcher::Config::default(),
            cache,
            Kind::EndpointSlices,
            state.clone(),
        )));

        let namespaces = config.namespace_selector.as_ref().map(|selector| {
            let mut cfg = watcher::Config::default().labels(selector);
            if let Some(ns) = ns {
                cfg = cfg.fields(&format!("metadata.name={ns}"));
            }
            let (store, writer) = reflector::store();
            // Only membership matters: the selector is applied by the API
            // server, which sends DELETED/ADDED when labels stop/start matching.
            tasks.push(tokio::spawn(drive(
                Api::<Namespace>::all(client.clone()),
                cfg,
                Reflected::new(writer, |_: &Namespace| 0),
                Kind::Namespaces,
                state.clone(),
            )));
            store
        });

        // The Secrets Routes name follow the Route store.
        let secret_watches = Arc::new(SecretWatches::new());
        tasks.push(tokio::spawn({
            let routes = routes.clone();
            let watches = secret_watches.clone();
            let client = client.clone();
            let state = state.clone();
            async move {
                let mut rx = state.generation.subscribe();
                loop {
                    watches.reconcile(&secrets::referenced(&routes), &client, &state);
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
        }));

        KubeSource {
            inner: Arc::new(Inner {
                routes,
                services,
                endpoint_slices,
                namespaces,
                secrets: secret_watches,
                state,
                config,
                client,
                tasks,
            }),
        }
    }

    /// Every watcher has completed its first list.
    pub fn is_synced(&self) -> bool {
        self.inner.state.all_synced.load(Ordering::SeqCst)
    }

    /// Why the source is not synced yet (for `/readyz`): the kinds still
    /// listing and their last errors. Empty when synced.
    pub fn not_synced_reason(&self) -> String {
        if self.is_synced() {
            return String::new();
        }
        let errors = self
            .inner
            .state
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut parts = Vec::new();
        for kind in KINDS {
            if !self.inner.state.synced[kind as usize].load(Ordering::SeqCst) {
                match &errors[kind as usize] {
                    Some(e) => parts.push(format!("{}: {e}", kind.name())),
                    None => parts.push(format!("{}: listing", kind.name())),
                }
            }
        }
        format!("Kubernetes API not synced ({})", parts.join("; "))
    }

    /// What each watcher has seen so far (the Namespace watcher only with
    /// `--namespace-selector`), in the order routes, services,
    /// endpointslices, namespaces: read by `/metrics` at each scrape.
    pub fn watch_stats(&self) -> Vec<WatchStats> {
        KINDS
            .into_iter()
            .filter(|k| *k != Kind::Namespaces || self.inner.namespaces.is_some())
            .map(|k| self.inner.state.stats(k))
            .collect()
    }

    /// Resolves once [`is_synced`](Self::is_synced).
    pub async fn wait_synced(&self) {
        let mut rx = self.inner.state.generation.subscribe();
        while !self.is_synced() {
            if rx.changed().await.is_err() {
                // Cannot happen while `self` holds the sender; be safe.
                std::future::pending::<()>().await;
            }
        }
    }

    /// A change listener; see [`Changes::changed`]. Its first `changed`
    /// resolves as soon as the source is synced (even if that happened
    /// before the call).
    pub fn subscribe(&self) -> Changes {
        Changes {
            rx: self.inner.state.generation.subscribe(),
            state: self.inner.state.clone(),
            seen: 0,
            debounce: self.inner.config.debounce,
        }
    }

    /// The current change counter (increases with every relevant event).
    pub fn generation(&self) -> u64 {
        *self.inner.state.generation.borrow()
    }

    /// Every object the stores hold now: Routes of selected namespaces
    /// (undecodable ones as such), Services, EndpointSlices, and the
    /// selected Namespaces. Sorted by `namespace/name` (consumers must not
    /// depend on it). Before sync, whatever has been listed so far (empty).
    pub fn snapshot(&self) -> Snapshot {
        let inner = &*self.inner;
        let selected: Option<BTreeSet<String>> = inner.namespaces.as_ref().map(|store| {
            store
                .state()
                .iter()
                .filter_map(|n| n.metadata.name.clone())
                .collect()
        });
        let in_scope = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            selected
                .as_ref()
                .is_none_or(|set| meta.namespace.as_ref().is_some_and(|ns| set.contains(ns)))
        };
        let mut snapshot = Snapshot::default();
        for route in inner.routes.state() {
            if !in_scope(route.metadata()) {
                continue;
            }
            route.push_into(&mut snapshot);
        }
        // The stores' own `Arc`s: an object that did not change keeps its
        // pointer, which is what the engine's per-object caches key on.
        snapshot.services = inner.services.state();
        snapshot.endpoint_slices = inner.endpoint_slices.state();
        if let Some(store) = &inner.namespaces {
            snapshot.namespaces = store.state();
        }
        inner.secrets.fill(&mut snapshot);
        // In `key_of` order, compared in place (a key per comparison was
        // two string copies, O(n log n) of them every pass).
        fn sort<T>(list: &mut [T], meta: impl Fn(&T) -> &Meta) {
            use routegen_core::model::snapshot::key_str;
            list.sort_by(|a, b| key_str(meta(a)).cmp(&key_str(meta(b))));
        }
        type Meta = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        sort(&mut snapshot.routes, |r| &r.metadata);
        sort(&mut snapshot.undecodable_routes, |r| &r.metadata);
        snapshot
            .services
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        snapshot
            .endpoint_slices
            .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        sort(&mut snapshot.secrets, |s| &s.metadata);
        snapshot
            .namespaces
            .sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        snapshot
    }

    /// The Route store (all Routes watched, before namespace selection):
    /// the status writer reads current status from it.
    pub fn route_store(&self) -> Store<WatchedRoute> {
        self.inner.routes.clone()
    }

    /// The client the watchers use.
    pub fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// What is being watched.
    pub fn config(&self) -> &KubeSourceConfig {
        &self.inner.config
    }

    /// The Route (as stored) for `key`, if the store has it.
    pub fn route(&self, key: &ObjectKey) -> Option<Arc<WatchedRoute>> {
        self.inner
            .routes
            .get(&reflector::ObjectRef::new(&key.name).within(&key.namespace))
    }
}

/// Listens for changes of a [`KubeSource`].
#[derive(Debug)]
pub struct Changes {
    rx: watch::Receiver<u64>,
    state: Arc<SyncState>,
    /// The generation returned last.
    seen: u64,
    debounce: Duration,
}

impl Changes {
    /// Resolves when the stores hold changes not yet reported by this
    /// listener, and only once the source is synced (so the first call
    /// resolves when the first full sync is complete). Returns the
    /// generation now current; `None` when the source is gone.
    ///
    /// Cancel-safe: a change is "reported" only when this returns.
    pub async fn changed(&mut self) -> Option<u64> {
        loop {
            let current = *self.rx.borrow();
            if current != self.seen
                && self.state.all_synced.load(Ordering::SeqCst)
                && self.state.pending_secrets.load(Ordering::SeqCst) == 0
            {
                if !self.debounce.is_zero() {
                    tokio::time::sleep(self.debounce).await;
                }
                let now = *self.rx.borrow();
                self.seen = now;
                return Some(now);
            }
            self.rx.changed().await.ok()?;
        }
    }
}
