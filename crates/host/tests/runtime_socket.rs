//! The runtime API client against a real HAProxy (`haproxy -db`), one
//! process per test in a temporary directory, listening on 127.0.0.1 only.
//! Skipped, with a message, when `haproxy` is not on PATH.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use routegen_host::runtime::socket::DEFAULT_MAX_COMMAND_BYTES;
use routegen_host::runtime::{
    observe, run_batch, AdminState, Command, Expect, Outcome, RuntimeError, StatsSocket,
};

const TIMEOUT: Duration = Duration::from_secs(5);
const MAP: &str = "hosts.map";
const CRT_LIST: &str = "crt-list.txt";

fn haproxy_missing() -> bool {
    let missing = std::process::Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .status()
        .is_err();
    if missing {
        eprintln!("skipping: `haproxy` is not on PATH");
    }
    missing
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn test_cert(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/certs");
    fs::read_to_string(dir.join(name)).unwrap()
}

/// `www.crt` + `www.key`, as HAProxy wants them in one file.
fn pem(name: &str) -> String {
    test_cert(&format!("{name}.crt")) + &test_cert(&format!("{name}.key"))
}

/// What differs between the files of two test processes.
#[derive(Default, Clone)]
struct Files {
    /// Lines added to `be_app` after `s1`.
    extra_servers: Vec<String>,
    /// Lines added to the map after `a.example.com be_app`.
    extra_map: Vec<String>,
    /// Lines added to the crt-list after the `www` line.
    extra_crt_list: Vec<String>,
    /// Port of `be_app/s1` and `be_other/o1`; without one, 9 (the same in
    /// every process, and no test sends traffic there).
    backend_port: Option<u16>,
    /// `weight` of `be_app/s1`, when not the default.
    s1_weight: Option<u32>,
}

/// A running `haproxy -db`, killed on drop. Paths in its configuration
/// (but the stats socket's, which must be absolute) are relative to its
/// directory, so certificate and map names are the same in every test
/// process.
struct Haproxy {
    child: Child,
    dir: tempfile::TempDir,
    plain_port: u16,
}

impl Haproxy {
    fn start(files: &Files) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join("certs")).unwrap();
        fs::write(root.join("certs/default.pem"), test_cert("default.pem")).unwrap();
        fs::write(root.join("certs/www.pem"), pem("www")).unwrap();
        fs::write(root.join("certs/shared.pem"), pem("shared")).unwrap();
        fs::write(root.join("certs/ca.crt"), test_cert("ca.crt")).unwrap();
        fs::write(root.join("certs/ca2.crt"), test_cert("ca.crt")).unwrap();
        let crt_list = ["certs/www.pem [alpn h2,http/1.1] www.example.com".to_string()];
        fs::write(
            root.join(CRT_LIST),
            lines(crt_list.iter().chain(&files.extra_crt_list)),
        )
        .unwrap();
        let map = ["a.example.com be_app".to_string()];
        fs::write(root.join(MAP), lines(map.iter().chain(&files.extra_map))).unwrap();

        let plain_port = free_port();
        let backend_port = files.backend_port.unwrap_or(9);
        let s1_weight = files
            .s1_weight
            .map(|w| format!(" weight {w}"))
            .unwrap_or_default();
        let config = format!(
            "global
  stats socket {sock} mode 600 level admin expose-fd listeners
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe_tls
  bind 127.0.0.1:{tls} ssl crt certs/default.pem crt-list {CRT_LIST} ca-file certs/ca.crt verify optional
  use_backend %[req.hdr(host),lower,map({MAP},be_app)]
frontend fe_plain
  bind 127.0.0.1:{plain_port}
  default_backend be_app
backend be_app
  balance roundrobin
  cookie SRV insert indirect nocache httponly dynamic
  dynamic-cookie-key k
  server s1 127.0.0.1:{backend_port} id 1{s1_weight}
{extra}
backend be_other
  server o1 127.0.0.1:{backend_port} id 1
",
            tls = free_port(),
            sock = root.join("s.sock").display(),
            extra = lines(&files.extra_servers),
        );
        fs::write(root.join("h.cfg"), config).unwrap();

        let log = fs::File::create(root.join("haproxy.log")).unwrap();
        let child = std::process::Command::new("haproxy")
            .args(["-db", "-f", "h.cfg"])
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut haproxy = Haproxy {
            child,
            dir,
            plain_port,
        };
        haproxy.wait_ready();
        haproxy
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("haproxy exited with {status}:\n{}", self.log());
            }
            if StatsSocket::connect(&self.socket_path(), TIMEOUT).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "haproxy not ready:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn socket_path(&self) -> PathBuf {
        self.dir.path().join("s.sock")
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    fn connect(&self) -> StatsSocket {
        StatsSocket::connect(&self.socket_path(), TIMEOUT).unwrap()
    }

    fn observe(&self) -> routegen_host::runtime::Observed {
        observe(&mut self.connect(), &[MAP], Some(CRT_LIST)).unwrap()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> String {
    lines
        .into_iter()
        .map(|l| format!("{}\n", l.as_ref()))
        .collect()
}

/// A command of a kind `Expect::for_command` knows.
fn known(text: &str) -> Command {
    let expect = Expect::for_command(text).unwrap_or_else(|| panic!("unknown kind: {text}"));
    Command::new(text, expect)
}

fn known_payload(text: &str, payload: &str) -> Command {
    let expect = Expect::for_command(text).unwrap_or_else(|| panic!("unknown kind: {text}"));
    Command::with_payload(text, payload, expect)
}

fn assert_all_done(report: &routegen_host::runtime::BatchReport, cmds: &[Command]) {
    if let Some(failure) = &report.failure {
        panic!(
            "command {} `{}` failed: {:?}",
            failure.index, failure.command, failure.outcome
        );
    }
    assert_eq!(report.done, cmds.len());
    assert_eq!(report.durations.len(), cmds.len());
}

#[test]
fn every_command_kind_succeeds_and_is_recognised() {
    if haproxy_missing() {
        return;
    }
    let haproxy = Haproxy::start(&Files::default());
    let port = free_port();
    let cmds = vec![
        known(&format!(
            "add server be_app/s3 127.0.0.1:{port} id 3 weight 5 check"
        )),
        known("enable server be_app/s3"),
        known("set server be_app/s3 weight 7"),
        known("set server be_app/s3 state drain"),
        known("set server be_app/s3 state ready"),
        known("enable health be_app/s3"),
        known("disable server be_app/s3"),
        known("shutdown sessions server be_app/s3"),
        known("set server be_app/s3 state maint"),
        known("del server be_app/s3"),
        known("set dynamic-cookie-key backend be_app k2"),
        known(&format!("add map {MAP} c.example.com be_app")),
        known(&format!("set map {MAP} c.example.com be_other")),
        known(&format!("del map {MAP} c.example.com")),
        known_payload(
            &format!("add map {MAP}"),
            "d.example.com be_app\ne.example.com be_other\n",
        ),
        known("new ssl cert certs/new.pem"),
        known_payload("set ssl cert certs/new.pem", &pem("shared")),
        known("commit ssl cert certs/new.pem"),
        known_payload(
            &format!("add ssl crt-list {CRT_LIST}"),
            "certs/new.pem [alpn h2] a.example.com",
        ),
        known_payload("set ssl cert certs/www.pem", &pem("www")),
        known("abort ssl cert certs/www.pem"),
        known(&format!("del ssl crt-list {CRT_LIST} certs/new.pem")),
        known("del ssl cert certs/new.pem"),
        known("new ssl ca-file certs/new-ca.crt"),
        known_payload("set ssl ca-file certs/new-ca.crt", &test_cert("ca.crt")),
        known("commit ssl ca-file certs/new-ca.crt"),
        known_payload("set ssl ca-file certs/new-ca.crt", &test_cert("destca.crt")),
        known("abort ssl ca-file certs/new-ca.crt"),
        known("del ssl ca-file certs/new-ca.crt"),
    ];
    let report = run_batch(&mut haproxy.connect(), &cmds);
    assert_all_done(&report, &cmds);
    let kinds = report.totals_by_kind(&cmds);
    assert_eq!(kinds["set server state"].0, 3);
    assert_eq!(kinds.values().map(|(n, _)| n).sum::<usize>(), cmds.len());

    // The changes took effect: only the payload-added map entries remain.
    let observed = haproxy.observe();
    assert!(!observed.servers["be_app"].contains_key("s3"));
    let keys: Vec<&str> = observed.maps[MAP].iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["a.example.com", "d.example.com", "e.example.com"]);
    assert!(!observed.certs.contains_key("certs/new.pem"));
    assert!(!observed.ca_files.contains_key("certs/new-ca.crt"));
}

