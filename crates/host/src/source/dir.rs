//! The `dir:PATH` source: watch a directory of manifests and say *when* to
//! re-read it.
//!
//! [`DirWatcher`] only signals; it never reads manifests. Each signal says
//! what the burst changed as far as the watch can tell ([`DirChanges`]):
//! either only some manifest files, which the reader
//! ([`crate::source::files::DirLoader::load_changed`]) then looks at alone,
//! or anything, and the whole directory is read again. A signal may be
//! spurious (an extra read renders the same tree, which the apply step
//! turns into a no-op) but a change is never lost.
//!
//! # Contract
//!
//! * **Coalescing.** [`DirWatcher::changed`] resolves once per *burst*: a
//!   burst starts with the first relevant event and ends when no relevant
//!   event has arrived for `debounce` (default [`DEFAULT_DEBOUNCE`]) and, on
//!   Linux, every manifest seen being written has been closed again; or, at
//!   the latest, `max_delay` (default [`DEFAULT_MAX_DELAY`]) after its first
//!   event, so a constant stream of writes still produces periodic applies.
//!   Events that arrive while nobody awaits `changed` are kept: the next call
//!   resolves for them. `changed` is cancel-safe (use it in `select!`).
//! * **Relevance.** What [`load_paths`](crate::source::files::load_paths)
//!   would read: `*.yaml`, `*.yml`, `*.json` files, plus any directory or
//!   symlink, and anything under a `..`-prefixed entry (the Kubernetes
//!   ConfigMap/Secret volume layout swaps `..data -> ..<timestamp>`
//!   atomically; the visible `file.yaml -> ..data/file.yaml` links never
//!   change). Entries hidden with a single dot (`.file.yaml.swp`,
//!   `.#file.yaml`, `.git/`) are ignored, as `load_paths` skips them; so are
//!   other files (`notes.txt`, `file.yaml~`, vim's `4913` probe). Opening or
//!   reading files is not a change.
//! * **Half-written files.** Writers that write a temporary file and rename
//!   it into place (editors, kubelet) are always seen complete. On Linux a
//!   file written in place holds the burst open until it is closed (or
//!   `max_delay` passes). A writer that keeps a manifest open longer than
//!   `max_delay` may be read mid-write; its close is a new event, so the
//!   complete file is read right after.
//! * **The directory itself.** It may not exist yet when the watcher starts
//!   (a warning is logged) or be deleted, renamed or replaced later: its
//!   identity (device and inode, following a symlinked root) is checked on
//!   every wake-up and at least every [`ROOT_POLL_INTERVAL`]; when it
//!   appears or changes, the watch is re-established and a change is
//!   signalled. A vanished directory is signalled too; the reader then fails
//!   to load it and keeps serving the last good tree.
//! * **Symlinks inside the tree** are not followed by the watch: changes to
//!   the links are seen, changes behind a link that points *outside* the
//!   directory are not. (ConfigMap targets live inside the tree, so that
//!   layout is fully covered.)
//! * **Watcher errors** (inotify queue overflow, watch limit reached,
//!   unreadable subdirectory) are logged through `tracing` and counted as a
//!   change of anything ([`DirChanges::Unknown`]), since events may have
//!   been lost; watching goes on.
//! * **What changed.** [`DirChanges::Files`] only when every relevant event
//!   of the burst named a manifest outside hidden and `..` entries that is,
//!   when the event is handled, a regular file (written, created, or
//!   renamed into place), or that was removed or renamed away (not as a
//!   directory; the reader checks it had listed a file there). Anything
//!   else (a directory, a symlink, ConfigMap machinery, an event without
//!   paths, the root itself, lost events) makes the burst
//!   [`DirChanges::Unknown`].
//!
//! Start the watcher *before* the first read so nothing changes unseen
//! between that read and the watch.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsStr;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind};
use notify::{Event, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;

use crate::source::files::{is_manifest_name, is_plain_manifest_name, is_regular_file};

/// Quiet time that ends a burst of changes.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(200);
/// Longest a burst can hold back a signal.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);
/// How often the watched directory's identity is re-checked while waiting.
pub const ROOT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Why a directory watch could not be started.
#[derive(Debug, thiserror::Error)]
pub enum DirWatchError {
    #[error("{path}: cannot resolve path: {source}")]
    Path {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: not a directory")]
    NotADirectory { path: String },
    #[error("{path}: cannot watch directory: {source}")]
    Watch {
        path: String,
        #[source]
        source: notify::Error,
    },
}

/// Most files a burst names ([`DirChanges::Files`]); a burst that writes
/// more is [`DirChanges::Unknown`] (the directory is read whole, which
/// costs less than looking at that many files one by one).
pub const MAX_NAMED_FILES: usize = 1024;

/// What a burst of events changed, as far as the watch can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirChanges {
    /// Only these manifest files (absolute paths) changed; no file appeared
    /// in or left the listing unless it is named here.
    Files(BTreeSet<PathBuf>),
    /// Anything may have changed: read the whole directory.
    Unknown,
}

impl DirChanges {
    /// No change.
    pub fn none() -> DirChanges {
        DirChanges::Files(BTreeSet::new())
    }

    /// Add `other`'s changes to these (more than [`MAX_NAMED_FILES`]
    /// files together is anything).
    pub fn merge(&mut self, other: DirChanges) {
        match (&mut *self, other) {
            (DirChanges::Files(mine), DirChanges::Files(theirs)) => {
                mine.extend(theirs);
                if mine.len() > MAX_NAMED_FILES {
                    *self = DirChanges::Unknown;
                }
            }
            (_, DirChanges::Unknown) => *self = DirChanges::Unknown,
            (DirChanges::Unknown, DirChanges::Files(_)) => {}
        }
    }

    /// Record one manifest file, or anything when `path` is `None`; more
    /// than [`MAX_NAMED_FILES`] files is anything.
    fn add(&mut self, path: Option<&Path>) {
        match (&mut *self, path) {
            (DirChanges::Files(files), Some(_)) if files.len() >= MAX_NAMED_FILES => {
                *self = DirChanges::Unknown;
            }
            (DirChanges::Files(files), Some(p)) => {
                files.insert(p.to_path_buf());
            }
            (_, None) => *self = DirChanges::Unknown,
            (DirChanges::Unknown, Some(_)) => {}
        }
    }
}

impl Default for DirChanges {
    fn default() -> Self {
        DirChanges::none()
    }
}

/// Watches a manifest directory; see the module documentation.
pub struct DirWatcher {
    root: PathBuf,
    debounce: Duration,
    max_delay: Duration,
    shared: Arc<Shared>,
    /// The live watch, with the identity of the directory it watches.
    watch: Option<(RecommendedWatcher, DirId)>,
    /// Whether "directory missing" has already been logged.
    warned_missing: bool,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher")
            .field("root", &self.root)
            .field("debounce", &self.debounce)
            .field("max_delay", &self.max_delay)
            .field("watching", &self.watch.as_ref().map(|(_, id)| *id))
            .finish()
    }
}

