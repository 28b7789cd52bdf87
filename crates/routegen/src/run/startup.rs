//! Start-up: everything [`run`](super::run) does before its first pass,
//! in order, and the configuration loading it includes ([`build_core`]).
//!
//! # Contract
//!
//! 1. The source is watched before the first read ([`Input::start`]).
//! 2. The operations endpoint listens ([`OpsEndpoint::start`]), so
//!    `/healthz` answers and `/readyz` says why not ready while the rest
//!    starts.
//! 3. The pipeline configuration is loaded and the apply directory
//!    opened, on a blocking thread (it may generate the default
//!    certificate). On failure the endpoint is stopped before the error
//!    is returned.
//! 4. With `--spawn-haproxy` and a last good tree, HAProxy is started on
//!    it (or the master an earlier routegen left running is adopted).
//!
//! Errors are start-up errors (unusable directories, port in use, bad
//! configuration); a HAProxy that does not start is not one (retried).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;

use routegen_host::apply::{Applier, Validator};
use routegen_host::metrics::Metrics;
use routegen_host::serve::Health;
use routegen_k8s::source::KubeSource;

use super::config::{RunConfig, Source};
use super::core::{Core, CoreSettings};
use super::input::Input;
use super::ops::OpsEndpoint;
use super::pass::lock;
use super::serving::Serving;
use super::sidecar::Sidecar;
use super::LOG_TARGET;

/// Start everything; the returned [`Sidecar`] is ready for its first pass.
pub(super) async fn start(config: RunConfig) -> anyhow::Result<Sidecar> {
    let health = Health::new();
    let metrics = Arc::new(Metrics::new());
    metrics.set_per_route(config.per_route_metrics);
    tracing::info!(
        target: LOG_TARGET,
        source = %config.source,
        out = %config.out.display(),
        reload = %config.reload,
        spawn_haproxy = config.spawn_haproxy,
        "routegen run starting"
    );

    // 1. Watch before the first read.
    let input = Input::start(&config).await?;
    if let Some(collector) = input.kube_collector() {
        metrics.observe_source(Box::new(collector));
    }
    let kube_source = input.kube_source().cloned();

    // 2. Operations endpoint.
    let ops = OpsEndpoint::start(
        config.listen,
        config.ops_limits,
        health.clone(),
        metrics.clone(),
    )
    .await?;

    // 3. The pipeline configuration and the apply directory (blocking: may
    //    generate the default certificate).
    let setup = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || build_core(&config, kube_source))
            .await
            .context("setup task")?
    };
    let core = match setup {
        Ok(core) => Arc::new(Mutex::new(core)),
        Err(e) => {
            ops.request_stop();
            let _ = ops.finished().await;
            return Err(e);
        }
    };
    let current_config = lock(&core).applier().current_config();
    let has_current = lock(&core).applier().current_id().is_some();

    // 4. HAProxy on the last good tree.
    let mut serving = Serving::new(&config, current_config, metrics.clone());
    if config.spawn_haproxy && has_current {
        serving.start_on_last_good(&config).await;
    }

    Ok(Sidecar::new(
        config, health, metrics, input, ops, core, serving,
    ))
}

/// Load the pipeline configuration and open the apply directory with the
/// validator of the target; the [`Core`] that runs the passes. Blocking.
pub(super) fn build_core(
    config: &RunConfig,
    kube_source: Option<KubeSource>,
) -> anyhow::Result<Core> {
    let pipeline = routegen_host::config::load(&config.pipeline)?;
    let validator = match config.pipeline.target {
        routegen_render::Target::Haproxy => Validator::Haproxy {
            bin: config.haproxy_bin.clone(),
        },
        routegen_render::Target::Nginx => Validator::Nginx {
            bin: config.nginx_bin.clone(),
        },
    };
    let applier = Applier::open_with(&config.out, validator, config.keep_trees)
        .with_context(|| format!("cannot use output directory {}", config.out.display()))?;
    let source_dir = match &config.source {
        Source::Dir(dir) => dir.clone(),
        Source::Kube => PathBuf::new(),
    };
    Ok(Core::new(
        CoreSettings {
            source_dir,
            kube: kube_source,
            namespace: config.namespace.clone(),
            out: config.out.clone(),
            haproxy_bin: config.haproxy_bin.clone(),
            limits: config.limits,
            stats_socket: config.stats_socket.clone(),
        },
        pipeline,
        applier,
    ))
}
