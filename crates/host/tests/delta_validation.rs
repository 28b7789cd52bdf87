//! Delta validation is sound on real trees with the real HAProxy
//! (`ROUTEGEN_HAPROXY_BIN`, else `/usr/sbin/haproxy`): a golden tree with
//! one backend section or one certificate broken is refused by the full
//! check, refused with the same HAProxy message by the subset naming the
//! broken part, and accepted by the subset without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use routegen_host::apply::delta::validate_subset;
use routegen_host::apply::{haproxy_config_paths, validate_with};
use routegen_host::tree::write_tree;
use routegen_render::haproxy::subset::validation_subset;
use routegen_render::output::{OutputFile, OutputTree, TREE_MARKER};

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

fn haproxy_bin() -> PathBuf {
    std::env::var_os("ROUTEGEN_HAPROXY_BIN")
        .map_or_else(|| PathBuf::from("/usr/sbin/haproxy"), PathBuf::from)
}

/// `testdata/<case>/expected/` as the renderer made it (keys secret).
fn golden(case: &str) -> OutputTree {
    read_tree(&Path::new(TESTDATA).join(case).join("expected"))
}

/// The tree written in `root` (keys, under `certs/`, secret).
fn read_tree(root: &Path) -> OutputTree {
    let mut tree = OutputTree::new();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.unwrap();
        if !entry.file_type().is_file() || entry.file_name() == TREE_MARKER {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap();
        let rel = rel.to_str().unwrap().to_string();
        let contents = std::fs::read(entry.path()).unwrap();
        let secret = rel.starts_with("certs/");
        tree.insert(rel, OutputFile::shared(contents.into(), secret));
    }
    assert!(tree.contains_key("haproxy.cfg"), "{}", root.display());
    tree
}

/// The full validation: the whole tree written and checked as the
/// applier checks a staged tree.
fn validate_full(tree: &OutputTree) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    write_tree(tree, dir.path()).unwrap();
    validate_with(&haproxy_bin(), &haproxy_config_paths(dir.path())).unwrap()
}

fn validate(tree: &OutputTree, backends: &[&str], certificates: &[&str]) -> Result<(), String> {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let subset = validation_subset(tree, &names(backends), &names(certificates)).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let verdict = validate_subset(&haproxy_bin(), &subset, scratch.path()).unwrap();
    // The scratch tree is gone, whatever the verdict.
    assert_eq!(std::fs::read_dir(scratch.path()).unwrap().count(), 0);
    verdict
}

/// HAProxy's reasons, without what differs between two directories: the
/// text after the `[file:line] : ` of each located alert.
fn reasons(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.contains("[ALERT]"))
        .filter_map(|l| l.split_once("] : ").map(|(_, reason)| reason.to_string()))
        .collect()
}

fn replace(tree: &mut OutputTree, path: &str, edit: impl FnOnce(String) -> String) {
    let file = &tree[path];
    let text = edit(String::from_utf8(file.bytes().to_vec()).unwrap());
    let secret = file.secret;
    tree.insert(
        path.into(),
        OutputFile::shared(text.into_bytes().into(), secret),
    );
}

/// Two edge Routes, `shop/a` and `shop/b`, each with its certificate.
const CASE: &str = "edge-shared-cert-no-h2";
const BACKEND_A: &str = "be_edge_http:shop:a";
const BACKEND_B: &str = "be_edge_http:shop:b";
const CERT_A: &str = "certs/shop:a.pem";
const CERT_B: &str = "certs/shop:b.pem";

#[test]
fn delta_accepts_the_parts_of_a_good_tree() {
    let tree = golden(CASE);
    assert_eq!(validate_full(&tree), Ok(()));
    assert_eq!(validate(&tree, &[], &[]), Ok(()));
    assert_eq!(
        validate(&tree, &[BACKEND_A, BACKEND_B], &[CERT_A, CERT_B]),
        Ok(())
    );
    // A reencrypt backend: its CA file comes with it.
    let tree = golden("reencrypt-destination-ca");
    assert_eq!(
        validate(&tree, &["be_secure:pay:api"], &["certs/pay:api.pem"]),
        Ok(())
    );
}

#[test]
fn delta_refuses_a_broken_backend_section_as_the_full_check_does() {
    let mut tree = golden(CASE);
    // An unknown keyword on the server line of backend b only.
    replace(&mut tree, "backends/routes-000.cfg", |text| {
        let (before, after) = text.split_once(&format!("backend {BACKEND_B}")).unwrap();
        let after = after.replacen(" weight 1", " weight 1 no-such-keyword", 1);
        format!("{before}backend {BACKEND_B}{after}")
    });
    let full = validate_full(&tree).unwrap_err();
    let subset = validate(&tree, &[BACKEND_B], &[]).unwrap_err();
    assert!(!reasons(&full).is_empty(), "{full}");
    assert_eq!(
        reasons(&subset),
        reasons(&full),
        "{subset}\n--- full:\n{full}"
    );
    assert!(reasons(&subset)[0].contains(BACKEND_B), "{subset}");
    assert!(reasons(&subset)[0].contains("no-such-keyword"), "{subset}");
    assert_eq!(validate(&tree, &[BACKEND_A], &[CERT_A, CERT_B]), Ok(()));
}

