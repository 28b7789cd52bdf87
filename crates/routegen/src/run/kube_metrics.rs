//! The Kubernetes source's families of `/metrics` (`--source kube`): its
//! watches ([`KubeSource::watch_stats`]) and the Route status writer
//! ([`StatusStats`]), read at each scrape ([`KubeCollector`], installed
//! with [`Metrics::observe_source`](routegen_host::metrics::Metrics::observe_source)).
//! Names and labels follow the host crate's metrics table.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use routegen_k8s::source::{KubeSource, WatchStats};
use routegen_k8s::status::StatusStats;

/// The source and (unless `--no-status`) the status writer's counters.
#[derive(Clone, Debug)]
pub(super) struct KubeCollector {
    pub(super) source: KubeSource,
    pub(super) status: Option<Arc<StatusStats>>,
}

/// The `result` label values of `routegen_status_writes_total`, in the
/// order patches, conflicts, failures of [`StatusStats`].
const WRITE_RESULTS: [&str; 3] = ["ok", "conflict", "error"];

/// One family: its series are `(labels, value)`.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric_type: MetricType,
    series: impl IntoIterator<Item = (Vec<(&'static str, &'static str)>, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, unit, metric_type)?;
    for (labels, value) in series {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for KubeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let w = &self.source.watch_stats();
        let kind = |w: &WatchStats| vec![("kind", w.kind)];
        let counter = |n: u64| ConstCounter::new(n);
        family(
            &mut encoder,
            "routegen_kube_watch_events",
            "Objects the watch of each kind saw added or changed (event=apply) and deleted (event=delete)",
            None,
            MetricType::Counter,
            w.iter().flat_map(|w| {
                [("apply", w.applied), ("delete", w.deleted)]
                    .map(|(event, n)| (vec![("kind", w.kind), ("event", event)], counter(n)))
            }),
        )?;
        family(
            &mut encoder,
            "routegen_kube_lists",
            "Complete lists swapped in per kind: the first, then one per relist (a watch restarted from scratch, e.g. after 410 Gone)",
            None,
            MetricType::Counter,
            w.iter().map(|w| (kind(w), counter(w.lists))),
        )?;
        family(
            &mut encoder,
            "routegen_kube_watch_errors",
            "Errors of the watch of each kind (each retried with backoff; the last objects seen stay served)",
            None,
            MetricType::Counter,
            w.iter().map(|w| (kind(w), counter(w.errors))),
        )?;
        family(
            &mut encoder,
            "routegen_kube_synced",
            "1 once the first list of the kind is complete, else 0",
            None,
            MetricType::Gauge,
            w.iter()
                .map(|w| (kind(w), ConstGauge::new(i64::from(w.synced)))),
        )?;
        family(
            &mut encoder,
            "routegen_kube_last_list_timestamp",
            "When the last complete list of the kind was swapped in, Unix time (no series before the first)",
            Some(&Unit::Seconds),
            MetricType::Gauge,
            w.iter().filter_map(|w| {
                let t = w.last_list?.duration_since(UNIX_EPOCH).ok()?;
                Some((kind(w), ConstGauge::new(t.as_secs_f64())))
            }),
        )?;
        if let Some(s) = &self.status {
            let writes = [&s.patches, &s.conflicts, &s.failures].map(|n| n.load(Ordering::Relaxed));
            family(
                &mut encoder,
                "routegen_status_writes",
                "Route status PATCH calls by result: ok, conflict (409: read again and retried), error (a Route given up: another error, or a conflict on every attempt)",
                None,
                MetricType::Counter,
                WRITE_RESULTS
                    .into_iter()
                    .zip(writes)
                    .map(|(result, n)| (vec![("result", result)], counter(n))),
            )?;
        }
        Ok(())
    }
}
