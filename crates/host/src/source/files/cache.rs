//! Re-reading a directory of manifests without re-parsing what did not
//! change, and without walking it when the watcher named what changed.
//!
//! `routegen run` with a directory source reads the directory on every
//! pass. Parsing is ~90 µs per Route of YAML, so at 10,000 Routes a full
//! re-read costs about a second per pass. [`DirLoader`] keeps each file's
//! decoded documents with the file's stamp (device, inode, size, mtime,
//! ctime) and parses only files whose stamp changed; the load's result is
//! exactly that of [`super::load_paths`] on the same files (same objects,
//! order, duplicates and warnings), and unchanged objects keep their
//! `Arc`s from one pass to the next.
//!
//! Walking and stat'ing 10,000 files and putting their objects together
//! again still cost ~70 ms per pass; [`DirLoader::load_changed`] takes
//! what the watcher saw change ([`DirChanges`]) and, when it names files
//! only, patches the last result with those files (and the unsettled ones)
//! alone: a few ms for one edited file (see its documentation for when it
//! walks instead).
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use routegen_core::model::snapshot::key_str;
use routegen_core::model::{ObjectKey, Snapshot};

use crate::source::dir::DirChanges;

use super::{
    is_plain_manifest_name, is_regular_file, manifest_files_and_links, parse_file, read_capped,
    Documents, Item, LoadError, LoadOptions, Loaded, Loader,
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
    /// The bytes `documents` were parsed from, kept while not `trusted`:
    /// a file read again while its stamp settles (every pass, for
    /// [`SETTLED`]) is parsed only if its bytes differ.
    bytes: Option<Arc<[u8]>>,
}

impl CachedFile {
    fn new(stamp: Stamp, trusted: bool, (documents, bytes): ReadFile) -> Self {
        CachedFile {
            stamp,
            trusted,
            documents,
            bytes: (!trusted).then_some(bytes),
        }
    }
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
    /// Files read by the last load (the rest came from the cache by
    /// their stamp).
    read: usize,
    /// Files parsed by the last load (read, and not the bytes last parsed).
    parsed: usize,
    /// The last load's result, for [`DirLoader::load_changed`] to patch.
    last: Option<LastLoad>,
    /// The last load patched the one before instead of walking.
    patched: bool,
}

/// What the last load produced, and when the directory was last walked.
#[derive(Debug)]
struct LastLoad {
    loaded: Loaded,
    walked: Instant,
    /// The walk followed a symlink: a file behind it changes under another
    /// path than the one listed, so the last result is never patched.
    links: bool,
    /// Some key was defined twice: which definition wins depends on the
    /// other files, so the last result is never patched.
    duplicates: bool,
    /// Objects loaded (what [`super::MAX_OBJECTS`] bounds).
    objects: usize,
}

/// Longest [`DirLoader::load_changed`] goes without walking the whole
/// directory: a bound on what a missed event could cost.
pub const FULL_WALK_INTERVAL: Duration = Duration::from_secs(60);

impl DirLoader {
    pub fn new(paths: Vec<PathBuf>, default_namespace: impl Into<String>) -> DirLoader {
        DirLoader {
            paths,
            default_namespace: default_namespace.into(),
            cache: HashMap::new(),
            failures: HashMap::new(),
            failing: Vec::new(),
            read: 0,
            parsed: 0,
            last: None,
            patched: false,
        }
    }

    /// [`DirLoader::load`], told what changed since the last load.
    ///
    /// With [`DirChanges::Files`], only the named files and those whose
    /// stamp had not settled are looked at, and the last result is patched
    /// with them (O(changed files)): a changed file's objects replace,
    /// join or leave the snapshot, a new file's join, a removed file's
    /// leave. It walks instead ([`DirLoader::load`]) when the changes are
    /// [`DirChanges::Unknown`]; when the last load had duplicate objects
    /// (which one wins depends on the other files), followed a symlink, or
    /// has a failing file; when a named file fails to load, is not one a
    /// walk would list, or has findings that changed (warnings name files
    /// in walk order); when a new object's key is taken; and when the last
    /// walk is older than [`FULL_WALK_INTERVAL`]. Either way the result
    /// equals a full load of the same files, provided `changes` names every
    /// file written, created or removed since the last load (the
    /// watcher's contract).
    pub fn load_changed(&mut self, changes: &DirChanges) -> Result<Loaded, LoadError> {
        if let DirChanges::Files(files) = changes {
            if let Some(loaded) = self.patch(files) {
                self.patched = true;
                return Ok(loaded);
            }
        }
        self.load()
    }