/// Device and inode of the watched directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DirId {
    dev: u64,
    ino: u64,
}

/// State shared with the notify callback thread.
struct Shared {
    state: Mutex<BurstState>,
    wake: Notify,
}

#[derive(Default)]
struct BurstState {
    /// First relevant event of the pending burst; `None` when idle.
    started: Option<Instant>,
    /// Latest relevant event.
    last: Option<Instant>,
    /// Manifests modified in place and not yet closed (Linux only).
    writing: HashSet<PathBuf>,
    /// What the pending burst changed.
    changes: DirChanges,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, BurstState> {
        // A panic while holding this lock cannot leave the state
        // inconsistent in a way that matters: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a relevant change and wake the waiter.
    fn touch(&self, now: Instant) {
        {
            let mut st = self.lock();
            st.started.get_or_insert(now);
            st.last = Some(now);
            st.changes = DirChanges::Unknown;
        }
        self.wake.notify_one();
    }
}

impl DirWatcher {
    /// Watch `path` recursively with the given quiet time and
    /// [`DEFAULT_MAX_DELAY`] (at least `debounce`).
    ///
    /// A missing directory is not an error (it is watched for); a path that
    /// exists but is not a directory is. Must be called within a Tokio
    /// runtime only for [`changed`](Self::changed); `start` itself is
    /// synchronous.
    pub fn start(path: impl AsRef<Path>, debounce: Duration) -> Result<DirWatcher, DirWatchError> {
        Self::start_with(path, debounce, DEFAULT_MAX_DELAY.max(debounce))
    }

