//! The synchronous half of `run`: one *pass* reads the manifest directory,
//! decides, renders and applies, leaving out Routes HAProxy refuses.
//!
//! A pass never touches the tree being served unless it has a complete,
//! validated replacement ([`Applier`]'s contract). It is called from
//! `spawn_blocking` by the event loop in [`super`]; it holds no lock and
//! starts no thread.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use routegen_core::admit::Verdict;
use routegen_core::model::{ObjectKey, ReuseMemo, Snapshot};
use routegen_host::apply::{Applier, ApplyError, ApplyOutcome, ChangeSummary, Check};
use routegen_host::runtime::live::{Live, LiveReport};
use routegen_host::source::dir::DirChanges;
use routegen_host::source::files;
use routegen_render::engine::Engine;
use routegen_render::haproxy::runtime::{self, Delta, ReloadReason, RuntimeState, StateMemo};
use routegen_render::pipeline::{self, PipelineConfig, Rendered};

use super::fingerprint::{Fingerprints, RouteFingerprints};
use super::isolate::{self, BisectError};
use super::placement;
use routegen_core::plan::spares::Placement;
use routegen_core::plan::Plan;

/// Bounds of fault isolation in one pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsolationLimits {
    /// Refused trees (each followed by exclusions) before giving up.
    pub max_rounds: usize,
    /// `haproxy -c` runs one bisection may use.
    pub bisect_budget: usize,
}

impl Default for IsolationLimits {
    fn default() -> Self {
        IsolationLimits {
            max_rounds: 5,
            bisect_budget: 24,
        }
    }
}

/// What the pass needs besides the pipeline configuration.
#[derive(Clone, Debug)]
pub struct CoreSettings {
    /// The manifest directory (`--source dir:PATH`).
    pub source_dir: PathBuf,
    /// `--source kube`: passes take this source's snapshot instead of
    /// reading `source_dir`.
    pub kube: Option<routegen_k8s::source::KubeSource>,
    /// Namespace of objects without one.
    pub namespace: String,
    /// The output directory (`--out`).
    pub out: PathBuf,
    pub haproxy_bin: PathBuf,
    pub limits: IsolationLimits,
    /// HAProxy's stats socket, when changes may be applied through its
    /// runtime API (HAProxy target, `--runtime-api on`, a reload method
    /// that reaches the master); `None`: every change is a reload.
    pub stats_socket: Option<PathBuf>,
}

/// A Route left out because HAProxy refused it, remembered while the
/// Route's part of the plan stays the same, so later passes do not pay
/// for a refused tree again.
#[derive(Clone, Debug)]
struct Quarantined {
    fingerprint: [u8; 32],
    alert: String,
}

/// How a pass ended.
#[derive(Clone, Debug)]
pub enum PassOutcome {
    /// The manifests could not be read (bad YAML...): nothing changed.
    LoadFailed(String),
    /// The plan could not be rendered (a template or a setting).
    RenderFailed(String),
    /// The rendered tree equals the served one.
    Unchanged,
    /// A new tree is current.
    Applied {
        id: String,
        summary: ChangeSummary,
        validation: Duration,
    },
    /// The proxy (`proxy`: "HAProxy" or "nginx", the target's) refused
    /// every tree tried and isolation could not find the Routes
    /// responsible: `output` is its text for the last one.
    Refused {
        proxy: &'static str,
        output: String,
        why: String,
    },
    /// Writing or validating was impossible (I/O, HAProxy missing).
    Failed { reason: &'static str, error: String },
}

impl PassOutcome {
    /// The `reason` label of `routegen_applies_total`.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            PassOutcome::LoadFailed(_) => "load_failed",
            PassOutcome::RenderFailed(_) => "render_failed",
            PassOutcome::Unchanged => "no_change",
            PassOutcome::Applied { .. } => "config_changed",
            PassOutcome::Refused { .. } => "validation_failed",
            PassOutcome::Failed { reason, .. } => reason,
        }
    }
}

/// Routes whose part of the configuration differs between two applies.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteChanges {
    pub added: Vec<ObjectKey>,
    pub changed: Vec<ObjectKey>,
    pub removed: Vec<ObjectKey>,
}

