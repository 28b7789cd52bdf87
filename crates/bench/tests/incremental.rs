//! The engine's memos never change a result: after every step of random
//! change sequences, a long-lived [`Engine`] (memos kept from step to step)
//! gives exactly the verdicts, plan and tree of a fresh pipeline pass.
//!
//! Input: every golden case's manifests in one snapshot (every termination,
//! certificate sharing, ownership conflicts, weights, annotations valid and
//! invalid, hostile values) plus a small generated fleet. Changes: Routes
//! edited (annotations, host, path, TLS, weights, target, age), added,
//! deleted, replaced by an equal copy; EndpointSlices edited, added,
//! deleted; the snapshot reordered; the clock moved across certificate
//! validity dates. Deterministic (fixed seeds); bounded (a few hundred
//! passes over a few hundred Routes).

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use routegen_bench::{Fleet, FleetCerts, Rng};
use routegen_core::model::{Route, Snapshot};
use routegen_core::RouterSettings;
use routegen_host::config::PipelineOptions;
use routegen_host::source::files;
use routegen_render::engine::Engine;
use routegen_render::pipeline::{self, PipelineConfig, Rendered};

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

fn config(target: routegen_render::Target) -> PipelineConfig {
    let state = tempfile::tempdir().unwrap().keep();
    let options = PipelineOptions {
        target,
        router: RouterSettings::default(),
        template_dir: None,
        state_dir: Some(state.clone()),
        default_cert: Some(root().join("testdata/certs/default.pem")),
        service_ca_file: None,
        cookie_name: None,
        disable_http2: false,
        allow_loopback_endpoints: true,
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
    };
    routegen_host::config::load(&options).unwrap()
}

/// Every golden case's input plus a 300-Route fleet, as one snapshot.
fn base_snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let mut inputs: Vec<PathBuf> = std::fs::read_dir(root().join("testdata"))
            .unwrap()
            .map(|e| e.unwrap().path().join("input"))
            .filter(|p| p.is_dir())
            .collect();
        inputs.sort();
        assert!(inputs.len() > 30, "golden inputs found: {}", inputs.len());
        let fleet = Fleet::layout(300, 7);
        let certs =
            FleetCerts::load_or_generate(&fleet, &root().join("target/routegen-bench-certs"))
                .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fleet_file = dir.path().join("fleet.yaml");
        std::fs::write(&fleet_file, fleet.to_yaml(&certs)).unwrap();
        inputs.push(fleet_file);
        let loaded = files::load_paths(&inputs, "default").unwrap();
        loaded.snapshot
    })
}

fn assert_same(step: usize, change: &str, memo: &Rendered, fresh: &Rendered) {
    let context = format!("step {step} ({change})");
    assert_eq!(
        format!("{:?}", memo.verdicts),
        format!("{:?}", fresh.verdicts),
        "{context}: verdicts differ"
    );
    assert_eq!(memo.plan, fresh.plan, "{context}: plans differ");
    assert_eq!(
        memo.tree.keys().collect::<Vec<_>>(),
        fresh.tree.keys().collect::<Vec<_>>(),
        "{context}: tree paths differ"
    );
    for (path, file) in &memo.tree {
        assert!(
            *file == fresh.tree[path],
            "{context}: {path} differs:\n{}",
            similar::TextDiff::from_lines(
                &String::from_utf8_lossy(&fresh.tree[path].contents),
                &String::from_utf8_lossy(&file.contents)
            )
            .unified_diff()
        );
    }
    assert_eq!(memo.target_warnings, fresh.target_warnings, "{context}");
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

fn route_mut<'a>(snapshot: &'a mut Snapshot, rng: &mut Rng) -> &'a mut Route {
    let i = rng.below(snapshot.routes.len() as u64) as usize;
    Arc::make_mut(&mut snapshot.routes[i])
}

fn annotate(route: &mut Route, key: &str, value: &str) {
    route
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(format!("haproxy.router.openshift.io/{key}"), value.into());
}