    /// The last result with the objects of `files` (and of unsettled
    /// files) replaced, or `None` when a full load is needed; on `None`
    /// the file cache is unchanged and the last result is dropped (the
    /// full load makes a new one).
    fn patch(&mut self, files: &BTreeSet<PathBuf>) -> Option<Loaded> {
        // Edited in place and put back on success.
        let mut last = self.last.take()?;
        if last.links
            || last.duplicates
            || last.walked.elapsed() >= FULL_WALK_INTERVAL
            || !self.failures.is_empty()
        {
            return None;
        }
        let unsettled = self
            .cache
            .iter()
            .filter(|(_, c)| !c.trusted)
            .map(|(p, _)| p);
        let to_check: BTreeSet<&PathBuf> = files.iter().chain(unsettled).collect();
        let loader = Loader::new(LoadOptions::new(&self.default_namespace));
        // Each file's new version; `None`: removed.
        let mut read: Vec<(PathBuf, Option<CachedFile>)> = Vec::new();
        let mut parsed_count = 0;
        let no_documents = Documents::new();
        for file in to_check {
            let cached = self.cache.get(file);
            if cached.is_none() && !self.would_list(file) {
                return None;
            }
            let now = SystemTime::now();
            let stamp = match std::fs::metadata(file) {
                Ok(meta) => Stamp::of(&meta),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && cached.is_some() => {
                    read.push((file.clone(), None));
                    continue;
                }
                Err(_) => return None,
            };
            if cached.is_some_and(|c| c.trusted && c.stamp == stamp) {
                continue;
            }
            let name = file.display().to_string();
            let (read_now, parsed) = read_documents(file, &name, &loader, cached).ok()?;
            parsed_count += usize::from(parsed);
            let trusted = stamp.settled(now);
            read.push((
                file.clone(),
                Some(CachedFile::new(stamp, trusted, read_now)),
            ));
        }
        let snapshot = &mut last.loaded.snapshot;
        let mut objects = last.objects as isize;
        for (file, new) in &read {
            let old = self.cache.get(file).map_or(&no_documents, |c| &c.documents);
            let new = new.as_ref().map_or(&no_documents, |c| &c.documents);
            objects += patch_file(snapshot, new, old)?;
        }
        if objects as usize > super::MAX_OBJECTS {
            return None;
        }
        self.read = read.iter().filter(|(_, new)| new.is_some()).count();
        self.parsed = parsed_count;
        for (file, new) in read {
            match new {
                Some(new) => self.cache.insert(file, new),
                None => self.cache.remove(&file),
            };
        }
        last.objects = objects as usize;
        let loaded = Loaded {
            snapshot: last.loaded.snapshot.clone(),
            warnings: last.loaded.warnings.clone(),
            errors: last.loaded.errors.clone(),
        };
        self.last = Some(last);
        Some(loaded)
    }

    /// Whether a walk would list `file`: a regular manifest file (not a
    /// symlink) below one of the directories loaded, outside hidden entries.
    /// (Findings name files in walk order: a new file is patched in only
    /// without findings, see [`patch_file`], so its place in the order does
    /// not matter.)
    fn would_list(&self, file: &Path) -> bool {
        is_regular_file(file)
            && self
                .paths
                .iter()
                .any(|root| root.is_dir() && is_plain_manifest_name(root, file))
    }

