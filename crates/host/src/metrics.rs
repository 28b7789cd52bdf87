//! Prometheus metrics (SPEC §11), exposed by [`crate::serve`] at `/metrics`
//! in the OpenMetrics text format.
//!
//! One [`Metrics`] per process, shared as `Arc<Metrics>`; every recording
//! method takes `&self`. Families keyed by Route (`namespace`, `name`) are
//! replaced wholesale on each update so Routes that disappear lose their
//! series; stale series are removed one by one rather than by clearing the
//! family, so a concurrent scrape never sees a momentarily empty family.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `routegen_build_info` | gauge | `version` |
//! | `routegen_applies_total` | counter | `result`, `reason` |
//! | `routegen_reloads_total` | counter | `result`, `method`, `reason` |
//! | `routegen_apply_duration_seconds` | histogram | |
//! | `routegen_reload_duration_seconds` | histogram | |
//! | `routegen_render_duration_seconds` | histogram | |
//! | `routegen_routes` | gauge | `state` (`admitted`, `rejected`), `reason` |
//! | `routegen_route_warnings` | gauge | `route_namespace`, `route_name` (Routes with warnings only) |
//! | `routegen_certificate_expiry_timestamp_seconds` | gauge | `route_namespace`, `route_name` |
//! | `routegen_certificate_expiry_earliest_timestamp_seconds` | gauge | |
//! | `routegen_route_excluded` | gauge | `route_namespace`, `route_name` (Routes left out because the proxy, HAProxy or nginx, refused them) |
//! | `routegen_route_servers_left_out` | gauge | `route_namespace`, `route_name` |
//! | `routegen_haproxy_old_workers` | gauge | |
//! | `routegen_haproxy_starts_total` | counter | `result` (`spawned`, `adopted`, `failed`), `reason` (`first_start`, `after_exit`, `retry`) |
//! | `routegen_haproxy_exits_total` | counter | `reason` (`while_serving`, `during_reload`) |
//! | `routegen_last_apply_success_timestamp_seconds` | gauge | |
//! | `routegen_changes_total` | counter | `path`, `kind` |
//! | `routegen_reload_reasons_total` | counter | `reason` |
//! | `routegen_runtime_apply_duration_seconds` | histogram | |
//! | `routegen_runtime_failures_total`, `routegen_runtime_drift_total` | counter | |
//! | `routegen_draining_servers` | gauge | |
//! | `routegen_source_files_failing` | gauge | (manifest files of the directory source that do not load; each keeps its last good objects) |
//! | `routegen_kube_watch_events_total` | counter | `kind`, `event` (`apply`, `delete`) — `--source kube` only, as the next five (encoded by `routegen`'s run loop through [`Metrics::observe_source`]) |
//! | `routegen_kube_lists_total` | counter | `kind` (the first list, then each relist) |
//! | `routegen_kube_watch_errors_total` | counter | `kind` |
//! | `routegen_kube_synced` | gauge | `kind` |
//! | `routegen_kube_last_list_timestamp_seconds` | gauge | `kind` |
//! | `routegen_status_writes_total` | counter | `result` (`ok`, `conflict`, `error`; not with `--no-status`) |
//! | `process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`, `process_start_time_seconds`, `process_threads` | | the standard process metrics ([`process`]) |
//!
//! Label families appear once they have a series (the encoder leaves empty
//! families out); `routegen_routes{state="admitted"}` always exists.
//! `result` is one of [`Outcome`]'s values; `reason` is a short, bounded,
//! snake_case word chosen by the caller (`none` when empty), e.g.
//! `config_changed`, `validation_failed`, `write_failed`, `timeout`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use routegen_core::admit::verdict::Verdict;

mod process;

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `state` label value of admitted Routes in `routegen_routes`.
pub const STATE_ADMITTED: &str = "admitted";
/// The `state` label value of rejected Routes in `routegen_routes` (the
/// `reason` label says why).
pub const STATE_REJECTED: &str = "rejected";

/// How an apply or a reload ended (the `result` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Done: a new tree was swapped in / HAProxy confirmed the reload.
    Success,
    /// Nothing to do: the rendered tree equals the served one.
    Unchanged,
    /// Refused or failed; the last good state stays in service.
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Unchanged => "unchanged",
            Outcome::Failure => "failure",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ResultLabels {
    result: String,
    reason: String,
}

impl ResultLabels {
    fn new(result: Outcome, reason: &str) -> Self {
        let reason = if reason.is_empty() { "none" } else { reason };
        ResultLabels {
            result: result.as_str().to_string(),
            reason: reason.to_string(),
        }
    }
}

/// `routegen_reloads_total`: how (the method) and, when it failed, why.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ReloadLabels {
    result: String,
    method: String,
    reason: String,
}

