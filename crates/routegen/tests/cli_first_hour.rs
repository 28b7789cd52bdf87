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

/// Notes on stderr are coloured by severity on a terminal (forced here
/// with `CLICOLOR_FORCE`), plain in a pipe or with `NO_COLOR`.
#[test]
fn notes_are_coloured_only_for_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 2);
    let stderr = |env: &[(&str, &str)]| {
        let mut cmd = routegen();
        cmd.env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        text(
            &cmd.args(["render", "-f"])
                .arg(&input)
                .output()
                .unwrap()
                .stderr,
        )
    };
    let forced = stderr(&[("CLICOLOR_FORCE", "1")]);
    assert!(
        forced.contains("\u{1b}[31mrejected:\u{1b}[0m other/zz-late"),
        "{forced:?}"
    );
    let piped = stderr(&[]);
    assert!(piped.contains("rejected: other/zz-late"), "{piped}");
    assert!(!piped.contains('\u{1b}'), "{piped:?}");
    let no_color = stderr(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!no_color.contains('\u{1b}'), "{no_color:?}");
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

/// The `--progress` lines of `out`'s stderr (every line but the notes,
/// `rejected: …`, `warning: …`, and `check`'s summary), with their times
/// replaced by `T`.
fn progress_lines(out: &Output) -> Vec<String> {
    let time = regex::Regex::new(r"\(\d+\.\d s\)$").unwrap();
    let note = ["rejected:", "warning:", "note:", "error:"];
    text(&out.stderr)
        .lines()
        .filter(|l| !note.iter().any(|p| l.starts_with(p)) && !l.contains(" admitted, "))
        .map(|l| time.replace(l, "(T s)").into_owned())
        .collect()
}

/// `--progress always` prints one line as each phase starts and ends on
/// stderr, with counts and times; stdout is the same bytes as with
/// `--progress never`, which prints none; by default (auto) a piped
/// stderr gets none either.
#[test]
fn progress_lines_go_to_stderr_when_asked_and_never_change_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 3);
    let render = |extra: &[&str], env: Option<&str>| {
        let mut cmd = routegen();
        if let Some(when) = env {
            cmd.env("ROUTEGEN_PROGRESS", when);
        }
        let out = cmd
            .args(["render", "-f"])
            .arg(&input)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        out
    };
    let loading = format!("loading {}…", input.display());
    let always = render(&["--progress", "always"], None);
    assert_eq!(
        progress_lines(&always),
        [
            loading.as_str(),
            "loaded 4 Routes, 0 other objects, 0 warnings (T s)",
            "admitting 4 Routes…",
            "admitted 3 Routes, 1 rejected (T s)",
            "rendering the HAProxy tree…",
            "rendered 8 files (T s)",
        ],
        "{}",
        text(&always.stderr)
    );
    let never = render(&["--progress", "never"], None);
    assert_eq!(always.stdout, never.stdout, "stdout does not change");
    assert!(progress_lines(&never).is_empty(), "{}", text(&never.stderr));
    let piped = render(&[], None);
    assert_eq!(piped.stdout, never.stdout);
    assert_eq!(piped.stderr, never.stderr, "auto: stderr is not a terminal");
    assert_eq!(
        progress_lines(&render(&[], Some("always"))).len(),
        6,
        "ROUTEGEN_PROGRESS"
    );

    // `check` loads and admits; `render --out` writes and `diff` compares.
    let lines = |command: &str, extra: &[&std::ffi::OsStr]| {
        let out = routegen()
            .args([command, "--progress", "always", "-f"])
            .arg(&input)
            .args(extra)
            .output()
            .unwrap();
        progress_lines(&out)
    };
    assert_eq!(
        lines("check", &[])[2..],
        ["admitting 4 Routes…", "admitted 3 Routes, 1 rejected (T s)"]
    );
    let dir = tmp.path().join("tree");
    assert_eq!(
        lines("render", &["--out".as_ref(), dir.as_ref()])[6..],
        [
            format!("writing 8 files to {}…", dir.display()),
            format!("wrote {} (T s)", dir.display())
        ]
    );
    assert_eq!(
        lines("diff", &["--against".as_ref(), dir.as_ref()])[6..],
        [
            format!("comparing with {}…", dir.display()),
            format!("compared {}: no change (T s)", dir.display())
        ]
    );
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
    for flag in [
        "--debounce",
        "--min-reload-interval",
        "--ops-header-timeout",
        "--haproxy-load-timeout",
    ] {
        let (status, stderr) = run(flag, "5");
        assert_eq!(status, Some(2), "{flag} 5: {stderr}");
        assert!(
            stderr.contains(&format!("'5' for '{flag} <DURATION>'"))
                && stderr.contains("`5` has no unit; add one, e.g. 5s or 5ms"),
            "{stderr}"
        );
        // Zero has no meaning for --ops-header-timeout and
        // --haproxy-load-timeout (refused once run resolves its flags:
        // exit 3 too, with its own message, below).
        for accepted in ["0", "0s", "250ms", "5s", "2m", "1m 30s"] {
            let zero_refused = ["--ops-header-timeout", "--haproxy-load-timeout"].contains(&flag);
            if zero_refused && accepted.starts_with('0') {
                let (status, stderr) = run(flag, accepted);
                assert_eq!(status, Some(3), "{flag} {accepted}: {stderr}");
                assert!(
                    stderr.contains(&format!("{flag} must be above 0")),
                    "{stderr}"
                );
                continue;
            }
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
        ("0s", "`0s`: must be above 0, e.g. 500ms, 5s"),
        ("soon", "a number and its unit, e.g. 500ms, 5s"),
    ] {
        let out = render(refused);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{refused}: {stderr}");
        assert!(stderr.contains(message), "{refused}: {stderr}");
    }
    let five = render("5s");
    assert_eq!(five.status.code(), Some(0), "{}", text(&five.stderr));
    assert!(text(&five.stdout).contains("  hard-stop-after 5s\n"));
    // HAProxy's syntax, in the largest unit that holds the value exactly.
    let spelled = render("1h 30m");
    assert_eq!(spelled.status.code(), Some(0), "{}", text(&spelled.stderr));
    assert!(text(&spelled.stdout).contains("  hard-stop-after 90m\n"));
    assert!(!out_dir.exists(), "no run started");
}