    /// Load every manifest under the paths, as [`super::load_paths`] does
    /// (unknown fields are warnings; `-` is not accepted here: stdin cannot
    /// be re-read), except that a file that fails keeps its last good
    /// objects (see the type's documentation).
    pub fn load(&mut self) -> Result<Loaded, LoadError> {
        // Only a load that completes may be patched later.
        self.last = None;
        self.patched = false;
        let walked = Instant::now();
        let mut loader = Loader::new(LoadOptions::new(&self.default_namespace));
        let mut cache = HashMap::with_capacity(self.cache.len());
        let mut failures = HashMap::new();
        let mut failing = Vec::new();
        self.read = 0;
        self.parsed = 0;
        let mut links = false;
        for path in &self.paths {
            let (listed, linked) = manifest_files_and_links(path)?;
            links |= linked;
            for file in listed {
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
                            self.read += 1;
                            read_documents(&file, &name, &loader, cached.as_ref())
                                .map(|(read_now, parsed)| {
                                    self.parsed += usize::from(parsed);
                                    Some(read_now)
                                })
                                .map_err(|e| e.located())
                        }
                    },
                };
                let documents = match result {
                    Ok(Some(read_now)) => {
                        let stamp = stamp.as_ref().ok().copied().expect("read after a stat");
                        cache.insert(file.clone(), CachedFile::new(stamp, settled, read_now));
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
        let (duplicates, objects) = (loader.duplicates, loader.objects);
        let loaded = loader.finish();
        self.last = Some(LastLoad {
            duplicates,
            objects,
            loaded: Loaded {
                snapshot: loaded.snapshot.clone(),
                warnings: loaded.warnings.clone(),
                errors: loaded.errors.clone(),
            },
            walked,
            links,
        });
        Ok(loaded)
    }

    /// The files that failed in the last load, in load order.
    pub fn failing(&self) -> &[FailingFile] {
        &self.failing
    }

    /// Files read by the last load (the others were unchanged by their
    /// stamps).
    pub fn read(&self) -> usize {
        self.read
    }

    /// Files parsed by the last load: those read whose bytes were not the
    /// ones last parsed.
    pub fn parsed(&self) -> usize {
        self.parsed
    }

    /// The last load patched the one before with the changed files alone
    /// ([`DirLoader::load_changed`]) instead of walking the directory.
    pub fn patched(&self) -> bool {
        self.patched
    }
}

/// One file's objects by kind and key, and its findings in order.
struct FileObjects<'a> {
    objects: BTreeMap<(u8, &'a ObjectKey), &'a Item>,
    findings: Vec<&'a str>,
}

/// `None` when the file holds what a patch does not handle: an undecodable
/// Route (not an `Arc` to patch), a Namespace (keyed by name alone; rare),
/// or one key twice (which one wins depends on the order).
fn file_objects(documents: &Documents) -> Option<FileObjects<'_>> {
    let mut file = FileObjects {
        objects: BTreeMap::new(),
        findings: Vec::new(),
    };
    for item in documents.iter().flat_map(|(_, items)| items) {
        let kind = match item {
            Item::Route(k, _) => (0, k),
            Item::Service(k, _) => (1, k),
            Item::Slice(k, _) => (2, k),
            Item::Secret(k, _) => (3, k),
            Item::Warning(w) | Item::Error(w) => {
                file.findings.push(w);
                continue;
            }
            Item::Undecodable(..) | Item::Namespace(..) => return None,
        };
        if file.objects.insert(kind, item).is_some() {
            return None;
        }
    }
    Some(file)
}

/// Apply one file's new version to `snapshot`: objects it no longer has
/// removed, new ones inserted, the others replaced. `None` (a full load is
/// needed) when its findings changed, or an object it had is not the one
/// the snapshot holds, or a new one's key is taken: only in a load without
/// duplicates can a file's objects be placed without the others'. Returns
/// the change in the number of objects.
fn patch_file(snapshot: &mut Snapshot, new: &Documents, old: &Documents) -> Option<isize> {
    let (new, old) = (file_objects(new)?, file_objects(old)?);
    if new.findings != old.findings {
        return None;
    }
    for (key, item) in &old.objects {
        if !new.objects.contains_key(key) {
            edit_object(snapshot, None, Some(item))?;
        }
    }
    for (key, item) in &new.objects {
        edit_object(snapshot, Some(item), old.objects.get(key).copied())?;
    }
    Some(new.objects.len() as isize - old.objects.len() as isize)
}

