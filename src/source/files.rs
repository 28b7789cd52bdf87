//! One-shot manifest loading for `check`, `render` and `diff`.
//!
//! Accepts files, directories (recursive; `*.yaml`, `*.yml`, `*.json`;
//! hidden entries such as ConfigMap `..data` links are skipped) and `-` for
//! stdin. A file may hold several YAML documents, JSON, and `kind: List`
//! wrappers; Routes, Services, EndpointSlices and Namespaces may come in any
//! order. Contract:
//! - a document that is not YAML/JSON, or not an object with `kind`, fails
//!   the whole load with file name, document number and the parser's message;
//! - a Route whose fields have the wrong types is kept as an undecodable
//!   Route (admission rejects it with `ValidationFailed`) so one bad Route
//!   never hides the others; other kinds with wrong types are skipped with a
//!   warning;
//! - unknown kinds are skipped with a warning;
//! - objects without a namespace get the default namespace.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::snapshot::UndecodableRoute;
use crate::model::{ObjectKey, Route, Snapshot};

/// Largest manifest file accepted (bytes). Larger input is refused with a
/// clear error rather than exhausting memory.
pub const MAX_FILE_BYTES: usize = 256 * 1024 * 1024;

/// What a load produced: the objects and the non-fatal findings.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Snapshot,
    /// One line each: file, document, what was skipped or assumed.
    pub warnings: Vec<String>,
}

/// Why input could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: cannot read: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{path}: document {document}: {message}")]
    Document {
        path: String,
        document: usize,
        message: String,
    },
}

/// Where a document came from, for messages.
#[derive(Clone, Debug)]
struct Origin<'a> {
    path: &'a str,
    document: usize,
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.path, self.document)
    }
}

/// Load every manifest under `paths` (`-` = stdin) into one snapshot.
pub fn load_paths(paths: &[PathBuf], default_namespace: &str) -> Result<Loaded, LoadError> {
    let mut loader = Loader::new(default_namespace);
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = Vec::new();
            std::io::stdin()
                .take(MAX_FILE_BYTES as u64 + 1)
                .read_to_end(&mut text)
                .map_err(|source| LoadError::Io {
                    path: "<stdin>".into(),
                    source,
                })?;
            loader.add_bytes("<stdin>", &text, false)?;
        } else {
            for file in manifest_files(path)? {
                let bytes = read_capped(&file)?;
                let is_json = file.extension().is_some_and(|e| e == "json");
                loader.add_bytes(&file.display().to_string(), &bytes, is_json)?;
            }
        }
    }
    Ok(loader.finish())
}

/// Load manifests from a string (tests, stdin-like callers).
pub fn load_str(
    source_name: &str,
    text: &str,
    default_namespace: &str,
) -> Result<Loaded, LoadError> {
    let mut loader = Loader::new(default_namespace);
    loader.add_bytes(source_name, text.as_bytes(), false)?;
    Ok(loader.finish())
}

/// The files a path stands for: itself, or the manifests below a directory
/// in lexical order.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(path)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(|e| LoadError::File {
            path: e
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| path.display().to_string()),
            message: format!("cannot walk directory: {e}"),
        })?;
        let is_manifest = entry
            .path()
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if entry.file_type().is_file() && is_manifest {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

fn read_capped(path: &Path) -> Result<Vec<u8>, LoadError> {
    let io_err = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    Ok(bytes)
}

/// Accumulates objects from many files, keeping the first of duplicates.
struct Loader<'a> {
    default_namespace: &'a str,
    routes: BTreeMap<ObjectKey, (Route, String)>,
    undecodable: BTreeMap<ObjectKey, (UndecodableRoute, String)>,
    services: BTreeMap<ObjectKey, (Service, String)>,
    slices: BTreeMap<ObjectKey, (EndpointSlice, String)>,
    namespaces: BTreeMap<String, (Namespace, String)>,
    warnings: Vec<String>,
}

