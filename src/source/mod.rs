//! Sources turn the outside world into typed objects. `files` reads
//! manifests once (for `check` and `render`).

pub mod dir;
pub mod files;
pub mod kube;
