//! Sources that read this machine's files: `files` reads manifests once
//! (for `check` and `render`), `dir` watches a directory for `run`.

pub mod dir;
pub mod files;