impl<'a> Loader<'a> {
    fn new(default_namespace: &'a str) -> Self {
        Self {
            default_namespace,
            routes: BTreeMap::new(),
            undecodable: BTreeMap::new(),
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }

    fn add_bytes(&mut self, path: &str, bytes: &[u8], is_json: bool) -> Result<(), LoadError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(LoadError::File {
                path: path.into(),
                message: format!(
                    "larger than the {MAX_FILE_BYTES}-byte limit for one manifest file"
                ),
            });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| LoadError::File {
            path: path.into(),
            message: format!("not UTF-8 text: {e}"),
        })?;
        let documents = if is_json {
            let value: Value = serde_json::from_str(text).map_err(|e| LoadError::Document {
                path: path.into(),
                document: 1,
                message: format!("invalid JSON: {e}"),
            })?;
            vec![(1, value)]
        } else {
            parse_yaml_documents(path, text)?
        };
        for (document, value) in documents {
            let origin = Origin { path, document };
            self.add_value(&origin, value, 0)?;
        }
        Ok(())
    }

    fn add_value(
        &mut self,
        origin: &Origin<'_>,
        value: Value,
        depth: usize,
    ) -> Result<(), LoadError> {
        let doc_err = |message: String| LoadError::Document {
            path: origin.path.into(),
            document: origin.document,
            message,
        };
        let Value::Object(map) = &value else {
            return Err(doc_err(format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                json_type_name(&value)
            )));
        };
        let kind = match map.get("kind") {
            Some(Value::String(kind)) if !kind.is_empty() => kind.clone(),
            Some(other) => {
                return Err(doc_err(format!(
                    "field kind: expected a non-empty string, found {}",
                    json_type_name(other)
                )))
            }
            None => return Err(doc_err("field kind is missing".into())),
        };
        let api_version = map
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();

        if kind == "List" || (kind.ends_with("List") && map.contains_key("items")) {
            if depth > 0 {
                return Err(doc_err("nested lists are not supported".into()));
            }
            let Some(Value::Array(items)) = map.get("items") else {
                return Err(doc_err(format!("{kind}: field items must be a list")));
            };
            for item in items.clone() {
                self.add_value(origin, item, depth + 1)?;
            }
            return Ok(());
        }

        match (kind.as_str(), api_version.as_str()) {
            ("Route", "route.openshift.io/v1" | "v1") => self.add_route(origin, value),
            ("Service", "v1") => {
                if let Some((key, svc)) = self.decode::<Service>(origin, "Service", value) {
                    insert_first(
                        &mut self.services,
                        &mut self.warnings,
                        "Service",
                        key,
                        svc,
                        origin,
                    );
                }
            }
            ("EndpointSlice", "discovery.k8s.io/v1") => {
                if let Some((key, slice)) =
                    self.decode::<EndpointSlice>(origin, "EndpointSlice", value)
                {
                    insert_first(
                        &mut self.slices,
                        &mut self.warnings,
                        "EndpointSlice",
                        key,
                        slice,
                        origin,
                    );
                }
            }
            ("Namespace", "v1") => match serde_path_to_error::deserialize::<_, Namespace>(value) {
                Ok(ns) => {
                    let name = ns.metadata.name.clone().unwrap_or_default();
                    if name.is_empty() {
                        self.warnings
                            .push(format!("{origin}: Namespace without metadata.name skipped"));
                    } else {
                        match self.namespaces.entry(name) {
                            std::collections::btree_map::Entry::Occupied(e) => {
                                self.warnings.push(format!(
                                    "{origin}: duplicate Namespace {}; first definition kept",
                                    e.key()
                                ))
                            }
                            std::collections::btree_map::Entry::Vacant(e) => {
                                e.insert((ns, origin.to_string()));
                            }
                        }
                    }
                }
                Err(e) => self.warnings.push(format!(
                    "{origin}: Namespace skipped: field {}: {}",
                    e.path(),
                    e.inner()
                )),
            },
            _ => self.warnings.push(format!(
                "{origin}: kind {kind} (apiVersion {}) is not used by routegen; skipped",
                if api_version.is_empty() {
                    "<none>"
                } else {
                    &api_version
                }
            )),
        }
        Ok(())
    }

    /// Decode a namespaced object, filling in the default namespace; a
    /// type error skips the object with a warning naming the field.
    fn decode<T>(&mut self, origin: &Origin<'_>, kind: &str, value: Value) -> Option<(ObjectKey, T)>
    where
        T: DeserializeOwned
            + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    {
        let (ns, name) = meta_names(&value);
        let label = format!(
            "{kind} {}/{}",
            ns.as_deref().unwrap_or(self.default_namespace),
            name.as_deref().unwrap_or("<unnamed>")
        );
        let mut object: T = match serde_path_to_error::deserialize(value) {
            Ok(object) => object,
            Err(e) => {
                self.warnings.push(format!(
                    "{origin}: {label} skipped: field {}: {}",
                    e.path(),
                    e.inner()
                ));
                return None;
            }
        };
        let meta = object.metadata_mut();
        if meta.name.as_deref().unwrap_or("").is_empty() {
            self.warnings
                .push(format!("{origin}: {kind} without metadata.name skipped"));
            return None;
        }
        if meta.namespace.as_deref().unwrap_or("").is_empty() {
            meta.namespace = Some(self.default_namespace.to_string());
        }
        let key = crate::model::snapshot::key_of(meta);
        Some((key, object))
    }

    fn add_route(&mut self, origin: &Origin<'_>, mut value: Value) {
        let (ns, name) = meta_names(&value);
        let namespace = ns
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.default_namespace.to_string());
        let name = match name.filter(|n| !n.is_empty()) {
            Some(name) => name,
            None => {
                let generated = generated_name(origin);
                self.warnings.push(format!(
                    "{origin}: Route without metadata.name; named {generated}"
                ));
                generated
            }
        };
        let key = ObjectKey::new(namespace.clone(), name.clone());
        if self.routes.contains_key(&key) || self.undecodable.contains_key(&key) {
            self.warnings.push(format!(
                "{origin}: duplicate Route {key}; the first definition is kept"
            ));
            return;
        }
        // Fill in identity before decoding so a missing metadata block or
        // name is not a decoding error.
        if let Value::Object(map) = &mut value {
            let meta = map
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            if let Value::Object(meta) = meta {
                meta.insert("namespace".into(), Value::String(namespace.clone()));
                meta.insert("name".into(), Value::String(name.clone()));
            }
        }
        match serde_path_to_error::deserialize::<_, Route>(&value) {
            Ok(route) => {
                self.routes.insert(key, (route, origin.to_string()));
            }
            Err(e) => {
                let message = format!("field {}: {}", e.path(), e.inner());
                let mut metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                    value
                        .get("metadata")
                        .and_then(|m| serde_json::from_value(m.clone()).ok())
                        .unwrap_or_default();
                metadata.namespace = Some(namespace);
                metadata.name = Some(name);
                let route = UndecodableRoute { metadata, message };
                self.undecodable.insert(key, (route, origin.to_string()));
            }
        }
    }

    fn finish(self) -> Loaded {
        Loaded {
            snapshot: Snapshot {
                routes: self.routes.into_values().map(|(r, _)| r).collect(),
                undecodable_routes: self.undecodable.into_values().map(|(r, _)| r).collect(),
                services: self.services.into_values().map(|(s, _)| s).collect(),
                endpoint_slices: self.slices.into_values().map(|(s, _)| s).collect(),
                namespaces: self.namespaces.into_values().map(|(n, _)| n).collect(),
            },
            warnings: self.warnings,
        }
    }
}

