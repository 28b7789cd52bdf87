//! Delta validation: check a small configuration instead of a whole tree.
//!
//! A full `haproxy -c` of a 10,000-Route tree costs seconds, most of it
//! loading certificates and server-side CA files. When a new tree differs
//! from a fully validated one only in known backend sections and
//! certificates, the caller builds their validation subset
//! ([`routegen_render::haproxy::subset::validation_subset`], which states
//! when that stands for the whole tree) and checks it here with the same
//! binary and command line as a full validation.

use std::path::Path;

use routegen_render::output::OutputTree;

use super::{haproxy_config_paths, io_err, validate_with, ApplyError};
use crate::tree::write_tree;

/// Validate `subset` with `bin` exactly as a full tree is validated
/// (`<bin> -c -f <dir>/haproxy.cfg -f <dir>/backends`, see
/// [`haproxy_config_paths`]), in a fresh directory under `scratch_parent`
/// (created 0700 by [`write_tree`], keys 0600) that is removed afterwards,
/// whatever the outcome. `scratch_parent` must exist; use a directory on
/// a local file system that only routegen writes.
///
/// `Ok(Err(text))`: HAProxy refused the configuration; `text` is its own
/// output, whose file names are those of the scratch directory. `Err`:
/// the subset could not be written or the binary not run.
///
/// Cost: writing the subset (each file written and fsynced: ~10 files for
/// one backend and one certificate) plus HAProxy parsing it; see
/// `BENCHMARKS.md` for figures at 10,000 Routes.
pub fn validate_subset(
    bin: &Path,
    subset: &OutputTree,
    scratch_parent: &Path,
) -> Result<Result<(), String>, ApplyError> {
    let scratch = tempfile::Builder::new()
        .prefix("routegen-subset-")
        .tempdir_in(scratch_parent)
        .map_err(io_err(scratch_parent))?;
    write_tree(subset, scratch.path())?;
    let verdict = validate_with(bin, &haproxy_config_paths(scratch.path()))?;
    let path = scratch.path().to_path_buf();
    scratch.close().map_err(io_err(&path))?;
    Ok(verdict)
}
