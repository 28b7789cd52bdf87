//! The pipeline as one library call: snapshot → admit → plan → render.
//! These are [`Engine`] passes with empty memos; long-running callers
//! (`run`) keep an [`Engine`] to reuse unchanged objects' results.
//!
//! `render`, `diff` and `run` all go through [`render_snapshot`] (or
//! [`render_verdicts`] when `run` has turned some verdicts into rejections
//! after HAProxy refused a tree), so there is exactly one copy of the
//! decisions. Everything here is synchronous; the only I/O is
//! [`PipelineConfig::load`], which reads the operator's files once (default
//! certificate, service CA, templates), and [`build_tree`], which reads
//! manifests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::admit::{Reason, Rejection, Verdict};
use crate::defaultcert::{self, DefaultCertError};
use crate::engine::Engine;
use crate::model::{ObjectKey, Snapshot};
use crate::output::OutputTree;
use crate::plan::{Plan, PlanSettings};
use crate::render::{BindAddr, RenderError, RenderSettings, Target, Templates};
use crate::source::files::{self, LoadError};
use crate::values::{CookieName, Duration};
use crate::RouterSettings;

/// Everything the decisions depend on besides the objects themselves.
#[derive(Debug)]
pub struct PipelineConfig {
    /// Which proxy the tree is for (same admission and plan for both).
    pub target: Target,
    pub router: RouterSettings,
    pub plan: PlanSettings,
    pub render: RenderSettings,
    pub templates: Templates,
}

/// The result of one pass.
#[derive(Debug)]
pub struct Rendered {
    /// One per Route, sorted by `namespace/name`.
    pub verdicts: Vec<Verdict>,
    pub plan: Plan,
    pub tree: OutputTree,
    /// What the target cannot express (nginx gaps; empty for HAProxy).
    pub target_warnings: Vec<String>,
}

impl Rendered {
    /// Number of admitted and rejected Routes.
    pub fn counts(&self) -> (usize, usize) {
        let admitted = self.verdicts.iter().filter(|v| v.is_admitted()).count();
        (admitted, self.verdicts.len() - admitted)
    }
}

/// Why a pass failed before any tree existed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Admit (with the system clock), plan and render one snapshot.
pub fn render_snapshot(
    snapshot: &Snapshot,
    config: &PipelineConfig,
) -> Result<Rendered, RenderError> {
    Engine::new().render_snapshot(snapshot, config)
}

/// [`render_snapshot`] at a fixed time (tests; only certificate validity
/// warnings depend on it).
pub fn render_snapshot_at(
    snapshot: &Snapshot,
    config: &PipelineConfig,
    now_unix: i64,
) -> Result<Rendered, RenderError> {
    Engine::new().render_snapshot_at(snapshot, config, now_unix)
}

/// Plan and render from verdicts already decided (possibly edited with
/// [`exclude_routes`]).
pub fn render_verdicts(
    verdicts: Vec<Verdict>,
    snapshot: &Snapshot,
    config: &PipelineConfig,
) -> Result<Rendered, RenderError> {
    Engine::new().render_verdicts(verdicts, snapshot, config)
}

/// Load manifests from paths and run [`render_snapshot`]; also returns the
/// loader's warnings.
pub fn build_tree(
    paths: &[PathBuf],
    default_namespace: &str,
    config: &PipelineConfig,
) -> Result<(Vec<String>, Rendered), PipelineError> {
    let loaded = files::load_paths(paths, default_namespace)?;
    let rendered = render_snapshot(&loaded.snapshot, config)?;
    Ok((loaded.warnings, rendered))
}

/// Message of a Route excluded because HAProxy refused the configuration
/// it produced; `alert` is HAProxy's own line.
pub fn excluded_message(alert: &str) -> String {
    format!("HAProxy refused the configuration for this Route: {alert}")
}

/// Turn the verdicts of `excluded` Routes (key → HAProxy's alert line) into
/// `ExtendedValidationFailed` rejections. Routes already rejected keep
/// their own reason. Returns how many verdicts changed.
pub fn exclude_routes(verdicts: &mut [Verdict], excluded: &BTreeMap<ObjectKey, String>) -> usize {
    let mut changed = 0;
    for v in verdicts.iter_mut() {
        if !v.is_admitted() {
            continue;
        }
        if let Some(alert) = excluded.get(&v.key) {
            v.outcome = Err(Rejection::new(
                Reason::ExtendedValidationFailed,
                excluded_message(alert),
            ));
            changed += 1;
        }
    }
    changed
}

/// The operator's settings as given (flags), before any file is read.
#[derive(Clone, Debug)]
pub struct PipelineOptions {
    /// `--target`: haproxy (default) or nginx.
    pub target: Target,
    pub router: RouterSettings,
    /// `--template-dir`: templates replacing the built-in ones.
    pub template_dir: Option<PathBuf>,
    /// `--state-dir`: where the generated default certificate is kept.
    pub state_dir: PathBuf,
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
    #[error(transparent)]
    Templates(#[from] RenderError),
}

impl PipelineConfig {
    /// Read the files the options name (default certificate, generated
    /// once in the state directory when not given; service CA; templates).
    pub fn load(options: &PipelineOptions) -> Result<PipelineConfig, ConfigError> {
        let default_cert =
            defaultcert::resolve(options.default_cert.as_deref(), &options.state_dir)?;
        let service_ca_pem = options
            .service_ca_file
            .as_deref()
            .map(read_service_ca)
            .transpose()
            .map_err(ConfigError::ServiceCa)?;
        let templates = match &options.template_dir {
            Some(dir) => Templates::from_dir(dir)?,
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
            },
            render: RenderSettings {
                http_bind: options.http_bind.clone(),
                https_bind: options.https_bind.clone(),
                run_dir: options.run_dir.clone(),
                maxconn: options.maxconn,
                hard_stop_after: options.hard_stop_after,
                default_cert_pem: default_cert.pem,
            },
            templates,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclude_turns_admitted_into_extended_validation_failed() {
        let loaded = files::load_str(
            "t.yaml",
            "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {name: a, namespace: ns}\nspec: {host: a.example.com, to: {kind: Service, name: s}}\n---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {name: b, namespace: ns}\nspec: {host: b.example.com, to: {kind: Service, name: s}}\n",
            "default",
        )
        .unwrap();
        let mut verdicts = crate::admit::admit_at(&loaded.snapshot, &RouterSettings::default(), 0);
        let mut excluded = BTreeMap::new();
        excluded.insert(ObjectKey::new("ns", "b"), "alert text".to_string());
        excluded.insert(ObjectKey::new("ns", "missing"), "x".to_string());
        assert_eq!(exclude_routes(&mut verdicts, &excluded), 1);
        assert!(verdicts[0].is_admitted());
        let r = verdicts[1].rejection().unwrap();
        assert_eq!(r.reason, Reason::ExtendedValidationFailed);
        assert_eq!(
            r.message,
            "HAProxy refused the configuration for this Route: alert text"
        );
        // Idempotent: already rejected Routes are left alone.
        assert_eq!(exclude_routes(&mut verdicts, &excluded), 0);
    }
}
