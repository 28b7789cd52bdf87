//! The small configuration that validates a change: [`validation_subset`]
//! cuts a rendered HAProxy tree down to the parts `haproxy -c` must see
//! to check a known set of backend sections and certificates.
//!
//! # When a subset check stands for a full one
//! The caller owns this argument: a tree `new` may be validated through
//! its subset when an *already fully validated* tree `old` differs from
//! `new` only in (a) backend sections, every added or changed one of
//! which is named, (b) certificate files and their crt-list lines, every
//! added or changed one of which is named, and (c) removals of either.
//! `haproxy.cfg`, `backends/default.cfg`, the maps and every other kept
//! file are then those of `old` or checked again in full by the subset;
//! an unnamed section or certificate is byte-identical to one HAProxy
//! already accepted, and a backend section references nothing outside
//! itself but CA and allowlist files (the frontends reach Route backends
//! only through map values, which `haproxy -c` does not resolve).
//! What a subset cannot see: facts that only exist across the whole tree
//! (two sections with one name, global limits). The renderer guarantees
//! the first; the second is out of scope.
//!
//! # The format parsed (our own renderer's, nothing else)
//! - `backends/default.cfg` is kept whole: it sets `default-path parent`
//!   for every later file of `backends/` and holds `be_no_route` and
//!   `be_terminate`.
//! - Every other `backends/*.cfg` is a chunk file: a header (the lines
//!   before the first section; today one comment line, kept verbatim so
//!   any `global` line it might carry keeps its effect), then sections. A
//!   section is a column-0 `backend <name>` line, the comment lines right
//!   above it (`# route ...`) and every following line up to the next
//!   section; its body lines are indented, so a column-0 line other than
//!   a comment, a blank line or a `backend` line is refused as
//!   [`SubsetError::Malformed`] rather than guessed at. Subset chunk
//!   files keep their paths, so HAProxy loads them in the same order
//!   after `default.cfg`. A chunk file left without sections is dropped.
//!   Other files under `backends/` are not configuration (HAProxy loads
//!   only `*.cfg`) and are dropped.
//! - `cas/`: only the files a kept section names (any whitespace-separated
//!   token of a kept section that is a `cas/` path of the tree, which
//!   covers `ca-file <path>`). HAProxy reads a CA file only for a server
//!   line naming it, so unreferenced ones cannot change the verdict, and
//!   a tree has one per reencrypt Route (hundreds at 10,000 Routes): each
//!   file written costs an fsync in the checker's scratch directory.
//! - `crt-list.txt`: the lines whose first token (the certificate file)
//!   is named, in their order; `certs/default.pem` (named by the bind
//!   line) and the named certificate files. Other `certs/` files are
//!   dropped.
//! - Every other file (`haproxy.cfg`, `maps/*`, `allowlists/*`) is kept.

use std::collections::BTreeSet;

use super::{BACKENDS_DIR, CRT_LIST, DEFAULT_BACKENDS_FILE, DEFAULT_CERT_FILE};
use crate::output::{OutputFile, OutputTree};

/// Directory of the Route certificates (`certs/<ns>:<name>.pem`, see
/// `routegen_core::plan::tls`).
const CERTS_DIR: &str = "certs/";
/// Directory of the reencrypt destination CAs (`cas/*.pem`).
const CAS_DIR: &str = "cas/";

/// Why a subset could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubsetError {
    /// A named backend has no section in the tree.
    #[error("backend {0} is not in the tree")]
    MissingBackend(String),
    /// A named certificate is not a `certs/` file of the tree.
    #[error("certificate {0} is not in the tree")]
    MissingCertificate(String),
    /// A file is not in the format this module parses (see the module
    /// documentation).
    #[error("{path}: {message}")]
    Malformed { path: String, message: String },
}

