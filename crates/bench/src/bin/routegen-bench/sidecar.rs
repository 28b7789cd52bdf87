//! `routegen-bench sidecar`: the whole `routegen run` process holding the
//! benchmark fleet (issue 20 items 2 and 4): how long until its first tree
//! is validated and current, and how much memory it holds then and at its
//! peak, with the directory source and with the kube source listing the
//! fleet from the fake API server (`routegen_testsupport::fake_apiserver`,
//! the real list/watch protocol, served from this process on 127.0.0.1).
//!
//! Each run starts a fresh `routegen run --reload none --no-status` (no
//! HAProxy process: the tree is validated with `haproxy -c` and made
//! current, and `/readyz` turns ready), waits for `/readyz`, lets the
//! process settle, and reads its `VmRSS` and `VmHWM`. Sources alternate
//! within each round, so a busy minute of the shared machine falls on
//! both.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use routegen_testsupport::fake_apiserver::{FakeApiServer, Rbac};

/// Where `routegen run` reads the fleet from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `--source dir:` on a directory holding the fleet as one YAML file.
    Dir,
    /// `--source kube` against the fake API server holding the fleet.
    Kube,
}

impl Source {
    pub fn parse(name: &str) -> anyhow::Result<Source> {
        match name {
            "dir" => Ok(Source::Dir),
            "kube" => Ok(Source::Kube),
            other => bail!("--sources: {other:?} is neither dir nor kube"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Source::Dir => "dir",
            Source::Kube => "kube",
        }
    }
}

pub struct Options<'a> {
    /// Fleet sizes (Routes).
    pub sizes: &'a [usize],
    pub sources: &'a [Source],
    pub runs: usize,
    /// The `routegen` binary measured.
    pub routegen: &'a Path,
    pub haproxy: &'a Path,
    /// The fleet's YAML for a size (certificates from the bench's cache).
    pub fleet_yaml: &'a dyn Fn(usize) -> anyhow::Result<String>,
    pub default_cert: &'a Path,
    /// How long the process is left alone after it turned ready before
    /// its steady RSS is read.
    pub settle: Duration,
    /// Longest wait for `/readyz`.
    pub timeout: Duration,
    /// The command line, for the report.
    pub command: String,
}

/// What one run measured.
#[derive(Clone, Copy, Debug, Default)]
struct Figures {
    /// Process start → `/readyz` answered 200 (first tree current).
    ready: f64,
    /// The first pass's stages, seconds, from its `applied tree` log
    /// line: loading the objects, admit+plan+render, `haproxy -c`, and
    /// the whole pass (writing the tree included).
    load: f64,
    render: f64,
    validation: f64,
    pass: f64,
    /// `VmRSS` after settling, bytes.
    steady_rss: f64,
    /// `VmHWM` after settling, bytes.
    peak_rss: f64,
}

/// A kubeconfig naming `server`, without credentials.
fn write_kubeconfig(server: &FakeApiServer, path: &Path) -> anyhow::Result<()> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\n\
         users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    \
         cluster: fake\n    user: fake\ncurrent-context: fake\n",
        server.url()
    );
    std::fs::write(path, text).with_context(|| path.display().to_string())
}

/// `GET path` on 127.0.0.1:`port`: the status and the body.
fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))?;
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// The value of `key=<number>` in `line`, milliseconds as seconds.
fn field_ms(line: &str, key: &str) -> f64 {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |ms| ms / 1000.0)
}

/// A running `routegen run`, killed when dropped.
struct Routegen(Child);

