//! Apply against the real `haproxy -c`: only validated trees become current.

use std::os::unix::fs::PermissionsExt;

use routegen_host::apply::{Applier, ApplyError, ApplyOutcome};
use routegen_render::output::{OutputFile, OutputTree};

use routegen_testsupport::config;

fn haproxy() -> std::path::PathBuf {
    "haproxy".into()
}

#[test]
fn good_tree_becomes_current_bad_tree_never_does() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut applier = Applier::open(&out, &haproxy(), 3).unwrap();
    assert!(applier.current_id().is_none());

    let good = config::minimal_tree("    http-request return status 200\n");
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

    let bad = config::minimal_tree("    http-request no-such-directive\n");
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
            .apply(&config::minimal_tree(&format!(
                "    http-request return status 20{i}\n"
            )))
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
    match applier.apply(&config::minimal_tree("")) {
        Err(ApplyError::HaproxyMissing { bin, .. }) => assert!(bin.contains("nonexistent")),
        other => panic!("{other:?}"),
    }
    assert!(applier.current_id().is_none());
    assert!(!out.join("current").exists());
}

// ------------------------------------------------------------------ delta staging

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use routegen_host::apply::{StagingStats, Validator};
use routegen_render::output::TREE_MARKER;

const HEADER: &str = "global\n    default-path config\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n";

/// A split tree: haproxy.cfg (frontend), backends/be.cfg (its default
/// backend), `n` map files, `certs` secret files.
fn split_tree(n: usize, certs: usize) -> OutputTree {
    let mut t = OutputTree::new();
    t.insert(
        "haproxy.cfg".into(),
        OutputFile::public(format!(
            "{HEADER}frontend fe\n    bind 127.0.0.1:1\n    default_backend be\n"
        )),
    );
    t.insert(
        "backends/be.cfg".into(),
        OutputFile::public("backend be\n    http-request return status 200\n"),
    );
    for i in 0..n {
        t.insert(
            format!("maps/m{i:04}.map"),
            OutputFile::public(format!("host{i}.example.com be_{i}\n")),
        );
    }
    for i in 0..certs {
        t.insert(
            format!("certs/ns:r{i}.pem"),
            OutputFile::secret(format!("secret {i}\n")),
        );
    }
    t
}

fn applied(
    outcome: Result<ApplyOutcome, ApplyError>,
) -> (String, routegen_host::apply::ChangeSummary) {
    match outcome {
        Ok(ApplyOutcome::Applied { id, summary, .. }) => (id, summary),
        other => panic!("expected Applied, got {other:?}"),
    }
}

fn stats(a: &Applier) -> StagingStats {
    a.last_staging().cloned().unwrap()
}

fn ino(p: &Path) -> u64 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .ino()
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The `dirs/<key>` a tree's subdirectory links to.
fn link_of(out: &Path, id: &str, sub: &str) -> PathBuf {
    std::fs::read_link(out.join("trees").join(id).join(sub)).unwrap()
}