    /// Like [`start`](Self::start) with an explicit cap on how long a burst
    /// may delay its signal (raised to `debounce` if smaller).
    pub fn start_with(
        path: impl AsRef<Path>,
        debounce: Duration,
        max_delay: Duration,
    ) -> Result<DirWatcher, DirWatchError> {
        let path = path.as_ref();
        let root = std::path::absolute(path).map_err(|source| DirWatchError::Path {
            path: path.display().to_string(),
            source,
        })?;
        let mut watcher = DirWatcher {
            root,
            debounce,
            max_delay: max_delay.max(debounce),
            shared: Arc::new(Shared {
                state: Mutex::new(BurstState::default()),
                wake: Notify::new(),
            }),
            watch: None,
            warned_missing: false,
        };
        match root_id(&watcher.root) {
            RootState::Dir(id) => {
                let w = watcher.new_watch().map_err(|source| DirWatchError::Watch {
                    path: watcher.root.display().to_string(),
                    source,
                })?;
                watcher.watch = Some((w, id));
            }
            RootState::NotADirectory => {
                return Err(DirWatchError::NotADirectory {
                    path: watcher.root.display().to_string(),
                })
            }
            RootState::Missing => {
                tracing::warn!(
                    path = %watcher.root.display(),
                    "watched directory does not exist yet; waiting for it to appear"
                );
                watcher.warned_missing = true;
            }
        }
        Ok(watcher)
    }

    /// The directory being watched (made absolute).
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Resolves once per burst of relevant changes, with what the burst
    /// changed (see the module documentation). Cancel-safe.
    ///
    /// Returns `Option` so callers can write `while let Some(changes) =
    /// watcher.changed().await`; the current implementation never returns
    /// `None`: problems with the watch are logged and retried.
    pub async fn changed(&mut self) -> Option<DirChanges> {
        loop {
            self.check_root();
            let now = Instant::now();
            let mut wake_at = now + ROOT_POLL_INTERVAL;
            {
                let mut st = self.shared.lock();
                if let (Some(started), Some(last)) = (st.started, st.last) {
                    let cap_at = started + self.max_delay;
                    let quiet_at = last + self.debounce;
                    if now >= cap_at || (now >= quiet_at && st.writing.is_empty()) {
                        st.started = None;
                        st.last = None;
                        // Still-open writers announce themselves again when
                        // they write or close: no stale entries survive.
                        st.writing.clear();
                        return Some(std::mem::take(&mut st.changes));
                    }
                    let next = if st.writing.is_empty() {
                        quiet_at.min(cap_at)
                    } else {
                        cap_at
                    };
                    wake_at = wake_at.min(next);
                }
            }
            tokio::select! {
                _ = self.shared.wake.notified() => {}
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake_at)) => {}
            }
        }
    }

    /// Make the watch follow the directory's identity: start watching when
    /// it appears, re-watch when it is replaced, drop the watch when it goes.
    fn check_root(&mut self) {
        let current = self.watch.as_ref().map(|(_, id)| *id);
        match root_id(&self.root) {
            RootState::Dir(id) if current == Some(id) => {}
            RootState::Dir(id) => match self.new_watch() {
                Ok(w) => {
                    tracing::info!(
                        path = %self.root.display(),
                        replaced = current.is_some(),
                        "watching manifest directory"
                    );
                    // Drop the old watch only after the new one is live.
                    self.watch = Some((w, id));
                    self.warned_missing = false;
                    self.shared.touch(Instant::now());
                }
                Err(error) => {
                    // Retried on the next wake-up or poll.
                    tracing::warn!(
                        path = %self.root.display(),
                        %error,
                        "cannot watch manifest directory; will retry"
                    );
                }
            },
            state @ (RootState::Missing | RootState::NotADirectory) => {
                if self.watch.take().is_some() {
                    self.shared.touch(Instant::now());
                }
                if !self.warned_missing {
                    let what = match state {
                        RootState::NotADirectory => "is no longer a directory",
                        _ => "does not exist",
                    };
                    tracing::warn!(
                        path = %self.root.display(),
                        "watched manifest directory {what}; waiting for it to reappear"
                    );
                    self.warned_missing = true;
                }
            }
        }
    }

    fn new_watch(&self) -> notify::Result<RecommendedWatcher> {
        let shared = Arc::clone(&self.shared);
        let root = self.root.clone();
        let handler = move |res: notify::Result<Event>| handle(&shared, &root, res);
        // Not following symlinks keeps one inotify watch per real directory:
        // following `..data` would watch the same inode under two names.
        let config = notify::Config::default().with_follow_symlinks(false);
        let mut w = RecommendedWatcher::new(handler, config)?;
        w.watch(&self.root, RecursiveMode::Recursive)?;
        Ok(w)
    }
}