/// `routegen_routes`: `admitted` (reason `none`) or `rejected` with the
/// Route status reason (`HostAlreadyClaimed`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct StateLabels {
    state: String,
    reason: String,
}

/// `routegen_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ChangeLabels {
    path: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// One Route. Not `namespace`/`name`: those are the scrape target's own
/// labels in Kubernetes service discovery (Prometheus would rename ours
/// `exported_namespace`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RouteLabels {
    route_namespace: String,
    route_name: String,
}

impl RouteLabels {
    fn new(namespace: &str, name: &str) -> Self {
        RouteLabels {
            route_namespace: namespace.to_string(),
            route_name: name.to_string(),
        }
    }
}

/// A gauge family whose whole content is replaced on each update.
#[derive(Debug)]
struct ReplacedFamily<L> {
    family: Family<L, Gauge>,
    keys: Mutex<BTreeSet<L>>,
}

impl<L> ReplacedFamily<L>
where
    L: Clone + std::hash::Hash + Eq + Ord + EncodeLabelSet + fmt::Debug + Send + Sync + 'static,
{
    fn new() -> Self {
        ReplacedFamily {
            family: Family::default(),
            keys: Mutex::new(BTreeSet::new()),
        }
    }

    fn replace(&self, values: BTreeMap<L, i64>) {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        for (labels, value) in &values {
            self.family.get_or_create(labels).set(*value);
        }
        for stale in keys.iter().filter(|k| !values.contains_key(*k)) {
            self.family.remove(stale);
        }
        *keys = values.into_keys().collect();
    }
}

/// Every metric routegen exports; see the module documentation.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    applies: Family<ResultLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    apply_duration: Histogram,
    reload_duration: Histogram,
    render_duration: Histogram,
    routes: ReplacedFamily<StateLabels>,
    route_warnings: ReplacedFamily<RouteLabels>,
    cert_expiry: ReplacedFamily<RouteLabels>,
    servers_left_out: ReplacedFamily<RouteLabels>,
    /// The earliest `notAfter` of the admitted Routes' certificates.
    cert_expiry_earliest: Gauge,
    /// Per-Route series are kept (`--per-route-metrics`).
    per_route: std::sync::atomic::AtomicBool,
    route_excluded: ReplacedFamily<RouteLabels>,
    old_workers: Gauge,
    last_apply_success: Gauge<f64, AtomicU64>,
    changes: Family<ChangeLabels, Counter>,
    reload_reasons: Family<ReasonLabels, Counter>,
    runtime_duration: Histogram,
    runtime_failures: Counter,
    runtime_drift: Counter,
    draining: Gauge,
    source_files_failing: Gauge,
    haproxy_starts: Family<HaproxyStartLabels, Counter>,
    haproxy_exits: Family<ReasonLabels, Counter>,
    source: SourceCollector,
}

/// The source's own families ([`Metrics::observe_source`]), encoded at
/// each scrape once installed.
#[derive(Clone, Debug, Default)]
struct SourceCollector(std::sync::Arc<std::sync::OnceLock<Box<dyn Collector>>>);

impl Collector for SourceCollector {
    fn encode(&self, encoder: prometheus_client::encoding::DescriptorEncoder) -> fmt::Result {
        match self.0.get() {
            Some(collector) => collector.encode(encoder),
            None => Ok(()),
        }
    }
}

