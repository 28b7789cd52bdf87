//! Apply: make a rendered tree the one HAProxy serves, never a broken or
//! half-written one (SPEC §8), at a cost that grows with what changed, not
//! with the size of the tree.
//!
//! Layout of the output directory (`--out DIR`, created 0700):
//! ```text
//! DIR/current -> trees/<id>     symlink HAProxy's -f points through
//! DIR/trees/<id>/               the last `keep` good trees (current included)
//! DIR/trees/<id>/<file>         top-level files (haproxy.cfg, crt-list.txt...)
//! DIR/trees/<id>/<sub> -> ../../dirs/<key>
//!                               one link per top-level subdirectory (certs/,
//!                               maps/, backends/...)
//! DIR/dirs/<key>/               a subdirectory's files; key = sha256 over its
//!                               (path, sha256, secret) list: shared by every
//!                               tree with the same files, never modified
//! DIR/staging/<id>/             a tree being written and validated
//! DIR/failed/<id>/              trees the validator refused, kept for inspection
//! DIR/routegen.lock             `routegen run`'s exclusive lock ([`OutputLock`])
//! ```
//! The validator ([`Validator`]) is the real proxy binary: `haproxy -c` for
//! an HAProxy tree (the default, [`Applier::open`]), `nginx -t` for an
//! nginx tree ([`Applier::open_with`]).
//!
//! Contract of [`Applier::apply`]: a tree equal (sha256 and secret flag per
//! file) to the current one is a no-op; otherwise it is staged in
//! `staging/<id>/`, validated, and only then renamed into `trees/` and made
//! current by an atomic symlink rename. A tree that fails validation never
//! becomes current; it moves to `failed/` with the proxy's own message in
//! the error. Staging costs what changed:
//! - sha256 is computed once per distinct contents (the renderer hands the
//!   same `Arc` for an unchanged file: memoized by allocation, see `memo.rs`);
//! - a subdirectory whose `dirs/<key>` exists is a symbolic link, O(1); a
//!   new `dirs/<key>` is built in `dirs/.staging-<key>` by hard-linking each
//!   file with the same path, sha256 and mode from the current tree's copy
//!   and writing the others (0600 when secret, else 0644);
//! - top-level files are hard-linked from the current tree when equal,
//!   else written;
//! - then every written file and every new directory is fsynced, in one
//!   batch on several threads (the file system commits concurrent fsyncs
//!   together: an fsync costs 0.1 to several ms, it is what a small apply
//!   costs); only then are the copies renamed to `dirs/<key>`, and `dirs/`
//!   is fsynced while the validator runs, before the tree is renamed
//!   anywhere.
//!
//! A crash at any instant leaves `current` pointing at a complete,
//! validated tree (or absent before the first success): a `dirs/<key>`
//! exists only complete and durable, before any tree links to it.
//! After each apply, trees beyond `keep` (and `failed/` beyond 3) and the
//! copies no kept tree (`trees/`, `failed/`) links to are renamed to
//! `.trash-*` at once and deleted by a background thread
//! ([`Applier::wait_for_pruning`]). Leftovers (`staging/`,
//! `dirs/.staging-*`, `.trash-*`, copies no tree links to) are removed on
//! the next start. Only directories this module created (named as it names
//! them, holding its marker) are ever deleted.
//! The applier reads its trees back (on open, [`Applier::roll_back_to`])
//! through its own `../../dirs/<key>` links only, checking each copy
//! against its key; any other symbolic link is refused, never followed
//! ([`crate::tree::diff_tree`] reads them the same way; `write_tree`
//! never writes through any link). Keys are never readable by others:
//! files 0600, directories 0700.
//!
//! `..` below a link resolves from the link's target: a configuration file
//! in `<tree>/backends/` that names `../cas/x.pem` (or HAProxy's
//! `default-path parent`) would look in `DIR/dirs/`. Such subdirectories
//! are staged as plain directories of the tree
//! ([`Applier::set_plain_subdirs`]).

