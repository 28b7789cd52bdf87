//! routegen-core: the decisions, as pure functions of their inputs.
//!
//! The Route model and the objects behind it ([`model`]), the typed values
//! every rendered string is made of ([`values`]), admission ([`admit`]:
//! which Routes a router serves and why not) and the plan ([`plan`]: what
//! the proxy must do, target-independent).
//!
//! Pure means: no file system, no network, no async runtime, no clock, no
//! process-global state. "Now" (only certificate validity warnings depend on
//! it) and the certificate-check cache are passed in by the caller. The
//! crate depends on no Kubernetes client, no template engine, no runtime:
//! `cargo tree -p routegen-core` shows it. OpenSSL is used as a library to
//! parse and verify certificate material in memory.
//!
//! The `testkit` feature adds `testkit`: the one set of builders every
//! crate's tests use.

pub mod admit;
pub mod model;
pub mod plan;
pub mod settings;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod values;

pub use settings::RouterSettings;
