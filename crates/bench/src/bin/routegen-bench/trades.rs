//! `routegen-bench haproxy-trades`: what HAProxy's memory and start time
//! owe to each part routegen emits per backend and per server, and to the
//! tune settings that trade memory (issue 20 item 3).
//!
//! The benchmark fleet's tree (as `run` renders it: binds on 127.0.0.1
//! free ports, `maxconn` [`super::BENCH_MAXCONN`]) is rendered once, in
//! memory. Each variant is that tree with one edit ([`Edit`]: generic
//! line edits of `haproxy.cfg` and `backends/*.cfg`, or `crt-list.txt`
//! emptied), written to a directory of its own. Every round measures
//! every variant in turn, so drift on a shared machine hits them alike:
//! `haproxy -c` on the variant as written (wall time and max RSS, see
//! [`super::check_tree`]) and HAProxy started on it without health checks
//! ([`super::haproxy_rss`]: VmRSS once settled, time until it listens).
//! A variant `haproxy -c` refuses is reported as an error row.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::{bail, Context as _};

use routegen_host::source::files;
use routegen_render::haproxy::{BACKENDS_DIR, CONFIG_FILE, CRT_LIST};
use routegen_render::output::{OutputFile, OutputTree};

/// Options of `haproxy-trades`.
pub struct Options<'a> {
    pub routes: usize,
    pub seed: u64,
    pub rounds: usize,
    pub haproxies: &'a [PathBuf],
    /// Variant names to measure (all when empty); `as-rendered`, the
    /// baseline, is always measured.
    pub only: &'a [String],
    pub cert_dir: &'a Path,
    /// Command line shown above the tables.
    pub command: String,
}

/// What a variant changes in the rendered tree.
#[derive(Clone, Copy)]
enum Edit {
    /// Nothing: the tree as rendered.
    None,
    /// Every configuration file (`haproxy.cfg`, `backends/*.cfg`) through
    /// this text edit.
    Configs(fn(&str) -> String),
    /// These lines added to the global section of `haproxy.cfg`.
    Global(&'static [&'static str]),
    /// Every server's `ca-file` pointed at the tree's first CA file.
    OneCaFile,
    /// `crt-list.txt` emptied (the `bind` keeps its `crt` default
    /// certificate).
    EmptyCrtList,
}

struct Variant {
    name: &'static str,
    what: &'static str,
    edit: Edit,
}

const VARIANTS: &[Variant] = &[
    Variant {
        name: "as-rendered",
        what: "the tree as routegen writes it",
        edit: Edit::None,
    },
    Variant {
        name: "no-checks",
        what: "servers without `check inter …` (the running figure is always without)",
        edit: Edit::Configs(super::strip_checks),
    },
    Variant {
        name: "no-forwarded-rules",
        what: "no `option forwardfor`, no `http-request add-header X-Forwarded-*`/`Forwarded`",
        edit: Edit::Configs(no_forwarded_rules),
    },
    Variant {
        name: "one-ca-file",
        what: "every server `ca-file` is the tree's first CA file",
        edit: Edit::OneCaFile,
    },
    Variant {
        name: "no-server-tls",
        what: "servers without `ssl`, `verify`, `ca-file`, `verifyhost`, `alpn`, `sni`",
        edit: Edit::Configs(no_server_tls),
    },
    Variant {
        name: "no-cookies",
        what: "backends without `cookie` and `dynamic-cookie-key`",
        edit: Edit::Configs(no_cookies),
    },
    Variant {
        name: "no-crt-list",
        what: "empty `crt-list.txt` (only the default certificate is loaded)",
        edit: Edit::EmptyCrtList,
    },
    Variant {
        name: "bare-servers",
        what: "server lines reduced to `server <name> <address>`",
        edit: Edit::Configs(bare_servers),
    },
    Variant {
        name: "no-servers",
        what: "no server lines",
        edit: Edit::Configs(no_servers),
    },
    Variant {
        name: "no-backend-timeouts",
        what: "backends without `timeout` lines (the defaults apply)",
        edit: Edit::Configs(no_backend_timeouts),
    },
    Variant {
        name: "nbthread-1",
        what: "`nbthread 1` in global",
        edit: Edit::Global(&["nbthread 1"]),
    },
    Variant {
        name: "bufsize-8k",
        what: "`tune.bufsize 8192` and `tune.maxrewrite 1024` in global",
        edit: Edit::Global(&["tune.bufsize 8192", "tune.maxrewrite 1024"]),
    },
];

