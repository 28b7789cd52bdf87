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
//!
//! One file that fails (bad YAML, a document that is not an object, not
//! UTF-8, unreadable) does not stop the others: it keeps the objects of its
//! last version that loaded (none if no version did yet) and is reported
//! in [`DirLoader::failing`], with [`FailingFile::new`] set only the first
//! time a version fails, so the sidecar logs it once per version.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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

/// A file's last version that loaded, and its stamp.
#[derive(Debug)]
struct CachedFile {
    stamp: Stamp,
    /// The stamp had settled when the file was read: an equal stamp later
    /// means the same contents (otherwise the file is read again).
    trusted: bool,
    documents: Documents,
}

/// A file whose current version does not load.
#[derive(Debug)]
struct Failure {
    /// `None` when the file could not even be stat'ed.
    stamp: Option<Stamp>,
    trusted: bool,
    error: String,
}

/// A manifest file that failed to load in the last [`DirLoader::load`]
/// (YAML or JSON syntax, a document that is not an object, not UTF-8,
/// unreadable, too large).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailingFile {
    pub path: PathBuf,
    /// `<file>:<line>: document <n>: <what>` (the line when known).
    pub error: String,
    /// The objects of the file's last version that loaded are kept;
    /// `false`: none ever loaded in this process, the file contributes
    /// nothing.
    pub kept_last_good: bool,
    /// This version of the file failed for the first time in this load
    /// (report it); `false`: the same version failed before.
    pub new: bool,
}

/// Loads the same paths again and again, parsing only changed files.
///
/// One file's failure does not fail the load: the file keeps the objects
/// of its last version that loaded (none on the first load) and is listed
/// in [`DirLoader::failing`]; every other file is loaded as usual. Only
/// what concerns the whole input fails a load: the directory cannot be
/// read or walked, or the objects exceed [`super::MAX_OBJECTS`]. (The
/// one-shot [`super::load_paths`] of `check`, `render` and `diff` fails on
/// any bad file.)
#[derive(Debug)]
pub struct DirLoader {
    paths: Vec<PathBuf>,
    default_namespace: String,
    cache: HashMap<PathBuf, CachedFile>,
    failures: HashMap<PathBuf, Failure>,
    failing: Vec<FailingFile>,
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
            failures: HashMap::new(),
            failing: Vec::new(),
            parsed: 0,
        }
    }

    /// Load every manifest under the paths, as [`super::load_paths`] does
    /// (unknown fields are warnings; `-` is not accepted here: stdin cannot
    /// be re-read), except that a file that fails keeps its last good
    /// objects (see the type's documentation).
    pub fn load(&mut self) -> Result<Loaded, LoadError> {
        let mut loader = Loader::new(LoadOptions::new(&self.default_namespace));
        let mut cache = HashMap::with_capacity(self.cache.len());
        let mut failures = HashMap::new();
        let mut failing = Vec::new();
        self.parsed = 0;
        for path in &self.paths {
            for file in manifest_files(path)? {
                let name = file.display().to_string();
                // Stat before reading: a write between the two leaves a
                // newer stamp, which the next pass sees as a change.
                let now = SystemTime::now();
                let stamp = match std::fs::metadata(&file) {
                    Ok(meta) => Ok(Stamp::of(&meta)),
                    // Removed since the directory was listed: gone.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(source) => Err(LoadError::Io {
                        path: name.clone(),
                        source,
                    }),
                };
                let settled = stamp.as_ref().is_ok_and(|s| s.settled(now));
                let cached = self.cache.remove(&file);
                let failed = self.failures.remove(&file);
                let unchanged = |trusted: bool, old: Option<Stamp>| {
                    trusted && old.is_some() && stamp.as_ref().ok().copied() == old
                };
                let result = match (&cached, &failed) {
                    (Some(c), _) if unchanged(c.trusted, Some(c.stamp)) => Ok(None),
                    (_, Some(f)) if unchanged(f.trusted, f.stamp) => Err(f.error.clone()),
                    _ => match &stamp {
                        Err(e) => Err(e.located()),
                        Ok(_) => {
                            self.parsed += 1;
                            read_and_parse(&file, &name, &loader)
                                .map(Some)
                                .map_err(|e| e.located())
                        }
                    },
                };
                let documents = match result {
                    Ok(Some(documents)) => {
                        let stamp = stamp.as_ref().ok().copied().expect("read after a stat");
                        cache.insert(
                            file.clone(),
                            CachedFile {
                                stamp,
                                trusted: settled,
                                documents,
                            },
                        );
                        cache.get(&file).map(|c| &c.documents)
                    }
                    Ok(None) => {
                        let c = cached.expect("unchanged cached file");
                        cache.insert(file.clone(), c);
                        cache.get(&file).map(|c| &c.documents)
                    }
                    Err(error) => {
                        let stamp = stamp.as_ref().ok().copied();
                        let new = failed
                            .as_ref()
                            .is_none_or(|f| f.stamp != stamp || f.error != error);
                        failing.push(FailingFile {
                            path: file.clone(),
                            error: error.clone(),
                            kept_last_good: cached.is_some(),
                            new,
                        });
                        failures.insert(
                            file.clone(),
                            Failure {
                                stamp,
                                trusted: settled,
                                error,
                            },
                        );
                        // The last good version stays, untrusted so that
                        // a version equal to it is read again.
                        cached.map(|c| {
                            &cache
                                .entry(file.clone())
                                .or_insert(CachedFile {
                                    trusted: false,
                                    ..c
                                })
                                .documents
                        })
                    }
                };
                if let Some(documents) = documents {
                    loader.absorb_file(&name, documents.clone())?;
                }
            }
        }
        self.cache = cache;
        self.failures = failures;
        self.failing = failing;
        Ok(loader.finish())
    }

    /// The files that failed in the last load, in load order.
    pub fn failing(&self) -> &[FailingFile] {
        &self.failing
    }

    /// Files parsed by the last load (the others were unchanged).
    pub fn parsed(&self) -> usize {
        self.parsed
    }
}

