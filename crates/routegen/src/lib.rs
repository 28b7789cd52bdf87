//! routegen: the binary's library half: the `run` sidecar loop.
//!
//! Data flow (see ARCHITECTURE.md): sources (`routegen-host`,
//! `routegen-k8s`) → snapshot → admit → plan (`routegen-core`) → render
//! (`routegen-render`) → apply → reload (`routegen-host`). This crate wires
//! them together; it owns no decision of its own.

pub mod run;
