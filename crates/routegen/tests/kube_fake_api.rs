//! The Kubernetes source and the status writer against the real kube
//! client and a fake API server speaking the real protocol
//! (`routegen_testsupport::fake_apiserver`: list/watch/patch, 410, RBAC from
//! deploy/clusterrole.yaml). Everything listens on 127.0.0.1; every wait
//! is bounded.
//!
//! Measurements (`cargo test --test kube_fake_api -- --nocapture`): the
//! `measure_..._1000_routes` test prints event→snapshot/verdicts latency
//! p50/p99 over 200 events with 1,000 Routes, and status PATCH calls after
//! a resync and after a restart; the ignored
//! `measure_event_to_tree_on_disk_with_1000_routes` (`-- --ignored`) runs
//! the whole `routegen run --source kube` loop and prints event→tree on
//! disk.

use routegen_testsupport::e2e::free_port;
use routegen_testsupport::fake_apiserver;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fake_apiserver::{FakeApiServer, Rbac};
use routegen_core::admit::{self, Verdict};
use routegen_core::model::{ObjectKey, RouteStatus, Snapshot};
use routegen_core::testkit::{EndpointSliceBuilder, RouteBuilder, ServiceBuilder};
use routegen_core::RouterSettings;
use routegen_host::config::PipelineOptions;
use routegen_k8s::source::{Changes, KubeArgs, KubeRun, KubeSource, KubeSourceConfig};
use routegen_k8s::status::{StatusConfig, StatusWriter};
use routegen_render::pipeline::PipelineConfig;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// Route `ns/name` for `host` to `svc` as the API server stores it (weight
/// 100 and `wildcardPolicy: None` filled in), port `http`, created at
/// `created`.
fn route(ns: &str, name: &str, host: &str, svc: &str, created: &str) -> Value {
    RouteBuilder::new(ns, name)
        .host(host)
        .to(svc, Some(100))
        .target_port("http")
        .wildcard_policy("None")
        .created(created)
        .to_json()
}

/// Service `ns/name`: port `http`, 80 → 8080, TCP.
fn service(ns: &str, name: &str) -> Value {
    ServiceBuilder::new(ns, name)
        .tcp_port("http", 80, 8080)
        .to_json()
}

/// An EndpointSlice of `svc` (documentation addresses: nothing is contacted).
fn slice(ns: &str, svc: &str, addrs: &[&str]) -> Value {
    addrs
        .iter()
        .fold(
            EndpointSliceBuilder::new(ns, &format!("{svc}-x1"), svc).tcp_port("http", 8080),
            |slice, address| slice.ready_endpoint(address),
        )
        .to_json()
}

fn namespace(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
}

fn start(server: &FakeApiServer, config: KubeSourceConfig) -> (KubeSource, Changes) {
    let source = KubeSource::start(server.client(), config);
    let changes = source.subscribe();
    (source, changes)
}

/// Wait (bounded) until the synced snapshot satisfies `pred`.
async fn wait_snapshot(
    source: &KubeSource,
    changes: &mut Changes,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = Instant::now() + WAIT;
    loop {
        if source.is_synced() {
            let s = source.snapshot();
            if pred(&s) {
                return s;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            panic!(
                "timed out waiting for {what} ({}); last snapshot: {:?}",
                source.not_synced_reason(),
                route_names(&source.snapshot())
            );
        }
        let _ = tokio::time::timeout(left.min(Duration::from_millis(500)), changes.changed()).await;
    }
}

async fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn route_names(s: &Snapshot) -> Vec<String> {
    s.routes
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r.metadata.namespace.as_deref().unwrap_or(""),
                r.metadata.name.as_deref().unwrap_or("")
            )
        })
        .collect()
}

fn host_of(s: &Snapshot, ns: &str, name: &str) -> Option<String> {
    s.routes
        .iter()
        .find(|r| {
            r.metadata.namespace.as_deref() == Some(ns) && r.metadata.name.as_deref() == Some(name)
        })
        .and_then(|r| r.spec.host.clone())
}

fn admit(s: &Snapshot) -> Vec<Verdict> {
    admit::admit_at(
        s,
        &RouterSettings::default(),
        routegen_host::clock::now_unix(),
    )
}

/// `ns/name` → `None` (admitted) or the rejection reason.
fn outcomes(verdicts: &[Verdict]) -> BTreeMap<String, Option<String>> {
    verdicts
        .iter()
        .map(|v| {
            (
                v.key.to_string(),
                v.rejection().map(|r| r.reason.to_string()),
            )
        })
        .collect()
}

/// The pipeline configuration for rendering (default certificate
/// generated once per test binary).
fn pipeline() -> &'static PipelineConfig {
    static CONFIG: OnceLock<PipelineConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let state = tempfile::tempdir().unwrap().keep();
        let options = pipeline_options(&state);
        routegen_host::config::load(&options).unwrap()
    })
}

/// The pipeline options of these tests, with state and run directories
/// under `state`.
fn pipeline_options(state: &std::path::Path) -> PipelineOptions {
    PipelineOptions {
        target: Default::default(),
        router: RouterSettings::default(),
        template_dir: None,
        state_dir: Some(state.to_path_buf()),
        default_cert: None,
        service_ca_file: None,
        cookie_name: None,
        disable_http2: false,
        allow_loopback_endpoints: false,
        http_bind: vec![":8080".parse().unwrap()],
        https_bind: vec![":8443".parse().unwrap()],
        run_dir: state.join("run").display().to_string(),
        maxconn: 1000,
        hard_stop_after: "30s".parse().unwrap(),
        max_old_workers: 5,
        header_actions_file: None,
        spares: Default::default(),
        haproxy_metrics_bind: Vec::new(),
        haproxy_log: None,
        haproxy_events: false,
    }
}

/// haproxy.cfg, the backend files (`backends/*.cfg`) and the maps of the
/// rendered tree.
fn render(s: &Snapshot) -> String {
    let rendered = routegen_render::pipeline::render_snapshot_at(
        s,
        pipeline(),
        routegen_host::clock::now_unix(),
    )
    .unwrap();
    rendered
        .tree
        .iter()
        .filter(|(path, _)| {
            path.as_str() == "haproxy.cfg"
                || (path.starts_with("backends/") && path.ends_with(".cfg"))
                || path.starts_with("maps/")
        })
        .map(|(path, f)| format!("# {path}\n{}", String::from_utf8_lossy(&f.contents)))
        .collect()
}