impl RouteChanges {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// A tree `haproxy -c` refused (kept under `<out>/failed/<id>`).
#[derive(Clone, Debug)]
pub struct RefusedTree {
    pub id: String,
    /// HAProxy's output.
    pub output: String,
    /// Time from the start of the pass to the refusal.
    pub after: Duration,
}

/// Everything the event loop reports about one pass.
#[derive(Debug)]
pub struct Pass {
    pub outcome: PassOutcome,
    /// Final verdicts (isolation's exclusions included); `None` when the
    /// manifests could not be loaded.
    pub verdicts: Option<Vec<Verdict>>,
    /// Routes left out by fault isolation in this pass, with HAProxy's line.
    pub excluded: BTreeMap<ObjectKey, String>,
    /// Those found in this pass (the others were remembered).
    pub newly_excluded: Vec<ObjectKey>,
    /// Each tree HAProxy refused in this pass.
    pub refused: Vec<RefusedTree>,
    /// Set when a new tree was applied.
    pub route_changes: Option<RouteChanges>,
    /// What went through HAProxy's runtime API in this pass.
    pub live: Option<LiveReport>,
    /// The runtime API refused a command (HAProxy is reloaded instead).
    pub live_error: Option<String>,
    /// Why HAProxy must be reloaded onto the applied tree; empty when the
    /// runtime API made it serve the tree (or nothing was applied).
    pub reload_reasons: Vec<ReloadReason>,
    /// HAProxy must be reloaded onto the applied tree.
    pub needs_reload: bool,
    /// Changes may go through HAProxy's runtime API (`--runtime-api on`).
    pub runtime_api: bool,
    /// Loader and plan warnings.
    pub warnings: Vec<String>,
    /// Manifest files of the directory source that do not load (they keep
    /// their last good objects); `None` when nothing was loaded.
    pub failing_files: Option<Vec<files::FailingFile>>,
    /// Reading and parsing the manifests.
    /// Routes whose backend serves a subset of its ready endpoints (the
    /// bound on servers per backend), with how many were left out.
    pub servers_left_out: Vec<(ObjectKey, usize)>,
    pub load_time: Duration,
    /// Admit + plan + render, all rounds.
    pub render_time: Duration,
    /// The whole pass.
    pub duration: Duration,
}

/// Owner of the apply directory and of what one pass remembers for the next.
#[derive(Debug)]
pub struct Core {
    settings: CoreSettings,
    config: PipelineConfig,
    /// The pipeline's memos, kept from pass to pass.
    engine: Engine,
    /// The objects of the last pass (see [`ReuseMemo`]).
    reuse: ReuseMemo,
    /// The directory source (parses only files that changed).
    dir_loader: files::DirLoader,
    /// What the directory watcher saw change since the last pass's load
    /// (`Unknown` until the first load: everything is read).
    dir_changes: DirChanges,
    /// Per-Route fingerprints, memoized across passes.
    fingerprints: Fingerprints,
    applier: Applier,
    quarantine: BTreeMap<ObjectKey, Quarantined>,
    /// Per-Route fingerprints of the last applied plan.
    applied_routes: Option<RouteFingerprints>,
    /// The runtime API (`None`: every change is a reload).
    live: Option<Live>,
    state_memo: StateMemo,
    /// What HAProxy holds of the tree `current` (`None` until a pass of
    /// this process applied or confirmed it).
    current_state: Option<RuntimeState>,
    /// What the running HAProxy holds: `None` when unknown (before the
    /// first confirmation, after a refused command); then every change is
    /// a reload until one confirms what HAProxy runs.
    running: Option<RuntimeState>,
    /// HAProxy was started or reloaded onto `current` before this process
    /// knew the tree's state: the next pass that finds the tree unchanged
    /// knows what HAProxy runs.
    runs_current: bool,
    /// Trees differing from a validated `current` only in backends and
    /// certificates are checked with `haproxy -c` on a subset (off once a
    /// full check refused a tree a subset check passed).
    subset_checks: bool,
    /// The id of the current tree when it was made current after a subset
    /// check: its full `haproxy -c` is due ([`Core::full_check_due`]).
    full_check_due: Option<String>,
    /// The newest tree `haproxy -c` passed in full (rolled back to when a
    /// full check refuses a later tree).
    last_full: Option<String>,
    /// New Routes served from spare backends, as in the tree `current`
    /// ([`placement`]).
    placement: Placement,
}

/// A tree's runtime state and its delta against what HAProxy runs.
type Checked = (RuntimeState, Delta);

/// A full `haproxy -c` of a tree that was made current after a subset
/// check.
#[derive(Clone, Debug)]
pub struct FullCheck {
    pub id: String,
    pub dir: PathBuf,
    validator: routegen_host::apply::Validator,
}

impl FullCheck {
    /// Run it (blocking, seconds at 10,000 Routes; needs no lock):
    /// `Ok(Err(text))` when HAProxy refuses the tree.
    pub fn run(&self) -> Result<Result<(), String>, ApplyError> {
        self.validator.validate(&self.dir)
    }
}

impl Core {
    pub fn new(settings: CoreSettings, config: PipelineConfig, applier: Applier) -> Core {
        Core {
            config,
            engine: Engine::new(),
            reuse: ReuseMemo::default(),
            dir_loader: files::DirLoader::new(
                vec![settings.source_dir.clone()],
                settings.namespace.clone(),
            ),
            dir_changes: DirChanges::Unknown,
            fingerprints: Fingerprints::default(),
            applier,
            quarantine: BTreeMap::new(),
            applied_routes: None,
            live: settings.stats_socket.clone().map(Live::new),
            state_memo: StateMemo::default(),
            current_state: None,
            running: None,
            runs_current: false,
            subset_checks: true,
            full_check_due: None,
            last_full: None,
            placement: Placement::default(),
            settings,
        }
    }

