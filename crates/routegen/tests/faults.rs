//! Fault tests (issue 8, parts 4 and 6): disk full, HAProxy missing or
//! crashing, master socket gone, config directory read-only, planted
//! symbolic links, foreign files. In every case the error is clear and
//! names the path or rule, `current` stays the last good tree, and nothing
//! half-written is ever made current.
//!
//! Disk full uses a 64 KiB tmpfs (`mount -t tmpfs`, root only); where
//! mounting is not permitted the test says so and is skipped.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use routegen_host::apply::{Applier, ApplyError, ApplyOutcome};
use routegen_host::reload::{ReloadMethod, ReloadOptions, Reloader};
use routegen_render::output::{self, OutputFile, OutputTree, TREE_MARKER};

use routegen_testsupport::config;

fn good(n: u32) -> OutputTree {
    config::minimal_tree(&format!("    http-request return status {}\n", 200 + n))
}

/// The whole configuration of `current`: haproxy.cfg and backends/*.cfg.
fn current_cfg(out: &Path) -> String {
    config::whole_config(&out.join("current"))
}

fn applier(out: &Path) -> Applier {
    Applier::open(out, Path::new("haproxy"), 3).unwrap()
}

/// Every tree under trees/ is complete (validated); staging holds nothing
/// that `current` points at.
fn assert_current_is_complete(out: &Path, expect: &str) {
    let link = std::fs::read_link(out.join("current")).unwrap();
    assert!(link.starts_with("trees"), "{link:?}");
    let cfg = current_cfg(out);
    assert!(cfg.contains(expect), "{cfg}");
    assert!(out.join("current/backends").is_dir());
    let status = config::haproxy_c(Path::new("haproxy"), &out.join("current"));
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

struct Tmpfs(PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn mount_tmpfs(dir: &Path, size: &str) -> Option<Tmpfs> {
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
        ])
        .arg(dir)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if ok {
        Some(Tmpfs(dir.to_path_buf()))
    } else {
        eprintln!(
            "SKIP: cannot mount a tmpfs at {} (not root or not permitted)",
            dir.display()
        );
        None
    }
}

#[test]
fn disk_full_keeps_the_last_good_tree_current() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let Some(_fs) = mount_tmpfs(&mnt, "64k") else {
        return;
    };
    let out = mnt.join("out");
    let mut a = applier(&out);
    let first = match a.apply(&good(0)).unwrap() {
        ApplyOutcome::Applied { id, .. } => id,
        other => panic!("{other:?}"),
    };
    // A tree larger than the file system.
    let mut big = good(1);
    big.insert(
        "maps/big.map".into(),
        OutputFile::public(vec![b'a'; 200 * 1024]),
    );
    let err = a.apply(&big).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("No space left on device") && msg.contains(&out.display().to_string()),
        "{msg}"
    );
    assert_eq!(a.current_id(), Some(first.as_str()));
    assert_current_is_complete(&out, "status 200");
    // Space comes back (the staged leftovers are removed on the next open):
    // the next tree applies.
    drop(a);
    let mut a = applier(&out);
    assert!(std::fs::read_dir(out.join("staging"))
        .unwrap()
        .next()
        .is_none());
    assert!(matches!(
        a.apply(&good(2)).unwrap(),
        ApplyOutcome::Applied { .. }
    ));
    assert_current_is_complete(&out, "status 202");
}

#[test]
fn haproxy_missing_is_a_clear_error_and_nothing_becomes_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = applier(&out);
    a.apply(&good(0)).unwrap();
    drop(a);
    let missing = dir.path().join("no-such-haproxy");
    let mut a = Applier::open(&out, &missing, 3).unwrap();
    let err = a.apply(&good(1)).unwrap_err();
    assert!(matches!(err, ApplyError::HaproxyMissing { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot run") && msg.contains("no-such-haproxy"),
        "{msg}"
    );
    assert_current_is_complete(&out, "status 200");
}

#[test]
fn haproxy_crashing_on_check_never_makes_a_tree_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = applier(&out);
    a.apply(&good(0)).unwrap();
    drop(a);
    let fake = dir.path().join("haproxy-segv");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'about to crash' >&2\nkill -SEGV $$\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut a = Applier::open(&out, &fake, 3).unwrap();
    let err = a.apply(&good(1)).unwrap_err();
    match &err {
        ApplyError::Invalid { output, kept, .. } => {
            assert!(output.contains("about to crash"), "{output}");
            assert!(kept.starts_with(out.join("failed")), "{kept:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("haproxy -c refused tree"), "{err}");
    assert_current_is_complete(&out, "status 200");
}

#[test]
fn master_socket_gone_fails_clearly_and_the_tree_stays_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = applier(&out);
    a.apply(&good(0)).unwrap();
    a.apply(&good(1)).unwrap();
    let socket = dir.path().join("master.sock");
    // A socket file left behind by a dead master: nobody listens.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for path in [socket.clone(), dir.path().join("never-existed.sock")] {
        let reloader = Reloader::new(
            ReloadMethod::MasterCli(path.clone()),
            ReloadOptions {
                confirm_timeout: std::time::Duration::from_secs(1),
                io_timeout: std::time::Duration::from_millis(500),
                ..ReloadOptions::default()
            },
        );
        let started = std::time::Instant::now();
        let err = rt.block_on(reloader.reload()).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains("connect"),
            "{msg}"
        );
    }
    assert_current_is_complete(&out, "status 201");
}

