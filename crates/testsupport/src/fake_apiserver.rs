//! A small Kubernetes API server for tests: an axum app in the test process
//! that the real kube client talks to over HTTP on 127.0.0.1.
//!
//! What it implements (the subset routegen uses, with the real wire format):
//! * Routes (`route.openshift.io/v1`), Services and Namespaces (`v1`),
//!   EndpointSlices (`discovery.k8s.io/v1`); namespaced and all-namespace
//!   paths.
//! * `list` with `labelSelector` (`=`, `==`, `!=`, `in`, `notin`, exists,
//!   `!key`), `fieldSelector` (`=`, `==`, `!=` on any dotted path),
//!   `limit`/`continue` pagination (tokens opaque to the client), and the
//!   list's `resourceVersion`.
//! * `watch=true` from a `resourceVersion`: JSON lines `ADDED`, `MODIFIED`,
//!   `DELETED`, `BOOKMARK` (with `allowWatchBookmarks`), history replay
//!   after the given version, selector transitions as the API server sends
//!   them (an object that stops matching arrives as `DELETED`, one that
//!   starts matching as `ADDED`), `timeoutSeconds`, and an `ERROR` event
//!   holding a `Status` with code 410 (`Expired`) when the version was
//!   compacted away, as the real server does.
//! * `get` of one object; `PATCH .../routes/NAME/status` with
//!   `application/merge-patch+json` (RFC 7386) and
//!   `application/json-patch+json` (RFC 6902), applied for real; only
//!   `status` of the result is kept (status subresource semantics); a
//!   `metadata.resourceVersion` in the result that is not the current one
//!   gives `409 Conflict`; an unchanged object is not written (no new
//!   resourceVersion, no event). Strategic merge and apply patches get 415.
//! * RBAC: every request is checked against `deploy/clusterrole.yaml`
//!   (verb + API group + resource[/subresource]) and refused with a 403
//!   `Status` when not allowed; refused requests are recorded.
//! * Faults: compact history (410 on resume), close every open watch, stop
//!   the listener and cut every connection, restart on the same port,
//!   concurrent status writes by another router (409 for the client).
//!
//! What it leaves out: authentication, admission and schema validation
//! (beyond decoding `status` as routegen's type), `create`/`update`/
//! `delete` through HTTP (tests change objects directly), server-side
//! apply, `resourceVersionMatch` and consistent snapshots for `continue`
//! (pages come from the live state, with the first page's
//! resourceVersion), streaming lists (`sendInitialEvents`), protobuf, HTTP/2,
//! watch-cache window semantics (history is kept until `compact`),
//! finalizers and graceful deletion, `generation`/`managedFields`.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use axum::Router;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

/// A resource the server knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Res {
    Routes,
    Services,
    EndpointSlices,
    Namespaces,
    Secrets,
}

impl Res {
    pub fn group(self) -> &'static str {
        match self {
            Res::Routes => "route.openshift.io",
            Res::Services | Res::Namespaces | Res::Secrets => "",
            Res::EndpointSlices => "discovery.k8s.io",
        }
    }
    pub fn version(self) -> &'static str {
        "v1"
    }
    pub fn plural(self) -> &'static str {
        match self {
            Res::Routes => "routes",
            Res::Services => "services",
            Res::EndpointSlices => "endpointslices",
            Res::Namespaces => "namespaces",
            Res::Secrets => "secrets",
        }
    }
    pub fn kind(self) -> &'static str {
        match self {
            Res::Routes => "Route",
            Res::Services => "Service",
            Res::EndpointSlices => "EndpointSlice",
            Res::Namespaces => "Namespace",
            Res::Secrets => "Secret",
        }
    }
    fn namespaced(self) -> bool {
        self != Res::Namespaces
    }
    fn api_version(self) -> String {
        if self.group().is_empty() {
            self.version().to_string()
        } else {
            format!("{}/{}", self.group(), self.version())
        }
    }
    fn from_kind(kind: &str) -> Option<Res> {
        [
            Res::Routes,
            Res::Services,
            Res::EndpointSlices,
            Res::Namespaces,
            Res::Secrets,
        ]
        .into_iter()
        .find(|r| r.kind() == kind)
    }
    fn from_path(group: &str, plural: &str) -> Option<Res> {
        [
            Res::Routes,
            Res::Services,
            Res::EndpointSlices,
            Res::Namespaces,
            Res::Secrets,
        ]
        .into_iter()
        .find(|r| r.group() == group && r.plural() == plural)
    }
}

