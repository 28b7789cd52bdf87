//! routegen: the control half of an HTTP(S) router.
//!
//! Data flow (see ARCHITECTURE.md): sources → snapshot → admit → plan →
//! render → apply → reload. Everything between snapshot and render is a pure
//! function of its input.

pub mod admit;
pub mod apply;
pub mod defaultcert;
pub mod engine;
pub mod fleet;
pub mod metrics;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod reload;
pub mod render;
pub mod run;
pub mod serve;
pub mod settings;
pub mod source;
pub mod status;
pub mod telemetry;
pub mod values;

pub use settings::RouterSettings;
