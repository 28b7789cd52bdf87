//! The proxy-neutral plan: what the router must do, decided once, from the
//! admitted Routes and the endpoints behind them (SPEC §4–§6). Renderers
//! (HAProxy, later nginx) only format it; every decision lives here, in
//! pure functions with unit tests.
//!
//! Contract: `plan` is a pure function; the same verdicts, snapshot and
//! settings give an equal `Plan` whatever the order of the inputs (every
//! list below is sorted as documented).

pub mod backends;
pub mod endpoints;
pub mod lookup;
pub mod names;
pub mod spares;
pub mod tls;

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use crate::model::EndpointSlice;

use crate::admit::route::{AdmittedRoute, Termination};
use crate::admit::Verdict;
use crate::model::{same_arcs, ArcStr, ObjectKey, Snapshot};
use crate::values::{
    Balance, CookieName, Duration, ForwardedPolicy, HeaderActions, HstsPolicy, IpAllowlist,
    PositiveInt, RewriteTarget, SameSite, Weight,
};

/// Router-wide settings the plan depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanSettings {
    /// `--cookie-name`: sticky cookie name for Routes without the annotation.
    pub cookie_name: Option<CookieName>,
    /// `--service-ca-file` contents (PEM): CA for reencrypt Routes without a
    /// destination CA; enables `verifyhost <svc>.<ns>.svc`.
    pub service_ca_pem: Option<String>,
    /// `--disable-http2`: never offer or use h2.
    pub disable_http2: bool,
    /// `--allow-loopback-endpoints`: keep loopback endpoint addresses (local use, tests).
    pub allow_loopback_endpoints: bool,
    /// SHA-256 of the default certificate's leaf DER: a Route certificate
    /// equal to it is not unique (no h2).
    pub default_cert_sha256: Option<[u8; 32]>,
    /// `--spare-backends`, `--max-spare-backends`: the pool of empty
    /// backends ([`spares`]).
    pub spares: spares::SpareSettings,
}

/// Everything a renderer needs. The tables and file lists are shared
/// (`Arc`): a pass whose inputs to a table did not change hands back the
/// previous pass's table itself, so a renderer can skip it by identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// One per admitted Route, sorted by `name`. Shared: an unchanged
    /// Route's backend is the same `Arc` from pass to pass (see [`PlanMemo`]).
    pub backends: Vec<Arc<Backend>>,
    /// Empty spare backends, sorted by name: a new Route of their shape is
    /// served from one without a reload ([`spares`]; HAProxy only).
    pub spares: Vec<Arc<Backend>>,
    /// Port 80 lookup table, sorted by `key`.
    pub http_lookup: Shared<LookupEntry>,
    /// Lookup table for TLS-terminated traffic (edge, reencrypt), sorted by `key`.
    pub https_lookup: Shared<LookupEntry>,
    /// SNI → passthrough backend (exact hosts and `*.domain`), sorted by `sni`.
    pub passthrough: Shared<SniEntry>,
    /// Deepest path (in segments) of any lookup entry: the number of
    /// per-request exact lookups a renderer needs (0 when no Route has a path).
    pub max_path_depth: usize,
    /// Route certificates (crt-list entries and their files), sorted by `file`.
    pub certificates: Arc<Vec<CertEntry>>,
    /// CA files for reencrypt server verification, sorted by `file`.
    pub ca_files: Arc<Vec<PemFile>>,
    /// Source allowlist files, sorted by `file`.
    pub allowlist_files: Arc<Vec<AllowlistFile>>,
    /// Non-fatal findings of planning (e.g. Routes with no endpoints,
    /// reencrypt without verification), `namespace/name: message`, sorted.
    pub warnings: Vec<String>,
}

/// A shared list of shared items: cloning it (or an item) copies a
/// pointer, so a pass can hand on the previous pass's list, and a renderer
/// can tell by [`Shared::ptr_eq`] that nothing in it changed. Compared by
/// value otherwise.
#[derive(Debug, PartialEq, Eq)]
pub struct Shared<T>(Arc<Vec<Arc<T>>>);

impl<T> Shared<T> {
    pub fn new(items: Vec<Arc<T>>) -> Self {
        Shared(Arc::new(items))
    }

    /// The same list (not merely equal items).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The list, copied first if shared (tests).
    pub fn make_mut(&mut self) -> &mut Vec<Arc<T>> {
        Arc::make_mut(&mut self.0)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Shared(Arc::new(Vec::new()))
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = [Arc<T>];
    fn deref(&self) -> &[Arc<T>] {
        &self.0
    }
}

impl<T> From<Vec<T>> for Shared<T> {
    fn from(items: Vec<T>) -> Self {
        Shared::new(items.into_iter().map(Arc::new).collect())
    }
}

impl<'a, T> IntoIterator for &'a Shared<T> {
    type Item = &'a Arc<T>;
    type IntoIter = std::slice::Iter<'a, Arc<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// What a lookup hit does.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LookupAction {
    /// Send to this backend (name of a [`Backend`]; the backend's own
    /// string, shared).
    Backend(ArcStr),
    /// Answer 302 to `https://<host without port><path and query>`.
    RedirectToHttps,
    /// The Route exists but is not served here (insecure policy None): 503.
    Refuse,
}

/// How a lookup key matches the request path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathMatch {
    /// The host's fallback: a Route without a path or with path `/`.
    Fallback,
    /// `/foo`: matches `/foo` and anything below `/foo/`, not `/foobar`.
    /// Holds the path without a trailing slash.
    Prefix(String),
    /// `/foo/`: matches anything starting with `/foo/` (not `/foo`).
    /// Holds the path with its trailing slash.
    Under(String),
}

