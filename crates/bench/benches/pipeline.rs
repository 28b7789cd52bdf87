//! Criterion benches of the pure stages at 1,000 and 10,000 Routes of the
//! benchmark fleet (`routegen_bench`): parse (YAML text → snapshot),
//! admit (cold: certificate check cache emptied before each pass; warm:
//! the same snapshot again), plan, render. Whole-process figures (peak
//! RSS, writing the tree, `haproxy -c`) come from `routegen-bench run`;
//! see BENCHMARKS.md.
//!
//! `cargo bench --bench pipeline` (add `-- admit` to run one group).
//! Certificates are generated once and kept in
//! `target/routegen-bench-certs/`.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

use routegen_bench::{Fleet, FleetCerts};
use routegen_core::admit;
use routegen_core::plan::{self, PlanSettings};
use routegen_core::RouterSettings;
use routegen_host::defaultcert;
use routegen_host::source::files;
use routegen_render::{self as render, RenderSettings, Templates};

const SIZES: [usize; 2] = [1_000, 10_000];
const SEED: u64 = 1;
/// A fixed "now" so certificate warnings do not depend on the clock.
const NOW: i64 = 1_800_000_000;

fn cert_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("target")
        })
        .join("routegen-bench-certs")
}

fn fleet_yaml(routes: usize) -> String {
    let fleet = Fleet::layout(routes, SEED);
    let certs = FleetCerts::load_or_generate(&fleet, &cert_dir()).expect("fleet certificates");
    fleet.to_yaml(&certs)
}

fn settings() -> (PlanSettings, RenderSettings, Templates) {
    let pem = defaultcert::generate_self_signed().expect("default certificate");
    let cert = defaultcert::parse(pem.as_bytes(), "bench").expect("parse default certificate");
    let plan = PlanSettings {
        allow_loopback_endpoints: true,
        default_cert_sha256: Some(cert.sha256),
        ..PlanSettings::default()
    };
    let render = RenderSettings {
        default_cert_pem: cert.pem,
        ..RenderSettings::default()
    };
    (plan, render, Templates::embedded().expect("templates"))
}

fn stages(c: &mut Criterion) {
    let (plan_settings, render_settings, templates) = settings();
    let router = RouterSettings::default();
    for routes in SIZES {
        let yaml = fleet_yaml(routes);
        let snapshot = files::load_str("fleet.yaml", &yaml, "default")
            .expect("fleet loads")
            .snapshot;
        let verdicts = admit::admit_at(&snapshot, &router, NOW);
        assert!(verdicts.iter().all(|v| v.is_admitted()));
        let plan = plan::plan(&verdicts, &snapshot, &plan_settings);

        let mut group = c.benchmark_group("parse");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(20));
        group.bench_with_input(BenchmarkId::from_parameter(routes), &yaml, |b, yaml| {
            b.iter(|| files::load_str("fleet.yaml", yaml, "default").expect("loads"))
        });
        group.finish();

        let mut group = c.benchmark_group("admit");
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(20));
        group.bench_with_input(BenchmarkId::new("cold", routes), &snapshot, |b, s| {
            // A new certificate-check cache each time: every certificate
            // parsed and checked.
            b.iter(|| admit::admit_at(s, &router, NOW))
        });
        group.bench_with_input(BenchmarkId::new("warm", routes), &snapshot, |b, s| {
            // A fresh memo but a warm certificate-check cache (what a
            // new Engine for the same configuration does).
            let cache = admit::tls::TlsCheckCache::default();
            let warm =
                |s| admit::admit_memo(&mut admit::AdmitMemo::default(), &cache, s, &router, NOW);
            let _ = warm(s);
            b.iter(|| warm(s))
        });
        group.finish();

        let mut group = c.benchmark_group("plan");
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::from_parameter(routes), &verdicts, |b, v| {
            b.iter(|| plan::plan(v, &snapshot, &plan_settings))
        });
        group.finish();

        let mut group = c.benchmark_group("render");
        group.sample_size(10);
        group.bench_with_input(BenchmarkId::from_parameter(routes), &plan, |b, p| {
            b.iter(|| render::render_haproxy(p, &render_settings, &templates).expect("renders"))
        });
        group.finish();
    }
}

criterion_group!(benches, stages);
criterion_main!(benches);