/// One random change; returns its name.
fn change(snapshot: &mut Snapshot, rng: &mut Rng, now: &mut i64, counter: &mut usize) -> String {
    *counter += 1;
    let n = *counter;
    let hosts: Vec<String> = snapshot
        .routes
        .iter()
        .filter_map(|r| r.spec.host.clone())
        .collect();
    let services: Vec<String> = snapshot
        .routes
        .iter()
        .map(|r| r.spec.to.name.clone())
        .collect();
    match rng.below(19) {
        0 => {
            let r = route_mut(snapshot, rng);
            annotate(r, "timeout", &format!("{}s", 1 + n % 90));
            "timeout annotation".into()
        }
        1 => {
            let r = route_mut(snapshot, rng);
            let value = *pick(
                rng,
                &["roundrobin", "leastconn", "source", "random", "bogus"],
            );
            annotate(r, "balance", value);
            format!("balance {value}")
        }
        2 => {
            let r = route_mut(snapshot, rng);
            let value: &&str = pick(rng, &["true", "false"]);
            annotate(r, "disable_cookies", value);
            "disable_cookies".into()
        }
        3 => {
            let host = pick(rng, &hosts).clone();
            let r = route_mut(snapshot, rng);
            r.spec.host = Some(host);
            "host taken from another Route".into()
        }
        4 => {
            let r = route_mut(snapshot, rng);
            r.spec.host = Some(format!("new-{n}.apps.example.com"));
            "new host".into()
        }
        5 => {
            let r = route_mut(snapshot, rng);
            r.spec.path = pick(
                rng,
                &[None, Some("/"), Some("/api"), Some("/api/v2"), Some("/x/")],
            )
            .map(str::to_string);
            "path".into()
        }
        6 => {
            // Copy another Route's TLS (certificate sharing flips h2).
            let i = rng.below(snapshot.routes.len() as u64) as usize;
            let tls = snapshot.routes[i].spec.tls.clone();
            let r = route_mut(snapshot, rng);
            r.spec.tls = tls;
            "TLS copied from another Route".into()
        }
        7 => {
            let r = route_mut(snapshot, rng);
            if let Some(tls) = r.spec.tls.as_mut() {
                tls.insecure_edge_termination_policy =
                    pick(rng, &[None, Some("Redirect"), Some("Allow"), Some("None")])
                        .map(str::to_string);
            } else {
                r.spec.tls = None;
            }
            "insecure policy".into()
        }
        8 => {
            let service = pick(rng, &services).clone();
            let r = route_mut(snapshot, rng);
            r.spec.to.name = service;
            r.spec.to.weight = Some(rng.below(300) as i64);
            "target Service and weight".into()
        }
        9 => {
            let r = route_mut(snapshot, rng);
            if let Some(alternates) = r.spec.alternate_backends.as_mut() {
                for a in alternates {
                    a.weight = Some(rng.below(257) as i64);
                }
            }
            "alternate weights".into()
        }
        10 => {
            let r = route_mut(snapshot, rng);
            r.metadata.creation_timestamp = Some(
                serde_json::from_value(serde_json::json!(pick(
                    rng,
                    &["2001-01-01T00:00:00Z", "2030-01-01T00:00:00Z"]
                )))
                .unwrap(),
            );
            "age".into()
        }
        11 => {
            let i = rng.below(snapshot.routes.len() as u64) as usize;
            snapshot.routes.swap_remove(i);
            "Route deleted".into()
        }
        12 => {
            let i = rng.below(snapshot.routes.len() as u64) as usize;
            let mut copy = (*snapshot.routes[i]).clone();
            copy.metadata.name = Some(format!("copy-{n}"));
            copy.metadata.uid = Some(format!("uid-copy-{n}"));
            if rng.percent(50) {
                copy.spec.host = Some(format!("copy-{n}.apps.example.com"));
            }
            snapshot.routes.push(Arc::new(copy));
            "Route added".into()
        }
        13 => {
            // Same contents, new Arc: must be recognised as equal or recomputed.
            let i = rng.below(snapshot.routes.len() as u64) as usize;
            snapshot.routes[i] = Arc::new((*snapshot.routes[i]).clone());
            let j = rng.below(snapshot.endpoint_slices.len() as u64) as usize;
            snapshot.endpoint_slices[j] = Arc::new((*snapshot.endpoint_slices[j]).clone());
            "equal copies".into()
        }
        14 => {
            let i = rng.below(snapshot.endpoint_slices.len() as u64) as usize;
            let slice = Arc::make_mut(&mut snapshot.endpoint_slices[i]);
            if let Some(e) = slice.endpoints.first_mut() {
                if slice.address_type == "IPv6" {
                    e.addresses = vec![format!("fd00::{:x}", n)];
                } else {
                    e.addresses = vec![format!("127.0.{}.{}", n / 250 % 250, n % 250 + 1)];
                }
            }
            "endpoint address".into()
        }
        15 => {
            let i = rng.below(snapshot.endpoint_slices.len() as u64) as usize;
            let slice = Arc::make_mut(&mut snapshot.endpoint_slices[i]);
            if let Some(e) = slice.endpoints.first_mut() {
                e.ready = Some(!e.ready.unwrap_or(true));
            }
            "endpoint readiness".into()
        }
        16 => {
            if rng.percent(50) {
                let i = rng.below(snapshot.endpoint_slices.len() as u64) as usize;
                snapshot.endpoint_slices.swap_remove(i);
                "slice deleted".into()
            } else {
                let i = rng.below(snapshot.endpoint_slices.len() as u64) as usize;
                let mut copy = (*snapshot.endpoint_slices[i]).clone();
                copy.name = format!("slice-copy-{n}");
                for e in &mut copy.endpoints {
                    e.target = None;
                }
                snapshot.endpoint_slices.push(Arc::new(copy));
                "slice added".into()
            }
        }
        17 => {
            let seed = rng.next_u64();
            let mut order = Rng::new(seed);
            order.shuffle(&mut snapshot.routes);
            order.shuffle(&mut snapshot.endpoint_slices);
            "reordered".into()
        }
        _ => {
            // The clock: before, between and after certificate validity dates.
            *now = *pick(
                rng,
                &[
                    1_700_000_000,
                    1_800_000_000,
                    2_100_000_000,
                    4_000_000_000,
                    1_000_000_000,
                ],
            );
            format!("clock {now}")
        }
    }
}

