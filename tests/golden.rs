//! Golden trees: `testdata/<case>/input/` rendered with the flags in
//! `testdata/<case>/args` must equal `testdata/<case>/expected/` byte for
//! byte (and `testdata/<case>/stderr.txt` for rejections and warnings), and
//! every expected tree must pass the real `haproxy -c`.
//!
//! Regenerate after an intended change, then review `git diff testdata/`:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test --test golden
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(root().join("testdata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    cases.sort();
    cases
}

/// Every file below `dir`, by relative path.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    if !dir.exists() {
        return files;
    }
    for entry in walk(dir) {
        let rel = entry
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        files.insert(rel, std::fs::read(&entry).unwrap());
    }
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Render one case into `out`; returns stderr.
fn render_case(case: &Path, out: &Path, state: &Path) -> String {
    let args: Vec<String> = std::fs::read_to_string(case.join("args"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routegen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    let input = case.join("input");
    let output = cmd
        .current_dir(root())
        .arg("render")
        .arg("-f")
        .arg(input.strip_prefix(root()).unwrap())
        .arg("--out")
        .arg(out)
        .arg("--state-dir")
        .arg(state)
        .arg("--default-cert")
        .arg("testdata/certs/default.pem")
        .args(&args)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "render failed for {}: {stderr}",
        case.display()
    );
    stderr
}

fn haproxy_check(cfg: &Path) -> Result<(), String> {
    let out = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(cfg)
        .output()
        .map_err(|e| format!("cannot run haproxy (install it: apt-get install haproxy): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn golden_trees() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 30,
        "expected at least 30 golden cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut haproxy_runs = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let stderr = render_case(case, &out, &tmp.path().join("state"));
        let expected_dir = case.join("expected");
        if update {
            let _ = std::fs::remove_dir_all(&expected_dir);
            copy_tree(&out, &expected_dir);
            std::fs::write(case.join("stderr.txt"), &stderr).unwrap();
        } else {
            let got = read_tree(&out);
            let want = read_tree(&expected_dir);
            let got_names: Vec<_> = got.keys().collect();
            let want_names: Vec<_> = want.keys().collect();
            if got_names != want_names {
                failures.push(format!(
                    "{name}: files differ: got {got_names:?}, expected {want_names:?}"
                ));
            } else {
                for (file, bytes) in &got {
                    if want[file] != *bytes {
                        failures.push(format!("{name}: {file} differs from the golden copy"));
                    }
                }
            }
            let want_stderr = std::fs::read_to_string(case.join("stderr.txt")).unwrap_or_default();
            if stderr != want_stderr {
                failures.push(format!(
                    "{name}: stderr differs:\n--- expected\n{want_stderr}--- got\n{stderr}"
                ));
            }
        }
        haproxy_runs += 1;
        if let Err(e) = haproxy_check(&expected_dir.join("haproxy.cfg")) {
            failures.push(format!(
                "{name}: haproxy -c refused the expected tree:\n{e}"
            ));
        }
    }
    eprintln!(
        "{} golden cases, {haproxy_runs} haproxy -c runs",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} problem(s); if the change is intended run `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn copy_tree(from: &Path, to: &Path) {
    for file in walk(from) {
        let rel = file.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}
