//! What `/readyz` says ([`Readiness`]).
//!
//! # Contract
//!
//! * Ready once a validated tree is current *and* HAProxy is confirmed
//!   serving it (spawned on it, or reloaded onto it), or, for `--reload
//!   signal:`/`command:`, once the reload was requested; with `--reload
//!   none`, once the tree is current. The first time is logged.
//! * Once ready, a later failed pass or reload does not make routegen
//!   unready (HAProxy keeps serving the last good tree); a managed HAProxy
//!   that is not running does.
//! * `--source kube`: not ready, with the kinds still listing, until the
//!   first full sync.

use routegen_host::reload::ReloadMethod;
use routegen_host::serve::Health;

use super::config::RunConfig;
use super::core::{Pass, PassOutcome};
use super::input::Input;
use super::serving::Serving;
use super::LOG_TARGET;

/// Whether routegen has been ready once (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Readiness {
    ever_ready: bool,
}

impl Readiness {
    /// At start-up: the Kubernetes source is not synced yet.
    pub(super) fn at_start(health: &Health, input: &Input) {
        if let Some(source) = input.kube_source() {
            health.set_not_ready(source.not_synced_reason());
        }
    }

    /// Every tick: until ready once, say why the Kubernetes source is not
    /// synced (the kinds still listing, the last errors).
    pub(super) fn on_tick(&self, health: &Health, input: &Input) {
        if let Some(source) = input.kube_source() {
            if !self.ever_ready && !source.is_synced() {
                health.set_not_ready(source.not_synced_reason());
            }
        }
    }

    /// After a pass (and the reload it led to).
    pub(super) fn after_pass(
        &mut self,
        health: &Health,
        config: &RunConfig,
        serving: &mut Serving,
        has_current: bool,
        pass: &Pass,
    ) {
        if has_current && serving.serves_current(config) {
            if !self.ever_ready {
                match config.reload {
                    ReloadMethod::None => tracing::info!(
                        target: LOG_TARGET,
                        "ready: a validated tree is current (--reload none: HAProxy is reloaded by someone else)"
                    ),
                    ReloadMethod::MasterCli(_) => {
                        tracing::info!(
                            target: LOG_TARGET,
                            "ready: HAProxy confirmed serving a validated tree"
                        )
                    }
                    _ => tracing::info!(
                        target: LOG_TARGET,
                        "ready: a validated tree is current and HAProxy was asked to reload"
                    ),
                }
            }
            self.ever_ready = true;
            health.set_ready();
        } else if !self.ever_ready || serving.haproxy_down(config) {
            let reason = match serving.start_error() {
                Some(why) if has_current => format!("HAProxy cannot start: {why}"),
                _ => not_ready_reason(has_current, serving.needs_reload(), pass),
            };
            health.set_not_ready(reason);
        }
    }
}

fn not_ready_reason(has_current: bool, need_reload: bool, pass: &Pass) -> String {
    if !has_current {
        match &pass.outcome {
            PassOutcome::LoadFailed(e) => format!("no valid configuration yet: {e}"),
            PassOutcome::Refused { proxy, why, .. } => {
                format!("no valid configuration yet: {proxy} refused it ({why})")
            }
            PassOutcome::RenderFailed(e) => format!("no valid configuration yet: {e}"),
            PassOutcome::Failed { error, .. } => format!("no valid configuration yet: {error}"),
            _ => "no valid configuration yet".into(),
        }
    } else if need_reload {
        "HAProxy has not confirmed serving the current configuration".into()
    } else {
        "HAProxy is not running".into()
    }
}