/// Names of the content-addressed copies under dirs/.
fn dir_names(out: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(out.join("dirs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Keys every kept tree (trees/, failed/) links to.
fn linked_keys(out: &Path) -> std::collections::BTreeSet<String> {
    let mut keys = std::collections::BTreeSet::new();
    for sub in ["trees", "failed"] {
        for tree in std::fs::read_dir(out.join(sub)).unwrap() {
            let tree = tree.unwrap().path();
            if !tree.is_dir() {
                continue;
            }
            for e in std::fs::read_dir(&tree).unwrap() {
                let e = e.unwrap();
                if e.file_type().unwrap().is_symlink() {
                    let t = std::fs::read_link(e.path()).unwrap();
                    keys.insert(t.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    keys
}

/// An applier whose subdirectories are all shared copies (HAProxy trees
/// keep `backends/` a plain directory by default: see
/// `plain_subdirectories_keep_dot_dot_inside_the_tree`).
fn open_linked(out: &Path, keep: usize) -> Applier {
    let mut a = Applier::open(out, &haproxy(), keep).unwrap();
    a.set_plain_subdirs(Vec::<String>::new());
    a
}

#[test]
fn one_changed_file_of_a_1000_file_subdirectory_is_written_the_999_others_linked() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = open_linked(&out, 3);
    let mut t = split_tree(1000, 20);
    let (first, summary) = applied(a.apply(&t));
    assert_eq!(summary.added.len(), 1022);
    let s = stats(&a);
    assert_eq!(
        (s.files_written, s.files_linked, s.dirs_built, s.dirs_reused),
        (1022, 0, 3, 0),
        "{s:?}"
    );
    assert_eq!(s.files_hashed, 1022);

    // One map changes; every other file keeps its Arc.
    t.insert(
        "maps/m0500.map".into(),
        OutputFile::public("host500.example.com be_other\n"),
    );
    let (second, summary) = applied(a.apply(&t));
    assert_eq!(summary.changed, ["maps/m0500.map"]);
    assert!(summary.added.is_empty() && summary.removed.is_empty());
    let s = stats(&a);
    assert_eq!(s.files_hashed, 1, "only the new contents are hashed: {s:?}");
    assert_eq!(s.files_written, 1, "{s:?}");
    // 999 maps + haproxy.cfg linked; certs/ and backends/ reused as is.
    assert_eq!(s.files_linked, 1000, "{s:?}");
    assert_eq!((s.dirs_built, s.dirs_reused), (1, 2), "{s:?}");

    let old = out.join("trees").join(&first);
    let new = out.join("trees").join(&second);
    let mut same = 0;
    for i in 0..1000 {
        let rel = format!("maps/m{i:04}.map");
        if ino(&old.join(&rel)) == ino(&new.join(&rel)) {
            same += 1;
        } else {
            assert_eq!(i, 500);
        }
    }
    assert_eq!(same, 999);
    assert_eq!(
        std::fs::read_to_string(new.join("maps/m0500.map")).unwrap(),
        "host500.example.com be_other\n"
    );
    assert_eq!(ino(&old.join("haproxy.cfg")), ino(&new.join("haproxy.cfg")));
    // Unchanged subdirectories: the very same copy.
    assert_eq!(
        link_of(&out, &first, "certs"),
        link_of(&out, &second, "certs")
    );
    assert_eq!(
        link_of(&out, &first, "backends"),
        link_of(&out, &second, "backends")
    );
    assert_ne!(
        link_of(&out, &first, "maps"),
        link_of(&out, &second, "maps")
    );
    let link = link_of(&out, &second, "maps");
    let key = link.to_str().unwrap().strip_prefix("../../dirs/").unwrap();
    assert!(key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(mode_of(&out.join("dirs").join(key)), 0o700);
    // The validator read backends/ through its link.
    assert!(std::fs::read_to_string(out.join("current/backends/be.cfg"))
        .unwrap()
        .contains("status 200"));
    // Nothing half-built is left.
    assert!(dir_names(&out).iter().all(|n| !n.starts_with('.')));
}

#[test]
fn secret_files_stay_0600_when_linked_and_directories_0700() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    let mut t = split_tree(2, 50);
    a.apply(&t).unwrap();
    t.insert("certs/ns:r7.pem".into(), OutputFile::secret("rotated\n"));
    // Same bytes, public now: a different file for the applier.
    t.insert("certs/ns:r8.pem".into(), OutputFile::public("secret 8\n"));
    let (id, summary) = applied(a.apply(&t));
    assert_eq!(summary.changed, ["certs/ns:r7.pem", "certs/ns:r8.pem"]);
    let s = stats(&a);
    assert_eq!((s.files_written, s.dirs_built), (2, 1), "{s:?}");
    let certs = out.join("trees").join(&id).join("certs");
    for i in 0..50 {
        let p = certs.join(format!("ns:r{i}.pem"));
        let want = if i == 8 { 0o644 } else { 0o600 };
        assert_eq!(mode_of(&p), want, "{}", p.display());
        if i != 7 && i != 8 {
            assert!(std::fs::metadata(&p).unwrap().nlink() >= 2, "linked");
        }
    }
    assert_eq!(mode_of(&certs), 0o700);
    assert_eq!(mode_of(&out.join("dirs")), 0o700);
    // Secret again with the same bytes: written 0600 again.
    t.insert("certs/ns:r8.pem".into(), OutputFile::secret("secret 8\n"));
    let (id, _) = applied(a.apply(&t));
    assert_eq!(
        mode_of(&out.join("trees").join(&id).join("certs/ns:r8.pem")),
        0o600
    );
}

#[test]
fn equal_content_is_unchanged_whatever_the_allocation_and_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = open_linked(&out, 3);
    let t = split_tree(5, 5);
    let (id, _) = applied(a.apply(&t));
    assert_eq!(a.apply(&t).unwrap(), ApplyOutcome::Unchanged);
    // A fresh tree: equal bytes in other allocations.
    assert_eq!(a.apply(&split_tree(5, 5)).unwrap(), ApplyOutcome::Unchanged);
    // Shared Arcs between files are fine too.
    let shared: Arc<[u8]> = Arc::from(b"x\n".to_vec());
    let mut t2 = split_tree(5, 5);
    t2.insert(
        "maps/a.map".into(),
        OutputFile::shared(shared.clone(), false),
    );
    t2.insert("maps/b.map".into(), OutputFile::shared(shared, false));
    let (id2, summary) = applied(a.apply(&t2));
    assert_eq!(summary.added, ["maps/a.map", "maps/b.map"]);
    assert_eq!(
        std::fs::read_to_string(out.join("current/maps/b.map")).unwrap(),
        "x\n"
    );
    drop(a);
    let mut a = open_linked(&out, 3);
    assert_eq!(a.current_id(), Some(id2.as_str()));
    assert_eq!(a.apply(&t2).unwrap(), ApplyOutcome::Unchanged);
    // Back to the first content: its copies still exist, nothing written.
    let (_, summary) = applied(a.apply(&t));
    assert_eq!(summary.removed, ["maps/a.map", "maps/b.map"]);
    let s = stats(&a);
    assert_eq!(
        (s.files_written, s.dirs_built, s.dirs_reused),
        (0, 0, 3),
        "{s:?}"
    );
    assert_ne!(a.current_id(), Some(id.as_str()), "a new tree id");
}

#[test]
fn pruning_removes_only_copies_no_kept_tree_links_to() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = open_linked(&out, 2);
    // Foreign things in dirs/: never deleted.
    let foreign_key = "ab".repeat(32);
    std::fs::create_dir_all(out.join("dirs").join(&foreign_key)).unwrap();
    std::fs::write(out.join("dirs").join(&foreign_key).join("x"), "mine").unwrap();
    std::fs::write(out.join("dirs/note.txt"), "mine").unwrap();
    let mut t = split_tree(3, 3);
    let mut maps_links = Vec::new();
    for n in 0..5 {
        t.insert(
            "maps/m0000.map".into(),
            OutputFile::public(format!("gen {n}\n")),
        );
        let (id, _) = applied(a.apply(&t));
        maps_links.push(link_of(&out, &id, "maps"));
        a.wait_for_pruning();
        assert!(dir_names(&out).iter().all(|n| !n.starts_with(".trash")));
        let keys = linked_keys(&out);
        let ours: std::collections::BTreeSet<String> = dir_names(&out)
            .into_iter()
            .filter(|n| n.len() == 64 && *n != foreign_key)
            .collect();
        assert_eq!(ours, keys, "after apply {n}");
    }
    // keep = 2: the maps copies of the three oldest trees are gone; certs
    // and backends (never changed) are one copy each.
    for (i, link) in maps_links.iter().enumerate() {
        let copy = out.join("dirs").join(link.file_name().unwrap());
        assert_eq!(copy.exists(), i >= 3, "{i}");
    }
    assert_eq!(linked_keys(&out).len(), 4, "2 maps + certs + backends");
    assert!(out.join("dirs").join(&foreign_key).join("x").exists());
    assert!(out.join("dirs/note.txt").exists());
    assert_eq!(a.history().unwrap().len(), 2);
}

#[test]
fn a_failed_tree_keeps_its_copies_until_it_is_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    let good = split_tree(3, 3);
    let (good_id, _) = applied(a.apply(&good));
    let bad = |n: usize| {
        let mut t = split_tree(3, 3);
        t.insert(
            "backends/be.cfg".into(),
            OutputFile::public(format!("backend be\n    no-such-directive {n}\n")),
        );
        t.insert(
            "maps/bad.map".into(),
            OutputFile::public(format!("bad {n}\n")),
        );
        t
    };
    let mut kept = Vec::new();
    for n in 0..4 {
        match a.apply(&bad(n)) {
            Err(ApplyError::Invalid {
                kept: k, output, ..
            }) => {
                assert!(output.contains("no-such-directive"), "{output}");
                // The failed tree is readable for inspection through its links.
                assert!(std::fs::read_to_string(k.join("maps/bad.map"))
                    .unwrap()
                    .contains(&format!("bad {n}")));
                assert!(std::fs::read_to_string(k.join("backends/be.cfg"))
                    .unwrap()
                    .contains("no-such-directive"));
                kept.push(k);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(a.current_id(), Some(good_id.as_str()));
        // Every copy a kept tree links to exists; no other of ours (pruned
        // ones are renamed away at once, deleted in the background).
        a.wait_for_pruning();
        let keys = linked_keys(&out);
        assert_eq!(
            dir_names(&out)
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>(),
            keys
        );
    }
    // Three failed trees are kept: the first one went, with its copies.
    assert!(!kept[0].exists());
    for k in &kept[1..] {
        assert!(k.join("maps/bad.map").exists(), "{}", k.display());
    }
    // A good apply keeps the failed trees' copies too.
    let mut t = good.clone();
    t.insert("maps/m0001.map".into(), OutputFile::public("other\n"));
    applied(a.apply(&t));
    for k in &kept[1..] {
        assert!(k.join("maps/bad.map").exists(), "{}", k.display());
    }
}

#[test]
fn leftovers_in_dirs_are_cleaned_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = open_linked(&out, 3);
    let t = split_tree(3, 3);
    let (id, _) = applied(a.apply(&t));
    drop(a);
    let before = dir_names(&out);
    assert_eq!(before.len(), 3);
    // A copy half-built by a crash, one built but never linked (crash
    // before its tree was renamed), and foreign ones.
    let half = out
        .join("dirs")
        .join(format!(".staging-{}", "1".repeat(64)));
    std::fs::create_dir_all(half.join("nested")).unwrap();
    std::fs::write(half.join("nested/x.pem"), "partial").unwrap();
    let orphan = out.join("dirs").join("2".repeat(64));
    std::fs::create_dir(&orphan).unwrap();
    std::fs::write(orphan.join(TREE_MARKER), "").unwrap();
    std::fs::write(orphan.join("a.map"), "x").unwrap();
    let unmarked = out.join("dirs").join("3".repeat(64));
    std::fs::create_dir(&unmarked).unwrap();
    std::fs::write(unmarked.join("data"), "operator's").unwrap();
    let other = out.join("dirs/keep-me");
    std::fs::create_dir(&other).unwrap();
    // A staged tree that links to a copy, left by a crash before validation.
    let staged = out.join("staging/99999999-dead");
    std::fs::create_dir_all(&staged).unwrap();
    std::fs::write(staged.join(TREE_MARKER), "").unwrap();
    let staged_copy = out.join("dirs").join("4".repeat(64));
    std::fs::create_dir(&staged_copy).unwrap();
    std::fs::write(staged_copy.join(TREE_MARKER), "").unwrap();
    std::os::unix::fs::symlink(
        format!("../../dirs/{}", "4".repeat(64)),
        staged.join("maps"),
    )
    .unwrap();

    let a = open_linked(&out, 3);
    assert_eq!(a.current_id(), Some(id.as_str()));
    assert!(!half.exists() && !orphan.exists() && !staged.exists() && !staged_copy.exists());
    assert!(unmarked.join("data").exists() && other.exists());
    let mut want = before.clone();
    want.push("3".repeat(64));
    want.push("keep-me".into());
    want.sort();
    assert_eq!(dir_names(&out), want);
    // The current tree still serves.
    let check = std::process::Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(out.join("current/haproxy.cfg"))
        .arg("-f")
        .arg(out.join("current/backends"))
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
}

#[test]
fn foreign_symlinks_in_a_tree_or_in_dirs_are_refused_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("ns:r0.pem"), "secret 0\n").unwrap();
    std::fs::write(victim.join(TREE_MARKER), "").unwrap();
    let fresh = |name: &str| -> (PathBuf, Applier, String) {
        let out = dir.path().join(name);
        let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
        let (id, _) = applied(a.apply(&split_tree(2, 2)));
        (out, a, id)
    };
    let refused = |out: &Path, what: &str| {
        let err = Applier::open(out, &haproxy(), 3).unwrap_err().to_string();
        assert!(
            err.contains("symbolic link") || err.contains("not a directory"),
            "{what}: {err}"
        );
        err
    };

    // 1. A tree's subdirectory link replaced by one to elsewhere.
    let (out, a, id) = fresh("o1");
    drop(a);
    let link = out.join("trees").join(&id).join("certs");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = refused(&out, "foreign link in a tree");
    assert!(err.contains("certs"), "{err}");
    // The same link spelled like ours but through another route.
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink("../../dirs/../../victim", &link).unwrap();
    refused(&out, "dotted link");
    // And diff refuses it as well.
    assert!(routegen_host::tree::diff_tree(&split_tree(2, 2), &out.join("current")).is_err());

    // 2. A file inside a dirs/ copy replaced by a symlink.
    let (out, mut a, id) = fresh("o2");
    let copy = out
        .join("trees")
        .join(&id)
        .join(link_of(&out, &id, "certs"));
    std::fs::remove_file(copy.join("ns:r0.pem")).unwrap();
    std::os::unix::fs::symlink(victim.join("ns:r0.pem"), copy.join("ns:r0.pem")).unwrap();
    // Applying a change in certs/ would link from that copy: refused.
    let mut t = split_tree(2, 2);
    t.insert("certs/ns:r1.pem".into(), OutputFile::secret("rotated\n"));
    let err = a.apply(&t).unwrap_err().to_string();
    assert!(
        err.contains("symbolic link") && err.contains("ns:r0.pem"),
        "{err}"
    );
    assert_eq!(a.current_id(), Some(id.as_str()));
    assert!(
        dir_names(&out).iter().all(|n| !n.starts_with('.')),
        "cleaned up"
    );
    assert!(std::fs::read_dir(out.join("staging"))
        .unwrap()
        .next()
        .is_none());
    drop(a);
    refused(&out, "symlink inside a copy");

    // 3. A dirs/<key> copy itself replaced by a symlink.
    let (out, a, id) = fresh("o3");
    drop(a);
    let copy = out
        .join("trees")
        .join(&id)
        .join(link_of(&out, &id, "certs"));
    let copy = copy.canonicalize().unwrap();
    std::fs::remove_dir_all(&copy).unwrap();
    std::os::unix::fs::symlink(&victim, &copy).unwrap();
    refused(&out, "copy is a symlink");
    // A new tree whose copy exists but is a symlink: refused, not used.
    let (out, mut a, id) = fresh("o3b");
    let mut t = split_tree(2, 2);
    t.insert("certs/ns:r1.pem".into(), OutputFile::secret("rotated\n"));
    applied(a.apply(&t));
    let copy = out
        .join("trees")
        .join(&id)
        .join(link_of(&out, &id, "certs"));
    let copy = copy.canonicalize().unwrap();
    std::fs::remove_dir_all(&copy).unwrap();
    std::os::unix::fs::symlink(&victim, &copy).unwrap();
    let err = a.apply(&split_tree(2, 2)).unwrap_err().to_string();
    assert!(err.contains("not a directory routegen wrote"), "{err}");
    std::fs::remove_file(&copy).unwrap();

    // 4. A copy whose files no longer match its key.
    let (out, a, id) = fresh("o4");
    drop(a);
    let copy = out.join("trees").join(&id).join(link_of(&out, &id, "maps"));
    std::fs::write(copy.join("m0000.map"), "tampered\n").unwrap();
    let err = Applier::open(&out, &haproxy(), 3).unwrap_err().to_string();
    assert!(err.contains("does not hold the files"), "{err}");

    // The victim was never written to or removed.
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 2);
    assert_eq!(
        std::fs::read_to_string(victim.join("ns:r0.pem")).unwrap(),
        "secret 0\n"
    );
}

#[test]
fn diff_reads_an_applied_tree_through_its_own_links() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    let t = split_tree(2, 2);
    a.apply(&t).unwrap();
    assert_eq!(
        routegen_host::tree::diff_tree(&t, &out.join("current")).unwrap(),
        ""
    );
    let mut t2 = t.clone();
    t2.insert("maps/m0001.map".into(), OutputFile::public("changed\n"));
    t2.remove("certs/ns:r0.pem");
    let d = routegen_host::tree::diff_tree(&t2, &out.join("current")).unwrap();
    assert!(d.contains("+changed"), "{d}");
    assert!(d.contains("--- a/certs/ns:r0.pem\n+++ /dev/null"), "{d}");
    assert!(!d.contains(TREE_MARKER), "{d}");
    // write_tree never writes through the links (a plain directory only).
    let err = routegen_host::tree::write_tree(&t2, &out.join("current")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(
        routegen_host::tree::diff_tree(&t, &out.join("current")).unwrap(),
        ""
    );
}

#[test]
fn summary_history_and_roll_back_with_shared_copies() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    let t1 = split_tree(3, 2);
    let (id1, _) = applied(a.apply(&t1));
    // Nested directories inside a subdirectory; a subdirectory removed.
    let mut t2 = t1.clone();
    t2.retain(|p, _| !p.starts_with("certs/"));
    t2.insert("maps/deep/er/x.map".into(), OutputFile::public("x\n"));
    t2.insert("crt-list.txt".into(), OutputFile::public("\n"));
    t2.remove("maps/m0002.map");
    let (id2, summary) = applied(a.apply(&t2));
    assert_eq!(summary.added, ["crt-list.txt", "maps/deep/er/x.map"]);
    assert!(summary.changed.is_empty());
    assert_eq!(
        summary.removed,
        ["certs/ns:r0.pem", "certs/ns:r1.pem", "maps/m0002.map"]
    );
    assert!(!out.join("current/certs").exists());
    assert_eq!(mode_of(&out.join("current/maps/deep/er")), 0o700);
    let mut t3 = t2.clone();
    t3.insert("maps/deep/er/y.map".into(), OutputFile::public("y\n"));
    let (id3, _) = applied(a.apply(&t3));
    assert_eq!(
        ino(&out.join("trees").join(&id2).join("maps/deep/er/x.map")),
        ino(&out.join("trees").join(&id3).join("maps/deep/er/x.map"))
    );
    assert_eq!(
        a.history().unwrap(),
        [id1.clone(), id2.clone(), id3.clone()]
    );

    a.roll_back_to(&id1).unwrap();
    assert_eq!(a.current_id(), Some(id1.as_str()));
    assert!(out.join("current/certs/ns:r0.pem").exists());
    assert_eq!(a.apply(&t1).unwrap(), ApplyOutcome::Unchanged);
    let (_, summary) = applied(a.apply(&t3));
    assert_eq!(summary.added.len(), 3);
    assert_eq!(summary.removed.len(), 3);
}

#[test]
fn a_tree_written_before_the_shared_copies_is_read_and_linked_from() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    drop(Applier::open(&out, &haproxy(), 3).unwrap());
    // The old layout: subdirectories are plain directories in the tree.
    let old_id = "00000007-abcdef12";
    let t = split_tree(10, 3);
    routegen_host::tree::write_tree(&t, &out.join("trees").join(old_id)).unwrap();
    std::os::unix::fs::symlink(format!("trees/{old_id}"), out.join("current")).unwrap();
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    assert_eq!(a.current_id(), Some(old_id));
    assert_eq!(a.apply(&t).unwrap(), ApplyOutcome::Unchanged);
    let mut t2 = t.clone();
    t2.insert("maps/m0003.map".into(), OutputFile::public("new\n"));
    let (id, summary) = applied(a.apply(&t2));
    assert!(id.starts_with("00000008-"), "{id}");
    assert_eq!(summary.changed, ["maps/m0003.map"]);
    let s = stats(&a);
    // 9 maps + 3 certs + be.cfg + haproxy.cfg linked from the plain tree.
    assert_eq!((s.files_written, s.files_linked), (1, 14), "{s:?}");
    assert_eq!(
        ino(&out.join("trees").join(old_id).join("certs/ns:r1.pem")),
        ino(&out.join("current/certs/ns:r1.pem"))
    );
    a.roll_back_to(old_id).unwrap();
    assert_eq!(a.apply(&t).unwrap(), ApplyOutcome::Unchanged);
}