pub mod delta;
mod lock;
pub use lock::{LockError, OutputLock, LOCK_FILE};
mod memo;
mod store;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::durable::fsync_dir;
use routegen_render::output::{validate_tree, OutputError, OutputTree, DIRS, TREE_MARKER};
use store::TreeState;

/// Name of the symlink to the tree being served.
pub const CURRENT: &str = "current";
const TREES: &str = "trees";
const STAGING: &str = "staging";
const FAILED: &str = "failed";

/// What the applier knows of one file: its sha256 and whether it is
/// secret (mode 0600).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileState {
    pub hash: [u8; 32],
    pub secret: bool,
}

/// Tree path → file state, in path order.
pub(crate) type Manifest = BTreeMap<String, FileState>;

/// What changed between two trees, by file path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangeSummary {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl ChangeSummary {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl std::fmt::Display for ChangeSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} added, {} changed, {} removed",
            self.added.len(),
            self.changed.len(),
            self.removed.len()
        )
    }
}

/// Result of a successful [`Applier::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Same content as the current tree: nothing written, no reload needed.
    Unchanged,
    /// A new tree is current.
    Applied {
        id: String,
        summary: ChangeSummary,
        validation: Duration,
    },
}

/// What the last [`Applier::apply`] that staged a tree did on disk (for
/// logs, tests and benchmarks).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StagingStats {
    /// Files whose sha256 was computed (contents not seen in the previous
    /// tree), and their bytes.
    pub files_hashed: usize,
    pub bytes_hashed: u64,
    /// Files written (new or changed) and their bytes.
    pub files_written: usize,
    pub bytes_written: u64,
    /// Files hard-linked from the current tree.
    pub files_linked: usize,
    /// Subdirectories whose `dirs/<key>` copy existed (a link, O(1)).
    pub dirs_reused: usize,
    /// Subdirectories whose `dirs/<key>` copy was built.
    pub dirs_built: usize,
    /// Time to stage the tree (hashing and fsyncs included).
    pub staging: Duration,
    /// Of which the fsyncs (one concurrent batch, then `dirs/`).
    pub syncing: Duration,
    /// Rename into `trees/`, fsync, `current` swap, fsync (after the
    /// validation).
    pub swap: Duration,
    /// Removing trees beyond `keep` and the copies no kept tree links to.
    pub pruning: Duration,
    /// `dirs/` copies removed after the swap (or the refusal).
    pub dirs_pruned: usize,
}

/// A tree written to `staging/` by [`Applier::stage`], not yet checked
/// or current.
#[derive(Debug)]
pub struct Staged {
    id: String,
    dir: PathBuf,
    files: Manifest,
    summary: ChangeSummary,
    stats: StagingStats,
    /// `dirs/`, when copies were built for this tree (its fsync is due).
    dirs_to_sync: Option<PathBuf>,
}

impl Staged {
    /// The tree's id (its directory name).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it is staged.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What changed from the current tree.
    pub fn summary(&self) -> &ChangeSummary {
        &self.summary
    }
}

/// How [`Applier::commit`] checks a staged tree.
#[derive(Clone, Copy, Debug)]
pub enum Check<'a> {
    /// The validator on the whole tree (`haproxy -c`, `nginx -t`).
    Full,
    /// `haproxy -c` on this smaller tree ([`delta`]'s
    /// `validation_subset`): for a tree that differs from a validated
    /// current tree only in the backends and certificates the subset
    /// holds. Other validators check the whole tree.
    Subset(&'a OutputTree),
    /// None: the caller has had every changed line accepted by the running
    /// HAProxy itself (the runtime API parses `add server` arguments, map
    /// entries and certificates as the configuration parser does).
    Trusted,
}