/// One row of a lookup table. Its strings are shared ([`ArcStr`]) with the
/// Route's backend and its other entries, and with the table index's keys.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookupEntry {
    /// The exact key a renderer looks up: host key (`host` or `*.domain`)
    /// followed by the path as described by `path` (nothing for Fallback,
    /// `/foo` for Prefix, `/foo/` for Under). Unique within a table.
    pub key: ArcStr,
    /// `www.example.com` or `*.example.com`.
    pub host_key: ArcStr,
    pub path: PathMatch,
    /// Number of path segments (`/a/b` and `/a/b/` are 2, Fallback 0).
    pub depth: usize,
    pub action: LookupAction,
    pub route: ObjectKey,
}

/// SNI → passthrough backend.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SniEntry {
    /// `host` or `*.domain`.
    pub sni: ArcStr,
    pub backend: ArcStr,
    pub route: ObjectKey,
}

/// A Route's own certificate: one crt-list line and one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertEntry {
    /// Path in the output tree: `certs/<ns>:<name>.pem`.
    pub file: String,
    /// File contents: key, certificate chain, CA (PEM). Secret: mode 0600.
    /// Shared: unchanged from pass to pass for an unchanged Route.
    pub pem: std::sync::Arc<str>,
    /// SNI filter: the Route's host, or `*.domain` for wildcard Routes.
    pub sni: ArcStr,
    /// Offer h2 on this certificate (unique, non-wildcard, h2 not disabled).
    pub h2: bool,
    pub route: ObjectKey,
}

/// A PEM file in the output tree (not secret).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PemFile {
    /// Path in the output tree, e.g. `cas/<ns>:<name>.pem` or `cas/service-ca.pem`.
    pub file: String,
    pub pem: String,
}

/// A source allowlist file: one address or CIDR per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowlistFile {
    /// `allowlists/<ns>:<name>.txt`.
    pub file: String,
    pub list: IpAllowlist,
}

/// HTTP or TCP proxying.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    Http,
    Tcp,
}

/// One backend per admitted Route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// `be_http:<ns>:<name>`, `be_edge_http:…`, `be_secure:…`, `be_tcp:…`.
    /// Shared with the Route's lookup entries.
    pub name: ArcStr,
    pub route: ObjectKey,
    /// For the comment naming the Route: host key and path.
    pub host_key: ArcStr,
    pub path: Option<ArcStr>,
    pub termination: Option<Termination>,
    pub mode: Mode,
    pub balance: Balance,
    /// Sorted by server name.
    pub servers: Vec<Server>,
    /// Ready endpoints left out by the bound on servers per backend
    /// (`backends::MAX_SERVERS_PER_BACKEND`); 0 normally.
    pub servers_left_out: usize,
    /// `check inter <d>` on every server; `Some` only with more than one server.
    pub health_check: Option<Duration>,
    pub cookie: Option<StickyCookie>,
    /// `timeout server` (HTTP backends).
    pub timeout_server: Option<Duration>,
    /// `timeout tunnel`.
    pub timeout_tunnel: Option<Duration>,
    /// Path of the allowlist file ([`AllowlistFile::file`]) when the Route restricts sources.
    pub allowlist_file: Option<String>,
    /// `Strict-Transport-Security` response header (edge/reencrypt only).
    pub hsts: Option<HstsPolicy>,
    /// Rare options are boxed: a backend without them (nearly every one)
    /// holds a pointer's width for each, not the option's.
    pub rewrite: Option<Box<PathRewrite>>,
    pub rate_limit: Option<Box<RateLimit>>,
    /// `maxconn` on every server.
    pub server_maxconn: Option<PositiveInt>,
    /// How `Forwarded`/`X-Forwarded-*` are set (HTTP backends; `None` for TCP).
    pub forwarded: Option<ForwardedPolicy>,
    /// TLS towards the servers (reencrypt only).
    pub server_tls: Option<Box<ServerTls>>,
    /// The Route's header actions (`spec.httpHeaders.actions`; HTTP
    /// backends only), in list order.
    pub headers: HeaderActions,
}

/// A server line.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Server {
    /// `pod:<pod>:<service>:<portName>:<ip>:<port>`, `ept:` prefix without a pod.
    pub name: String,
    pub address: IpAddr,
    pub port: u16,
    /// 0 only on HTTP backends: drained but cookie-reachable.
    pub weight: Weight,
    /// The server's `id` in its backend: stable (a hash of the name, see
    /// [`endpoints::assign_ids`]), unique in the backend, in
    /// `1..=endpoints::MAX_SERVER_ID`. HAProxy places servers on the
    /// consistent-hash ring by id, and a server added at runtime must carry
    /// the id its file line has.
    pub id: u32,
    /// Endpoint speaks h2c (appProtocol `h2c` / `kubernetes.io/h2c`).
    pub h2c: bool,
    /// The Service this server belongs to (one string for all its servers).
    pub service: ArcStr,
    /// `verifyhost` for this server (reencrypt with the service CA:
    /// `<its service>.<ns>.svc`, so alternate backends verify against their
    /// own service name). Overrides [`ServerVerify::CaFile::verify_host`].
    pub verify_host: Option<ArcStr>,
}

/// Sticky session cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StickyCookie {
    pub name: CookieName,
    /// `secure` + `SameSite` (edge/reencrypt whose insecure policy is not Allow).
    pub secure: bool,
    pub same_site: Option<SameSite>,
}

/// `rewrite-target`: replace the Route's path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRewrite {
    /// The Route path (prefix being replaced), e.g. `/api`.
    pub prefix: String,
    pub target: RewriteTarget,
}

/// Per-source limits (`rate-limit-connections`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub concurrent_tcp: Option<PositiveInt>,
    pub rate_tcp: Option<PositiveInt>,
    pub rate_http: Option<PositiveInt>,
}

