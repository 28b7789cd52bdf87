//! What the Kubernetes source is started from: the flags of `run --source
//! kube` ([`KubeArgs`]), the watch configuration they resolve to
//! ([`KubeSourceConfig`]) and the API client ([`client`]).
//!
//! # Contract
//!
//! * Pure translation: nothing here talks to the API server except
//!   [`client`], which only reads the kubeconfig (or the in-cluster
//!   service account) and builds a client.
//! * Selectors are trimmed; an empty one means "none". `--router-name`
//!   must be non-empty ([`KubeArgs::validate`]); `--no-status` turns the
//!   status writer off ([`KubeArgs::status_config`] is `None`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::Client;

use crate::status::StatusConfig;

/// The `--help` heading of the source's flags (`run` shows its other
/// source flags under it too).
pub const HELP_HEADING_SOURCE: &str = "Source";
/// The `--help` heading of the status writer's flags.
pub const HELP_HEADING_STATUS: &str = "Status (kube)";

/// Flags of the Kubernetes source and the status writer (flattened into
/// `run`, under [`HELP_HEADING_SOURCE`] and [`HELP_HEADING_STATUS`]). `--namespace` is `run`'s own flag: see [`KubeSourceConfig::namespace`].
#[derive(clap::Args, Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeArgs {
    /// kubeconfig file [default: the in-cluster service account, else $KUBECONFIG or ~/.kube/config].
    #[arg(long, help_heading = HELP_HEADING_SOURCE, env = "ROUTEGEN_KUBECONFIG", value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Serve only Routes in namespaces whose labels match this selector (e.g. `router=public`).
    #[arg(long, help_heading = HELP_HEADING_SOURCE, env = "ROUTEGEN_NAMESPACE_SELECTOR", value_name = "SELECTOR")]
    pub namespace_selector: Option<String>,
    /// Serve only Routes whose labels match this selector.
    #[arg(long, help_heading = HELP_HEADING_SOURCE, env = "ROUTEGEN_ROUTE_SELECTOR", value_name = "SELECTOR")]
    pub route_selector: Option<String>,
    /// Serve only Routes matching this field selector (e.g. `spec.host!=internal.example.com`).
    #[arg(long, help_heading = HELP_HEADING_SOURCE, env = "ROUTEGEN_ROUTE_FIELD_SELECTOR", value_name = "SELECTOR")]
    pub route_field_selector: Option<String>,
    /// Name of this router in Route status (`status.ingress[].routerName`).
    #[arg(
        long,
        help_heading = HELP_HEADING_STATUS, env = "ROUTEGEN_ROUTER_NAME",
        value_name = "NAME",
        default_value = "default"
    )]
    pub router_name: String,
    /// Host name of this router's load balancer, written to `status.ingress[].routerCanonicalHostname`.
    #[arg(long, help_heading = HELP_HEADING_STATUS, env = "ROUTEGEN_ROUTER_CANONICAL_HOSTNAME", value_name = "HOST")]
    pub router_canonical_hostname: Option<String>,
    /// Do not write Route status.
    #[arg(long, help_heading = HELP_HEADING_STATUS, env = "ROUTEGEN_NO_STATUS")]
    pub no_status: bool,
}

impl KubeArgs {
    /// The source configuration; `namespace` is `run`'s `--namespace` when
    /// given explicitly (`None`: all namespaces).
    pub fn source_config(&self, namespace: Option<String>, debounce: Duration) -> KubeSourceConfig {
        let clean = |s: &Option<String>| {
            s.as_ref()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        KubeSourceConfig {
            namespace: namespace.filter(|n| !n.is_empty()),
            namespace_selector: clean(&self.namespace_selector),
            route_selector: clean(&self.route_selector),
            route_field_selector: clean(&self.route_field_selector),
            debounce,
        }
    }

    /// The status writer's settings, or `None` with `--no-status`.
    pub fn status_config(&self) -> Option<StatusConfig> {
        if self.no_status {
            return None;
        }
        Some(StatusConfig::new(
            self.router_name.clone(),
            self.router_canonical_hostname
                .clone()
                .filter(|h| !h.trim().is_empty()),
        ))
    }

    /// Check what clap cannot: a router name must be non-empty.
    pub fn validate(&self) -> Result<(), String> {
        if self.router_name.trim().is_empty() {
            return Err("--router-name must not be empty".into());
        }
        Ok(())
    }
}

/// Whether `run` without `--source` should use the Kubernetes API: true
/// inside a Pod (`KUBERNETES_SERVICE_HOST` is set).
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
}