/// Why a tree was not applied. The current tree is untouched in every case.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The validator (`haproxy -c`, `nginx -t`) refused the tree; `output`
    /// is the proxy's own text.
    #[error("{validator} refused tree {id} (kept in {}): {output}", kept.display())]
    Invalid {
        id: String,
        kept: PathBuf,
        output: String,
        /// `haproxy -c` or `nginx -t`.
        validator: &'static str,
    },
    /// The validator (HAProxy or nginx) could not be run at all.
    #[error("cannot run {bin} to validate the tree: {source}")]
    HaproxyMissing {
        bin: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Output(#[from] OutputError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError + '_ {
    move |source| ApplyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// How a staged tree is checked before it may become current: the real
/// proxy binary on the tree where it was staged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Validator {
    /// `<bin> -c -f <tree>/haproxy.cfg -f <tree>/backends` (see
    /// [`haproxy_config_paths`]).
    Haproxy { bin: PathBuf },
    /// `<bin> -t -q -e stderr -p <scratch>/ -c <tree>/nginx.conf`. The
    /// scratch prefix is a fresh temporary directory: `nginx -t` creates
    /// the pid file and temporary directories there (the routegen nginx
    /// tree puts them under the `-p` prefix), so validating never touches
    /// the running nginx's files. The tree's run directory (Unix sockets)
    /// must exist, as `nginx -t` binds its listeners.
    Nginx { bin: PathBuf },
    /// No check at all: every tree is accepted. For benchmarks and tests of
    /// the staging itself only; never for a tree a proxy serves.
    None,
}

impl Validator {
    /// The configuration file at the root of a tree.
    pub fn config_file(&self) -> &'static str {
        match self {
            Validator::Haproxy { .. } | Validator::None => "haproxy.cfg",
            Validator::Nginx { .. } => "nginx.conf",
        }
    }

    /// `haproxy -c` or `nginx -t`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Validator::Haproxy { .. } => "haproxy -c",
            Validator::Nginx { .. } => "nginx -t",
            Validator::None => "no validation",
        }
    }

    /// Check the tree in `dir`: `Ok(Err(text))` with the proxy's output
    /// when it refuses the configuration.
    pub fn validate(&self, dir: &Path) -> Result<Result<(), String>, ApplyError> {
        match self {
            Validator::Haproxy { bin } => validate_with(bin, &haproxy_config_paths(dir)),
            Validator::Nginx { bin } => validate_nginx(bin, &dir.join(self.config_file())),
            Validator::None => Ok(Ok(())),
        }
    }
}

/// Owner of one output directory.
#[derive(Debug)]
pub struct Applier {
    out: PathBuf,
    validator: Validator,
    keep: usize,
    keep_failed: usize,
    next_seq: u64,
    /// The tree being served: its id, files and subdirectory copies.
    current: Option<TreeState>,
    /// sha256 per distinct contents of the newest tree.
    memo: memo::HashMemo,
    last_staging: Option<StagingStats>,
    /// Pruned directories being deleted in the background.
    trash: store::Trash,
    /// Top-level subdirectories staged as plain directories of the tree
    /// (see [`Applier::set_plain_subdirs`]).
    plain: BTreeSet<String>,
}

impl Applier {
    /// Open (or create) the output directory: removes staging leftovers,
    /// finds the current tree. `keep` (at least 1) good trees are kept.
    /// Trees are HAProxy trees validated with `haproxy_bin -c`.
    pub fn open(out: &Path, haproxy_bin: &Path, keep: usize) -> Result<Applier, ApplyError> {
        Applier::open_with(
            out,
            Validator::Haproxy {
                bin: haproxy_bin.to_path_buf(),
            },
            keep,
        )
    }

