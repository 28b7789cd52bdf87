//! The golden-tree harness shared by `crates/routegen/tests/golden.rs`
//! (HAProxy) and `crates/routegen/tests/golden_nginx.rs`: render every
//! `testdata/<case>/input/` with the flags in `testdata/<case>/args`
//! through the real binary ([`Golden::routegen`]), compare the
//! whole tree and stderr byte for byte, and run the target's own checker
//! on every expected tree. `UPDATE_GOLDEN=1` rewrites the expected side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::workspace_root;

/// One rendering target's golden layout.
pub struct Golden {
    /// The `routegen` binary: the calling test's
    /// `env!("CARGO_BIN_EXE_routegen")`.
    pub routegen: &'static str,
    /// Test name, for the regenerate hint (`cargo test --test <name>`).
    pub test: &'static str,
    /// Directory of the expected tree inside a case (`expected`, `expected-nginx`).
    pub expected_dir: &'static str,
    /// File holding the expected stderr inside a case.
    pub stderr_file: &'static str,
    /// Flags added after the case's own `args`.
    pub extra_args: &'static [&'static str],
    /// The real proxy's validator run on the expected tree directory.
    pub check: fn(&Path) -> Result<(), String>,
    /// What `check` is called, for messages.
    pub checker: &'static str,
}

/// Every `testdata/<case>/` with an `input/`, sorted.
pub fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("testdata"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input").is_dir())
        .collect();
    cases.sort();
    cases
}

/// Every file below `dir`, by relative path.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
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

/// Every file below `dir` (recursively), in no particular order.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
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

/// Render one case into `out` with the `routegen` binary; returns stderr.
pub fn render_case(
    routegen: &Path,
    case: &Path,
    out: &Path,
    state: &Path,
    extra_args: &[&str],
) -> String {
    let args: Vec<String> = std::fs::read_to_string(case.join("args"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let mut cmd = Command::new(routegen);
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    let input = case.join("input");
    let output = cmd
        .current_dir(workspace_root())
        .arg("render")
        .arg("-f")
        .arg(input.strip_prefix(workspace_root()).unwrap())
        .arg("--out")
        .arg(out)
        .arg("--state-dir")
        .arg(state)
        .arg("--default-cert")
        .arg("testdata/certs/default.pem")
        .args(&args)
        .args(extra_args)
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

/// Run every case for one target (see the module doc).
pub fn run_all(golden: &Golden) {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 30,
        "expected at least 30 golden cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut checker_runs = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let stderr = render_case(
            Path::new(golden.routegen),
            case,
            &out,
            &tmp.path().join("state"),
            golden.extra_args,
        );
        let expected_dir = case.join(golden.expected_dir);
        if update {
            let _ = std::fs::remove_dir_all(&expected_dir);
            copy_tree(&out, &expected_dir);
            std::fs::write(case.join(golden.stderr_file), &stderr).unwrap();
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
            let want_stderr =
                std::fs::read_to_string(case.join(golden.stderr_file)).unwrap_or_default();
            if stderr != want_stderr {
                failures.push(format!(
                    "{name}: stderr differs:\n--- expected\n{want_stderr}--- got\n{stderr}"
                ));
            }
        }
        checker_runs += 1;
        if let Err(e) = (golden.check)(&expected_dir) {
            failures.push(format!(
                "{name}: {} refused the expected tree:\n{e}",
                golden.checker
            ));
        }
    }
    eprintln!(
        "{} golden cases, {checker_runs} {} runs",
        cases.len(),
        golden.checker
    );
    assert!(
        failures.is_empty(),
        "{} problem(s); if the change is intended run `UPDATE_GOLDEN=1 cargo test --test {}` and review the diff:\n{}",
        failures.len(),
        golden.test,
        failures.join("\n")
    );
}

/// Copy every file below `from` to the same relative path below `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for file in walk(from) {
        let rel = file.strip_prefix(from).unwrap();
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
}