/// `diff --against OUT` where OUT is laid out as `routegen run` keeps it
/// (`current` → `trees/<id>`): the served tree is compared, not refused
/// for its link.
/// `diff` found nothing to change against `against`.
fn assert_no_changes(done: &Output, against: &Path) {
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}: {}{}",
        against.display(),
        text(&done.stdout),
        text(&done.stderr)
    );
}

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
        assert_no_changes(&done, &against);
    }
}

/// `diff -f SRC --against OUT` for a sidecar's OUT renders with the
/// options the sidecar stored (OUT/state/render-options.json): run with
/// non-default binds, run directory, spare pools, maxconn, HAProxy
/// metrics and a router domain, `diff` given only `-f` and `--against`
/// finds no change, says which stored options it used, lets an explicit
/// flag win, and shows a changed source as just that change.
#[test]
fn diff_against_a_sidecar_uses_the_options_it_runs_with() {
    use routegen_core::testkit::RouteBuilder;
    use std::time::Duration;

    let metrics = format!("127.0.0.1:{}", routegen_testsupport::e2e::free_port());
    let mut sc = routegen_testsupport::sidecar::Sidecar::new(
        env!("CARGO_BIN_EXE_routegen"),
        &[
            "--spare-backends",
            "1",
            "--max-spare-backends",
            "8",
            "--hard-stop-after",
            "90s",
            "--haproxy-metrics-bind",
            &metrics,
            "--router-domain",
            "apps.example.com",
            "--cookie-name",
            "rgsticky",
        ],
    );
    let route = |timeout: Option<&str>| {
        let r = RouteBuilder::new("shop", "web")
            .host("web.example.com")
            .to("web", None)
            .created("2026-01-01T00:00:00Z");
        match timeout {
            Some(t) => r.annotation("haproxy.router.openshift.io/timeout", t),
            None => r,
        }
        .to_yaml()
    };
    sc.write_manifest(
        "svc.yaml",
        &routegen_testsupport::e2e::loopback_service_yaml("shop", "web", 9, true),
    );
    sc.write_manifest("web.yaml", &route(None));
    sc.start();
    sc.wait_ready(Duration::from_secs(60));
    let stored = std::fs::read_to_string(sc.out.join("state/render-options.json")).unwrap();
    assert!(
        stored.contains(&format!("\"127.0.0.1:{}\"", sc.http)),
        "{stored}"
    );

    let current = sc.out.join("current");
    let diff_against = |src: &Path, against: &Path, extra: &[&str]| {
        routegen()
            .arg("diff")
            .arg("-f")
            .arg(src)
            .args(extra)
            .arg("--against")
            .arg(against)
            .output()
            .unwrap()
    };
    let diff = |src: &Path, extra: &[&str]| diff_against(src, &sc.out, extra);
    // The same source, no flags: no change.
    let same = diff(&sc.manifests, &[]);
    assert_no_changes(&same, &sc.out);
    let note = text(&same.stderr);
    for used in [
        format!("--http-bind 127.0.0.1:{}", sc.http),
        "--run-dir ".to_string(),
        "--spare-backends 1".to_string(),
        "--maxconn 2000".to_string(),
        format!("--haproxy-metrics-bind {metrics}"),
        "--router-domain apps.example.com".to_string(),
    ] {
        assert!(note.contains(&used), "the note names {used}: {note}");
    }
    // The link itself works the same.
    assert_no_changes(&diff_against(&sc.manifests, &current, &[]), &current);

    // An explicit flag wins over the stored one.
    let explicit = diff(&sc.manifests, &["--maxconn", "3000"]);
    assert_eq!(
        explicit.status.code(),
        Some(1),
        "{}",
        text(&explicit.stderr)
    );
    let out = text(&explicit.stdout);
    assert!(out.contains("maxconn 3000"), "{out}");
    assert!(!text(&explicit.stderr).contains("--maxconn 2000"));

    // A changed source shows as just that change.
    let changed = tempfile::tempdir().unwrap();
    std::fs::copy(
        sc.manifests.join("svc.yaml"),
        changed.path().join("svc.yaml"),
    )
    .unwrap();
    std::fs::write(changed.path().join("web.yaml"), route(Some("7s"))).unwrap();
    let done = diff(changed.path(), &[]);
    assert_eq!(done.status.code(), Some(1), "{}", text(&done.stderr));
    let out = text(&done.stdout);
    let changes: Vec<&str> = out
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    // The Route's backend section (and, its shape changed, the spare of
    // that shape and the section's cookie key), nothing a flag sets.
    assert!(changes.contains(&"+  timeout server 7s"), "{out}");
    let files: Vec<&str> = out.lines().filter(|l| l.starts_with("+++")).collect();
    assert!(
        !files.is_empty() && files.iter().all(|l| l.contains("backends/routes-")),
        "only backend files changed: {files:?}\n{out}"
    );
    for flag_made in ["bind", "maxconn", "hard-stop-after", "/run/", "rgsticky"] {
        assert!(
            !changes.iter().any(|l| l.contains(flag_made)),
            "{flag_made} changed: {changes:#?}"
        );
    }
    assert_eq!(sc.sigterm_and_wait().code(), Some(0), "{}", sc.log_text());
}