/// Put `new`'s object where `old`'s is, remove `old`'s (`new` is `None`),
/// or insert `new`'s in key order (`old` is `None`). `None` when `old`'s
/// object is not the one the snapshot holds, or `new`'s key is taken.
fn edit_object(snapshot: &mut Snapshot, new: Option<&Item>, old: Option<&Item>) -> Option<()> {
    fn edit<T>(
        objects: &mut Vec<Arc<T>>,
        key_of: impl for<'a> Fn(&'a T) -> (&'a str, &'a str),
        (key, new, old): (&ObjectKey, Option<&Arc<T>>, Option<&Arc<T>>),
    ) -> Option<()> {
        if let (Some(new), Some(old)) = (new, old) {
            if Arc::ptr_eq(new, old) {
                return Some(());
            }
        }
        let wanted = (key.namespace.as_str(), key.name.as_str());
        let at = objects.binary_search_by(|o| key_of(o).cmp(&wanted));
        match (at, new, old) {
            (Ok(at), new, Some(old)) if Arc::ptr_eq(&objects[at], old) => match new {
                Some(new) => objects[at] = Arc::clone(new),
                None => {
                    objects.remove(at);
                }
            },
            (Err(at), Some(new), None) => objects.insert(at, Arc::clone(new)),
            _ => return None,
        }
        Some(())
    }
    match (new, old) {
        (Some(Item::Route(k, a)), Some(Item::Route(_, b))) => edit(
            &mut snapshot.routes,
            |o| key_str(&o.metadata),
            (k, Some(a), Some(b)),
        ),
        (Some(Item::Route(k, a)), None) => {
            // A Route's key is also taken by an undecodable one.
            let taken = snapshot.undecodable_routes.iter().any(|u| {
                u.metadata.namespace.as_deref() == Some(k.namespace.as_str())
                    && u.metadata.name.as_deref() == Some(k.name.as_str())
            });
            (!taken).then_some(())?;
            edit(
                &mut snapshot.routes,
                |o| key_str(&o.metadata),
                (k, Some(a), None),
            )
        }
        (None, Some(Item::Route(k, b))) => edit(
            &mut snapshot.routes,
            |o| key_str(&o.metadata),
            (k, None, Some(b)),
        ),
        (new, old) => {
            macro_rules! kind {
                ($variant:ident, $field:ident, $key:expr) => {{
                    let n = match new {
                        Some(Item::$variant(k, a)) => Some((k, a)),
                        _ => None,
                    };
                    let o = match old {
                        Some(Item::$variant(k, b)) => Some((k, b)),
                        _ => None,
                    };
                    if n.is_some() || o.is_some() {
                        let key = n.or(o).map(|(k, _)| k)?;
                        return edit(
                            &mut snapshot.$field,
                            $key,
                            (key, n.map(|(_, a)| a), o.map(|(_, b)| b)),
                        );
                    }
                }};
            }
            kind!(Service, services, |o| (&o.namespace, &o.name));
            kind!(Slice, endpoint_slices, |o| (&o.namespace, &o.name));
            kind!(Secret, secrets, |o| key_str(&o.metadata));
            None
        }
    }
}

/// Give each object of a re-read file that equals the object at the same
/// place of the file's previous version that version's `Arc`.
///
/// A file is re-read while its stamp has not settled, or rewritten with
/// equal objects; without this the cache would keep the new `Arc`s while
/// the engine keeps the old ones (`Snapshot::reuse_unchanged`), and every
/// later pass would compare those objects in depth instead of by pointer
/// (10% of a one-endpoint pass at 10,000 Routes, all of whose files are
/// re-read once after start-up).
fn keep_equal_arcs(new: &mut Documents, old: &Documents) {
    fn keep<T>(new: &mut Arc<T>, old: &Arc<T>, equal: impl Fn(&T, &T) -> bool) {
        if !Arc::ptr_eq(new, old) && equal(new, old) {
            *new = Arc::clone(old);
        }
    }
    for ((_, items), (_, old_items)) in new.iter_mut().zip(old) {
        for (item, old) in items.iter_mut().zip(old_items) {
            match (item, old) {
                (Item::Route(k, a), Item::Route(j, b)) if k == j => {
                    keep(a, b, routegen_core::model::routes_equal)
                }
                (Item::Service(k, a), Item::Service(j, b)) if k == j => keep(a, b, PartialEq::eq),
                (Item::Slice(k, a), Item::Slice(j, b)) if k == j => keep(a, b, PartialEq::eq),
                (Item::Secret(k, a), Item::Secret(j, b)) if k == j => keep(a, b, PartialEq::eq),
                (Item::Namespace(k, a), Item::Namespace(j, b)) if k == j => {
                    keep(a, b, PartialEq::eq)
                }
                _ => {}
            }
        }
    }
}

/// Read and parse one file as the one-shot load does.
/// A file's documents and the bytes they were parsed from.
type ReadFile = (Documents, Arc<[u8]>);

