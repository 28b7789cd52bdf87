//! One writer per output directory (issue 17): `routegen run` takes an
//! exclusive `flock(2)` on `DIR/routegen.lock` before it writes, prunes or
//! adopts anything, and holds it for as long as it runs. A second instance
//! on the same `--out` fails at once with [`LockError::Held`], naming the
//! directory and the holder's pid (written into the file by the holder).
//!
//! The kernel releases the lock when the holder's file is closed, so a
//! holder killed with `kill -9` leaves no stale lock: the next instance
//! takes it over (and may adopt the HAProxy the dead one left running).
//! The descriptor is close-on-exec (std opens every file so): a HAProxy or
//! nginx routegen spawns never inherits the lock. The file is opened with
//! `O_NOFOLLOW` (a symbolic link planted there is refused, not followed)
//! and created 0600.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::create_private_dir;

/// Name of the lock file in the output directory.
pub const LOCK_FILE: &str = "routegen.lock";

/// Why the output directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock.
    #[error(
        "output directory {out} is in use by another routegen run ({holder}); only one instance may use an output directory (lock file {lock})",
        out = out.display(),
        lock = lock.display()
    )]
    Held {
        out: PathBuf,
        lock: PathBuf,
        /// `pid N`, or `pid unknown` when the holder has not written it
        /// (yet).
        holder: String,
    },
    /// The directory or the lock file cannot be used.
    #[error("cannot lock output directory {}: {source}", out.display())]
    Io {
        out: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct OutputLock {
    _file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Create `out` (0700) if needed and take its lock without waiting;
    /// write this process's pid into the lock file.
    pub fn acquire(out: &Path) -> Result<OutputLock, LockError> {
        let io = |source: std::io::Error| LockError::Io {
            out: out.to_path_buf(),
            source,
        };
        create_private_dir(out).map_err(|e| io(std::io::Error::other(e.to_string())))?;
        let path = out.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| {
                io(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", path.display()),
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("pid {pid}"),
                    Err(_) => "pid unknown".to_string(),
                };
                return Err(LockError::Held {
                    out: out.to_path_buf(),
                    lock: path,
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        // Ours now: record who holds it (for the next one's message).
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_data())
            .map_err(io)?;
        Ok(OutputLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_fails_naming_dir_and_pid() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let held = OutputLock::acquire(&out).unwrap();
        assert_eq!(held.path(), out.join(LOCK_FILE));
        let text = std::fs::read_to_string(held.path()).unwrap();
        assert_eq!(text, format!("{}\n", std::process::id()));
        // flock conflicts between two open files, even in one process.
        let err = OutputLock::acquire(&out).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "output directory {} is in use by another routegen run (pid {}); only one instance may use an output directory (lock file {})",
                out.display(),
                std::process::id(),
                out.join(LOCK_FILE).display()
            )
        );
        drop(held);
        // Released with the file: the next one takes it.
        let again = OutputLock::acquire(&out).unwrap();
        drop(again);
    }

    #[test]
    fn a_symlinked_lock_file_is_refused_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, out.join(LOCK_FILE)).unwrap();
        let err = OutputLock::acquire(&out).unwrap_err();
        assert!(matches!(err, LockError::Io { .. }), "{err}");
        assert!(!target.exists());
    }
}
