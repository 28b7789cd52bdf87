//! The generated file tree: what a renderer produces, its path rules, and
//! how it is shown. Writing it to disk and comparing it with a directory
//! are `routegen-host`'s (`tree`, `apply`).
//!
//! Contract:
//! - Paths are relative, `/`-separated, made of `A-Z a-z 0-9 . _ - :`
//!   components, never `.`/`..`/empty (see [`crate::escape::relative_path`]);
//!   anything else is refused before the disk is touched.
//! - [`print_tree`] never shows private keys unless asked ([`redact`]).

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// One file of the tree. The contents are shared, immutable bytes: a
/// renderer hands the same [`Arc`] again for a file that did not change
/// between two passes, and the applier hashes each distinct allocation
/// once (see `routegen_host::apply`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputFile {
    pub contents: Arc<[u8]>,
    /// Holds a private key: mode 0600, redacted when printed.
    pub secret: bool,
}

impl OutputFile {
    pub fn public(contents: impl Into<Vec<u8>>) -> Self {
        OutputFile::shared(Arc::from(contents.into()), false)
    }

    pub fn secret(contents: impl Into<Vec<u8>>) -> Self {
        OutputFile::shared(Arc::from(contents.into()), true)
    }

    /// A file whose bytes are (or may be) shared with another tree.
    pub fn shared(contents: Arc<[u8]>, secret: bool) -> Self {
        OutputFile { contents, secret }
    }

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.contents
    }
}

/// Relative path → file, in path order.
pub type OutputTree = BTreeMap<String, OutputFile>;

/// Empty file `write_tree` leaves in a directory it owns; ignored by
/// `diff_tree`.
pub const TREE_MARKER: &str = ".routegen-tree";