/// What to watch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeSourceConfig {
    /// Watch only this namespace (`Api::namespaced`); `None`: all (`Api::all`).
    pub namespace: Option<String>,
    /// Label selector on Namespaces; `None`: no Namespace watch, every namespace.
    pub namespace_selector: Option<String>,
    /// Label selector on Routes.
    pub route_selector: Option<String>,
    /// Field selector on Routes.
    pub route_field_selector: Option<String>,
    /// Extra quiet time [`Changes::changed`](super::Changes::changed)
    /// waits after a change, to gather a burst into one pass (zero: none
    /// beyond the natural coalescing of changes that arrive while a pass
    /// runs).
    pub debounce: Duration,
}

/// Why no client could be built. (The message includes the cause; no
/// `source()` chain, so `{:#}` does not repeat it.)
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{path}: cannot read kubeconfig: {error}")]
    Kubeconfig {
        path: String,
        error: kube::config::KubeconfigError,
    },
    #[error("cannot find a Kubernetes configuration (not in a cluster, no $KUBECONFIG or ~/.kube/config): {0}")]
    Infer(kube::config::InferConfigError),
    #[error("cannot build the Kubernetes client: {0}")]
    Client(kube::Error),
}

/// A client from `--kubeconfig`, or inferred (in-cluster service account,
/// then `$KUBECONFIG`, then `~/.kube/config`).
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, ClientError> {
    let config = match kubeconfig {
        Some(path) => {
            let err = |error| ClientError::Kubeconfig {
                path: path.display().to_string(),
                error,
            };
            let kc = kube::config::Kubeconfig::read_from(path).map_err(err)?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(err)?
        }
        None => kube::Config::infer().await.map_err(ClientError::Infer)?,
    };
    Client::try_from(config).map_err(ClientError::Client)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_environment() {
        use clap::Parser;
        #[derive(Parser, Debug)]
        struct Cli {
            #[command(flatten)]
            kube: KubeArgs,
        }
        let cli = Cli::try_parse_from([
            "routegen",
            "--kubeconfig",
            "/k",
            "--namespace-selector",
            "router=public",
            "--route-selector",
            "shard in (a,b)",
            "--route-field-selector",
            "spec.host!=x",
            "--router-name",
            "edge",
            "--router-canonical-hostname",
            "lb.example.com",
            "--no-status",
        ])
        .unwrap();
        assert_eq!(cli.kube.kubeconfig.as_deref(), Some(Path::new("/k")));
        assert_eq!(cli.kube.route_selector.as_deref(), Some("shard in (a,b)"));
        assert_eq!(cli.kube.router_name, "edge");
        assert!(cli.kube.no_status);
        let defaults = Cli::try_parse_from(["routegen"]).unwrap();
        assert_eq!(defaults.kube.router_name, "default");
        assert!(!defaults.kube.no_status);
        // Every flag has its ROUTEGEN_<FLAG> variable.
        let cmd = <Cli as clap::CommandFactory>::command();
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" {
                continue;
            }
            let want = format!("ROUTEGEN_{}", long.to_uppercase().replace('-', "_"));
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(want.as_str()),
                "--{long}"
            );
        }
    }

    #[test]
    fn args_to_config() {
        let args = KubeArgs {
            route_selector: Some(" shard=a ".into()),
            namespace_selector: Some("".into()),
            router_name: "r1".into(),
            ..KubeArgs::default()
        };
        let c = args.source_config(Some("team".into()), Duration::ZERO);
        assert_eq!(c.route_selector.as_deref(), Some("shard=a"));
        assert_eq!(c.namespace_selector, None);
        assert_eq!(c.namespace.as_deref(), Some("team"));
        assert!(args.validate().is_ok());
        assert_eq!(args.status_config().unwrap().router_name, "r1");
        let off = KubeArgs {
            no_status: true,
            ..args
        };
        assert!(off.status_config().is_none());
    }
}