fn status_of(server: &FakeApiServer, ns: &str, name: &str) -> RouteStatus {
    let r = server.get("Route", ns, name).expect("route exists");
    serde_json::from_value(r.get("status").cloned().unwrap_or(json!({}))).unwrap()
}

fn entry<'a>(
    status: &'a RouteStatus,
    router: &str,
) -> Option<&'a routegen_core::model::route::RouteIngress> {
    status.ingress.iter().find(|i| i.router_name == router)
}

async fn flush(writer: &StatusWriter, seq: u64) {
    tokio::time::timeout(WAIT, writer.flushed(seq))
        .await
        .expect("status writer flushed in time");
}

fn assert_no_denials(server: &FakeApiServer) {
    let denied = server.denied();
    assert!(
        denied.is_empty(),
        "requests refused by deploy/clusterrole.yaml: {denied:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_drive_snapshot_verdicts_and_tree() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    // Two namespaces claim one host; `b` is older and owns it.
    server.apply(route(
        "a",
        "web",
        "shop.example.com",
        "web",
        "2026-01-02T00:00:00Z",
    ));
    server.apply(route(
        "b",
        "web",
        "shop.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    ));
    server.apply(route(
        "a",
        "api",
        "api.example.com",
        "api",
        "2026-01-01T00:00:00Z",
    ));
    for ns in ["a", "b"] {
        server.apply(service(ns, "web"));
    }
    server.apply(service("a", "api"));
    server.apply(slice("b", "web", &["192.0.2.10"]));

    let (source, mut changes) = start(&server, KubeSourceConfig::default());
    tokio::time::timeout(WAIT, changes.changed())
        .await
        .expect("synced")
        .unwrap();
    assert!(source.is_synced());
    let snap = source.snapshot();
    assert_eq!(snap.routes.len(), 3, "the initial list is one snapshot");
    let v = outcomes(&admit(&snap));
    assert_eq!(v["b/web"], None);
    assert_eq!(v["a/web"].as_deref(), Some("HostAlreadyClaimed"));
    assert_eq!(v["a/api"], None);
    let tree = render(&snap);
    assert!(tree.contains("backend be_http:b:web"), "{tree}");
    assert!(tree.contains("192.0.2.10:8080"), "{tree}");

    // MODIFIED: a Route's host changes.
    let mut api = route(
        "a",
        "api",
        "api2.example.com",
        "api",
        "2026-01-01T00:00:00Z",
    );
    server.apply(api.clone());
    let snap = wait_snapshot(&source, &mut changes, "modified host", |s| {
        host_of(s, "a", "api").as_deref() == Some("api2.example.com")
    })
    .await;
    assert!(render(&snap).contains("api2.example.com/ be_http:a:api"));

    // Endpoints: a new slice, then a changed one.
    server.apply(slice("a", "api", &["192.0.2.20"]));
    let snap = wait_snapshot(&source, &mut changes, "new slice", |s| {
        s.endpoint_slices.len() == 2
    })
    .await;
    assert!(render(&snap).contains("192.0.2.20:8080"));
    server.apply(slice("a", "api", &["192.0.2.21", "192.0.2.22"]));
    let snap = wait_snapshot(&source, &mut changes, "changed slice", |s| {
        render(s).contains("192.0.2.22:8080")
    })
    .await;
    assert!(!render(&snap).contains("192.0.2.20:8080"));

    // DELETED: the owner goes, the next oldest is admitted.
    assert!(server.delete("Route", "b", "web"));
    let snap = wait_snapshot(&source, &mut changes, "owner deleted", |s| {
        s.routes.len() == 2
    })
    .await;
    let v = outcomes(&admit(&snap));
    assert_eq!(v["a/web"], None, "ownership moves to the remaining Route");
    assert!(render(&snap).contains("backend be_http:a:web"));

    // A status-only change is not a change for the router.
    let generation = source.generation();
    api["status"] = json!({"ingress": [{"host": "x", "routerName": "someone"}]});
    server.apply(api);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        source.generation(),
        generation,
        "status-only updates are not signalled"
    );
    assert_no_denials(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_carries_reasons_keeps_other_routers_and_transition_times() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    let old = "2020-01-01T00:00:00Z";
    let mut loser = route(
        "a",
        "web",
        "shop.example.com",
        "web",
        "2026-01-02T00:00:00Z",
    );
    // Another router's entry, and a stale entry of ours saying "rejected".
    loser["status"] = json!({"ingress": [
        {"host": "shop.example.com", "routerName": "other", "wildcardPolicy": "None",
         "conditions": [{"type": "Admitted", "status": "True", "lastTransitionTime": old}]},
        {"host": "shop.example.com", "routerName": "r1", "wildcardPolicy": "None",
         "conditions": [{"type": "Admitted", "status": "False", "reason": "HostAlreadyClaimed",
                         "message": "old", "lastTransitionTime": old}]}
    ]});
    server.apply(loser);
    let mut winner = route(
        "b",
        "web",
        "shop.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    );
    winner["status"] = json!({"ingress": [
        {"host": "shop.example.com", "routerName": "r1", "wildcardPolicy": "None",
         "conditions": [{"type": "Admitted", "status": "True", "lastTransitionTime": old}]}
    ]});
    server.apply(winner);
    server.apply(route(
        "a",
        "bad",
        "Not_A_Host!",
        "web",
        "2026-01-01T00:00:00Z",
    ));

    let (source, mut changes) = start(&server, KubeSourceConfig::default());
    let snap = wait_snapshot(&source, &mut changes, "sync", |s| s.routes.len() == 3).await;
    let writer = StatusWriter::spawn(
        server.client(),
        source.route_store(),
        StatusConfig::new("r1", Some("lb.example.com".into())),
    );
    let seq = writer.submit(&admit(&snap));
    flush(&writer, seq).await;

    let s = status_of(&server, "a", "web");
    let other = entry(&s, "other").expect("other router's entry preserved");
    assert_eq!(
        other.conditions[0].last_transition_time.as_deref(),
        Some(old)
    );
    assert_eq!(s.ingress[0].router_name, "other", "order preserved");
    let ours = entry(&s, "r1").unwrap();
    let c = &ours.conditions[0];
    assert_eq!((c.type_.as_str(), c.status.as_str()), ("Admitted", "False"));
    assert_eq!(c.reason.as_deref(), Some("HostAlreadyClaimed"));
    assert!(
        c.message.as_deref().unwrap().contains("b/web"),
        "{:?}",
        c.message
    );
    assert_eq!(
        c.last_transition_time.as_deref(),
        Some(old),
        "no flip: time kept"
    );
    assert_eq!(
        ours.router_canonical_hostname.as_deref(),
        Some("lb.example.com")
    );
    assert_eq!(ours.wildcard_policy.as_deref(), Some("None"));

    let s = status_of(&server, "b", "web");
    let c = &entry(&s, "r1").unwrap().conditions[0];
    assert_eq!(c.status, "True");
    assert_eq!(c.reason, None);
    assert_eq!(
        c.last_transition_time.as_deref(),
        Some(old),
        "no flip: time kept"
    );

    let s = status_of(&server, "a", "bad");
    let c = &entry(&s, "r1").unwrap().conditions[0];
    assert_eq!(c.status, "False");
    assert_eq!(c.reason.as_deref(), Some("InvalidHost"));

    // Every patch is a merge patch of the status subresource.
    let patches = server.status_patches();
    assert_eq!(patches.len(), 3, "{patches:#?}");
    for p in &patches {
        assert_eq!(p.content_type, "application/merge-patch+json");
        assert!(p.path.ends_with("/status"));
        assert!(p.query.contains("fieldManager=routegen"), "{}", p.query);
    }

    // The same verdicts again: nothing to write.
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.clear_requests();
    let seq = writer.submit(&admit(&source.snapshot()));
    flush(&writer, seq).await;
    assert_eq!(server.status_patches().len(), 0);

    // The owner goes: the loser flips to admitted with a new time.
    server.delete("Route", "b", "web");
    let snap = wait_snapshot(&source, &mut changes, "owner deleted", |s| {
        s.routes.len() == 2
    })
    .await;
    let seq = writer.submit(&admit(&snap));
    flush(&writer, seq).await;
    let s = status_of(&server, "a", "web");
    let c = &entry(&s, "r1").unwrap().conditions[0];
    assert_eq!(c.status, "True");
    assert_ne!(
        c.last_transition_time.as_deref(),
        Some(old),
        "flip: new time"
    );
    assert!(entry(&s, "other").is_some());
    assert_eq!(server.status_patches().len(), 1);
    assert_no_denials(&server);
}

/// One routegen instance: a source and a status writer.
struct Instance {
    source: KubeSource,
    changes: Changes,
    writer: StatusWriter,
}

async fn instance(server: &FakeApiServer, router: &str, routes: usize) -> Instance {
    let (source, mut changes) = start(server, KubeSourceConfig::default());
    wait_snapshot(&source, &mut changes, "sync", |s| s.routes.len() == routes).await;
    let writer = StatusWriter::spawn(
        server.client(),
        source.route_store(),
        StatusConfig::new(router, None),
    );
    Instance {
        source,
        changes,
        writer,
    }
}

impl Instance {
    async fn write_status(&self) {
        let seq = self.writer.submit(&admit(&self.source.snapshot()));
        flush(&self.writer, seq).await;
    }
}

fn seed(server: &FakeApiServer, n: usize) {
    for i in 0..n {
        server.apply(route(
            "team",
            &format!("r{i:04}"),
            &format!("r{i:04}.example.com"),
            "web",
            "2026-01-01T00:00:00Z",
        ));
    }
    server.apply(service("team", "web"));
    server.apply(slice("team", "web", &["192.0.2.1"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_keep_their_own_entries() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    seed(&server, 10);
    let one = instance(&server, "public", 10).await;
    let two = instance(&server, "internal", 10).await;
    // Concurrently: each rewrites the array with its own entry; the
    // resourceVersion precondition turns races into retries, not losses.
    tokio::join!(one.write_status(), two.write_status());
    for i in 0..10 {
        let s = status_of(&server, "team", &format!("r{i:04}"));
        assert!(entry(&s, "public").is_some(), "{s:?}");
        assert!(entry(&s, "internal").is_some(), "{s:?}");
        assert_eq!(s.ingress.len(), 2);
    }
    // Settled: neither writes again.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.clear_requests();
    tokio::join!(one.write_status(), two.write_status());
    assert_eq!(server.status_patches().len(), 0);
    drop((one.changes, two.changes));
    assert_no_denials(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_with_the_same_name_do_not_flap() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    let n = 20;
    seed(&server, n);
    let a = instance(&server, "default", n).await;
    let b = instance(&server, "default", n).await;
    tokio::join!(a.write_status(), b.write_status());
    let ok = server
        .status_patches()
        .iter()
        .filter(|p| p.code == 200)
        .count();
    let conflicts = server
        .status_patches()
        .iter()
        .filter(|p| p.code == 409)
        .count();
    assert_eq!(
        ok, n,
        "one successful write per Route ({conflicts} conflicts resolved by re-reading)"
    );
    for i in 0..n {
        let s = status_of(&server, "team", &format!("r{i:04}"));
        assert_eq!(s.ingress.len(), 1, "one entry for the shared name");
    }
    // Both keep submitting the same verdicts: no more writes at all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.clear_requests();
    for _ in 0..3 {
        tokio::join!(a.write_status(), b.write_status());
    }
    assert_eq!(server.status_patches().len(), 0);
    drop((a.changes, b.changes));
    assert_no_denials(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conflicts_are_retried_and_rbac_is_exactly_what_is_used() {
    init_tracing();
    // With a namespace selector: clusterrole.yaml and the optional grant.
    let server = FakeApiServer::start(Rbac::from_deploy_with_namespace_selector()).await;
    server.apply(namespace("team", json!({"router": "public"})));
    seed(&server, 2);
    let config = KubeSourceConfig {
        namespace_selector: Some("router=public".into()),
        ..KubeSourceConfig::default()
    };
    let (source, mut changes) = start(&server, config);
    let snap = wait_snapshot(&source, &mut changes, "sync", |s| s.routes.len() == 2).await;
    let writer = StatusWriter::spawn(
        server.client(),
        source.route_store(),
        StatusConfig::new("r1", None),
    );
    // Two concurrent writes by another router before our patch lands.
    server.conflict_next_status_patches("team", "r0000", 2);
    let seq = writer.submit(&admit(&snap));
    flush(&writer, seq).await;
    let stats = writer.stats();
    assert_eq!(
        stats.conflicts.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(stats.failures.load(std::sync::atomic::Ordering::Relaxed), 0);
    let s = status_of(&server, "team", "r0000");
    assert!(entry(&s, "r1").is_some());
    assert!(
        entry(&s, "concurrent-router").is_some(),
        "the concurrent write survives"
    );
    let codes: Vec<u16> = server
        .status_patches()
        .iter()
        .filter(|p| p.path.contains("r0000"))
        .map(|p| p.code)
        .collect();
    assert_eq!(codes, vec![409, 409, 200]);

    // RBAC: every granted rule was needed, and nothing else was asked for.
    assert_no_denials(&server);
    assert_eq!(server.used(), server.rbac().grants());
}

/// Without `--namespace-selector` routegen never reads Namespaces, so
/// deploy/clusterrole.yaml does not grant it (the grant is
/// deploy/optional/namespace-selector-rbac.yaml).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_namespace_selector_namespaces_are_never_read() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    assert!(
        !server
            .rbac()
            .grants()
            .iter()
            .any(|g| g.contains("namespaces")),
        "clusterrole.yaml grants no Namespace access"
    );
    seed(&server, 2);
    let (source, mut changes) = start(&server, KubeSourceConfig::default());
    wait_snapshot(&source, &mut changes, "sync", |s| s.routes.len() == 2).await;
    assert_no_denials(&server);
    let used = server.used();
    assert!(!used.iter().any(|g| g.contains("namespaces")), "{used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_drift_fails() {
    init_tracing();
    // Without routes/status patch: the writer is refused, and says so.
    let server = FakeApiServer::start(Rbac::from_deploy().without("patch", "routes/status")).await;
    seed(&server, 1);
    let one = instance(&server, "r1", 1).await;
    one.write_status().await;
    assert!(
        one.writer
            .stats()
            .failures
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    let denied = server.denied();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0].resource, "route.openshift.io/routes/status");

    // Without the optional grant (deploy/optional/namespace-selector-rbac.yaml):
    // a namespace selector can never sync.
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    seed(&server, 1);
    let config = KubeSourceConfig {
        namespace_selector: Some("router=public".into()),
        ..KubeSourceConfig::default()
    };
    let (source, _changes) = start(&server, config);
    wait_until("a refused namespaces list", || !server.denied().is_empty()).await;
    assert!(!source.is_synced());
    wait_until("the reason names the 403", || {
        source.not_synced_reason().contains("403")
    })
    .await;
    assert!(
        source.not_synced_reason().contains("namespaces"),
        "{}",
        source.not_synced_reason()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_dropped_resumes_and_410_relists() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    seed(&server, 3);
    let (source, mut changes) = start(&server, KubeSourceConfig::default());
    wait_snapshot(&source, &mut changes, "sync", |s| s.routes.len() == 3).await;
    let lists = |server: &FakeApiServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.verb == "list" && r.resource.ends_with("/routes"))
            .count()
    };
    let route_watches = |server: &FakeApiServer| {
        server
            .requests()
            .iter()
            .filter(|r| r.verb == "watch" && r.resource.ends_with("/routes"))
            .count()
    };
    assert_eq!(lists(&server), 1);

    // The server ends every watch: the client watches again from where it
    // was (no new list) and sees what happened meanwhile.
    let watches = route_watches(&server);
    server.close_watches();
    wait_until("watched again", || route_watches(&server) > watches).await;
    server.apply(route(
        "team",
        "r0000",
        "moved.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    ));
    wait_snapshot(&source, &mut changes, "change after resume", |s| {
        host_of(s, "team", "r0000").as_deref() == Some("moved.example.com")
    })
    .await;
    assert!(route_watches(&server) > watches, "watched again");
    assert_eq!(lists(&server), 1, "resumed, not relisted");
    let resumed = server
        .requests()
        .into_iter()
        .rfind(|r| r.verb == "watch" && r.resource.ends_with("/routes"))
        .unwrap();
    assert!(
        resumed.query.contains("resourceVersion="),
        "{}",
        resumed.query
    );
    assert!(
        resumed.query.contains("allowWatchBookmarks=true"),
        "{}",
        resumed.query
    );

    // 410 Gone on the open watch: the client lists again and the store is
    // replaced as a whole.
    server.expire_watches();
    server.delete("Route", "team", "r0001");
    wait_snapshot(&source, &mut changes, "relist after 410", |s| {
        s.routes.len() == 2
    })
    .await;
    wait_until("relisted", || lists(&server) >= 2).await;
    assert_no_denials(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_down_and_back_keeps_the_last_snapshot() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    seed(&server, 5);
    let (source, mut changes) = start(&server, KubeSourceConfig::default());
    wait_snapshot(&source, &mut changes, "sync", |s| s.routes.len() == 5).await;

    server.stop();
    // Changes while the server is away (and history compacted: resuming
    // from the old version gives 410, so the client must list again).
    server.apply(route(
        "team",
        "r0005",
        "new.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    ));
    server.delete("Route", "team", "r0000");
    server.compact();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        source.is_synced(),
        "still synced: serving the last good state"
    );
    let snap = source.snapshot();
    assert_eq!(snap.routes.len(), 5, "last good snapshot kept");
    assert!(host_of(&snap, "team", "r0000").is_some());

    server.restart().await;
    let snap = wait_snapshot(&source, &mut changes, "caught up after restart", |s| {
        host_of(s, "team", "r0005").is_some() && host_of(s, "team", "r0000").is_none()
    })
    .await;
    assert_eq!(snap.routes.len(), 5);
    assert_no_denials(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_and_route_selectors_shard() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy_with_namespace_selector()).await;
    server.apply(namespace("a", json!({"router": "public"})));
    server.apply(namespace("b", json!({"router": "internal"})));
    for ns in ["a", "b"] {
        server.apply(route(
            ns,
            "web",
            &format!("web.{ns}.example.com"),
            "web",
            "2026-01-01T00:00:00Z",
        ));
        server.apply(service(ns, "web"));
    }
    let config = KubeSourceConfig {
        namespace_selector: Some("router in (public)".into()),
        ..KubeSourceConfig::default()
    };
    let (source, mut changes) = start(&server, config);
    let snap = wait_snapshot(&source, &mut changes, "sync", |s| s.routes.len() == 1).await;
    assert_eq!(route_names(&snap), vec!["a/web"]);

    // b starts matching: its Routes are added.
    server.apply(namespace("b", json!({"router": "public"})));
    let snap = wait_snapshot(&source, &mut changes, "b added", |s| s.routes.len() == 2).await;
    assert_eq!(route_names(&snap), vec!["a/web", "b/web"]);
    // a stops matching: its Routes are dropped.
    server.apply(namespace("a", json!({"router": "internal"})));
    let snap = wait_snapshot(&source, &mut changes, "a dropped", |s| s.routes.len() == 1).await;
    assert_eq!(route_names(&snap), vec!["b/web"]);
    // Relabelled but still matching: not a change.
    let generation = source.generation();
    server.apply(namespace("b", json!({"router": "public", "team": "x"})));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(source.generation(), generation);

    // Route label and field selectors, in one namespace.
    let mut r1 = route("b", "one", "one.example.com", "web", "2026-01-01T00:00:00Z");
    r1["metadata"]["labels"] = json!({"shard": "x"});
    let mut r2 = route(
        "b",
        "two",
        "skip.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    );
    r2["metadata"]["labels"] = json!({"shard": "x"});
    server.apply(r1.clone());
    server.apply(r2);
    let config = KubeSourceConfig {
        namespace: Some("b".into()),
        route_selector: Some("shard=x".into()),
        route_field_selector: Some("spec.host!=skip.example.com".into()),
        ..KubeSourceConfig::default()
    };
    let (sharded, mut sharded_changes) = start(&server, config);
    let snap = wait_snapshot(&sharded, &mut sharded_changes, "sharded sync", |s| {
        s.routes.len() == 1
    })
    .await;
    assert_eq!(route_names(&snap), vec!["b/one"]);
    // The label stops matching: the watch says DELETED.
    r1["metadata"]["labels"] = json!({"shard": "y"});
    server.apply(r1);
    wait_snapshot(&sharded, &mut sharded_changes, "unlabelled", |s| {
        s.routes.is_empty()
    })
    .await;
    let watch = server
        .requests()
        .into_iter()
        .find(|r| r.verb == "watch" && r.path.contains("/namespaces/b/routes"))
        .expect("namespaced watch");
    assert!(
        watch.query.contains("labelSelector=shard%3Dx"),
        "{}",
        watch.query
    );
    assert!(watch.query.contains("fieldSelector="), "{}", watch.query);
    assert_no_denials(&server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_bundle_follows_flags() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    seed(&server, 2);
    server.apply(route(
        "other",
        "x",
        "x.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    ));
    let args = KubeArgs {
        router_name: "edge".into(),
        router_canonical_hostname: Some("lb.example.com".into()),
        ..KubeArgs::default()
    };
    // `--namespace team`: the other namespace is not watched at all.
    let mut run = KubeRun::with_client(
        server.client(),
        &args,
        Some("team".into()),
        Duration::from_millis(20),
    );
    tokio::time::timeout(WAIT, run.changed())
        .await
        .unwrap()
        .unwrap();
    let snap = run.snapshot();
    assert_eq!(route_names(&snap), vec!["team/r0000", "team/r0001"]);
    // r0001's backend leaves endpoints out (the bound of servers per
    // backend): a ServersLeftOut condition next to Admitted.
    run.publish(&admit(&snap), &[(ObjectKey::new("team", "r0001"), 500)]);
    wait_until("status written", || {
        entry(&status_of(&server, "team", "r0001"), "edge")
            .is_some_and(|e| e.router_canonical_hostname.as_deref() == Some("lb.example.com"))
    })
    .await;
    let conditions = |name: &str| -> Vec<(String, String, Option<String>)> {
        entry(&status_of(&server, "team", name), "edge")
            .map(|e| {
                e.conditions
                    .iter()
                    .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        conditions("r0001"),
        [
            ("Admitted".into(), "True".into(), None),
            (
                "ServersLeftOut".into(),
                "True".into(),
                Some("MaxServersPerBackend".into())
            ),
        ]
    );
    wait_until("r0000 written", || !conditions("r0000").is_empty()).await;
    assert_eq!(
        conditions("r0000"),
        [("Admitted".into(), "True".into(), None)]
    );
    assert!(
        server
            .requests()
            .iter()
            .filter(|r| r.verb == "list" || r.verb == "watch")
            .all(|r| r.path.contains("/namespaces/team/")),
        "Api::namespaced for every watch"
    );

    // `--no-status`: no writer, nothing written.
    let quiet = KubeArgs {
        no_status: true,
        ..KubeArgs::default()
    };
    server.clear_requests();
    let mut run = KubeRun::with_client(server.client(), &quiet, None, Duration::ZERO);
    tokio::time::timeout(WAIT, run.changed())
        .await
        .unwrap()
        .unwrap();
    assert!(run.status.is_none());
    run.publish(&admit(&run.snapshot()), &[]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.status_patches().is_empty());
    assert_no_denials(&server);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_latency_and_resync_patches_with_1000_routes() {
    init_tracing();
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    let n = 1000;
    seed(&server, n);

    let (source, mut changes) = start(&server, KubeSourceConfig::default());
    // Until synced, a snapshot holds no Route or all of them.
    let deadline = Instant::now() + WAIT;
    while !source.is_synced() {
        let count = source.snapshot().routes.len();
        assert!(count == 0 || count == n, "partial snapshot: {count}");
        assert!(Instant::now() < deadline, "sync");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::timeout(WAIT, changes.changed()).await.unwrap();
    assert_eq!(source.snapshot().routes.len(), n);
    let pages = server
        .requests()
        .iter()
        .filter(|r| r.verb == "list" && r.resource.ends_with("/routes"))
        .map(|r| r.query.clone())
        .collect::<Vec<_>>();
    assert_eq!(pages.len(), 2, "1,000 Routes in pages of 500: {pages:?}");
    assert!(
        pages[0].contains("limit=500") && pages[1].contains("continue="),
        "{pages:?}"
    );

    // Initial status: one write per Route.
    let writer = StatusWriter::spawn(
        server.client(),
        source.route_store(),
        StatusConfig::new("default", None),
    );
    let t = Instant::now();
    let seq = writer.submit(&admit(&source.snapshot()));
    flush(&writer, seq).await;
    let initial_writes = server.status_patches().len();
    let initial_time = t.elapsed();
    assert_eq!(initial_writes, n);

    // 200 watch events, one at a time: server write → new snapshot → verdicts.
    let mut latencies = Vec::new();
    for i in 0..200 {
        let name = format!("r{:04}", i * 5);
        let host = format!("e{i}.example.com");
        let t0 = Instant::now();
        server.apply(route("team", &name, &host, "web", "2026-01-01T00:00:00Z"));
        let deadline = t0 + WAIT;
        loop {
            tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                changes.changed(),
            )
            .await
            .expect("event seen in time");
            let snap = source.snapshot();
            if host_of(&snap, "team", &name).as_deref() == Some(host.as_str()) {
                let verdicts = admit(&snap);
                assert_eq!(verdicts.len(), n);
                break;
            }
        }
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));

    // The changed Routes get their new status; then a resync (410 → full
    // relist) with nothing changed must not write a single status.
    let seq = writer.submit(&admit(&source.snapshot()));
    flush(&writer, seq).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.clear_requests();
    let generation = source.generation();
    server.expire_watches();
    wait_until("relisted", || source.generation() > generation).await;
    let seq = writer.submit(&admit(&source.snapshot()));
    flush(&writer, seq).await;
    let after_resync = server.status_patches().len();
    assert_eq!(
        after_resync, 0,
        "no status PATCH for unchanged Routes after a resync"
    );

    // A restarted instance (new source, new writer) writes nothing either.
    drop(writer);
    drop(source);
    server.clear_requests();
    let fresh = instance(&server, "default", n).await;
    fresh.write_status().await;
    let after_restart = server.status_patches().len();
    assert_eq!(after_restart, 0, "no status PATCH after a restart");

    println!(
        "MEASURE kube source, {n} Routes: watch event -> snapshot + verdicts p50 {:.1} ms, p99 {:.1} ms (200 events, debounce 0); \
         initial status {initial_writes} PATCH in {:.2} s; status PATCH after resync: {after_resync}; after restart: {after_restart}",
        p50.as_secs_f64() * 1000.0,
        p99.as_secs_f64() * 1000.0,
        initial_time.as_secs_f64(),
    );
    assert_no_denials(&server);
}

// ---- the run loop with `--source kube` -----------------------------------

/// A kubeconfig pointing at the fake server (the real `--kubeconfig` path).
fn kubeconfig(server: &FakeApiServer, dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\ncurrent-context: fake\n",
        server.url()
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn run_config(
    out: &std::path::Path,
    kube: KubeArgs,
    listen: std::net::SocketAddr,
) -> routegen::run::RunConfig {
    std::fs::create_dir_all(out.join("run")).unwrap();
    routegen::run::RunConfig {
        source: routegen::run::Source::Kube,
        out: out.to_path_buf(),
        namespace: "default".into(),
        pipeline: PipelineOptions {
            state_dir: Some(out.join("state")),
            ..pipeline_options(out)
        },
        reload: routegen_host::reload::ReloadMethod::None,
        spawn_haproxy: false,
        haproxy_bin: "haproxy".into(),
        nginx_bin: "nginx".into(),
        listen,
        ops_limits: Default::default(),
        min_reload_interval: Duration::ZERO,
        haproxy_load_timeout: Duration::from_secs(120),
        debounce: Duration::ZERO,
        keep_trees: 2,
        max_old_workers: 5,
        limits: routegen::run::core::IsolationLimits::default(),
        kube,
        kube_namespace: None,
        stats_socket: None,
        per_route_metrics: true,
    }
}

/// `GET path` on the operations endpoint: (status code, body).
async fn http_get(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .ok()?
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Some((code, body))
}

fn read_map(out: &std::path::Path) -> String {
    std::fs::read_to_string(out.join("current/maps/http.map")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_loop_with_kube_source_renders_status_and_readiness() {
    init_tracing();
    if std::process::Command::new("haproxy")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("SKIP: no haproxy binary (the run loop validates with haproxy -c)");
        return;
    }
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    seed(&server, 3);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let kube = KubeArgs {
        kubeconfig: Some(kubeconfig(&server, dir.path())),
        router_name: "edge".into(),
        ..KubeArgs::default()
    };
    // The API server is away at start: not ready, and says why.
    server.stop();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(routegen::run::run(run_config(&out, kube, listen), async {
        let _ = stop_rx.await;
    }));
    let deadline = Instant::now() + WAIT;
    let reason = loop {
        if let Some((code, body)) = http_get(listen, "/readyz").await {
            assert_eq!(code, 503, "{body}");
            if body.contains("Kubernetes API not synced") {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "/readyz never explained itself");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        !out.join("current").exists(),
        "no tree before the first sync: {reason}"
    );

    server.restart().await;
    wait_until("first tree", || {
        read_map(&out).contains("r0002.example.com/ be_http:team:r0002")
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while http_get(listen, "/readyz").await.map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "ready after the first tree");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Status follows the served tree.
    wait_until("status", || {
        (0..3).all(|i| entry(&status_of(&server, "team", &format!("r{i:04}")), "edge").is_some())
    })
    .await;
    // A watch event becomes a new tree on disk.
    server.apply(route(
        "team",
        "r0001",
        "moved.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    ));
    wait_until("new tree", || {
        read_map(&out).contains("moved.example.com/ be_http:team:r0001")
    })
    .await;
    wait_until("status follows", || {
        entry(&status_of(&server, "team", "r0001"), "edge")
            .is_some_and(|e| e.host == "moved.example.com")
    })
    .await;
    // /metrics: the watches (synced, listed, the events seen) and the
    // status writes, read from the source at the scrape.
    let (code, m) = http_get(listen, "/metrics").await.unwrap();
    assert_eq!(code, 200, "{m}");
    let series = |s: &str| routegen_testsupport::sidecar::metric_in(&m, s);
    for kind in ["routes", "services", "endpointslices"] {
        assert_eq!(
            series(&format!("routegen_kube_synced{{kind=\"{kind}\"}}")),
            1.0,
            "{m}"
        );
        assert!(
            series(&format!("routegen_kube_lists_total{{kind=\"{kind}\"}}")) >= 1.0,
            "{m}"
        );
        let listed = series(&format!(
            "routegen_kube_last_list_timestamp_seconds{{kind=\"{kind}\"}}"
        ));
        assert!(listed > 1.7e9, "{m}");
    }
    assert!(
        !m.contains("routegen_kube_synced{kind=\"namespaces\"}"),
        "{m}"
    );
    // The Route changed (and those our status writes changed).
    assert!(
        series("routegen_kube_watch_events_total{kind=\"routes\",event=\"apply\"}") >= 1.0,
        "{m}"
    );
    assert!(
        series("routegen_status_writes_total{result=\"ok\"}") >= 4.0,
        "{m}"
    );
    assert_eq!(
        series("routegen_status_writes_total{result=\"error\"}"),
        0.0,
        "{m}"
    );
    assert!(series("process_resident_memory_bytes") > 1e6, "{m}");
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_no_denials(&server);
}

/// ~90 s in a debug build (each event is a full pass: render 1,000 Routes,
/// `haproxy -c`, swap): run it on purpose with
/// `cargo test --test kube_fake_api -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement (~90 s): cargo test --test kube_fake_api -- --ignored --nocapture"]
async fn measure_event_to_tree_on_disk_with_1000_routes() {
    init_tracing();
    if std::process::Command::new("haproxy")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("SKIP: no haproxy binary (the run loop validates with haproxy -c)");
        return;
    }
    let server = FakeApiServer::start(Rbac::from_deploy()).await;
    let n = 1000;
    seed(&server, n);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let listen: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let kube = KubeArgs {
        kubeconfig: Some(kubeconfig(&server, dir.path())),
        ..KubeArgs::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(routegen::run::run(run_config(&out, kube, listen), async {
        let _ = stop_rx.await;
    }));
    wait_until("first tree", || read_map(&out).lines().count() == n).await;
    // Let the initial status writes settle.
    wait_until("initial status", || server.status_patches().len() >= n).await;

    let mut latencies = Vec::new();
    for i in 0..200 {
        let name = format!("r{:04}", i * 5);
        let host = format!("t{i}.example.com");
        let want = format!("{host} be_http:team:{name}");
        let t0 = Instant::now();
        server.apply(route("team", &name, &host, "web", "2026-01-01T00:00:00Z"));
        let deadline = t0 + WAIT;
        while !read_map(&out).contains(&want) {
            assert!(Instant::now() < deadline, "tree for event {i}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        latencies.push(t0.elapsed());
    }
    latencies.sort();
    println!(
        "MEASURE run loop (--source kube, --reload none, debounce 0), {n} Routes: watch event -> new tree on disk (haproxy -c validated) p50 {:.1} ms, p99 {:.1} ms (200 events)",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
    );
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_no_denials(&server);
}

/// A `kubernetes.io/tls` Secret `ns/name` holding `cert` (base64 `data`, as
/// the API server stores it).
fn tls_secret(ns: &str, name: &str, cert: &routegen_core::testkit::certs::Issued) -> Value {
    let b64 = |s: String| openssl::base64::encode_block(s.as_bytes());
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": ns, "name": name},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(cert.cert_pem()), "tls.key": b64(cert.key_pem())},
    })
}

/// An edge Route whose certificate is the Secret `secret`.
fn external_route(ns: &str, name: &str, host: &str, secret: &str) -> Value {
    let mut r = route(ns, name, host, "web", "2026-01-01T00:00:00Z");
    r["spec"]["tls"] = json!({"termination": "edge", "externalCertificate": {"name": secret}});
    r
}

/// The certificate (PEM blocks after the key) of `certs/<ns>:<name>.pem`.
fn served_cert(s: &Snapshot, ns: &str, name: &str) -> Option<String> {
    let rendered = routegen_render::pipeline::render_snapshot_at(
        s,
        pipeline(),
        routegen_host::clock::now_unix(),
    )
    .unwrap();
    let path = format!("certs/{ns}:{name}.pem");
    let (_, file) = rendered.tree.iter().find(|(p, _)| p.as_str() == path)?;
    let text = String::from_utf8_lossy(&file.contents).into_owned();
    let start = text.find("-----BEGIN CERTIFICATE-----")?;
    Some(text[start..].to_string())
}

/// Serve `s` with a real HAProxy (127.0.0.1, fresh ports, for the time of
/// one handshake) and return the certificate it presents for `sni`.
async fn handshake_cert(s: &Snapshot, sni: &str) -> String {
    use routegen_host::reload::process::HaproxyProcess;
    use routegen_testsupport::e2e;
    let dir = tempfile::Builder::new()
        .prefix("rgkx")
        .tempdir_in("/tmp")
        .unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let https_port = e2e::free_port();
    let mut options = PipelineOptions {
        http_bind: vec![format!("127.0.0.1:{}", e2e::free_port()).parse().unwrap()],
        https_bind: vec![format!("127.0.0.1:{https_port}").parse().unwrap()],
        run_dir: run.display().to_string(),
        state_dir: Some(dir.path().join("state")),
        ..pipeline_options(dir.path())
    };
    options.allow_loopback_endpoints = true;
    let config = routegen_host::config::load(&options).unwrap();
    let rendered =
        routegen_render::pipeline::render_snapshot_at(s, &config, routegen_host::clock::now_unix())
            .unwrap();
    let tree = dir.path().join("tree");
    routegen_host::tree::write_tree(&rendered.tree, &tree).unwrap();
    let haproxy = HaproxyProcess::spawn(
        &e2e::haproxy_bin(),
        &tree.join("haproxy.cfg"),
        &dir.path().join("master.sock"),
        &[],
    )
    .await
    .unwrap();
    let sni = sni.to_string();
    let info = tokio::task::spawn_blocking(move || {
        e2e::tls_handshake(https_port, e2e::TlsOpts::sni(&sni))
    })
    .await
    .unwrap();
    let _ = haproxy.shutdown().await;
    e2e::fingerprint(&info.peer)
}

/// spec.tls.externalCertificate with the Kubernetes source (issue 19): one
/// field-selected watch per referenced Secret, allowed by a Role for that
/// Secret alone (deploy/ grants no Secret access); the Secret's certificate
/// is served, a rotation is followed, and a 403 and a missing Secret reject
/// only their Route, with OpenShift's messages in the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_certificate_secrets_watched_one_by_one() {
    use routegen_core::testkit::certs::CertSpec;
    init_tracing();
    assert!(
        !Rbac::from_deploy()
            .grants()
            .iter()
            .any(|g| g.contains("secrets")),
        "deploy/ grants no Secret access"
    );
    // Roles for web-tls and for nope (which does not exist: without a Role
    // the router could not tell a missing Secret from a forbidden one).
    let rbac = Rbac::from_deploy()
        .with_named("a", "secrets", "web-tls")
        .with_named("a", "secrets", "nope");
    let server = FakeApiServer::start(rbac).await;
    let first = CertSpec::leaf(&["web.example.com"])
        .cn("first")
        .self_signed();
    let second = CertSpec::leaf(&["web.example.com"])
        .cn("second")
        .self_signed();
    let other = CertSpec::leaf(&["denied.example.com"]).self_signed();
    server.apply(service("a", "web"));
    server.apply(slice("a", "web", &["10.0.0.1"]));
    server.apply(tls_secret("a", "web-tls", &first));
    // Exists, but no Role lets the router read it.
    server.apply(tls_secret("a", "denied-tls", &other));
    server.apply(external_route("a", "web", "web.example.com", "web-tls"));
    server.apply(external_route("a", "web2", "web2.example.com", "web-tls"));
    server.apply(external_route(
        "a",
        "denied",
        "denied.example.com",
        "denied-tls",
    ));
    server.apply(external_route(
        "a",
        "missing",
        "missing.example.com",
        "nope",
    ));
    server.apply(route(
        "a",
        "plain",
        "plain.example.com",
        "web",
        "2026-01-01T00:00:00Z",
    ));

    let (source, mut changes) = start(&server, KubeSourceConfig::default());
    let snap = wait_snapshot(&source, &mut changes, "the Secret", |s| {
        s.secrets.len() == 1 && !s.forbidden_secrets.is_empty()
    })
    .await;
    let verdicts = admit(&snap);
    let message = |key: &str| {
        verdicts
            .iter()
            .find(|v| v.key.to_string() == key)
            .and_then(|v| v.rejection())
            .map(|r| (r.reason.to_string(), r.message.clone()))
    };
    assert_eq!(message("a/web"), None);
    assert_eq!(message("a/web2"), None);
    assert_eq!(message("a/plain"), None);
    assert_eq!(
        message("a/denied"),
        Some((
            "ExtendedValidationFailed".into(),
            "spec.tls.externalCertificate: Forbidden: router serviceaccount does not have permission to get this secret".into()
        ))
    );
    assert_eq!(
        message("a/missing"),
        Some((
            "ExtendedValidationFailed".into(),
            r#"spec.tls.externalCertificate: Not found: "secrets \"nope\" not found""#.into()
        ))
    );
    assert_eq!(served_cert(&snap, "a", "web"), Some(first.cert_pem()));
    assert_eq!(
        handshake_cert(&snap, "web.example.com").await,
        routegen_testsupport::e2e::fingerprint(&first.cert),
        "the SNI handshake presents the Secret's certificate"
    );

    // One field-selected watch per Secret, shared by the two Routes naming
    // web-tls; never a namespace- or cluster-wide Secret list or watch.
    let secret_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.resource == "/secrets")
        .collect();
    assert!(!secret_requests.is_empty());
    for r in &secret_requests {
        assert!(
            r.query.contains("fieldSelector=metadata.name"),
            "a Secret request without a name selector: {r:?}"
        );
    }
    let lists_of = |name: &str| {
        secret_requests
            .iter()
            .filter(|r| r.verb == "list" && r.query.contains(&format!("metadata.name%3D{name}")))
            .count()
    };
    assert_eq!(lists_of("web-tls"), 1, "{secret_requests:#?}");

    // The status says so.
    let writer = StatusWriter::spawn(
        server.client(),
        source.route_store(),
        StatusConfig::new("r1", None),
    );
    let seq = writer.submit(&verdicts);
    flush(&writer, seq).await;
    let s = status_of(&server, "a", "denied");
    let c = &entry(&s, "r1").unwrap().conditions[0];
    assert_eq!((c.type_.as_str(), c.status.as_str()), ("Admitted", "False"));
    assert_eq!(c.reason.as_deref(), Some("ExtendedValidationFailed"));
    assert!(c
        .message
        .as_deref()
        .unwrap()
        .contains("does not have permission"));
    let s = status_of(&server, "a", "web");
    assert_eq!(entry(&s, "r1").unwrap().conditions[0].status, "True");

    // Rotation: the watch delivers the new Secret; the new certificate is
    // served.
    server.apply(tls_secret("a", "web-tls", &second));
    let want = second.cert_pem();
    let snap = wait_snapshot(&source, &mut changes, "the rotated Secret", |s| {
        served_cert(s, "a", "web").as_deref() == Some(want.as_str())
    })
    .await;
    assert_eq!(
        handshake_cert(&snap, "web.example.com").await,
        routegen_testsupport::e2e::fingerprint(&second.cert),
        "the rotated certificate is presented"
    );
    // The other Routes keep their verdicts.
    let after = admit(&snap);
    assert_eq!(outcomes(&after), outcomes(&verdicts));

    // No Route names denied-tls any more: its watch stops (no new
    // requests for it), and it leaves the snapshot.
    server.delete("Route", "a", "denied");
    wait_snapshot(&source, &mut changes, "denied-tls forgotten", |s| {
        s.forbidden_secrets.is_empty()
    })
    .await;
    drop(writer);
}
