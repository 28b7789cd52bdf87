//! Render: the plan formatted as a proxy's configuration tree (SPEC §8).
//!
//! Renderers make no routing decisions (those live in [`routegen_core::plan`]);
//! they choose the proxy's syntax. Every value reaches the output through
//! [`escape`], which refuses what cannot be written safely. Templates
//! (`templates/haproxy/*.tera`, embedded in the binary, overridable with
//! `--template-dir`) hold the directives as text and make no decision:
//! they print values the renderer has already checked and test the
//! choices it made (see `haproxy/context.rs`). Tera's HTML autoescaping is
//! off: escaping here is explicit and HAProxy-specific.
//!
//! Pure: no file system (replacement templates arrive as text, trees are
//! written by `routegen-host`), no clock ("now" is an argument of the
//! [`engine`] and [`pipeline`] passes), no async. The [`engine`] keeps
//! per-object memos between passes; [`pipeline`] is the same code with
//! empty memos.

pub mod engine;
pub mod escape;
pub mod haproxy;
pub mod nginx;
pub mod output;
pub mod pass;
pub mod pipeline;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use routegen_core::values::Duration;

pub use haproxy::render_haproxy;
pub use nginx::render_nginx;

/// The HAProxy templates, by file name: `haproxy.cfg.tera` (global,
/// defaults, frontends), `backend.cfg.tera` (one Route's backend section;
/// `backends/routes-*.cfg` are made of them) and `default-backends.cfg.tera`
/// (`backends/default.cfg`).
pub const HAPROXY_TEMPLATES: &[(&str, &str)] = &[
    (
        "haproxy.cfg.tera",
        include_str!("../templates/haproxy/haproxy.cfg.tera"),
    ),
    (
        "backend.cfg.tera",
        include_str!("../templates/haproxy/backend.cfg.tera"),
    ),
    (
        "default-backends.cfg.tera",
        include_str!("../templates/haproxy/default-backends.cfg.tera"),
    ),
];

/// The nginx templates, by file name (`nginx-modules.tera` holds the
/// `load_module` lines and is included by `nginx.conf.tera`).
pub const NGINX_TEMPLATES: &[(&str, &str)] = &[
    (
        "nginx.conf.tera",
        include_str!("../templates/nginx/nginx.conf.tera"),
    ),
    (
        "nginx-modules.tera",
        include_str!("../templates/nginx/nginx-modules.tera"),
    ),
];

/// Every built-in template (HAProxy and nginx); names are distinct.
/// The file names of every template (both targets).
pub fn template_names() -> impl Iterator<Item = &'static str> {
    all_templates().map(|(name, _)| *name)
}

fn all_templates() -> impl Iterator<Item = &'static (&'static str, &'static str)> {
    HAPROXY_TEMPLATES.iter().chain(NGINX_TEMPLATES.iter())
}

/// Which proxy a tree is rendered for (`--target`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Target {
    #[default]
    Haproxy,
    Nginx,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Haproxy => "haproxy",
            Target::Nginx => "nginx",
        }
    }

    /// The proxy's name in messages ("HAProxy refused ...", "nginx
    /// refused ...").
    pub fn proxy_name(self) -> &'static str {
        match self {
            Target::Haproxy => "HAProxy",
            Target::Nginx => "nginx",
        }
    }

    /// The command that validates a tree for this target, in messages.
    pub fn check_command(self) -> &'static str {
        match self {
            Target::Haproxy => "haproxy -c",
            Target::Nginx => "nginx -t",
        }
    }

    /// The main configuration file of a tree for this target.
    pub fn config_file(self) -> &'static str {
        match self {
            Target::Haproxy => haproxy::CONFIG_FILE,
            Target::Nginx => nginx::CONFIG_FILE,
        }
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "haproxy" => Ok(Target::Haproxy),
            "nginx" => Ok(Target::Nginx),
            other => Err(format!(
                "{}: expected haproxy or nginx",
                routegen_core::values::quote_for_message(other, 32)
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rendered tree and what the target could not express, one warning per
/// Route and feature (`namespace/name: nginx: ...`), sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderedTree {
    pub tree: crate::output::OutputTree,
    pub warnings: Vec<String>,
}

/// Render `plan` for `target`. Returns the tree and what the target could
/// not express (always empty for HAProxy; see [`nginx::render_nginx`]).
pub fn render_target(
    target: Target,
    plan: &routegen_core::plan::Plan,
    settings: &RenderSettings,
    templates: &Templates,
) -> Result<RenderedTree, RenderError> {
    match target {
        Target::Haproxy => Ok(RenderedTree {
            tree: render_haproxy(plan, settings, templates)?,
            warnings: Vec::new(),
        }),
        Target::Nginx => render_nginx(plan, settings, templates),
    }
}

/// Why a tree could not be rendered. Messages name the object (backend,
/// Route, file) and the rule.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// A value refused by [`escape`].
    #[error("{object}: {source}")]
    Unsafe {
        object: String,
        #[source]
        source: escape::EscapeError,
    },
    /// The plan contradicts itself (a bug in plan, never user input).
    #[error("inconsistent plan: {0}")]
    Plan(String),
    /// A setting cannot be rendered.
    #[error("setting {setting}: {message}")]
    Setting {
        setting: &'static str,
        message: String,
    },
    /// A template failed to parse or render.
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
}