/// One rule of a ClusterRole.
#[derive(Clone, Debug)]
pub struct Rule {
    pub groups: Vec<String>,
    pub resources: Vec<String>,
    pub verbs: Vec<String>,
}

/// One rule of a namespaced Role restricted by `resourceNames` to one
/// object (core API group), e.g. what a namespace owner grants the router
/// for one Secret: `get`/`list`/`watch` on `secrets` named `name`.
#[derive(Clone, Debug)]
pub struct NamedRule {
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub verbs: Vec<String>,
}

/// What the server allows.
#[derive(Clone, Debug)]
pub struct Rbac {
    pub rules: Vec<Rule>,
    /// Roles in namespaces (with RoleBindings to the router).
    pub named: Vec<NamedRule>,
}

impl Rbac {
    /// The rules of a ClusterRole manifest (YAML).
    pub fn from_cluster_role_yaml(text: &str) -> Rbac {
        let role: k8s_openapi::api::rbac::v1::ClusterRole =
            serde_saphyr::from_str(text).expect("ClusterRole YAML");
        Rbac {
            rules: Rbac::rules_of(role),
            named: Vec::new(),
        }
    }

    fn rules_of(role: k8s_openapi::api::rbac::v1::ClusterRole) -> Vec<Rule> {
        role.rules
            .unwrap_or_default()
            .into_iter()
            .map(|r| Rule {
                groups: r.api_groups.unwrap_or_default(),
                resources: r.resources.unwrap_or_default(),
                verbs: r.verbs,
            })
            .collect()
    }

    /// These rules and a Role in `namespace` granting get, list and watch
    /// on the one `resource` object `name` (as docs/kube.md shows for an
    /// external certificate's Secret). As in Kubernetes, `list`/`watch`
    /// match only with the field selector `metadata.name=<name>`.
    pub fn with_named(mut self, namespace: &str, resource: &str, name: &str) -> Rbac {
        self.named.push(NamedRule {
            namespace: namespace.into(),
            resource: resource.into(),
            name: name.into(),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
        });
        self
    }

    /// A Role rule allows `verb` on the core-group `resource` in
    /// `namespace`, for object `name` (get) or the field selector (list,
    /// watch).
    fn named_allows(
        &self,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        field_selector: Option<&str>,
    ) -> bool {
        let target = match verb {
            "get" => name.map(str::to_string),
            "list" | "watch" => field_selector.and_then(|f| {
                let f = f.trim();
                f.strip_prefix("metadata.name=")
                    .or_else(|| f.strip_prefix("metadata.name=="))
                    .filter(|n| !n.contains(','))
                    .map(str::to_string)
            }),
            _ => None,
        };
        let Some(target) = target else {
            return false;
        };
        group.is_empty()
            && self.named.iter().any(|r| {
                Some(r.namespace.as_str()) == namespace
                    && r.resource == resource
                    && r.name == target
                    && r.verbs.iter().any(|v| v == verb)
            })
    }

    /// `deploy/clusterrole.yaml` of this repository.
    pub fn from_deploy() -> Rbac {
        let path = crate::workspace_root().join("deploy/clusterrole.yaml");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Rbac::from_cluster_role_yaml(&text)
    }

    /// `deploy/clusterrole.yaml` and the grant `--namespace-selector`
    /// needs on top of it, `deploy/optional/namespace-selector-rbac.yaml`.
    pub fn from_deploy_with_namespace_selector() -> Rbac {
        Rbac::from_deploy().with_cluster_roles_of("deploy/optional/namespace-selector-rbac.yaml")
    }

    /// These rules and those of every ClusterRole in the (multi-document)
    /// manifest file `path`, relative to the workspace root.
    pub fn with_cluster_roles_of(mut self, path: &str) -> Rbac {
        let path = crate::workspace_root().join(path);
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let roles: Vec<_> = documents
            .into_iter()
            .filter(|d| d["kind"] == "ClusterRole")
            .collect();
        assert!(!roles.is_empty(), "{}: no ClusterRole", path.display());
        for role in roles {
            let role: k8s_openapi::api::rbac::v1::ClusterRole =
                serde_json::from_value(role).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            self.rules.extend(Rbac::rules_of(role));
        }
        self
    }

