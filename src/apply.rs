//! Apply: make a rendered tree the one HAProxy serves, never a broken or
//! half-written one (SPEC §8).
//!
//! Layout of the output directory (`--out DIR`, created 0700):
//! ```text
//! DIR/current -> trees/<id>     symlink HAProxy's -f points through
//! DIR/trees/<id>/               the last `keep` good trees (current included)
//! DIR/staging/<id>/             a tree being written and validated
//! DIR/failed/<id>/              trees the validator refused, kept for inspection
//! ```
//! The validator ([`Validator`]) is the real proxy binary: `haproxy -c` for
//! an HAProxy tree (the default, [`Applier::open`]), `nginx -t` for an
//! nginx tree ([`Applier::open_with`]).
//! Contract of [`Applier::apply`]: a tree equal (sha256 per file) to the
//! current one is a no-op; otherwise it is written to `staging/` (files
//! fsynced), validated with the real `haproxy -c`, and only then renamed
//! into `trees/` and made current by an atomic symlink rename. A tree that
//! fails validation never becomes current; it moves to `failed/` with
//! HAProxy's own message in the error. A crash at any instant leaves
//! `current` pointing at a complete, validated tree (or absent before the
//! first success); leftovers in `staging/` are removed on the next start.
//! Only directories this module created are ever deleted.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::output::{write_tree, OutputError, OutputTree, TREE_MARKER};

/// Name of the symlink to the tree being served.
pub const CURRENT: &str = "current";
const TREES: &str = "trees";
const STAGING: &str = "staging";
const FAILED: &str = "failed";

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
}

