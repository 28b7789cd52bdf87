//! routegen: the binary's library half: the `run` sidecar loop and the
//! render options it stores for `diff` ([`render_options`]).
//!
//! Data flow (see ARCHITECTURE.md): sources (`routegen-host`,
//! `routegen-k8s`) → snapshot → admit → plan (`routegen-core`) → render
//! (`routegen-render`) → apply → reload (`routegen-host`). This crate wires
//! them together; it owns no decision of its own.

pub mod render_options;
pub mod run;
