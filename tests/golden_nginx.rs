//! nginx golden trees: every case of `testdata/` (the same inputs and
//! `args` as `tests/golden.rs`) rendered with `--target nginx` must equal
//! `testdata/<case>/expected-nginx/` byte for byte (and
//! `testdata/<case>/stderr-nginx.txt`: rejections, warnings and what nginx
//! cannot express), and every expected tree must pass the real `nginx -t`.
//!
//! Regenerate after an intended change, then review `git diff testdata/`:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test --test golden_nginx
//! ```
//!
//! The trees are rendered with `--run-dir` [`RUN_DIR`] (the internal Unix
//! sockets live there and `nginx -t` binds them, so the directory must
//! exist while checking). `nginx -t` runs as any user: `-p` names a
//! scratch prefix for the pid file and temporary directories. Binary:
//! `ROUTEGEN_NGINX_BIN`, else `/usr/sbin/nginx`, else `nginx` on PATH; the
//! stream module must be installed (Debian: libnginx-mod-stream).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `--run-dir` of every nginx golden tree.
const RUN_DIR: &str = "/tmp/routegen-golden-nginx-run";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn nginx_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("ROUTEGEN_NGINX_BIN") {
        return bin.into();
    }
    let debian = Path::new("/usr/sbin/nginx");
    if debian.exists() {
        return debian.into();
    }
    "nginx".into()
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

/// Render one case into `out` for nginx; returns stderr.
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
        .arg("--target")
        .arg("nginx")
        .arg("--run-dir")
        .arg(RUN_DIR)
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

/// `nginx -t` on a tree, with a fresh scratch prefix.
fn nginx_check(tree: &Path) -> Result<(), String> {
    std::fs::create_dir_all(RUN_DIR).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(nginx_bin())
        .arg("-t")
        .arg("-q")
        .arg("-e")
        .arg("stderr")
        .arg("-p")
        .arg(format!("{}/", scratch.path().display()))
        .arg("-c")
        .arg(tree.join("nginx.conf"))
        .output()
        .map_err(|e| {
            format!("cannot run nginx (install it: apt-get install nginx-light libnginx-mod-stream): {e}")
        })?;
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
fn golden_nginx_trees() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 30,
        "expected at least 30 golden cases, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    let mut nginx_runs = 0;
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let stderr = render_case(case, &out, &tmp.path().join("state"));
        let expected_dir = case.join("expected-nginx");
        if update {
            let _ = std::fs::remove_dir_all(&expected_dir);
            copy_tree(&out, &expected_dir);
            std::fs::write(case.join("stderr-nginx.txt"), &stderr).unwrap();
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
                std::fs::read_to_string(case.join("stderr-nginx.txt")).unwrap_or_default();
            if stderr != want_stderr {
                failures.push(format!(
                    "{name}: stderr differs:\n--- expected\n{want_stderr}--- got\n{stderr}"
                ));
            }
        }
        nginx_runs += 1;
        if let Err(e) = nginx_check(&expected_dir) {
            failures.push(format!("{name}: nginx -t refused the expected tree:\n{e}"));
        }
    }
    eprintln!(
        "{} nginx golden cases, {nginx_runs} nginx -t runs",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "{} problem(s); if the change is intended run `UPDATE_GOLDEN=1 cargo test --test golden_nginx` and review the diff:\n{}",
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