    /// Everything (for tests of the server itself).
    pub fn allow_all() -> Rbac {
        Rbac {
            rules: vec![Rule {
                groups: vec!["*".into()],
                resources: vec!["*".into()],
                verbs: vec!["*".into()],
            }],
            named: Vec::new(),
        }
    }

    /// These rules without `verb` on `resource` (e.g. "patch", "routes/status").
    pub fn without(mut self, verb: &str, resource: &str) -> Rbac {
        for r in &mut self.rules {
            if r.resources.iter().any(|x| x == resource) {
                r.verbs.retain(|v| v != verb);
            }
        }
        self
    }

    pub fn allows(&self, verb: &str, group: &str, resource: &str) -> bool {
        let has = |list: &[String], v: &str| list.iter().any(|x| x == v || x == "*");
        self.rules
            .iter()
            .any(|r| has(&r.groups, group) && has(&r.resources, resource) && has(&r.verbs, verb))
    }

    /// Every `verb group/resource` granted.
    pub fn grants(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for r in &self.rules {
            for g in &r.groups {
                for res in &r.resources {
                    for v in &r.verbs {
                        out.insert(format!("{v} {g}/{res}"));
                    }
                }
            }
        }
        out
    }
}

/// One request, as the server saw it.
#[derive(Clone, Debug)]
pub struct Record {
    pub method: String,
    pub path: String,
    pub query: String,
    pub verb: String,
    /// `group/resource[/subresource]`.
    pub resource: String,
    pub code: u16,
    pub content_type: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// A write, as the watch history keeps it.
#[derive(Debug)]
struct Change {
    rv: u64,
    res: Res,
    kind: ChangeType,
    old: Option<Value>,
    new: Value,
}

#[derive(Default)]
struct Store {
    rv: u64,
    /// Watches from a version below this get 410.
    compacted: u64,
    uid: u64,
    objects: BTreeMap<Res, BTreeMap<(String, String), Value>>,
    history: Vec<Arc<Change>>,
}

#[derive(Default)]
struct Faults {
    /// Route key → writes of another router's status entry to make before
    /// the next status patches of that Route (each gives the client a 409).
    conflicts: BTreeMap<(String, String), usize>,
}

struct Shared {
    store: Mutex<Store>,
    events: broadcast::Sender<Arc<Change>>,
    /// (epoch, expire): a new epoch ends every open watch; with `expire`
    /// each first gets an ERROR event with a 410 Status.
    close: watch::Sender<(u64, bool)>,
    rbac: Rbac,
    log: Mutex<Vec<Record>>,
    faults: Mutex<Faults>,
    bookmark_every: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Serving {
    task: JoinHandle<()>,
    conns: Arc<Mutex<Vec<std::net::TcpStream>>>,
}

/// The server; see the module documentation. Stops when dropped.
pub struct FakeApiServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    serving: Mutex<Option<Serving>>,
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.cut();
    }
}

