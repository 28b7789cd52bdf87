//! What `run` is started with ([`RunConfig`]: the CLI's flags, resolved)
//! and the form of `--source` ([`Source`]). Pure: nothing here reads the disk or the clock.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use routegen_host::config::PipelineOptions;
use routegen_host::reload::ReloadMethod;
use routegen_k8s::source::KubeArgs;

use super::core::IsolationLimits;

/// Where manifests come from (`--source`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `dir:PATH`: a watched directory of manifests.
    Dir(PathBuf),
    /// `kube`: the Kubernetes API (watchers and reflectors; Route status).
    Kube,
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some(("dir", path)) if !path.trim().is_empty() => Ok(Source::Dir(PathBuf::from(path))),
            Some(("dir", _)) => Err("`dir:` needs a directory: dir:PATH".into()),
            _ if s == "kube" => Ok(Source::Kube),
            _ => Err(format!(
                "unknown source `{s}`; expected dir:PATH (a directory of manifests) or kube (the Kubernetes API)"
            )),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir(p) => write!(f, "dir:{}", p.display()),
            Source::Kube => f.write_str("kube"),
        }
    }
}

/// Everything `run` needs (the CLI's flags, resolved).
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub source: Source,
    /// The apply directory (`--out`).
    pub out: PathBuf,
    /// Namespace for objects without one.
    pub namespace: String,
    pub pipeline: PipelineOptions,
    /// How to reload; with `spawn_haproxy` this is the master CLI on
    /// [`RunConfig::master_socket`].
    pub reload: ReloadMethod,
    pub spawn_haproxy: bool,
    pub haproxy_bin: PathBuf,
    /// `--nginx-bin`: validates trees when `pipeline.target` is nginx.
    pub nginx_bin: PathBuf,
    /// Operations endpoint (`/healthz`, `/readyz`, `/metrics`).
    pub listen: SocketAddr,
    /// What one client of the operations endpoint may hold
    /// (`--ops-header-timeout`, `--ops-max-connections`).
    pub ops_limits: routegen_host::serve::OpsLimits,
    pub min_reload_interval: Duration,
    /// How long HAProxy may take to load a configuration, at start and
    /// at a reload (`--haproxy-load-timeout`).
    pub haproxy_load_timeout: Duration,
    /// Quiet time that ends a burst of changes.
    pub debounce: Duration,
    pub keep_trees: usize,
    pub max_old_workers: usize,
    pub limits: IsolationLimits,
    /// HAProxy's stats socket when changes go through its runtime API
    /// (`--runtime-api on`, HAProxy target, master CLI reloads).
    pub stats_socket: Option<PathBuf>,
    /// `--per-route-metrics`: the per-Route series (warnings, certificate
    /// expiry); off at very large fleets (one series per Route).
    pub per_route_metrics: bool,
    /// `--source kube`: the API source's and status writer's flags.
    pub kube: KubeArgs,
    /// `--source kube`: watch only this namespace (`--namespace` given
    /// explicitly); `None`: all namespaces.
    pub kube_namespace: Option<String>,
}

impl RunConfig {
    /// `<out>/master.sock`: the master CLI of a spawned HAProxy.
    pub fn master_socket(out: &Path) -> PathBuf {
        out.join("master.sock")
    }

    /// `<out>/haproxy.pid`: the pidfile of a spawned HAProxy.
    pub fn pidfile(out: &Path) -> PathBuf {
        out.join("haproxy.pid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_forms() {
        assert_eq!(
            "dir:/etc/routes".parse::<Source>(),
            Ok(Source::Dir("/etc/routes".into()))
        );
        assert_eq!(Source::Dir("x".into()).to_string(), "dir:x");
        assert_eq!("kube".parse::<Source>(), Ok(Source::Kube));
        assert_eq!(Source::Kube.to_string(), "kube");
        let e = "dir:".parse::<Source>().unwrap_err();
        assert!(e.contains("dir:PATH"), "{e}");
        let e = "/etc/routes".parse::<Source>().unwrap_err();
        assert!(e.contains("expected dir:PATH"), "{e}");
    }
}