    /// [`Applier::open`] for trees checked by `validator` (e.g. nginx).
    /// The current tree is read back (every file hashed) through the
    /// applier's own links only: a tree with any other symbolic link is
    /// refused with an error naming it.
    pub fn open_with(out: &Path, validator: Validator, keep: usize) -> Result<Applier, ApplyError> {
        for dir in [
            out.to_path_buf(),
            out.join(TREES),
            out.join(STAGING),
            out.join(FAILED),
            out.join(DIRS),
        ] {
            create_private_dir(&dir)?;
        }
        for entry in fs::read_dir(out.join(STAGING)).map_err(io_err(out))? {
            let entry = entry.map_err(io_err(out))?;
            let path = entry.path();
            let trash = entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(store::TRASH_PREFIX));
            if path.join(TREE_MARKER).exists() || (trash && path.is_dir()) {
                fs::remove_dir_all(&path).map_err(io_err(&path))?;
            } else if path.is_dir() && fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none()) {
                // A tree cut short before its marker: nothing in it.
                let _ = fs::remove_dir(&path);
            }
        }
        let mut applier = Applier {
            out: out.to_path_buf(),
            validator,
            keep: keep.max(1),
            keep_failed: 3,
            next_seq: 1,
            current: None,
            memo: memo::HashMemo::default(),
            last_staging: None,
            trash: store::Trash::default(),
            plain: BTreeSet::new(),
        };
        if let Validator::Haproxy { .. } = applier.validator {
            // backends/*.cfg resolve relative paths from the tree
            // (`default-path parent` in backends/default.cfg): the
            // directory must be a real one inside the tree.
            applier.set_plain_subdirs([routegen_render::haproxy::BACKENDS_DIR]);
        }
        applier.next_seq = applier.max_seq()? + 1;
        if let Ok(target) = fs::read_link(out.join(CURRENT)) {
            let id = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dir = out.join(TREES).join(&id);
            if !id.is_empty() && dir.join(applier.validator.config_file()).is_file() {
                applier.current = Some(store::read_tree(out, &id)?);
            }
        }
        // Half-built copies and copies no tree links to (a crash between
        // building a copy and renaming its tree). Not needed to serve: a
        // read-only directory still opens.
        if let Err(e) = store::prune_dirs(out, &mut applier.trash, true) {
            tracing::warn!(error = %e, "cannot remove unused copies under {DIRS}/");
        }
        applier.trash.wait();
        Ok(applier)
    }

    /// Stage the top-level subdirectories named in `subs` as plain
    /// directories inside each tree (every file hard-linked from the
    /// current tree when unchanged, else written) instead of links to
    /// shared `dirs/<key>` copies. For directories of configuration files
    /// whose relative paths climb out of them: the kernel resolves `..`
    /// below a symbolic link from the link's target, so in
    /// `<tree>/backends -> ../../dirs/<key>` a `../cas/x.pem` (or HAProxy's
    /// `default-path parent`, which changes to `<tree>/backends/..`) names
    /// `DIR/dirs/cas/x.pem`, not the tree's. Costs one link per file
    /// instead of one per directory. Default: `backends` for HAProxy trees
    /// (see [`Applier::open_with`]), none otherwise.
    pub fn set_plain_subdirs<S: Into<String>>(&mut self, subs: impl IntoIterator<Item = S>) {
        self.plain = subs.into_iter().map(Into::into).collect();
    }

    /// `DIR/current/haproxy.cfg` (`nginx.conf` for nginx): the path the
    /// proxy's `-f` (`-c`) should name.
    pub fn current_config(&self) -> PathBuf {
        self.out.join(CURRENT).join(self.validator.config_file())
    }

    /// How trees are validated.
    pub fn validator(&self) -> &Validator {
        &self.validator
    }

    /// Id of the tree being served, if any.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|c| c.id.as_str())
    }

    /// What the last apply that staged a tree did (`None` before the first,
    /// and after [`ApplyOutcome::Unchanged`] keeps the previous figures).
    pub fn last_staging(&self) -> Option<&StagingStats> {
        self.last_staging.as_ref()
    }

    /// Make `tree` current (see the module contract): [`Applier::stage`]
    /// then [`Applier::commit`] with the full validation.
    pub fn apply(&mut self, tree: &OutputTree) -> Result<ApplyOutcome, ApplyError> {
        match self.stage(tree)? {
            None => Ok(ApplyOutcome::Unchanged),
            Some(staged) => self.commit(staged, Check::Full),
        }
    }

    /// Write `tree` to `staging/<id>/` (files durable, nothing validated,
    /// `current` untouched): `None` when it equals the current tree. The
    /// result must be given to [`Applier::commit`] or
    /// [`Applier::discard`] before the next stage.
    pub fn stage(&mut self, tree: &OutputTree) -> Result<Option<Staged>, ApplyError> {
        let started = Instant::now();
        let (files, hashed) = self.memo.manifest(tree);
        let empty = Manifest::new();
        let current_files = self.current.as_ref().map_or(&empty, |c| &c.files);
        if self.current.is_some() && files == *current_files {
            return Ok(None);
        }
        validate_tree(tree)?;
        let summary = summarize(current_files, &files);
        let id = format!("{:08}-{}", self.next_seq, short_hash(&files));
        self.next_seq += 1;

        let mut stats = StagingStats {
            files_hashed: hashed.files,
            bytes_hashed: hashed.bytes,
            ..StagingStats::default()
        };
        let dir = self.out.join(STAGING).join(&id);
        let staging = store::stage(
            &self.out,
            self.current.as_ref(),
            &self.plain,
            tree,
            &files,
            &dir,
            &mut stats,
        );
        let dirs_to_sync = match staging {
            Ok(built) => built.then(|| self.out.join(DIRS)),
            Err(e) => {
                // Copies built for this tree are linked from nowhere now.
                let _ = store::prune_dirs(&self.out, &mut self.trash, false);
                return Err(e);
            }
        };
        stats.staging = started.elapsed();
        Ok(Some(Staged {
            id,
            dir,
            files,
            summary,
            stats,
            dirs_to_sync,
        }))
    }

    /// Drop a staged tree (its new `dirs/` copies too).
    pub fn discard(&mut self, staged: Staged) {
        let _ = fs::remove_dir_all(&staged.dir);
        let _ = store::prune_dirs(&self.out, &mut self.trash, false);
    }

    /// Check a staged tree as `check` says and make it current. Refused by
    /// the validator: moved to `failed/`, [`ApplyError::Invalid`].
    pub fn commit(&mut self, staged: Staged, check: Check<'_>) -> Result<ApplyOutcome, ApplyError> {
        let Staged {
            id,
            dir: staged,
            files,
            summary,
            mut stats,
            dirs_to_sync,
        } = staged;
        // Validation, and meanwhile the fsync of `dirs/` (the new copies'
        // names), needed before the tree may be renamed anywhere.
        let started = Instant::now();
        let validate = || match check {
            Check::Full => self.validate(&staged),
            Check::Subset(subset) => match &self.validator {
                Validator::Haproxy { bin } => {
                    delta::validate_subset(bin, subset, &self.out.join(STAGING))
                }
                other => other.validate(&staged),
            },
            Check::Trusted => Ok(Ok(())),
        };
        let (checked, synced) = match (&self.validator, dirs_to_sync) {
            (_, None) => (validate(), Ok(())),
            (Validator::None, Some(dirs)) => (Ok(Ok(())), fsync_dir(&dirs).map_err(Into::into)),
            (_, Some(dirs)) => std::thread::scope(|s| {
                let sync = s.spawn(move || fsync_dir(&dirs).map_err(Into::into));
                let checked = validate();
                (checked, sync.join().expect("fsync thread panicked"))
            }),
        };
        let checked = match checked.and_then(|c| synced.map(|()| c)) {
            Ok(checked) => checked,
            Err(e) => {
                let _ = fs::remove_dir_all(&staged);
                let _ = store::prune_dirs(&self.out, &mut self.trash, false);
                return Err(e);
            }
        };
        if let Err(output) = checked {
            let kept = self.out.join(FAILED).join(&id);
            fs::rename(&staged, &kept).map_err(io_err(&kept))?;
            self.prune(FAILED, self.keep_failed, None)?;
            stats.dirs_pruned = store::prune_dirs(&self.out, &mut self.trash, false)?;
            self.last_staging = Some(stats);
            return Err(ApplyError::Invalid {
                id,
                kept,
                output,
                validator: self.validator.name(),
            });
        }
        let validation = started.elapsed();

        let started = Instant::now();
        let final_dir = self.out.join(TREES).join(&id);
        fs::rename(&staged, &final_dir).map_err(io_err(&final_dir))?;
        fsync_dir(&self.out.join(TREES))?;
        self.swap_current(&id)?;
        let subdirs = store::subdir_keys(&files)
            .into_iter()
            .map(|(sub, key)| {
                let dir = if self.plain.contains(sub) {
                    final_dir.join(sub)
                } else {
                    self.out.join(DIRS).join(key)
                };
                (sub.to_string(), dir)
            })
            .collect();
        self.current = Some(TreeState {
            id: id.clone(),
            files,
            subdirs,
        });
        stats.swap = started.elapsed();
        let started = Instant::now();
        self.prune(TREES, self.keep, Some(&id))?;
        stats.dirs_pruned = store::prune_dirs(&self.out, &mut self.trash, false)?;
        stats.pruning = started.elapsed();
        self.last_staging = Some(stats);
        Ok(ApplyOutcome::Applied {
            id,
            summary,
            validation,
        })
    }

    /// Run the validator (`haproxy -c`, `nginx -t`) on a staged tree:
    /// `Ok(Err(text))` when the proxy refuses it.
    pub fn validate(&self, dir: &Path) -> Result<Result<(), String>, ApplyError> {
        self.validator.validate(dir)
    }

    /// Point `current` at a tree that is still kept (e.g. to roll back after
    /// HAProxy failed to start a worker on the newest one).
    pub fn roll_back_to(&mut self, id: &str) -> Result<(), ApplyError> {
        let state = store::read_tree(&self.out, id)?;
        self.swap_current(id)?;
        self.current = Some(state);
        Ok(())
    }

    /// Wait until the directories pruned by earlier applies are deleted
    /// (they are renamed out of the way at once and deleted by a
    /// background thread; dropping the applier waits too).
    pub fn wait_for_pruning(&mut self) {
        self.trash.wait();
    }

    /// Ids of the kept good trees, oldest first.
    pub fn history(&self) -> Result<Vec<String>, ApplyError> {
        list_ids(&self.out.join(TREES))
    }

    fn swap_current(&self, id: &str) -> Result<(), ApplyError> {
        let link = self.out.join(CURRENT);
        let tmp = self.out.join(format!(".{CURRENT}.tmp"));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(Path::new(TREES).join(id), &tmp).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &link).map_err(io_err(&link))?;
        Ok(fsync_dir(&self.out)?)
    }

    /// Keep the newest `keep` trees under `sub` (never `protect`).
    fn prune(&mut self, sub: &str, keep: usize, protect: Option<&str>) -> Result<(), ApplyError> {
        let dir = self.out.join(sub);
        let ids = list_ids(&dir)?;
        let excess = ids.len().saturating_sub(keep);
        for id in ids.iter().take(excess) {
            if Some(id.as_str()) == protect {
                continue;
            }
            let path = dir.join(id);
            // Only trees we wrote carry the marker. Renamed away at once,
            // deleted in the background (`staging/.trash-*`; what a crash
            // leaves is removed on open).
            if path.join(TREE_MARKER).exists() {
                self.trash
                    .put(&path, &self.out.join(STAGING), &format!("{sub}-{id}"))?;
            }
        }
        Ok(())
    }

    fn max_seq(&self) -> Result<u64, ApplyError> {
        let mut max = 0;
        for sub in [TREES, FAILED] {
            for id in list_ids(&self.out.join(sub))? {
                if let Some(seq) = id.split('-').next().and_then(|s| s.parse::<u64>().ok()) {
                    max = max.max(seq);
                }
            }
        }
        Ok(max)
    }
}