/// `file`'s documents and bytes, and whether they were parsed: the
/// documents of `cached` when the bytes are those it was parsed from (the
/// same bytes under the same name and options parse the same), otherwise
/// parsed, with `cached`'s `Arc`s kept for equal objects.
fn read_documents(
    file: &Path,
    name: &str,
    loader: &Loader<'_>,
    cached: Option<&CachedFile>,
) -> Result<(ReadFile, bool), LoadError> {
    let bytes: Arc<[u8]> = read_capped(file)?.into();
    if let Some(cached) = cached.filter(|c| c.bytes.as_deref() == Some(&bytes[..])) {
        return Ok(((cached.documents.clone(), bytes), false));
    }
    let is_json = file.extension().is_some_and(|e| e == "json");
    let mut documents = parse_file(name, &bytes, is_json, &loader.options, loader.parallel)?;
    if let Some(cached) = cached {
        keep_equal_arcs(&mut documents, &cached.documents);
    }
    Ok(((documents, bytes), true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, host: &str) -> String {
        format!(
            "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  host: {host}\n  to: {{kind: Service, name: s}}\n"
        )
    }

    /// `loaded` equals a one-shot load of `dir` (objects and findings).
    fn assert_same_as_one_shot(loaded: &Loaded, dir: &Path, step: &str) {
        let fresh = super::super::load_paths(&[dir.to_path_buf()], "default").unwrap();
        assert_eq!(
            format!("{:?}", loaded.snapshot),
            format!("{:?}", fresh.snapshot),
            "{step}"
        );
        assert_eq!(loaded.warnings, fresh.warnings, "{step}");
        assert_eq!(loaded.errors, fresh.errors, "{step}");
    }

    fn service(name: &str, port: u16) -> String {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: ns}}\nspec:\n  ports: [{{port: {port}}}]\n"
        )
    }

    #[test]
    fn changed_files_patch_the_last_load_when_only_contents_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = |n: &str| dir.path().join(n);
        let files = |names: &[&str]| DirChanges::Files(names.iter().map(|n| path(n)).collect());
        let write = |n: &str, text: String| std::fs::write(path(n), text).unwrap();
        write(
            "a.yaml",
            format!("{}---\n{}", route("a", "a.example.com"), service("s", 80)),
        );
        write("b.yaml", route("b", "b.example.com"));
        // A finding (an unknown kind is skipped with a warning).
        write(
            "c.yaml",
            format!("{}---\n{}", route("c", "c.example.com"), "kind: Nope\n"),
        );
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        loader.load().unwrap();
        std::thread::sleep(SETTLED + Duration::from_millis(50));
        // Every stamp trusted from here on.
        loader.load().unwrap();
        let step = |loader: &mut DirLoader, changes: DirChanges, patched: bool, what: &str| {
            let loaded = loader.load_changed(&changes).unwrap();
            assert_eq!(loader.patched(), patched, "{what}");
            assert_same_as_one_shot(&loaded, dir.path(), what);
            loaded
        };

        let before = step(&mut loader, files(&[]), true, "nothing changed");
        assert_eq!(loader.parsed(), 0);
        write(
            "a.yaml",
            format!("{}---\n{}", route("a", "a2.example.com"), service("s", 81)),
        );
        let after = step(&mut loader, files(&["a.yaml"]), true, "contents of a");
        assert_eq!(loader.parsed(), 1);
        assert!(
            Arc::ptr_eq(&before.snapshot.routes[1], &after.snapshot.routes[1]),
            "b kept"
        );
        // a.yaml has not settled: read again (not parsed: the same
        // bytes), same objects.
        let again = step(&mut loader, files(&[]), true, "a unsettled");
        assert_eq!((loader.read(), loader.parsed()), (1, 0));
        assert!(Arc::ptr_eq(
            &after.snapshot.routes[0],
            &again.snapshot.routes[0]
        ));
        write(
            "a.yaml",
            format!("{}---\n{}", route("a0", "a.example.com"), service("t", 80)),
        );
        step(
            &mut loader,
            files(&["a.yaml"]),
            true,
            "objects added and removed",
        );

        write(
            "c.yaml",
            format!("{}---\n{}", route("c", "c.example.com"), "kind: Nope2\n"),
        );
        step(&mut loader, files(&["c.yaml"]), false, "a finding changed");
        write("d.yaml", route("d", "d.example.com"));
        step(&mut loader, files(&["d.yaml"]), true, "a new file");
        write("d.yaml", route("b", "dup.example.com"));
        step(
            &mut loader,
            files(&["d.yaml"]),
            false,
            "a key taken by another file",
        );
        step(&mut loader, files(&[]), false, "while a duplicate exists");
        write("d.yaml", route("d", "d.example.com"));
        step(&mut loader, files(&["d.yaml"]), false, "the duplicate gone");
        step(&mut loader, files(&["d.yaml"]), true, "no duplicate left");
        std::fs::remove_file(path("b.yaml")).unwrap();
        step(&mut loader, files(&["b.yaml"]), true, "a file removed");
        write(
            "e.yaml",
            format!("{}---\n{}", route("e", "e.example.com"), "kind: Nope\n"),
        );
        step(
            &mut loader,
            files(&["e.yaml"]),
            false,
            "a new file with a finding",
        );
        std::fs::remove_file(path("e.yaml")).unwrap();
        step(
            &mut loader,
            files(&["e.yaml"]),
            false,
            "a file with a finding removed",
        );
        step(
            &mut loader,
            files(&["gone.yaml"]),
            false,
            "a file never listed, missing",
        );
        std::fs::create_dir(path(".hidden")).unwrap();
        write(".hidden/f.yaml", route("f", "f.example.com"));
        write("notes.txt", route("g", "g.example.com"));
        let hidden = step(
            &mut loader,
            files(&[".hidden/f.yaml", "notes.txt"]),
            false,
            "not listed",
        );
        assert_eq!(hidden.snapshot.routes.len(), 3);
        step(&mut loader, DirChanges::Unknown, false, "unknown");
        // A failing file (which a one-shot load refuses): never patched.
        write("d.yaml", "kind: [".to_string());
        for changes in [files(&["d.yaml"]), files(&[])] {
            loader.load_changed(&changes).unwrap();
            assert!(!loader.patched() && loader.failing().len() == 1);
        }
        std::fs::remove_file(path("d.yaml")).unwrap();
        step(&mut loader, DirChanges::Unknown, false, "failing file gone");
        step(&mut loader, files(&["a.yaml"]), true, "patched again");
        std::os::unix::fs::symlink(path("a.yaml"), path("link.yaml")).unwrap();
        step(&mut loader, DirChanges::Unknown, false, "a symlink listed");
        step(
            &mut loader,
            files(&["a.yaml"]),
            false,
            "never patched with a symlink",
        );
    }

    #[test]
    fn a_file_read_again_keeps_the_arcs_of_its_equal_objects() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        let two = format!(
            "{}---\n{}",
            route("a", "a.example.com"),
            route("b", "b.example.com")
        );
        std::fs::write(&a, &two).unwrap();
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        let first = loader.load().unwrap();
        // Not settled yet: read again, not parsed (the same bytes), the
        // same objects.
        let again = loader.load().unwrap();
        assert_eq!((loader.read(), loader.parsed()), (1, 0));
        assert!(Arc::ptr_eq(
            &first.snapshot.routes[0],
            &again.snapshot.routes[0]
        ));
        assert!(Arc::ptr_eq(
            &first.snapshot.routes[1],
            &again.snapshot.routes[1]
        ));
        // One object changed: only that one is new.
        std::fs::write(
            &a,
            format!(
                "{}---\n{}",
                route("a", "a.example.com"),
                route("b", "b2.example.com")
            ),
        )
        .unwrap();
        let edited = loader.load().unwrap();
        assert!(Arc::ptr_eq(
            &first.snapshot.routes[0],
            &edited.snapshot.routes[0]
        ));
        assert!(!Arc::ptr_eq(
            &first.snapshot.routes[1],
            &edited.snapshot.routes[1]
        ));
        assert_eq!(
            edited.snapshot.routes[1].spec.host.as_deref(),
            Some("b2.example.com")
        );
    }

    #[test]
    fn unchanged_files_are_not_parsed_again_and_keep_their_arcs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        std::fs::write(&a, route("a", "a.example.com")).unwrap();
        std::fs::write(&b, route("b", "b.example.com")).unwrap();
        let mut loader = DirLoader::new(vec![dir.path().to_path_buf()], "default");
        let first = loader.load().unwrap();
        assert_eq!((loader.read(), loader.parsed()), (2, 2));
        // Fresh files are re-read until they settle, and parsed only if
        // their bytes changed.
        loader.load().unwrap();
        assert_eq!((loader.read(), loader.parsed()), (2, 0));
        std::fs::write(&b, route("b", "b1.example.com")).unwrap();
        loader.load().unwrap();
        assert_eq!((loader.read(), loader.parsed()), (2, 1));
        // ctime cannot be set back: wait until the files have settled.
        std::thread::sleep(SETTLED + Duration::from_millis(50));
        loader.load().unwrap();
        assert_eq!((loader.read(), loader.parsed()), (2, 0));
        let cached = loader.load().unwrap();
        assert_eq!((loader.read(), loader.parsed()), (0, 0));
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
        assert_eq!(loader.read(), 0, "settled files, good or bad, are not read");
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