#[test]
fn read_only_config_dir_is_a_clear_error_and_the_tree_stays_current() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("ro");
    let Some(_fs) = mount_tmpfs(&mnt, "1m") else {
        return;
    };
    let out = mnt.join("out");
    let mut a = applier(&out);
    a.apply(&good(0)).unwrap();
    let remount = |opt: &str| {
        assert!(Command::new("mount")
            .args(["-o", &format!("remount,{opt}")])
            .arg(&mnt)
            .status()
            .unwrap()
            .success())
    };
    remount("ro");
    let err = a.apply(&good(1)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("Read-only file system") && msg.contains(&out.display().to_string()),
        "{msg}"
    );
    assert_current_is_complete(&out, "status 200");
    // Opening a read-only output directory works (it can serve), and
    // applying still refuses clearly.
    drop(a);
    let err = Applier::open(&out, Path::new("haproxy"), 3)
        .and_then(|mut a| a.apply(&good(2)).map(|_| ()))
        .unwrap_err();
    assert!(err.to_string().contains("Read-only file system"), "{err}");
    remount("rw");
    let mut a = applier(&out);
    a.apply(&good(3)).unwrap();
    assert_current_is_complete(&out, "status 203");
}

// ------------------------------------------------ file-system safety (part 4)

#[test]
fn symlinks_planted_in_the_output_layout_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep.txt"), "mine").unwrap();

    // trees/ (and staging/, failed/) as a symlink: open refuses, naming it.
    for sub in ["trees", "staging", "failed"] {
        let out = dir.path().join(format!("out-{sub}"));
        std::fs::create_dir(&out).unwrap();
        std::os::unix::fs::symlink(&victim, out.join(sub)).unwrap();
        let err = Applier::open(&out, Path::new("haproxy"), 3).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains(sub) && msg.contains("symbolic link"),
            "{sub}: {msg}"
        );
    }
    // The output directory itself as a symlink.
    let link = dir.path().join("out-link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let err = Applier::open(&link, Path::new("haproxy"), 3).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");

    // A symlink planted inside a tree directory routegen writes into.
    let out = dir.path().join("plain");
    std::fs::create_dir(&out).unwrap();
    routegen_host::tree::write_tree(&good(0), &out).unwrap();
    std::fs::remove_dir_all(out.join("certs")).unwrap();
    std::os::unix::fs::symlink(&victim, out.join("certs")).unwrap();
    let err = routegen_host::tree::write_tree(&good(1), &out).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // A symlinked file (e.g. to a key elsewhere) is never written through.
    std::fs::remove_file(out.join("certs")).unwrap();
    std::fs::create_dir(out.join("certs")).unwrap();
    std::os::unix::fs::symlink(victim.join("keep.txt"), out.join("certs/key.pem")).unwrap();
    let err = routegen_host::tree::write_tree(&good(1), &out).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_to_string(victim.join("keep.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 1);
}

#[test]
fn foreign_files_and_dirs_are_never_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("README"), "operator's").unwrap();
    // Foreign things in every routegen sub-directory.
    for sub in ["trees", "staging", "failed"] {
        std::fs::create_dir_all(out.join(sub).join("00000000-foreign")).unwrap();
        std::fs::write(out.join(sub).join("00000000-foreign/data"), "x").unwrap();
        std::fs::write(out.join(sub).join("note.txt"), "x").unwrap();
    }
    let mut a = applier(&out);
    // Many applies: pruning (keep 3) and failed-tree pruning run each time.
    for n in 0..6 {
        a.apply(&good(n)).unwrap();
        let _ = a.apply(&config::minimal_tree(
            "    http-request no-such-directive\n",
        ));
        let _ = n;
    }
    drop(a);
    let _a = applier(&out); // staging cleanup on open
    assert!(out.join("README").exists());
    for sub in ["trees", "staging", "failed"] {
        assert!(
            out.join(sub).join("00000000-foreign/data").exists(),
            "{sub}/00000000-foreign was deleted"
        );
        assert!(out.join(sub).join("note.txt").exists());
    }
    // Routegen's own trees were pruned to `keep`.
    let ours = std::fs::read_dir(out.join("trees"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join(TREE_MARKER).exists())
        .count();
    assert_eq!(ours, 3);

    // write_tree refuses a non-empty directory it did not write.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("x.cfg"), "mine").unwrap();
    let err = routegen_host::tree::write_tree(&good(0), &foreign).unwrap_err();
    assert!(err.to_string().contains("not written by routegen"), "{err}");
    assert_eq!(
        std::fs::read_to_string(foreign.join("x.cfg")).unwrap(),
        "mine"
    );
}

