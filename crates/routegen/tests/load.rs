//! Manifest loading: formats, errors, and hostile input never panicking.

use std::io::Write;

use routegen_core::admit::{admit_at, Reason};
use routegen_core::RouterSettings;
use routegen_host::source::files::{load_paths, load_str, LoadError};

const ROUTE: &str = "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: web\nspec:\n  host: www.example.com\n  to:\n    name: web\n";

#[test]
fn multi_document_list_and_default_namespace() {
    let text = format!(
        "{ROUTE}---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n    namespace: other\n- apiVersion: discovery.k8s.io/v1\n  kind: EndpointSlice\n  metadata:\n    name: web-1\n  addressType: IPv4\n  endpoints: []\n---\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
    );
    let loaded = load_str("mem.yaml", &text, "team").unwrap();
    let s = &loaded.snapshot;
    assert_eq!(s.routes.len(), 1);
    assert_eq!(s.routes[0].metadata.namespace.as_deref(), Some("team"));
    assert_eq!(s.services[0].namespace, "other");
    assert_eq!(s.endpoint_slices[0].namespace, "team");
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("kind Deployment"),
        "{:?}",
        loaded.warnings
    );
    assert!(
        loaded.warnings[0].contains("document 4"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn json_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
    std::fs::create_dir_all(dir.path().join("..data")).unwrap();
    std::fs::write(dir.path().join("a.yaml"), ROUTE).unwrap();
    std::fs::write(
        dir.path().join("sub/deeper/b.json"),
        r#"{"apiVersion":"route.openshift.io/v1","kind":"Route","metadata":{"name":"api","namespace":"x"},"spec":{"host":"api.example.com","to":{"name":"api"}}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("sub/c.yml"),
        ROUTE.replace("name: web\nspec", "name: c\nspec"),
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a manifest").unwrap();
    std::fs::write(
        dir.path().join("..data/hidden.yaml"),
        ROUTE.replace("name: web\nspec", "name: hidden\nspec"),
    )
    .unwrap();
    let loaded = load_paths(&[dir.path().to_path_buf()], "default").unwrap();
    let mut names: Vec<_> = loaded
        .snapshot
        .routes
        .iter()
        .map(|r| r.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["api", "c", "web"]);
}

#[test]
fn malformed_document_names_file_and_document() {
    let text = format!("{ROUTE}---\nkind: Route\nmetadata: {{name: [unclosed\n");
    match load_str("broken.yaml", &text, "default") {
        Err(LoadError::Document {
            path,
            document,
            message,
            ..
        }) => {
            assert_eq!(path, "broken.yaml");
            assert_eq!(document, 2);
            assert!(message.contains("invalid YAML"), "{message}");
        }
        other => panic!("expected a document error, got {other:?}"),
    }
    let err = load_str("s.yaml", "just a string\n", "default").unwrap_err();
    assert!(
        err.to_string()
            .contains("document 1: expected a Kubernetes object"),
        "{err}"
    );
    let err = load_str("k.yaml", "apiVersion: v1\nmetadata: {}\n", "default").unwrap_err();
    assert!(err.to_string().contains("kind is missing"), "{err}");
}

#[test]
fn truncated_yaml_is_an_error_not_a_panic() {
    for cut in [10, 37, 55, 80, ROUTE.len() - 3] {
        let text = format!("{ROUTE}---\n{}", &ROUTE[..cut]);
        let _ = load_str("t.yaml", &text, "default");
    }
    let err = load_str("t.yaml", "a: [1, 2\nb: {", "default").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("t.yaml: document 1: invalid YAML"),
        "{err}"
    );
}

#[test]
fn wrong_types_reject_only_that_route() {
    let text = format!(
        "{ROUTE}---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: typo\nspec:\n  host: [not, a, string]\n  to:\n    name: x\n---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: w\nspec:\n  host: w.example.com\n  to:\n    name: x\n    weight: heavy\n"
    );
    let loaded = load_str("types.yaml", &text, "default").unwrap();
    let verdicts = admit_at(&loaded.snapshot, &RouterSettings::default(), 0);
    assert_eq!(verdicts.len(), 3);
    let by_name = |n: &str| verdicts.iter().find(|v| v.key.name == n).unwrap();
    let typo = by_name("typo").rejection().unwrap();
    assert_eq!(typo.reason, Reason::ValidationFailed);
    assert!(typo.message.contains("spec.host"), "{}", typo.message);
    let w = by_name("w").rejection().unwrap();
    assert!(w.message.contains("spec.to.weight"), "{}", w.message);
    assert!(by_name("web").is_admitted());
}

#[test]
fn binary_garbage_is_refused() {
    let mut rng = fastrand::Rng::with_seed(42);
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let bytes: Vec<u8> = (0..4096).map(|_| rng.u8(..)).collect();
        let path = dir.path().join(format!("g{i}.yaml"));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(&bytes)
            .unwrap();
        assert!(load_paths(&[path], "default").is_err());
    }
    // Printable garbage: must not panic; either an error or a result.
    for _ in 0..50 {
        let text: String = (0..512)
            .map(|_| {
                rng.choice(b"{}[]:-,'\"&*!|>#%@ \n\tabc123".iter())
                    .map(|&b| b as char)
                    .unwrap()
            })
            .collect();
        let _ = load_str("p.yaml", &text, "default");
    }
}