impl FakeApiServer {
    /// Listen on 127.0.0.1 (a free port) with these RBAC rules.
    pub async fn start(rbac: Rbac) -> FakeApiServer {
        let (events, _) = broadcast::channel(200_000);
        let (close, _) = watch::channel((0u64, false));
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            events,
            close,
            rbac,
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Faults::default()),
            bookmark_every: Duration::from_millis(500),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = serve(shared.clone(), listener);
        FakeApiServer {
            shared,
            addr,
            serving: Mutex::new(Some(serving)),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kube client for this server (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        let config = kube::Config::new(self.url().parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    /// Stop answering: close the listener and cut every connection (open
    /// watches included). Objects and history are kept.
    pub fn stop(&self) {
        self.cut();
    }

    fn cut(&self) {
        if let Some(s) = lock(&self.serving).take() {
            s.task.abort();
            for c in lock(&s.conns).drain(..) {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        self.shared.close.send_modify(|(n, e)| {
            *n += 1;
            *e = false;
        });
    }

    /// Listen again on the same port.
    pub async fn restart(&self) {
        let mut listener = None;
        for _ in 0..100 {
            match TcpListener::bind(self.addr).await {
                Ok(l) => {
                    listener = Some(l);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let listener = listener.expect("rebind the fake API server's port");
        *lock(&self.serving) = Some(serve(self.shared.clone(), listener));
    }

    /// End every open watch stream cleanly (as an API server restart or a
    /// load balancer does); clients resume from their last version.
    pub fn close_watches(&self) {
        self.shared.close.send_modify(|(n, e)| {
            *n += 1;
            *e = false;
        });
    }

    /// Compact history and end every open watch with an ERROR event
    /// holding a 410 `Expired` Status (what clients see when the API
    /// server's watch cache is re-initialised): they must list again.
    pub fn expire_watches(&self) {
        self.compact();
        self.shared.close.send_modify(|(n, e)| {
            *n += 1;
            *e = true;
        });
    }

    /// Forget history: watches from any version before now get 410 Gone.
    pub fn compact(&self) {
        let mut st = lock(&self.shared.store);
        st.compacted = st.rv;
        st.history.clear();
    }

    /// Create or replace an object (kind from its `kind`). Fills in
    /// `uid`, `creationTimestamp` (unless given) and `resourceVersion`.
    /// Returns the new resourceVersion.
    pub fn apply(&self, object: Value) -> u64 {
        let res = Res::from_kind(object["kind"].as_str().expect("kind")).expect("known kind");
        let mut st = lock(&self.shared.store);
        let key = key_of(&object);
        let old = st.objects.get(&res).and_then(|m| m.get(&key)).cloned();
        let mut new = object;
        new["apiVersion"] = json!(res.api_version());
        let meta = new["metadata"].as_object_mut().expect("metadata");
        match &old {
            Some(o) => {
                meta.insert("uid".into(), o["metadata"]["uid"].clone());
                if !meta.contains_key("creationTimestamp") {
                    meta.insert(
                        "creationTimestamp".into(),
                        o["metadata"]["creationTimestamp"].clone(),
                    );
                }
                if !new.as_object().unwrap().contains_key("status") && o.get("status").is_some() {
                    new["status"] = o["status"].clone();
                }
            }
            None => {
                st.uid += 1;
                meta.insert(
                    "uid".into(),
                    json!(format!("00000000-0000-0000-0000-{:012}", st.uid)),
                );
                if !meta.contains_key("creationTimestamp") {
                    meta.insert("creationTimestamp".into(), json!("2026-01-01T00:00:00Z"));
                }
            }
        }
        let kind = if old.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        write(&self.shared, &mut st, res, kind, old, new)
    }

    /// Delete an object; returns whether it existed.
    pub fn delete(&self, kind: &str, namespace: &str, name: &str) -> bool {
        let res = Res::from_kind(kind).expect("known kind");
        let mut st = lock(&self.shared.store);
        let key = (namespace.to_string(), name.to_string());
        let Some(old) = st.objects.get_mut(&res).and_then(|m| m.remove(&key)) else {
            return false;
        };
        st.rv += 1;
        let rv = st.rv;
        let mut last = old.clone();
        last["metadata"]["resourceVersion"] = json!(rv.to_string());
        let change = Arc::new(Change {
            rv,
            res,
            kind: ChangeType::Deleted,
            old: Some(old),
            new: last,
        });
        st.history.push(change.clone());
        let _ = self.shared.events.send(change);
        true
    }

    pub fn get(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let res = Res::from_kind(kind).expect("known kind");
        let st = lock(&self.shared.store);
        st.objects
            .get(&res)
            .and_then(|m| m.get(&(namespace.to_string(), name.to_string())))
            .cloned()
    }

    /// Every stored object of a kind.
    pub fn all(&self, kind: &str) -> Vec<Value> {
        let res = Res::from_kind(kind).expect("known kind");
        let st = lock(&self.shared.store);
        st.objects
            .get(&res)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).rv
    }

    /// Before each of the next `n` status patches of this Route, another
    /// router (`routerName: <other>`) writes its own entry, so the patch
    /// carries a stale resourceVersion and gets 409.
    pub fn conflict_next_status_patches(&self, namespace: &str, name: &str, n: usize) {
        lock(&self.shared.faults)
            .conflicts
            .insert((namespace.to_string(), name.to_string()), n);
    }

    pub fn requests(&self) -> Vec<Record> {
        lock(&self.shared.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Requests refused by RBAC.
    pub fn denied(&self) -> Vec<Record> {
        self.requests()
            .into_iter()
            .filter(|r| r.code == 403)
            .collect()
    }

    /// `verb group/resource` of every request RBAC allowed.
    pub fn used(&self) -> BTreeSet<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.code != 403 && !r.verb.is_empty())
            .map(|r| format!("{} {}", r.verb, r.resource))
            .collect()
    }

    /// Status PATCH requests (any outcome) since the last `clear_requests`.
    pub fn status_patches(&self) -> Vec<Record> {
        self.requests()
            .into_iter()
            .filter(|r| r.verb == "patch" && r.resource.ends_with("/status"))
            .collect()
    }

    pub fn rbac(&self) -> &Rbac {
        &self.shared.rbac
    }
}

fn serve(shared: Arc<Shared>, listener: TcpListener) -> Serving {
    let conns: Arc<Mutex<Vec<std::net::TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
    let tap = conns.clone();
    let listener = listener.tap_io(move |tcp: &mut tokio::net::TcpStream| {
        // A second handle on the socket, to cut it on `stop`.
        if let Ok(fd) = tcp.as_fd().try_clone_to_owned() {
            let mut all = lock(&tap);
            all.retain(|c| c.peer_addr().is_ok());
            all.push(std::net::TcpStream::from(fd));
        }
    });
    let app = Router::new().fallback(handle).with_state(shared);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Serving { task, conns }
}

fn key_of(object: &Value) -> (String, String) {
    (
        object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        object["metadata"]["name"]
            .as_str()
            .expect("metadata.name")
            .to_string(),
    )
}

/// Store a new version and publish it.
fn write(
    shared: &Shared,
    st: &mut Store,
    res: Res,
    kind: ChangeType,
    old: Option<Value>,
    mut new: Value,
) -> u64 {
    st.rv += 1;
    let rv = st.rv;
    new["kind"] = json!(res.kind());
    new["apiVersion"] = json!(res.api_version());
    new["metadata"]["resourceVersion"] = json!(rv.to_string());
    st.objects
        .entry(res)
        .or_default()
        .insert(key_of(&new), new.clone());
    let change = Arc::new(Change {
        rv,
        res,
        kind,
        old,
        new,
    });
    st.history.push(change.clone());
    let _ = shared.events.send(change);
    rv
}

/// A parsed request path.
struct Target {
    res: Res,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_path(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", rest),
        ["apis", group, "v1", rest @ ..] => (*group, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, rest @ ..] => (Some(ns.to_string()), {
            let mut v = vec![*plural];
            v.extend_from_slice(rest);
            v
        }),
        other => (None, other.to_vec()),
    };
    let (plural, name, sub) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    let res = Res::from_path(group, plural)?;
    // `/api/v1/namespaces/NAME` is a Namespace, not a namespaced collection.
    if !res.namespaced() && namespace.is_some() {
        return None;
    }
    Some(Target {
        res,
        namespace,
        name,
        subresource: sub,
    })
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn status_response(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    json_response(StatusCode::from_u16(code).unwrap(), &body)
}

fn json_response(code: StatusCode, body: &Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(body).unwrap(),
    )
        .into_response()
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let params = query_map(&query);
    let mut record = Record {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        verb: String::new(),
        resource: String::new(),
        code: 0,
        content_type: content_type.clone(),
    };
    let response = match parse_path(&path) {
        None => status_response(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        ),
        Some(target) => {
            let is_watch = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
            let verb = match (&method, target.name.is_some(), is_watch) {
                (&Method::GET, true, _) => "get",
                (&Method::GET, false, true) => "watch",
                (&Method::GET, false, false) => "list",
                (&Method::PATCH, true, _) => "patch",
                (&Method::PUT, true, _) => "update",
                (&Method::POST, false, _) => "create",
                (&Method::DELETE, true, _) => "delete",
                (&Method::DELETE, false, _) => "deletecollection",
                _ => "unknown",
            };
            let resource = match &target.subresource {
                Some(sub) => format!("{}/{sub}", target.res.plural()),
                None => target.res.plural().to_string(),
            };
            record.verb = verb.to_string();
            record.resource = format!("{}/{resource}", target.res.group());
            let allowed = shared.rbac.allows(verb, target.res.group(), &resource)
                || shared.rbac.named_allows(
                    verb,
                    target.res.group(),
                    &resource,
                    target.namespace.as_deref(),
                    target.name.as_deref(),
                    params.get("fieldSelector").map(String::as_str),
                );
            if !allowed {
                let gr = if target.res.group().is_empty() {
                    target.res.plural().to_string()
                } else {
                    format!("{}.{}", target.res.plural(), target.res.group())
                };
                let scope = match &target.namespace {
                    Some(ns) => format!("in the namespace \"{ns}\""),
                    None => "at the cluster scope".to_string(),
                };
                status_response(
                    403,
                    "Forbidden",
                    format!(
                        "{gr} is forbidden: User \"system:serviceaccount:routegen:routegen\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
                        target.res.group()
                    ),
                )
            } else {
                match verb {
                    "list" => list(&shared, &target, &params),
                    "watch" => watch_stream(&shared, &target, &params),
                    "get" if target.subresource.is_none() => get_one(&shared, &target),
                    "patch"
                        if target.subresource.as_deref() == Some("status")
                            && target.res == Res::Routes =>
                    {
                        let body = axum::body::to_bytes(req.into_body(), 16 << 20)
                            .await
                            .unwrap_or_default();
                        patch_status(&shared, &target, &content_type, &body)
                    }
                    _ => status_response(
                        405,
                        "MethodNotAllowed",
                        format!("{verb} {resource} is not implemented by the fake API server"),
                    ),
                }
            }
        }
    };
    record.code = response.status().as_u16();
    lock(&shared.log).push(record);
    response
}

fn get_one(shared: &Shared, t: &Target) -> Response {
    let st = lock(&shared.store);
    let key = (
        t.namespace.clone().unwrap_or_default(),
        t.name.clone().unwrap_or_default(),
    );
    match st.objects.get(&t.res).and_then(|m| m.get(&key)) {
        Some(o) => json_response(StatusCode::OK, o),
        None => status_response(
            404,
            "NotFound",
            format!("{} \"{}\" not found", t.res.plural(), key.1),
        ),
    }
}

/// Label and field selection of a list or watch.
struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<(String, bool, String)>,
}

enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

fn split_top(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in s.chars() {
        match c {
            '(' => {
                depth += 1;
                cur.push(c)
            }
            ')' => {
                depth -= 1;
                cur.push(c)
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_labels(s: &str) -> Result<Vec<LabelReq>, String> {
    let mut out = Vec::new();
    for term in split_top(s) {
        let set = |rest: &str| -> Result<Vec<String>, String> {
            let inner = rest
                .trim()
                .strip_prefix('(')
                .and_then(|r| r.strip_suffix(')'))
                .ok_or(format!("bad set in {term}"))?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        if let Some((k, rest)) = term.split_once(" notin ") {
            out.push(LabelReq::NotIn(k.trim().into(), set(rest)?));
        } else if let Some((k, rest)) = term.split_once(" in ") {
            out.push(LabelReq::In(k.trim().into(), set(rest)?));
        } else if let Some((k, v)) = term.split_once("!=") {
            out.push(LabelReq::Ne(k.trim().into(), v.trim().into()));
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            out.push(LabelReq::Eq(k.trim().into(), v.trim().into()));
        } else if let Some(k) = term.strip_prefix('!') {
            out.push(LabelReq::NotExists(k.trim().into()));
        } else if term
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            out.push(LabelReq::Exists(term.clone()));
        } else {
            return Err(format!("unable to parse requirement: {term}"));
        }
    }
    Ok(out)
}

fn parse_fields(s: &str) -> Result<Vec<(String, bool, String)>, String> {
    let mut out = Vec::new();
    for term in split_top(s) {
        if let Some((k, v)) = term.split_once("!=") {
            out.push((k.trim().into(), false, v.trim().into()));
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            out.push((k.trim().into(), true, v.trim().into()));
        } else {
            return Err(format!("invalid field selector: {term}"));
        }
    }
    Ok(out)
}

impl Filter {
    fn from_params(t: &Target, params: &BTreeMap<String, String>) -> Result<Filter, String> {
        Ok(Filter {
            namespace: t.namespace.clone(),
            labels: parse_labels(
                params
                    .get("labelSelector")
                    .map(String::as_str)
                    .unwrap_or(""),
            )?,
            fields: parse_fields(
                params
                    .get("fieldSelector")
                    .map(String::as_str)
                    .unwrap_or(""),
            )?,
        })
    }

    fn matches(&self, o: &Value) -> bool {
        if let Some(ns) = &self.namespace {
            if o["metadata"]["namespace"].as_str() != Some(ns) {
                return false;
            }
        }
        let label = |k: &str| o["metadata"]["labels"][k].as_str().map(str::to_string);
        let labels_ok = self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k).as_deref() == Some(v),
            LabelReq::Ne(k, v) => label(k).as_deref() != Some(v),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.contains(&l)),
            LabelReq::NotIn(k, vs) => label(k).is_none_or(|l| !vs.contains(&l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
        });
        let fields_ok = self.fields.iter().all(|(path, eq, v)| {
            let pointer = format!("/{}", path.replace('.', "/"));
            let actual = match o.pointer(&pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (actual == *v) == *eq
        });
        labels_ok && fields_ok
    }
}

fn list(shared: &Shared, t: &Target, params: &BTreeMap<String, String>) -> Response {
    let filter = match Filter::from_params(t, params) {
        Ok(f) => f,
        Err(e) => return status_response(400, "BadRequest", e),
    };
    let st = lock(&shared.store);
    let limit: usize = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    // continue token: "<rv>|<namespace>|<name>" of the last item served.
    let (list_rv, after) = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let mut parts = token.splitn(3, '|');
            let rv: u64 = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
            if rv < st.compacted {
                return status_response(410, "Expired", "The provided continue parameter is too old to display a consistent list result.".into());
            }
            let ns = parts.next().unwrap_or("").to_string();
            let name = parts.next().unwrap_or("").to_string();
            (rv, Some((ns, name)))
        }
        None => (st.rv, None),
    };
    let empty = BTreeMap::new();
    let objects = st.objects.get(&t.res).unwrap_or(&empty);
    let mut items = Vec::new();
    let mut next = None;
    let range: Box<dyn Iterator<Item = (&(String, String), &Value)>> = match &after {
        Some(k) => Box::new(objects.range(k.clone()..).filter(move |(key, _)| *key != k)),
        None => Box::new(objects.iter()),
    };
    for (_, o) in range {
        if !filter.matches(o) {
            continue;
        }
        if items.len() == limit {
            // More to come: the token names the last item served.
            let (ns, name) = items_last_key(&items);
            next = Some(format!("{list_rv}|{ns}|{name}"));
            break;
        }
        items.push(o.clone());
    }
    let mut metadata = json!({ "resourceVersion": list_rv.to_string() });
    if let Some(c) = next {
        metadata["continue"] = json!(c);
    }
    json_response(
        StatusCode::OK,
        &json!({
            "kind": format!("{}List", t.res.kind()),
            "apiVersion": t.res.api_version(),
            "metadata": metadata,
            "items": items,
        }),
    )
}

fn items_last_key(items: &[Value]) -> (String, String) {
    items.last().map(key_of).unwrap_or_default()
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({ "type": kind, "object": object })).unwrap();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn watch_stream(shared: &Arc<Shared>, t: &Target, params: &BTreeMap<String, String>) -> Response {
    let filter = match Filter::from_params(t, params) {
        Ok(f) => f,
        Err(e) => return status_response(400, "BadRequest", e),
    };
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1800)
        .min(1800);
    let from: u64 = params
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let res = t.res;
    let (tx, rx) = mpsc::channel::<Bytes>(1024);
    let body = Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    }));

    // Under the lock: history after `from` and a live subscription, so
    // nothing falls between them.
    let (backlog, mut live, mut seen) = {
        let st = lock(&shared.store);
        if from != 0 && from < st.compacted {
            let status = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {from} ({})", st.compacted),
                "reason": "Expired", "code": 410,
            });
            let _ = tx.try_send(line("ERROR", &status));
            drop(tx);
            return watch_response(body);
        }
        let backlog: Vec<Arc<Change>> =
            st.history.iter().filter(|c| c.rv > from).cloned().collect();
        (backlog, shared.events.subscribe(), st.rv)
    };
    let mut close = shared.close.subscribe();
    close.mark_unchanged();
    let bookmark_every = shared.bookmark_every;
    let kind = res.kind();
    let api_version = res.api_version();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(bookmark_every);
        tick.tick().await;
        let mut sent = from;
        let emit = |c: &Change, sent: &mut u64| -> Option<Bytes> {
            if c.res != res || c.rv <= *sent {
                return None;
            }
            *sent = c.rv;
            let was = c.old.as_ref().is_some_and(|o| filter.matches(o));
            let is = filter.matches(&c.new);
            let kind = match c.kind {
                ChangeType::Added if is => "ADDED",
                ChangeType::Modified if was && is => "MODIFIED",
                ChangeType::Modified if is => "ADDED",
                ChangeType::Modified if was => "DELETED",
                ChangeType::Deleted if was => "DELETED",
                _ => return None,
            };
            Some(line(kind, &c.new))
        };
        for c in &backlog {
            if let Some(b) = emit(c, &mut sent) {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        }
        loop {
            tokio::select! {
                biased;
                _ = &mut deadline => return,
                _ = close.changed() => {
                    let expire = close.borrow().1;
                    if expire {
                        let status = json!({
                            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": format!("too old resource version: {sent} ({seen})"),
                            "reason": "Expired", "code": 410,
                        });
                        let _ = tx.send(line("ERROR", &status)).await;
                    }
                    return;
                }
                _ = tick.tick(), if bookmarks => {
                    let bm = json!({"kind": kind, "apiVersion": api_version,
                                    "metadata": {"resourceVersion": seen.max(sent).to_string()}});
                    if tx.send(line("BOOKMARK", &bm)).await.is_err() { return; }
                }
                ev = live.recv() => match ev {
                    Ok(c) => {
                        seen = seen.max(c.rv);
                        if let Some(b) = emit(&c, &mut sent) {
                            if tx.send(b).await.is_err() { return; }
                        }
                    }
                    // Too slow or closed: end the watch; the client resumes.
                    Err(_) => return,
                }
            }
        }
    });
    watch_response(body)
}