/// `render` is a dry run: without `--default-cert` or `--state-dir` it
/// writes no state, uses the built-in placeholder certificate (the same
/// bytes wherever it runs) and warns when it writes a tree with it; `diff`
/// against a sidecar's output directory uses the sidecar's own default
/// certificate from `OUT/state`.
#[test]
fn render_without_a_state_directory_writes_nothing_and_is_the_same_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let input = many_routes(tmp.path(), 3);
    let render_in = |cwd: &Path, home: &Path| {
        routegen()
            .current_dir(cwd)
            .env("HOME", home)
            .env_remove("ROUTEGEN_STATE_DIR")
            .env_remove("ROUTEGEN_DEFAULT_CERT")
            .args(["render", "--show-secrets", "-f"])
            .arg(&input)
            .output()
            .unwrap()
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let first = render_in(&a, &a);
    let second = render_in(&b, &b);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(first.stdout, second.stdout, "the same bytes everywhere");
    let placeholder_cert = routegen_host::defaultcert::PLACEHOLDER_PEM
        .split("-----END PRIVATE KEY-----\n")
        .nth(1)
        .unwrap();
    assert!(text(&first.stdout).contains(placeholder_cert));
    for dir in [&a, &b] {
        assert_eq!(
            std::fs::read_dir(dir).unwrap().count(),
            0,
            "nothing written"
        );
    }

    // Writing a tree with it: a warning.
    let out = tmp.path().join("tree");
    let written = routegen()
        .env_remove("ROUTEGEN_STATE_DIR")
        .args(["render", "-f"])
        .arg(&input)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(written.status.code(), Some(0), "{}", text(&written.stderr));
    assert!(
        text(&written.stderr).contains("placeholder, whose key is public"),
        "{}",
        text(&written.stderr)
    );

    // A sidecar's output directory: its own default certificate.
    let sidecar = tmp.path().join("sidecar");
    std::fs::create_dir_all(sidecar.join("trees")).unwrap();
    let mut render = routegen();
    render
        .env_remove("ROUTEGEN_STATE_DIR")
        .args(["render", "--run-dir"])
        .arg(tmp.path().join("run"))
        .arg("--state-dir")
        .arg(sidecar.join("state"))
        .arg("-f")
        .arg(&input)
        .arg("--out")
        .arg(sidecar.join("trees/00000001-x"));
    assert_eq!(render.output().unwrap().status.code(), Some(0));
    std::os::unix::fs::symlink("trees/00000001-x", sidecar.join("current")).unwrap();
    for against in [sidecar.clone(), sidecar.join("current")] {
        let done = routegen()
            .env_remove("ROUTEGEN_STATE_DIR")
            .args(["diff", "--run-dir"])
            .arg(tmp.path().join("run"))
            .arg("-f")
            .arg(&input)
            .arg("--against")
            .arg(&against)
            .output()
            .unwrap();
        assert_no_changes(&done, &against);
    }
}