    /// The full check due, if any (see [`FullCheck`]).
    pub fn full_check_due(&self) -> Option<FullCheck> {
        let id = self.full_check_due.clone()?;
        Some(FullCheck {
            dir: self.settings.out.join("trees").join(&id),
            id,
            validator: self.applier.validator().clone(),
        })
    }

    /// The result of a [`FullCheck`]. Passed: the tree counts as fully
    /// validated. Refused: subset checks are off from now on, `current` is
    /// rolled back to the last fully validated tree when it is still kept,
    /// and `true` is returned (HAProxy must be reloaded; the next pass
    /// renders the tree again, checks it in full and leaves out the Routes
    /// HAProxy refuses). A tree no longer current is ignored.
    pub fn full_check_done(&mut self, check: &FullCheck, result: Result<(), String>) -> bool {
        if self.applier.current_id() != Some(check.id.as_str()) {
            return false;
        }
        self.full_check_due = None;
        match result {
            Ok(()) => {
                self.last_full = Some(check.id.clone());
                false
            }
            Err(output) => {
                tracing::error!(tree = %check.id, "haproxy -c refused a tree that passed the subset check; checking every tree in full from now on. HAProxy said: {}", isolate::alert_lines(&output).join(" | "));
                self.subset_checks = false;
                if let Some(good) = self.last_full.clone() {
                    match self.applier.roll_back_to(&good) {
                        Ok(()) => {
                            tracing::warn!(tree = %good, "rolled back to the last fully validated tree")
                        }
                        Err(e) => tracing::error!(tree = %good, error = %e, "cannot roll back"),
                    }
                }
                self.current_state = None;
                self.haproxy_state_unknown();
                true
            }
        }
    }

    /// HAProxy now runs the tree `current` (it was started on it, or a
    /// reload onto it was confirmed): what it holds is that tree's state,
    /// and servers drained in the old worker are gone with it.
    pub fn haproxy_runs_current(&mut self) {
        match &self.current_state {
            Some(state) => self.running = Some(state.clone()),
            None => self.runs_current = true,
        }
        // The spares left out of `current` are gone with the old worker.
        self.placement.retired.clear();
        if let Some(live) = &mut self.live {
            live.forget_draining();
        }
    }

    /// HAProxy is gone or serves something unknown: every change is a
    /// reload until [`Core::haproxy_runs_current`].
    pub fn haproxy_state_unknown(&mut self) {
        self.running = None;
        self.runs_current = false;
    }

