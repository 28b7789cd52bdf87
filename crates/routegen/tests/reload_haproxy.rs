//! Reload against the real HAProxy (SPEC §9): spawn it in master-worker
//! mode, change its configuration, reload through the master CLI, a signal
//! and a command, and check what it serves over plain TCP.
//!
//! Every test uses its own temp dir and ephemeral port; every HAProxy is
//! owned by a `HaproxyProcess`, whose drop kills its process group even when
//! an assertion fails. Binary: `ROUTEGEN_HAPROXY_BIN`, else
//! `/usr/sbin/haproxy`, else `haproxy` on PATH.

use routegen_testsupport::e2e::free_port;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use routegen_host::reload::{
    HaproxyProcess, MasterCli, ReloadMethod, ReloadOptions, Reloader, SpawnOptions,
};
use routegen_testsupport::e2e::haproxy_bin;

struct Fixture {
    dir: tempfile::TempDir,
    port: u16,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
        }
    }

    fn cfg(&self) -> PathBuf {
        self.dir.path().join("haproxy.cfg")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("master.sock")
    }

    fn pidfile(&self) -> PathBuf {
        self.dir.path().join("haproxy.pid")
    }

    /// Write a config answering `body` on the port; `extra` goes into the
    /// frontend before the rule.
    fn write(&self, body: &str, extra: &str) {
        let cfg = format!(
            "global\n    stats timeout 30s\n\ndefaults\n    mode http\n    timeout connect 1s\n    \
             timeout client 30s\n    timeout server 5s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n{extra}    \
             http-request return status 200 content-type text/plain string {body}\n",
            port = self.port
        );
        std::fs::write(self.cfg(), cfg).unwrap();
    }

    async fn spawn(&self, extra_args: &[OsString]) -> HaproxyProcess {
        let opts = SpawnOptions {
            startup_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(3),
            ..SpawnOptions::default()
        };
        HaproxyProcess::spawn_with(
            &haproxy_bin(),
            &self.cfg(),
            &self.socket(),
            extra_args,
            opts,
        )
        .await
        .expect("HAProxy starts")
    }

    fn reloader(&self) -> Reloader {
        Reloader::new(ReloadMethod::MasterCli(self.socket()), options())
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

fn options() -> ReloadOptions {
    ReloadOptions {
        confirm_timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(25),
        io_timeout: Duration::from_secs(1),
        command_timeout: Duration::from_secs(3),
    }
}

/// One `GET /` over a fresh connection; the body, or the error.
fn http_get_blocking(addr: SocketAddr) -> Result<String, String> {
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    if !resp.starts_with("HTTP/1.1 200") {
        return Err(format!("unexpected response: {resp:?}"));
    }
    let (_, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no body: {resp:?}"))?;
    Ok(body.to_string())
}

async fn http_get(addr: SocketAddr) -> Result<String, String> {
    tokio::task::spawn_blocking(move || http_get_blocking(addr))
        .await
        .unwrap()
}

/// Poll `GET /` until it answers `want` (bounded: 2 s). Right after a
/// reload an old worker that has not yet processed its soft-stop may still
/// accept one connection, hence the short poll.
async fn wait_for_body(addr: SocketAddr, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = Err("not tried".to_string());
    for _ in 0..100 {
        last = http_get(addr).await;
        if last.as_deref() == Ok(want) || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(last.as_deref(), Ok(want), "GET / on {addr}");
}

/// Alive and not a zombie (pid 1 in a container may not reap orphans).
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next())
                .unwrap_or("");
            !matches!(state, "Z" | "X")
        }
        Err(_) => false,
    }
}