/// What HAProxy's `-f` options must name for the tree in `tree`, in this
/// order: `haproxy.cfg` (global, defaults, frontends), then the `backends`
/// directory when the tree has one (HAProxy loads its `*.cfg` files in
/// lexical order; trees written before the split have none). A command
/// line naming only `haproxy.cfg` fails loudly on a split tree: the
/// frontends' default backends live in `backends/`.
pub fn haproxy_config_paths(tree: &Path) -> Vec<PathBuf> {
    let mut paths = vec![tree.join(routegen_render::haproxy::CONFIG_FILE)];
    let backends = tree.join(routegen_render::haproxy::BACKENDS_DIR);
    if backends.is_dir() {
        paths.push(backends);
    }
    paths
}

/// Run `<bin> -c -f <cfg> [-f <cfg>...]`: `Ok(Err(text))` with HAProxy's
/// output when the configuration is refused (`-q` is not used: it would
/// hide the reason).
pub fn validate_with(bin: &Path, cfgs: &[PathBuf]) -> Result<Result<(), String>, ApplyError> {
    let mut command = Command::new(bin);
    command.arg("-c");
    for cfg in cfgs {
        command.arg("-f").arg(cfg);
    }
    run_check(bin, &mut command)
}

/// Run a proxy's configuration check: `Ok(Err(text))` with its stdout and
/// stderr when it refuses the configuration.
fn run_check(bin: &Path, command: &mut Command) -> Result<Result<(), String>, ApplyError> {
    let output = command
        .output()
        .map_err(|source| ApplyError::HaproxyMissing {
            bin: bin.display().to_string(),
            source,
        })?;
    if output.status.success() {
        Ok(Ok(()))
    } else {
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Ok(Err(text.trim().to_string()))
    }
}

