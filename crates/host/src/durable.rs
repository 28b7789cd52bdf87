//! Making renames and new entries of a directory durable: [`fsync_dir`],
//! the one directory fsync of this crate (the applier's store and
//! `render --out` both use it), with the one error mapping of the files
//! it writes ([`OutputError::Io`], naming the directory; the applier
//! wraps it as `ApplyError::Output`).

use std::fs;
use std::path::Path;

use routegen_render::output::{io_error, OutputError};

/// fsync `dir` itself, so the entries created, renamed or removed in it
/// survive a crash (a file's own fsync does not cover its name).
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), OutputError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_error(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_syncs_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fsync_dir(dir.path()).unwrap();
        let missing = dir.path().join("gone");
        let e = fsync_dir(&missing).unwrap_err();
        assert!(matches!(e, OutputError::Io { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("{}: ", missing.display())),
            "{e}"
        );
        let applied = crate::apply::ApplyError::from(e);
        assert!(applied.to_string().contains("gone: "), "{applied}");
    }
}