/// A multi-document file whose Route, Service and EndpointSlice have
/// unknown or misplaced fields next to valid fields routegen does not
/// model (status, managedFields, ownerReferences, hints), which must not
/// warn. Lines are those of the file. The Route's misplaced namespace is
/// ignored: load it with `--namespace shop`.
const UNKNOWN_FIELDS: &str = "\
# shop
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080}
  sessionAffinity: None
  prots: []
status: {loadBalancer: {}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
  ownerReferences: [{apiVersion: v1, kind: Service, name: web, uid: u1}]
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true}
  hints: {forZones: [{name: a}]}
  zon: a
ports: [{name: http, port: 8080}]
---
apiVersion: route.openshift.io/v1
kind: Route
namespace: shop
metadata:
  name: web
  annotation: {haproxy.router.openshift.io/timeout: 5s}
  managedFields:
  - {manager: oc, operation: Update, fieldsType: FieldsV1, fieldsV1: {f:spec: {}}}
spec:
  host: web.example.com
  to: {kind: Service, name: web}
  tsl:
    termination: edge
status:
  ingress: [{host: web.example.com, routerName: default, conditions: [{type: Admitted, status: 'True'}]}]
";

/// The warnings `UNKNOWN_FIELDS` gives, `FILE` standing for its path.
const UNKNOWN_FIELD_WARNINGS: [&str; 5] = [
    "FILE:9: document 1: Service shop/web: spec.prots: unknown field, did you mean spec.ports?",
    "FILE:24: document 2: EndpointSlice shop/web-1: endpoints[0].zon: unknown field, did you mean endpoints[0].zone?",
    "FILE:29: document 3: Route shop/web: namespace: unknown field, did you mean metadata.namespace?",
    "FILE:32: document 3: Route shop/web: metadata.annotation: unknown field, did you mean metadata.annotations?",
    "FILE:38: document 3: Route shop/web: spec.tsl: unknown field, did you mean spec.tls?",
];

/// `UNKNOWN_FIELDS` written to `dir/shop.yaml`, and the warnings it gives.
fn unknown_fields_file(dir: &Path) -> (std::path::PathBuf, Vec<String>) {
    let input = dir.join("shop.yaml");
    std::fs::write(&input, UNKNOWN_FIELDS).unwrap();
    let file = input.display().to_string();
    let expected = UNKNOWN_FIELD_WARNINGS
        .iter()
        .map(|w| w.replace("FILE", &file))
        .collect();
    (input, expected)
}

