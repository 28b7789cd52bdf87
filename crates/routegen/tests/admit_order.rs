//! Admission verdicts never depend on the order objects arrived in.

use routegen_core::admit::{admit_at, VerdictReport};
use routegen_core::RouterSettings;
use routegen_host::source::files::load_paths;

#[test]
fn verdicts_do_not_depend_on_input_order() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let mut dirs = vec![root.join("examples")];
    for entry in std::fs::read_dir(root.join("testdata")).unwrap() {
        let input = entry.unwrap().path().join("input");
        if input.is_dir() {
            dirs.push(input);
        }
    }
    dirs.sort();
    let settings = RouterSettings {
        router_domain: Some("apps.example.com".into()),
        allow_wildcard_routes: true,
        ..Default::default()
    };
    let now = 1_800_000_000;
    let mut rng = fastrand::Rng::with_seed(11);
    for dir in dirs {
        let loaded = load_paths(std::slice::from_ref(&dir), "default").unwrap();
        let expected: Vec<VerdictReport> = admit_at(&loaded.snapshot, &settings, now)
            .iter()
            .map(|v| v.report())
            .collect();
        for _ in 0..10 {
            let mut snapshot = loaded.snapshot.clone();
            rng.shuffle(&mut snapshot.routes);
            rng.shuffle(&mut snapshot.services);
            rng.shuffle(&mut snapshot.endpoint_slices);
            let got: Vec<VerdictReport> = admit_at(&snapshot, &settings, now)
                .iter()
                .map(|v| v.report())
                .collect();
            assert_eq!(got, expected, "order dependence in {}", dir.display());
        }
    }
}
