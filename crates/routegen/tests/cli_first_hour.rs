//! The command line as a new user meets it (issue 18): output cut short
//! by a closed pipe, exit codes, the summary line, flags.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn routegen() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routegen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `n` Routes with their own hosts, and one more that claims the first
/// host again (rejected, HostAlreadyClaimed): output far larger than a
/// pipe's buffer, for every command.
fn many_routes(dir: &Path, n: usize) -> std::path::PathBuf {
    let mut yaml = String::new();
    for i in 0..n {
        yaml.push_str(&format!(
            "---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {{name: r{i:05}, namespace: ns, creationTimestamp: '2024-01-01T00:00:00Z'}}\nspec: {{host: r{i:05}.example.com, path: /some/longer/path/{i}, to: {{kind: Service, name: s{i}}}}}\n"
        ));
    }
    yaml.push_str("---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {name: zz-late, namespace: other, creationTimestamp: '2025-01-01T00:00:00Z'}\nspec: {host: r00000.example.com, path: /some/longer/path/0, to: {kind: Service, name: s}}\n");
    let path = dir.join("routes.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Run `cmd` with stdout a pipe that is closed after the first few bytes
/// (`| head -c 100`), returning the exit status and stderr (kept in a
/// file: a full stderr pipe must not block the command before it writes
/// stdout).
fn with_stdout_closed_early(cmd: &mut Command) -> Output {
    let mut stderr = tempfile::tempfile().unwrap();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut head = [0u8; 100];
    stdout.read_exact(&mut head).unwrap();
    drop(stdout);
    let mut out = child.wait_with_output().unwrap();
    stderr.seek(SeekFrom::Start(0)).unwrap();
    stderr.read_to_end(&mut out.stderr).unwrap();
    out
}

fn assert_quiet(what: &str, out: &Output) {
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stdout") && !stderr.contains("error"),
        "{what}: {stderr}"
    );
}

/// `-f INPUT` and state and run directories under `tmp`: the flags every
/// tree-building command here takes.
fn tree_flags(cmd: &mut Command, tmp: &Path, input: &Path) {
    cmd.arg("-f")
        .arg(input)
        .arg("--state-dir")
        .arg(tmp.join("state"))
        .arg("--run-dir")
        .arg(tmp.join("run"));
}

#[test]
fn a_closed_stdout_pipe_ends_every_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 3000);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let tree_args = |cmd: &mut Command| tree_flags(cmd, tmp.path(), &input);

    for format in ["text", "json"] {
        let out =
            with_stdout_closed_early(routegen().args(["check", "-o", format, "-f"]).arg(&input));
        assert_quiet("check", &out);
        assert_eq!(out.status.code(), Some(1), "check -o {format}: rejections");
    }

    let mut render = routegen();
    render.arg("render");
    tree_args(&mut render);
    let out = with_stdout_closed_early(&mut render);
    assert_quiet("render", &out);
    assert_eq!(out.status.code(), Some(0), "render");

    let mut diff = routegen();
    diff.arg("diff");
    tree_args(&mut diff);
    let out = with_stdout_closed_early(diff.arg("--against").arg(&empty));
    assert_quiet("diff", &out);
    assert_eq!(out.status.code(), Some(1), "diff: differences");
}

/// One table for every subcommand: 0 success, 1 findings, 2 usage error
/// (clap's), 3 error; a CI job tells rejections from a mistyped flag.
#[test]
fn exit_statuses_keep_usage_errors_apart_from_rejections_and_failures() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 2);
    let code = |args: &[&str]| {
        let out = routegen().args(args).output().unwrap();
        (out.status.code(), text(&out.stderr))
    };
    let input = input.to_str().unwrap();
    let (rejected, _) = code(&["check", "-f", input]);
    assert_eq!(rejected, Some(1), "some Routes rejected");
    for usage in [
        &["check", "-f", input, "--no-such-flag"][..],
        &["check", "-f", input, "--output", "yaml"],
        &["check"],
        &["render", "-f", input, "--maxconn", "many"],
        &["diff", "-f", input],
        &["no-such-command"],
    ] {
        let (status, stderr) = code(usage);
        assert_eq!(status, Some(2), "usage error for {usage:?}: {stderr}");
    }
    let missing = tmp.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    let (status, stderr) = code(&["check", "-f", missing]);
    assert_eq!(status, Some(3), "unreadable input: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    let (status, _) = code(&["render", "-f", missing]);
    assert_eq!(status, Some(3));

    for args in [&["--help"][..], &["check", "--help"], &["diff", "--help"]] {
        let out = routegen().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        // Help text is wrapped to the terminal: compare words.
        let help = text(&out.stdout)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            help.contains("Exit status: 0 success; 1 findings")
                && help.contains("2 usage error; 3 error"),
            "{args:?}: {help}"
        );
    }
}