fn insert_first<T>(
    map: &mut BTreeMap<ObjectKey, (T, String)>,
    warnings: &mut Vec<String>,
    kind: &str,
    key: ObjectKey,
    object: T,
    origin: &Origin<'_>,
) {
    if let Some((_, first)) = map.get(&key) {
        warnings.push(format!(
            "{origin}: duplicate {kind} {key}; the first definition ({first}) is kept"
        ));
    } else {
        map.insert(key, (object, origin.to_string()));
    }
}

/// `metadata.namespace` and `metadata.name` if they are strings.
fn meta_names(value: &Value) -> (Option<String>, Option<String>) {
    let meta = value.get("metadata");
    let field = |f: &str| {
        meta.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    (field("namespace"), field("name"))
}

/// A DNS-label name for a Route that has none: `unnamed-<file stem>-<doc>`.
fn generated_name(origin: &Origin<'_>) -> String {
    let stem = Path::new(origin.path)
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut cleaned: String = stem
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    cleaned.truncate(40);
    let cleaned = cleaned.trim_matches('-');
    format!("unnamed-{cleaned}-{}", origin.document)
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Split a YAML stream into documents and parse each one. A line starting
/// with `---` at column 0 starts a document and `...` ends one (YAML forbids
/// both inside content at column 0, so splitting on them is exact); this
/// gives exact document numbers and keeps one document's error from
/// hiding where it is. Empty documents are skipped but counted.
fn parse_yaml_documents(path: &str, text: &str) -> Result<Vec<(usize, Value)>, LoadError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut started = false;
    let mut ended = false;
    for line in text.split_inclusive('\n') {
        let marker = |m: &str| {
            line.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        };
        if marker("---") {
            if started || has_content(&current) {
                chunks.push(std::mem::take(&mut current));
            }
            current.clear();
            current.push_str(&line[3..]);
            started = true;
            ended = false;
        } else if marker("...") {
            if !ended {
                chunks.push(std::mem::take(&mut current));
            }
            ended = true;
        } else if !ended || has_content(line) {
            if ended {
                started = true;
                ended = false;
            }
            current.push_str(line);
        }
    }
    if !ended && (started || has_content(&current)) {
        chunks.push(current);
    }

    let mut documents = Vec::new();
    for (index, chunk) in chunks.iter().enumerate() {
        if !has_content(chunk) {
            continue;
        }
        let options = serde_saphyr::options! {
            budget: serde_saphyr::budget! {
                max_documents: 1,
                max_nodes: 200_000_000,
                max_events: 400_000_000,
                max_total_scalar_bytes: MAX_FILE_BYTES,
            },
        };
        match serde_saphyr::from_str_with_options::<Value>(chunk, options) {
            Ok(Value::Null) => {}
            Ok(value) => documents.push((index + 1, value)),
            Err(e) => {
                let message = e.without_snippet().to_string();
                return Err(LoadError::Document {
                    path: path.into(),
                    document: index + 1,
                    message: format!("invalid YAML: {}", message.trim()),
                });
            }
        }
    }
    Ok(documents)
}

/// Whether a piece of YAML has anything but blank lines, comments and directives.
fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !l.starts_with('%')
    })
}