#[test]
fn a_refused_command_stops_the_batch_with_haproxys_answer() {
    if haproxy_missing() {
        return;
    }
    let haproxy = Haproxy::start(&Files::default());
    let mut sock = haproxy.connect();
    let cmds = [
        known("set server be_app/s1 weight 7"),
        known("set server be_app/nope weight 2"),
        known("set server be_app/s1 weight 9"),
    ];
    let report = run_batch(&mut sock, &cmds);
    assert_eq!(report.done, 1);
    let failure = report.failure.as_ref().unwrap();
    assert_eq!(
        (failure.index, failure.command.as_str()),
        (1, "set server be_app/nope weight 2")
    );
    match &failure.outcome {
        Outcome::Refused { answer } => assert_eq!(answer.trim(), "No such server."),
        other => panic!("{other:?}"),
    }
    match report.into_result() {
        Err(RuntimeError::Refused { command, answer }) => {
            assert_eq!(command, "set server be_app/nope weight 2");
            assert!(answer.contains("No such server."));
        }
        other => panic!("{other:?}"),
    }
    // The command after the failed one was not run.
    assert_eq!(
        sock.command("get weight be_app/s1").unwrap().trim(),
        "7 (initial 1)"
    );

    let unknown = Command::new("frobnicate everything", Expect::Empty).run(&mut sock);
    match unknown {
        Outcome::Refused { answer } => assert!(answer.starts_with("Unknown command"), "{answer}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_payloads_and_commands_are_refused_before_sending() {
    if haproxy_missing() {
        return;
    }
    let haproxy = Haproxy::start(&Files::default());
    let mut sock = haproxy.connect();
    let add_map = format!("add map {MAP}");
    for payload in [
        "x.example.com be_app\n\ny.example.com be_app",
        "x.example.com be_app\n  \ny.example.com be_app",
    ] {
        match sock.command_with_payload(&add_map, payload) {
            Err(RuntimeError::BadPayload { command, .. }) => assert_eq!(command, add_map),
            other => panic!("{other:?}"),
        }
    }
    for cmd in [
        "show info; show stat",
        "show info\nshow stat",
        "add map hosts.map <<",
    ] {
        assert!(
            matches!(sock.command(cmd), Err(RuntimeError::BadCommand { .. })),
            "{cmd}"
        );
    }

    // Exactly the largest size HAProxy's buffer takes goes through; one
    // byte more is refused.
    let mut payload = String::new();
    let framing = add_map.len() + " <<\n".len() + "\n\n".len();
    let mut i = 0;
    while framing + payload.len() + 40 < DEFAULT_MAX_COMMAND_BYTES {
        payload.push_str(&format!("k{i:05}.example.com be_app\n"));
        i += 1;
    }
    let last = "z.example.com be_";
    let pad = DEFAULT_MAX_COMMAND_BYTES - framing - payload.len() - last.len();
    payload.push_str(&format!("{last}{}", "x".repeat(pad)));
    assert_eq!(sock.command_with_payload(&add_map, &payload).unwrap(), "");
    let too_big = format!("{payload}x");
    assert!(matches!(
        sock.command_with_payload(&add_map, &too_big),
        Err(RuntimeError::BadPayload { .. })
    ));

    // Nothing refused was sent, and the connection still works.
    let observed = observe(&mut sock, &[MAP], None).unwrap();
    let keys = &observed.maps[MAP];
    assert_eq!(keys.len(), 1 + i + 1);
    assert!(!keys
        .iter()
        .any(|(k, _)| k.starts_with("x.") || k.starts_with("y.")));
}

/// A backend on 127.0.0.1 that accepts connections and holds them until
/// told to let go; reports each accept.
fn holding_backend() -> (u16, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (accepted_tx, accepted_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        accepted_tx.send(()).unwrap();
        let _ = release_rx.recv();
        let _ =
            conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    });
    (port, accepted_rx, release_tx)
}

#[test]
fn del_server_with_an_open_connection_is_still_in_use() {
    if haproxy_missing() {
        return;
    }
    let (port, accepted, release) = holding_backend();
    let haproxy = Haproxy::start(&Files {
        backend_port: Some(port),
        ..Files::default()
    });
    let mut client = TcpStream::connect(("127.0.0.1", haproxy.plain_port)).unwrap();
    client
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .unwrap();
    accepted
        .recv_timeout(TIMEOUT)
        .expect("the request reached the backend");

    let mut sock = haproxy.connect();
    let cmds = [
        known("set server be_app/s1 state maint"),
        known("del server be_app/s1"),
    ];
    let report = run_batch(&mut sock, &cmds);
    let failure = report.failure.as_ref().unwrap();
    assert_eq!(failure.index, 1);
    assert!(
        matches!(failure.outcome, Outcome::StillInUse { .. }),
        "{:?}",
        failure.outcome
    );
    assert!(matches!(
        report.into_result(),
        Err(RuntimeError::StillInUse { .. })
    ));

    // Once the connection ends, the same command succeeds.
    release.send(()).unwrap();
    let mut answer = String::new();
    let _ = client.read_to_string(&mut answer);
    drop(client);
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match cmds[1].run(&mut sock) {
            Outcome::Done => break,
            Outcome::StillInUse { .. } if Instant::now() < deadline => {
                thread::sleep(Duration::from_millis(50))
            }
            other => panic!("{other:?}"),
        }
    }
    // A backend without servers is not listed by `show servers state`.
    assert!(!haproxy.observe().servers.contains_key("be_app"));
}