impl Drop for Routegen {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One fresh `routegen run` on `source`, measured.
fn measure_once(
    opts: &Options<'_>,
    source_arg: &str,
    kubeconfig: Option<&Path>,
    dir: &Path,
) -> anyhow::Result<Figures> {
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    // Sockets: a short absolute path, as `--run-dir` requires.
    let run = tempfile::Builder::new().prefix("rgs-").tempdir_in("/tmp")?;
    let [http, https, listen] = super::free_ports()?;
    let log_path = dir.join("routegen.log");
    let log = std::fs::File::create(&log_path)?;
    let mut cmd = Command::new(opts.routegen);
    cmd.env("ROUTEGEN_LOG", "info")
        .args(["run", "--source", source_arg])
        .arg("--out")
        .arg(&out)
        .arg("--run-dir")
        .arg(run.path())
        .arg("--default-cert")
        .arg(opts.default_cert)
        .arg("--haproxy-bin")
        .arg(opts.haproxy)
        .args([
            "--reload",
            "none",
            "--no-status",
            "--allow-loopback-endpoints",
        ])
        .args(["--maxconn", "8000"])
        .args(["--http-bind", &format!("127.0.0.1:{http}")])
        .args(["--https-bind", &format!("127.0.0.1:{https}")])
        .args(["--listen", &format!("127.0.0.1:{listen}")]);
    if let Some(path) = kubeconfig {
        cmd.arg("--kubeconfig").arg(path);
    }
    let started = Instant::now();
    let mut child = Routegen(
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| opts.routegen.display().to_string())?,
    );
    let pid = child.0.id().to_string();
    let mut polls = 0u32;
    let ready = loop {
        if let Some(status) = child.0.try_wait()? {
            bail!("routegen exited ({status}); log: {}", log_path.display());
        }
        if matches!(get(listen, "/readyz"), Ok((200, _))) {
            break started.elapsed().as_secs_f64();
        }
        polls += 1;
        if polls.is_multiple_of(20) {
            // Once a second: a failing render keeps the process up.
            let log_text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if let Some(line) = log_text.lines().find(|l| l.contains(" ERROR ")) {
                bail!("routegen logged an error: {line}");
            }
        }
        if started.elapsed() > opts.timeout {
            bail!(
                "routegen not ready within {} s; log: {}",
                opts.timeout.as_secs(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(opts.settle);
    let log_text = std::fs::read_to_string(&log_path)?;
    let Some(applied) = log_text.lines().find(|l| l.contains("applied tree")) else {
        bail!("ready without an `applied tree` log line");
    };
    Ok(Figures {
        ready,
        load: field_ms(applied, "load_ms"),
        render: field_ms(applied, "render_ms"),
        validation: field_ms(applied, "validation_ms"),
        pass: field_ms(applied, "duration_ms"),
        steady_rss: (super::proc_status_kib(&pid, "VmRSS:") * 1024) as f64,
        peak_rss: (super::proc_status_kib(&pid, "VmHWM:") * 1024) as f64,
    })
}

/// Every size and source, `opts.runs` rounds: the report (Markdown).
pub fn run(opts: &Options<'_>, work: &Path) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let mut rows = Vec::new();
    for &routes in opts.sizes {
        let dir = work.join(format!("sidecar-n{routes}"));
        let _ = std::fs::remove_dir_all(&dir);
        let manifests = dir.join("manifests");
        std::fs::create_dir_all(&manifests)?;
        let yaml = (opts.fleet_yaml)(routes)?;
        std::fs::write(manifests.join("fleet.yaml"), &yaml)?;
        let server = if opts.sources.contains(&Source::Kube) {
            let server = runtime.block_on(FakeApiServer::start(Rbac::from_deploy()));
            let objects = super::fleet_json_objects(&yaml)?;
            let count = objects.len();
            for object in objects {
                server.apply(object);
            }
            // No watch starts below the list's version: no history kept.
            server.compact();
            eprintln!("n={routes}: the fake API server holds {count} objects");
            Some(server)
        } else {
            None
        };
        drop(yaml);
        let kubeconfig = dir.join("kubeconfig");
        if let Some(server) = &server {
            write_kubeconfig(server, &kubeconfig)?;
        }
        let mut figures: Vec<(Source, Vec<Figures>)> =
            opts.sources.iter().map(|&s| (s, Vec::new())).collect();
        for round in 0..opts.runs {
            for (source, list) in &mut figures {
                let (arg, config) = match source {
                    Source::Dir => (format!("dir:{}", manifests.display()), None),
                    Source::Kube => ("kube".to_string(), Some(kubeconfig.as_path())),
                };
                let f = measure_once(opts, &arg, config, &dir)
                    .with_context(|| format!("n={routes}, {} source", source.name()))?;
                eprintln!(
                    "n={routes} {} round {}: ready after {:.2} s (pass {:.2} s: load {:.2} s, \
                     render {:.2} s, haproxy -c {:.2} s), RSS {} steady, {} peak",
                    source.name(),
                    round + 1,
                    f.ready,
                    f.pass,
                    f.load,
                    f.render,
                    f.validation,
                    super::mib(f.steady_rss),
                    super::mib(f.peak_rss)
                );
                list.push(f);
            }
        }
        drop(server);
        for (source, list) in figures {
            rows.push((routes, source, list));
        }
    }
    Ok(table(opts, &rows))
}

fn table(opts: &Options<'_>, rows: &[(usize, Source, Vec<Figures>)]) -> String {
    let med = |list: &[Figures], f: fn(&Figures) -> f64| {
        super::median_of(list.iter().map(f).collect::<Vec<_>>())
    };
    let mut out = format!("`{}`\n\n", opts.command);
    out.push_str(
        "| Routes | source | runs | ready after | first pass | — load | — admit+plan+render \
         | — haproxy -c | steady RSS | peak RSS |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (routes, source, list) in rows {
        out.push_str(&format!(
            "| {routes} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            source.name(),
            list.len(),
            super::ms(med(list, |f| f.ready)),
            super::ms(med(list, |f| f.pass)),
            super::ms(med(list, |f| f.load)),
            super::ms(med(list, |f| f.render)),
            super::ms(med(list, |f| f.validation)),
            super::mib(med(list, |f| f.steady_rss)),
            super::mib(med(list, |f| f.peak_rss)),
        ));
    }
    out.push_str(
        "\nMedians over the runs. `ready after`: process start until `/readyz` answered 200 \
         (the first tree validated and current; `--reload none`, no HAProxy process). The first \
         pass and its stages are from its `applied tree` log line (for the kube source, load \
         starts when the initial lists are in). RSS: `VmRSS` after the settle time, and \
         `VmHWM`.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_ms_reads_one_field_of_the_applied_line() {
        let line = "INFO routegen::run: applied tree 1: … reload load_ms=888 render_ms=942 \
                    validation_ms=2658 duration_ms=5347";
        assert_eq!(field_ms(line, "load_ms"), 0.888);
        assert_eq!(field_ms(line, "duration_ms"), 5.347);
        assert!(field_ms(line, "reload_ms").is_nan());
    }

    #[test]
    fn sources_parse_by_name() {
        assert_eq!(Source::parse("kube").unwrap(), Source::Kube);
        assert_eq!(Source::parse("dir").unwrap(), Source::Dir);
        assert!(Source::parse("file").is_err());
    }
}