/// TLS from the router to reencrypt servers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerTls {
    pub verify: ServerVerify,
    /// Offer h2 to the servers (`alpn h2,http/1.1`) unless h2 is disabled.
    pub alpn_h2: bool,
}

/// How reencrypt servers are verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerVerify {
    /// `verify required ca-file <file>` (+ `verifyhost <name>` for the service CA).
    CaFile {
        file: String,
        verify_host: Option<String>,
    },
    /// `verify none` (warned in `Plan::warnings`).
    None,
}

/// Build the plan from admission verdicts and the snapshot they came from.
///
/// Only admitted verdicts produce anything. Admission gives each Route one
/// verdict; should a key appear twice, only its first admitted verdict in
/// key order is used (the others are reported in `warnings`).
pub fn plan(verdicts: &[Verdict], snapshot: &Snapshot, settings: &PlanSettings) -> Plan {
    plan_memo(&mut PlanMemo::default(), verdicts, snapshot, settings)
}

/// Per-Route planning results kept between passes (see [`plan_memo`]).
#[derive(Debug, Default)]
pub struct PlanMemo {
    settings: Option<PlanSettings>,
    /// The slices of the previous pass, held so the slice pointers below
    /// always name live objects (a pointer cannot be reused while held).
    slices: Vec<Arc<EndpointSlice>>,
    /// The groups of `slices` by Service.
    slice_groups: endpoints::SliceGroups,
    routes: HashMap<ObjectKey, Box<RouteMemo>>,
    /// Passes made (stamps the entries of `routes` each pass uses).
    pass: u64,
    /// The order that sorted the last pass's backends by name (indices
    /// into its admitted Routes, in key order).
    backend_order: Option<Vec<u32>>,
    /// The last pass's admitted Routes by position (key order).
    route_order: Option<RouteOrder>,
    /// [`route_ages`] of `previous_routes` (held, so their pointers stay
    /// unique).
    ages: HashMap<ObjectKey, lookup::RouteAge>,
    previous_routes: Vec<Arc<crate::model::Route>>,
    shared: Option<Arc<SharedParts>>,
    /// The lookup tables, kept Route by Route.
    tables: lookup::TableIndex,
    /// The pool of spares of the last pass.
    pool: Option<Vec<Arc<Backend>>>,
    /// The normalized backend of each shape the Routes have, shared.
    shape_forms: spares::ShapeForms,
}

/// What the last pass knew of its admitted Routes by position (key order).
#[derive(Debug)]
struct RouteOrder {
    /// Each Route's backend.
    backends: Vec<Arc<Backend>>,
    /// (namespace, Service) → the Routes sending to it.
    by_service: HashMap<(String, String), Vec<u32>>,
    /// The Routes whose memo has warnings.
    warned: BTreeSet<u32>,
}

#[derive(Debug)]
struct RouteMemo {
    route: Arc<AdmittedRoute>,
    /// Pointers of the slices of each referenced Service, in order, each
    /// Service's list closed by `usize::MAX`.
    slice_ids: Vec<usize>,
    backend: Arc<Backend>,
    // Boxed: most Routes have none of these, and a memo is kept per Route.
    allowlist_file: Option<Box<AllowlistFile>>,
    ca_file: Option<Box<PemFile>>,
    warnings: Vec<String>,
    cert: Option<Box<tls::CertMaterial>>,
    entries: lookup::RouteEntries,
    /// Its backend's shape ([`spares::shape_of`]; `None` without spares).
    shape: Option<spares::ShapeOf>,
    /// The last pass that used it.
    pass: u64,
}