/// The lines of `stderr` that start with `prefix`, the prefix removed.
fn lines_with<'a>(stderr: &'a str, prefix: &str) -> Vec<&'a str> {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .collect()
}

/// Issue 18: unknown or misplaced fields are warned about, as kubectl
/// does, by every command that loads manifests; the objects still load.
#[test]
fn unknown_fields_are_warned_with_the_file_line_and_a_suggestion() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, expected) = unknown_fields_file(tmp.path());

    let out = routegen()
        .args(["check", "--namespace", "shop", "-f"])
        .arg(&input)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(lines_with(&stderr, "warning: "), expected, "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("1 admitted, 0 rejected, 5 warnings")
    );
    assert!(text(&out.stdout).starts_with("shop/web  web.example.com  Admitted"));

    let mut render = routegen();
    render.args(["render", "--namespace", "shop"]);
    tree_flags(&mut render, tmp.path(), &input);
    let out = render.output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        lines_with(&stderr, "warning: "),
        expected,
        "render: {stderr}"
    );
    assert!(
        text(&out.stdout).contains("server "),
        "the Route is rendered with its endpoint"
    );

    let mut diff = routegen();
    diff.args(["diff", "--namespace", "shop"]);
    tree_flags(&mut diff, tmp.path(), &input);
    let out = diff.arg("--against").arg(tmp.path()).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(lines_with(&stderr, "warning: "), expected, "diff: {stderr}");
}

/// `check --strict`: the same fields are errors; the Route is rejected,
/// the Service and EndpointSlice left out, and the exit status is 1
/// (findings). A file without unknown fields passes as before.
#[test]
fn check_strict_makes_unknown_fields_errors_that_refuse_the_object() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, expected) = unknown_fields_file(tmp.path());

    for output in ["text", "json"] {
        let out = routegen()
            .args([
                "check",
                "--strict",
                "--namespace",
                "shop",
                "-o",
                output,
                "-f",
            ])
            .arg(&input)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(lines_with(&stderr, "error: "), expected, "{stderr}");
        assert!(lines_with(&stderr, "warning: ").is_empty(), "{stderr}");
        assert_eq!(
            stderr.lines().last(),
            Some("0 admitted, 1 rejected, 0 warnings, 5 errors")
        );
        assert!(stdout.contains("ValidationFailed"), "{stdout}");
        assert!(
            stdout.contains("strict decoding error: namespace: unknown field, did you mean metadata.namespace?; metadata.annotation: unknown field"),
            "{stdout}"
        );
    }

    // Only a Service has an unknown field: the Route is admitted, but the
    // Service is refused, so the run is still a finding.
    let service_only = tmp.path().join("service.yaml");
    std::fs::write(
        &service_only,
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {prots: []}\n---\n\
         apiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {name: web}\n\
         spec: {host: w.example.com, to: {name: web}}\n",
    )
    .unwrap();
    let out = routegen()
        .args(["check", "--strict", "-f"])
        .arg(&service_only)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.lines().last(),
        Some("1 admitted, 0 rejected, 0 warnings, 1 error")
    );

    // ROUTEGEN_STRICT sets it too; a clean file is unaffected.
    let clean = tmp.path().join("clean.yaml");
    let fixed = UNKNOWN_FIELDS
        .replace("  prots: []\n", "")
        .replace("  zon: a\n", "")
        .replace(
            "namespace: shop\nmetadata:\n  name: web\n  annotation:",
            "metadata:\n  name: web\n  annotations:",
        )
        .replace("tsl:", "tls:");
    std::fs::write(&clean, fixed).unwrap();
    let out = routegen()
        .env("ROUTEGEN_STRICT", "true")
        .args(["check", "--namespace", "shop", "-f"])
        .arg(&clean)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr, "1 admitted, 0 rejected, 0 warnings\n");

    let help = routegen().args(["check", "--help"]).output().unwrap();
    let help = text(&help.stdout);
    assert!(help.contains("--strict"), "{help}");
    assert!(help.contains("unknown fields with --strict"), "{help}");
}