#[test]
fn validators_read_subdirectories_through_the_links() {
    // HAProxy: -f <tree>/backends where backends is a link into dirs/.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    let mut t = split_tree(1, 0);
    t.insert(
        "haproxy.cfg".into(),
        OutputFile::public(format!(
            "{HEADER}frontend fe\n    bind 127.0.0.1:1\n    http-request set-var(txn.b) req.hdr(host),lower,map(maps/m0000.map)\n    default_backend be\n"
        )),
    );
    applied(a.apply(&t));
    // Without backends/ the frontend's default backend is missing: refused,
    // which shows the directory was read before.
    let mut bad = t.clone();
    bad.insert(
        "backends/be.cfg".into(),
        OutputFile::public("backend other\n    http-request return status 200\n"),
    );
    assert!(matches!(a.apply(&bad), Err(ApplyError::Invalid { .. })));
    // A map path through the maps/ link that does not exist: refused.
    let mut bad = t.clone();
    bad.insert(
        "haproxy.cfg".into(),
        OutputFile::public(format!(
            "{HEADER}frontend fe\n    bind 127.0.0.1:1\n    http-request set-var(txn.b) req.hdr(host),lower,map(maps/none.map)\n    default_backend be\n"
        )),
    );
    assert!(matches!(a.apply(&bad), Err(ApplyError::Invalid { .. })));
}

