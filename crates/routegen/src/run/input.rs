//! What wakes the loop ([`Input`]): the directory watcher (`--source
//! dir:`) or the Kubernetes source (`--source kube`), and where Route
//! status goes back to.
//!
//! # Contract
//!
//! * The source is watched *before* the first read ([`Input::start`]),
//!   so nothing changes unseen.
//! * [`Input::changed`] is cancel-safe; for `kube`, the first change is
//!   the first full sync.
//! * [`Input::publish_status`] hands the verdicts of a pass whose tree is
//!   served (applied or unchanged) to the status writer; it never blocks
//!   and does nothing for `dir:` or with `--no-status`.

use anyhow::Context as _;

use routegen_host::source::dir::{DirChanges, DirWatcher};
use routegen_k8s::source::{KubeRun, KubeSource};

use super::config::{RunConfig, Source};
use super::core::{Pass, PassOutcome};
use super::kube_metrics::KubeCollector;

/// What wakes the loop: the directory watcher or the Kubernetes source.
pub(super) enum Input {
    Dir(DirWatcher),
    Kube(Box<KubeRun>),
}

impl Input {
    /// Start watching `config.source`. Errors are start-up errors.
    pub(super) async fn start(config: &RunConfig) -> anyhow::Result<Input> {
        Ok(match &config.source {
            Source::Dir(source_dir) => Input::Dir(
                DirWatcher::start(source_dir, config.debounce)
                    .with_context(|| format!("cannot watch {}", source_dir.display()))?,
            ),
            Source::Kube => Input::Kube(Box::new(
                KubeRun::start(&config.kube, config.kube_namespace.clone(), config.debounce)
                    .await
                    .context("cannot use the Kubernetes API")?,
            )),
        })
    }

    /// Cancel-safe; for `kube`, the first change is the first full sync.
    /// For a directory, what changed (for
    /// [`Core::note_dir_changes`](super::core::Core::note_dir_changes));
    /// `None` for `kube`, whose snapshot is taken whole.
    pub(super) async fn changed(&mut self) -> Option<Option<DirChanges>> {
        match self {
            Input::Dir(w) => w.changed().await.map(Some),
            Input::Kube(k) => k.changed().await.map(|_| None),
        }
    }

    /// The Kubernetes source, for passes to take snapshots of and for
    /// readiness to wait on; `None` for a directory.
    pub(super) fn kube_source(&self) -> Option<&KubeSource> {
        match self {
            Input::Kube(k) => Some(&k.source),
            Input::Dir(_) => None,
        }
    }

    /// What `/metrics` reads of the Kubernetes source at each scrape (its
    /// watches and the status writer's counters); `None` for a directory.
    pub(super) fn kube_collector(&self) -> Option<KubeCollector> {
        let Input::Kube(k) = self else { return None };
        Some(KubeCollector {
            source: k.source.clone(),
            status: k.status.as_ref().map(|w| w.shared_stats()),
        })
    }

    /// Route status for a tree that is served (never blocks).
    pub(super) fn publish_status(&self, pass: &Pass) {
        if let (Input::Kube(k), Some(verdicts)) = (self, &pass.verdicts) {
            if matches!(
                pass.outcome,
                PassOutcome::Applied { .. } | PassOutcome::Unchanged
            ) {
                k.publish(verdicts, &pass.servers_left_out);
            }
        }
    }
}
