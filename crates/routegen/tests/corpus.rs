//! API conformance: every Route of `shared/corpus/api-conformance` (objects
//! from the openshift/api validation suites) gets the verdict `index.tsv`
//! records for it. `REJECT-API` Routes must be rejected with
//! `ValidationFailed`, as the API server refuses them; `ACCEPT` Routes must
//! be admitted.
//!
//! The corpus is read at test time from `<workspace>/../shared`
//! (CI keeps `shared/` beside the clone). Without it the test says so and
//! passes, except under `CI=true`, where a missing corpus is a failure.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use routegen_core::admit::{admit_at, Reason, Verdict};
use routegen_core::testkit::certs;
use routegen_core::RouterSettings;
use routegen_host::source::files::load_paths;

/// One row of `index.tsv`.
struct Row {
    file: String,
    verdict: Expected,
    reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expected {
    Accept,
    RejectApi,
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .join("../shared/corpus/api-conformance");
    if dir.join("index.tsv").is_file() {
        return Some(dir);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "corpus not found at {} (CI=true: the corpus must be present)",
            dir.display()
        );
    }
    eprintln!(
        "skipping the API conformance corpus: {} not found (set up ../shared beside the project to run it)",
        dir.display()
    );
    None
}

fn read_index(dir: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(dir.join("index.tsv")).expect("read index.tsv");
    let mut lines = text.lines();
    let header = lines.next().expect("index.tsv has a header");
    assert!(
        header.starts_with("file\tverdict"),
        "unexpected index.tsv header: {header:?}"
    );
    lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert!(fields.len() >= 2, "index.tsv row without verdict: {line:?}");
            let verdict = match fields[1] {
                "ACCEPT" => Expected::Accept,
                "REJECT-API" => Expected::RejectApi,
                other => panic!("index.tsv: unknown verdict {other:?} in {line:?}"),
            };
            Row {
                file: fields[0].to_string(),
                verdict,
                reason: fields.get(4).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

/// `*.yaml` files of the corpus directory, without `*.expected.yaml`.
fn corpus_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .expect("read corpus directory")
        .map(|entry| {
            entry
                .expect("corpus entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| name.ends_with(".yaml") && !name.ends_with(".expected.yaml"))
        .collect()
}

fn settings() -> RouterSettings {
    RouterSettings {
        router_domain: Some("apps.example.com".into()),
        hostname_template: Some("${name}-${namespace}.apps.example.com".into()),
        ..Default::default()
    }
}

fn describe(verdict: &Verdict) -> String {
    match &verdict.outcome {
        Ok(_) => format!(
            "{} admitted (host {:?}, warnings {:?})",
            verdict.key, verdict.host, verdict.warnings
        ),
        Err(rejection) => format!(
            "{} rejected: {}: {} (host {:?}, warnings {:?})",
            verdict.key, rejection.reason, rejection.message, verdict.host, verdict.warnings
        ),
    }
}

/// Load one corpus file and decide its single Route.
fn verdict_for(path: &Path) -> Result<Verdict, String> {
    let loaded =
        load_paths(&[path.to_path_buf()], "default").map_err(|e| format!("load failed: {e}"))?;
    let routes = loaded.snapshot.routes.len() + loaded.snapshot.undecodable_routes.len();
    if routes != 1 {
        return Err(format!(
            "expected exactly one Route, loaded {routes} (warnings: {:?})",
            loaded.warnings
        ));
    }
    let settings = settings();
    let mut verdicts = catch_unwind(AssertUnwindSafe(|| {
        admit_at(&loaded.snapshot, &settings, certs::now_unix())
    }))
    .map_err(|panic| {
        let text = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        format!("admission panicked: {text}")
    })?;
    if verdicts.len() != 1 {
        return Err(format!("expected one verdict, got {}", verdicts.len()));
    }
    Ok(verdicts.remove(0))
}

/// Check one row; `Err` describes the mismatch.
fn check_row(dir: &Path, row: &Row) -> Result<(), String> {
    let verdict = verdict_for(&dir.join(&row.file))?;
    match (row.verdict, &verdict.outcome) {
        (Expected::Accept, Ok(admitted)) => {
            // Header actions are applied (issue 19): an admitted Route
            // with header actions carries them, and is not warned about.
            if row.file.starts_with("api-header-actions") {
                if verdict
                    .warnings
                    .iter()
                    .any(|w| w.contains("spec.httpHeaders"))
                {
                    return Err(format!(
                        "header actions admitted with a warning: {}",
                        describe(&verdict)
                    ));
                }
                let text = std::fs::read_to_string(dir.join(&row.file)).unwrap_or_default();
                if (text.contains("type: Set") || text.contains("type: Delete"))
                    && admitted.headers.is_empty()
                {
                    return Err(format!(
                        "header actions admitted but not carried: {}",
                        describe(&verdict)
                    ));
                }
            }
            Ok(())
        }
        (Expected::Accept, Err(_)) => Err(format!("expected admitted: {}", describe(&verdict))),
        (Expected::RejectApi, Err(rejection))
            if rejection.reason == Reason::ValidationFailed
                && rejection.message.contains("spec.") =>
        {
            Ok(())
        }
        (Expected::RejectApi, _) => Err(format!(
            "expected ValidationFailed naming a spec field ({}): {}",
            row.reason,
            describe(&verdict)
        )),
    }
}

#[test]
fn api_conformance_corpus() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let rows = read_index(&dir);
    let mut failures = Vec::new();

    // index.tsv and the directory list the same files, once each.
    let mut indexed = BTreeSet::new();
    for row in &rows {
        if !indexed.insert(row.file.clone()) {
            failures.push(format!("{}: listed twice in index.tsv", row.file));
        }
    }
    let files = corpus_files(&dir);
    for missing in indexed.difference(&files) {
        failures.push(format!("{missing}: in index.tsv but no such file"));
    }
    for unlisted in files.difference(&indexed) {
        failures.push(format!("{unlisted}: file not listed in index.tsv"));
    }
    for entry in std::fs::read_dir(&dir).expect("read corpus directory") {
        let name = entry
            .expect("corpus entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(stem) = name.strip_suffix(".expected.yaml") {
            if !indexed.contains(&format!("{stem}.yaml")) {
                failures.push(format!("{name}: no {stem}.yaml in index.tsv"));
            }
        }
    }

    let mut checked = 0;
    for row in rows.iter().filter(|row| files.contains(&row.file)) {
        checked += 1;
        if let Err(problem) = check_row(&dir, row) {
            failures.push(format!("{} ({:?}): {problem}", row.file, row.verdict));
        }
    }
    eprintln!("checked {checked} corpus Routes from {}", dir.display());
    assert!(
        failures.is_empty(),
        "{} corpus problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