    /// Compare what HAProxy holds with what routegen believes it holds
    /// ([`routegen_host::runtime::audit::drift`]). `None`: nothing to
    /// compare (no runtime API, HAProxy's state unknown, HAProxy
    /// unreachable). Drift found: HAProxy's state becomes unknown (the
    /// caller reloads HAProxy onto the files to repair it).
    pub fn audit(&mut self) -> Option<Vec<String>> {
        let running = self.running.as_ref()?;
        let socket = self.settings.stats_socket.as_ref()?;
        let maps: Vec<&str> = running.maps.keys().map(String::as_str).collect();
        let observed =
            routegen_host::runtime::StatsSocket::connect(socket, std::time::Duration::from_secs(5))
                .and_then(|mut sock| routegen_host::runtime::observe(&mut sock, &maps, None));
        let observed = match observed {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(error = %e, "cannot audit HAProxy's runtime state");
                return None;
            }
        };
        let drift = routegen_host::runtime::audit::drift(running, &observed);
        if !drift.is_empty() {
            tracing::warn!(
                differences = drift.len(),
                "HAProxy does not hold what the files say; reloading it onto them: {}",
                drift.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            );
            self.haproxy_state_unknown();
        }
        Some(drift)
    }

    /// Servers removed while they still had connections: try to delete
    /// them again (they get no new requests meanwhile). Returns how many
    /// are still draining.
    pub fn retry_draining(&mut self) -> usize {
        match &mut self.live {
            Some(live) => live.retry_draining(),
            None => 0,
        }
    }

    pub fn applier(&self) -> &Applier {
        &self.applier
    }

    /// Add what the directory watcher saw change; the next pass's load
    /// looks at those files alone when it can
    /// ([`files::DirLoader::load_changed`]).
    pub fn note_dir_changes(&mut self, changes: DirChanges) {
        self.dir_changes.merge(changes);
    }