#[test]
fn processes_from_identical_files_observe_equal_until_one_changes() {
    if haproxy_missing() {
        return;
    }
    let a = Haproxy::start(&Files::default());
    let b = Haproxy::start(&Files::default());
    let before = a.observe();
    assert_eq!(before, b.observe());
    assert_eq!(before.servers["be_app"]["s1"].admin, AdminState::Ready);
    assert!(before.certs["certs/www.pem"].sha1.is_some());
    assert_eq!(before.ca_files["certs/ca.crt"].certificates, 1);
    assert!(!before.ca_files.contains_key("@system-ca"));

    let add = [known(&format!(
        "add server be_app/s2 127.0.0.1:{} id 2",
        free_port()
    ))];
    run_batch(&mut a.connect(), &add).into_result().unwrap();
    let after = a.observe();
    assert_ne!(after, b.observe());
    assert_eq!(after.servers["be_app"]["s2"].admin, AdminState::Maint);
}

/// The property the runtime API path rests on: a process changed at
/// runtime serves what a fresh process started from the changed files
/// serves.
#[test]
fn runtime_changes_observe_equal_to_a_fresh_process_from_the_changed_files() {
    if haproxy_missing() {
        return;
    }
    let port = free_port();
    let server_args =
        format!("127.0.0.1:{port} id 3 weight 5 ssl verify required ca-file certs/ca2.crt");
    let crt_line = "certs/shared.pem [alpn h2] a.example.com b.example.com";
    let live = Haproxy::start(&Files {
        backend_port: Some(port),
        ..Files::default()
    });
    let cmds = [
        known("new ssl ca-file certs/ca2.crt"),
        known_payload("set ssl ca-file certs/ca2.crt", &test_cert("ca.crt")),
        known("commit ssl ca-file certs/ca2.crt"),
        known(&format!("add server be_app/s3 {server_args}")),
        known("enable server be_app/s3"),
        known("set server be_app/s1 weight 20"),
        known(&format!("add map {MAP} b.example.com be_other")),
        known("new ssl cert certs/shared.pem"),
        known_payload("set ssl cert certs/shared.pem", &pem("shared")),
        known("commit ssl cert certs/shared.pem"),
        known_payload(&format!("add ssl crt-list {CRT_LIST}"), crt_line),
    ];
    let report = run_batch(&mut live.connect(), &cmds);
    assert_all_done(&report, &cmds);

    let fresh = Haproxy::start(&Files {
        backend_port: Some(port),
        extra_servers: vec![format!("  server s3 {server_args}")],
        extra_map: vec!["b.example.com be_other".into()],
        extra_crt_list: vec![crt_line.into()],
        s1_weight: Some(20),
    });
    let live_observed = live.observe();
    assert_eq!(live_observed, fresh.observe());
    assert_eq!(
        live_observed.servers["be_app"]["s3"].admin,
        AdminState::Ready
    );
    assert_eq!(live_observed.crt_list.as_ref().unwrap().len(), 2);
    assert_eq!(live_observed.ca_files["certs/ca2.crt"].certificates, 1);
}

