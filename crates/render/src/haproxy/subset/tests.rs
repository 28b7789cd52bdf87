use std::collections::BTreeSet;
use std::path::Path;

use super::*;

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata");

/// Every file below `dir` by relative path, without the writer's marker;
/// files under `certs/` are secret, as the renderer makes them.
fn read_tree(dir: &Path) -> OutputTree {
    fn walk(root: &Path, dir: &Path, tree: &mut OutputTree) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, tree);
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            if rel == crate::output::TREE_MARKER {
                continue;
            }
            let contents = std::fs::read(&path).unwrap();
            let file = if rel.starts_with(CERTS_DIR) {
                OutputFile::secret(contents)
            } else {
                OutputFile::public(contents)
            };
            tree.insert(rel, file);
        }
    }
    let mut tree = OutputTree::new();
    walk(dir, dir, &mut tree);
    tree
}

/// Every `testdata/<case>/expected/` (the HAProxy goldens).
fn golden_trees() -> Vec<(String, OutputTree)> {
    let mut cases: Vec<_> = std::fs::read_dir(TESTDATA)
        .unwrap()
        .map(|e| e.unwrap().path().join("expected"))
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() > 30, "golden trees not found under {TESTDATA}");
    cases
        .iter()
        .map(|p| (p.display().to_string(), read_tree(p)))
        .collect()
}

/// The `backend <name>` lines of the files under `backends/` other than
/// `default.cfg` (read line by line, not through the module's parser).
fn route_backends(tree: &OutputTree) -> BTreeSet<String> {
    tree.iter()
        .filter(|(p, _)| p.starts_with("backends/") && p.as_str() != DEFAULT_BACKENDS_FILE)
        .flat_map(|(_, f)| {
            String::from_utf8(f.bytes().to_vec())
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        // `backend <name> [from <defaults>]`: the name is the first word.
        .filter_map(|l| {
            l.strip_prefix("backend ")?
                .split(' ')
                .next()
                .map(str::to_string)
        })
        .collect()
}

/// The tree of `tree`'s file `path` alone.
fn only(tree: &OutputTree, path: &str) -> OutputTree {
    OutputTree::from([(path.to_string(), tree[path].clone())])
}

fn files_under<'a>(tree: &'a OutputTree, dir: &str) -> BTreeSet<&'a str> {
    tree.keys()
        .filter(|p| p.starts_with(dir))
        .map(String::as_str)
        .collect()
}

#[test]
fn subset_of_every_golden_tree_with_all_or_nothing() {
    for (case, tree) in golden_trees() {
        let backends = route_backends(&tree);
        let certs: BTreeSet<String> = files_under(&tree, CERTS_DIR)
            .into_iter()
            .filter(|p| *p != DEFAULT_CERT_FILE)
            .map(str::to_string)
            .collect();

        // Everything named: the same backend files, crt-list and certificates.
        let all = validation_subset(&tree, &backends, &certs).unwrap();
        assert_eq!(route_backends(&all), backends, "{case}");
        // Chunk files without sections (a tree without Routes) are dropped.
        let with_sections: BTreeSet<&str> = files_under(&tree, "backends/")
            .into_iter()
            .filter(|p| *p == DEFAULT_BACKENDS_FILE || !route_backends(&only(&tree, p)).is_empty())
            .collect();
        assert_eq!(files_under(&all, "backends/"), with_sections, "{case}");
        for (path, file) in &all {
            if path.starts_with("backends/") || path == CRT_LIST {
                assert_eq!(file.bytes(), tree[path].bytes(), "{case}: {path}");
            } else {
                // Untouched files are shared, not copied.
                assert!(
                    std::sync::Arc::ptr_eq(&file.contents, &tree[path].contents),
                    "{case}: {path}"
                );
            }
        }
        // Every CA file of a golden tree is named by a section.
        assert_eq!(
            files_under(&all, CAS_DIR),
            files_under(&tree, CAS_DIR),
            "{case}"
        );
        assert_eq!(
            all.len(),
            tree.len() - files_under(&tree, "backends/").len() + with_sections.len(),
            "{case}"
        );

        // Nothing named: default.cfg's backends, an empty crt-list.
        let none = validation_subset(&tree, &BTreeSet::new(), &BTreeSet::new()).unwrap();
        assert_eq!(
            files_under(&none, "backends/"),
            BTreeSet::from([DEFAULT_BACKENDS_FILE]),
            "{case}"
        );
        assert_eq!(none[CRT_LIST].bytes(), b"", "{case}");
        assert_eq!(
            files_under(&none, CERTS_DIR),
            BTreeSet::from([DEFAULT_CERT_FILE]),
            "{case}"
        );
        assert!(files_under(&none, CAS_DIR).is_empty(), "{case}");
        for path in [
            "haproxy.cfg",
            "maps/http.map",
            "maps/https.map",
            "maps/passthrough.map",
        ] {
            assert!(none.contains_key(path), "{case}: {path}");
        }
    }
}