/// [`plan`] reusing `memo`: a Route whose admitted form (`Arc`) and
/// EndpointSlices (`Arc`s) are those of the previous pass keeps its
/// backend, files, warnings and certificate material; the cross-Route
/// parts (lookup tables, the h2 decision, sorting) are computed every
/// time. The result equals `plan(verdicts, snapshot, settings)`.
pub fn plan_memo(
    memo: &mut PlanMemo,
    verdicts: &[Verdict],
    snapshot: &Snapshot,
    settings: &PlanSettings,
) -> Plan {
    if memo.settings.as_ref() != Some(settings) {
        memo.routes.clear();
        memo.shape_forms = spares::ShapeForms::default();
        memo.shared = None;
        memo.tables = lookup::TableIndex::default();
        memo.pool = None;
        memo.route_order = None;
        memo.backend_order = None;
        memo.settings = Some(settings.clone());
    }
    let mut warnings: Vec<String> = Vec::new();

    let mut routes: Vec<&Arc<AdmittedRoute>> = verdicts
        .iter()
        .filter_map(|v| v.outcome.as_ref().ok())
        .collect();
    // The same admitted Routes in the same order as the last pass, which
    // left them sorted and unique: nothing to sort (an endpoint change).
    let same_sequence = memo
        .shared
        .as_ref()
        .is_some_and(|shared| same_arcs(&shared.admitted, &routes));
    if !same_sequence {
        routes.sort_by(|a, b| a.key.cmp(&b.key));
        let before = routes.len();
        routes.dedup_by(|a, b| a.key == b.key);
        if routes.len() != before {
            warnings.push(
                "plan: several admitted verdicts for one Route: only one is used".to_string(),
            );
        }
    }

    let touched = memo
        .slice_groups
        .update(&memo.slices, &snapshot.endpoint_slices);
    let index = endpoints::EndpointIndex::with_groups(&memo.slice_groups);
    // Entries are kept in place and stamped with this pass; those left
    // unstamped (Routes gone) are dropped after a full walk.
    memo.pass += 1;
    let pass = memo.pass;
    // Routes whose memo was rebuilt in this pass.
    let mut fresh: Vec<ObjectKey> = Vec::new();
    // The slices of each Service a Route sends to, as pointers, each
    // Service's list closed by usize::MAX (no allocation when unchanged).
    fn slice_ids<'r>(
        index: &'r endpoints::EndpointIndex<'_>,
        route: &'r AdmittedRoute,
    ) -> impl Iterator<Item = usize> + 'r {
        route.backends.iter().flat_map(move |r| {
            index
                .slices(&route.key.namespace, &r.service)
                .iter()
                .map(|s| Arc::as_ptr(s) as usize)
                .chain([usize::MAX])
        })
    }
    // The same admitted Routes as the last pass: only those sending to a
    // Service whose slices changed can have another backend (an endpoint
    // change visits one Route, not the fleet).
    let quick = memo
        .route_order
        .take()
        .filter(|order| same_sequence && order.backends.len() == routes.len());
    // `by_service` is `Some` (kept as it is) on the quick path only.
    let (visit, mut by_route, mut warned, by_service) = match quick {
        Some(order) => {
            let mut visit: Vec<usize> = touched
                .iter()
                .filter_map(|group| order.by_service.get(group))
                .flatten()
                .map(|&i| i as usize)
                .collect();
            visit.sort_unstable();
            visit.dedup();
            (visit, order.backends, order.warned, Some(order.by_service))
        }
        None => (
            (0..routes.len()).collect(),
            Vec::with_capacity(routes.len()),
            BTreeSet::new(),
            None,
        ),
    };
    let full_walk = by_service.is_none();
    let mut pool_dirty = false;
    let mut names_kept = true;
    // A Route keeps its memo when it is the same admitted object and its
    // Services have the same slices.
    let keeps = |entry: &RouteMemo, route: &AdmittedRoute| {
        std::ptr::eq(Arc::as_ptr(&entry.route), route)
            && entry.slice_ids.iter().copied().eq(slice_ids(&index, route))
    };
    // The Routes to build, built first (on rayon's pool when there are
    // many: a cold pass builds every backend), in `visit` order.
    let to_build: Vec<usize> = visit
        .iter()
        .copied()
        .filter(|&i| {
            memo.routes
                .get(&routes[i].key)
                .is_none_or(|entry| !keeps(entry, routes[i]))
        })
        .collect();
    let parts = build_all(&to_build, &routes, &index, settings);
    let mut rebuilt = to_build.iter().copied().zip(parts).peekable();
    for i in visit {
        let route = routes[i];
        let old = memo.routes.get_mut(&route.key);
        // Built above exactly when its memo could not be kept.
        let entry = match (rebuilt.next_if(|(at, _)| *at == i), old) {
            (None, Some(entry)) => entry,
            (None, None) => unreachable!("a Route without a memo is built"),
            (Some((_, fresh_parts)), old) => {
                let slice_ids: Vec<usize> = slice_ids(&index, route).collect();
                let Built {
                    backend: built,
                    warnings: own_warnings,
                    shape,
                    cert,
                    entries,
                } = fresh_parts;
                let shape = shape.map(|s| memo.shape_forms.intern(s));
                // A Route added, its shape or its backend's name (the order
                // that picks each shape's first Route) changed: the pool may
                // change.
                pool_dirty |= old.as_ref().is_none_or(|e| {
                    e.shape.as_ref().map(|s| s.0) != shape.as_ref().map(|s| s.0)
                        || e.backend.name != built.backend.name
                });
                names_kept &= old
                    .as_ref()
                    .is_some_and(|e| e.backend.name == built.backend.name);
                let entry = Box::new(RouteMemo {
                    route: Arc::clone(route),
                    slice_ids,
                    backend: Arc::new(built.backend),
                    allowlist_file: built.allowlist_file.map(Box::new),
                    ca_file: built.ca_file.map(Box::new),
                    warnings: own_warnings,
                    cert: cert.map(Box::new),
                    entries,
                    shape,
                    pass,
                });
                fresh.push(route.key.clone());
                match old {
                    Some(slot) => {
                        *slot = entry;
                        slot
                    }
                    None => memo
                        .routes
                        .entry(route.key.clone())
                        .insert_entry(entry)
                        .into_mut(),
                }
            }
        };
        entry.pass = pass;
        if full_walk {
            by_route.push(Arc::clone(&entry.backend));
        } else {
            by_route[i] = Arc::clone(&entry.backend);
        }
        if entry.warnings.is_empty() {
            warned.remove(&(i as u32));
        } else {
            warned.insert(i as u32);
        }
    }
    for &i in &warned {
        warnings.extend(
            memo.routes[&routes[i as usize].key]
                .warnings
                .iter()
                .cloned(),
        );
    }
    // Sorted by name: the same Routes with the same backend names sort as
    // they did in the last pass.
    let order = match memo.backend_order.take() {
        Some(order) if same_sequence && names_kept && order.len() == by_route.len() => order,
        _ => {
            let mut order: Vec<u32> = (0..by_route.len() as u32).collect();
            order.sort_by(|&a, &b| by_route[a as usize].name.cmp(&by_route[b as usize].name));
            order
        }
    };
    let backends: Vec<Arc<Backend>> = order
        .iter()
        .map(|&i| Arc::clone(&by_route[i as usize]))
        .collect();
    memo.backend_order = Some(order);
    let by_service = by_service.unwrap_or_else(|| {
        let mut by_service: HashMap<(String, String), Vec<u32>> = HashMap::default();
        for (i, route) in routes.iter().enumerate() {
            for r in &route.backends {
                let group = by_service
                    .entry((route.key.namespace.to_string(), r.service.to_string()))
                    .or_default();
                if group.last() != Some(&(i as u32)) {
                    group.push(i as u32);
                }
            }
        }
        by_service
    });
    memo.route_order = Some(RouteOrder {
        backends: by_route,
        by_service,
        warned,
    });
    // Routes gone: the pool may change. (`routes` has one entry per key,
    // and each is in the memo now.)
    if memo.routes.len() > routes.len() {
        memo.routes.retain(|_, entry| entry.pass == pass);
        pool_dirty = true;
    }
    if pool_dirty {
        // A shape was given up, or a Route went: its form may be unheld.
        memo.shape_forms.prune();
    }

    let same_route_objects = same_arcs(&memo.previous_routes, &snapshot.routes);
    let ages_rebuilt =
        !same_route_objects && update_ages(&mut memo.ages, &memo.previous_routes, snapshot);
    // The parts that depend on the admitted Routes (and their ages) only:
    // the same admitted Routes give the same tables and files.
    let same_routes = |shared: &SharedParts| same_arcs(&shared.admitted, &routes);
    let shared = match memo.shared.take() {
        Some(shared) if !ages_rebuilt && same_routes(&shared) => shared,
        previous => {
            update_tables(
                &mut memo.tables,
                previous
                    .as_ref()
                    .map(|p| p.admitted.as_slice())
                    .unwrap_or(&[]),
                &routes,
                &memo.routes,
                &memo.ages,
                &fresh,
            );
            Arc::new(shared_parts(
                &routes,
                &memo.routes,
                &memo.tables,
                settings,
                previous.as_deref(),
            ))
        }
    };
    warnings.extend(shared.warnings.iter().cloned());
    memo.slices = snapshot.endpoint_slices.clone();
    memo.previous_routes = snapshot.routes.clone();

    warnings.sort();
    warnings.dedup();
    let spares = match memo.pool.take() {
        Some(pool) if !pool_dirty => pool,
        _ => spares::pool_of(
            backends.iter().map(|b| {
                (
                    &b.route,
                    memo.routes.get(&b.route).and_then(|e| e.shape.as_ref()),
                )
            }),
            &settings.spares,
            &Default::default(),
        ),
    };
    let plan = Plan {
        spares: spares.clone(),
        backends,
        http_lookup: shared.http.clone(),
        https_lookup: shared.https.clone(),
        passthrough: shared.passthrough.clone(),
        max_path_depth: shared.max_path_depth,
        certificates: Arc::clone(&shared.certificates),
        ca_files: Arc::clone(&shared.ca_files),
        allowlist_files: Arc::clone(&shared.allowlist_files),
        warnings,
    };
    memo.shared = Some(shared);
    memo.pool = Some(spares);
    plan
}

