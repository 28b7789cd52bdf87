//! `routegen run` as a child process ([`Sidecar`]): a manifest directory
//! (`--source dir:`), `--out`, HTTP, HTTPS and operations ports on
//! 127.0.0.1, `--allow-loopback-endpoints`, `--maxconn 2000` (the default
//! needs more open files than a test environment may grant) and
//! `--debounce 50ms`; `--spawn-haproxy` unless started with
//! [`Sidecar::start_without_spawn`].
//!
//! Every wait is bounded. When dropped, routegen is killed and a HAProxy
//! left behind (ours only: its command line names our `--out`) is killed
//! with its process group; after a failed assertion the routegen log is
//! printed (always with `ROUTEGEN_TEST_SHOW_LOG`).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use routegen_host::reload::master_cli::{parse_show_proc, ProcessList};

use crate::e2e::{free_port, http_request, Request, Response};

/// One `routegen run` with its directories and ports (see the module
/// documentation).
pub struct Sidecar {
    _tmp: tempfile::TempDir,
    /// The watched manifest directory.
    pub manifests: PathBuf,
    /// `--out`.
    pub out: PathBuf,
    /// routegen's stdout and stderr (appended to by every start).
    pub log: PathBuf,
    pub http: u16,
    pub https: u16,
    /// `--listen`: `/readyz`, `/metrics`.
    pub listen: u16,
    /// Arguments after the harness's own (later ones win).
    pub extra: Vec<String>,
    /// `--haproxy-bin`.
    pub haproxy: PathBuf,
    routegen: PathBuf,
    child: Option<Child>,
}

