//! Every admitted case of the ported OpenShift TLS table
//! (`routegen_core::testkit::openshift`) rendered into one tree by
//! `routegen render`, and that tree accepted by the real `haproxy -c`
//! (`haproxy` on PATH, or `ROUTEGEN_HAPROXY_BIN`): the cleaned key and chain
//! (dropped blocks, rewritten EC keys, the first of several keys) are what
//! lands in `certs/`, and HAProxy loads them.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use routegen_core::testkit::openshift::{extended_validation_cases, Expect, Origin};
use routegen_testsupport::config;

#[test]
fn admitted_openshift_tls_cases_render_a_tree_haproxy_accepts() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: Vec<_> = extended_validation_cases(2048)
        .into_iter()
        .filter(|c| c.expect == Expect::Admitted)
        .collect();
    assert!(cases.len() >= 35, "{} admitted cases", cases.len());
    // One host per case: in one snapshot the Go test's shared hosts
    // (www.example.com) would contest each other; a certificate that does
    // not name its host is only a warning.
    let mut manifest = String::new();
    for case in &cases {
        let mut route = case.route.clone();
        let name = route.metadata.name.clone().unwrap();
        route.spec.host = Some(format!("{name}.tls.test"));
        manifest.push_str("---\n");
        manifest.push_str(&serde_json::to_string(&route_manifest(&route)).unwrap());
        manifest.push('\n');
    }
    let input = tmp.path().join("routes.yaml");
    fs::write(&input, manifest).unwrap();
    let out_dir = tmp.path().join("out");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routegen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .arg("render")
        .arg("-f")
        .arg(&input)
        .arg("--state-dir")
        .arg(tmp.path().join("state"))
        .arg("--run-dir")
        .arg(tmp.path().join("run"))
        .arg("--out")
        .arg(&out_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run routegen");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("rejected:"), "{stderr}");

    let bin = std::env::var("ROUTEGEN_HAPROXY_BIN").unwrap_or_else(|_| "haproxy".into());
    let check = config::haproxy_c(Path::new(&bin), &out_dir);
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "haproxy -c failed:\n{check_err}");

    // The cleaned keys: one PKCS#8 key per certificate file, no stray labels.
    let mut pems = 0;
    for entry in fs::read_dir(out_dir.join("certs")).unwrap() {
        let text = fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(!text.contains("EC PARAMETERS"), "{text}");
        assert!(!text.contains("ECDSA PRIVATE KEY"), "{text}");
        assert!(!text.contains("UNRECOGNIZED"), "{text}");
        assert!(text.matches("PRIVATE KEY-----\n").count() <= 2, "{text}");
        pems += 1;
    }
    let with_cert = cases
        .iter()
        .filter(|c| {
            c.route
                .spec
                .tls
                .as_ref()
                .is_some_and(|t| t.certificate.is_some())
        })
        .count();
    assert!(
        pems > with_cert / 2,
        "{pems} files for {with_cert} certificates"
    );
    assert!(cases.iter().any(|c| c.origin == Origin::Extra));
}

/// The Route as a manifest (apiVersion and kind included).
fn route_manifest(route: &routegen_core::model::Route) -> serde_json::Value {
    let mut value = serde_json::to_value(route).unwrap();
    let map = value.as_object_mut().unwrap();
    map.insert("apiVersion".into(), "route.openshift.io/v1".into());
    map.insert("kind".into(), "Route".into());
    value
}
