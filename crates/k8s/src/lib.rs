//! routegen-k8s: the Kubernetes API adapter.
//!
//! [`source`] watches Routes, Services, EndpointSlices and Namespaces with
//! kube-rs and hands snapshots of [`routegen_core::model`] objects to the
//! run loop; [`status`] writes the admission verdicts back to each Route's
//! `status.ingress`. It imports the core only; nothing below it knows
//! about Kubernetes clients.

pub mod crd;
pub mod source;
pub mod status;
