//! The files of the output directory: reading a tree back, staging a new
//! one from the current one (hard links for what did not change), the
//! content-addressed subdirectory copies under `DIR/dirs/` and their
//! pruning.
//!
//! A tree is `trees/<id>/` with its top-level files and, per top-level
//! subdirectory `<sub>`, a symbolic link `<sub> -> ../../dirs/<key>`. The
//! key is the hex sha256 over that subdirectory's files (see [`dir_key`]),
//! so `dirs/<key>` is immutable once it exists and is shared by every tree
//! whose `<sub>` holds the same files. Every directory written here starts
//! with the marker [`TREE_MARKER`] (only marked directories are deleted).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{io_err, ApplyError, FileState, Manifest, StagingStats, FAILED, STAGING, TREES};
use routegen_render::output::{
    dirs_link_key, is_dir_key, OutputFile, OutputTree, DIRS, TREE_MARKER,
};

/// Mode of the marker in a `dirs/` copy: like the keys it sits among (the
/// tree's own marker is 0644, as [`routegen_render::output::write_tree`] leaves it).
const COPY_MARKER_MODE: u32 = 0o600;
/// Prefix of a `dirs/` copy being built.
const DIR_STAGING_PREFIX: &str = ".staging-";
/// Prefix of a directory being removed: renamed first (atomically, marker
/// and all), so a removal cut short by a crash leaves a name that says it
/// is ours and garbage, not a half-emptied directory under its old name.
pub(crate) const TRASH_PREFIX: &str = ".trash-";

/// Directories to remove: renamed out of the way at once (`.trash-*` in
/// the same directory or file system), deleted by a background thread, so
/// the unlinks of a pruned tree or copy are not part of an apply's
/// latency. Nothing but this type touches a `.trash-*` directory while the
/// applier runs; [`Applier::open`](super::Applier::open) removes those a
/// previous process left.
#[derive(Debug, Default)]
pub(crate) struct Trash {
    pending: Vec<PathBuf>,
    workers: Vec<std::thread::JoinHandle<()>>,
    seq: u64,
}

impl Trash {
    /// Rename `dir` to `<into>/.trash-<name>-<n>` (a fresh name).
    pub(crate) fn put(&mut self, dir: &Path, into: &Path, name: &str) -> Result<(), ApplyError> {
        loop {
            self.seq += 1;
            let trash = into.join(format!("{TRASH_PREFIX}{name}-{}", self.seq));
            if fs::symlink_metadata(&trash).is_ok() {
                continue;
            }
            fs::rename(dir, &trash).map_err(io_err(dir))?;
            self.pending.push(trash);
            return Ok(());
        }
    }

    /// Delete what was put, in the background.
    pub(crate) fn empty(&mut self) {
        self.workers.retain(|w| !w.is_finished());
        if self.pending.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let spawned = std::thread::Builder::new()
            .name("routegen-prune".into())
            .spawn({
                let batch = batch.clone();
                move || {
                    for dir in batch {
                        if let Err(e) = fs::remove_dir_all(&dir) {
                            tracing::warn!(path = %dir.display(), error = %e, "cannot remove a pruned directory (removed on the next start)");
                        }
                    }
                }
            });
        match spawned {
            Ok(worker) => self.workers.push(worker),
            Err(_) => {
                for dir in batch {
                    let _ = fs::remove_dir_all(&dir);
                }
            }
        }
    }

    /// Wait until every deletion started is done.
    pub(crate) fn wait(&mut self) {
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for Trash {
    fn drop(&mut self) {
        self.empty();
        self.wait();
    }
}

fn refused(path: &Path, message: &str) -> ApplyError {
    ApplyError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(message.to_string()),
    }
}

/// What is known of a tree on disk: its files, and where each top-level
/// subdirectory's files are (a `dirs/<key>` copy, or a plain directory
/// inside trees written before the shared copies existed).
#[derive(Clone, Debug, Default)]
pub(crate) struct TreeState {
    pub id: String,
    pub files: Manifest,
    pub subdirs: BTreeMap<String, PathBuf>,
}

/// Mode a file of the tree is written with.
pub(crate) fn file_mode(secret: bool) -> u32 {
    if secret {
        0o600
    } else {
        0o644
    }
}

/// The content key of one subdirectory: hex sha256 over its files in path
/// order (paths relative to the subdirectory), each as `path NUL sha256
/// secret-byte`.
pub(crate) fn dir_key<'a>(files: impl IntoIterator<Item = (&'a str, &'a FileState)>) -> String {
    let mut h = openssl::sha::Sha256::new();
    for (rel, state) in files {
        h.update(rel.as_bytes());
        h.update(&[0]);
        h.update(&state.hash);
        h.update(&[u8::from(state.secret)]);
    }
    hex(&h.finish())
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One file of a tree being staged.
struct Entry<'a> {
    /// Path relative to the top of the tree or of its subdirectory.
    rel: &'a str,
    file: &'a OutputFile,
    state: FileState,
}

