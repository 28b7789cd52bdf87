//! The render options a sidecar runs with, kept beside its trees so that
//! `diff --against OUT` renders with them: `routegen run` writes
//! `OUT/state/render-options.json` ([`write`]) at start-up, once it holds
//! the output directory's lock, `diff` reads it ([`load`]) and takes every
//! option the user did not give explicitly ([`StoredOptions::apply`]).
//!
//! What is stored is exactly [`PipelineOptions`], the options that reach
//! the renderer (every one of them can change the rendered bytes), keyed
//! by the flag that sets it and written as the flag's value
//! (`"http-bind": [":8080"]`), so the file reads like a command line and
//! every value is parsed back with the flag's own parser. The file is
//! outside the served tree (`state/`, mode 0600 in a 0700 directory, as
//! the default certificate), so trees and golden files do not change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use routegen_core::plan::spares::SpareSettings;
use routegen_core::RouterSettings;
use routegen_host::config::PipelineOptions;
use routegen_render::BindAddr;

/// Where a sidecar's options are kept, relative to its `--out`.
pub const FILE: &str = "state/render-options.json";

/// The format's version; a file of another version is refused (a newer
/// routegen may store options this one cannot apply).
const VERSION: u32 = 1;

/// [`PipelineOptions`] as the flags that set them. Field names are the
/// flags' (kebab-case in the file); values are the flags' text.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StoredOptions {
    version: u32,
    target: String,
    router_domain: Option<String>,
    hostname_template: Option<String>,
    allow_wildcard_routes: bool,
    allowed_domains: Vec<String>,
    denied_domains: Vec<String>,
    disable_namespace_ownership_check: bool,
    /// `None`: no bound (`--max-routes-per-host 0`).
    max_routes_per_host: Option<usize>,
    template_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    default_cert: Option<PathBuf>,
    service_ca_file: Option<PathBuf>,
    cookie_name: Option<String>,
    disable_http2: bool,
    allow_loopback_endpoints: bool,
    http_bind: Vec<String>,
    https_bind: Vec<String>,
    run_dir: String,
    maxconn: u32,
    hard_stop_after: String,
    max_old_workers: u32,
    header_actions: Option<PathBuf>,
    spare_backends: usize,
    max_spare_backends: usize,
    haproxy_metrics_bind: Vec<String>,
    haproxy_log: Option<SocketAddr>,
    /// Not a flag: `run` has HAProxy send its event messages to
    /// `<run-dir>/events.sock`, always taken from the file.
    haproxy_events: bool,
}

fn texts<T: ToString>(values: &[T]) -> Vec<String> {
    values.iter().map(T::to_string).collect()
}