    /// One pass: load, decide, render, apply; see the module docs.
    pub fn pass(&mut self) -> Pass {
        let started = Instant::now();
        let mut pass = Pass {
            outcome: PassOutcome::Unchanged,
            verdicts: None,
            excluded: BTreeMap::new(),
            newly_excluded: Vec::new(),
            refused: Vec::new(),
            route_changes: None,
            live: None,
            live_error: None,
            reload_reasons: Vec::new(),
            needs_reload: false,
            runtime_api: self.live.is_some(),
            warnings: Vec::new(),
            failing_files: None,
            servers_left_out: Vec::new(),
            load_time: Duration::ZERO,
            render_time: Duration::ZERO,
            duration: Duration::ZERO,
        };
        let loaded = match self.settings.kube.as_ref().map(|k| files::Loaded {
            snapshot: k.snapshot(),
            warnings: Vec::new(),
            errors: Vec::new(),
        }) {
            Some(loaded) => Ok(loaded),
            None => {
                let changes = std::mem::take(&mut self.dir_changes);
                self.dir_loader.load_changed(&changes)
            }
            .inspect(|_| {
                pass.failing_files = Some(self.dir_loader.failing().to_vec());
            }),
        };
        let mut loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                pass.outcome = PassOutcome::LoadFailed(e.to_string());
                pass.duration = started.elapsed();
                return pass;
            }
        };
        // Objects of changed files are parsed anew: give those that are
        // equal to the last pass's the old Arcs so the engine reuses their
        // results (a file edit that changes one of its objects).
        let snapshot = self.reuse.reuse(std::mem::take(&mut loaded.snapshot));
        pass.load_time = started.elapsed();
        pass.warnings.extend(loaded.warnings.iter().cloned());
        let snapshot = &*snapshot;

        let t = Instant::now();
        let verdicts =
            self.engine
                .admit_at(snapshot, &self.config, routegen_host::clock::now_unix());
        let full_plan = self.engine.plan(&verdicts, snapshot, &self.config);
        let fingerprints = self.fingerprints.of(&full_plan);
        pass.servers_left_out = full_plan
            .backends
            .iter()
            .filter(|b| b.servers_left_out > 0)
            .map(|b| (b.route.clone(), b.servers_left_out))
            .collect();
        pass.render_time += t.elapsed();
        // Forget Routes whose part of the plan changed (or that are gone):
        // they get a fresh chance.
        self.quarantine
            .retain(|k, q| fingerprints.get(k) == Some(&q.fingerprint));
        let mut excluded: BTreeMap<ObjectKey, String> = self
            .quarantine
            .iter()
            .map(|(k, q)| (k.clone(), q.alert.clone()))
            .collect();

        let limits = self.settings.limits;
        let mut placement = placement::for_pass(
            &self.placement,
            &full_plan,
            self.running.as_ref().filter(|_| self.live.is_some()),
            &self
                .live
                .as_ref()
                .map(Live::draining_servers)
                .unwrap_or_default(),
        );
        let mut round = 0usize;
        loop {
            let t = Instant::now();
            let mut v = verdicts.clone();
            pipeline::exclude_routes(&mut v, &excluded, self.config.target);
            // Nothing left out: the plan of these verdicts is the full plan.
            let planned = excluded.is_empty().then(|| full_plan.clone());
            let (rendered, checked) = match self.render_placed(v, planned, snapshot, &mut placement)
            {
                Ok(r) => r,
                Err(e) => {
                    pass.render_time += t.elapsed();
                    pass.outcome = PassOutcome::RenderFailed(e.to_string());
                    break;
                }
            };
            pass.render_time += t.elapsed();
            if round == 0 {
                pass.warnings.extend(rendered.plan.warnings.iter().cloned());
                self.log_debug_diff(&rendered);
            }
            tracing::debug!(
                files = rendered.tree.len(),
                round,
                "applying: writing the tree to staging and validating it with {}",
                self.config.target.check_command()
            );
            let apply = self.apply(&rendered, checked, &mut pass);
            match apply {
                Ok(outcome) => {
                    // With nothing left out, the rendered plan is the full
                    // plan: its fingerprints are known.
                    let now = if excluded.is_empty() {
                        fingerprints.clone()
                    } else {
                        self.fingerprints.of(&rendered.plan)
                    };
                    let changes = match (&outcome, &self.applied_routes) {
                        (ApplyOutcome::Applied { .. }, Some(before)) if before.ptr_eq(&now) => {
                            Some(RouteChanges::default())
                        }
                        (ApplyOutcome::Applied { .. }, Some(before)) => {
                            Some(route_changes(before, &now))
                        }
                        (ApplyOutcome::Applied { .. }, None) => Some(RouteChanges {
                            added: now.keys().cloned().collect(),
                            ..RouteChanges::default()
                        }),
                        _ => None,
                    };
                    pass.route_changes = changes;
                    self.applied_routes = Some(now);
                    for (route, spare) in &placement.placed {
                        if self.placement.placed.get(route) != Some(spare) {
                            tracing::info!(%route, %spare, "new Route served from a spare backend, without a reload");
                        }
                    }
                    self.placement = placement.clone();
                    pass.outcome = match outcome {
                        ApplyOutcome::Unchanged => PassOutcome::Unchanged,
                        ApplyOutcome::Applied {
                            id,
                            summary,
                            validation,
                        } => PassOutcome::Applied {
                            id,
                            summary,
                            validation,
                        },
                    };
                    pass.verdicts = Some(rendered.verdicts);
                    break;
                }
                Err(ApplyError::Invalid {
                    output, id, kept, ..
                }) => {
                    tracing::warn!(
                        tree = %id,
                        kept = %kept.display(),
                        round,
                        "{} refused the tree (not swapped in); looking for the Routes responsible. {} said: {}",
                        self.config.target.check_command(),
                        self.config.target.proxy_name(),
                        isolate::alert_lines(&output).join(" | ")
                    );
                    pass.refused.push(RefusedTree {
                        id: id.clone(),
                        output: output.clone(),
                        after: started.elapsed(),
                    });
                    round += 1;
                    if round > limits.max_rounds {
                        pass.outcome = PassOutcome::Refused {
                            proxy: self.config.target.proxy_name(),
                            output,
                            why: format!(
                                "still refused after leaving out Routes in {} rounds",
                                limits.max_rounds
                            ),
                        };
                        pass.verdicts = Some(rendered.verdicts);
                        break;
                    }
                    let found = isolate::attribute(&output, &rendered.tree, &rendered.plan);
                    let mut new: BTreeMap<ObjectKey, String> = found
                        .culprits
                        .into_iter()
                        .filter(|(k, _)| !excluded.contains_key(k))
                        .collect();
                    if new.is_empty() {
                        match self.bisect(&rendered, snapshot, &excluded) {
                            Ok(f) => new = f,
                            Err(why) => {
                                pass.outcome = PassOutcome::Refused {
                                    proxy: self.config.target.proxy_name(),
                                    output,
                                    why,
                                };
                                pass.verdicts = Some(rendered.verdicts);
                                break;
                            }
                        }
                    }
                    for (key, alert) in new {
                        tracing::warn!(
                            route = %key,
                            %alert,
                            "leaving out a Route {} refuses",
                            self.config.target.proxy_name()
                        );
                        if let Some(fp) = fingerprints.get(&key) {
                            self.quarantine.insert(
                                key.clone(),
                                Quarantined {
                                    fingerprint: *fp,
                                    alert: alert.clone(),
                                },
                            );
                        }
                        pass.newly_excluded.push(key.clone());
                        excluded.insert(key, alert);
                    }
                }
                Err(ApplyError::HaproxyMissing { bin, source }) => {
                    pass.outcome = PassOutcome::Failed {
                        reason: "haproxy_missing",
                        error: format!("cannot run {bin} -c: {source}"),
                    };
                    pass.verdicts = Some(rendered.verdicts);
                    break;
                }
                Err(e) => {
                    pass.outcome = PassOutcome::Failed {
                        reason: "write_failed",
                        error: e.to_string(),
                    };
                    pass.verdicts = Some(rendered.verdicts);
                    break;
                }
            }
        }
        // Report only the exclusions that still apply to admitted Routes.
        if let Some(verdicts) = &pass.verdicts {
            for v in verdicts {
                if let Some(alert) = excluded.get(&v.key) {
                    if v.rejection().is_some_and(|r| {
                        r.message == pipeline::excluded_message(self.config.target, alert)
                    }) {
                        pass.excluded.insert(v.key.clone(), alert.clone());
                    }
                }
            }
        }
        pass.duration = started.elapsed();
        pass
    }

    /// Plan and render `verdicts` with `placement`'s Routes in their
    /// spares. When that tree would still need a reload (or HAProxy's
    /// state is unknown), render every Route under its own name instead
    /// ([`placement::normalized`]) and leave that in `placement`.
    /// `planned`: the plan of `verdicts`, when the pass has it already.
    /// The tree's state and live delta, when that check computed them
    /// (for [`Core::apply`]).
    fn render_placed(
        &mut self,
        verdicts: Vec<Verdict>,
        planned: Option<Plan>,
        snapshot: &Snapshot,
        placement: &mut Placement,
    ) -> Result<(Rendered, Option<Checked>), routegen_render::RenderError> {
        let plan = match planned {
            Some(plan) => plan,
            None => self.engine.plan(&verdicts, snapshot, &self.config),
        };
        if placement.placed.is_empty() {
            return self
                .engine
                .render_planned(verdicts, plan, &self.config, placement)
                .map(|r| (r, None));
        }
        let rendered =
            self.engine
                .render_planned(verdicts.clone(), plan.clone(), &self.config, placement)?;
        if let (Some(running), true) = (&self.running, self.live.is_some()) {
            if let Ok(state) = RuntimeState::of_tree_memo(&mut self.state_memo, &rendered.tree) {
                let delta = runtime::delta(running, &state);
                if delta.is_live() {
                    return Ok((rendered, Some((state, delta))));
                }
            }
        }
        *placement = placement::normalized(&self.placement);
        self.engine
            .render_planned(verdicts, plan, &self.config, placement)
            .map(|r| (r, None))
    }

    /// Make the rendered tree current and, where the runtime API can,
    /// served: stage it; when HAProxy's state is known, compute what can
    /// change live ([`runtime::delta`]); a fully live change is sent to
    /// HAProxy and then committed without `haproxy -c` (HAProxy itself
    /// accepted every changed line); anything else is validated and
    /// committed, its live part sent, and a reload asked for
    /// (`pass.needs_reload`, with the reasons).
    /// `checked`: the tree's state and delta against `self.running`, when
    /// [`Core::render_placed`] already computed them.
    fn apply(
        &mut self,
        rendered: &Rendered,
        checked: Option<Checked>,
        pass: &mut Pass,
    ) -> Result<ApplyOutcome, ApplyError> {
        let (checked_state, checked_delta) = checked.unzip();
        let state = match (
            checked_state,
            self.config.target == routegen_render::Target::Haproxy,
        ) {
            (Some(state), _) => Some(state),
            (None, true) => {
                match RuntimeState::of_tree_memo(&mut self.state_memo, &rendered.tree) {
                    Ok(state) => Some(state),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the tree as HAProxy's runtime state; changes are reloaded");
                        None
                    }
                }
            }
            (None, false) => None,
        };
        let Some(staged) = self.applier.stage(&rendered.tree)? else {
            if self.runs_current && self.running.is_none() {
                self.running = state.clone();
            }
            self.runs_current = false;
            if self.current_state.is_none() {
                self.current_state = state;
            }
            return Ok(ApplyOutcome::Unchanged);
        };
        let delta = match (checked_delta, &self.running, &state) {
            (Some(delta), _, _) => Some(delta),
            (None, Some(running), Some(new)) => Some(runtime::delta(running, new)),
            _ => None,
        };
        self.runs_current = false;
        let outcome = match &delta {
            Some(d) if d.is_live() => {
                // HAProxy checks every changed line as it applies it.
                if self.send_live(d, pass) {
                    self.applier.commit(staged, Check::Trusted)
                } else {
                    pass.needs_reload = true;
                    self.applier.commit(staged, Check::Full)
                }
            }
            _ => {
                let subset = self.subset(rendered, state.as_ref());
                let check = subset.as_ref().map_or(Check::Full, Check::Subset);
                let outcome = self.applier.commit(staged, check)?;
                pass.needs_reload = true;
                self.full_check_due = match (&outcome, &subset) {
                    (ApplyOutcome::Applied { id, .. }, Some(_)) => Some(id.clone()),
                    _ => None,
                };
                if let (ApplyOutcome::Applied { id, .. }, None) = (&outcome, &subset) {
                    self.last_full = Some(id.clone());
                }
                match &delta {
                    Some(d) => {
                        pass.reload_reasons = d.reload.clone();
                        // The live part now; the rest with the reload.
                        self.send_live(d, pass);
                    }
                    None => pass.reload_reasons = Vec::new(),
                }
                Ok(outcome)
            }
        };
        if outcome.is_ok() {
            self.current_state = state;
        }
        outcome
    }

    /// The subset of `rendered.tree` a `haproxy -c` must check, when the
    /// tree differs from a validated current tree only in backends and
    /// certificates (see [`routegen_render::haproxy::subset`]); `None`:
    /// check it in full.
    fn subset(
        &self,
        rendered: &Rendered,
        state: Option<&RuntimeState>,
    ) -> Option<routegen_render::output::OutputTree> {
        if !self.subset_checks {
            return None;
        }
        let (backends, certs) = runtime::changed_parts(self.current_state.as_ref()?, state?)?;
        match routegen_render::haproxy::subset::validation_subset(&rendered.tree, &backends, &certs)
        {
            Ok(subset) => Some(subset),
            Err(e) => {
                tracing::warn!(error = %e, "cannot cut a validation subset; checking the whole tree");
                None
            }
        }
    }

    /// Send a delta's commands; on success HAProxy holds `delta.after`.
    /// `false` (HAProxy's state unknown from now on) when a command failed.
    fn send_live(&mut self, delta: &Delta, pass: &mut Pass) -> bool {
        let Some(live) = &mut self.live else {
            return false;
        };
        if delta.ops.is_empty() {
            self.running = Some(delta.after.clone());
            return true;
        }
        match live.apply(&delta.ops) {
            Ok(report) => {
                self.running = Some(delta.after.clone());
                pass.live = Some(report);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "HAProxy's runtime API refused a change; reloading instead");
                pass.live_error = Some(e.to_string());
                self.running = None;
                false
            }
        }
    }

    /// Bisect the admitted Routes of a refused tree; each check renders a
    /// subset into a temporary directory under `<out>/staging`.
    fn bisect(
        &self,
        rendered: &Rendered,
        snapshot: &Snapshot,
        excluded: &BTreeMap<ObjectKey, String>,
    ) -> Result<BTreeMap<ObjectKey, String>, String> {
        let candidates: Vec<ObjectKey> = rendered
            .verdicts
            .iter()
            .filter(|v| v.is_admitted())
            .map(|v| v.key.clone())
            .collect();
        tracing::info!(
            candidates = candidates.len(),
            budget = self.settings.limits.bisect_budget,
            "{}'s message names no Route; bisecting",
            self.config.target.proxy_name()
        );
        let staging = self.settings.out.join("staging");
        let check = |subset: &[ObjectKey]| -> Result<Option<String>, String> {
            let keep: std::collections::BTreeSet<&ObjectKey> = subset.iter().collect();
            let mut out_of_subset = excluded.clone();
            for k in &candidates {
                if !keep.contains(k) {
                    out_of_subset.insert(k.clone(), "left out while bisecting".into());
                }
            }
            let mut v = rendered.verdicts.clone();
            pipeline::exclude_routes(&mut v, &out_of_subset, self.config.target);
            let r =
                pipeline::render_verdicts(v, snapshot, &self.config).map_err(|e| e.to_string())?;
            let dir = tempfile::Builder::new()
                .prefix("bisect-")
                .tempdir_in(&staging)
                .map_err(|e| format!("{}: {e}", staging.display()))?;
            routegen_host::tree::write_tree(&r.tree, dir.path()).map_err(|e| e.to_string())?;
            let result = self
                .applier
                .validate(dir.path())
                .map_err(|e| e.to_string())?;
            Ok(result.err())
        };
        isolate::bisect(&candidates, self.settings.limits.bisect_budget, check).map_err(|e| match e
        {
            BisectError::Check(e) => format!("bisecting failed: {e}"),
            other => other.to_string(),
        })
    }

    /// At debug level: the diff from the served tree (keys redacted).
    fn log_debug_diff(&self, rendered: &Rendered) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let Some(id) = self.applier.current_id() else {
            return;
        };
        let dir: &Path = &self.settings.out;
        match routegen_host::tree::diff_tree(&rendered.tree, &dir.join("trees").join(id)) {
            Ok(diff) if diff.is_empty() => {}
            Ok(diff) => {
                tracing::debug!(against = %id, "diff of the rendered tree (keys redacted):\n{diff}")
            }
            Err(e) => tracing::debug!(error = %e, "cannot diff against the current tree"),
        }
    }
}

fn route_changes(before: &RouteFingerprints, after: &RouteFingerprints) -> RouteChanges {
    // Persistent maps: the parts both share are not visited.
    let mut c = RouteChanges::default();
    for item in before.diff(after) {
        match item {
            imbl::ordmap::DiffItem::Add(k, _) => c.added.push(k.clone()),
            imbl::ordmap::DiffItem::Update { new: (k, _), .. } => c.changed.push(k.clone()),
            imbl::ordmap::DiffItem::Remove(k, _) => c.removed.push(k.clone()),
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_changes_by_fingerprint() {
        let k = |n: &str| ObjectKey::new("ns", n);
        let before: RouteFingerprints = [(k("a"), [1; 32]), (k("b"), [2; 32]), (k("c"), [3; 32])]
            .into_iter()
            .collect();
        let after: RouteFingerprints = [(k("a"), [1; 32]), (k("b"), [9; 32]), (k("d"), [4; 32])]
            .into_iter()
            .collect();
        let c = route_changes(&before, &after);
        assert_eq!(c.added, vec![k("d")]);
        assert_eq!(c.changed, vec![k("b")]);
        assert_eq!(c.removed, vec![k("c")]);
        assert!(route_changes(&after, &after).is_empty());
    }
}