impl Sidecar {
    /// Not started yet; `routegen` is the calling test's
    /// `env!("CARGO_BIN_EXE_routegen")`, HAProxy is
    /// [`crate::e2e::haproxy_bin`].
    pub fn new(routegen: impl Into<PathBuf>, extra: &[&str]) -> Sidecar {
        let tmp = tempfile::Builder::new()
            .prefix("rgrun")
            .tempdir_in("/tmp")
            .unwrap();
        let manifests = tmp.path().join("manifests");
        std::fs::create_dir(&manifests).unwrap();
        Sidecar {
            manifests,
            out: tmp.path().join("out"),
            log: tmp.path().join("routegen.log"),
            http: free_port(),
            https: free_port(),
            listen: free_port(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            haproxy: crate::e2e::haproxy_bin(),
            routegen: routegen.into(),
            _tmp: tmp,
            child: None,
        }
    }

    /// Start `routegen run --spawn-haproxy`.
    pub fn start(&mut self) {
        self.spawn(true);
    }

    /// Start `routegen run` without `--spawn-haproxy`.
    pub fn start_without_spawn(&mut self) {
        self.spawn(false);
    }

    fn spawn(&mut self, spawn_haproxy: bool) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = Command::new(&self.routegen);
        for (k, _) in std::env::vars() {
            if k.starts_with("ROUTEGEN_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("ROUTEGEN_LOG", "info,routegen::run=debug")
            .arg("run")
            .arg("--source")
            .arg(format!("dir:{}", self.manifests.display()))
            .arg("--out")
            .arg(&self.out)
            .args(spawn_haproxy.then_some("--spawn-haproxy"))
            .arg("--haproxy-bin")
            .arg(&self.haproxy)
            .arg("--http-bind")
            .arg(format!("127.0.0.1:{}", self.http))
            .arg("--https-bind")
            .arg(format!("127.0.0.1:{}", self.https))
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.listen))
            .arg("--allow-loopback-endpoints")
            .args(["--maxconn", "2000", "--debounce", "50ms"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.child = Some(cmd.spawn().unwrap());
    }

    /// routegen's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// [`write_manifest`] into the manifest directory.
    pub fn write_manifest(&self, name: &str, text: &str) {
        write_manifest(&self.manifests, name, text);
    }

    /// The backend sections of the tree `current` points to: every
    /// `backends/*.cfg`, concatenated in name order.
    pub fn current_tree_text(&self) -> String {
        let dir = current_tree(&self.out).join("backends");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `GET path` on the operations port; `None` when it does not answer.
    pub fn ops(&self, path: &str) -> Option<Response> {
        http_request(self.listen, &Request::get("localhost", path)).ok()
    }

    /// Wait until `/readyz` answers 200; panics (with the log) when
    /// routegen exits or `limit` passes.
    pub fn wait_ready(&mut self, limit: Duration) {
        let start = Instant::now();
        loop {
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().unwrap()) {
                panic!("routegen exited ({status}):\n{}", self.log_text());
            }
            if self.ops("/readyz").is_some_and(|r| r.status == 200) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "not ready after {limit:?}:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The `/metrics` text (empty when the port does not answer).
    pub fn metrics(&self) -> String {
        self.ops("/metrics").map(|r| r.body).unwrap_or_default()
    }

    /// See [`metric_in`].
    pub fn metric(&self, series: &str) -> f64 {
        metric_in(&self.metrics(), series)
    }

    /// The body of a `200` to `GET /` with `Host: host` on the HTTP port.
    pub fn body(&self, host: &str) -> Option<String> {
        match http_request(self.http, &Request::get(host, "/")) {
            Ok(r) if r.status == 200 => Some(r.body),
            _ => None,
        }
    }

    /// Wait until [`Sidecar::body`] is `want`.
    pub fn wait_body(&self, host: &str, want: &str, limit: Duration) {
        wait_for(limit, &format!("{host} to answer {want}"), || {
            (self.body(host).as_deref() == Some(want)).then_some(())
        });
    }

    /// The HAProxy master's pid from `<out>/haproxy.pid`.
    pub fn haproxy_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.out.join("haproxy.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// `show proc` on the master CLI (`<out>/master.sock`).
    pub fn show_proc(&self) -> Result<ProcessList, String> {
        let socket = self.out.join("master.sock");
        let mut s = UnixStream::connect(&socket).map_err(|e| format!("{socket:?}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"show proc\n").map_err(|e| e.to_string())?;
        // No further command: HAProxy closes after answering.
        s.shutdown(std::net::Shutdown::Write)
            .map_err(|e| e.to_string())?;
        let mut text = String::new();
        s.take(1 << 20)
            .read_to_string(&mut text)
            .map_err(|e| e.to_string())?;
        parse_show_proc(&text)
    }

    /// SIGTERM to routegen; its exit status (at most 20 s).
    pub fn sigterm_and_wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        signal(child.id() as i32, "TERM");
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "routegen did not exit after SIGTERM"
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to routegen (not to HAProxy), and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill9();
        if std::env::var_os("ROUTEGEN_TEST_SHOW_LOG").is_some() || thread::panicking() {
            eprintln!("---- routegen log ----\n{}", self.log_text());
        }
        if let Some(pid) = self.haproxy_pid() {
            let ours = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&*self.out.to_string_lossy()))
                .unwrap_or(false);
            if process_alive(pid) && ours {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .status();
            }
        }
    }
}

/// Write manifest `name` in `dir` atomically (temp file + rename), as
/// editors and kubelet do.
pub fn write_manifest(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// Poll `f` every 50 ms until it returns `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the series whose line starts with `series ` (e.g.
/// `routegen_reloads_total{result="success",method="master_cli",reason="none"}`); 0
/// when absent.
pub fn metric_in(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// `kill -<sig> <pid>`; panics when it fails.
pub fn signal(pid: i32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// `pid` exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string))
                .unwrap_or_default();
            state != "Z" && state != "X"
        }
        Err(_) => false,
    }
}

/// The tree `<out>/current` points to.
pub fn current_tree(out: &Path) -> PathBuf {
    out.join(std::fs::read_link(out.join("current")).expect("current is a symlink"))
}