/// A tree with one chunk file of three sections, two CAs, two certificates.
fn small_tree() -> OutputTree {
    let mut t = OutputTree::new();
    let public = |s: &str| OutputFile::public(s);
    t.insert("haproxy.cfg".into(), public("global\n"));
    t.insert("maps/http.map".into(), public("a.example.com be_a\n"));
    t.insert(
        DEFAULT_BACKENDS_FILE.into(),
        public("global\n  default-path parent\n\nbackend be_no_route\n  mode http\n"),
    );
    t.insert(
        "backends/routes-000.cfg".into(),
        public(concat!(
            "# header\n",
            "\n# route ns/a host a path - termination reencrypt\nbackend be_a\n",
            "  server s 10.0.0.1:1 ssl verify required ca-file cas/ns:a.pem\n",
            "\n# route ns/b host b path - termination reencrypt\nbackend be_b\n",
            "  server s 10.0.0.2:1 ssl verify required ca-file cas/ns:b.pem\n",
            "\n# route ns/c host c path - termination http\nbackend be_c\n  mode http\n",
        )),
    );
    t.insert("backends/notes.txt".into(), public("not configuration\n"));
    t.insert("cas/ns:a.pem".into(), public("CA a\n"));
    t.insert("cas/ns:b.pem".into(), public("CA b\n"));
    t.insert(DEFAULT_CERT_FILE.into(), OutputFile::secret("default"));
    t.insert("certs/ns:a.pem".into(), OutputFile::secret("a"));
    t.insert("certs/ns:c.pem".into(), OutputFile::secret("c"));
    t.insert(
        CRT_LIST.into(),
        public("certs/ns:a.pem [alpn h2,http/1.1] a\ncerts/ns:c.pem c\n"),
    );
    t
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn subset_keeps_whole_named_sections_their_cas_and_certificates() {
    let tree = small_tree();
    let s = validation_subset(&tree, &names(&["be_b"]), &names(&["certs/ns:c.pem"])).unwrap();
    assert_eq!(
        std::str::from_utf8(s["backends/routes-000.cfg"].bytes()).unwrap(),
        "# header\n\n# route ns/b host b path - termination reencrypt\nbackend be_b\n  server s 10.0.0.2:1 ssl verify required ca-file cas/ns:b.pem\n\n"
    );
    assert_eq!(s[CRT_LIST].bytes(), b"certs/ns:c.pem c\n");
    let paths: Vec<&str> = s.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            DEFAULT_BACKENDS_FILE,
            "backends/routes-000.cfg",
            "cas/ns:b.pem",
            DEFAULT_CERT_FILE,
            "certs/ns:c.pem",
            CRT_LIST,
            "haproxy.cfg",
            "maps/http.map",
        ]
    );
    assert!(s["certs/ns:c.pem"].secret && s[DEFAULT_CERT_FILE].secret);
    // Naming default.cfg's backends is allowed: they are always there.
    validation_subset(&tree, &names(&["be_no_route"]), &BTreeSet::new()).unwrap();
}

#[test]
fn subset_refuses_missing_names_and_unknown_formats() {
    let tree = small_tree();
    let none = BTreeSet::new();
    assert_eq!(
        validation_subset(&tree, &names(&["be_a", "be_x"]), &none),
        Err(SubsetError::MissingBackend("be_x".into()))
    );
    for cert in ["certs/ns:x.pem", "cas/ns:a.pem", "haproxy.cfg"] {
        assert_eq!(
            validation_subset(&tree, &none, &names(&[cert])),
            Err(SubsetError::MissingCertificate(cert.into()))
        );
    }
    let mut odd = tree.clone();
    odd.insert(
        "backends/routes-001.cfg".into(),
        OutputFile::public("# h\n\nbackend be_d\n  mode http\nuserlist u\n  user x\n"),
    );
    assert!(matches!(
        validation_subset(&odd, &none, &none),
        Err(SubsetError::Malformed { path, .. }) if path == "backends/routes-001.cfg"
    ));
    let mut twice = tree.clone();
    twice.insert(
        "backends/routes-001.cfg".into(),
        OutputFile::public("\nbackend be_a\n  mode http\n"),
    );
    assert!(matches!(
        validation_subset(&twice, &none, &none),
        Err(SubsetError::Malformed { message, .. }) if message.contains("be_a")
    ));
}

#[test]
fn subset_keeps_a_chunk_header_verbatim() {
    let mut tree = small_tree();
    tree.insert(
        "backends/routes-000.cfg".into(),
        OutputFile::public(
            "# h\nglobal\n  default-path parent\n\n# route ns/a\nbackend be_a\n  mode http\n",
        ),
    );
    let s = validation_subset(&tree, &names(&["be_a"]), &BTreeSet::new()).unwrap();
    assert_eq!(
        s["backends/routes-000.cfg"].bytes(),
        tree["backends/routes-000.cfg"].bytes()
    );
}