/// HAProxy reads the file of `del ssl crt-list <list> <file>[:<line>]` up
/// to its first `:`, so the crt-list line of a file named like a Route's
/// certificate (`certs/<ns>:<name>.pem`) cannot be deleted at runtime,
/// with or without a line number; adding and updating it works. The
/// runtime delta leaves such deletions to a reload
/// (`routegen_render::haproxy::runtime::CRT_LIST_COLON`).
#[test]
fn del_crt_list_of_a_file_with_a_colon_is_refused() {
    if haproxy_missing() {
        return;
    }
    let haproxy = Haproxy::start(&Files::default());
    let mut sock = haproxy.connect();
    let file = "certs/ns:shared.pem";
    let cmds = [
        known(&format!("new ssl cert {file}")),
        known_payload(&format!("set ssl cert {file}"), &pem("shared")),
        known(&format!("commit ssl cert {file}")),
        known_payload(
            &format!("add ssl crt-list {CRT_LIST}"),
            &format!("{file} [alpn h2] a.example.com"),
        ),
    ];
    let report = run_batch(&mut sock, &cmds);
    assert_all_done(&report, &cmds);
    for target in [file.to_string(), format!("{file}:2")] {
        match known(&format!("del ssl crt-list {CRT_LIST} {target}")).run(&mut sock) {
            Outcome::Refused { answer } => {
                assert!(
                    answer.contains("wrong line number after colons"),
                    "{answer}"
                )
            }
            other => panic!("{target}: {other:?}"),
        }
    }
    let observed = observe(&mut sock, &[MAP], Some(CRT_LIST)).unwrap();
    assert!(observed
        .crt_list
        .unwrap()
        .contains(&format!("{file} [alpn h2] a.example.com")));
}