/// The plan's parts decided by the admitted Routes alone (not by
/// endpoints): lookup tables, certificates, CA and allowlist files.
#[derive(Debug)]
struct SharedParts {
    /// The admitted Routes they were built from (held; compared by identity).
    admitted: Vec<Arc<AdmittedRoute>>,
    http: Shared<LookupEntry>,
    https: Shared<LookupEntry>,
    passthrough: Shared<SniEntry>,
    max_path_depth: usize,
    certificates: Arc<Vec<CertEntry>>,
    ca_files: Arc<Vec<PemFile>>,
    allowlist_files: Arc<Vec<AllowlistFile>>,
    /// Findings of the lookup build (dropped duplicate keys).
    warnings: Vec<String>,
}

/// What a Route's memo is made of, built apart from the memo.
struct Built {
    backend: backends::BuiltBackend,
    warnings: Vec<String>,
    /// [`spares::shape_of`], before it is shared ([`spares::ShapeForms`]).
    shape: Option<(spares::Shape, Backend)>,
    cert: Option<tls::CertMaterial>,
    entries: lookup::RouteEntries,
}

/// Fewer Routes to build than this are built on the calling thread.
const PARALLEL_BUILD_MIN: usize = 64;

/// [`Built`] of `routes[i]` for each `i` of `which`, in order; on
/// rayon's pool when there are many (each is a function of its Route,
/// the slices and the settings only).
fn build_all(
    which: &[usize],
    routes: &[&Arc<AdmittedRoute>],
    index: &endpoints::EndpointIndex<'_>,
    settings: &PlanSettings,
) -> Vec<Built> {
    let build = |&i: &usize| {
        let route = routes[i];
        let mut warnings = Vec::new();
        let backend = backends::build_backend(route, index, settings, &mut warnings);
        let shape = (settings.spares.per_shape > 0)
            .then(|| spares::shape_of(&backend.backend))
            .flatten();
        // The entries share the backend's name and host key.
        let entries =
            lookup::route_entries_named(route, &backend.backend.name, &backend.backend.host_key);
        Built {
            backend,
            warnings,
            shape,
            cert: tls::cert_material(route),
            entries,
        }
    };
    if which.len() < PARALLEL_BUILD_MIN {
        return which.iter().map(build).collect();
    }
    use rayon::prelude::*;
    which.par_iter().with_min_len(16).map(build).collect()
}