/// What [`edit_lines`] does with one line.
enum Line {
    Keep,
    Drop,
    Replace(String),
}

/// `text` with every line passed through `edit`, which is told whether
/// the line is inside a `backend` section (a section starts at a line
/// that is not indented, not blank and not a comment).
fn edit_lines(text: &str, mut edit: impl FnMut(&str, bool) -> Line) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_backend = false;
    for line in text.lines() {
        if !line.starts_with([' ', '\t', '#']) && !line.is_empty() {
            in_backend = line.split_whitespace().next() == Some("backend");
        }
        match edit(line, in_backend) {
            Line::Keep => out.push_str(line),
            Line::Drop => continue,
            Line::Replace(new) => out.push_str(&new),
        }
        out.push('\n');
    }
    out
}

/// A `server` line split into its indented head (`server <name>
/// <address>`) and its options, or `None` for any other line.
fn server_line(line: &str) -> Option<(&str, Vec<&str>)> {
    let body = line.trim_start();
    let indent = line.len() - body.len();
    let mut words = body.split_whitespace();
    if words.next() != Some("server") {
        return None;
    }
    let _name = words.next()?;
    let address = words.next()?;
    // The head ends where the address ends (`address` is a slice of `body`).
    let end = address.as_ptr() as usize - body.as_ptr() as usize + address.len();
    Some((&line[..indent + end], words.collect()))
}

/// `line` with its server options replaced by `edit(options)`; lines that
/// are not `server` lines are kept.
fn edit_server(line: &str, edit: impl FnOnce(Vec<&str>) -> Vec<String>) -> Line {
    match server_line(line) {
        Some((head, options)) => {
            let mut new = head.to_string();
            for option in edit(options) {
                new.push(' ');
                new.push_str(&option);
            }
            Line::Replace(new)
        }
        None => Line::Keep,
    }
}

/// Removes `option forwardfor` and the `http-request add-header` rules of
/// `X-Forwarded-*` and `Forwarded` headers, in every section.
fn no_forwarded_rules(text: &str) -> String {
    edit_lines(text, |line, _| {
        let line = line.trim_start();
        let forwarded = line == "option forwardfor"
            || line.starts_with("option forwardfor ")
            || line
                .strip_prefix("http-request add-header ")
                .is_some_and(|h| h.starts_with("X-Forwarded-") || h.starts_with("Forwarded "));
        if forwarded {
            Line::Drop
        } else {
            Line::Keep
        }
    })
}

/// Removes the backends' stickiness cookies: `cookie` and
/// `dynamic-cookie-key` lines of `backend` sections.
fn no_cookies(text: &str) -> String {
    edit_lines(text, |line, in_backend| {
        let line = line.trim_start();
        if in_backend && (line.starts_with("cookie ") || line.starts_with("dynamic-cookie-key ")) {
            Line::Drop
        } else {
            Line::Keep
        }
    })
}

/// Removes the per-backend timeouts: `timeout` lines of `backend`
/// sections (the `defaults` section's then apply).
fn no_backend_timeouts(text: &str) -> String {
    edit_lines(text, |line, in_backend| {
        if in_backend && line.trim_start().starts_with("timeout ") {
            Line::Drop
        } else {
            Line::Keep
        }
    })
}

