//! Re-reading a directory of manifests without re-parsing what did not
//! change.
//!
//! `routegen run` with a directory source re-reads the whole directory on
//! every pass (a directory has no change feed that survives editors,
//! ConfigMap symlink swaps and renames). Parsing is ~90 µs per Route of
//! YAML, so at 10,000 Routes a full re-read costs about a second per pass.
//! [`DirLoader`] keeps each file's decoded documents with the file's stamp
//! (device, inode, size, mtime, ctime) and parses only files whose stamp
//! changed; the load's result is exactly that of [`super::load_paths`] on
//! the same files (same objects, order, duplicates and warnings), and
//! unchanged objects keep their `Arc`s from one pass to the next.
//!
//! A stamp is trusted only once the file's ctime lies [`SETTLED`] in the
//! past when it is read: a file system's timestamps are coarse (a jiffy, or
//! seconds on some), so a write right after a read could leave the stamp
//! equal. Recently changed files are therefore re-read on every pass until
//! they settle, which costs only as many files as were just changed.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    manifest_files, parse_file, read_capped, Documents, LoadError, LoadOptions, Loaded, Loader,
};

/// How old a file's last change must be before its stamp is trusted.
pub const SETTLED: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
            ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
        }
    }

    /// The file's last change lies at least [`SETTLED`] before `now`.
    fn settled(&self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let last_change = self.mtime_ns.max(self.ctime_ns);
        last_change + (SETTLED.as_nanos() as i128) <= now_ns
    }
}

#[derive(Debug)]
struct CachedFile {
    stamp: Stamp,
    documents: Documents,
}

/// Loads the same paths again and again, parsing only changed files.
#[derive(Debug)]
pub struct DirLoader {
    paths: Vec<PathBuf>,
    default_namespace: String,
    cache: HashMap<PathBuf, CachedFile>,
    /// Files parsed by the last [`DirLoader::load`] (the rest came from
    /// the cache).
    parsed: usize,
}

impl DirLoader {
    pub fn new(paths: Vec<PathBuf>, default_namespace: impl Into<String>) -> DirLoader {
        DirLoader {
            paths,
            default_namespace: default_namespace.into(),
            cache: HashMap::new(),
            parsed: 0,
        }
    }

    /// Load every manifest under the paths, as [`super::load_paths`] does
    /// (unknown fields are warnings; `-` is not accepted here: stdin cannot
    /// be re-read).
    pub fn load(&mut self) -> Result<Loaded, LoadError> {
        let mut loader = Loader::new(LoadOptions::new(&self.default_namespace));
        let mut cache = HashMap::with_capacity(self.cache.len());
        self.parsed = 0;
        for path in &self.paths {
            for file in manifest_files(path)? {
                let name = file.display().to_string();
                // Stat before reading: a write between the two leaves a
                // newer stamp, which the next pass sees as a change.
                let now = SystemTime::now();
                let stamp = std::fs::metadata(&file)
                    .map(|m| Stamp::of(&m))
                    .map_err(|source| LoadError::Io {
                        path: name.clone(),
                        source,
                    })?;
                let documents = match self.cache.remove(&file) {
                    Some(cached) if cached.stamp == stamp => cached.documents,
                    _ => {
                        let bytes = read_capped(&file)?;
                        let is_json = file.extension().is_some_and(|e| e == "json");
                        self.parsed += 1;
                        parse_file(&name, &bytes, is_json, &loader.options, loader.threads)?
                    }
                };
                loader.absorb_file(&name, documents.clone())?;
                if stamp.settled(now) {
                    cache.insert(file, CachedFile { stamp, documents });
                }
            }
        }
        self.cache = cache;
        Ok(loader.finish())
    }

    /// Files parsed by the last load (the others were unchanged).
    pub fn parsed(&self) -> usize {
        self.parsed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn route(name: &str, host: &str) -> String {
        format!(
            "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  host: {host}\n  to: {{kind: Service, name: s}}\n"
        )
    }

    #[test]
    fn unchanged_files_are_not_parsed_again_and_keep_their_arcs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, route("a", "a.example.com")).unwrap();
        std::fs::write(&b, route("b", "b.example.com")).unwrap();
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        let first = loader.load().unwrap();
        assert_eq!(loader.parsed(), 2);
        // Fresh files are re-read until they settle.
        loader.load().unwrap();
        assert_eq!(loader.parsed(), 2);
        // ctime cannot be set back: wait until the files have settled.
        std::thread::sleep(SETTLED + Duration::from_millis(50));
        loader.load().unwrap();
        assert_eq!(loader.parsed(), 2);
        let cached = loader.load().unwrap();
        assert_eq!(loader.parsed(), 0);
        assert!(Arc::ptr_eq(&cached.snapshot.routes[0], &{
            let again = loader.load().unwrap();
            again.snapshot.routes[0].clone()
        }));
        // An edit is seen at once, and only that file is parsed.
        std::fs::write(&b, route("b", "b2.example.com")).unwrap();
        let edited = loader.load().unwrap();
        assert_eq!(loader.parsed(), 1);
        assert_eq!(
            edited.snapshot.routes[1].spec.host.as_deref(),
            Some("b2.example.com")
        );
        assert_eq!(
            edited.snapshot.routes[0].spec.host,
            first.snapshot.routes[0].spec.host
        );
        // A removed file's objects are gone; a new file appears.
        std::fs::remove_file(&a).unwrap();
        std::fs::write(dir.path().join("c.yaml"), route("c", "c.example.com")).unwrap();
        let names: Vec<_> = loader
            .load()
            .unwrap()
            .snapshot
            .routes
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["b", "c"]);
    }

    #[test]
    fn same_result_as_a_one_shot_load_including_duplicates_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), route("x", "a.example.com")).unwrap();
        std::fs::write(dir.path().join("b.yaml"), route("x", "b.example.com")).unwrap();
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        for _ in 0..2 {
            let cached = loader.load().unwrap();
            let fresh = super::super::load_paths(&[dir.path().to_path_buf()], "default").unwrap();
            assert_eq!(cached.warnings, fresh.warnings);
            assert_eq!(cached.snapshot.routes.len(), 1);
            assert_eq!(
                cached.snapshot.routes[0].spec.host.as_deref(),
                Some("a.example.com")
            );
        }
        std::fs::write(dir.path().join("c.yaml"), "kind: [").unwrap();
        let err = loader.load().unwrap_err().to_string();
        assert!(err.contains("c.yaml"), "{err}");
    }
}