/// The notify callback: runs on the watcher's thread.
fn handle(shared: &Shared, root: &Path, res: notify::Result<Event>) {
    let now = Instant::now();
    let event = match res {
        Ok(event) => event,
        Err(error) => {
            let hint = match error.kind {
                notify::ErrorKind::MaxFilesWatch => {
                    " (raise fs.inotify.max_user_watches; changes in some subdirectories are not seen)"
                }
                _ => "",
            };
            tracing::warn!(path = %root.display(), %error, "directory watch error{hint}");
            shared.touch(now);
            return;
        }
    };
    if event.need_rescan() {
        tracing::warn!(path = %root.display(), "directory watch lost events; re-reading");
        shared.touch(now);
        return;
    }
    let class = classify_kind(&event.kind);
    if class == KindClass::Ignore {
        return;
    }
    let relevant: Vec<&PathBuf> = if event.paths.is_empty() {
        Vec::new()
    } else {
        event
            .paths
            .iter()
            .filter(|p| is_relevant_path(root, p, &event.kind))
            .collect()
    };
    // An event without paths (backend "something happened") counts.
    if !event.paths.is_empty() && relevant.is_empty() {
        return;
    }
    tracing::trace!(kind = ?event.kind, paths = ?event.paths, "relevant change");
    {
        let mut st = shared.lock();
        if relevant.is_empty() {
            st.changes.add(None);
        }
        // A rename seen whole names the old path first.
        let renamed_from = match event.kind {
            EventKind::Modify(ModifyKind::Name(notify::event::RenameMode::Both)) => {
                event.paths.first()
            }
            _ => None,
        };
        for p in &relevant {
            let gone = class == KindClass::Gone || renamed_from == Some(*p);
            // Removed or renamed away: a manifest's name is enough (the
            // reader checks it listed a file there); a directory removed is
            // never a file.
            let file = if gone {
                !matches!(event.kind, EventKind::Remove(RemoveKind::Folder))
                    && is_plain_manifest_name(root, p)
            } else {
                is_plain_manifest_name(root, p) && is_regular_file(p)
            };
            st.changes.add(file.then_some(p.as_path()));
        }
        if cfg!(target_os = "linux") {
            for p in &relevant {
                match class {
                    KindClass::WriteStarted if is_manifest_name(p) => {
                        st.writing.insert((*p).clone());
                    }
                    // Created in place (not renamed in): incomplete until
                    // closed. Symlinks and hard links never close: skip
                    // symlinks; a hard link waits out `max_delay`.
                    KindClass::Created if is_manifest_name(p) && is_regular_file(p) => {
                        st.writing.insert((*p).clone());
                    }
                    KindClass::WriteDone | KindClass::Gone => {
                        st.writing.remove(*p);
                    }
                    _ => {}
                }
            }
        }
        st.started.get_or_insert(now);
        st.last = Some(now);
    }
    shared.wake.notify_one();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KindClass {
    /// Opening, reading: not a change.
    Ignore,
    /// Data written in place: the file may still be incomplete.
    WriteStarted,
    /// A file opened for writing was closed.
    WriteDone,
    /// Something was created in place.
    Created,
    /// Removed or renamed away.
    Gone,
    /// Any other change.
    Change,
}

fn classify_kind(kind: &EventKind) -> KindClass {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => KindClass::WriteDone,
        EventKind::Access(_) => KindClass::Ignore,
        EventKind::Modify(ModifyKind::Data(_)) => KindClass::WriteStarted,
        EventKind::Modify(ModifyKind::Name(notify::event::RenameMode::From)) => KindClass::Gone,
        EventKind::Remove(_) => KindClass::Gone,
        EventKind::Create(_) => KindClass::Created,
        EventKind::Modify(_) | EventKind::Any | EventKind::Other => KindClass::Change,
    }
}