/// Removes server-side TLS: `ssl` and the `verify`, `ca-file`,
/// `verifyhost`, `alpn` and `sni` options (with their values) of every
/// server line.
fn no_server_tls(text: &str) -> String {
    const WITH_VALUE: [&str; 5] = ["verify", "ca-file", "verifyhost", "alpn", "sni"];
    edit_lines(text, |line, _| {
        edit_server(line, |options| {
            let mut kept = Vec::new();
            let mut words = options.into_iter();
            while let Some(word) = words.next() {
                if WITH_VALUE.contains(&word) {
                    words.next();
                } else if word != "ssl" {
                    kept.push(word.to_string());
                }
            }
            kept
        })
    })
}

/// Removes every server option: server lines become `server <name>
/// <address>`.
fn bare_servers(text: &str) -> String {
    edit_lines(text, |line, _| edit_server(line, |_| Vec::new()))
}

/// Removes every server line.
fn no_servers(text: &str) -> String {
    edit_lines(text, |line, _| match server_line(line) {
        Some(_) => Line::Drop,
        None => Line::Keep,
    })
}

/// Removes the variety of CA files: every server's `ca-file <path>`
/// becomes `ca-file <ca>`.
fn one_ca_file(text: &str, ca: &str) -> String {
    edit_lines(text, |line, _| {
        edit_server(line, |options| {
            let mut out: Vec<String> = options.iter().map(|w| w.to_string()).collect();
            for k in 1..out.len() {
                if out[k - 1] == "ca-file" {
                    out[k] = ca.to_string();
                }
            }
            out
        })
    })
}

/// Adds `lines` (indented) right after the first `global` line; the text
/// is unchanged when it has none.
fn add_to_global(text: &str, lines: &[&str]) -> String {
    let mut added = false;
    edit_lines(text, |line, _| {
        if added || line.trim_end() != "global" {
            return Line::Keep;
        }
        added = true;
        let mut new = line.to_string();
        for l in lines {
            new.push_str("\n  ");
            new.push_str(l);
        }
        Line::Replace(new)
    })
}

/// `haproxy.cfg` or a file of `backends/` ending in `.cfg`.
fn is_config(path: &str) -> bool {
    path == CONFIG_FILE
        || path
            .strip_prefix(BACKENDS_DIR)
            .and_then(|p| p.strip_prefix('/'))
            .is_some_and(|p| p.ends_with(".cfg"))
}

/// `tree` with `edit` applied.
fn edited(tree: &OutputTree, edit: Edit) -> anyhow::Result<OutputTree> {
    let first_ca = tree
        .keys()
        .find(|p| p.starts_with("cas/"))
        .cloned()
        .unwrap_or_default();
    let mut out = tree.clone();
    for (path, file) in out.iter_mut() {
        let text = || std::str::from_utf8(&file.contents).with_context(|| path.clone());
        let new = match edit {
            Edit::None => continue,
            Edit::Configs(f) if is_config(path) => f(text()?),
            Edit::Global(lines) if path == CONFIG_FILE => add_to_global(text()?, lines),
            Edit::OneCaFile if is_config(path) && !first_ca.is_empty() => {
                one_ca_file(text()?, &first_ca)
            }
            Edit::EmptyCrtList if path == CRT_LIST => String::new(),
            _ => continue,
        };
        *file = OutputFile::shared(Arc::from(new.into_bytes()), file.secret);
    }
    Ok(out)
}

/// The first line of `haproxy -v`.
fn haproxy_version(haproxy: &Path) -> anyhow::Result<String> {
    let output = Command::new(haproxy)
        .arg("-v")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} -v", haproxy.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    Ok(text.lines().next().unwrap_or("unknown").trim().to_string())
}

/// The figures of one variant on one HAProxy, one entry per round.
#[derive(Default)]
struct Figures {
    check_time: Vec<f64>,
    check_rss: Vec<f64>,
    rss: Vec<f64>,
    listen: Vec<f64>,
    error: Option<String>,
}

use super::median_of as median;

/// The first line of an error, without HAProxy's long prefixes.
fn short_error(error: &anyhow::Error) -> String {
    let text = format!("{error:#}");
    let line = text
        .lines()
        .find(|l| l.contains("ALERT") || l.contains("error"))
        .unwrap_or_else(|| text.lines().next().unwrap_or(""));
    line.trim().replace('|', "\\|").chars().take(160).collect()
}

