//! Trees on disk: [`write_tree`] writes a rendered tree to a directory
//! (`render --out`), [`diff_tree`] compares one with a directory
//! (`diff`), and the applier builds on [`write_file_atomic`] and
//! [`resolve_dirs_link`]. The tree type and its path rules are
//! `routegen_render::output`'s.
//!
//! Contract:
//! - [`write_tree`] writes each file atomically (temporary file in the same
//!   directory, fsync, rename, fsync of the directory), secret files with
//!   mode 0600 and the others 0644, new directories 0700. It refuses
//!   symbolic links anywhere below the output directory, and a non-empty
//!   directory it did not write before (it leaves the marker
//!   [`TREE_MARKER`]). Files of an earlier tree that are not in the new one
//!   are removed, so keys of deleted Routes do not linger.
//! - [`diff_tree`] never shows private keys
//!   ([`routegen_render::output::redact`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::durable::fsync_dir;
use routegen_render::output::{
    dirs_link_key, io_error as io_err, refused, shown, validate_tree, OutputError, OutputTree,
    DIRS, TREE_MARKER,
};

/// Where the applier link `<tree>/<name>` (target `target`) leads, when it
/// is one (see [`dirs_link_key`]) and leads to a real directory through a
/// real `dirs/`. `Ok(None)`: not an applier link.
pub fn resolve_dirs_link(tree: &Path, target: &Path) -> Result<Option<PathBuf>, OutputError> {
    if dirs_link_key(target).is_none() {
        return Ok(None);
    }
    let dirs = tree.join("../..").join(DIRS);
    let dest = tree.join(target);
    for p in [&dirs, &dest] {
        let meta = fs::symlink_metadata(p).map_err(io_err(p))?;
        if !meta.is_dir() {
            return Err(refused(
                p.display(),
                "is not a directory (a symbolic link?); refusing to read through it",
            ));
        }
    }
    Ok(Some(dest))
}

/// Which symbolic links [`scan_dir`] may read through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Links {
    /// None (a directory routegen writes into).
    Refuse,
    /// Only the applier's own top-level `../../dirs/<key>` links (a tree
    /// under an applier's output directory, read to compare).
    ApplierDirs,
}

/// Every regular file below `dir`: relative `/` path (sorted) → where it
/// is on disk. Refuses symbolic links (but the applier's own, with
/// [`Links::ApplierDirs`], whose marker is skipped) and anything that is
/// neither a file nor a directory.
fn scan_dir(dir: &Path, links: Links) -> Result<BTreeMap<String, PathBuf>, OutputError> {
    fn walk(
        here: &Path,
        rel: &str,
        links: Links,
        out: &mut BTreeMap<String, PathBuf>,
    ) -> Result<(), OutputError> {
        let mut entries: Vec<_> = fs::read_dir(here)
            .map_err(io_err(here))?
            .collect::<Result<_, _>>()
            .map_err(io_err(here))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| refused(here.join(&name).display(), "file name is not UTF-8"))?;
            let rel_child = if rel.is_empty() {
                name.to_string()
            } else {
                format!("{rel}/{name}")
            };
            let path = here.join(name);
            let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let kind = meta.file_type();
            if kind.is_symlink() {
                let linked = match links {
                    Links::ApplierDirs if rel.is_empty() => {
                        let target = fs::read_link(&path).map_err(io_err(&path))?;
                        resolve_dirs_link(here, &target)?
                    }
                    _ => None,
                };
                let Some(linked) = linked else {
                    return Err(refused(
                        path.display(),
                        "is a symbolic link; refusing to write or compare through it",
                    ));
                };
                let mut inner = BTreeMap::new();
                walk(&linked, "", Links::Refuse, &mut inner)?;
                for (r, p) in inner {
                    if r != TREE_MARKER {
                        out.insert(format!("{rel_child}/{r}"), p);
                    }
                }
            } else if kind.is_dir() {
                walk(&path, &rel_child, links, out)?;
            } else if kind.is_file() {
                out.insert(rel_child, path);
            } else {
                return Err(refused(
                    path.display(),
                    "is not a regular file or directory",
                ));
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, "", links, &mut out)?;
    Ok(out)
}