/// `check` ends stderr with `N admitted, M rejected, K warnings`, counting
/// the warnings of the input (skipped kinds), of the Routes (annotation
/// values) and of the target.
#[test]
fn check_ends_with_a_summary_line_on_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 3);
    let last_line = |args: &[&std::ffi::OsStr]| {
        let out = routegen().arg("check").args(args).output().unwrap();
        let stderr = text(&out.stderr);
        let last = stderr.lines().last().unwrap_or_default().to_string();
        (out.status.code(), last, text(&out.stdout))
    };
    let (status, last, stdout) = last_line(&["-f".as_ref(), input.as_ref()]);
    assert_eq!(status, Some(1));
    assert_eq!(last, "3 admitted, 1 rejected, 0 warnings");
    assert!(!stdout.contains("admitted,"), "summary only on stderr");

    let (_, last, _) = last_line(&[
        "-o".as_ref(),
        "json".as_ref(),
        "-f".as_ref(),
        input.as_ref(),
    ]);
    assert_eq!(last, "3 admitted, 1 rejected, 0 warnings");

    let warned = tmp.path().join("warned.yaml");
    std::fs::write(
        &warned,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {name: a, annotations: {haproxy.router.openshift.io/timeout: soon}}\nspec: {host: a.example.com, to: {kind: Service, name: s}}\n",
    )
    .unwrap();
    let (status, last, stdout) = last_line(&["-f".as_ref(), warned.as_ref()]);
    assert_eq!(status, Some(0), "{stdout}");
    assert_eq!(last, "1 admitted, 0 rejected, 2 warnings", "{stdout}");
}

/// `run --run-dir DIR` with DIR missing: routegen creates it (0700) and
/// HAProxy binds its sockets there, instead of failing to start.
#[test]
fn run_creates_a_missing_run_dir_private() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    let mut sc = routegen_testsupport::sidecar::Sidecar::new(env!("CARGO_BIN_EXE_routegen"), &[]);
    let run_dir = sc.out.parent().unwrap().join("sockets/run");
    sc.extra = vec!["--run-dir".into(), run_dir.display().to_string()];
    sc.start();
    sc.wait_ready(Duration::from_secs(60));
    let mode = std::fs::metadata(&run_dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{}", run_dir.display());
    assert!(
        run_dir
            .join(routegen_render::haproxy::STATS_SOCKET)
            .exists(),
        "HAProxy's socket in {}:\n{}",
        run_dir.display(),
        sc.log_text()
    );
    assert_eq!(sc.sigterm_and_wait().code(), Some(0), "{}", sc.log_text());
}

/// Every duration flag takes a number and its unit. A bare number, which
/// meant seconds for --debounce and --min-reload-interval but
/// milliseconds for --hard-stop-after, is refused as a usage error asking
/// for a unit (`0` excepted where zero is allowed).
#[test]
fn duration_flags_refuse_a_bare_number_and_ask_for_a_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 1);
    let out_dir = tmp.path().join("out");
    // `run` without --source outside a cluster stops after parsing the
    // flags: exit 3 (cannot start) means the flags were accepted.
    let run = |flag: &str, value: &str| {
        let out = routegen()
            .env_remove("KUBERNETES_SERVICE_HOST")
            .arg("run")
            .arg("--out")
            .arg(&out_dir)
            .args([flag, value])
            .output()
            .unwrap();
        (out.status.code(), text(&out.stderr))
    };
    for flag in ["--debounce", "--min-reload-interval"] {
        let (status, stderr) = run(flag, "5");
        assert_eq!(status, Some(2), "{flag} 5: {stderr}");
        assert!(
            stderr.contains(&format!("'5' for '{flag} <DURATION>'"))
                && stderr.contains("`5` has no unit; add one, e.g. 5s or 5ms"),
            "{stderr}"
        );
        for accepted in ["0", "0s", "250ms", "5s", "2m"] {
            let (status, stderr) = run(flag, accepted);
            assert_eq!(status, Some(3), "{flag} {accepted}: {stderr}");
            assert!(stderr.contains("--source is required"), "{stderr}");
        }
    }

    let render = |value: &str| {
        routegen()
            .args(["render", "--hard-stop-after", value, "--state-dir"])
            .arg(tmp.path().join("state"))
            .arg("--run-dir")
            .arg(tmp.path().join("run"))
            .arg("-f")
            .arg(&input)
            .output()
            .unwrap()
    };
    for (refused, message) in [
        ("5", "`5` has no unit; add one, e.g. 5s or 5ms"),
        ("0s", "expected a positive number and its unit"),
    ] {
        let out = render(refused);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{refused}: {stderr}");
        assert!(stderr.contains(message), "{refused}: {stderr}");
    }
    let five = render("5s");
    assert_eq!(five.status.code(), Some(0), "{}", text(&five.stderr));
    assert!(text(&five.stdout).contains("  hard-stop-after 5s\n"));
    assert!(!out_dir.exists(), "no run started");
}

/// `diff --against OUT` where OUT is laid out as `routegen run` keeps it
/// (`current` → `trees/<id>`): the served tree is compared, not refused
/// for its link.
#[test]
fn diff_against_a_sidecar_output_directory_compares_its_current_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 3);
    let out = tmp.path().join("out");
    std::fs::create_dir_all(out.join("trees")).unwrap();
    let common = |cmd: &mut Command| tree_flags(cmd, tmp.path(), &input);
    let mut render = routegen();
    render.arg("render");
    common(&mut render);
    let done = render
        .arg("--out")
        .arg(out.join("trees/00000001-test"))
        .output()
        .unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", text(&done.stderr));
    std::os::unix::fs::symlink("trees/00000001-test", out.join("current")).unwrap();

    for against in [out.clone(), out.join("current")] {
        let mut diff = routegen();
        diff.arg("diff");
        common(&mut diff);
        let done = diff.arg("--against").arg(&against).output().unwrap();
        assert_eq!(
            done.status.code(),
            Some(0),
            "{}: {}{}",
            against.display(),
            text(&done.stdout),
            text(&done.stderr)
        );
    }
}
