//! The Kubernetes source as `run` drives it ([`KubeRun`]): the watchers,
//! their change listener and the status writer, assembled from
//! [`KubeArgs`].
//!
//! This is the one module of the source that knows about
//! [`crate::status`]: the watchers ([`super::watch`]) do not, and the
//! status writer knows only the Route store ([`crate::route`]).

use std::time::Duration;

use kube::Client;

use routegen_core::admit::Verdict;
use routegen_core::model::{ObjectKey, Snapshot};

use super::config::{client, ClientError, KubeArgs};
use super::watch::{Changes, KubeSource};
use crate::status::StatusWriter;

/// What `run --source kube` drives: the source, its change listener and
/// (unless `--no-status`) the status writer, started together. The run
/// loop uses it like the directory watcher: await [`changed`](Self::changed)
/// (the first call resolves after the first full sync), take a
/// [`snapshot`](Self::snapshot) for the pass, and after a pass whose tree
/// is served (applied or unchanged) hand its verdicts to
/// [`publish`](Self::publish).
#[derive(Debug)]
pub struct KubeRun {
    pub source: KubeSource,
    pub changes: Changes,
    pub status: Option<StatusWriter>,
}

impl KubeRun {
    /// Build the client (`--kubeconfig` or inferred) and start everything.
    /// `namespace`: `run`'s `--namespace` when given explicitly.
    pub async fn start(
        args: &KubeArgs,
        namespace: Option<String>,
        debounce: Duration,
    ) -> Result<KubeRun, ClientError> {
        let client = client(args.kubeconfig.as_deref()).await?;
        Ok(KubeRun::with_client(client, args, namespace, debounce))
    }

    /// [`start`](Self::start) with a given client (tests).
    pub fn with_client(
        client: Client,
        args: &KubeArgs,
        namespace: Option<String>,
        debounce: Duration,
    ) -> KubeRun {
        let source = KubeSource::start(client.clone(), args.source_config(namespace, debounce));
        let changes = source.subscribe();
        let status = args
            .status_config()
            .map(|c| StatusWriter::spawn(client, source.route_store(), c));
        KubeRun {
            source,
            changes,
            status,
        }
    }

    /// See [`Changes::changed`]. Cancel-safe.
    pub async fn changed(&mut self) -> Option<u64> {
        self.changes.changed().await
    }

    /// See [`KubeSource::snapshot`].
    pub fn snapshot(&self) -> Snapshot {
        self.source.snapshot()
    }

    /// Queue Route status for these verdicts (no-op with `--no-status`);
    /// never blocks. `servers_left_out`: the admitted Routes whose backend
    /// leaves ready endpoints out, and how many (see
    /// [`RouteVerdict::servers_left_out`](crate::status::RouteVerdict)).
    pub fn publish(&self, verdicts: &[Verdict], servers_left_out: &[(ObjectKey, usize)]) {
        if let Some(writer) = &self.status {
            writer.submit_with(verdicts, servers_left_out);
        }
    }
}