fn watch_response(body: Body) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap()
}

fn patch_status(shared: &Shared, t: &Target, content_type: &str, body: &Bytes) -> Response {
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let key = (ns.clone(), name.clone());
    let mut st = lock(&shared.store);
    // A concurrent write by another router, if one is scheduled.
    let other = {
        let mut f = lock(&shared.faults);
        match f.conflicts.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    };
    if other {
        if let Some(current) = st
            .objects
            .get(&Res::Routes)
            .and_then(|m| m.get(&key))
            .cloned()
        {
            let mut next = current.clone();
            let mut ingress: Vec<Value> = next["status"]["ingress"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            ingress.retain(|i| i["routerName"] != "concurrent-router");
            ingress.push(json!({
                "host": current["spec"]["host"], "routerName": "concurrent-router",
                "conditions": [{"type": "Admitted", "status": "True",
                                "lastTransitionTime": format!("2026-01-01T00:00:{:02}Z", st.rv % 60)}]
            }));
            next["status"] = json!({ "ingress": ingress });
            write(
                shared,
                &mut st,
                Res::Routes,
                ChangeType::Modified,
                Some(current),
                next,
            );
        }
    }
    let Some(current) = st
        .objects
        .get(&Res::Routes)
        .and_then(|m| m.get(&key))
        .cloned()
    else {
        return status_response(
            404,
            "NotFound",
            format!("routes.route.openshift.io \"{name}\" not found"),
        );
    };
    let patch: Value = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return status_response(400, "BadRequest", format!("invalid patch body: {e}")),
    };
    let mut patched = current.clone();
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "application/merge-patch+json" => json_patch::merge(&mut patched, &patch),
        "application/json-patch+json" => {
            let ops: json_patch::Patch = match serde_json::from_value(patch) {
                Ok(p) => p,
                Err(e) => return status_response(400, "BadRequest", format!("invalid JSON patch: {e}")),
            };
            if let Err(e) = json_patch::patch(&mut patched, &ops) {
                return status_response(422, "Invalid", format!("the server rejected our request due to an error in our request: {e}"));
            }
        }
        other => {
            return status_response(
                415,
                "UnsupportedMediaType",
                format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json (got {other})"),
            )
        }
    }
    if let Some(rv) = patched["metadata"]["resourceVersion"].as_str() {
        if rv
            != current["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or("")
        {
            return status_response(
                409,
                "Conflict",
                format!("Operation cannot be fulfilled on routes.route.openshift.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"),
            );
        }
    }
    // Status subresource: only status changes are kept.
    let mut next = current.clone();
    match patched.get("status") {
        Some(s) => next["status"] = s.clone(),
        None => {
            next.as_object_mut().unwrap().remove("status");
        }
    }
    if let Some(s) = next.get("status") {
        if let Err(e) = serde_json::from_value::<routegen_core::model::RouteStatus>(s.clone()) {
            return status_response(
                422,
                "Invalid",
                format!("Route.route.openshift.io \"{name}\" is invalid: status: {e}"),
            );
        }
    }
    if next == current {
        return json_response(StatusCode::OK, &current);
    }
    write(
        shared,
        &mut st,
        Res::Routes,
        ChangeType::Modified,
        Some(current),
        next.clone(),
    );
    let stored = st.objects[&Res::Routes][&key].clone();
    json_response(StatusCode::OK, &stored)
}
