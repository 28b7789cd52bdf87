//! The pipeline with memory: [`Engine`] runs admit → plan → render with the
//! per-object memos of each stage kept between passes, so a pass over a
//! snapshot that differs from the previous one in a few objects costs
//! about those objects.
//!
//! Contract: an `Engine` computes exactly what the memo-less functions
//! compute ([`routegen_core::admit::admit_at`], [`routegen_core::plan::plan`],
//! [`crate::render_target`]); they are the same code, called with
//! an empty memo (the equality is tested on random change sequences in
//! `tests/incremental.rs`). Memos recognise unchanged objects by `Arc`
//! identity (see [`routegen_core::model::Snapshot`]), and each stage checks its
//! settings and starts afresh when they differ. One `Engine` is used with
//! one [`PipelineConfig`] (the templates cannot be compared): make a new
//! one when the configuration changes.

use crate::haproxy::{render_haproxy_memo, HaproxyMemo};
use crate::pass::{PipelineConfig, Rendered};
use crate::{RenderError, RenderedTree, Target};
use routegen_core::admit::{self, AdmitMemo, Verdict};
use routegen_core::model::Snapshot;
use routegen_core::plan::{self, Plan, PlanMemo};

/// Memos of the three stages.
#[derive(Debug, Default)]
pub struct Engine {
    admit: AdmitMemo,
    plan: PlanMemo,
    haproxy: HaproxyMemo,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// The memos of admission, plan and HAProxy render, taken apart (for
    /// measuring what each holds).
    pub fn into_memos(self) -> (AdmitMemo, PlanMemo, HaproxyMemo) {
        (self.admit, self.plan, self.haproxy)
    }

    /// Admission at `now_unix` (see [`admit::admit_memo`]).
    pub fn admit_at(
        &mut self,
        snapshot: &Snapshot,
        config: &PipelineConfig,
        now_unix: i64,
    ) -> Vec<Verdict> {
        admit::admit_memo(
            &mut self.admit,
            &config.tls_cache,
            snapshot,
            &config.router,
            now_unix,
        )
    }

    /// The plan (see [`plan::plan_memo`]).
    pub fn plan(
        &mut self,
        verdicts: &[Verdict],
        snapshot: &Snapshot,
        config: &PipelineConfig,
    ) -> Plan {
        plan::plan_memo(&mut self.plan, verdicts, snapshot, &config.plan)
    }

    /// The tree for the configured target (HAProxy with its memo; nginx
    /// is rendered in full).
    pub fn render_plan(
        &mut self,
        plan: &Plan,
        config: &PipelineConfig,
    ) -> Result<RenderedTree, RenderError> {
        match config.target {
            Target::Haproxy => Ok(RenderedTree {
                tree: render_haproxy_memo(
                    &mut self.haproxy,
                    plan,
                    &config.render,
                    &config.templates,
                )?,
                warnings: Vec::new(),
            }),
            Target::Nginx => {
                crate::render_target(config.target, plan, &config.render, &config.templates)
            }
        }
    }

    /// Plan and render from verdicts already decided.
    pub fn render_verdicts(
        &mut self,
        verdicts: Vec<Verdict>,
        snapshot: &Snapshot,
        config: &PipelineConfig,
    ) -> Result<Rendered, RenderError> {
        self.render_verdicts_placed(verdicts, snapshot, config, &Default::default())
    }

    /// [`Engine::render_verdicts`] with the Routes of `placement` written
    /// as the spares it gives them ([`plan::spares::place`]; HAProxy only,
    /// `routegen run`'s state; an empty placement changes nothing).
    /// `Rendered::plan` is the placed plan: its backend names are those of
    /// the tree.
    pub fn render_verdicts_placed(
        &mut self,
        verdicts: Vec<Verdict>,
        snapshot: &Snapshot,
        config: &PipelineConfig,
        placement: &plan::spares::Placement,
    ) -> Result<Rendered, RenderError> {
        let plan = self.plan(&verdicts, snapshot, config);
        self.render_planned(verdicts, plan, config, placement)
    }

    /// [`Engine::render_verdicts_placed`] with the plan of `verdicts`
    /// already made by [`Engine::plan`] (from the same snapshot and
    /// config): `routegen run` plans once per pass, then renders.
    pub fn render_planned(
        &mut self,
        verdicts: Vec<Verdict>,
        mut plan: Plan,
        config: &PipelineConfig,
        placement: &plan::spares::Placement,
    ) -> Result<Rendered, RenderError> {
        if config.target == Target::Haproxy && !placement.is_empty() {
            plan = plan::spares::place(&plan, placement);
        }
        let out = self.render_plan(&plan, config)?;
        Ok(Rendered {
            verdicts,
            plan,
            tree: out.tree,
            target_warnings: out.warnings,
        })
    }

    /// Admit at `now_unix`, plan and render.
    pub fn render_snapshot_at(
        &mut self,
        snapshot: &Snapshot,
        config: &PipelineConfig,
        now_unix: i64,
    ) -> Result<Rendered, RenderError> {
        let verdicts = self.admit_at(snapshot, config, now_unix);
        self.render_verdicts(verdicts, snapshot, config)
    }
}