/// Render the fleet, measure every selected variant on every HAProxy, and
/// return the Markdown report.
pub fn run(opts: &Options<'_>, work: &Path) -> anyhow::Result<String> {
    for name in opts.only {
        if !VARIANTS.iter().any(|v| v.name == name) {
            let names: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
            bail!("unknown variant {name:?}; known: {}", names.join(", "));
        }
    }
    let variants: Vec<&Variant> = VARIANTS
        .iter()
        .filter(|v| {
            opts.only.is_empty() || v.name == "as-rendered" || opts.only.iter().any(|o| o == v.name)
        })
        .collect();
    let base = work.join("trades");
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base)?;
    let default_cert = super::default_cert_file(work)?;
    let [http_port, https_port] = super::free_ports()?;
    let run_dir = tempfile::Builder::new().prefix("rgt-").tempdir_in("/tmp")?;

    // The fleet's tree, once.
    let tree = {
        let yaml = super::fleet_yaml(opts.routes, opts.seed, opts.cert_dir)?;
        let snapshot = files::load_str("fleet.yaml", &yaml, "default")?.snapshot;
        let mut pipeline = super::Pipeline::new(
            &default_cert,
            http_port,
            https_port,
            run_dir.path().display().to_string(),
        )?;
        pipeline.pass(&snapshot)?.0
    };
    let tree_bytes: usize = tree.values().map(|f| f.contents.len()).sum();
    let tree_files = tree.len();
    let mut dirs = Vec::new();
    for v in &variants {
        let dir = base.join(v.name);
        routegen_host::tree::write_tree(&edited(&tree, v.edit)?, &dir)?;
        dirs.push(dir);
    }
    drop(tree);
    let limits = base.join("fd-limit.cfg");
    std::fs::write(&limits, super::FD_LIMIT_CFG)?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "`{}`\n\n{} Routes (seed {}): {tree_files} files, {}. Rounds: {} (each measures \
         every variant in turn); figures are medians.\n",
        opts.command,
        opts.routes,
        opts.seed,
        super::mib(tree_bytes as f64),
        opts.rounds
    );
    for haproxy in opts.haproxies {
        let version = haproxy_version(haproxy)?;
        // "HAProxy version 2.6.12-1+deb12u4 2026/10/17 - https://…"
        let short = version.split_whitespace().nth(2).unwrap_or("?");
        let mut figures: Vec<Figures> = variants.iter().map(|_| Figures::default()).collect();
        for round in 0..opts.rounds {
            for ((v, dir), f) in variants.iter().zip(&dirs).zip(&mut figures) {
                if f.error.is_some() {
                    continue;
                }
                let measured = super::check_tree(haproxy, dir, &limits, 1)
                    .and_then(|check| Ok((check, super::haproxy_rss(haproxy, dir, &limits)?)));
                match measured {
                    Ok(((time, check_rss), (rss, listen))) => {
                        eprintln!(
                            "HAProxy {short}, round {}: {}: -c {} / {}, running {} (listening after {})",
                            round + 1,
                            v.name,
                            super::ms(time),
                            super::mib(check_rss),
                            super::mib(rss as f64),
                            super::ms(listen)
                        );
                        f.check_time.push(time);
                        f.check_rss.push(check_rss);
                        f.rss.push(rss as f64);
                        f.listen.push(listen);
                    }
                    Err(e) => {
                        eprintln!("HAProxy {short}: {}: {e:#}", v.name);
                        f.error = Some(short_error(&e));
                    }
                }
            }
        }
        let _ = writeln!(out, "{version} (`{}`):\n", haproxy.display());
        out.push_str(&table(&variants, &figures));
        out.push('\n');
    }
    out.push_str("Variants:\n\n");
    for v in &variants {
        let _ = writeln!(out, "- `{}`: {}", v.name, v.what);
    }
    Ok(out)
}