/// Bring the table index from the `previous` admitted Routes to `routes`:
/// Routes gone are removed; Routes new, rebuilt in this pass (`fresh`) or
/// of another age are (re)inserted.
fn update_tables(
    index: &mut lookup::TableIndex,
    previous: &[Arc<AdmittedRoute>],
    routes: &[&Arc<AdmittedRoute>],
    memos: &HashMap<ObjectKey, Box<RouteMemo>>,
    ages: &HashMap<ObjectKey, lookup::RouteAge>,
    fresh: &[ObjectKey],
) {
    let current: HashSet<&ObjectKey> = routes.iter().map(|r| &r.key).collect();
    for gone in previous.iter().filter(|p| !current.contains(&p.key)) {
        index.remove(&gone.key);
    }
    // An index built for other Routes than `previous` (first pass) is
    // emptied of anything not current.
    if index.len() > routes.len() {
        *index = lookup::TableIndex::default();
    }
    let fresh: HashSet<&ObjectKey> = fresh.iter().collect();
    let unknown = lookup::RouteAge::default();
    for route in routes {
        let age = ages.get(&route.key).unwrap_or(&unknown);
        let stale = match index.get(&route.key) {
            None => true,
            Some((indexed_age, _)) => indexed_age != age || fresh.contains(&route.key),
        };
        if stale {
            index.insert_entries(
                route.key.clone(),
                age.clone(),
                memos[&route.key].entries.clone(),
            );
        }
    }
}

fn shared_parts(
    routes: &[&Arc<AdmittedRoute>],
    memos: &HashMap<ObjectKey, Box<RouteMemo>>,
    index: &lookup::TableIndex,
    settings: &PlanSettings,
    previous: Option<&SharedParts>,
) -> SharedParts {
    let tables = index.tables();
    let warnings = tables.warnings;
    let own = |r: &&Arc<AdmittedRoute>| &memos[&r.key];
    let certificates = tls::certificates_from(
        routes.iter().filter_map(|r| own(r).cert.as_deref()),
        settings,
    );
    let mut ca_files: BTreeMap<String, PemFile> = BTreeMap::new();
    let mut allowlist_files: Vec<AllowlistFile> = Vec::new();
    for r in routes {
        let entry = own(r);
        allowlist_files.extend(entry.allowlist_file.as_deref().cloned());
        if let Some(ca) = &entry.ca_file {
            ca_files
                .entry(ca.file.clone())
                .or_insert_with(|| (**ca).clone());
        }
    }
    allowlist_files.sort_by(|a, b| a.file.cmp(&b.file));
    let ca_files: Vec<PemFile> = ca_files.into_values().collect();
    // A list equal to the previous pass's is handed on as that list, so
    // the renderer sees by identity that its part did not change (e.g. a
    // Route whose annotations changed keeps its lookup entries).
    fn keep<T: PartialEq>(new: Vec<Arc<T>>, old: Option<&Shared<T>>) -> Shared<T> {
        match old {
            Some(old) if **old == new[..] => old.clone(),
            _ => Shared::new(new),
        }
    }
    fn keep_vec<T: PartialEq>(new: Vec<T>, old: Option<&Arc<Vec<T>>>) -> Arc<Vec<T>> {
        match old {
            Some(old) if **old == new => Arc::clone(old),
            _ => Arc::new(new),
        }
    }
    SharedParts {
        admitted: routes.iter().map(|r| Arc::clone(r)).collect(),
        http: keep(tables.http, previous.map(|p| &p.http)),
        https: keep(tables.https, previous.map(|p| &p.https)),
        passthrough: keep(tables.passthrough, previous.map(|p| &p.passthrough)),
        max_path_depth: tables.max_path_depth,
        certificates: keep_vec(certificates, previous.map(|p| &p.certificates)),
        ca_files: keep_vec(ca_files, previous.map(|p| &p.ca_files)),
        allowlist_files: keep_vec(allowlist_files, previous.map(|p| &p.allowlist_files)),
        warnings,
    }
}

/// Each Route's age (creationTimestamp, UID) from the snapshot; for a key
/// present twice, the older.
fn route_ages(snapshot: &Snapshot) -> HashMap<ObjectKey, lookup::RouteAge> {
    let mut ages: HashMap<ObjectKey, lookup::RouteAge> = HashMap::default();
    for route in &snapshot.routes {
        let (key, age) = key_and_age(route);
        match ages.get(&key) {
            Some(existing) if *existing <= age => {}
            _ => {
                ages.insert(key, age);
            }
        }
    }
    ages
}

fn key_and_age(route: &crate::model::Route) -> (ObjectKey, lookup::RouteAge) {
    let meta = &route.metadata;
    let age = lookup::RouteAge::new(
        meta.creation_timestamp.as_ref().map(|t| t.0),
        meta.uid.clone().unwrap_or_default(),
    );
    (crate::model::snapshot::key_of(meta), age)
}