impl RenderError {
    pub(crate) fn unsafe_value(
        object: impl fmt::Display,
    ) -> impl FnOnce(escape::EscapeError) -> RenderError {
        let object = object.to_string();
        move |source| RenderError::Unsafe { object, source }
    }

    fn template(name: &str, err: &tera::Error) -> RenderError {
        // Tera nests the useful part (line, column, what) in its sources.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        RenderError::Template {
            name: name.to_string(),
            message,
        }
    }
}

/// A parsed set of templates for one proxy.
pub struct Templates {
    tera: tera::Tera,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<_> = self.tera.get_template_names().collect();
        names.sort_unstable();
        f.debug_struct("Templates").field("names", &names).finish()
    }
}

impl Templates {
    fn build(sources: Vec<(String, String)>) -> Result<Templates, RenderError> {
        let mut tera = tera::Tera::default();
        // HTML escaping would corrupt the configuration; escaping is explicit.
        tera.autoescape_on(Vec::new());
        for (name, text) in &sources {
            tera.add_raw_template(name, text)
                .map_err(|e| RenderError::template(name, &e))?;
        }
        // Check includes/parents resolve now rather than at render time.
        tera.build_inheritance_chains()
            .map_err(|e| RenderError::template("(inheritance)", &e))?;
        Ok(Templates { tera })
    }

    /// The templates built into the binary.
    pub fn embedded() -> Result<Templates, RenderError> {
        Templates::build(
            all_templates()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
        )
    }

    /// The built-in templates, each replaced by the text `replacements`
    /// holds under its file name (`--template-dir`: `routegen-host` reads
    /// the directory). Names that are not templates are ignored.
    pub fn with_replacements(
        mut replacements: std::collections::BTreeMap<String, String>,
    ) -> Result<Templates, RenderError> {
        Templates::build(
            all_templates()
                .map(|(name, builtin)| {
                    let text = replacements
                        .remove(*name)
                        .unwrap_or_else(|| builtin.to_string());
                    (name.to_string(), text)
                })
                .collect(),
        )
    }

    pub(crate) fn render(
        &self,
        name: &str,
        context: &tera::Context,
    ) -> Result<String, RenderError> {
        self.tera
            .render(name, context)
            .map_err(|e| RenderError::template(name, &e))
    }
}

/// A listening address: `:PORT` or `*:PORT` (all IPv4 addresses),
/// `IPv4:PORT`, or `[IPv6]:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BindAddr {
    pub ip: Option<IpAddr>,
    pub port: u16,
}

impl FromStr for BindAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            format!(
                "{}: expected :PORT, *:PORT, IPv4:PORT or [IPv6]:PORT",
                routegen_core::values::quote_for_message(s, 64)
            )
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(err)?;
        let port: u16 = match port.parse() {
            Ok(p)
                if p > 0 && !port.starts_with('0') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                p
            }
            _ => return Err(err()),
        };
        let ip = if host.is_empty() || host == "*" {
            None
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(IpAddr::V6(v6.parse().map_err(|_| err())?))
        } else {
            Some(IpAddr::V4(host.parse().map_err(|_| err())?))
        };
        Ok(BindAddr { ip, port })
    }
}

impl fmt::Display for BindAddr {
    /// The HAProxy form: `:80`, `127.0.0.1:8080`, `[::1]:443`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            None => write!(f, ":{}", self.port),
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:{}", self.port),
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:{}", self.port),
        }
    }
}

/// Default `--run-dir`.
pub const DEFAULT_RUN_DIR: &str = "/var/lib/haproxy/run";
/// Default `maxconn`.
/// Default [`RenderSettings::max_old_workers`].
pub const DEFAULT_MAX_OLD_WORKERS: u32 = 5;

pub const DEFAULT_MAXCONN: u32 = 50_000;

