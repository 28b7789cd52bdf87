//! routegen-k8s: the Kubernetes API adapter.
//!
//! [`source`] watches Routes, Services, EndpointSlices and Namespaces with
//! kube-rs and hands snapshots of [`routegen_core::model`] objects to the
//! run loop; [`status`] writes the admission verdicts back to each Route's
//! `status.ingress`. It imports the core only; nothing below it knows
//! about Kubernetes clients.
//!
//! Inside the crate the modules depend one way: [`route`] (a Route as the
//! watcher stores it) ← [`status`] (pure `desired` half, async `writer`
//! half) ← [`source`] (whose `run` part starts the status writer next to
//! the watchers). [`crd`] stands alone.

pub mod crd;
pub mod route;
pub mod source;
pub mod status;