/// Bring `ages` (the [`route_ages`] of `previous`) to those of `current`:
/// Routes that left are removed and new ones added; with a key held by two
/// objects on either side, rebuilt in full. Returns whether anything changed.
fn update_ages(
    ages: &mut HashMap<ObjectKey, lookup::RouteAge>,
    previous: &[Arc<crate::model::Route>],
    snapshot: &Snapshot,
) -> bool {
    let ptr = |r: &Arc<crate::model::Route>| Arc::as_ptr(r) as usize;
    let before: HashSet<usize> = previous.iter().map(ptr).collect();
    let after: HashSet<usize> = snapshot.routes.iter().map(ptr).collect();
    let duplicates = before.len() != previous.len()
        || after.len() != snapshot.routes.len()
        || ages.len() != previous.len();
    let gone: Vec<&Arc<crate::model::Route>> = previous
        .iter()
        .filter(|r| !after.contains(&ptr(r)))
        .collect();
    let new: Vec<&Arc<crate::model::Route>> = snapshot
        .routes
        .iter()
        .filter(|r| !before.contains(&ptr(r)))
        .collect();
    if gone.is_empty() && new.is_empty() && !duplicates {
        return false;
    }
    if duplicates || gone.len() + new.len() > snapshot.routes.len() / 4 {
        *ages = route_ages(snapshot);
        return true;
    }
    for route in gone {
        ages.remove(&key_and_age(route).0);
    }
    for route in new {
        let (key, age) = key_and_age(route);
        if ages.insert(key, age).is_some() {
            // A key held twice: only a full rebuild picks the older.
            *ages = route_ages(snapshot);
            return true;
        }
    }
    if ages.len() != snapshot.routes.len() {
        *ages = route_ages(snapshot);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EndpointSlice;
    use crate::model::Route;
    use crate::plan::endpoints::tests::{ep, port, slice};
    use crate::testkit::certs::CertSpec;
    use crate::RouterSettings;
    use serde_json::json;
    use std::sync::Arc;

    fn route(value: serde_json::Value) -> Route {
        serde_json::from_value(value).expect("test Route decodes")
    }

    fn meta(name: &str, created: &str, uid: &str) -> serde_json::Value {
        json!({"namespace": "ns", "name": name, "creationTimestamp": created, "uid": uid})
    }

    /// A snapshot exercising every kind of Route and several slices per service.
    fn snapshot() -> Snapshot {
        let ca = CertSpec::ca("Plan Test CA").self_signed();
        let leaf = CertSpec::leaf(&["secure.example.com"]).signed_by(&ca);
        let routes = vec![
            route(json!({
                "metadata": meta("web", "2024-01-01T00:00:00Z", "u1"),
                "spec": {"host": "www.example.com", "to": {"kind": "Service", "name": "web", "weight": 20},
                         "alternateBackends": [{"kind": "Service", "name": "canary", "weight": 10}],
                         "port": {"targetPort": "http"}}
            })),
            route(json!({
                "metadata": meta("api", "2024-01-02T00:00:00Z", "u2"),
                "spec": {"host": "www.example.com", "path": "/api/v1", "to": {"name": "api"},
                         "tls": {"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect"}}
            })),
            route(json!({
                "metadata": {"namespace": "ns", "name": "secure", "creationTimestamp": "2024-01-03T00:00:00Z", "uid": "u3",
                             "annotations": {"haproxy.router.openshift.io/ip_allowlist": "10.0.0.0/8"}},
                "spec": {"host": "secure.example.com", "to": {"name": "web"},
                         "tls": {"termination": "edge", "certificate": leaf.cert_pem(), "key": leaf.key_pem(),
                                 "caCertificate": ca.cert_pem()}}
            })),
            route(json!({
                "metadata": meta("re", "2024-01-04T00:00:00Z", "u4"),
                "spec": {"host": "re.example.com", "to": {"name": "api"}, "tls": {"termination": "reencrypt"}}
            })),
            route(json!({
                "metadata": meta("pass", "2024-01-05T00:00:00Z", "u5"),
                "spec": {"host": "pass.example.com", "to": {"name": "tcp"},
                         "tls": {"termination": "passthrough", "insecureEdgeTerminationPolicy": "Redirect"}}
            })),
            route(json!({
                "metadata": meta("empty", "2024-01-06T00:00:00Z", "u6"),
                "spec": {"host": "empty.example.com", "to": {"name": "nothing"}}
            })),
            // Loses www.example.com (same host, same path as web): rejected.
            route(json!({
                "metadata": meta("late", "2024-02-01T00:00:00Z", "u7"),
                "spec": {"host": "www.example.com", "to": {"name": "web"}}
            })),
        ];
        let http = || port(Some("http"), 8080);
        let endpoint_slices: Vec<EndpointSlice> = vec![
            slice(
                "ns",
                "web-1",
                "web",
                "IPv4",
                vec![http(), port(Some("metrics"), 9090)],
                vec![
                    ep(&["10.0.0.1"], None, Some("web-a")),
                    ep(&["10.0.0.2"], Some(true), Some("web-b")),
                ],
            ),
            slice(
                "ns",
                "web-2",
                "web",
                "IPv6",
                vec![http()],
                vec![ep(&["fd00::1"], None, Some("web-c"))],
            ),
            // Duplicate of web-a through another slice.
            slice(
                "ns",
                "web-3",
                "web",
                "IPv4",
                vec![http()],
                vec![ep(&["10.0.0.1"], None, Some("web-a"))],
            ),
            slice(
                "ns",
                "canary-1",
                "canary",
                "IPv4",
                vec![http()],
                vec![
                    ep(&["10.0.1.1"], None, Some("canary-a")),
                    ep(&["10.0.1.2"], Some(false), Some("canary-b")),
                    ep(&["10.0.1.3", "bogus"], None, Some("canary-c")),
                ],
            ),
            slice(
                "ns",
                "api-1",
                "api",
                "IPv4",
                vec![port(Some("https"), 8443)],
                vec![
                    ep(&["10.0.2.1"], None, Some("api-a")),
                    ep(&["10.0.2.2"], None, Some("api-b")),
                ],
            ),
            slice(
                "ns",
                "tcp-1",
                "tcp",
                "IPv4",
                vec![port(None, 5432)],
                vec![ep(&["10.0.3.1"], None, None)],
            ),
            slice(
                "other",
                "web-1",
                "web",
                "IPv4",
                vec![http()],
                vec![ep(&["10.9.9.9"], None, None)],
            ),
        ];
        Snapshot {
            routes: routes.into_iter().map(Arc::new).collect(),
            endpoint_slices: endpoint_slices.into_iter().map(Arc::new).collect(),
            ..Default::default()
        }
    }

    fn make_plan(snap: &Snapshot, settings: &PlanSettings) -> (Vec<Verdict>, Plan) {
        let verdicts = crate::admit::admit_at(
            snap,
            &RouterSettings::default(),
            crate::testkit::certs::now_unix(),
        );
        let p = plan(&verdicts, snap, settings);
        (verdicts, p)
    }

    #[test]
    fn end_to_end() {
        let snap = snapshot();
        let (verdicts, p) = make_plan(&snap, &PlanSettings::default());
        let admitted: Vec<String> = verdicts
            .iter()
            .filter(|v| v.is_admitted())
            .map(|v| v.key.name.to_string())
            .collect();
        assert_eq!(
            admitted.len(),
            6,
            "{:?}",
            verdicts
                .iter()
                .map(|v| (&v.key, v.rejection()))
                .collect::<Vec<_>>()
        );

        let names: Vec<&str> = p.backends.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "be_edge_http:ns:api",
                "be_edge_http:ns:secure",
                "be_http:ns:empty",
                "be_http:ns:web",
                "be_secure:ns:re",
                "be_tcp:ns:pass",
            ]
        );
        let web = p
            .backends
            .iter()
            .find(|b| b.name == "be_http:ns:web")
            .unwrap();
        let servers: Vec<(&str, u16)> = web
            .servers
            .iter()
            .map(|s| (s.name.as_str(), s.weight.get()))
            .collect();
        // web 20 over 3 endpoints (6.67 each), canary 10 over 2 (5 each): 256 and 192.
        assert_eq!(
            servers,
            vec![
                ("pod:canary-a:canary:http:10.0.1.1:8080", 192),
                ("pod:canary-c:canary:http:10.0.1.3:8080", 192),
                ("pod:web-a:web:http:10.0.0.1:8080", 256),
                ("pod:web-b:web:http:10.0.0.2:8080", 256),
                ("pod:web-c:web:http:fd00::1:8080", 256),
            ]
        );
        assert_eq!(web.balance, crate::values::Balance::RoundRobin);
        assert_eq!(
            web.cookie.as_ref().unwrap().name,
            backends::default_cookie_name(&ObjectKey::new("ns", "web"))
        );

        let keys: Vec<(&str, &LookupAction)> = p
            .http_lookup
            .iter()
            .map(|e| (e.key.as_str(), &e.action))
            .collect();
        assert_eq!(
            keys,
            vec![
                (
                    "empty.example.com",
                    &LookupAction::Backend("be_http:ns:empty".into())
                ),
                ("pass.example.com", &LookupAction::RedirectToHttps),
                ("re.example.com", &LookupAction::Refuse),
                ("secure.example.com", &LookupAction::Refuse),
                (
                    "www.example.com",
                    &LookupAction::Backend("be_http:ns:web".into())
                ),
                ("www.example.com/api/v1", &LookupAction::RedirectToHttps),
            ]
        );
        assert_eq!(p.https_lookup.len(), 3);
        assert_eq!(p.passthrough.len(), 1);
        assert_eq!(p.max_path_depth, 2);
        assert_eq!(p.certificates.len(), 1);
        assert_eq!(p.certificates[0].file, "certs/ns:secure.pem");
        assert!(p.certificates[0].h2);
        assert!(p.ca_files.is_empty());
        assert_eq!(p.allowlist_files.len(), 1);
        assert_eq!(p.allowlist_files[0].file, "allowlists/ns:secure.txt");
        assert_eq!(
            p.warnings,
            vec![
                "ns/canary-1: endpoint address \"bogus\" is not an IP address: skipped",
                "ns/empty: no ready endpoints for service(s) nothing: requests get 503",
                "ns/re: reencrypt without destinationCACertificate or --service-ca-file: servers are not verified",
            ]
        );

        // With a service CA: one shared CA file, verifyhost on the `to` service.
        let (_, p) = make_plan(
            &snap,
            &PlanSettings {
                service_ca_pem: Some("CA".into()),
                ..Default::default()
            },
        );
        assert_eq!(
            p.ca_files,
            vec![PemFile {
                file: "cas/service-ca.pem".into(),
                pem: "CA\n".into()
            }]
            .into()
        );
        let re = p
            .backends
            .iter()
            .find(|b| b.name == "be_secure:ns:re")
            .unwrap();
        assert_eq!(
            re.server_tls.as_ref().unwrap().verify,
            ServerVerify::CaFile {
                file: "cas/service-ca.pem".into(),
                verify_host: None
            }
        );
        // Each server is verified against its own service's name.
        assert!(!re.servers.is_empty());
        for server in &re.servers {
            assert_eq!(
                server.verify_host.as_deref(),
                Some(format!("{}.ns.svc", server.service).as_str())
            );
        }
    }

    #[test]
    fn rejected_verdicts_produce_nothing() {
        let snap = snapshot();
        let mut verdicts = crate::admit::admit_at(
            &snap,
            &RouterSettings::default(),
            crate::testkit::certs::now_unix(),
        );
        for v in &mut verdicts {
            v.outcome = Err(crate::admit::Rejection::new(
                crate::admit::Reason::ValidationFailed,
                "no",
            ));
        }
        assert_eq!(
            plan(&verdicts, &snap, &PlanSettings::default()),
            Plan::default()
        );
    }

    #[test]
    fn order_independent() {
        let snap = snapshot();
        let settings = PlanSettings::default();
        let (verdicts, want) = make_plan(&snap, &settings);
        for seed in 0..20 {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut shuffled = snap.clone();
            rng.shuffle(&mut shuffled.routes);
            rng.shuffle(&mut shuffled.endpoint_slices);
            for s in &mut shuffled.endpoint_slices {
                let s = Arc::make_mut(s);
                rng.shuffle(&mut s.endpoints);
                rng.shuffle(&mut s.ports);
            }
            let mut vs = verdicts.clone();
            rng.shuffle(&mut vs);
            assert_eq!(plan(&vs, &shuffled, &settings), want, "seed {seed}");
            // Admission of the shuffled snapshot gives the same plan too.
            let (_, again) = make_plan(&shuffled, &settings);
            assert_eq!(again, want, "seed {seed} (re-admitted)");
        }
    }
}