/// Proxy-level settings of the rendered configuration (not routing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderSettings {
    /// `bind` addresses of the plain HTTP frontend (default `:80`).
    pub http_bind: Vec<BindAddr>,
    /// `bind` addresses of the TLS frontend (default `:443`).
    pub https_bind: Vec<BindAddr>,
    /// Directory of HAProxy's Unix sockets: the runtime API
    /// (`haproxy.sock`) and the internal TLS frontend (`fe_terminate.sock`).
    pub run_dir: String,
    /// Global `maxconn`.
    pub maxconn: u32,
    /// `hard-stop-after`: how long old processes may finish after a reload.
    pub hard_stop_after: Duration,
    /// `mworker-max-reloads`: an old worker still running after this many
    /// further reloads is stopped by the master (so at most this many old
    /// workers live at a time).
    pub max_old_workers: u32,
    /// The default certificate (key and certificate chain, PEM), written
    /// to `certs/default.pem`.
    pub default_cert_pem: String,
    /// The router's global header actions (the IngressController's
    /// `spec.httpHeaders.actions`), applied to every HTTP and
    /// TLS-terminated request with OpenShift's precedence.
    pub header_actions: routegen_core::values::HeaderActions,
    /// `--haproxy-metrics-bind`: where HAProxy serves its own Prometheus
    /// metrics (`fe_metrics`, GET /metrics); empty: nowhere. HAProxy only.
    pub metrics_bind: Vec<BindAddr>,
    /// `--haproxy-log`: HAProxy sends its access log (`option httplog`,
    /// `option tcplog` for passthrough) and events there, syslog over UDP;
    /// `None`: no log. HAProxy only.
    pub log_target: Option<std::net::SocketAddr>,
    /// HAProxy's own event messages (level notice and above: servers going
    /// up and down, proxies started and stopped, alerts) as unix datagrams
    /// to `<run_dir>/events.sock` (`haproxy::EVENTS_SOCKET`), which
    /// `routegen run` reads and logs; never access logs. HAProxy sends
    /// without blocking and drops what nobody receives. Set by `run` only,
    /// so `render` output does not change. HAProxy only.
    pub events_log: bool,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            http_bind: vec![BindAddr { ip: None, port: 80 }],
            https_bind: vec![BindAddr {
                ip: None,
                port: 443,
            }],
            run_dir: DEFAULT_RUN_DIR.to_string(),
            maxconn: DEFAULT_MAXCONN,
            hard_stop_after: "30m".parse().expect("valid duration"),
            max_old_workers: DEFAULT_MAX_OLD_WORKERS,
            default_cert_pem: String::new(),
            header_actions: Default::default(),
            metrics_bind: Vec::new(),
            log_target: None,
            events_log: false,
        }
    }
}

/// The tree under construction, shared by the renderers: every path is
/// checked by the escaping module and two files at one path are refused.
#[derive(Default)]
pub(crate) struct Files(pub(crate) crate::output::OutputTree);

impl Files {
    /// [`Files::insert`] of contents shared with the renderer's memo (no copy).
    pub(crate) fn insert_shared(
        &mut self,
        path: &str,
        contents: std::sync::Arc<[u8]>,
        secret: bool,
    ) -> Result<(), RenderError> {
        escape::relative_path("output file", path)
            .map_err(RenderError::unsafe_value("output tree"))?;
        if self.0.contains_key(path) {
            return Err(RenderError::Plan(format!("two files at {path}")));
        }
        self.0.insert(
            path.to_string(),
            crate::output::OutputFile::shared(contents, secret),
        );
        Ok(())
    }

    pub(crate) fn insert(
        &mut self,
        path: &str,
        contents: Vec<u8>,
        secret: bool,
    ) -> Result<(), RenderError> {
        self.insert_shared(path, contents.into(), secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_bind_addr() {
        for (input, shown) in [
            (":80", ":80"),
            ("*:80", ":80"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("[::]:443", "[::]:443"),
            ("[::1]:8443", "[::1]:8443"),
        ] {
            assert_eq!(input.parse::<BindAddr>().unwrap().to_string(), shown);
        }
        for bad in [
            "80",
            ":0",
            ":65536",
            ":080",
            "::1:80",
            "[::1]",
            "host:80",
            "1.2.3.4:80 ssl",
            ":80\n",
            "[::1]:8a",
        ] {
            assert!(bad.parse::<BindAddr>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn render_templates_embedded_parse_and_override() {
        let t = Templates::embedded().unwrap();
        assert!(format!("{t:?}").contains("haproxy.cfg.tera"));
        Templates::with_replacements(Default::default()).unwrap();
        let err = Templates::with_replacements(
            [("haproxy.cfg.tera".to_string(), "{% for x in %}".to_string())].into(),
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("template haproxy.cfg.tera: "),
            "{err}"
        );
    }
}
