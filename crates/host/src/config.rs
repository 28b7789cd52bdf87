//! The operator's options turned into a [`PipelineConfig`]: the one place
//! the files they name are read (default certificate, service CA,
//! replacement templates).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use routegen_core::admit::validation::validate_global_header_actions;
use routegen_core::plan::spares::SpareSettings;
use routegen_core::plan::PlanSettings;
use routegen_core::values::{CookieName, Duration, HeaderActions};
use routegen_core::RouterSettings;
use routegen_render::pipeline::PipelineConfig;
use routegen_render::{BindAddr, RenderError, RenderSettings, Target, Templates};

use crate::defaultcert::{self, DefaultCertError};

/// The operator's settings as given (flags), before any file is read.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// `--target`: haproxy (default) or nginx.
    pub target: Target,
    pub router: RouterSettings,
    /// `--template-dir`: templates replacing the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// `--state-dir`: where the generated default certificate is kept.
    /// `None`: a dry run given no state directory uses the placeholder
    /// default certificate and writes nothing ([`defaultcert::resolve`]).
    pub state_dir: Option<PathBuf>,
    /// `--default-cert`: key and certificate chain in one PEM file.
    pub default_cert: Option<PathBuf>,
    /// `--service-ca-file`.
    pub service_ca_file: Option<PathBuf>,
    pub cookie_name: Option<CookieName>,
    pub disable_http2: bool,
    pub allow_loopback_endpoints: bool,
    pub http_bind: Vec<BindAddr>,
    pub https_bind: Vec<BindAddr>,
    pub run_dir: String,
    pub maxconn: u32,
    pub hard_stop_after: Duration,
    /// `--max-old-workers`.
    pub max_old_workers: u32,
    /// `--header-actions`: the router's global header actions (YAML or
    /// JSON, the IngressController's `spec.httpHeaders.actions`).
    pub header_actions_file: Option<PathBuf>,
    /// `--spare-backends`, `--max-spare-backends` (HAProxy target only).
    pub spares: SpareSettings,
    /// `--haproxy-metrics-bind` (HAProxy target only).
    pub haproxy_metrics_bind: Vec<BindAddr>,
    /// `--haproxy-log` (HAProxy target only).
    pub haproxy_log: Option<std::net::SocketAddr>,
    /// HAProxy's event messages to `<run_dir>/events.sock`
    /// ([`RenderSettings::events_log`]): set by `routegen run`, which reads
    /// that socket; no flag. HAProxy target only.
    pub haproxy_events: bool,
}

/// A file named by [`PipelineOptions`] is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "default certificate (use --default-cert FILE, or --state-dir DIR for a generated one): {0}"
    )]
    DefaultCert(#[from] DefaultCertError),
    #[error("{0}")]
    ServiceCa(String),
    /// `--header-actions` could not be read or broke a rule.
    #[error("{0}")]
    HeaderActions(String),
    #[error(transparent)]
    Templates(#[from] RenderError),
    /// `--template-dir` (or a file in it) could not be read.
    #[error("{path}: {source}")]
    TemplateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Read the files the options name (default certificate, generated once in
/// the state directory when not given; service CA; templates) into the
/// configuration every pass uses.
pub fn load(options: &PipelineOptions) -> Result<PipelineConfig, ConfigError> {
    let default_cert = defaultcert::resolve(
        options.default_cert.as_deref(),
        options.state_dir.as_deref(),
    )?;
    let service_ca_pem = options
        .service_ca_file
        .as_deref()
        .map(read_service_ca)
        .transpose()
        .map_err(ConfigError::ServiceCa)?;
    let header_actions = options
        .header_actions_file
        .as_deref()
        .map(read_header_actions)
        .transpose()
        .map_err(ConfigError::HeaderActions)?
        .unwrap_or_default();
    let templates = match &options.template_dir {
        Some(dir) => templates_from_dir(dir)?,
        None => Templates::embedded()?,
    };
    Ok(PipelineConfig {
        target: options.target,
        router: options.router.clone(),
        plan: PlanSettings {
            cookie_name: options.cookie_name.clone(),
            service_ca_pem,
            disable_http2: options.disable_http2,
            allow_loopback_endpoints: options.allow_loopback_endpoints,
            default_cert_sha256: Some(default_cert.sha256),
            // nginx reloads for every change: spares would only cost.
            spares: match options.target {
                Target::Haproxy => options.spares,
                Target::Nginx => SpareSettings::NONE,
            },
        },
        render: RenderSettings {
            http_bind: options.http_bind.clone(),
            https_bind: options.https_bind.clone(),
            run_dir: options.run_dir.clone(),
            maxconn: options.maxconn,
            hard_stop_after: options.hard_stop_after,
            max_old_workers: options.max_old_workers,
            default_cert_pem: default_cert.pem,
            header_actions,
            metrics_bind: options.haproxy_metrics_bind.clone(),
            log_target: options.haproxy_log,
            events_log: options.haproxy_events && options.target == Target::Haproxy,
        },
        templates,
        tls_cache: Default::default(),
    })
}

/// `--header-actions`: `{request: [...], response: [...]}` (YAML or JSON)
/// with the rules of a Route's `spec.httpHeaders.actions`.
pub fn read_header_actions(path: &Path) -> Result<HeaderActions, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let value: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|e| format!("{}: not YAML or JSON: {e}", path.display()))?;
    validate_global_header_actions(&value, "actions")
        .map_err(|e| format!("{} (--header-actions): {e}", path.display()))
}

/// `--service-ca-file`: must hold at least one PEM certificate.
pub fn read_service_ca(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let certs = openssl::x509::X509::stack_from_pem(text.as_bytes())
        .map_err(|e| format!("{}: not a PEM certificate bundle: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate found", path.display()));
    }
    Ok(text)
}

/// The built-in templates, each replaced by the file of the same name in
/// `dir` when there is one (`--template-dir`).
pub fn templates_from_dir(dir: &Path) -> Result<Templates, ConfigError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| ConfigError::TemplateDir { path, source }
    };
    let meta = std::fs::metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() {
        return Err(io(dir)(std::io::Error::other("not a directory")));
    }
    let mut replacements = BTreeMap::new();
    for name in routegen_render::template_names() {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                replacements.insert(name.to_string(), text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(io(&path)(source)),
        }
    }
    Ok(Templates::with_replacements(replacements)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_templates_from_dir_override_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(templates_from_dir(&dir.path().join("missing")).is_err());
        templates_from_dir(dir.path()).unwrap();
        std::fs::write(dir.path().join("haproxy.cfg.tera"), "{% for x in %}").unwrap();
        let err = templates_from_dir(dir.path()).unwrap_err();
        assert!(
            err.to_string().starts_with("template haproxy.cfg.tera: "),
            "{err}"
        );
    }
}