fn run_sequences(target: routegen_render::Target, seeds: std::ops::Range<u64>, steps: usize) {
    let config = config(target);
    for seed in seeds {
        let mut rng = Rng::new(seed);
        let mut snapshot = base_snapshot().clone();
        let mut engine = Engine::new();
        let mut now = 1_800_000_000;
        let mut counter = 0;
        let mut last = String::from("initial");
        for step in 0..steps {
            let memo = engine.render_snapshot_at(&snapshot, &config, now);
            let fresh = pipeline::render_snapshot_at(&snapshot, &config, now);
            match (memo, fresh) {
                (Ok(memo), Ok(fresh)) => assert_same(step, &last, &memo, &fresh),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "step {step}"),
                (a, b) => panic!(
                    "seed {seed} step {step} ({last}): engine {:?} vs fresh {:?}",
                    a.map(|_| ()),
                    b.map(|_| ())
                ),
            }
            // Several changes between passes, as a debounced burst would be.
            let burst = 1 + rng.below(3) as usize;
            let names: Vec<String> = (0..burst)
                .map(|_| change(&mut snapshot, &mut rng, &mut now, &mut counter))
                .collect();
            last = format!("seed {seed}: {}", names.join(", "));
        }
    }
}

#[test]
fn haproxy_engine_equals_fresh_passes_on_random_changes() {
    run_sequences(routegen_render::Target::Haproxy, 0..4, 40);
}

#[test]
fn nginx_engine_equals_fresh_passes_on_random_changes() {
    run_sequences(routegen_render::Target::Nginx, 100..101, 25);
}

/// The engine actually reuses results: a pass over an unchanged snapshot
/// hands back the same backend `Arc`s and backend file contents.
#[test]
fn unchanged_snapshot_reuses_everything() {
    let config = config(routegen_render::Target::Haproxy);
    let snapshot = base_snapshot().clone();
    let mut engine = Engine::new();
    let a = engine
        .render_snapshot_at(&snapshot, &config, 1_800_000_000)
        .unwrap();
    let b = engine
        .render_snapshot_at(&snapshot, &config, 1_800_000_000)
        .unwrap();
    assert!(a.plan.backends.len() > 300);
    for (x, y) in a.plan.backends.iter().zip(&b.plan.backends) {
        assert!(Arc::ptr_eq(x, y), "{} was planned again", x.name);
    }
    assert_eq!(a.tree, b.tree);
}

/// From nothing to everything and back: first passes and emptied
/// snapshots (no backends at all) equal fresh passes too.
#[test]
fn empty_full_empty() {
    for target in [
        routegen_render::Target::Haproxy,
        routegen_render::Target::Nginx,
    ] {
        let config = config(target);
        let mut engine = Engine::new();
        for (step, snapshot) in [
            Snapshot::default(),
            base_snapshot().clone(),
            Snapshot::default(),
            Snapshot::default(),
            base_snapshot().clone(),
        ]
        .iter()
        .enumerate()
        {
            let memo = engine
                .render_snapshot_at(snapshot, &config, 1_800_000_000)
                .unwrap();
            let fresh = pipeline::render_snapshot_at(snapshot, &config, 1_800_000_000).unwrap();
            assert_same(step, "empty/full", &memo, &fresh);
        }
    }
}