/// `routegen_haproxy_starts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct HaproxyStartLabels {
    result: String,
    reason: String,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let applies = Family::<ResultLabels, Counter>::default();
        registry.register(
            "routegen_applies",
            "Applies (render, validate, swap) by result and reason",
            applies.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "routegen_reloads",
            "HAProxy reloads by result, method (master_cli, signal, command) and, for failures, reason",
            reloads.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "routegen_build_info",
            "1, labelled with the routegen version",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        // 5 ms .. ~20 s
        let apply_duration = Histogram::new(exponential_buckets(0.005, 2.0, 13));
        registry.register_with_unit(
            "routegen_apply_duration",
            "Time from a change to the new tree being in place (or refused)",
            Unit::Seconds,
            apply_duration.clone(),
        );
        // 10 ms .. ~20 s
        let reload_duration = Histogram::new(exponential_buckets(0.01, 2.0, 12));
        registry.register_with_unit(
            "routegen_reload_duration",
            "Time from asking HAProxy to reload to the new worker confirmed",
            Unit::Seconds,
            reload_duration.clone(),
        );
        // 0.5 ms .. ~16 s
        let render_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 16));
        registry.register_with_unit(
            "routegen_render_duration",
            "Time to admit, plan and render one snapshot",
            Unit::Seconds,
            render_duration.clone(),
        );
        let routes = ReplacedFamily::new();
        registry.register(
            "routegen_routes",
            "Routes by state: admitted, or the rejection reason",
            routes.family.clone(),
        );
        let route_warnings = ReplacedFamily::new();
        registry.register(
            "routegen_route_warnings",
            "Number of admission warnings per Route (Routes without warnings have no series)",
            route_warnings.family.clone(),
        );
        let cert_expiry = ReplacedFamily::new();
        registry.register_with_unit(
            "routegen_certificate_expiry_timestamp",
            "notAfter of each admitted Route's own serving certificate, Unix time",
            Unit::Seconds,
            cert_expiry.family.clone(),
        );
        let servers_left_out = ReplacedFamily::new();
        registry.register(
            "routegen_route_servers_left_out",
            "Ready endpoints a Route's backend leaves out because of the bound on servers per backend (MAX_SERVERS_PER_BACKEND); only Routes over the bound",
            servers_left_out.family.clone(),
        );
        let cert_expiry_earliest = Gauge::default();
        registry.register_with_unit(
            "routegen_certificate_expiry_earliest_timestamp",
            "The earliest notAfter of the admitted Routes' certificates (Unix time); 0 without any",
            Unit::Seconds,
            cert_expiry_earliest.clone(),
        );
        let route_excluded = ReplacedFamily::new();
        registry.register(
            "routegen_route_excluded",
            "1 for each Route left out of the configuration because the proxy (HAProxy or nginx) refused it (fault isolation)",
            route_excluded.family.clone(),
        );
        let old_workers = Gauge::default();
        registry.register(
            "routegen_haproxy_old_workers",
            "HAProxy workers still finishing connections after a reload",
            old_workers.clone(),
        );
        let last_apply_success = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "routegen_last_apply_success_timestamp",
            "When an apply last succeeded (or found nothing to change), Unix time",
            Unit::Seconds,
            last_apply_success.clone(),
        );
        let changes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "routegen_changes",
            "Changes served, by path (runtime: through HAProxy's runtime API, no reload; reload) and kind (endpoint, route, certificate, ca_file for runtime; tree for reload)",
            changes.clone(),
        );
        let reload_reasons = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "routegen_reload_reasons",
            "Why an applied tree needed a reload (one count per reason per tree)",
            reload_reasons.clone(),
        );
        // 50 us .. ~1.6 s
        let runtime_duration = Histogram::new(exponential_buckets(0.00005, 2.0, 16));
        registry.register_with_unit(
            "routegen_runtime_apply_duration",
            "Time to send one tree's live changes to HAProxy's runtime API",
            Unit::Seconds,
            runtime_duration.clone(),
        );
        let runtime_failures = Counter::default();
        registry.register(
            "routegen_runtime_failures",
            "Live changes HAProxy refused (HAProxy was reloaded instead)",
            runtime_failures.clone(),
        );
        let runtime_drift = Counter::default();
        registry.register(
            "routegen_runtime_drift",
            "Differences an audit found between what HAProxy holds and what the files say (each repaired by a reload)",
            runtime_drift.clone(),
        );
        let draining = Gauge::default();
        registry.register(
            "routegen_draining_servers",
            "Servers removed at runtime that still have connections (in maintenance, deleted once idle)",
            draining.clone(),
        );
        let source_files_failing = Gauge::default();
        registry.register(
            "routegen_source_files_failing",
            "Manifest files of the directory source that do not load (each keeps the objects of its last version that loaded; none before one did)",
            source_files_failing.clone(),
        );
        let haproxy_starts = Family::<HaproxyStartLabels, Counter>::default();
        registry.register(
            "routegen_haproxy_starts",
            "Starts of the managed HAProxy (--spawn-haproxy) by result (spawned, adopted: a master left running was taken over, failed) and reason (first_start, after_exit: the previous one exited, retry: the previous start failed)",
            haproxy_starts.clone(),
        );
        let haproxy_exits = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "routegen_haproxy_exits",
            "Exits of the managed HAProxy that routegen did not ask for, by reason (while_serving, during_reload); each is followed by a start",
            haproxy_exits.clone(),
        );
        let source = SourceCollector::default();
        registry.register_collector(Box::new(source.clone()));
        registry.register_collector(Box::new(process::ProcessCollector));
        let metrics = Metrics {
            haproxy_starts,
            haproxy_exits,
            source,
            source_files_failing,
            changes,
            reload_reasons,
            runtime_duration,
            runtime_failures,
            runtime_drift,
            draining,
            registry,
            applies,
            reloads,
            apply_duration,
            reload_duration,
            render_duration,
            routes,
            route_warnings,
            cert_expiry,
            servers_left_out,
            cert_expiry_earliest,
            per_route: std::sync::atomic::AtomicBool::new(true),
            route_excluded,
            old_workers,
            last_apply_success,
        };
        // An `admitted` series from the start, so "no Routes" reads as 0.
        metrics.set_route_states(std::iter::empty::<Option<&str>>());
        metrics
    }

    /// One apply ended. `Success` and `Unchanged` also set
    /// `routegen_last_apply_success_timestamp_seconds` to now.
    pub fn record_apply(&self, result: Outcome, reason: &str, duration: Duration) {
        self.applies
            .get_or_create(&ResultLabels::new(result, reason))
            .inc();
        self.apply_duration.observe(duration.as_secs_f64());
        if result != Outcome::Failure {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            self.last_apply_success.set(now);
        }
    }

    /// One reload ended (`Unchanged` is not expected here but accepted).
    pub fn record_reload(&self, result: Outcome, method: &str, reason: &str, duration: Duration) {
        self.reloads
            .get_or_create(&ReloadLabels {
                result: result.as_str().to_string(),
                method: method.to_string(),
                reason: if reason.is_empty() { "none" } else { reason }.to_string(),
            })
            .inc();
        self.reload_duration.observe(duration.as_secs_f64());
    }

    /// Live changes sent: `ops` per kind, in `duration`.
    pub fn record_runtime<'a>(
        &self,
        ops: impl IntoIterator<Item = (&'a str, usize)>,
        duration: Duration,
    ) {
        for (kind, n) in ops {
            self.changes
                .get_or_create(&ChangeLabels {
                    path: "runtime".into(),
                    kind: kind.to_string(),
                })
                .inc_by(n as u64);
        }
        self.runtime_duration.observe(duration.as_secs_f64());
    }

    /// A tree applied that needs a reload, and why (`reasons`: labels).
    pub fn record_reload_needed<'a>(&self, reasons: impl IntoIterator<Item = &'a str>) {
        self.changes
            .get_or_create(&ChangeLabels {
                path: "reload".into(),
                kind: "tree".into(),
            })
            .inc();
        let reasons: BTreeSet<&str> = reasons.into_iter().collect();
        for reason in reasons {
            self.reload_reasons
                .get_or_create(&ReasonLabels {
                    reason: reason.to_string(),
                })
                .inc();
        }
    }

    /// An audit found HAProxy holding something other than the files say
    /// (`differences` lines).
    pub fn record_runtime_drift(&self, differences: usize) {
        self.runtime_drift.inc_by(differences as u64);
    }

    /// HAProxy refused a live change.
    pub fn record_runtime_failure(&self) {
        self.runtime_failures.inc();
    }

    /// Servers still draining.
    pub fn set_draining_servers(&self, count: usize) {
        self.draining.set(count as i64);
    }

    /// Manifest files of the directory source that do not load.
    pub fn set_source_files_failing(&self, count: usize) {
        self.source_files_failing
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A start of the managed HAProxy: `result` is `spawned`, `adopted`
    /// or `failed`, `reason` `first_start`, `after_exit` or `retry`.
    pub fn record_haproxy_start(&self, result: &str, reason: &str) {
        self.haproxy_starts
            .get_or_create(&HaproxyStartLabels {
                result: result.to_string(),
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The managed HAProxy exited unasked (`while_serving`,
    /// `during_reload`).
    pub fn record_haproxy_exit(&self, reason: &str) {
        self.haproxy_exits
            .get_or_create(&ReasonLabels {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Add the source's own families, encoded at each scrape (the
    /// Kubernetes source's watches and status writes; once per process, a
    /// second collector is ignored).
    pub fn observe_source(&self, collector: Box<dyn Collector>) {
        if self.source.0.set(collector).is_err() {
            tracing::debug!("a source collector is installed already");
        }
    }

    /// One admit + plan + render pass took `duration`.
    pub fn record_render(&self, duration: Duration) {
        self.render_duration.observe(duration.as_secs_f64());
    }

    /// Replace `routegen_routes`: one reason per Route, `None` for an
    /// admitted one (`state="admitted",reason="none"`), else its
    /// rejection reason (`state="rejected",reason=…`).
    pub fn set_route_states<'a, I>(&self, reasons: I)
    where
        I: IntoIterator<Item = Option<&'a str>>,
    {
        let labels = |reason: Option<&str>| StateLabels {
            state: if reason.is_some() {
                STATE_REJECTED
            } else {
                STATE_ADMITTED
            }
            .to_string(),
            reason: reason.unwrap_or("none").to_string(),
        };
        let mut counts = BTreeMap::new();
        counts.insert(labels(None), 0);
        for reason in reasons {
            *counts.entry(labels(reason)).or_insert(0) += 1;
        }
        self.routes.replace(counts);
    }

    /// Replace `routegen_route_warnings`: `(namespace, name, count)`;
    /// entries with a count of 0 are dropped.
    pub fn set_route_warnings<'a, I>(&self, warnings: I)
    where
        I: IntoIterator<Item = (&'a str, &'a str, usize)>,
    {
        let values = warnings
            .into_iter()
            .filter(|(_, _, n)| *n > 0)
            .map(|(ns, name, n)| {
                (
                    RouteLabels::new(ns, name),
                    i64::try_from(n).unwrap_or(i64::MAX),
                )
            })
            .collect();
        self.route_warnings.replace(values);
    }

    /// Replace `routegen_certificate_expiry_timestamp_seconds`:
    /// `(namespace, name, notAfter as Unix seconds)`.
    pub fn set_certificate_expiries<'a, I>(&self, expiries: I)
    where
        I: IntoIterator<Item = (&'a str, &'a str, i64)>,
    {
        let values = expiries
            .into_iter()
            .map(|(ns, name, t)| (RouteLabels::new(ns, name), t))
            .collect();
        self.cert_expiry.replace(values);
    }

    /// Replace `routegen_route_servers_left_out`: `(namespace, name,
    /// endpoints left out)` of the Routes over the bound on servers per
    /// backend (few: kept even with `--per-route-metrics off`).
    pub fn set_servers_left_out<'a, I>(&self, routes: I)
    where
        I: IntoIterator<Item = (&'a str, &'a str, usize)>,
    {
        let values = routes
            .into_iter()
            .map(|(ns, name, n)| {
                (
                    RouteLabels::new(ns, name),
                    i64::try_from(n).unwrap_or(i64::MAX),
                )
            })
            .collect();
        self.servers_left_out.replace(values);
    }

    /// Keep the per-Route series (`true`, the default) or not: without,
    /// `routegen_route_warnings` and the per-Route certificate expiries
    /// are empty; the aggregates stay.
    pub fn set_per_route(&self, on: bool) {
        self.per_route
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Update the three per-Route families from one admission pass.
    pub fn record_verdicts(&self, verdicts: &[Verdict]) {
        self.set_route_states(
            verdicts
                .iter()
                .map(|v| v.outcome.as_ref().err().map(|r| r.reason.as_str())),
        );
        let per_route = self.per_route.load(std::sync::atomic::Ordering::Relaxed);
        let earliest = verdicts
            .iter()
            .filter_map(|v| {
                let serving = v.outcome.as_ref().ok()?.tls.as_ref()?.serving.as_ref()?;
                Some(serving.not_after_unix)
            })
            .min();
        self.cert_expiry_earliest.set(earliest.unwrap_or(0));
        if !per_route {
            self.set_route_warnings([]);
            self.set_certificate_expiries([]);
            return;
        }
        self.set_route_warnings(verdicts.iter().map(|v| {
            (
                v.key.namespace.as_str(),
                v.key.name.as_str(),
                v.warnings.len(),
            )
        }));
        self.set_certificate_expiries(verdicts.iter().filter_map(|v| {
            let route = v.outcome.as_ref().ok()?;
            let serving = route.tls.as_ref()?.serving.as_ref()?;
            Some((
                v.key.namespace.as_str(),
                v.key.name.as_str(),
                serving.not_after_unix,
            ))
        }));
    }

    /// Replace `routegen_route_excluded`: the Routes fault isolation left
    /// out, as `(namespace, name)`.
    pub fn set_excluded_routes<'a, I>(&self, routes: I)
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let values = routes
            .into_iter()
            .map(|(ns, name)| (RouteLabels::new(ns, name), 1))
            .collect();
        self.route_excluded.replace(values);
    }

    /// HAProxy workers still draining after reloads (from `show proc`).
    pub fn set_old_workers(&self, count: usize) {
        self.old_workers
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Everything, in the OpenMetrics text format (ends with `# EOF`); serve
    /// it with [`CONTENT_TYPE`].
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(error) = text::encode(&mut out, &self.registry) {
            // Cannot happen with these metric types and a String sink; keep
            // the output well-formed anyway.
            tracing::error!(%error, "cannot encode metrics");
            if !out.ends_with("# EOF\n") {
                out.push_str("# EOF\n");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(m: &Metrics) -> Vec<String> {
        m.encode().lines().map(str::to_string).collect()
    }

    fn has(m: &Metrics, line: &str) -> bool {
        lines(m).iter().any(|l| l == line)
    }

    #[test]
    fn every_family_is_described() {
        let m = Metrics::new();
        // Families without series are left out entirely by the encoder.
        let text = m.encode();
        assert!(!text.contains("routegen_applies"), "{text}");
        m.record_apply(Outcome::Success, "config_changed", Duration::ZERO);
        m.record_reload(Outcome::Success, "master_cli", "", Duration::ZERO);
        m.set_route_warnings([("ns", "r", 1)]);
        m.set_certificate_expiries([("ns", "r", 1)]);
        let text = m.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert_described(
            &text,
            &[
                ("routegen_applies", "counter"),
                ("routegen_reloads", "counter"),
                ("routegen_apply_duration_seconds", "histogram"),
                ("routegen_reload_duration_seconds", "histogram"),
                ("routegen_render_duration_seconds", "histogram"),
                ("routegen_routes", "gauge"),
                ("routegen_route_warnings", "gauge"),
                ("routegen_certificate_expiry_timestamp_seconds", "gauge"),
                ("routegen_haproxy_old_workers", "gauge"),
                ("routegen_last_apply_success_timestamp_seconds", "gauge"),
                ("routegen_source_files_failing", "gauge"),
            ],
        );
    }

    /// Each family is in `text` with its type and help.
    fn assert_described(text: &str, families: &[(&str, &str)]) {
        for (name, kind) in families {
            assert!(
                text.contains(&format!("# TYPE {name} {kind}\n")),
                "{name}\n{text}"
            );
            assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
        }
    }

    #[test]
    fn fresh_registry_has_zero_series() {
        let m = Metrics::new();
        let text = m.encode();
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            has(&m, "routegen_routes{state=\"admitted\",reason=\"none\"} 0"),
            "{text}"
        );
        assert!(has(&m, "routegen_haproxy_old_workers 0"), "{text}");
        assert!(has(&m, "routegen_source_files_failing 0"), "{text}");
        m.set_source_files_failing(2);
        assert!(has(&m, "routegen_source_files_failing 2"));
        assert!(has(&m, "routegen_apply_duration_seconds_count 0"), "{text}");
    }

    #[test]
    fn applies_and_reloads_count_by_result_and_reason() {
        let m = Metrics::new();
        m.record_apply(
            Outcome::Success,
            "config_changed",
            Duration::from_millis(30),
        );
        m.record_apply(
            Outcome::Success,
            "config_changed",
            Duration::from_millis(30),
        );
        m.record_apply(
            Outcome::Failure,
            "validation_failed",
            Duration::from_secs(1),
        );
        m.record_apply(Outcome::Unchanged, "", Duration::from_millis(1));
        m.record_reload(
            Outcome::Success,
            "master_cli",
            "",
            Duration::from_millis(200),
        );
        let text = m.encode();
        assert!(
            has(
                &m,
                "routegen_applies_total{result=\"success\",reason=\"config_changed\"} 2"
            ),
            "{text}"
        );
        assert!(
            has(
                &m,
                "routegen_applies_total{result=\"failure\",reason=\"validation_failed\"} 1"
            ),
            "{text}"
        );
        assert!(
            has(
                &m,
                "routegen_applies_total{result=\"unchanged\",reason=\"none\"} 1"
            ),
            "{text}"
        );
        assert!(
            has(
                &m,
                "routegen_reloads_total{result=\"success\",method=\"master_cli\",reason=\"none\"} 1"
            ),
            "{text}"
        );
        assert!(has(&m, "routegen_apply_duration_seconds_count 4"), "{text}");
        assert!(
            has(&m, "routegen_apply_duration_seconds_bucket{le=\"0.04\"} 3"),
            "{text}"
        );
        assert!(
            has(&m, "routegen_apply_duration_seconds_bucket{le=\"+Inf\"} 4"),
            "{text}"
        );
        assert!(
            has(&m, "routegen_reload_duration_seconds_count 1"),
            "{text}"
        );
    }

    #[test]
    fn last_success_timestamp_moves_on_success_only() {
        let m = Metrics::new();
        assert!(
            has(&m, "routegen_last_apply_success_timestamp_seconds 0.0"),
            "{}",
            m.encode()
        );
        m.record_apply(Outcome::Failure, "validation_failed", Duration::ZERO);
        assert!(has(&m, "routegen_last_apply_success_timestamp_seconds 0.0"));
        m.record_apply(Outcome::Success, "config_changed", Duration::ZERO);
        let line = lines(&m)
            .into_iter()
            .find(|l| l.starts_with("routegen_last_apply_success_timestamp_seconds "))
            .unwrap();
        let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(v > 1.7e9, "{line}");
    }

    #[test]
    fn render_duration_is_observed() {
        let m = Metrics::new();
        m.record_render(Duration::from_micros(700));
        assert!(has(
            &m,
            "routegen_render_duration_seconds_bucket{le=\"0.0005\"} 0"
        ));
        assert!(has(
            &m,
            "routegen_render_duration_seconds_bucket{le=\"0.001\"} 1"
        ));
        assert!(has(&m, "routegen_render_duration_seconds_count 1"));
    }

    #[test]
    fn route_states_are_replaced_not_accumulated() {
        let m = Metrics::new();
        m.set_route_states([None, None, Some("HostAlreadyClaimed"), Some("InvalidHost")]);
        assert!(has(
            &m,
            "routegen_routes{state=\"admitted\",reason=\"none\"} 2"
        ));
        assert!(has(
            &m,
            "routegen_routes{state=\"rejected\",reason=\"HostAlreadyClaimed\"} 1"
        ));
        m.set_route_states([Some("HostAlreadyClaimed")]);
        let text = m.encode();
        assert!(
            has(&m, "routegen_routes{state=\"admitted\",reason=\"none\"} 0"),
            "{text}"
        );
        assert!(
            has(
                &m,
                "routegen_routes{state=\"rejected\",reason=\"HostAlreadyClaimed\"} 1"
            ),
            "{text}"
        );
        assert!(!text.contains("InvalidHost"), "{text}");
    }

    #[test]
    fn reloads_say_the_method_and_why_they_failed_and_the_build_is_named() {
        let m = Metrics::new();
        m.record_reload(Outcome::Success, "master_cli", "", Duration::ZERO);
        m.record_reload(Outcome::Failure, "master_cli", "timeout", Duration::ZERO);
        assert!(has(
            &m,
            "routegen_reloads_total{result=\"success\",method=\"master_cli\",reason=\"none\"} 1"
        ));
        assert!(has(
            &m,
            "routegen_reloads_total{result=\"failure\",method=\"master_cli\",reason=\"timeout\"} 1"
        ));
        let build = format!(
            "routegen_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(has(&m, &build), "{}", m.encode());
    }

    #[test]
    fn per_route_series_disappear_with_their_route() {
        let m = Metrics::new();
        m.set_certificate_expiries([
            ("shop", "web", 1_900_000_000),
            ("pay", "api", 1_800_000_000),
        ]);
        m.set_route_warnings([("shop", "web", 2), ("pay", "api", 0)]);
        let text = m.encode();
        assert!(
            has(
                &m,
                "routegen_certificate_expiry_timestamp_seconds{route_namespace=\"shop\",route_name=\"web\"} 1900000000"
            ),
            "{text}"
        );
        assert!(
            has(
                &m,
                "routegen_route_warnings{route_namespace=\"shop\",route_name=\"web\"} 2"
            ),
            "{text}"
        );
        assert!(
            !text.contains("routegen_route_warnings{route_namespace=\"pay\""),
            "{text}"
        );

        m.set_certificate_expiries([("pay", "api", 1_800_000_001)]);
        m.set_route_warnings([]);
        let text = m.encode();
        assert!(!text.contains("route_name=\"web\""), "{text}");
        assert!(
            has(
                &m,
                "routegen_certificate_expiry_timestamp_seconds{route_namespace=\"pay\",route_name=\"api\"} 1800000001"
            ),
            "{text}"
        );
        assert!(!text.contains("routegen_route_warnings{"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.set_route_warnings([("ns", "we\"ird\\name\n", 1)]);
        assert!(
            has(
                &m,
                "routegen_route_warnings{route_namespace=\"ns\",route_name=\"we\\\"ird\\\\name\\n\"} 1"
            ),
            "{}",
            m.encode()
        );
    }

    #[test]
    fn per_route_series_can_be_turned_off_and_the_earliest_expiry_stays() {
        use routegen_core::testkit::{certs, RouteBuilder, SnapshotBuilder};
        let leaf = certs::self_signed_leaf(&["www.example.com"]);
        let snapshot = SnapshotBuilder::new()
            .route(
                RouteBuilder::new("shop", "web")
                    .host("www.example.com")
                    .to("web", None)
                    .tls("edge")
                    .cert(&leaf, None)
                    .build(),
            )
            .build();
        let verdicts = routegen_core::admit::admit_at(
            &snapshot,
            &routegen_core::RouterSettings::default(),
            certs::now_unix(),
        );
        let serving = verdicts[0].outcome.as_ref().unwrap().tls.as_ref().unwrap();
        let not_after = serving.serving.as_ref().unwrap().not_after_unix;
        let earliest =
            format!("routegen_certificate_expiry_earliest_timestamp_seconds {not_after}");
        let m = Metrics::new();
        m.record_verdicts(&verdicts);
        assert!(has(&m, &earliest), "{}", m.encode());
        assert!(m
            .encode()
            .contains("routegen_certificate_expiry_timestamp_seconds{"));
        m.set_per_route(false);
        m.record_verdicts(&verdicts);
        let text = m.encode();
        assert!(has(&m, &earliest), "{text}");
        assert!(
            !text.contains("routegen_certificate_expiry_timestamp_seconds{"),
            "{text}"
        );
        assert!(!text.contains("routegen_route_warnings{"), "{text}");
    }

    #[test]
    fn routes_over_the_server_bound_are_listed() {
        let m = Metrics::new();
        m.set_servers_left_out([("shop", "big", 200)]);
        assert!(has(
            &m,
            "routegen_route_servers_left_out{route_namespace=\"shop\",route_name=\"big\"} 200"
        ));
        m.set_servers_left_out([]);
        assert!(!m.encode().contains("routegen_route_servers_left_out{"));
    }

    #[test]
    fn haproxy_starts_and_exits_count_by_result_and_reason() {
        let m = Metrics::new();
        m.record_haproxy_start("spawned", "first_start");
        m.record_haproxy_exit("while_serving");
        m.record_haproxy_start("failed", "after_exit");
        m.record_haproxy_start("spawned", "retry");
        for line in [
            "routegen_haproxy_starts_total{result=\"spawned\",reason=\"first_start\"} 1",
            "routegen_haproxy_starts_total{result=\"failed\",reason=\"after_exit\"} 1",
            "routegen_haproxy_starts_total{result=\"spawned\",reason=\"retry\"} 1",
            "routegen_haproxy_exits_total{reason=\"while_serving\"} 1",
        ] {
            assert!(has(&m, line), "{line}\n{}", m.encode());
        }
    }

    #[test]
    fn a_source_collector_is_encoded_at_each_scrape() {
        #[derive(Debug)]
        struct Lists(std::sync::Arc<std::sync::atomic::AtomicU64>);
        impl Collector for Lists {
            fn encode(
                &self,
                mut encoder: prometheus_client::encoding::DescriptorEncoder,
            ) -> fmt::Result {
                use prometheus_client::encoding::EncodeMetric;
                let n = prometheus_client::metrics::counter::ConstCounter::new(
                    self.0.load(std::sync::atomic::Ordering::Relaxed),
                );
                n.encode(encoder.encode_descriptor("routegen_lists", "t", None, n.metric_type())?)
            }
        }
        let m = Metrics::new();
        assert!(!m.encode().contains("routegen_lists"));
        let lists = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
        m.observe_source(Box::new(Lists(lists.clone())));
        assert!(has(&m, "routegen_lists_total 1"), "{}", m.encode());
        lists.store(2, std::sync::atomic::Ordering::Relaxed);
        assert!(has(&m, "routegen_lists_total 2"));
        assert!(m.encode().ends_with("# EOF\n"));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn process_metrics_have_the_standard_names() {
        let m = Metrics::new();
        let text = m.encode();
        assert_described(
            &text,
            &[
                ("process_cpu_seconds", "counter"),
                ("process_resident_memory_bytes", "gauge"),
                ("process_virtual_memory_bytes", "gauge"),
                ("process_open_fds", "gauge"),
                ("process_max_fds", "gauge"),
                ("process_start_time_seconds", "gauge"),
                ("process_threads", "gauge"),
            ],
        );
        assert!(text.contains("\nprocess_cpu_seconds_total "), "{text}");
    }

    #[test]
    fn old_workers_gauge() {
        let m = Metrics::new();
        m.set_old_workers(3);
        assert!(has(&m, "routegen_haproxy_old_workers 3"));
    }

    #[test]
    fn verdicts_feed_the_route_families() {
        let yaml = r#"
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: web, namespace: shop, creationTimestamp: "2024-01-01T00:00:00Z"}
spec: {host: www.example.com, to: {kind: Service, name: web}}
---
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: squat, namespace: evil, creationTimestamp: "2024-02-01T00:00:00Z"}
spec: {host: www.example.com, to: {kind: Service, name: web}}
"#;
        let loaded = crate::source::files::load_str("t.yaml", yaml, "default").unwrap();
        let verdicts = routegen_core::admit::admit_at(
            &loaded.snapshot,
            &routegen_core::RouterSettings::default(),
            0,
        );
        m_check(&verdicts);

        fn m_check(verdicts: &[Verdict]) {
            let m = Metrics::new();
            m.record_verdicts(verdicts);
            let text = m.encode();
            assert!(
                has(&m, "routegen_routes{state=\"admitted\",reason=\"none\"} 1"),
                "{text}"
            );
            assert!(
                has(
                    &m,
                    "routegen_routes{state=\"rejected\",reason=\"HostAlreadyClaimed\"} 1"
                ),
                "{text}"
            );
            // Neither Route brings a certificate.
            assert!(
                !text.contains("routegen_certificate_expiry_timestamp_seconds{"),
                "{text}"
            );
        }
    }
}
