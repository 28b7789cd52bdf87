//! What one pass takes and gives: [`PipelineConfig`] (everything the
//! decisions depend on besides the objects) and [`Rendered`] (verdicts,
//! plan, tree). Shared by [`crate::engine`] and [`crate::pipeline`], so
//! neither imports the other's types.

use routegen_core::admit::tls::TlsCheckCache;
use routegen_core::admit::Verdict;
use routegen_core::plan::{Plan, PlanSettings};
use routegen_core::RouterSettings;

use crate::output::OutputTree;
use crate::{RenderSettings, Target, Templates};

/// Everything the decisions depend on besides the objects themselves.
#[derive(Debug)]
pub struct PipelineConfig {
    /// Which proxy the tree is for (same admission and plan for both).
    pub target: Target,
    pub router: RouterSettings,
    pub plan: PlanSettings,
    pub render: RenderSettings,
    pub templates: Templates,
    /// Certificate-check results shared by every [`crate::engine::Engine`] pass made with
    /// this configuration (a cache: no result depends on it).
    pub tls_cache: TlsCheckCache,
}

/// The result of one pass.
#[derive(Debug)]
pub struct Rendered {
    /// One per Route, sorted by `namespace/name`.
    pub verdicts: Vec<Verdict>,
    pub plan: Plan,
    pub tree: OutputTree,
    /// What the target cannot express (nginx gaps; empty for HAProxy).
    pub target_warnings: Vec<String>,
}

impl Rendered {
    /// Number of admitted and rejected Routes.
    pub fn counts(&self) -> (usize, usize) {
        let admitted = self.verdicts.iter().filter(|v| v.is_admitted()).count();
        (admitted, self.verdicts.len() - admitted)
    }
}