async fn wait_until_dead(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while pids.iter().any(|p| is_alive(*p)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let alive: Vec<u32> = pids.iter().copied().filter(|p| is_alive(*p)).collect();
    assert!(alive.is_empty(), "still alive: {alive:?}");
}

/// A connection whose request never completes: keeps the worker that
/// accepted it draining (old worker) after a reload.
fn hold_connection(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    s
}

#[tokio::test]
async fn master_cli_reload_serves_new_config_with_a_new_worker() {
    let fx = Fixture::new();
    fx.write("v1", "");
    let haproxy = fx.spawn(&[]).await;
    let cli = haproxy.master_cli().clone();
    let first = cli.show_proc().await.unwrap();
    assert_eq!(first.master_pid, haproxy.pid());
    assert_eq!(first.current_workers.len(), 1);
    assert_eq!(http_get(fx.addr()).await.as_deref(), Ok("v1"));

    let reloader = fx.reloader();
    fx.write("v2", "");
    let out = reloader.reload().await.unwrap();
    assert!(out.confirmed);
    assert_eq!(out.new_worker_pids.len(), 1);
    assert!(!first.current_pids().contains(&out.new_worker_pids[0]));
    assert!(out.duration < Duration::from_secs(5));
    wait_for_body(fx.addr(), "v2").await;
    assert_eq!(
        cli.show_proc().await.unwrap().current_pids(),
        out.new_worker_pids
    );

    // Five in a row: a different worker every time.
    let mut seen = vec![first.current_pids()[0], out.new_worker_pids[0]];
    for n in 3..=7 {
        let body = format!("v{n}");
        fx.write(&body, "");
        let out = reloader.reload().await.unwrap();
        assert_eq!(out.new_worker_pids.len(), 1, "{out:?}");
        let pid = out.new_worker_pids[0];
        assert!(!seen.contains(&pid), "worker {pid} reused: {seen:?}");
        seen.push(pid);
        wait_for_body(fx.addr(), &body).await;
    }
    let list = cli.show_proc().await.unwrap();
    assert_eq!(list.master_pid, haproxy.pid(), "the master never changes");
    assert_eq!(list.master_reloads, Some(6));
    assert_eq!(list.failed_reloads, Some(0));
    haproxy.shutdown().await.unwrap();
}

/// Write a split tree as routegen renders it into `<dir>/trees/<id>`: a
/// `haproxy.cfg` whose frontend uses a backend defined in
/// `backends/routes-000.cfg`, answering `body`; then point `<dir>/current`
/// at it (replacing the symlink atomically, as apply does).
fn write_split_tree(fx: &Fixture, id: &str, body: &str) {
    let tree = fx.dir.path().join("trees").join(id);
    std::fs::create_dir_all(tree.join("backends")).unwrap();
    std::fs::write(
        tree.join("haproxy.cfg"),
        format!(
            "global\n    stats timeout 30s\n\ndefaults\n    mode http\n    timeout connect 1s\n    \
             timeout client 30s\n    timeout server 5s\n\nfrontend fe\n    bind 127.0.0.1:{port}\n    \
             default_backend be_answer\n",
            port = fx.port
        ),
    )
    .unwrap();
    std::fs::write(
        tree.join("backends/routes-000.cfg"),
        format!(
            "backend be_answer\n    http-request return status 200 content-type text/plain string {body}\n"
        ),
    )
    .unwrap();
    let tmp = fx.dir.path().join("current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new("trees").join(id), &tmp).unwrap();
    std::fs::rename(&tmp, fx.dir.path().join("current")).unwrap();
}

#[tokio::test]
async fn split_tree_through_current_symlink_is_reread_on_reload() {
    let fx = Fixture::new();
    write_split_tree(&fx, "00000001-a", "t1");
    let current = fx.dir.path().join("current");
    let opts = SpawnOptions {
        startup_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(3),
        ..SpawnOptions::default()
    };
    let haproxy = HaproxyProcess::spawn_with(
        &haproxy_bin(),
        &current.join("haproxy.cfg"),
        &fx.socket(),
        &[],
        opts,
    )
    .await
    .expect("HAProxy starts on the split tree");
    // Both -f paths go through `current`, unresolved.
    assert_eq!(
        haproxy.config_paths(),
        [current.join("haproxy.cfg"), current.join("backends")]
    );
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", haproxy.pid())).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let f = |path: PathBuf| ["-f".to_string(), path.display().to_string()];
    let want: Vec<String> = f(current.join("haproxy.cfg"))
        .into_iter()
        .chain(f(current.join("backends")))
        .collect();
    assert!(
        args.windows(4).any(|w| w == want.as_slice()),
        "command line {args:?}"
    );
    wait_for_body(fx.addr(), "t1").await;

    // A new tree swapped in: the reload reads it through the symlink,
    // backends included.
    write_split_tree(&fx, "00000002-b", "t2");
    let out = fx.reloader().reload().await.unwrap();
    assert!(out.confirmed);
    wait_for_body(fx.addr(), "t2").await;
    haproxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn failed_reload_is_an_error_and_the_old_worker_keeps_serving() {
    let fx = Fixture::new();
    fx.write("v1", "");
    let haproxy = fx.spawn(&[]).await;
    let reloader = fx.reloader();
    fx.write("v2", "");
    let good = reloader.reload().await.unwrap();
    wait_for_body(fx.addr(), "v2").await;

    // Valid for `haproxy -c`, but the bind fails at startup: a TEST-NET-1
    // address that is not ours.
    let other = free_port();
    fx.write("v3", &format!("    bind 192.0.2.1:{other}\n"));
    let start = Instant::now();
    let err = reloader.reload().await.unwrap_err();
    assert_eq!(err.reason(), "failed", "{err}");
    assert!(err.to_string().contains("failed"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "noticed through [failed: N], not by timing out"
    );
    let list = haproxy.master_cli().show_proc().await.unwrap();
    assert_eq!(list.current_pids(), good.new_worker_pids);
    assert_eq!(http_get(fx.addr()).await.as_deref(), Ok("v2"));

    // A parse error fails the same way.
    fx.write("v3", "    bnd 127.0.0.1:1\n");
    let err = reloader.reload().await.unwrap_err();
    assert_eq!(err.reason(), "failed", "{err}");
    assert_eq!(http_get(fx.addr()).await.as_deref(), Ok("v2"));
    let list = haproxy.master_cli().show_proc().await.unwrap();
    assert_eq!(list.failed_reloads, Some(2));
    assert_eq!(list.current_pids(), good.new_worker_pids);
    assert!(
        haproxy
            .recent_output()
            .iter()
            .any(|l| l.contains("[ALERT]") && l.contains("bnd")),
        "HAProxy's reason is in its output: {:?}",
        haproxy.recent_output()
    );

    // Fixed: the next reload works again.
    fx.write("v4", "");
    let out = reloader.reload().await.unwrap();
    assert!(!good.new_worker_pids.contains(&out.new_worker_pids[0]));
    wait_for_body(fx.addr(), "v4").await;
    // HAProxy 2.6 counts failed reloads since the last successful one.
    let list = haproxy.master_cli().show_proc().await.unwrap();
    assert_eq!(list.failed_reloads, Some(0));
}

#[tokio::test]
async fn signal_and_command_reload_through_the_pidfile() {
    let fx = Fixture::new();
    fx.write("v1", "");
    let pidfile = fx.pidfile();
    let haproxy = fx
        .spawn(&["-p".into(), pidfile.clone().into_os_string()])
        .await;
    let pid_text = std::fs::read_to_string(&pidfile).unwrap();
    assert_eq!(
        pid_text.trim(),
        haproxy.pid().to_string(),
        "-W writes the master pid"
    );
    let cli = haproxy.master_cli().clone();

    // signal:PIDFILE
    let before = cli.show_proc().await.unwrap().current_pids();
    fx.write("v2", "");
    let reloader = Reloader::new(ReloadMethod::Signal(pidfile.clone()), options());
    let out = reloader.reload().await.unwrap();
    assert!(!out.confirmed);
    let after = wait_for_new_worker(&cli, &before).await;
    wait_for_body(fx.addr(), "v2").await;

    // command:... doing the same by hand.
    fx.write("v3", "");
    let cmd = format!("kill -USR2 \"$(head -n1 '{}')\"", pidfile.display());
    let reloader = Reloader::new(ReloadMethod::Command(cmd), options());
    reloader.reload().await.unwrap();
    wait_for_new_worker(&cli, &after).await;
    wait_for_body(fx.addr(), "v3").await;

    // A stale pidfile is refused before any signal is sent.
    let stale = fx.dir.path().join("stale.pid");
    std::fs::write(&stale, "2147483646\n").unwrap();
    let err = Reloader::new(ReloadMethod::Signal(stale), options())
        .reload()
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "pidfile", "{err}");
}

/// Bounded poll for a current worker not in `before`; returns the pids.
async fn wait_for_new_worker(cli: &MasterCli, before: &[u32]) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Ok(list) = cli.show_proc().await {
            let now = list.current_pids();
            if !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
                return now;
            }
        }
        assert!(Instant::now() < deadline, "no new worker after {before:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
async fn command_true_and_false() {
    let ok = Reloader::new(ReloadMethod::Command("true".into()), options());
    let out = ok.reload().await.unwrap();
    assert!(!out.confirmed && out.new_worker_pids.is_empty());
    let bad = Reloader::new(ReloadMethod::Command("false".into()), options());
    let err = bad.reload().await.unwrap_err();
    assert_eq!(err.reason(), "command_failed", "{err}");
    assert!(err.to_string().contains("`false`"), "{err}");
}

#[tokio::test]
async fn old_worker_cap_stops_the_oldest_old_workers() {
    let fx = Fixture::new();
    fx.write("v1", "");
    let haproxy = fx.spawn(&[]).await;
    let reloader = fx.reloader();
    let cli = haproxy.master_cli().clone();

    // Three generations each keep one unfinished request: three old workers.
    let mut held = Vec::new();
    let mut generations = vec![cli.show_proc().await.unwrap().current_pids()[0]];
    for n in 2..=4 {
        held.push(hold_connection(fx.addr()));
        // Let the current worker accept it before it becomes old.
        tokio::time::sleep(Duration::from_millis(100)).await;
        fx.write(&format!("v{n}"), "");
        let out = reloader.reload().await.unwrap();
        generations.push(out.new_worker_pids[0]);
    }
    assert_eq!(reloader.old_workers().await.unwrap(), Some(3));
    let list = cli.show_proc().await.unwrap();
    let mut old: Vec<u32> = list.old_workers.iter().map(|w| w.pid).collect();
    old.sort();
    let mut expected = generations[..3].to_vec();
    expected.sort();
    assert_eq!(old, expected);

    // Nothing to do under the cap.
    assert!(reloader.enforce_old_worker_cap(3).await.unwrap().is_empty());

    let mut stopped = reloader.enforce_old_worker_cap(1).await.unwrap();
    stopped.sort();
    let mut oldest = generations[..2].to_vec();
    oldest.sort();
    assert_eq!(stopped, oldest, "the two oldest generations");
    wait_until_dead(&stopped).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let list = cli.show_proc().await.unwrap();
        if list.old_workers.len() == 1 {
            assert_eq!(list.old_workers[0].pid, generations[2]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old workers: {:?}",
            list.old_workers
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    wait_for_body(fx.addr(), "v4").await;
    drop(held);
}

#[tokio::test]
async fn master_socket_is_0600_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::new();
    fx.write("v1", "");
    // A umask that would leave the socket open to everyone (0777): the
    // `mode` option must not depend on it. Restored at once: HAProxy's
    // socket is created in the child, which inherits the umask at spawn.
    use nix::sys::stat::{umask, Mode};
    let before = umask(Mode::empty());
    let haproxy = fx.spawn(&[]).await;
    umask(before);
    let mode = std::fs::metadata(fx.socket()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "master socket mode {:o}", mode & 0o777);
    haproxy.shutdown().await.unwrap();
}

#[tokio::test]
async fn spawn_reports_haproxy_startup_errors() {
    let fx = Fixture::new();
    fx.write("v1", "    bnd 127.0.0.1:1\n");
    let start = Instant::now();
    let err = HaproxyProcess::spawn(&haproxy_bin(), &fx.cfg(), &fx.socket(), &[])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("exited during startup"), "{msg}");
    assert!(msg.contains("bnd"), "HAProxy's own message: {msg}");
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn shutdown_and_drop_stop_master_and_workers() {
    // Graceful shutdown.
    let fx = Fixture::new();
    fx.write("v1", "");
    let haproxy = fx.spawn(&[]).await;
    let cli = haproxy.master_cli().clone();
    let mut pids = cli.show_proc().await.unwrap().current_pids();
    pids.push(haproxy.pid());
    let status = haproxy.shutdown().await.unwrap();
    assert!(
        status.success(),
        "SIGTERM is a clean stop for HAProxy: {status}"
    );
    wait_until_dead(&pids).await;
    assert!(cli.show_proc().await.is_err(), "master socket gone");
    assert!(
        http_get(fx.addr()).await.is_err(),
        "nothing listens any more"
    );

    // Drop (e.g. a failing test) kills the group, old workers included.
    let fx = Fixture::new();
    fx.write("v1", "");
    let haproxy = fx.spawn(&[]).await;
    let cli = haproxy.master_cli().clone();
    let _held = hold_connection(fx.addr());
    tokio::time::sleep(Duration::from_millis(100)).await;
    fx.write("v2", "");
    fx.reloader().reload().await.unwrap();
    let list = cli.show_proc().await.unwrap();
    assert_eq!(list.old_workers.len(), 1);
    let mut pids = list.current_pids();
    pids.extend(list.old_workers.iter().map(|w| w.pid));
    pids.push(haproxy.pid());
    drop(haproxy);
    wait_until_dead(&pids).await;
}
