//! routegen-host: everything that touches this machine.
//!
//! Manifest files and watched directories ([`source`]), writing trees to
//! disk ([`tree`]) and applying them with validation and an atomic swap
//! ([`apply`]), reloading the proxy ([`reload`]), changing a running proxy
//! through its runtime API ([`runtime`]), the health and metrics
//! listener ([`serve`], [`metrics`]), logging ([`telemetry`]), the default
//! certificate ([`defaultcert`]), the clock ([`clock`]) and turning the
//! operator's options into a [`routegen_render::pipeline::PipelineConfig`]
//! ([`config`]). It imports the core and the renderers, never the binary or
//! the Kubernetes adapter.

pub mod apply;
pub mod clock;
pub mod config;
pub mod defaultcert;
mod durable;
pub mod metrics;
pub mod reload;
pub mod runtime;
pub mod serve;
pub mod source;
pub mod telemetry;
pub mod tree;
