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

use std::path::Path;
use std::process::Command;

#[path = "support/golden.rs"]
mod golden;

fn haproxy_check(tree: &Path) -> Result<(), String> {
    let cfg = tree.join("haproxy.cfg");

    let out = Command::new("haproxy")
        .arg("-c")
        .arg("-f")
        .arg(&cfg)
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
        test: "golden",
        expected_dir: "expected",
        stderr_file: "stderr.txt",
        extra_args: &[],
        check: haproxy_check,
        checker: "haproxy -c",
    });
}