/// Why a tree could not be written or compared.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("{path}: {message}")]
    Refused { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Map an I/O error on `path` to [`OutputError::Io`].
pub fn io_error(path: &Path) -> impl FnOnce(io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// An [`OutputError::Refused`] for `path`.
pub fn refused(path: impl std::fmt::Display, message: impl Into<String>) -> OutputError {
    OutputError::Refused {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Check one tree path (see the module contract). No component may be the
/// marker's name: the applier leaves the marker at the root of every
/// directory it owns, including the shared copies of subdirectories.
pub fn validate_path(path: &str) -> Result<(), OutputError> {
    crate::escape::relative_path("output file path", path)
        .map(|_| ())
        .map_err(|e| refused(routegen_core::values::quote_for_message(path, 64), e.rule))?;
    if path.split('/').any(|c| c == TREE_MARKER) {
        return Err(refused(path, "is reserved for the tree marker"));
    }
    Ok(())
}

/// Directory of an applier's output directory holding the shared,
/// content-addressed copies of trees' subdirectories (see
/// `routegen_host::apply`).
pub const DIRS: &str = "dirs";

/// The key named by the target of a symbolic link the applier puts at the
/// top of a tree (`<tree>/<sub> -> ../../dirs/<key>`, key 64 lowercase hex
/// digits), or `None` for any other target: no other link is ever read
/// through.
pub fn dirs_link_key(target: &Path) -> Option<&str> {
    let key = target
        .to_str()?
        .strip_prefix("../../")?
        .strip_prefix(DIRS)?;
    let key = key.strip_prefix('/')?;
    is_dir_key(key).then_some(key)
}

/// 64 lowercase hex digits: the name of a content-addressed directory.
pub fn is_dir_key(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Check every path, and that no file is also a directory of another.
pub fn validate_tree(tree: &OutputTree) -> Result<(), OutputError> {
    for path in tree.keys() {
        validate_path(path)?;
    }
    for path in tree.keys() {
        let mut prefix = String::new();
        for component in path.split('/') {
            if !prefix.is_empty() {
                if tree.contains_key(&prefix) {
                    return Err(refused(
                        path,
                        format!("{prefix} is both a file and a directory"),
                    ));
                }
                prefix.push('/');
            }
            prefix.push_str(component);
        }
    }
    Ok(())
}

/// Replace the body of every PEM private key block (`-----BEGIN ... PRIVATE
/// KEY-----`) with `<redacted>`. A block without its END line is redacted
/// to the end of the text.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_key: Option<String> = None;
    for line in text.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\n', '\r']);
        match &in_key {
            Some(end) => {
                if bare.trim() == end {
                    out.push_str("<redacted>\n");
                    out.push_str(line);
                    in_key = None;
                }
            }
            None => {
                out.push_str(line);
                let t = bare.trim();
                if let Some(label) = t
                    .strip_prefix("-----BEGIN ")
                    .and_then(|r| r.strip_suffix("-----"))
                {
                    if label.ends_with("PRIVATE KEY") {
                        if !line.ends_with('\n') {
                            out.push('\n');
                        }
                        in_key = Some(format!("-----END {label}-----"));
                    }
                }
            }
        }
    }
    if in_key.is_some() {
        out.push_str("<redacted>\n");
    }
    out
}

/// File contents as text for display: private keys redacted unless
/// `show_secrets`.
pub fn shown(contents: &[u8], show_secrets: bool) -> String {
    let text = String::from_utf8_lossy(contents);
    if show_secrets {
        text.into_owned()
    } else {
        redact(&text)
    }
}

/// The whole tree as text: each file under a `# ==> path <==` header, in
/// path order, private keys redacted unless `show_secrets`.
pub fn print_tree(tree: &OutputTree, show_secrets: bool) -> String {
    let mut out = String::new();
    for (path, file) in tree {
        out.push_str("# ==> ");
        out.push_str(path);
        out.push_str(" <==\n");
        let text = shown(&file.contents, show_secrets);
        out.push_str(&text);
        if !text.is_empty() && !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{sample_tree as tree, CERT, KEY};

    #[test]
    fn output_dirs_link_key_accepts_only_the_applier_form() {
        let key = "0123456789abcdef".repeat(4);
        let ok = format!("../../dirs/{key}");
        assert_eq!(dirs_link_key(Path::new(&ok)), Some(key.as_str()));
        for bad in [
            format!("../../dirs/{}", key.to_uppercase()),
            format!("../../dirs/{}", &key[1..]),
            format!("../../dirs/{key}/"),
            format!("../../dirs//{key}"),
            format!("../../dirs/{key}/.."),
            format!("../../../dirs/{key}"),
            format!("/tmp/dirs/{key}"),
            format!("dirs/{key}"),
            format!("../../other/{key}"),
            format!("../../dirs/.staging-{key}"),
        ] {
            assert_eq!(dirs_link_key(Path::new(&bad)), None, "{bad}");
        }
        assert!(validate_path("certs/.routegen-tree").is_err());
        assert!(validate_path("a/.routegen-tree/b").is_err());
        assert!(validate_path("certs/.routegen-tree2").is_ok());
    }

    #[test]
    fn output_redaction() {
        let text = format!("before\n{KEY}{CERT}-----BEGIN EC PRIVATE KEY-----\nabc\n-----END EC PRIVATE KEY-----\nafter");
        let r = redact(&text);
        assert!(!r.contains("secretsecret") && !r.contains("abc"), "{r}");
        assert!(
            r.contains("-----BEGIN PRIVATE KEY-----\n<redacted>\n-----END PRIVATE KEY-----\n"),
            "{r}"
        );
        assert!(
            r.contains(
                "-----BEGIN EC PRIVATE KEY-----\n<redacted>\n-----END EC PRIVATE KEY-----\n"
            ),
            "{r}"
        );
        assert!(
            r.contains(CERT) && r.starts_with("before\n") && r.ends_with("after"),
            "{r}"
        );
        // Unterminated block: redacted to the end.
        let r = redact("-----BEGIN ENCRYPTED PRIVATE KEY-----\nxyz\nmore");
        assert_eq!(r, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n<redacted>\n");
        assert_eq!(redact(CERT), CERT);
    }

    #[test]
    fn output_print_tree() {
        let shown = print_tree(&tree(), false);
        assert!(
            shown.starts_with(
                "# ==> certs/ns:web.pem <==\n-----BEGIN PRIVATE KEY-----\n<redacted>\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("# ==> haproxy.cfg <==\nglobal\n"));
        assert!(shown.contains("# ==> maps/http.map <==\na.example.com be_http:a:a\n"));
        assert!(!shown.contains("secretsecret"));
        let secrets = print_tree(&tree(), true);
        assert!(secrets.contains("secretsecret"));
        let mut t = OutputTree::new();
        t.insert("empty.map".into(), OutputFile::public(""));
        t.insert("nonl.txt".into(), OutputFile::public("x"));
        assert_eq!(
            print_tree(&t, false),
            "# ==> empty.map <==\n# ==> nonl.txt <==\nx\n"
        );
    }
}