/// A tree's files split into its top-level files and its top-level
/// subdirectories (paths relative to them, in order).
struct Grouped<'a> {
    top: Vec<Entry<'a>>,
    subs: BTreeMap<&'a str, Vec<Entry<'a>>>,
}

fn group<'a>(tree: &'a OutputTree, files: &'a Manifest) -> Grouped<'a> {
    let mut grouped = Grouped {
        top: Vec::new(),
        subs: BTreeMap::new(),
    };
    for (path, file) in tree {
        let entry = |rel| Entry {
            rel,
            file,
            state: files[path],
        };
        match path.split_once('/') {
            None => grouped.top.push(entry(path)),
            Some((sub, rel)) => grouped.subs.entry(sub).or_default().push(entry(rel)),
        }
    }
    grouped
}

/// The keys of the top-level subdirectories of `tree` (manifest `files`).
pub(crate) fn subdir_keys(files: &Manifest) -> BTreeMap<&str, String> {
    let mut subs: BTreeMap<&str, Vec<(&str, &FileState)>> = BTreeMap::new();
    for (path, state) in files {
        if let Some((sub, rel)) = path.split_once('/') {
            subs.entry(sub).or_default().push((rel, state));
        }
    }
    subs.into_iter()
        .map(|(sub, files)| (sub, dir_key(files)))
        .collect()
}

/// Create `dir` with mode 0700 (it must not exist).
fn create_dir_0700(dir: &Path) -> Result<(), ApplyError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}

/// Write a new file (it must not exist) with its final mode from the
/// start (never readable by others, even for an instant), not yet synced:
/// the caller adds it to its [`Syncs`]. Inside a staging directory no
/// reader sees it before the directory is renamed into place, so this is
/// atomic.
fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), ApplyError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err(path))?;
    if mode != 0o600 {
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(io_err(path))?;
    }
    f.write_all(contents).map_err(io_err(path))
}

/// Files and directories to fsync before the next step may be made
/// durable. fsync is the cost of a small apply (one device flush each,
/// 0.1 to several ms depending on what else the file system is writing),
/// so one batch is synced by several threads at once: the file system
/// commits concurrent fsyncs together.
#[derive(Debug, Default)]
pub(crate) struct Syncs(Vec<PathBuf>);

impl Syncs {
    pub(crate) fn push(&mut self, path: PathBuf) {
        self.0.push(path);
    }

    /// fsync everything pushed (files and directories alike); the first
    /// error, naming its path.
    pub(crate) fn sync(self) -> Result<(), ApplyError> {
        // fsync waits on the disk, not the CPU: more waiters than cores
        // (rayon's pool has one thread per core) shortens the wait.
        const THREADS: usize = 8;
        let paths = self.0;
        let one = |p: &PathBuf| {
            fs::File::open(p)
                .and_then(|f| f.sync_all())
                .map_err(io_err(p))
        };
        if paths.len() < 2 {
            return paths.iter().try_for_each(one);
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let worker = || -> Result<(), ApplyError> {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                match paths.get(i) {
                    Some(p) => one(p)?,
                    None => return Ok(()),
                }
            }
        };
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..THREADS.min(paths.len()))
                .map(|_| s.spawn(worker))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("fsync thread panicked"))
                .collect::<Vec<_>>()
                .into_iter()
                .collect()
        })
    }
}