/// The validation subset of `tree` for the backend sections named in
/// `backends` (backend names, e.g. `be_edge:ns:name`) and the
/// certificates named in `certificates` (tree paths, e.g.
/// `certs/ns:name.pem`); see the module documentation for what is kept
/// and when checking it stands for checking `tree`.
///
/// Every kept file shares its bytes with `tree` (same `Arc`) except the
/// rebuilt chunk files and `crt-list.txt`. With every backend and
/// certificate named, the subset's backend sections and crt-list lines
/// are exactly the tree's. Errors: a named backend or certificate absent
/// from the tree, a file not in the rendered format, two sections with
/// one name.
pub fn validation_subset(
    tree: &OutputTree,
    backends: &BTreeSet<String>,
    certificates: &BTreeSet<String>,
) -> Result<OutputTree, SubsetError> {
    let mut subset = OutputTree::new();
    // Backends `default.cfg` declares: always present, never an error to name.
    let mut found: BTreeSet<&str> = BTreeSet::new();
    let mut kept_sections: Vec<&str> = Vec::new();
    let backends_prefix = format!("{BACKENDS_DIR}/");
    for (path, file) in tree {
        if path == DEFAULT_BACKENDS_FILE {
            for line in text(path, file)?.lines() {
                if let Some(name) = backend_name(line) {
                    found.insert(name);
                }
            }
            subset.insert(path.clone(), file.clone());
        } else if let Some(rest) = path.strip_prefix(&backends_prefix) {
            if rest.contains('/') {
                return Err(malformed(path, "a subdirectory of backends/"));
            }
            if !rest.ends_with(".cfg") {
                continue;
            }
            let chunk = parse_chunk(path, text(path, file)?)?;
            let mut out = String::from(chunk.header);
            let mut any = false;
            for section in &chunk.sections {
                if !found.insert(section.name) {
                    return Err(malformed(
                        path,
                        format!("a second section for backend {}", section.name),
                    ));
                }
                if backends.contains(section.name) {
                    out.push_str(section.text);
                    kept_sections.push(section.text);
                    any = true;
                }
            }
            if any {
                subset.insert(path.clone(), OutputFile::public(out));
            }
        } else if path == CRT_LIST || path.starts_with(CERTS_DIR) || path.starts_with(CAS_DIR) {
            // Chosen below from the names and the kept sections.
        } else {
            subset.insert(path.clone(), file.clone());
        }
    }
    if let Some(missing) = backends.iter().find(|b| !found.contains(b.as_str())) {
        return Err(SubsetError::MissingBackend(missing.clone()));
    }

    // CA files the kept sections name.
    for token in kept_sections.iter().flat_map(|s| s.split_whitespace()) {
        if let Some((path, file)) = tree
            .get_key_value(token)
            .filter(|(p, _)| p.starts_with(CAS_DIR))
        {
            subset.insert(path.clone(), file.clone());
        }
    }

    // Certificates: the default one, the named ones, their crt-list lines.
    for name in certificates {
        match tree.get(name) {
            Some(file) if name.starts_with(CERTS_DIR) => {
                subset.insert(name.clone(), file.clone());
            }
            _ => return Err(SubsetError::MissingCertificate(name.clone())),
        }
    }
    if let Some(file) = tree.get(DEFAULT_CERT_FILE) {
        subset.insert(DEFAULT_CERT_FILE.to_string(), file.clone());
    }
    if let Some(file) = tree.get(CRT_LIST) {
        let lines = text(CRT_LIST, file)?.split_inclusive('\n').filter(|line| {
            line.split_whitespace()
                .next()
                .is_some_and(|cert| certificates.contains(cert))
        });
        subset.insert(
            CRT_LIST.to_string(),
            OutputFile::public(lines.collect::<String>()),
        );
    }
    Ok(subset)
}

/// A chunk file cut into its header and sections; the pieces concatenated
/// are the file.
#[derive(Debug)]
struct Chunk<'a> {
    header: &'a str,
    sections: Vec<Section<'a>>,
}

#[derive(Debug)]
struct Section<'a> {
    name: &'a str,
    /// Comment lines, the `backend` line, the body, trailing blank lines.
    text: &'a str,
}

fn parse_chunk<'a>(path: &str, contents: &'a str) -> Result<Chunk<'a>, SubsetError> {
    // Byte offset and text of each line (with its newline).
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in contents.split_inclusive('\n') {
        lines.push((offset, line));
        offset += line.len();
    }
    // (start offset, name) of each section.
    let mut starts: Vec<(usize, &str)> = Vec::new();
    for (i, (_, line)) in lines.iter().enumerate() {
        let Some(name) = backend_name(line) else {
            let column0 = !line.starts_with([' ', '\t', '#', '\n', '\r']);
            if column0 && !starts.is_empty() {
                return Err(malformed(
                    path,
                    format!(
                        "column-0 line {:?} inside the section of backend {}",
                        line.trim_end(),
                        starts.last().map_or("", |s| s.1)
                    ),
                ));
            }
            continue;
        };
        // The comment lines right above belong to this section.
        let mut first = i;
        while first > 0 && lines[first - 1].1.starts_with('#') {
            first -= 1;
        }
        starts.push((lines[first].0, name));
    }
    let header_end = starts.first().map_or(contents.len(), |s| s.0);
    let sections = starts
        .iter()
        .enumerate()
        .map(|(k, &(start, name))| {
            let end = starts.get(k + 1).map_or(contents.len(), |s| s.0);
            Section {
                name,
                text: &contents[start..end],
            }
        })
        .collect();
    Ok(Chunk {
        header: &contents[..header_end],
        sections,
    })
}

/// The name a column-0 `backend <name>` line declares.
fn backend_name(line: &str) -> Option<&str> {
    let mut words = line.strip_prefix("backend ")?.split_whitespace();
    words.next()
}

fn text<'a>(path: &str, file: &'a OutputFile) -> Result<&'a str, SubsetError> {
    std::str::from_utf8(file.bytes()).map_err(|_| malformed(path, "not UTF-8"))
}

fn malformed(path: &str, message: impl Into<String>) -> SubsetError {
    SubsetError::Malformed {
        path: path.to_string(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests;