/// Read and parse one file as the one-shot load does.
fn read_and_parse(file: &Path, name: &str, loader: &Loader<'_>) -> Result<Documents, LoadError> {
    let bytes = read_capped(file)?;
    let is_json = file.extension().is_some_and(|e| e == "json");
    parse_file(name, &bytes, is_json, &loader.options, loader.parallel)
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
        let err = super::super::load_paths(&[dir.path().to_path_buf()], "default")
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.yaml"), "the one-shot load fails: {err}");
        let isolated = loader.load().unwrap();
        assert_eq!(isolated.snapshot.routes.len(), 1);
        assert_eq!(loader.failing().len(), 1);
    }

    fn names(loaded: &Loaded) -> Vec<(String, String)> {
        loaded
            .snapshot
            .routes
            .iter()
            .map(|r| {
                (
                    r.metadata.name.clone().unwrap(),
                    r.spec.host.clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn pair(name: &str, host: &str) -> (String, String) {
        (name.to_string(), host.to_string())
    }

    #[test]
    fn a_bad_file_keeps_its_last_good_objects_and_the_others_flow() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, route("a", "a.example.com")).unwrap();
        std::fs::write(&b, route("b", "b.example.com")).unwrap();
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        loader.load().unwrap();
        assert!(loader.failing().is_empty());

        // b breaks: its Route stays as it was, a's edit is served.
        std::fs::write(&b, format!("{}  tls: [\n", route("b", "b2.example.com"))).unwrap();
        std::fs::write(&a, route("a", "a2.example.com")).unwrap();
        let loaded = loader.load().unwrap();
        assert_eq!(
            names(&loaded),
            [pair("a", "a2.example.com"), pair("b", "b.example.com")]
        );
        let failing = loader.failing().to_vec();
        assert_eq!(failing.len(), 1, "{failing:?}");
        assert_eq!(failing[0].path, b);
        assert!(failing[0].kept_last_good);
        assert!(failing[0].new, "a new failure is reported");
        let name = b.display().to_string();
        assert!(
            failing[0]
                .error
                .starts_with(&format!("{name}:7: document 1: invalid YAML")),
            "file and line: {}",
            failing[0].error
        );

        // The same version again: still failing, not new.
        std::fs::write(&a, route("a", "a3.example.com")).unwrap();
        let loaded = loader.load().unwrap();
        assert_eq!(
            names(&loaded),
            [pair("a", "a3.example.com"), pair("b", "b.example.com")]
        );
        assert_eq!(loader.failing().len(), 1);
        assert!(!loader.failing()[0].new, "reported once per version");

        // Another broken version is reported again.
        std::fs::write(&b, "kind: [\n").unwrap();
        loader.load().unwrap();
        assert!(loader.failing()[0].new);
        assert!(loader.failing()[0].kept_last_good);
        loader.load().unwrap();
        assert!(!loader.failing()[0].new);

        // Fixed: the new version is picked up.
        std::fs::write(&b, route("b", "b4.example.com")).unwrap();
        let loaded = loader.load().unwrap();
        assert!(loader.failing().is_empty());
        assert_eq!(
            names(&loaded),
            [pair("a", "a3.example.com"), pair("b", "b4.example.com")]
        );

        // Removed while broken: its objects go.
        std::fs::write(&b, "kind: [\n").unwrap();
        loader.load().unwrap();
        std::fs::remove_file(&b).unwrap();
        let loaded = loader.load().unwrap();
        assert!(loader.failing().is_empty());
        assert_eq!(names(&loaded), [pair("a", "a3.example.com")]);
    }

    #[test]
    fn a_bad_settled_file_is_not_parsed_again_nor_reported_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
        std::fs::write(
            dir.path().join("b.yaml"),
            "kind: Route\nmetadata: {name: [\n",
        )
        .unwrap();
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        loader.load().unwrap();
        assert!(loader.failing()[0].new);
        std::thread::sleep(SETTLED + Duration::from_millis(50));
        loader.load().unwrap();
        assert!(!loader.failing()[0].new);
        loader.load().unwrap();
        assert_eq!(
            loader.parsed(),
            0,
            "settled files, good or bad, are not read"
        );
        assert_eq!(loader.failing().len(), 1);
        assert!(!loader.failing()[0].new);
    }

    #[test]
    fn first_load_failures_name_file_and_line_and_leave_the_objects_out() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), route("a", "a.example.com")).unwrap();
        // Document 2 of c.yaml (line 8) is a list, not an object.
        std::fs::write(
            dir.path().join("c.yaml"),
            format!("{}---\n- just\n- a list\n", route("c", "c.example.com")),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("d.json"),
            "{\n  \"kind\": \"Route\",\n  oops\n}\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("e.yaml"), b"kind: \xff\n").unwrap();
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        let loaded = loader.load().unwrap();
        assert_eq!(names(&loaded), [pair("a", "a.example.com")]);
        let errors: Vec<String> = loader
            .failing()
            .iter()
            .inspect(|f| assert!(!f.kept_last_good && f.new, "{f:?}"))
            .map(|f| f.error.replace(&format!("{}/", dir.path().display()), ""))
            .collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].starts_with("c.yaml:7: document 2: expected a Kubernetes object"),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with("d.json:3: document 1: invalid JSON"),
            "{errors:?}"
        );
        assert!(errors[2].starts_with("e.yaml: not UTF-8"), "{errors:?}");
        // Fixed: picked up.
        std::fs::write(dir.path().join("c.yaml"), route("c", "c.example.com")).unwrap();
        let loaded = loader.load().unwrap();
        assert_eq!(
            names(&loaded),
            [pair("a", "a.example.com"), pair("c", "c.example.com")]
        );
        assert_eq!(loader.failing().len(), 2);
    }
}