/// Create `dir` (mode 0700) if missing; refuse anything but a directory.
fn ensure_dir(dir: &Path) -> Result<(), OutputError> {
    match fs::symlink_metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(meta) if meta.file_type().is_symlink() => Err(refused(
            dir.display(),
            "is a symbolic link inside the output directory",
        )),
        Ok(_) => Err(refused(dir.display(), "exists and is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
            if let Some(parent) = dir.parent() {
                fsync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Write `contents` to `path` atomically: a temporary file in the same
/// directory, the mode set, written, fsynced, renamed over `path`, and the
/// directory fsynced. `path` must not be a symbolic link or a directory.
pub fn write_file_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), OutputError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(refused(
                path.display(),
                "is a symbolic link; refusing to replace it",
            ))
        }
        Ok(meta) if !meta.is_file() => {
            return Err(refused(path.display(), "exists and is not a regular file"))
        }
        _ => {}
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))
        .map_err(io_err(path))?;
    tmp.write_all(contents).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(|e| io_err(path)(e.error))?;
    fsync_dir(dir)
}

/// Write the tree into `dir` (see the module contract). Returns the paths
/// of files of an earlier tree that were removed.
pub fn write_tree(tree: &OutputTree, dir: &Path) -> Result<Vec<String>, OutputError> {
    validate_tree(tree)?;
    let created = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => false,
        Ok(_) => return Err(refused(dir.display(), "exists and is not a directory")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io_err(dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))?;
            true
        }
        Err(e) => return Err(io_err(dir)(e)),
    };
    let existing = scan_dir(dir, Links::Refuse)?;
    let marker = dir.join(TREE_MARKER);
    if !created && !existing.is_empty() && !existing.contains_key(TREE_MARKER) {
        return Err(refused(
            dir.display(),
            format!("is not empty and was not written by routegen (no {TREE_MARKER}); choose a new or empty directory"),
        ));
    }
    if !existing.contains_key(TREE_MARKER) {
        write_file_atomic(&marker, b"", 0o644)?;
    }

    for (rel, file) in tree {
        let mut current = dir.to_path_buf();
        let components: Vec<&str> = rel.split('/').collect();
        for component in &components[..components.len() - 1] {
            current.push(component);
            ensure_dir(&current)?;
        }
        let mode = if file.secret { 0o600 } else { 0o644 };
        write_file_atomic(&dir.join(rel), &file.contents, mode)?;
    }

    let mut removed = Vec::new();
    for rel in existing.keys() {
        if rel == TREE_MARKER || tree.contains_key(rel) {
            continue;
        }
        let path = dir.join(rel);
        fs::remove_file(&path).map_err(io_err(&path))?;
        removed.push(rel.clone());
    }
    // Remove directories the removals emptied (deepest first), never `dir`.
    let mut parents: BTreeSet<PathBuf> = BTreeSet::new();
    for rel in &removed {
        let mut p = Path::new(rel).parent();
        while let Some(parent) = p.filter(|p| !p.as_os_str().is_empty()) {
            parents.insert(parent.to_path_buf());
            p = parent.parent();
        }
    }
    for parent in parents.iter().rev() {
        let path = dir.join(parent);
        if fs::read_dir(&path)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
        {
            fs::remove_dir(&path).map_err(io_err(&path))?;
        }
    }
    if !removed.is_empty() {
        fsync_dir(dir)?;
    }
    Ok(removed)
}