/// kill -9 of a process applying in a loop, at random instants: `current`
/// always names a complete tree whose copies match their keys, and the
/// next open cleans every leftover.
#[test]
fn kill_9_while_applying_leaves_a_complete_current_tree() {
    if let Ok(out) = std::env::var("ROUTEGEN_APPLY_CHILD_OUT") {
        let mut a = Applier::open_with(Path::new(&out), Validator::None, 2).unwrap();
        let mut t = split_tree(200, 200);
        for n in 0.. {
            t.insert(
                format!("maps/m{:04}.map", n % 200),
                OutputFile::public(format!("gen {n}\n")),
            );
            t.insert(
                format!("certs/ns:r{}.pem", (n * 7) % 200),
                OutputFile::secret(format!("gen {n}\n")),
            );
            t.insert(
                "haproxy.cfg".into(),
                OutputFile::public(format!(
                    "{HEADER}frontend fe\n    bind 127.0.0.1:1\n    default_backend be\n# gen {n}\n"
                )),
            );
            a.apply(&t).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut rng = fastrand::Rng::with_seed(9);
    let mut last_gen = None;
    for round in 0..12 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "kill_9_while_applying_leaves_a_complete_current_tree",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ROUTEGEN_APPLY_CHILD_OUT", &out)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Until the first tree exists (the child starts and writes it all),
        // then a random instant.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !out.join("current").exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(rng.u64(0..300)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        if !out.join("current").exists() {
            continue;
        }
        // Before any cleanup: current is complete.
        let cfg = std::fs::read_to_string(out.join("current/haproxy.cfg")).unwrap();
        let check = std::process::Command::new("haproxy")
            .args(["-c", "-f"])
            .arg(out.join("current/haproxy.cfg"))
            .arg("-f")
            .arg(out.join("current/backends"))
            .output()
            .unwrap();
        assert!(check.status.success(), "round {round}: {check:?}");
        assert_eq!(
            std::fs::read_dir(out.join("current/maps")).unwrap().count(),
            201,
            "round {round}"
        );
        for e in std::fs::read_dir(out.join("current/certs")).unwrap() {
            let p = e.unwrap().path();
            if !p.ends_with(TREE_MARKER) {
                assert_eq!(mode_of(&p), 0o600, "{}", p.display());
            }
        }
        // Open re-reads it (every copy checked against its key) and cleans.
        let a = Applier::open_with(&out, Validator::None, 2).unwrap();
        let id = a.current_id().unwrap().to_string();
        assert!(cfg.contains("# gen"), "{cfg}");
        assert!(std::fs::read_dir(out.join("staging"))
            .unwrap()
            .next()
            .is_none());
        assert!(dir_names(&out).iter().all(|n| !n.starts_with('.')));
        assert_eq!(
            dir_names(&out)
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>(),
            linked_keys(&out),
            "round {round}"
        );
        last_gen = Some(id);
    }
    assert!(last_gen.is_some(), "the child never applied a tree");
}