/// What an entry is, as far as relevance goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EntryType {
    Dir,
    Symlink,
    File,
    /// Gone (removed or renamed away) and the event did not say.
    Unknown,
}

fn entry_type(path: &Path, kind: &EventKind) -> EntryType {
    match kind {
        EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder) => {
            return EntryType::Dir
        }
        EventKind::Remove(RemoveKind::File) => return EntryType::File,
        _ => {}
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => EntryType::Symlink,
        Ok(m) if m.is_dir() => EntryType::Dir,
        Ok(_) => EntryType::File,
        Err(_) => EntryType::Unknown,
    }
}

fn is_relevant_path(root: &Path, path: &Path, kind: &EventKind) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        // Not under the root as we know it: be safe.
        return true;
    };
    relevance(rel, || entry_type(path, kind))
}

/// Whether a change at `rel` (relative to the watched root) can change what
/// `load_paths` reads. `entry_type` is only asked when the name alone does
/// not decide.
fn relevance(rel: &Path, entry_type: impl FnOnce() -> EntryType) -> bool {
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => names.push(n),
            // `..` as a real component cannot come from notify; be safe.
            _ => return true,
        }
    }
    let Some(last) = names.last() else {
        // The root itself (deleted, moved, attributes changed).
        return true;
    };
    let mut under_dotdot = false;
    for n in &names {
        let s = n.to_string_lossy();
        if s.starts_with("..") {
            under_dotdot = true;
        } else if s.starts_with('.') {
            // Hidden: load_paths never walks into it.
            return false;
        }
    }
    if under_dotdot {
        // ConfigMap machinery: `..data`, `..2026_01_01_...`, and files there.
        return true;
    }
    if is_manifest_name(Path::new(last)) {
        return true;
    }
    match entry_type() {
        EntryType::Dir | EntryType::Symlink => true,
        EntryType::File => false,
        EntryType::Unknown => !looks_like_plain_file(last),
    }
}

/// For a vanished entry of unknown type: names that are surely files that
/// `load_paths` would not read (editor leftovers, other extensions). An
/// extension-less name may have been a directory: relevant.
fn looks_like_plain_file(name: &OsStr) -> bool {
    let s = name.to_string_lossy();
    s.ends_with('~')
        || s.starts_with('#')
        || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        || Path::new(name).extension().is_some()
}

enum RootState {
    Dir(DirId),
    NotADirectory,
    Missing,
}