impl Validator {
    /// The configuration file at the root of a tree.
    pub fn config_file(&self) -> &'static str {
        match self {
            Validator::Haproxy { .. } => "haproxy.cfg",
            Validator::Nginx { .. } => "nginx.conf",
        }
    }

    /// `haproxy -c` or `nginx -t`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Validator::Haproxy { .. } => "haproxy -c",
            Validator::Nginx { .. } => "nginx -t",
        }
    }

    /// Check the tree in `dir`: `Ok(Err(text))` with the proxy's output
    /// when it refuses the configuration.
    pub fn validate(&self, dir: &Path) -> Result<Result<(), String>, ApplyError> {
        match self {
            Validator::Haproxy { bin } => validate_with(bin, &haproxy_config_paths(dir)),
            Validator::Nginx { bin } => validate_nginx(bin, &dir.join(self.config_file())),
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
    current_id: Option<String>,
    /// sha256 per file of the current tree.
    current_hashes: BTreeMap<String, [u8; 32]>,
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
    pub fn open_with(out: &Path, validator: Validator, keep: usize) -> Result<Applier, ApplyError> {
        for dir in [
            out.to_path_buf(),
            out.join(TREES),
            out.join(STAGING),
            out.join(FAILED),
        ] {
            create_private_dir(&dir)?;
        }
        for entry in fs::read_dir(out.join(STAGING)).map_err(io_err(out))? {
            let path = entry.map_err(io_err(out))?.path();
            if path.join(TREE_MARKER).exists() {
                fs::remove_dir_all(&path).map_err(io_err(&path))?;
            }
        }
        let mut applier = Applier {
            out: out.to_path_buf(),
            validator,
            keep: keep.max(1),
            keep_failed: 3,
            next_seq: 1,
            current_id: None,
            current_hashes: BTreeMap::new(),
        };
        applier.next_seq = applier.max_seq()? + 1;
        if let Ok(target) = fs::read_link(out.join(CURRENT)) {
            let id = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let dir = out.join(TREES).join(&id);
            if dir.join(applier.validator.config_file()).is_file() {
                applier.current_hashes = hash_dir(&dir)?;
                applier.current_id = Some(id);
            }
        }
        Ok(applier)
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
        self.current_id.as_deref()
    }

    /// Make `tree` current (see the module contract).
    pub fn apply(&mut self, tree: &OutputTree) -> Result<ApplyOutcome, ApplyError> {
        let hashes: BTreeMap<String, [u8; 32]> = tree
            .iter()
            .map(|(path, file)| (path.clone(), openssl::sha::sha256(&file.contents)))
            .collect();
        if self.current_id.is_some() && hashes == self.current_hashes {
            return Ok(ApplyOutcome::Unchanged);
        }
        let summary = summarize(&self.current_hashes, &hashes);
        let id = format!("{:08}-{}", self.next_seq, short_hash(&hashes));
        self.next_seq += 1;

        let staged = self.out.join(STAGING).join(&id);
        write_tree(tree, &staged)?;
        let started = Instant::now();
        if let Err(output) = self.validate(&staged)? {
            let kept = self.out.join(FAILED).join(&id);
            fs::rename(&staged, &kept).map_err(io_err(&kept))?;
            self.prune(FAILED, self.keep_failed, None)?;
            return Err(ApplyError::Invalid {
                id,
                kept,
                output,
                validator: self.validator.name(),
            });
        }
        let validation = started.elapsed();

        let final_dir = self.out.join(TREES).join(&id);
        fs::rename(&staged, &final_dir).map_err(io_err(&final_dir))?;
        fsync_dir(&self.out.join(TREES))?;
        self.swap_current(&id)?;
        self.current_id = Some(id.clone());
        self.current_hashes = hashes;
        self.prune(TREES, self.keep, Some(&id))?;
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
        let dir = self.out.join(TREES).join(id);
        let hashes = hash_dir(&dir)?;
        self.swap_current(id)?;
        self.current_id = Some(id.to_string());
        self.current_hashes = hashes;
        Ok(())
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
        fsync_dir(&self.out)
    }

    /// Keep the newest `keep` trees under `sub` (never `protect`).
    fn prune(&self, sub: &str, keep: usize, protect: Option<&str>) -> Result<(), ApplyError> {
        let dir = self.out.join(sub);
        let ids = list_ids(&dir)?;
        let excess = ids.len().saturating_sub(keep);
        for id in ids.iter().take(excess) {
            if Some(id.as_str()) == protect {
                continue;
            }
            let path = dir.join(id);
            // Only trees we wrote carry the marker.
            if path.join(TREE_MARKER).exists() {
                fs::remove_dir_all(&path).map_err(io_err(&path))?;
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
    let mut paths = vec![tree.join(crate::render::haproxy::CONFIG_FILE)];
    let backends = tree.join(crate::render::haproxy::BACKENDS_DIR);
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
    let output = Command::new(bin)
        .arg("-t")
        .arg("-q")
        .arg("-e")
        .arg("stderr")
        .arg("-p")
        .arg(format!("{}/", scratch.path().display()))
        .arg("-c")
        .arg(conf)
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

fn fsync_dir(dir: &Path) -> Result<(), ApplyError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_err(dir))
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

/// sha256 of every file below `dir` (the marker excluded), by relative path.
fn hash_dir(dir: &Path) -> Result<BTreeMap<String, [u8; 32]>, ApplyError> {
    let mut hashes = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false) {
        let entry = entry.map_err(|e| ApplyError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry
            .path()
            .strip_prefix(dir)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .into_owned();
        if rel == TREE_MARKER {
            continue;
        }
        let bytes = fs::read(entry.path()).map_err(io_err(entry.path()))?;
        hashes.insert(rel, openssl::sha::sha256(&bytes));
    }
    Ok(hashes)
}

fn summarize(old: &BTreeMap<String, [u8; 32]>, new: &BTreeMap<String, [u8; 32]>) -> ChangeSummary {
    let mut summary = ChangeSummary::default();
    for (path, hash) in new {
        match old.get(path) {
            None => summary.added.push(path.clone()),
            Some(h) if h != hash => summary.changed.push(path.clone()),
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
fn short_hash(hashes: &BTreeMap<String, [u8; 32]>) -> String {
    let mut all = Vec::with_capacity(hashes.len() * 64);
    for (path, hash) in hashes {
        all.extend_from_slice(path.as_bytes());
        all.push(0);
        all.extend_from_slice(hash);
    }
    openssl::sha::sha256(&all)[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