/// Hard-link `src` (a regular file of ours with `mode`) to `dst`.
/// `Ok(false)` when `src` is missing or not as expected (the caller writes
/// the file instead); a symbolic link is refused, never followed.
fn link_from(src: &Path, dst: &Path, mode: u32) -> Result<bool, ApplyError> {
    let meta = match fs::symlink_metadata(src) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io_err(src)(e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refused(
            src,
            "is a symbolic link; refusing to link or read through it",
        ));
    }
    if !meta.is_file() || meta.mode() & 0o7777 != mode {
        return Ok(false);
    }
    fs::hard_link(src, dst).map_err(io_err(dst))?;
    Ok(true)
}

/// The empty marker in a new directory (mode `mode`): a hard link to
/// `from`'s when it has one, else a new file.
fn put_marker(
    dir: &Path,
    mode: u32,
    from: Option<&Path>,
    syncs: &mut Syncs,
) -> Result<(), ApplyError> {
    let marker = dir.join(TREE_MARKER);
    if let Some(from) = from {
        let src = from.join(TREE_MARKER);
        if fs::symlink_metadata(&src).is_ok_and(|m| m.is_file() && m.len() == 0)
            && link_from(&src, &marker, mode)?
        {
            return Ok(());
        }
    }
    write_new(&marker, b"", mode)?;
    syncs.push(marker);
    Ok(())
}

/// Where to hard-link unchanged files from: a directory of ours and what
/// its files hold, by path relative to it.
struct Source<'a> {
    dir: &'a Path,
    /// Prefix of the files' paths in `files` (`<sub>/`, or empty).
    prefix: &'a str,
    files: &'a Manifest,
}

impl Source<'_> {
    fn state(&self, rel: &str) -> Option<&FileState> {
        if self.prefix.is_empty() {
            self.files.get(rel)
        } else {
            self.files.get(&format!("{}{rel}", self.prefix))
        }
    }
}

/// Fill the new directory `dir` with `entries` (and first the marker, with
/// mode `marker`, if any): hard links from `source` for files with the
/// same path, sha256 and mode, new files for the rest, nested directories
/// 0700. What needs an fsync (new files, every directory) goes to `syncs`.
fn fill_dir(
    dir: &Path,
    marker: Option<u32>,
    entries: &[Entry<'_>],
    source: Option<&Source<'_>>,
    stats: &mut StagingStats,
    syncs: &mut Syncs,
) -> Result<(), ApplyError> {
    if let Some(mode) = marker {
        put_marker(dir, mode, source.map(|s| s.dir), syncs)?;
    }
    let mut created: BTreeSet<PathBuf> = BTreeSet::new();
    // Nested source directories checked to be real directories.
    let mut checked: HashSet<PathBuf> = HashSet::new();
    for entry in entries {
        let dst = dir.join(entry.rel);
        let mut nested = dir.to_path_buf();
        if let Some((parents, _)) = entry.rel.rsplit_once('/') {
            for component in parents.split('/') {
                nested.push(component);
                if created.insert(nested.clone()) {
                    create_dir_0700(&nested)?;
                }
            }
        }
        let mode = file_mode(entry.state.secret);
        if let Some(source) = source.filter(|s| s.state(entry.rel) == Some(&entry.state)) {
            let mut ok = true;
            if let Some((parents, _)) = entry.rel.rsplit_once('/') {
                let mut p = source.dir.to_path_buf();
                for component in parents.split('/') {
                    p.push(component);
                    if !checked.contains(&p) {
                        match fs::symlink_metadata(&p) {
                            Ok(m) if m.is_dir() => {
                                checked.insert(p.clone());
                            }
                            Ok(m) if m.file_type().is_symlink() => {
                                return Err(refused(
                                    &p,
                                    "is a symbolic link; refusing to link or read through it",
                                ))
                            }
                            _ => ok = false,
                        }
                    }
                }
            }
            if ok && link_from(&source.dir.join(entry.rel), &dst, mode)? {
                stats.files_linked += 1;
                continue;
            }
        }
        write_new(&dst, entry.file.bytes(), mode)?;
        syncs.push(dst);
        stats.files_written += 1;
        stats.bytes_written += entry.file.bytes().len() as u64;
    }
    for nested in created {
        syncs.push(nested);
    }
    syncs.push(dir.to_path_buf());
    Ok(())
}

/// Remove a directory this module created (best effort when cleaning up
/// after an error).
fn remove_ours(dir: &Path) {
    if fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        let _ = fs::remove_dir_all(dir);
    }
}

