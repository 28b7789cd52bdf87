//! `routegen check` end to end: output formats and exit codes.

use std::io::Write;
use std::process::{Command, Stdio};

fn routegen() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routegen"));
    // Keep the environment from changing flags under test.
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

fn examples() -> String {
    format!("{}/../../examples", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn examples_text_output_and_exit_1() {
    let out = routegen()
        .args(["check", "-f", &examples()])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "one example Route is rejected on purpose"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("marketing/promo")
        && l.contains("HostAlreadyClaimed")
        && l.contains("shop/storefront")));
    assert!(
        lines.iter().filter(|l| l.contains("Admitted")).count() == 7,
        "{stdout}"
    );
}

#[test]
fn json_output_has_exactly_the_spec_fields() {
    let out = routegen()
        .args(["check", "-f", &examples(), "--output", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let array = value.as_array().unwrap();
    assert_eq!(array.len(), 8);
    for item in array {
        let mut keys: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "admitted",
                "host",
                "message",
                "name",
                "namespace",
                "reason",
                "warnings"
            ]
        );
        assert!(item["warnings"].is_array());
    }
    let promo = array.iter().find(|i| i["name"] == "promo").unwrap();
    assert_eq!(promo["admitted"], false);
    assert_eq!(promo["reason"], "HostAlreadyClaimed");
    let blog = array.iter().find(|i| i["name"] == "blog").unwrap();
    assert_eq!(blog["admitted"], true);
    assert!(blog["reason"].is_null());
}

#[test]
fn all_admitted_exits_0_and_stdin_works() {
    let manifest = "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: a\nspec:\n  subdomain: shop\n  to:\n    name: a\n";
    let mut child = routegen()
        .args([
            "check",
            "-f",
            "-",
            "--namespace",
            "team",
            "--router-domain",
            "apps.example.com",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("team/a"), "{stdout}");
    assert!(stdout.contains("shop.apps.example.com"), "{stdout}");
}

#[test]
fn env_variables_set_flags() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.yaml");
    std::fs::write(&path, "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: a\nspec:\n  host: a.evil.com\n  to:\n    name: a\n").unwrap();
    let out = routegen()
        .args(["check", "-f"])
        .arg(&path)
        .env("ROUTEGEN_DENIED_DOMAINS", "evil.com,other.org")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("RouteNotAdmitted"));
}

#[test]
fn unreadable_input_exits_3_with_file_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "kind: Service\napiVersion: v1\n---\nkey: [unclosed\n",
    )
    .unwrap();
    let out = routegen()
        .args(["check", "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("bad.yaml: document 2: invalid YAML"),
        "{stderr}"
    );
    let out = routegen()
        .args(["check", "-f", "/nonexistent/path.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}
