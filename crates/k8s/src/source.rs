//! The Kubernetes API source (`--source kube`): Routes, Services,
//! EndpointSlices and (with `--namespace-selector`) Namespaces, watched with
//! kube-rs [`watcher`]s feeding [`reflector`] stores.
//!
//! # Contract
//!
//! * **One watcher per kind**, each a `watcher(..).default_backoff()
//!   .reflect(store)` stream driven by its own task: paginated initial list
//!   (`limit`/`continue`), then a watch from the list's `resourceVersion`
//!   with bookmarks; a watch that ends is resumed from the last
//!   `resourceVersion` seen; `410 Gone` (an expired `resourceVersion`)
//!   makes the watcher list again; any error is retried with kube's default
//!   exponential backoff (0.8 s doubling to 30 s, with jitter). None of this
//!   is hand-rolled.
//! * **Atomic lists.** A (re)list is buffered by the reflector and swapped
//!   into its store whole at `InitDone`, so a snapshot never holds half of a
//!   list: the initial Routes are decided together (admission sorts by
//!   age), never Route by Route.
//! * **Synced.** [`KubeSource::is_synced`] turns true once *every* watcher
//!   has completed its first list, and stays true (a later relist swaps a
//!   complete list in; until then the previous one is served).
//!   [`Changes::changed`] resolves only after that.
//! * **Change notifications.** Every event that can change what routegen
//!   renders bumps a generation counter; [`Changes::changed`] resolves once
//!   per burst (coalescing; optional `debounce`), is cancel-safe, and never
//!   loses a change. Events that cannot change the output are not
//!   signalled: a Route whose status alone changed (our own status writes
//!   included), a Service whose status changed, a Namespace that still
//!   matches the selector.
//! * **API server gone.** The stores keep the last objects they had:
//!   [`KubeSource::snapshot`] keeps returning the last good state while
//!   the watchers retry, and they resume (or relist) when it comes back.
//! * **Selectors.** `--route-selector` and `--route-field-selector` go into
//!   the Route list/watch. `--namespace-selector` is a label selector on the
//!   Namespace watch; a Route is in the snapshot while its namespace is in
//!   that store, so a namespace whose labels stop (or start) matching drops
//!   (or adds) its Routes. `--namespace` restricts every watch to one
//!   namespace.
//! * **Lenient Routes.** A Route that does not decode is kept by name and
//!   rejected by admission (see [`route`]), instead of failing the list.
//!
//! [`KubeRun`] bundles the source, its change listener and the status
//! writer ([`crate::status`]) for the run loop; [`KubeArgs`] holds their
//! flags.
//!
//! [`watcher`]: kube::runtime::watcher()
//! [`reflector`]: kube::runtime::reflector()

pub mod route;

use std::collections::{BTreeSet, HashMap};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use routegen_core::model::{ObjectKey, Snapshot};

pub use route::WatchedRoute;

/// Flags of the Kubernetes source and the status writer (flattened into
/// `run`). `--namespace` is `run`'s own flag: see [`KubeSourceConfig::namespace`].
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeArgs {
    /// kubeconfig file [default: the in-cluster service account, else $KUBECONFIG or ~/.kube/config].
    #[arg(long, env = "ROUTEGEN_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve only Routes in namespaces whose labels match this selector (e.g. `router=public`).
    #[arg(long, env = "ROUTEGEN_NAMESPACE_SELECTOR", value_name = "SELECTOR")]
    pub namespace_selector: Option<String>,
    /// Serve only Routes whose labels match this selector.
    #[arg(long, env = "ROUTEGEN_ROUTE_SELECTOR", value_name = "SELECTOR")]
    pub route_selector: Option<String>,
    /// Serve only Routes matching this field selector (e.g. `spec.host!=internal.example.com`).
    #[arg(long, env = "ROUTEGEN_ROUTE_FIELD_SELECTOR", value_name = "SELECTOR")]
    pub route_field_selector: Option<String>,
    /// Name of this router in Route status (`status.ingress[].routerName`).
    #[arg(
        long,
        env = "ROUTEGEN_ROUTER_NAME",
        value_name = "NAME",
        default_value = "default"
    )]
    pub router_name: String,
    /// Host name of this router's load balancer, written to `status.ingress[].routerCanonicalHostname`.
    #[arg(long, env = "ROUTEGEN_ROUTER_CANONICAL_HOSTNAME", value_name = "HOST")]
    pub router_canonical_hostname: Option<String>,
    /// Do not write Route status.
    #[arg(long, env = "ROUTEGEN_NO_STATUS")]
    pub no_status: bool,
}