impl StoredOptions {
    /// The options `run` renders with. Relative paths are made absolute,
    /// so a `diff` from another directory finds the same files.
    pub fn of(options: &PipelineOptions) -> StoredOptions {
        let absolute = |p: &Option<PathBuf>| {
            p.as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone()))
        };
        let r = &options.router;
        StoredOptions {
            version: VERSION,
            target: options.target.to_string(),
            router_domain: r.router_domain.clone(),
            hostname_template: r.hostname_template.clone(),
            allow_wildcard_routes: r.allow_wildcard_routes,
            allowed_domains: r.allowed_domains.clone(),
            denied_domains: r.denied_domains.clone(),
            disable_namespace_ownership_check: r.disable_namespace_ownership_check,
            max_routes_per_host: r.max_routes_per_host,
            template_dir: absolute(&options.template_dir),
            state_dir: absolute(&options.state_dir),
            default_cert: absolute(&options.default_cert),
            service_ca_file: absolute(&options.service_ca_file),
            cookie_name: options.cookie_name.as_ref().map(ToString::to_string),
            disable_http2: options.disable_http2,
            allow_loopback_endpoints: options.allow_loopback_endpoints,
            http_bind: texts(&options.http_bind),
            https_bind: texts(&options.https_bind),
            run_dir: options.run_dir.clone(),
            maxconn: options.maxconn,
            hard_stop_after: options.hard_stop_after.to_string(),
            max_old_workers: options.max_old_workers,
            header_actions: absolute(&options.header_actions_file),
            spare_backends: options.spares.per_shape,
            max_spare_backends: options.spares.max,
            haproxy_metrics_bind: texts(&options.haproxy_metrics_bind),
            haproxy_log: options.haproxy_log,
            haproxy_events: options.haproxy_events,
        }
    }

    /// The stored options, typed; an error names the flag and its value.
    pub fn options(&self) -> anyhow::Result<PipelineOptions> {
        anyhow::ensure!(
            self.version == VERSION,
            "version {} (this routegen reads version {VERSION})",
            self.version
        );
        fn parsed<T: std::str::FromStr>(flag: &str, text: &str) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            text.parse()
                .map_err(|e| anyhow::anyhow!("{flag} {text:?}: {e}"))
        }
        let binds = |flag: &str, list: &[String]| -> anyhow::Result<Vec<BindAddr>> {
            list.iter().map(|t| parsed(flag, t)).collect()
        };
        Ok(PipelineOptions {
            target: parsed("target", &self.target)?,
            router: RouterSettings {
                router_domain: self.router_domain.clone(),
                hostname_template: self.hostname_template.clone(),
                allow_wildcard_routes: self.allow_wildcard_routes,
                allowed_domains: self.allowed_domains.clone(),
                denied_domains: self.denied_domains.clone(),
                disable_namespace_ownership_check: self.disable_namespace_ownership_check,
                max_routes_per_host: self.max_routes_per_host,
            },
            template_dir: self.template_dir.clone(),
            state_dir: self.state_dir.clone(),
            default_cert: self.default_cert.clone(),
            service_ca_file: self.service_ca_file.clone(),
            cookie_name: self
                .cookie_name
                .as_deref()
                .map(|c| parsed("cookie-name", c))
                .transpose()?,
            disable_http2: self.disable_http2,
            allow_loopback_endpoints: self.allow_loopback_endpoints,
            http_bind: binds("http-bind", &self.http_bind)?,
            https_bind: binds("https-bind", &self.https_bind)?,
            run_dir: self.run_dir.clone(),
            maxconn: self.maxconn,
            hard_stop_after: parsed("hard-stop-after", &self.hard_stop_after)?,
            max_old_workers: self.max_old_workers,
            header_actions_file: self.header_actions.clone(),
            spares: SpareSettings {
                per_shape: self.spare_backends,
                max: self.max_spare_backends,
            },
            haproxy_metrics_bind: binds("haproxy-metrics-bind", &self.haproxy_metrics_bind)?,
            haproxy_log: self.haproxy_log,
            haproxy_events: self.haproxy_events,
        })
    }

    /// Takes into `options` every stored option whose flag the user did
    /// not give (`explicit(flag)` is false): explicit flags win. The state
    /// directory is not taken (a dry run writes nothing; `diff` reads the
    /// default certificate from [`StoredOptions::state_dir`] itself).
    /// Returns the flags taken whose value differs from `options`', as
    /// `--flag value` for a note.
    pub fn apply(
        &self,
        options: &mut PipelineOptions,
        explicit: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        let stored = self.options()?;
        let mut taken = Vec::new();
        macro_rules! take {
            ($flag:literal, $($field:ident).+, $text:expr) => {
                if !explicit($flag) && options.$($field).+ != stored.$($field).+ {
                    options.$($field).+ = stored.$($field).+;
                    taken.push(format!("--{} {}", $flag, $text));
                }
            };
        }
        let list = |v: &[String]| {
            if v.is_empty() {
                "(none)".to_string()
            } else {
                v.join(",")
            }
        };
        let path = |p: &Option<PathBuf>| {
            p.as_ref()
                .map_or("(none)".to_string(), |p| p.display().to_string())
        };
        take!("target", target, self.target);
        take!(
            "router-domain",
            router.router_domain,
            self.router_domain.as_deref().unwrap_or("(none)")
        );
        take!(
            "hostname-template",
            router.hostname_template,
            self.hostname_template.as_deref().unwrap_or("(none)")
        );
        take!(
            "allow-wildcard-routes",
            router.allow_wildcard_routes,
            self.allow_wildcard_routes
        );
        take!(
            "allowed-domains",
            router.allowed_domains,
            list(&self.allowed_domains)
        );
        take!(
            "denied-domains",
            router.denied_domains,
            list(&self.denied_domains)
        );
        take!(
            "disable-namespace-ownership-check",
            router.disable_namespace_ownership_check,
            self.disable_namespace_ownership_check
        );
        take!(
            "max-routes-per-host",
            router.max_routes_per_host,
            self.max_routes_per_host.unwrap_or(0)
        );
        take!("template-dir", template_dir, path(&self.template_dir));
        take!("default-cert", default_cert, path(&self.default_cert));
        take!(
            "service-ca-file",
            service_ca_file,
            path(&self.service_ca_file)
        );
        take!(
            "cookie-name",
            cookie_name,
            self.cookie_name.as_deref().unwrap_or("(none)")
        );
        take!("disable-http2", disable_http2, self.disable_http2);
        take!(
            "allow-loopback-endpoints",
            allow_loopback_endpoints,
            self.allow_loopback_endpoints
        );
        take!("http-bind", http_bind, list(&self.http_bind));
        take!("https-bind", https_bind, list(&self.https_bind));
        take!("run-dir", run_dir, self.run_dir);
        take!("maxconn", maxconn, self.maxconn);
        take!("hard-stop-after", hard_stop_after, self.hard_stop_after);
        take!("max-old-workers", max_old_workers, self.max_old_workers);
        take!(
            "header-actions",
            header_actions_file,
            path(&self.header_actions)
        );
        take!("spare-backends", spares.per_shape, self.spare_backends);
        take!("max-spare-backends", spares.max, self.max_spare_backends);
        take!(
            "haproxy-metrics-bind",
            haproxy_metrics_bind,
            list(&self.haproxy_metrics_bind)
        );
        take!(
            "haproxy-log",
            haproxy_log,
            self.haproxy_log
                .map_or("(none)".to_string(), |a| a.to_string())
        );
        // No flag sets it: the tree has the events `log` line when run's had.
        if options.haproxy_events != stored.haproxy_events {
            options.haproxy_events = stored.haproxy_events;
            taken.push(format!(
                "(HAProxy events to run's socket: {})",
                self.haproxy_events
            ));
        }
        Ok(taken)
    }

    /// The state directory the sidecar kept its default certificate in.
    pub fn state_dir(&self) -> Option<&Path> {
        self.state_dir.as_deref()
    }
}