#[test]
fn tree_paths_with_traversal_are_refused_before_the_disk_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    for bad in [
        "../escape.cfg",
        "certs/../../escape.pem",
        "/etc/passwd",
        "certs//x.pem",
        "./x",
        "a\nb",
        "a b",
        "",
    ] {
        let mut t = good(0);
        t.insert(bad.into(), OutputFile::public("x"));
        let err = routegen_host::tree::write_tree(&t, &out).unwrap_err();
        assert!(
            matches!(err, output::OutputError::Refused { .. }),
            "{bad:?}: {err}"
        );
        assert!(!out.exists(), "{bad:?}: the disk was touched");
        assert!(!dir.path().join("escape.cfg").exists());
    }
}

#[test]
fn modes_are_private_dirs_0700_keys_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut a = applier(&out);
    a.apply(&good(0)).unwrap();
    let mode = |p: PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    for d in [
        "",
        "trees",
        "staging",
        "failed",
        "current/",
        "current/certs",
        "current/backends",
    ] {
        assert_eq!(mode(out.join(d)), 0o700, "{d}");
    }
    assert_eq!(mode(out.join("current/certs/key.pem")), 0o600);
    assert_eq!(mode(out.join("current/haproxy.cfg")), 0o644);
    assert_eq!(mode(out.join("current/backends/routes-000.cfg")), 0o644);
}

// ------------------------------------------------------------ limits (part 5)

/// Run `routegen check -f <file>`, sampling the child's peak resident set
/// (VmHWM, KiB) until it exits. Returns (exit code, stderr, peak KiB).
fn check_with_peak(file: &Path) -> (Option<i32>, String, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_routegen"))
        .arg("check")
        .arg("-f")
        .arg(file)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            if let Some(kb) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "routegen check hung");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.code(), stderr, peak)
}

#[test]
fn a_100_mb_manifest_of_a_million_objects_is_refused_clearly_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.yaml");
    // 1,000,000 documents, 100 bytes each: 100 MB.
    let head = "---\nkind: Namespace\napiVersion: v1\nmetadata: {name: n, labels: {a: ";
    let doc = format!("{head}{}}}}}\n", "b".repeat(100 - head.len() - 3));
    assert_eq!(doc.len(), 100);
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for _ in 0..1_000_000 {
            std::io::Write::write_all(&mut w, doc.as_bytes()).unwrap();
        }
    }
    let (code, stderr, peak_kib) = check_with_peak(&file);
    eprintln!(
        "100 MB / 1,000,000 objects: exit {code:?}, peak RSS {} MiB",
        peak_kib / 1024
    );
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("huge.yaml")
            && stderr.contains(&format!(
                "more than {} objects in one load",
                routegen_host::source::files::MAX_OBJECTS
            )),
        "{stderr}"
    );
    // The input is 100 MB; the refusal must not cost more than a few times that.
    assert!(peak_kib < 600 * 1024, "peak RSS {peak_kib} KiB");
}

#[test]
fn a_manifest_over_the_file_size_cap_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sparse.yaml");
    // Sparse: no disk used, but larger than MAX_FILE_BYTES.
    let f = std::fs::File::create(&file).unwrap();
    f.set_len(routegen_host::source::files::MAX_FILE_BYTES as u64 + 1)
        .unwrap();
    drop(f);
    let (code, stderr, peak_kib) = check_with_peak(&file);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("sparse.yaml") && stderr.contains("limit for one manifest file"),
        "{stderr}"
    );
    eprintln!("over-size file: peak RSS {} MiB", peak_kib / 1024);
    assert!(
        peak_kib < 64 * 1024,
        "the file was read: peak RSS {peak_kib} KiB"
    );
}

#[test]
fn an_oversized_annotation_rejects_only_its_route_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ann.yaml");
    let big = "x".repeat(300 * 1024);
    std::fs::write(
        &file,
        format!(
            "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {{name: big, namespace: ns, annotations: {{haproxy.router.openshift.io/timeout: '{big}'}}}}\nspec: {{host: a.example.com, to: {{kind: Service, name: s}}}}\n---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {{name: ok, namespace: ns}}\nspec: {{host: b.example.com, to: {{kind: Service, name: s}}}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_routegen"))
        .args(["check", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let big_line = stdout.lines().find(|l| l.contains("ns/big")).unwrap();
    assert!(
        big_line.contains("ValidationFailed")
            && big_line.contains("metadata.annotations: Too long: ")
            && big_line.contains("must have at most 262144 bytes"),
        "{big_line}"
    );
    assert!(
        big_line.len() < 1000,
        "the value is not echoed: {}",
        big_line.len()
    );
    let ok_line = stdout.lines().find(|l| l.contains("ns/ok")).unwrap();
    assert!(ok_line.contains("Admitted"), "{ok_line}");
}
