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

use std::path::Path;

use routegen_testsupport::e2e::nginx_bin;
use routegen_testsupport::{config, golden};

/// `--run-dir` of every nginx golden tree.
const RUN_DIR: &str = "/tmp/routegen-golden-nginx-run";

/// `nginx -t` on a tree, with a fresh scratch prefix.
fn nginx_check(tree: &Path) -> Result<(), String> {
    std::fs::create_dir_all(RUN_DIR).unwrap();
    config::nginx_t(&nginx_bin(), tree)
}

#[test]
fn golden_nginx_trees() {
    std::fs::create_dir_all(RUN_DIR).unwrap();
    golden::run_all(&golden::Golden {
        routegen: env!("CARGO_BIN_EXE_routegen"),
        test: "golden_nginx",
        expected_dir: "expected-nginx",
        stderr_file: "stderr-nginx.txt",
        extra_args: &["--target", "nginx", "--run-dir", RUN_DIR],
        check: nginx_check,
        checker: "nginx -t",
    });
}
