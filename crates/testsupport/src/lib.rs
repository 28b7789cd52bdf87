//! routegen-testsupport: what the end-to-end tests of `crates/routegen`
//! share, as a dev-only library (`publish = false`; a dev-dependency of
//! `routegen` only).
//!
//! - [`config`]: the HAProxy configuration of a rendered tree as HAProxy
//!   reads it (`haproxy.cfg` then `backends/*.cfg`), and `haproxy -c`;
//! - [`e2e`]: manifests for the real binary, backend echo servers, a small
//!   HTTP/1.1 (and just enough HTTP/2) client, and the [`e2e::Router`]
//!   harness (`routegen render` served by a real HAProxy);
//! - [`fake_apiserver`]: a Kubernetes API server speaking the real
//!   protocol (list/watch/patch, 410, RBAC) for the real kube client;
//! - [`golden`]: the golden-tree harness of `tests/golden.rs` and
//!   `tests/golden_nginx.rs`;
//! - [`sidecar`]: `routegen run` (with `--spawn-haproxy`) as a child
//!   process, its `/metrics` and HAProxy's master CLI.
//!
//! Routes, Services and EndpointSlices come from `routegen_core::testkit`
//! (the one set of builders); this crate only adds what needs processes,
//! sockets or files.
//!
//! The `routegen` binary is built for its own package's tests only
//! (`CARGO_BIN_EXE_routegen`): whatever runs it here takes its path from
//! the calling test.

use std::path::Path;

pub mod config;
pub mod e2e;
pub mod fake_apiserver;
pub mod golden;
pub mod sidecar;

/// The workspace root (where `testdata/`, `deploy/` and `Cargo.toml` are).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}