#[test]
fn delta_refuses_a_broken_certificate_as_the_full_check_does() {
    let mut tree = golden(CASE);
    // A key that is not the certificate's.
    let certs = Path::new(TESTDATA).join("certs");
    let key = std::fs::read_to_string(certs.join("www.key")).unwrap();
    let cert = std::fs::read_to_string(certs.join("shared.crt")).unwrap();
    replace(&mut tree, CERT_B, |_| format!("{key}{cert}"));
    let full = validate_full(&tree).unwrap_err();
    let subset = validate(&tree, &[], &[CERT_B]).unwrap_err();
    assert!(!reasons(&full).is_empty(), "{full}");
    assert_eq!(
        reasons(&subset),
        reasons(&full),
        "{subset}\n--- full:\n{full}"
    );
    assert!(reasons(&subset)[0].contains(CERT_B), "{subset}");
    assert_eq!(validate(&tree, &[BACKEND_A, BACKEND_B], &[CERT_A]), Ok(()));
}

#[test]
fn delta_refuses_a_broken_ca_file_with_its_backend() {
    let mut tree = golden("reencrypt-destination-ca");
    replace(&mut tree, "cas/pay:api.pem", |_| {
        "not a certificate\n".into()
    });
    let full = validate_full(&tree).unwrap_err();
    let subset = validate(&tree, &["be_secure:pay:api"], &[]).unwrap_err();
    assert_eq!(
        reasons(&subset),
        reasons(&full),
        "{subset}\n--- full:\n{full}"
    );
    assert!(reasons(&subset)[0].contains("cas/pay:api.pem"), "{subset}");
    assert_eq!(validate(&tree, &[], &["certs/pay:api.pem"]), Ok(()));
}

/// The figure in BENCHMARKS.md ("Delta validation"): `haproxy -c` of the
/// whole tree in `ROUTEGEN_DELTA_TREE` (a rendered fleet) against
/// [`validate_subset`] of its first reencrypt backend with a CA file and
/// its first crt-list certificate; medians of 5. Run with
/// `ROUTEGEN_DELTA_TREE=DIR cargo test --release -p routegen-host --test
/// delta_validation -- --ignored --nocapture`.
#[test]
#[ignore = "measurement: needs a rendered fleet in ROUTEGEN_DELTA_TREE"]
fn delta_validation_cost() {
    use std::time::{Duration, Instant};
    let dir = PathBuf::from(std::env::var_os("ROUTEGEN_DELTA_TREE").expect("ROUTEGEN_DELTA_TREE"));
    let tree = read_tree(&dir);
    let backend = tree
        .iter()
        .filter(|(p, _)| p.starts_with("backends/routes-"))
        .flat_map(|(_, f)| std::str::from_utf8(f.bytes()).unwrap().split("\n\n"))
        .find(|section| section.contains(" ca-file "))
        .and_then(|section| {
            section
                .lines()
                .find_map(|l| l.strip_prefix("backend ")?.split(' ').next())
        })
        .expect("a reencrypt backend with a CA file")
        .to_string();
    let certificate = std::str::from_utf8(tree["crt-list.txt"].bytes())
        .unwrap()
        .split_whitespace()
        .next()
        .expect("a crt-list line")
        .to_string();
    let subset = validation_subset(
        &tree,
        &BTreeSet::from([backend.clone()]),
        &BTreeSet::from([certificate.clone()]),
    )
    .unwrap();
    let median = |mut runs: Vec<Duration>| {
        runs.sort();
        runs[runs.len() / 2]
    };
    let time = |f: &dyn Fn() -> Result<(), String>| {
        median(
            (0..5)
                .map(|_| {
                    let start = Instant::now();
                    f().unwrap();
                    start.elapsed()
                })
                .collect(),
        )
    };
    let full = time(&|| validate_with(&haproxy_bin(), &haproxy_config_paths(&dir)).unwrap());
    let scratch = tempfile::tempdir().unwrap();
    let delta = time(&|| validate_subset(&haproxy_bin(), &subset, scratch.path()).unwrap());
    let start = Instant::now();
    for _ in 0..5 {
        validation_subset(
            &tree,
            &BTreeSet::from([backend.clone()]),
            &BTreeSet::from([certificate.clone()]),
        )
        .unwrap();
    }
    let cut = start.elapsed() / 5;
    println!(
        "{} files; subset of {backend} and {certificate}: {} files\n\
         full haproxy -c: {full:?} (median of 5)\n\
         validate_subset: {delta:?} (median of 5; write, haproxy -c, remove)\n\
         validation_subset: {cut:?} (mean of 5)",
        tree.len(),
        subset.len()
    );
    if let Some(out) = std::env::var_os("ROUTEGEN_DELTA_SUBSET_OUT") {
        write_tree(&subset, Path::new(&out)).unwrap();
    }
}