impl KubeArgs {
    /// The source configuration; `namespace` is `run`'s `--namespace` when
    /// given explicitly (`None`: all namespaces).
    pub fn source_config(&self, namespace: Option<String>, debounce: Duration) -> KubeSourceConfig {
        let clean = |s: &Option<String>| {
            s.as_ref()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        KubeSourceConfig {
            namespace: namespace.filter(|n| !n.is_empty()),
            namespace_selector: clean(&self.namespace_selector),
            route_selector: clean(&self.route_selector),
            route_field_selector: clean(&self.route_field_selector),
            debounce,
        }
    }

    /// The status writer's settings, or `None` with `--no-status`.
    pub fn status_config(&self) -> Option<crate::status::StatusConfig> {
        if self.no_status {
            return None;
        }
        Some(crate::status::StatusConfig::new(
            self.router_name.clone(),
            self.router_canonical_hostname
                .clone()
                .filter(|h| !h.trim().is_empty()),
        ))
    }

    /// Check what clap cannot: a router name must be non-empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.router_name.trim().is_empty() {
            return Err("--router-name must not be empty".into());
        }
        Ok(())
    }
}

/// Whether `run` without `--source` should use the Kubernetes API: true
/// inside a Pod (`KUBERNETES_SERVICE_HOST` is set).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
}

/// What to watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeSourceConfig {
    /// Watch only this namespace (`Api::namespaced`); `None`: all (`Api::all`).
    pub namespace: Option<String>,
    /// Label selector on Namespaces; `None`: no Namespace watch, every namespace.
    pub namespace_selector: Option<String>,
    /// Label selector on Routes.
    pub route_selector: Option<String>,
    /// Field selector on Routes.
    pub route_field_selector: Option<String>,
    /// Extra quiet time [`Changes::changed`] waits after a change, to
    /// gather a burst into one pass (zero: none beyond the natural
    /// coalescing of changes that arrive while a pass runs).
    pub debounce: Duration,
}

/// Why no client could be built. (The message includes the cause; no
/// `source()` chain, so `{:#}` does not repeat it.)
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: cannot read kubeconfig: {error}")]
    Kubeconfig {
        path: String,
        error: kube::config::KubeconfigError,
    },
    #[error("cannot find a Kubernetes configuration (not in a cluster, no $KUBECONFIG or ~/.kube/config): {0}")]
    Infer(kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(kube::Error),
}

/// A client from `--kubeconfig`, or inferred (in-cluster service account,
/// then `$KUBECONFIG`, then `~/.kube/config`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let err = |error| ClientError::Kubeconfig {
                path: path.display().to_string(),
                error,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(err)?
        }
        None => kube::Config::infer().await.map_err(ClientError::Infer)?,
    };
    Client::try_from(config).map_err(ClientError::Client)
}

/// The kinds watched, for sync tracking and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Routes = 0,
    Services = 1,
    EndpointSlices = 2,
    Namespaces = 3,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Routes => "routes",
            Kind::Services => "services",
            Kind::EndpointSlices => "endpointslices",
            Kind::Namespaces => "namespaces",
        }
    }
}

/// Sync flags and the change counter, shared by the watcher tasks.
#[derive(Debug)]
struct SyncState {
    generation: watch::Sender<u64>,
    /// Per kind: first list complete. Kinds not watched start true.
    synced: [AtomicBool; 4],
    all_synced: AtomicBool,
    /// Per kind: the last watcher error since the last good event.
    errors: Mutex<[Option<String>; 4]>,
}

impl SyncState {
    fn bump(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    fn mark_synced(&self, kind: Kind) {
        self.synced[kind as usize].store(true, Ordering::SeqCst);
        if self.synced.iter().all(|s| s.load(Ordering::SeqCst)) {
            self.all_synced.store(true, Ordering::SeqCst);
        }
    }

    fn set_error(&self, kind: Kind, error: Option<String>) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        errors[kind as usize] = error;
    }
}

/// The running Kubernetes source; see the module documentation. Cheap to
/// clone (all clones share the watchers); the watchers stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct KubeSource {
    inner: Arc<Inner>,
}