#[test]
fn ten_megabyte_string_gives_a_clear_rejection() {
    let huge = "a".repeat(10 * 1024 * 1024);
    let text = ROUTE.replace("www.example.com", &huge);
    let loaded = load_str("huge.yaml", &text, "default").unwrap();
    let verdicts = admit_at(&loaded.snapshot, &RouterSettings::default(), 0);
    let r = verdicts[0].rejection().expect("rejected");
    assert_eq!(r.reason, Reason::InvalidHost);
    assert!(
        r.message.len() < 1000,
        "message must not echo the whole value"
    );
}

#[test]
fn ten_thousand_routes_in_one_list_and_as_documents() {
    let mut list = String::from("apiVersion: v1\nkind: List\nitems:\n");
    let mut docs = String::new();
    for i in 0..10_000 {
        list.push_str(&format!(
            "- apiVersion: route.openshift.io/v1\n  kind: Route\n  metadata:\n    name: r{i}\n    namespace: ns{}\n  spec:\n    host: r{i}.example.com\n    to:\n      name: svc\n",
            i % 50
        ));
        docs.push_str(&format!(
            "---\n{}",
            ROUTE
                .replace("name: web\nspec", &format!("name: d{i}\nspec"))
                .replace("www", &format!("d{i}"))
        ));
    }
    for text in [list, docs] {
        let loaded = load_str("big.yaml", &text, "default").unwrap();
        assert_eq!(loaded.snapshot.routes.len(), 10_000);
        let verdicts = admit_at(&loaded.snapshot, &RouterSettings::default(), 0);
        assert!(verdicts.iter().all(|v| v.is_admitted()));
    }
}

#[test]
fn missing_name_gets_a_generated_one_and_duplicates_keep_the_first() {
    let text = "apiVersion: route.openshift.io/v1\nkind: Route\nspec:\n  host: a.example.com\n  to:\n    name: a\n";
    let loaded = load_str("dir/My File.yaml", text, "default").unwrap();
    assert_eq!(
        loaded.snapshot.routes[0].metadata.name.as_deref(),
        Some("unnamed-my-file-1")
    );
    let dup = format!(
        "{ROUTE}---\n{}",
        ROUTE.replace("www.example.com", "other.example.com")
    );
    let loaded = load_str("d.yaml", &dup, "default").unwrap();
    assert_eq!(loaded.snapshot.routes.len(), 1);
    assert_eq!(
        loaded.snapshot.routes[0].spec.host.as_deref(),
        Some("www.example.com")
    );
    assert!(loaded
        .warnings
        .iter()
        .any(|w| w.contains("duplicate Route default/web")));
}