fn root_id(root: &Path) -> RootState {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => RootState::Dir(DirId {
            dev: m.dev(),
            ino: m.ino(),
        }),
        Ok(_) => RootState::NotADirectory,
        Err(_) => RootState::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(p: &str, t: EntryType) -> bool {
        relevance(Path::new(p), || t)
    }

    #[test]
    fn manifests_are_relevant_whatever_their_type() {
        for p in ["a.yaml", "a.yml", "a.json", "sub/b.yaml", "gone.yaml"] {
            assert!(rel(p, EntryType::Unknown), "{p}");
            assert!(rel(p, EntryType::File), "{p}");
        }
    }

    #[test]
    fn other_files_and_editor_leftovers_are_not() {
        for p in [
            "notes.txt",
            "a.yaml~",
            "4913",
            "5036",
            "#a.yaml#",
            "a.yaml.bak",
            "sub/x.md",
        ] {
            assert!(!rel(p, EntryType::Unknown), "{p}");
            assert!(!rel(p, EntryType::File), "{p}");
        }
        assert!(!rel("README", EntryType::File));
    }

    #[test]
    fn hidden_entries_are_skipped_like_load_paths() {
        for p in [
            ".a.yaml.swp",
            ".a.yaml",
            ".#a.yaml",
            ".git/config",
            ".git",
            "sub/.x/a.yaml",
        ] {
            assert!(!rel(p, EntryType::Dir), "{p}");
        }
    }

    #[test]
    fn configmap_machinery_is_relevant() {
        for p in [
            "..data",
            "..data_tmp",
            "..2026_01_01_00_00_00.123",
            "..2026_x/a.yaml",
            "..2026_x/other",
        ] {
            assert!(rel(p, EntryType::Unknown), "{p}");
            assert!(rel(p, EntryType::File), "{p}");
        }
    }

    #[test]
    fn directories_and_symlinks_are_relevant() {
        assert!(rel("sub", EntryType::Dir));
        assert!(rel("link", EntryType::Symlink));
        assert!(rel("link.txt", EntryType::Symlink));
        // Renamed away, type unknown: an extension-less name may be a dir.
        assert!(rel("sub", EntryType::Unknown));
        assert!(rel("", EntryType::Unknown));
    }

    #[test]
    fn changes_name_at_most_max_named_files() {
        let mut changes = DirChanges::none();
        for i in 0..MAX_NAMED_FILES {
            changes.add(Some(Path::new(&format!("/d/{i}.yaml"))));
        }
        assert!(matches!(&changes, DirChanges::Files(f) if f.len() == MAX_NAMED_FILES));
        changes.add(Some(Path::new("/d/0.yaml")));
        assert_eq!(
            changes,
            DirChanges::Unknown,
            "one more, even one already named"
        );
        changes.add(Some(Path::new("/d/x.yaml")));
        assert_eq!(changes, DirChanges::Unknown);
        let mut merged = DirChanges::none();
        merged.merge(DirChanges::Files([PathBuf::from("/d/a.yaml")].into()));
        merged.merge(DirChanges::Unknown);
        merged.merge(DirChanges::Files([PathBuf::from("/d/b.yaml")].into()));
        assert_eq!(merged, DirChanges::Unknown);
    }

    #[test]
    fn kinds() {
        use notify::event::{DataChange, MetadataKind, RenameMode};
        assert_eq!(
            classify_kind(&EventKind::Access(AccessKind::Open(AccessMode::Any))),
            KindClass::Ignore
        );
        assert_eq!(
            classify_kind(&EventKind::Access(AccessKind::Close(AccessMode::Read))),
            KindClass::Ignore
        );
        assert_eq!(
            classify_kind(&EventKind::Access(AccessKind::Close(AccessMode::Write))),
            KindClass::WriteDone
        );
        assert_eq!(
            classify_kind(&EventKind::Modify(ModifyKind::Data(DataChange::Any))),
            KindClass::WriteStarted
        );
        assert_eq!(
            classify_kind(&EventKind::Modify(ModifyKind::Name(RenameMode::From))),
            KindClass::Gone
        );
        assert_eq!(
            classify_kind(&EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any))),
            KindClass::Change
        );
        assert_eq!(
            classify_kind(&EventKind::Create(CreateKind::File)),
            KindClass::Created
        );
    }
}