/// Run `<bin> -t -q -e stderr -p <scratch>/ -c <conf>` (see
/// [`Validator::Nginx`]): `Ok(Err(text))` with nginx's output when it
/// refuses the configuration.
pub fn validate_nginx(bin: &Path, conf: &Path) -> Result<Result<(), String>, ApplyError> {
    let scratch = tempfile::Builder::new()
        .prefix("routegen-nginx-t-")
        .tempdir()
        .map_err(io_err(&std::env::temp_dir()))?;
    let mut command = Command::new(bin);
    command
        .arg("-t")
        .arg("-q")
        .arg("-e")
        .arg("stderr")
        .arg("-p")
        .arg(format!("{}/", scratch.path().display()))
        .arg("-c")
        .arg(conf);
    // `scratch` lives until the check has run.
    run_check(bin, &mut command)
}

fn create_private_dir(dir: &Path) -> Result<(), ApplyError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.file_type().is_symlink() => Err(ApplyError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other("is a symbolic link; refusing to use it"),
        }),
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(ApplyError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other("exists and is not a directory"),
        }),
        Err(_) => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
        }
    }
}

/// Tree ids (directory names) under `dir`, oldest first.
fn list_ids(dir: &Path) -> Result<Vec<String>, ApplyError> {
    let mut ids = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(io_err(dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_type().map_err(io_err(dir))?.is_dir() {
            ids.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    ids.sort();
    Ok(ids)
}

/// Paths added, changed (contents or secret flag) and removed from `old`
/// to `new`.
fn summarize(old: &Manifest, new: &Manifest) -> ChangeSummary {
    let mut summary = ChangeSummary::default();
    for (path, state) in new {
        match old.get(path) {
            None => summary.added.push(path.clone()),
            Some(s) if s != state => summary.changed.push(path.clone()),
            _ => {}
        }
    }
    summary.removed = old
        .keys()
        .filter(|p| !new.contains_key(*p))
        .cloned()
        .collect();
    summary
}

/// First 8 hex digits of a hash over the whole tree.
fn short_hash(files: &Manifest) -> String {
    let mut all = Vec::with_capacity(files.len() * 64);
    for (path, state) in files {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(&state.hash);
    }
    openssl::sha::sha256(&all)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
