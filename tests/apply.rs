//! Apply against the real `haproxy -c`: only validated trees become current.

use std::os::unix::fs::PermissionsExt;

use routegen::apply::{Applier, ApplyError, ApplyOutcome};
use routegen::output::{OutputFile, OutputTree};

#[path = "support/config.rs"]
mod config;

/// A tree laid out as routegen writes one: the frontend in `haproxy.cfg`,
/// its backend (with `body`) in `backends/routes-000.cfg`. Valid only when
/// both are loaded.
fn tree(body: &str) -> OutputTree {
    let mut t = OutputTree::new();
    t.insert(
        "haproxy.cfg".into(),
        OutputFile::public(
            "global\n    default-path config\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:1\n    default_backend be\n",
        ),
    );
    t.insert(
        "backends/routes-000.cfg".into(),
        OutputFile::public(format!("backend be\n{body}")),
    );
    t.insert("certs/key.pem".into(), OutputFile::secret("secret\n"));
    t
}

fn haproxy() -> std::path::PathBuf {
    "haproxy".into()
}

#[test]
fn good_tree_becomes_current_bad_tree_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut applier = Applier::open(&out, &haproxy(), 3).unwrap();
    assert!(applier.current_id().is_none());

    let good = tree("    http-request return status 200\n");
    let first = match applier.apply(&good).unwrap() {
        ApplyOutcome::Applied { id, summary, .. } => {
            assert_eq!(
                summary.added,
                ["backends/routes-000.cfg", "certs/key.pem", "haproxy.cfg"]
            );
            id
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(applier.apply(&good).unwrap(), ApplyOutcome::Unchanged);
    assert_eq!(applier.current_config(), out.join("current/haproxy.cfg"));
    let cfg = config::whole_config(&out.join("current"));
    assert!(cfg.contains("return status 200"));
    let mode = std::fs::metadata(out.join("current/certs/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    let bad = tree("    http-request no-such-directive\n");
    match applier.apply(&bad) {
        Err(ApplyError::Invalid { output, kept, .. }) => {
            assert!(
                output.contains("no-such-directive") || output.contains("error"),
                "{output}"
            );
            assert!(
                output.contains("backends/routes-000.cfg"),
                "the backend file was checked: {output}"
            );
            assert!(
                kept.join("haproxy.cfg").exists() && kept.join("backends/routes-000.cfg").exists(),
                "failed tree kept for inspection"
            );
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(applier.current_id(), Some(first.as_str()));
    assert!(config::whole_config(&out.join("current")).contains("return status 200"));

    // Reopening finds the current tree and keeps numbering forward.
    drop(applier);
    let mut reopened = Applier::open(&out, &haproxy(), 3).unwrap();
    assert_eq!(reopened.current_id(), Some(first.as_str()));
    assert_eq!(reopened.apply(&good).unwrap(), ApplyOutcome::Unchanged);
}

#[test]
fn history_is_bounded_and_staging_leftovers_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut applier = Applier::open(&out, &haproxy(), 3).unwrap();
    for i in 0..6 {
        applier
            .apply(&tree(&format!("    http-request return status 20{i}\n")))
            .unwrap();
    }
    let history = applier.history().unwrap();
    assert_eq!(history.len(), 3, "{history:?}");
    assert_eq!(history.last().map(String::as_str), applier.current_id());
    // A half-written staging tree from a crash is removed on open.
    let leftover = out.join("staging/99999999-dead");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join(".routegen-tree"), "").unwrap();
    std::fs::write(leftover.join("haproxy.cfg"), "garbage").unwrap();
    let reopened = Applier::open(&out, &haproxy(), 3).unwrap();
    assert!(!leftover.exists());
    assert!(reopened.current_id().is_some());
}

#[test]
fn missing_haproxy_is_a_clear_error_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut applier = Applier::open(&out, std::path::Path::new("/nonexistent/haproxy"), 3).unwrap();
    match applier.apply(&tree("")) {
        Err(ApplyError::HaproxyMissing { bin, .. }) => assert!(bin.contains("nonexistent")),
        other => panic!("{other:?}"),
    }
    assert!(applier.current_id().is_none());
    assert!(!out.join("current").exists());
}