// ------------------------------------------------------------------ measurement

/// A tree shaped like 10k Routes: haproxy.cfg ~200 KiB, backends/ 64 files
/// of ~190 KiB, certs/ 850 secret files of ~5 KiB, maps/ 3 files of
/// ~500 KiB, crt-list.txt ~100 KiB.
fn fleet_tree() -> OutputTree {
    fn text(seed: usize, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 64);
        let mut i = 0;
        while v.len() < len {
            v.extend_from_slice(
                format!("line {seed} {i} abcdefghijklmnopqrstuvwxyz0123456789\n").as_bytes(),
            );
            i += 1;
        }
        v
    }
    let mut t = OutputTree::new();
    t.insert("haproxy.cfg".into(), OutputFile::public(text(0, 200 << 10)));
    t.insert(
        "crt-list.txt".into(),
        OutputFile::public(text(1, 100 << 10)),
    );
    for i in 0..64 {
        t.insert(
            format!("backends/b{i:02}.cfg"),
            OutputFile::public(text(100 + i, 190 << 10)),
        );
    }
    for i in 0..850 {
        t.insert(
            format!("certs/ns{i}:route{i}.pem"),
            OutputFile::secret(text(1000 + i, 5 << 10)),
        );
    }
    for (i, m) in ["http.map", "https.map", "passthrough.map"]
        .iter()
        .enumerate()
    {
        t.insert(
            format!("maps/{m}"),
            OutputFile::public(text(10 + i, 500 << 10)),
        );
    }
    t
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// `cargo test --release --test apply -- --ignored --nocapture measure_apply`
#[test]
#[ignore = "measurement: prints figures"]
fn measure_apply_of_a_10k_route_tree() {
    let dir = tempfile::tempdir_in(std::env::var("MEASURE_DIR").unwrap_or("/tmp".into())).unwrap();
    let out = dir.path().join("out");
    let mut a = Applier::open_with(&out, Validator::None, 3).unwrap();
    let mut t = fleet_tree();
    let bytes: usize = t.values().map(|f| f.contents.len()).sum();
    let started = std::time::Instant::now();
    applied(a.apply(&t));
    let first = started.elapsed().as_secs_f64();
    println!(
        "tree: {} files, {:.1} MiB; first apply (everything hashed and written): {:.1} ms  {:?}",
        t.len(),
        bytes as f64 / (1 << 20) as f64,
        first * 1e3,
        stats(&a)
    );
    let (mut total, mut staging, mut syncing, mut swap, mut pruning) =
        (vec![], vec![], vec![], vec![], vec![]);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let mut last = StagingStats::default();
    for n in 0..20 {
        // One backends file and one map change; the rest keeps its Arcs.
        let b = format!("backends/b{:02}.cfg", n % 64);
        let mut v = t[&b].contents.to_vec();
        v.extend_from_slice(format!("# change {n}\n").as_bytes());
        t.insert(b, OutputFile::public(v));
        let mut m = t["maps/https.map"].contents.to_vec();
        m.extend_from_slice(format!("host{n}.example.com be_{n}\n").as_bytes());
        t.insert("maps/https.map".into(), OutputFile::public(m));
        let started = std::time::Instant::now();
        applied(a.apply(&t));
        total.push(ms(started.elapsed()));
        last = stats(&a);
        staging.push(ms(last.staging));
        syncing.push(ms(last.syncing));
        swap.push(ms(last.swap));
        pruning.push(ms(last.pruning));
    }
    // What one fsync costs on this file system right now.
    let mut fsync = vec![];
    for i in 0..20 {
        let p = dir.path().join(format!("probe{i}"));
        let started = std::time::Instant::now();
        let f = std::fs::File::create(&p).unwrap();
        std::io::Write::write_all(&mut &f, b"x").unwrap();
        f.sync_all().unwrap();
        fsync.push(ms(started.elapsed()));
    }
    println!(
        "one backends file + one map changed, median of 20: apply {:.2} ms = staging {:.2} ms (of which fsyncs {:.2} ms) + rename/swap {:.2} ms + pruning {:.2} ms; min {:.2} max {:.2}",
        median(&mut total),
        median(&mut staging),
        median(&mut syncing),
        median(&mut swap),
        median(&mut pruning),
        total[0],
        total[total.len() - 1],
    );
    println!("  last: {last:?}");
    println!(
        "  one create+write+fsync on this file system now, median of 20: {:.2} ms",
        median(&mut fsync)
    );
    let mut unchanged = vec![];
    for _ in 0..20 {
        let started = std::time::Instant::now();
        assert_eq!(a.apply(&t).unwrap(), ApplyOutcome::Unchanged);
        unchanged.push(started.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "unchanged tree, median of 20: {:.3} ms",
        median(&mut unchanged)
    );
    // A certificate rotated: certs/ (850 files) is a new copy, 849 links.
    let mut rotated = vec![];
    for n in 0..10 {
        let c = format!("certs/ns{n}:route{n}.pem");
        let mut v = t[&c].contents.to_vec();
        v.extend_from_slice(b"# rotated\n");
        t.insert(c, OutputFile::secret(v));
        let started = std::time::Instant::now();
        applied(a.apply(&t));
        rotated.push(ms(started.elapsed()));
    }
    println!(
        "one certificate changed (certs/ rebuilt: {} links), median of 10: {:.2} ms",
        stats(&a).files_linked,
        median(&mut rotated)
    );
    // For comparison, what every apply cost before: sha256 of every file,
    // and the whole tree written with routegen_host::tree::write_tree (a temporary file,
    // fsync, rename and directory fsync per file).
    let started = std::time::Instant::now();
    for f in t.values() {
        std::hint::black_box(openssl::sha::sha256(f.bytes()));
    }
    let hash_all = ms(started.elapsed());
    let started = std::time::Instant::now();
    routegen_host::tree::write_tree(&t, &dir.path().join("full")).unwrap();
    println!(
        "before (every apply): sha256 of every file {hash_all:.1} ms + write_tree of the whole tree {:.1} ms",
        ms(started.elapsed())
    );
}

/// `..` below a link resolves from the link's target: a backends/ file
/// naming `../allowlists/x.txt` (relative to its own directory, HAProxy's
/// `default-path config`) misses through `backends -> ../../dirs/<key>`
/// and finds it when backends/ is a plain directory of the tree.
#[test]
fn plain_subdirectories_keep_dot_dot_inside_the_tree() {
    let mut t = split_tree(1, 1);
    t.insert(
        "backends/be.cfg".into(),
        OutputFile::public(
            "backend be\n    http-request deny unless { src -f ../allowlists/ns:r.txt }\n    http-request return status 200\n",
        ),
    );
    t.insert(
        "allowlists/ns:r.txt".into(),
        OutputFile::public("127.0.0.1\n"),
    );
    let dir = tempfile::tempdir().unwrap();

    let mut linked = open_linked(&dir.path().join("linked"), 3);
    match linked.apply(&t) {
        Err(ApplyError::Invalid { output, .. }) => {
            assert!(output.contains("../allowlists/ns:r.txt"), "{output}")
        }
        other => panic!("expected the link to break `..`, got {other:?}"),
    }

    let out = dir.path().join("plain");
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    a.set_plain_subdirs(["backends"]);
    let (first, _) = applied(a.apply(&t));
    let backends = out.join("trees").join(&first).join("backends");
    assert!(std::fs::symlink_metadata(&backends).unwrap().is_dir());
    assert_eq!(mode_of(&backends), 0o700);
    assert!(!backends.join(TREE_MARKER).exists());
    t.insert(
        "backends/other.cfg".into(),
        OutputFile::public("backend other\n    http-request return status 201\n"),
    );
    let (second, summary) = applied(a.apply(&t));
    assert_eq!(summary.added, ["backends/other.cfg"]);
    let s = stats(&a);
    assert_eq!((s.files_written, s.dirs_reused), (1, 3), "{s:?}");
    assert_eq!(
        ino(&backends.join("be.cfg")),
        ino(&out.join("trees").join(&second).join("backends/be.cfg"))
    );
    assert_eq!(a.apply(&t).unwrap(), ApplyOutcome::Unchanged);
    drop(a);
    // Read back on open like any other tree.
    let mut a = Applier::open(&out, &haproxy(), 3).unwrap();
    a.set_plain_subdirs(["backends"]);
    assert_eq!(a.apply(&t).unwrap(), ApplyOutcome::Unchanged);
    assert_eq!(
        routegen_host::tree::diff_tree(&t, &out.join("current")).unwrap(),
        ""
    );
}

#[test]
fn two_subdirectories_with_the_same_files_share_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = Applier::open_with(&out, Validator::None, 3).unwrap();
    let mut t = split_tree(1, 0);
    for sub in ["cas", "allowlists"] {
        t.insert(format!("{sub}/x.pem"), OutputFile::public("same\n"));
    }
    let (id, _) = applied(a.apply(&t));
    let s = stats(&a);
    assert_eq!((s.dirs_built, s.dirs_reused), (3, 1), "{s:?}");
    assert_eq!(link_of(&out, &id, "cas"), link_of(&out, &id, "allowlists"));
    drop(a);
    let mut a = Applier::open_with(&out, Validator::None, 3).unwrap();
    assert_eq!(a.apply(&t).unwrap(), ApplyOutcome::Unchanged);
}