/// Writes `options` to `out`'s [`FILE`] atomically (0600; `state/` made
/// 0700 when missing).
pub fn write(out: &Path, options: &PipelineOptions) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let path = out.join(FILE);
    let dir = path.parent().expect("FILE has a directory");
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let mut json = serde_json::to_vec_pretty(&StoredOptions::of(options))?;
    json.push(b'\n');
    routegen_host::tree::write_file_atomic(&path, &json, 0o600)
        .with_context(|| format!("cannot store the render options in {}", path.display()))
}

/// The options stored under `out`, if any: `Ok(None)` when the file is
/// absent (a tree of `render --out`, or a sidecar older than the file).
pub fn load(out: &Path) -> anyhow::Result<Option<StoredOptions>> {
    let path = out.join(FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let stored: StoredOptions = serde_json::from_slice(&text).with_context(|| {
        format!(
            "{}: not the render options routegen run stores",
            path.display()
        )
    })?;
    stored
        .options()
        .with_context(|| format!("{}", path.display()))?;
    Ok(Some(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PipelineOptions {
        PipelineOptions {
            target: routegen_render::Target::Haproxy,
            router: RouterSettings {
                router_domain: Some("apps.example.com".into()),
                allowed_domains: vec!["example.com".into()],
                ..RouterSettings::default()
            },
            template_dir: None,
            state_dir: Some("/out/state".into()),
            default_cert: None,
            service_ca_file: Some("/etc/ca.pem".into()),
            cookie_name: Some("route".parse().unwrap()),
            disable_http2: true,
            allow_loopback_endpoints: true,
            http_bind: vec![":8080".parse().unwrap(), "[::1]:8081".parse().unwrap()],
            https_bind: vec!["127.0.0.1:8443".parse().unwrap()],
            run_dir: "/out/run".into(),
            maxconn: 2000,
            hard_stop_after: "90s".parse().unwrap(),
            max_old_workers: 4,
            header_actions_file: None,
            spares: SpareSettings {
                per_shape: 1,
                max: 16,
            },
            haproxy_metrics_bind: vec!["127.0.0.1:9101".parse().unwrap()],
            haproxy_log: Some("127.0.0.1:514".parse().unwrap()),
            haproxy_events: true,
        }
    }

    #[test]
    fn stored_options_read_back_as_they_were_and_explicit_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &sample()).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join(FILE)), 0o600);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        let stored = load(dir.path()).unwrap().unwrap();
        assert_eq!(
            format!("{:?}", stored.options().unwrap()),
            format!("{:?}", sample())
        );
        let text = std::fs::read_to_string(dir.path().join(FILE)).unwrap();
        assert!(text.contains(r#""http-bind": ["#), "{text}");

        // Into diff's defaults, except the flag given explicitly.
        let mut options = PipelineOptions {
            http_bind: vec![":9999".parse().unwrap()],
            ..sample()
        };
        options.maxconn = 50000;
        options.run_dir = "/var/lib/haproxy/run".into();
        options.haproxy_events = false;
        let taken = stored
            .apply(&mut options, |flag| flag == "http-bind")
            .unwrap();
        assert_eq!(
            taken,
            [
                "--run-dir /out/run",
                "--maxconn 2000",
                "(HAProxy events to run's socket: true)"
            ]
        );
        assert!(options.haproxy_events);
        assert_eq!(options.http_bind, vec![":9999".parse().unwrap()]);
        assert_eq!(options.maxconn, 2000);
    }

    #[test]
    fn absent_is_none_and_a_bad_file_names_itself_and_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load(dir.path()).unwrap().is_none());
        write(dir.path(), &sample()).unwrap();
        let path = dir.path().join(FILE);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\":8080\"", "\"nope\"");
        std::fs::write(&path, text).unwrap();
        let e = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(
            e.contains("render-options.json") && e.contains("http-bind \"nope\""),
            "{e}"
        );
    }
}