/// Stage `tree` (manifest `files`) as the new directory `staged`, reusing
/// what `current` already has (see the module docs). Order, for crash
/// safety: every new file and directory (the copies being built in
/// `dirs/.staging-<key>` and the staged tree, whose links dangle until
/// then) is written, then all are fsynced in one batch; only then are the
/// copies renamed to `dirs/<key>`. So a `dirs/<key>` is complete and
/// durable whenever it exists. `Ok(true)`: copies were renamed into
/// `dirs/`, which the caller must fsync before the staged tree may be
/// renamed into `trees/` or `failed/` (it does so while the validator
/// runs). On error, what was created for this tree is removed (best
/// effort) and the error returned.
pub(crate) fn stage(
    out: &Path,
    current: Option<&TreeState>,
    plain: &BTreeSet<String>,
    tree: &OutputTree,
    files: &Manifest,
    staged: &Path,
    stats: &mut StagingStats,
) -> Result<bool, ApplyError> {
    let grouped = group(tree, files);
    let dirs = out.join(DIRS);
    // Copies being built (dirs/.staging-<key>) and their final names.
    let mut building: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut staged_created = false;
    let result = (|| {
        let mut syncs = Syncs::default();
        // 1. The subdirectories: reuse dirs/<key>, or build it.
        let mut links = Vec::with_capacity(grouped.subs.len());
        for (sub, entries) in &grouped.subs {
            if plain.contains(*sub) {
                continue;
            }
            let key = dir_key(entries.iter().map(|e| (e.rel, &e.state)));
            let final_dir = dirs.join(&key);
            if building.iter().any(|(_, d)| *d == final_dir) {
                // Two subdirectories with the same files: one copy.
                stats.dirs_reused += 1;
                links.push((*sub, key));
                continue;
            }
            match fs::symlink_metadata(&final_dir) {
                Ok(m)
                    if m.is_dir()
                        && fs::symlink_metadata(final_dir.join(TREE_MARKER))
                            .is_ok_and(|m| m.is_file()) =>
                {
                    stats.dirs_reused += 1;
                }
                Ok(_) => {
                    return Err(refused(
                        &final_dir,
                        "exists and is not a directory routegen wrote; refusing to use it",
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let tmp = dirs.join(format!("{DIR_STAGING_PREFIX}{key}"));
                    remove_ours(&tmp);
                    create_dir_0700(&tmp)?;
                    building.push((tmp.clone(), final_dir));
                    let prefix = format!("{sub}/");
                    let source = current.and_then(|c| {
                        c.subdirs.get(*sub).map(|dir| Source {
                            dir,
                            prefix: &prefix,
                            files: &c.files,
                        })
                    });
                    fill_dir(
                        &tmp,
                        Some(COPY_MARKER_MODE),
                        entries,
                        source.as_ref(),
                        stats,
                        &mut syncs,
                    )?;
                    stats.dirs_built += 1;
                }
                Err(e) => return Err(io_err(&final_dir)(e)),
            }
            links.push((*sub, key));
        }

        // 2. The tree: top-level files (the marker first, so a leftover is
        // recognised) and the links.
        create_dir_0700(staged)?;
        staged_created = true;
        let current_dir = current.map(|c| out.join(TREES).join(&c.id));
        let source = current.zip(current_dir.as_deref()).map(|(c, dir)| Source {
            dir,
            prefix: "",
            files: &c.files,
        });
        fill_dir(
            staged,
            Some(0o644),
            &grouped.top,
            source.as_ref(),
            stats,
            &mut syncs,
        )?;
        for (sub, key) in &links {
            let link = staged.join(sub);
            std::os::unix::fs::symlink(Path::new("../..").join(DIRS).join(key), &link)
                .map_err(io_err(&link))?;
        }
        // Plain subdirectories: inside the tree, linked file by file.
        for (sub, entries) in grouped.subs.iter().filter(|(s, _)| plain.contains(**s)) {
            let dir = staged.join(sub);
            create_dir_0700(&dir)?;
            let prefix = format!("{sub}/");
            let source = current.and_then(|c| {
                c.subdirs.get(*sub).map(|dir| Source {
                    dir,
                    prefix: &prefix,
                    files: &c.files,
                })
            });
            fill_dir(&dir, None, entries, source.as_ref(), stats, &mut syncs)?;
        }

        // 3. Durable, then the copies under their names (`dirs/` itself is
        // the caller's to fsync).
        let syncing = std::time::Instant::now();
        syncs.sync()?;
        stats.syncing = syncing.elapsed();
        for (tmp, final_dir) in &building {
            fs::rename(tmp, final_dir).map_err(io_err(final_dir))?;
        }
        Ok(!building.is_empty())
    })();
    if result.is_err() {
        for (tmp, final_dir) in &building {
            remove_ours(tmp);
            remove_ours(final_dir);
        }
        if staged_created {
            remove_ours(staged);
        }
    }
    result
}

/// Read the tree in `tree_dir` back: sha256 and secret flag (not readable
/// by group or others) of every file, through the applier's own
/// `../../dirs/<key>` links only (checked against their key); any other
/// symbolic link is refused.
pub(crate) fn read_tree(out: &Path, id: &str) -> Result<TreeState, ApplyError> {
    let tree_dir = out.join(TREES).join(id);
    let mut state = TreeState {
        id: id.to_string(),
        ..TreeState::default()
    };
    let mut entries: Vec<_> = fs::read_dir(&tree_dir)
        .map_err(io_err(&tree_dir))?
        .collect::<Result<_, _>>()
        .map_err(io_err(&tree_dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| refused(&path, "file name is not UTF-8"))?;
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.file_type().is_symlink() {
            let target = fs::read_link(&path).map_err(io_err(&path))?;
            let Some(key) = dirs_link_key(&target) else {
                return Err(refused(
                    &path,
                    "is a symbolic link routegen did not make; refusing to read through it",
                ));
            };
            let dir = out.join(DIRS).join(key);
            let m = fs::symlink_metadata(&dir).map_err(io_err(&dir))?;
            if !m.is_dir() {
                return Err(refused(
                    &dir,
                    "is not a directory; refusing to read through it",
                ));
            }
            let mut files = BTreeMap::new();
            hash_files(&dir, "", &mut files)?;
            files.remove(TREE_MARKER);
            if dir_key(files.iter().map(|(r, s)| (r.as_str(), s))) != key {
                return Err(refused(
                    &dir,
                    "does not hold the files its name (a sha256 of them) says; refusing to use it",
                ));
            }
            for (rel, s) in files {
                state.files.insert(format!("{name}/{rel}"), s);
            }
            state.subdirs.insert(name, dir);
        } else if meta.is_dir() {
            // A tree written before the shared copies: a plain directory.
            let mut files = BTreeMap::new();
            hash_files(&path, "", &mut files)?;
            for (rel, s) in files {
                state.files.insert(format!("{name}/{rel}"), s);
            }
            state.subdirs.insert(name, path);
        } else if meta.is_file() {
            if name != TREE_MARKER {
                state.files.insert(name, hash_file(&path, &meta)?);
            }
        } else {
            return Err(refused(&path, "is not a regular file or directory"));
        }
    }
    Ok(state)
}

fn hash_file(path: &Path, meta: &fs::Metadata) -> Result<FileState, ApplyError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    Ok(FileState {
        hash: openssl::sha::sha256(&bytes),
        secret: meta.mode() & 0o044 == 0,
    })
}

/// sha256 of every regular file below `dir` by relative path; refuses
/// symbolic links and anything but files and directories.
fn hash_files(dir: &Path, rel: &str, out: &mut Manifest) -> Result<(), ApplyError> {
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = entry
            .file_name()
            .into_string()
            .map_err(|_| refused(&path, "file name is not UTF-8"))?;
        let rel_child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
        if meta.file_type().is_symlink() {
            return Err(refused(
                &path,
                "is a symbolic link; refusing to read through it",
            ));
        } else if meta.is_dir() {
            hash_files(&path, &rel_child, out)?;
        } else if meta.is_file() {
            out.insert(rel_child, hash_file(&path, &meta)?);
        } else {
            return Err(refused(&path, "is not a regular file or directory"));
        }
    }
    Ok(())
}