struct Inner {
    routes: Store<WatchedRoute>,
    services: Store<Service>,
    endpoint_slices: Store<EndpointSlice>,
    namespaces: Option<Store<Namespace>>,
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
            writer,
            Kind::Routes,
            state.clone(),
            route_fingerprint,
        )));

        let (services, writer) = reflector::store();
        tasks.push(tokio::spawn(drive(
            api::<Service>(&client, ns),
            watcher::Config::default(),
            writer,
            Kind::Services,
            state.clone(),
            |s: &Service| fingerprint(&(&s.metadata.labels, &s.spec)),
        )));

        let (endpoint_slices, writer) = reflector::store();
        tasks.push(tokio::spawn(drive(
            api::<EndpointSlice>(&client, ns),
            watcher::Config::default(),
            writer,
            Kind::EndpointSlices,
            state.clone(),
            |s: &EndpointSlice| {
                fingerprint(&(&s.metadata.labels, &s.address_type, &s.endpoints, &s.ports))
            },
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
                writer,
                Kind::Namespaces,
                state.clone(),
                |_: &Namespace| 0,
            )));
            store
        });

        KubeSource {
            inner: Arc::new(Inner {
                routes,
                services,
                endpoint_slices,
                namespaces,
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
        for kind in [
            Kind::Routes,
            Kind::Services,
            Kind::EndpointSlices,
            Kind::Namespaces,
        ] {
            if !self.inner.state.synced[kind as usize].load(Ordering::SeqCst) {
                match &errors[kind as usize] {
                    Some(e) => parts.push(format!("{}: {e}", kind.name())),
                    None => parts.push(format!("{}: listing", kind.name())),
                }
            }
        }
        format!("Kubernetes API not synced ({})", parts.join("; "))
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
            if !in_scope(&route.metadata) {
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
        let key = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
            routegen_core::model::snapshot::key_of(m)
        };
        snapshot.routes.sort_by_key(|r| key(&r.metadata));
        snapshot
            .undecodable_routes
            .sort_by_key(|r| key(&r.metadata));
        snapshot.services.sort_by_key(|s| key(&s.metadata));
        snapshot.endpoint_slices.sort_by_key(|s| key(&s.metadata));
        snapshot.namespaces.sort_by_key(|n| n.metadata.name.clone());
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

/// What `run --source kube` drives: the source, its change listener and
/// (unless `--no-status`) the status writer, started together. The run
/// loop uses it like the directory watcher: await [`changed`](Self::changed)
/// (the first call resolves after the first full sync), take a
/// [`snapshot`](Self::snapshot) for the pass, and after a pass whose tree
/// is served (applied or unchanged) hand its verdicts to
/// [`publish`](Self::publish).
#[derive(Debug)]
pub struct KubeRun {
    pub source: KubeSource,
    pub changes: Changes,
    pub status: Option<crate::status::StatusWriter>,
}

impl KubeRun {
    /// Build the client (`--kubeconfig` or inferred) and start everything.
    /// `namespace`: `run`'s `--namespace` when given explicitly.
    pub async fn start(
        args: &KubeArgs,
        namespace: Option<String>,
        debounce: Duration,
    ) -> Result<KubeRun, ClientError> {
        let client = client(args.kubeconfig.as_deref()).await?;
        Ok(KubeRun::with_client(client, args, namespace, debounce))
    }

    /// [`start`](Self::start) with a given client (tests).
    pub fn with_client(
        client: Client,
        args: &KubeArgs,
        namespace: Option<String>,
        debounce: Duration,
    ) -> KubeRun {
        let source = KubeSource::start(client.clone(), args.source_config(namespace, debounce));
        let changes = source.subscribe();
        let status = args
            .status_config()
            .map(|c| crate::status::StatusWriter::spawn(client, source.route_store(), c));
        KubeRun {
            source,
            changes,
            status,
        }
    }

    /// See [`Changes::changed`]. Cancel-safe.
    pub async fn changed(&mut self) -> Option<u64> {
        self.changes.changed().await
    }

    /// See [`KubeSource::snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        self.source.snapshot()
    }

    /// Queue Route status for these verdicts (no-op with `--no-status`);
    /// never blocks.
    pub fn publish(&self, verdicts: &[routegen_core::admit::Verdict]) {
        if let Some(writer) = &self.status {
            writer.submit(verdicts);
        }
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
            if current != self.seen && self.state.all_synced.load(Ordering::SeqCst) {
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

/// Stable hash of a serializable projection (what can change the output).
fn fingerprint<T: serde::Serialize>(value: &T) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    // Cannot fail for these types (plain data, string map keys).
    serde_json::to_vec(value).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// What of a Route can change the output (its status cannot).
fn route_fingerprint(r: &WatchedRoute) -> u64 {
    let m = &r.metadata;
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

/// Annotations that only cost memory (a full copy of the object).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The next item of a stream (no `futures` dependency: `WatchStreamExt`
/// has `Stream` as a supertrait).
async fn next_item<S>(mut stream: Pin<&mut S>) -> Option<S::Item>
where
    S: WatchStreamExt + ?Sized,
{
    std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await
}

/// Drive one watcher into its store, signalling relevant changes.
async fn drive<K, F>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    kind: Kind,
    state: Arc<SyncState>,
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
        })
        .default_backoff()
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let key = |o: &K| (o.meta().namespace.clone(), o.meta().name.clone());
    let mut prints: HashMap<(Option<String>, Option<String>), u64> = HashMap::new();
    let mut failing = false;
    while let Some(item) = next_item(stream.as_mut()).await {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                let text = describe_error(kind, &error);
                if failing {
                    tracing::debug!(kind = kind.name(), error = %text, "watch still failing; retrying with backoff");
                } else {
                    tracing::warn!(kind = kind.name(), error = %text, "watch failed; retrying with backoff (serving the last objects seen)");
                }
                failing = true;
                state.set_error(kind, Some(text));
                continue;
            }
        };
        if failing {
            tracing::info!(kind = kind.name(), "watch recovered");
            failing = false;
            state.set_error(kind, None);
        }
        match event {
            Event::Apply(obj) => {
                let print = relevant(&obj);
                if prints.insert(key(&obj), print) != Some(print) {
                    state.bump();
                }
            }
            Event::Delete(obj) => {
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
                state.mark_synced(kind);
                tracing::info!(
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
        a.metadata.resource_version = Some("2".into());
        if let Ok(r) = a.decoded.as_mut() {
            std::sync::Arc::make_mut(r).status = Some(Default::default());
        }
        assert_eq!(before, route_fingerprint(&a));
        if let Ok(r) = a.decoded.as_mut() {
            std::sync::Arc::make_mut(r).spec.path = Some("/x".into());
        }
        assert_ne!(before, route_fingerprint(&a));
    }

    #[test]
    fn flags_and_environment() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            kube: KubeArgs,
        }
        let cli = Cli::try_parse_from([
            "routegen",
            "--kubeconfig",
            "/k",
            "--namespace-selector",
            "router=public",
            "--route-selector",
            "shard in (a,b)",
            "--route-field-selector",
            "spec.host!=x",
            "--router-name",
            "edge",
            "--router-canonical-hostname",
            "lb.example.com",
            "--no-status",
        ])
        .unwrap();
        assert_eq!(cli.kube.kubeconfig.as_deref(), Some(Path::new("/k")));
        assert_eq!(cli.kube.route_selector.as_deref(), Some("shard in (a,b)"));
        assert_eq!(cli.kube.router_name, "edge");
        assert!(cli.kube.no_status);
        let defaults = Cli::try_parse_from(["routegen"]).unwrap();
        assert_eq!(defaults.kube.router_name, "default");
        assert!(!defaults.kube.no_status);
        // Every flag has its ROUTEGEN_<FLAG> variable.
        let cmd = <Cli as clap::CommandFactory>::command();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" {
                continue;
            }
            let want = format!("ROUTEGEN_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(want.as_str()),
                "--{long}"
            );
        }
    }

    #[test]
    fn args_to_config() {
        let args = KubeArgs {
            route_selector: Some(" shard=a ".into()),
            namespace_selector: Some("".into()),
            router_name: "r1".into(),
            ..KubeArgs::default()
        };
        let c = args.source_config(Some("team".into()), Duration::ZERO);
        assert_eq!(c.route_selector.as_deref(), Some("shard=a"));
        assert_eq!(c.namespace_selector, None);
        assert_eq!(c.namespace.as_deref(), Some("team"));
        assert!(args.validate().is_ok());
        assert_eq!(args.status_config().unwrap().router_name, "r1");
        let off = KubeArgs {
            no_status: true,
            ..args
        };
        assert!(off.status_config().is_none());
    }
}