/// A YAML error in a later document gives the line counted from the start
/// of the file (an editor's line), not from the start of the document.
#[test]
fn yaml_errors_give_the_line_of_the_file_not_of_the_document() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("many.yaml");
    let route = |i: usize| {
        format!(
            "---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: r{i}\n\
             spec:\n  host: r{i}.example.com\n  to:\n    name: s\n"
        )
    };
    // Three Routes of 9 lines, then a broken fourth document: its line 9,
    // `  to: {name: s`, is line 36 of the file.
    let text_in = format!(
        "{}{}{}---\n# four\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: r4\n\
         spec:\n  host: r4.example.com\n  to: {{name: s\n",
        route(1),
        route(2),
        route(3)
    );
    assert_eq!(text_in.lines().nth(35), Some("  to: {name: s"));
    std::fs::write(&input, &text_in).unwrap();
    let out = routegen()
        .arg("check")
        .arg("-f")
        .arg(&input)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "error: {}: document 4: invalid YAML: unclosed bracket '{{' at line 36, column 7\n",
            input.display()
        ),
        "not `at line 9`, the line in the document"
    );
}

/// `run` with a directory source warns about unknown fields too, once,
/// and serves the objects.
#[test]
fn run_warns_about_unknown_fields_of_its_directory_source() {
    use std::time::Duration;

    let mut sc = routegen_testsupport::sidecar::Sidecar::new(env!("CARGO_BIN_EXE_routegen"), &[]);
    sc.extra = vec!["--namespace".into(), "shop".into()];
    sc.write_manifest("shop.yaml", UNKNOWN_FIELDS);
    sc.start();
    sc.wait_ready(Duration::from_secs(60));
    let file = sc.manifests.join("shop.yaml").display().to_string();
    let want = format!(
        "{file}:38: document 3: Route shop/web: spec.tsl: unknown field, did you mean spec.tls?"
    );
    routegen_testsupport::sidecar::wait_for(Duration::from_secs(30), "the warning", || {
        sc.log_text().contains(&want).then_some(())
    });
    assert_eq!(sc.log_text().matches(&want).count(), 1, "{}", sc.log_text());
    assert_eq!(sc.sigterm_and_wait().code(), Some(0), "{}", sc.log_text());
}

/// `run --help` groups its ~60 flags under headings (issue 18), each flag
/// listed exactly once.
#[test]
fn run_help_groups_every_flag_once() {
    let out = routegen().args(["run", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    let headings = [
        "Source:",
        "Output and apply:",
        "HAProxy process:",
        "Runtime API and reloads:",
        "Router policy (admission):",
        "Rendering:",
        "Status (kube):",
        "Operations listener:",
        "Logging:",
    ];
    let mut at = 0;
    for h in headings {
        let found = help.lines().position(|l| l == h);
        let line = found.unwrap_or_else(|| panic!("no heading {h:?} in\n{help}"));
        assert!(line >= at, "{h:?} out of order in\n{help}");
        at = line;
    }
    // Flag definitions: `  -f, --flag` or `      --flag` (descriptions,
    // wrapped or on the next line, are indented further).
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for line in help.lines() {
        let l = line.trim_start();
        if !matches!(line.len() - l.len(), 2 | 6) {
            continue;
        }
        let l = l.strip_prefix("-f, ").unwrap_or(l);
        let l = l.strip_prefix("-h, ").unwrap_or(l);
        if let Some(rest) = l.strip_prefix("--") {
            let flag = rest.split([' ', '=', '<']).next().unwrap();
            *counts.entry(flag).or_default() += 1;
        }
    }
    for (flag, n) in &counts {
        assert_eq!(*n, 1, "--{flag} listed {n} times in\n{help}");
    }
    for flag in [
        "source",
        "out",
        "debounce",
        "spawn-haproxy",
        "hard-stop-after",
        "reload",
        "min-reload-interval",
        "allowed-domains",
        "maxconn",
        "router-name",
        "no-status",
        "listen",
        "ops-header-timeout",
        "log-format",
        "kubeconfig",
    ] {
        assert!(counts.contains_key(flag), "--{flag} missing from\n{help}");
    }
    assert!(counts.len() >= 50, "{} flags: {counts:?}", counts.len());
}
