//! Golden trees: `testdata/<case>/input/` rendered with the flags in
//! `testdata/<case>/args` must equal `testdata/<case>/expected/` byte for
//! byte (and `testdata/<case>/stderr.txt` for rejections and warnings), and
//! every expected tree must pass the real `haproxy -c` (`-f haproxy.cfg -f
//! backends`).
//!
//! Regenerate after an intended change, then review `git diff testdata/`:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test --test golden
//! ```

use std::path::Path;
use std::process::Command;

use routegen_testsupport::golden;

/// `haproxy -c -f <tree>/haproxy.cfg -f <tree>/backends`: the frontends
/// and, loaded after them, every backend file in lexical order.
fn haproxy_check(tree: &Path) -> Result<(), String> {
    let mut cmd = Command::new("haproxy");
    cmd.arg("-c");
    for path in routegen_host::apply::haproxy_config_paths(tree) {
        cmd.arg("-f").arg(path);
    }
    let out = cmd
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
    golden::run_all(&golden::Golden {
        routegen: env!("CARGO_BIN_EXE_routegen"),
        test: "golden",
        expected_dir: "expected",
        stderr_file: "stderr.txt",
        extra_args: &[],
        check: haproxy_check,
        checker: "haproxy -c",
    });
}