fn table(variants: &[&Variant], figures: &[Figures]) -> String {
    let mut out = String::from(
        "| variant | haproxy -c time | -c max RSS | running RSS | listening after | Δ RSS vs as-rendered |\n\
         |---|---:|---:|---:|---:|---:|\n",
    );
    let baseline = figures.first().map_or(f64::NAN, |f| median(f.rss.clone()));
    for (v, f) in variants.iter().zip(figures) {
        if let Some(error) = &f.error {
            let _ = writeln!(out, "| {} | error: {error} | | | | |", v.name);
            continue;
        }
        let rss = median(f.rss.clone());
        let delta = rss - baseline;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {:+.0} MiB ({:+.1}%) |",
            v.name,
            super::ms(median(f.check_time.clone())),
            super::mib(median(f.check_rss.clone())),
            super::mib(rss),
            super::ms(median(f.listen.clone())),
            delta / (1024.0 * 1024.0),
            100.0 * delta / baseline
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
global
  default-path config
  maxconn 8000

defaults
  timeout connect 5s
  timeout server 30s

frontend fe_http
  bind 127.0.0.1:8080
  option forwardfor
  http-request add-header X-Forwarded-Host %[req.hdr(host)]

# route a/b host h path - termination reencrypt
backend be_secure:a:b
  mode http
  option forwardfor
  http-request add-header X-Forwarded-Proto https if { ssl_fc }
  http-request add-header Forwarded for=%[src]
  http-request set-header X-Other 1
  timeout server 45s
  timeout tunnel 2h
  cookie 96d7 insert indirect nocache httponly dynamic secure attr SameSite=None
  dynamic-cookie-key 3877
  server pod:a-0:b:https:10.0.2.1:8443 10.0.2.1:8443 id 21 weight 1 ssl verify required ca-file cas/a:b.pem verifyhost b.a.svc sni str(b) alpn h2,http/1.1 check inter 5000ms
  server pod:a-1:b:http:10.0.2.2:8080 10.0.2.2:8080 id 18 weight 1 check inter 5000ms proto h2

backend be_terminate
  mode tcp
  server fe_terminate unix@/run/fe_terminate.sock send-proxy-v2
";

    /// The lines of `after` that are not in `before`, and those of
    /// `before` that are not in `after` (each in order).
    fn diff(before: &str, after: &str) -> (Vec<String>, Vec<String>) {
        let a: Vec<&str> = before.lines().collect();
        let b: Vec<&str> = after.lines().collect();
        let added = b.iter().filter(|l| !a.contains(l)).map(|l| l.to_string());
        let removed = a.iter().filter(|l| !b.contains(l)).map(|l| l.to_string());
        (added.collect(), removed.collect())
    }

    fn owned(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    /// `edit` of [`SAMPLE`] drops exactly `dropped` (in order), adds nothing.
    fn assert_drops(edit: fn(&str) -> String, dropped: &[&str]) {
        let (added, removed) = diff(SAMPLE, &edit(SAMPLE));
        assert!(added.is_empty(), "added {added:?}");
        assert_eq!(removed, owned(dropped));
    }

    #[test]
    fn no_forwarded_rules_drops_them_in_every_section() {
        assert_drops(
            no_forwarded_rules,
            &[
                "  option forwardfor",
                "  http-request add-header X-Forwarded-Host %[req.hdr(host)]",
                "  option forwardfor",
                "  http-request add-header X-Forwarded-Proto https if { ssl_fc }",
                "  http-request add-header Forwarded for=%[src]",
            ],
        );
    }

    #[test]
    fn no_cookies_drops_the_backends_cookie_lines() {
        assert_drops(
            no_cookies,
            &[
                "  cookie 96d7 insert indirect nocache httponly dynamic secure attr SameSite=None",
                "  dynamic-cookie-key 3877",
            ],
        );
    }

    #[test]
    fn no_backend_timeouts_keeps_the_defaults() {
        assert_drops(
            no_backend_timeouts,
            &["  timeout server 45s", "  timeout tunnel 2h"],
        );
    }

    #[test]
    fn no_server_tls_keeps_the_other_options() {
        let (added, _) = diff(SAMPLE, &no_server_tls(SAMPLE));
        assert_eq!(
            added,
            owned(&[
                "  server pod:a-0:b:https:10.0.2.1:8443 10.0.2.1:8443 id 21 weight 1 check inter 5000ms"
            ])
        );
    }

    #[test]
    fn bare_servers_keep_name_and_address() {
        let (added, removed) = diff(SAMPLE, &bare_servers(SAMPLE));
        assert_eq!(
            added,
            owned(&[
                "  server pod:a-0:b:https:10.0.2.1:8443 10.0.2.1:8443",
                "  server pod:a-1:b:http:10.0.2.2:8080 10.0.2.2:8080",
                "  server fe_terminate unix@/run/fe_terminate.sock",
            ])
        );
        assert_eq!(removed.len(), 3);
    }

    #[test]
    fn no_servers_drops_every_server_line() {
        let out = no_servers(SAMPLE);
        assert!(!out.lines().any(|l| l.trim_start().starts_with("server ")));
        assert_eq!(out.lines().count(), SAMPLE.lines().count() - 3);
    }

    #[test]
    fn one_ca_file_points_every_ca_file_at_one() {
        let out = one_ca_file(SAMPLE, "cas/first.pem");
        let (added, removed) = diff(SAMPLE, &out);
        assert_eq!(added.len(), 1);
        assert_eq!(removed.len(), 1);
        assert_eq!(
            added[0],
            removed[0].replace("ca-file cas/a:b.pem", "ca-file cas/first.pem")
        );
    }

    #[test]
    fn add_to_global_adds_after_the_first_global_line() {
        let out = add_to_global(SAMPLE, &["nbthread 1", "tune.bufsize 8192"]);
        assert!(
            out.starts_with("global\n  nbthread 1\n  tune.bufsize 8192\n  default-path config\n")
        );
        assert_eq!(out.lines().count(), SAMPLE.lines().count() + 2);
        assert_eq!(add_to_global("defaults\n", &["nbthread 1"]), "defaults\n");
    }

    #[test]
    fn strip_checks_is_the_no_checks_edit() {
        let out = super::super::strip_checks(SAMPLE);
        assert!(!out.contains(" check inter "));
        assert!(out.contains("10.0.2.2:8080 id 18 weight 1 proto h2\n"));
    }

    #[test]
    fn edits_touch_only_their_files() {
        let mut tree = OutputTree::new();
        for (path, text) in [
            ("haproxy.cfg", SAMPLE),
            ("backends/routes-000.cfg", SAMPLE),
            ("crt-list.txt", "certs/a:b.pem a.example.com\n"),
            ("cas/0:first.pem", "PEM"),
            ("cas/a:b.pem", "PEM"),
            ("maps/http.map", "server x\n"),
        ] {
            tree.insert(path.into(), OutputFile::public(text));
        }
        let text = |t: &OutputTree, p: &str| String::from_utf8(t[p].contents.to_vec()).unwrap();
        let out = edited(&tree, Edit::Configs(no_servers)).unwrap();
        assert_eq!(text(&out, "haproxy.cfg"), no_servers(SAMPLE));
        assert_eq!(text(&out, "backends/routes-000.cfg"), no_servers(SAMPLE));
        assert_eq!(text(&out, "maps/http.map"), "server x\n");
        let out = edited(&tree, Edit::Global(&["nbthread 1"])).unwrap();
        assert_eq!(text(&out, "backends/routes-000.cfg"), SAMPLE);
        assert!(text(&out, "haproxy.cfg").contains("nbthread 1"));
        let out = edited(&tree, Edit::EmptyCrtList).unwrap();
        assert_eq!(text(&out, "crt-list.txt"), "");
        let out = edited(&tree, Edit::OneCaFile).unwrap();
        assert!(text(&out, "backends/routes-000.cfg").contains("ca-file cas/0:first.pem"));
        assert_eq!(edited(&tree, Edit::None).unwrap(), tree);
    }
}