/// Keys of the `dirs/` copies the trees under `trees/`, `failed/` and
/// `staging/` link to (pruned trees, `staging/.trash-*`, do not count).
fn referenced_keys(out: &Path) -> Result<HashSet<String>, ApplyError> {
    let mut keys = HashSet::new();
    for sub in [TREES, FAILED, STAGING] {
        let dir = out.join(sub);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err(&dir)(e)),
        };
        for tree in entries {
            let tree = tree.map_err(io_err(&dir))?;
            if !tree.file_type().map_err(io_err(&dir))?.is_dir()
                || tree.file_name().to_string_lossy().starts_with(TRASH_PREFIX)
            {
                continue;
            }
            let tree_dir = tree.path();
            for entry in fs::read_dir(&tree_dir).map_err(io_err(&tree_dir))? {
                let entry = entry.map_err(io_err(&tree_dir))?;
                if !entry.file_type().map_err(io_err(&tree_dir))?.is_symlink() {
                    continue;
                }
                if let Ok(target) = fs::read_link(entry.path()) {
                    if let Some(key) = dirs_link_key(&target) {
                        keys.insert(key.to_string());
                    }
                }
            }
        }
    }
    Ok(keys)
}

/// Remove the `dirs/` copies no tree under `trees/`, `failed/` or
/// `staging/` links to (through `trash`), and copies left half-built
/// (`dirs/.staging-*`). `at_open`: also what an earlier process left
/// half-removed (`dirs/.trash-*`). Only directories named as this module
/// names them (and, for finished copies, holding the marker) are removed.
/// Returns how many.
pub(crate) fn prune_dirs(
    out: &Path,
    trash: &mut Trash,
    at_open: bool,
) -> Result<usize, ApplyError> {
    let dirs = out.join(DIRS);
    let keys = referenced_keys(out)?;
    let mut removed = 0;
    for entry in fs::read_dir(&dirs).map_err(io_err(&dirs))? {
        let entry = entry.map_err(io_err(&dirs))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !entry.file_type().map_err(io_err(&dirs))?.is_dir() {
            continue;
        }
        let path = entry.path();
        let half_built = name
            .strip_prefix(DIR_STAGING_PREFIX)
            .is_some_and(is_dir_key);
        if half_built || (at_open && name.starts_with(TRASH_PREFIX)) {
            fs::remove_dir_all(&path).map_err(io_err(&path))?;
            removed += 1;
        } else if is_dir_key(&name)
            && !keys.contains(&name)
            && fs::symlink_metadata(path.join(TREE_MARKER)).is_ok_and(|m| m.is_file())
        {
            trash.put(&path, &dirs, &name)?;
            removed += 1;
        }
    }
    trash.empty();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(byte: u8, secret: bool) -> FileState {
        FileState {
            hash: [byte; 32],
            secret,
        }
    }

    #[test]
    fn apply_dir_key_covers_path_hash_and_secret_flag() {
        let base = dir_key([("a.pem", &st(1, true)), ("b.pem", &st(2, true))]);
        assert_eq!(base.len(), 64);
        assert!(is_dir_key(&base));
        assert_eq!(
            base,
            dir_key([("a.pem", &st(1, true)), ("b.pem", &st(2, true))])
        );
        for other in [
            dir_key([("a.pem", &st(1, false)), ("b.pem", &st(2, true))]),
            dir_key([("a.pem", &st(3, true)), ("b.pem", &st(2, true))]),
            dir_key([("a.pem", &st(1, true)), ("c.pem", &st(2, true))]),
            dir_key([("a.pem", &st(1, true))]),
            // No ambiguity between a path and the next entry.
            dir_key([("a.pemb.pem", &st(1, true))]),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn apply_group_splits_top_level_files_and_subdirectories() {
        let mut tree = OutputTree::new();
        for p in [
            "haproxy.cfg",
            "certs.txt",
            "certs/a.pem",
            "certs/x/b.pem",
            "maps/m",
        ] {
            tree.insert(p.into(), OutputFile::public(p));
        }
        let files: Manifest = tree
            .iter()
            .map(|(p, f)| (p.clone(), st(f.bytes()[0], false)))
            .collect();
        let g = group(&tree, &files);
        let top: Vec<&str> = g.top.iter().map(|e| e.rel).collect();
        assert_eq!(top, ["certs.txt", "haproxy.cfg"]);
        let certs: Vec<&str> = g.subs["certs"].iter().map(|e| e.rel).collect();
        assert_eq!(certs, ["a.pem", "x/b.pem"]);
        let keys = subdir_keys(&files);
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys["certs"],
            dir_key(g.subs["certs"].iter().map(|e| (e.rel, &e.state)))
        );
    }
}