/// What `diff` shows: a unified diff (keys redacted on both sides) from the
/// files in `dir` to the tree; empty when they are identical. Files only in
/// `dir` show as removed, files only in the tree as added. A key that
/// changed behind the redaction is reported on its own line. `dir` may be
/// a tree of an applier's output directory (`DIR/current`,
/// `DIR/trees/<id>`): its subdirectories are read through the applier's
/// own `../../dirs/<key>` links, and through no other symbolic link.
pub fn diff_tree(tree: &OutputTree, dir: &Path) -> Result<String, OutputError> {
    validate_tree(tree)?;
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Err(refused(dir.display(), "is not a directory")),
        Err(e) => return Err(io_err(dir)(e)),
    }
    let on_disk = scan_dir(dir, Links::ApplierDirs)?;
    let paths: BTreeSet<&str> = on_disk
        .keys()
        .map(String::as_str)
        .filter(|p| *p != TREE_MARKER)
        .chain(tree.keys().map(String::as_str))
        .collect();
    let mut out = String::new();
    for rel in paths {
        let old = match on_disk.get(rel) {
            Some(path) => Some(fs::read(path).map_err(io_err(path))?),
            None => None,
        };
        let new = tree.get(rel).map(|f| f.bytes());
        if old.as_deref() == new {
            continue;
        }
        let old_text = old.as_deref().map(|b| shown(b, false)).unwrap_or_default();
        let new_text = new.map(|b| shown(b, false)).unwrap_or_default();
        if old_text == new_text {
            out.push_str(&format!("secret content of {rel} changed (redacted)\n"));
            continue;
        }
        let a = if old.is_some() {
            format!("a/{rel}")
        } else {
            "/dev/null".to_string()
        };
        let b = if new.is_some() {
            format!("b/{rel}")
        } else {
            "/dev/null".to_string()
        };
        let diff = similar::TextDiff::from_lines(&old_text, &new_text);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use routegen_render::output::OutputFile;
    use routegen_render::testkit::{sample_tree as tree, CERT, KEY};
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn output_write_tree_modes_and_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let removed = write_tree(&tree(), &out).unwrap();
        assert!(removed.is_empty());
        assert_eq!(mode(&out), 0o700);
        assert_eq!(mode(&out.join("maps")), 0o700);
        assert_eq!(mode(&out.join("certs")), 0o700);
        assert_eq!(mode(&out.join("certs/ns:web.pem")), 0o600);
        assert_eq!(mode(&out.join("haproxy.cfg")), 0o644);
        assert_eq!(
            fs::read_to_string(out.join("haproxy.cfg")).unwrap(),
            "global\n  maxconn 10\n"
        );
        assert!(out.join(TREE_MARKER).exists());
        // No temporary files left behind.
        let names: Vec<_> = fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.to_string_lossy().starts_with(".tmp-")),
            "{names:?}"
        );
        // Rewriting is idempotent and keeps modes.
        write_tree(&tree(), &out).unwrap();
        assert_eq!(mode(&out.join("certs/ns:web.pem")), 0o600);
        assert_eq!(diff_tree(&tree(), &out).unwrap(), "");
    }

    #[test]
    fn output_write_tree_replaces_atomically_and_prunes() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_tree(&tree(), &out).unwrap();
        // Keep a handle on the old file: an atomic replace leaves it intact.
        let old = fs::File::open(out.join("haproxy.cfg")).unwrap();
        let mut t = tree();
        t.remove("certs/ns:web.pem");
        t.insert(
            "haproxy.cfg".into(),
            OutputFile::public("global\n  maxconn 20\n"),
        );
        let removed = write_tree(&t, &out).unwrap();
        assert_eq!(removed, vec!["certs/ns:web.pem".to_string()]);
        assert!(!out.join("certs").exists(), "emptied directory removed");
        let mut s = String::new();
        use std::io::Read;
        (&old).read_to_string(&mut s).unwrap();
        assert_eq!(s, "global\n  maxconn 10\n", "old inode untouched");
        assert_eq!(
            fs::read_to_string(out.join("haproxy.cfg")).unwrap(),
            "global\n  maxconn 20\n"
        );
    }

    #[test]
    fn output_refuses_bad_paths() {
        let tmp = tempfile::tempdir().unwrap();
        for bad in [
            "../escape",
            "/etc/passwd",
            "a/../../b",
            "a//b",
            "",
            "a/./b",
            TREE_MARKER,
            "a b",
        ] {
            let mut t = OutputTree::new();
            t.insert(bad.to_string(), OutputFile::public("x"));
            let err = write_tree(&t, tmp.path()).unwrap_err();
            assert!(matches!(err, OutputError::Refused { .. }), "{bad:?}: {err}");
        }
        let mut t = OutputTree::new();
        t.insert("a".into(), OutputFile::public("x"));
        t.insert("a/b".into(), OutputFile::public("y"));
        assert!(write_tree(&t, &tmp.path().join("x")).is_err());
        assert!(
            fs::read_dir(tmp.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }

    #[test]
    fn output_refuses_planted_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        fs::create_dir(&victim).unwrap();
        let out = tmp.path().join("out");
        write_tree(&tree(), &out).unwrap();

        // A symlinked directory planted where a tree directory goes.
        fs::remove_file(out.join("certs/ns:web.pem")).unwrap();
        fs::remove_dir(out.join("certs")).unwrap();
        symlink(&victim, out.join("certs")).unwrap();
        let err = write_tree(&tree(), &out).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert!(
            fs::read_dir(&victim).unwrap().next().is_none(),
            "nothing written through the link"
        );
        fs::remove_file(out.join("certs")).unwrap();

        // A symlinked file planted where a tree file goes.
        let target = tmp.path().join("target.txt");
        fs::write(&target, "keep").unwrap();
        fs::remove_file(out.join("haproxy.cfg")).unwrap();
        symlink(&target, out.join("haproxy.cfg")).unwrap();
        assert!(write_tree(&tree(), &out).is_err());
        assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
        assert!(diff_tree(&tree(), &out).is_err());
    }

    #[test]
    fn output_refuses_foreign_non_empty_directory() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("important.txt"), "mine").unwrap();
        let err = write_tree(&tree(), tmp.path()).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
        assert_eq!(
            fs::read_to_string(tmp.path().join("important.txt")).unwrap(),
            "mine"
        );
        // An empty existing directory is fine.
        let empty = tmp.path().join("empty");
        fs::create_dir(&empty).unwrap();
        write_tree(&tree(), &empty).unwrap();
    }

    #[test]
    fn output_diff_reads_only_top_level_applier_links() {
        let tmp = tempfile::tempdir().unwrap();
        let key = "ab".repeat(32);
        let tree_dir = tmp.path().join("trees/t");
        let copy = tmp.path().join("dirs").join(&key);
        fs::create_dir_all(&tree_dir).unwrap();
        fs::create_dir_all(&copy).unwrap();
        fs::write(tree_dir.join(TREE_MARKER), "").unwrap();
        fs::write(tree_dir.join("haproxy.cfg"), "global\n  maxconn 10\n").unwrap();
        fs::write(copy.join(TREE_MARKER), "").unwrap();
        fs::write(copy.join("http.map"), "a.example.com be_http:a:a\n").unwrap();
        symlink(format!("../../dirs/{key}"), tree_dir.join("maps")).unwrap();
        let mut t = tree();
        t.remove("certs/ns:web.pem");
        assert_eq!(diff_tree(&t, &tree_dir).unwrap(), "");
        // Never written through.
        assert!(write_tree(&t, &tree_dir).is_err());
        // The same form one level down is not ours.
        fs::create_dir(tree_dir.join("sub")).unwrap();
        symlink(format!("../../dirs/{key}"), tree_dir.join("sub/maps")).unwrap();
        assert!(diff_tree(&t, &tree_dir).is_err());
        fs::remove_dir_all(tree_dir.join("sub")).unwrap();
        // A symbolic link inside the copy is refused.
        symlink("/etc/hostname", copy.join("x.map")).unwrap();
        let err = diff_tree(&t, &tree_dir).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        fs::remove_file(copy.join("x.map")).unwrap();
        // A copy that is itself a symbolic link is refused.
        let real = tmp.path().join("elsewhere");
        fs::rename(&copy, &real).unwrap();
        symlink(&real, &copy).unwrap();
        let err = diff_tree(&t, &tree_dir).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn output_diff_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        write_tree(&tree(), &out).unwrap();
        assert_eq!(diff_tree(&tree(), &out).unwrap(), "");

        let mut t = tree();
        t.insert(
            "haproxy.cfg".into(),
            OutputFile::public("global\n  maxconn 20\n"),
        );
        t.remove("maps/http.map");
        t.insert(
            "maps/https.map".into(),
            OutputFile::public("b.example.com be_edge_http:b:b\n"),
        );
        t.insert(
            "certs/ns:web.pem".into(),
            OutputFile::secret(format!(
                "{}{CERT}",
                KEY.replace("secretsecret", "othersecret")
            )),
        );
        let d = diff_tree(&t, &out).unwrap();
        assert!(d.contains("--- a/haproxy.cfg\n+++ b/haproxy.cfg\n"), "{d}");
        assert!(d.contains("-  maxconn 10\n+  maxconn 20\n"), "{d}");
        assert!(d.contains("--- a/maps/http.map\n+++ /dev/null\n"), "{d}");
        assert!(d.contains("-a.example.com be_http:a:a\n"), "{d}");
        assert!(d.contains("--- /dev/null\n+++ b/maps/https.map\n"), "{d}");
        assert!(
            d.contains("secret content of certs/ns:web.pem changed (redacted)\n"),
            "{d}"
        );
        assert!(!d.contains("othersecret"), "{d}");
        assert!(!d.contains("secretsecret"), "{d}");
        // Deterministic.
        assert_eq!(d, diff_tree(&t, &out).unwrap());
        assert!(diff_tree(&t, &tmp.path().join("missing")).is_err());
    }
}
