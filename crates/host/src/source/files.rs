//! One-shot manifest loading for `check`, `render` and `diff`.
//!
//! Accepts files, directories (recursive; `*.yaml`, `*.yml`, `*.json`;
//! hidden entries such as ConfigMap `..data` links are skipped) and `-` for
//! stdin. A file may hold several YAML documents, JSON, and `kind: List`
//! wrappers; Routes, Services, EndpointSlices and Namespaces may come in any
//! order. Contract:
//! - a document that is not YAML/JSON, or not an object with `kind`, fails
//!   the whole load with file name, document number and the parser's message
//!   (whose line is counted from the start of the file);
//! - unknown or misplaced fields of Routes, Services and EndpointSlices
//!   (not in the real API schema: see `files/fields.rs`) are warnings
//!   naming the file line, the object and the field (with the field
//!   probably meant), or with [`LoadOptions::strict`] errors that refuse
//!   the object;
//! - a Route whose fields have the wrong types is kept as an undecodable
//!   Route (admission rejects it with `ValidationFailed`) so one bad Route
//!   never hides the others; other kinds with wrong types are skipped with a
//!   warning;
//! - unknown kinds are skipped with a warning;
//! - objects without a namespace get the default namespace.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use std::sync::Arc;

use serde_json::Value;

use routegen_core::model::snapshot::UndecodableRoute;
use routegen_core::model::{self, ObjectKey, Route, Snapshot};

mod cache;
mod fields;
pub use cache::{DirLoader, FailingFile};

/// Largest manifest file accepted (bytes). Larger input is refused with a
/// clear error rather than exhausting memory.
pub const MAX_FILE_BYTES: usize = 256 * 1024 * 1024;

/// Most objects (documents and `kind: List` items, of any kind) one load
/// accepts, over all files. More is refused with a clear error naming the
/// file and the limit, before the surplus is decoded.
pub const MAX_OBJECTS: usize = 500_000;

/// What a load produced: the objects and the non-fatal findings.
#[derive(Debug, Default)]
pub struct Loaded {
    pub snapshot: Snapshot,
    /// One line each: file, document, what was skipped or assumed.
    pub warnings: Vec<String>,
    /// Findings that refused an object (only with [`LoadOptions::strict`]:
    /// unknown fields), one line each as for `warnings`.
    pub errors: Vec<String>,
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
        /// The line of the file the problem is on (a syntax error's), or
        /// the document starts on, when known (see [`LoadError::located`]).
        line: Option<usize>,
    },
}

impl LoadError {
    /// The message with the line of the file after its name when known
    /// (`m.yaml:11: document 3: invalid YAML: …`), as the loader's
    /// warnings name places.
    pub fn located(&self) -> String {
        match self {
            LoadError::Document {
                path,
                document,
                message,
                line: Some(line),
            } => format!("{path}:{line}: document {document}: {message}"),
            other => other.to_string(),
        }
    }
}

/// Where a document came from, for messages.
#[derive(Clone, Debug)]
struct Origin<'a> {
    path: &'a str,
    document: usize,
    /// The document's text and the line of the file it starts on (for the
    /// line of a field in messages), when known.
    source: Option<(&'a str, usize)>,
    /// The index of the object in the document's `kind: List` `items`.
    item: Option<usize>,
}

impl<'a> Origin<'a> {
    /// Document `document` of the file `path`, with no text at hand.
    fn new(path: &'a str, document: usize) -> Self {
        Origin {
            path,
            document,
            source: None,
            item: None,
        }
    }
}

/// Where a kept object came from (an [`Origin`] that shares its file
/// name), for the duplicate warnings of later definitions.
#[derive(Clone, Debug)]
struct Place(Arc<str>, usize);

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.0, self.1)
    }
}

impl fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.path, self.document)
    }
}

/// How a load reads its input.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions<'a> {
    /// Namespace for objects that have none.
    pub default_namespace: &'a str,
    /// Unknown or misplaced fields of Routes, Services and EndpointSlices
    /// refuse the object (`check --strict`; [`Loaded::errors`]) instead of
    /// being warned about ([`Loaded::warnings`]): such a Route is kept as
    /// undecodable (admission rejects it with `ValidationFailed`), such a
    /// Service or EndpointSlice is left out.
    pub strict: bool,
}

impl<'a> LoadOptions<'a> {
    /// Unknown fields warned about, objects without a namespace in
    /// `default_namespace`.
    pub fn new(default_namespace: &'a str) -> Self {
        LoadOptions {
            default_namespace,
            strict: false,
        }
    }
}

/// Load every manifest under `paths` (`-` = stdin) into one snapshot,
/// warning about unknown fields.
pub fn load_paths(paths: &[PathBuf], default_namespace: &str) -> Result<Loaded, LoadError> {
    load_paths_with(paths, LoadOptions::new(default_namespace))
}

/// Load every manifest under `paths` (`-` = stdin) into one snapshot.
pub fn load_paths_with(paths: &[PathBuf], options: LoadOptions<'_>) -> Result<Loaded, LoadError> {
    let mut loader = Loader::new(options);
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
    let mut loader = Loader::new(LoadOptions::new(default_namespace));
    loader.add_bytes(source_name, text.as_bytes(), false)?;
    Ok(loader.finish())
}

/// A manifest's name: what the walk reads (`*.yaml`, `*.yml`, `*.json`).
pub(crate) fn is_manifest_name(path: &Path) -> bool {
    matches!(
        path.extension().and_then(std::ffi::OsStr::to_str),
        Some("yaml" | "yml" | "json")
    )
}

/// A manifest's name under `root` outside hidden (and so `..`) entries:
/// what the walk of `root` lists when it is a regular file.
pub(crate) fn is_plain_manifest_name(root: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(root) else {
        return false;
    };
    let plain_names = rel.components().all(|c| match c {
        std::path::Component::Normal(n) => !n.to_string_lossy().starts_with('.'),
        _ => false,
    });
    plain_names && is_manifest_name(path)
}

/// A regular file, not a symlink to one.
pub(crate) fn is_regular_file(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
}

/// The files a path stands for: itself, or the manifests below a directory
/// in lexical order.
fn manifest_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    manifest_files_and_links(path).map(|(files, _)| files)
}

/// [`manifest_files`], and whether the walk followed a symlink (below
/// `path`) to get there: a change behind a link is not seen under the
/// path the walk lists.
fn manifest_files_and_links(path: &Path) -> Result<(Vec<PathBuf>, bool), LoadError> {
    let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        return Ok((vec![path.to_path_buf()], false));
    }
    let mut files = Vec::new();
    let mut links = false;
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
        links |= entry.depth() > 0 && entry.path_is_symlink();
        if entry.file_type().is_file() && is_manifest_name(entry.path()) {
            files.push(entry.into_path());
        }
    }
    Ok((files, links))
}

fn read_capped(path: &Path) -> Result<Vec<u8>, LoadError> {
    let io_err = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    // A regular file's size is known: refuse an oversized one before
    // reading it (pipes and the like are still capped while reading).
    let meta = file.metadata().map_err(io_err)?;
    if meta.is_file() && meta.len() > MAX_FILE_BYTES as u64 {
        return Err(LoadError::File {
            path: path.display().to_string(),
            message: format!("larger than the {MAX_FILE_BYTES}-byte limit for one manifest file"),
        });
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err)?;
    Ok(bytes)
}

/// Accumulates objects from many files, keeping the first of duplicates.
struct Loader<'a> {
    options: LoadOptions<'a>,
    routes: BTreeMap<ObjectKey, (Arc<Route>, Place)>,
    undecodable: BTreeMap<ObjectKey, (UndecodableRoute, Place)>,
    services: BTreeMap<ObjectKey, (Arc<model::Service>, Place)>,
    slices: BTreeMap<ObjectKey, (Arc<model::EndpointSlice>, Place)>,
    secrets: BTreeMap<ObjectKey, (Arc<Secret>, Place)>,
    namespaces: BTreeMap<String, (Arc<Namespace>, Place)>,
    warnings: Vec<String>,
    errors: Vec<String>,
    /// Objects absorbed so far (see [`MAX_OBJECTS`]).
    objects: usize,
    /// Some object was defined twice (the first definition kept).
    duplicates: bool,
    /// Parse a large YAML stream on rayon's pool (off: on this thread).
    parallel: bool,
}

/// What a document contributes, in document order: decoded objects and
/// warnings. Producing items is pure (any thread); [`Loader::absorb`]
/// adds them in order, so duplicates and warnings come out exactly as in a
/// sequential load.
#[derive(Clone, Debug)]
enum Item {
    Route(ObjectKey, Arc<Route>),
    Undecodable(ObjectKey, Box<UndecodableRoute>),
    Service(ObjectKey, Arc<model::Service>),
    Slice(ObjectKey, Arc<model::EndpointSlice>),
    Secret(ObjectKey, Arc<Secret>),
    Namespace(String, Arc<Namespace>),
    Warning(String),
    /// A finding that refused an object ([`LoadOptions::strict`]).
    Error(String),
}

/// One file's documents after parsing and decoding: `(document number,
/// items)` in order. Pure data, so a [`DirLoader`] can keep it for a file
/// that has not changed.
type Documents = Vec<(usize, Vec<Item>)>;

/// One YAML document after parsing and decoding.
enum Outcome {
    /// Blank, comments only, or `null`.
    Empty,
    /// Not YAML: fails the load (the first such document in order wins,
    /// before any other document's error).
    Syntax(LoadError),
    /// Parsed: the items, or why the document is not a usable object.
    Parsed(Result<Vec<Item>, LoadError>),
}

/// Documents decoded by one rayon task at least (large enough to keep
/// hand-over cheap, small enough to balance uneven documents).
const BATCH: usize = 16;
/// Below this many documents one thread does all the work.
const PARALLEL_MIN_DOCUMENTS: usize = 64;

impl<'a> Loader<'a> {
    fn new(options: LoadOptions<'a>) -> Self {
        Self {
            options,
            routes: BTreeMap::new(),
            undecodable: BTreeMap::new(),
            services: BTreeMap::new(),
            slices: BTreeMap::new(),
            secrets: BTreeMap::new(),
            namespaces: BTreeMap::new(),
            warnings: Vec::new(),
            errors: Vec::new(),
            objects: 0,
            duplicates: false,
            parallel: true,
        }
    }

    fn add_bytes(&mut self, path: &str, bytes: &[u8], is_json: bool) -> Result<(), LoadError> {
        let documents = parse_file(path, bytes, is_json, &self.options, self.parallel)?;
        self.absorb_file(path, documents)
    }

    /// Add one file's documents in order.
    fn absorb_file(&mut self, path: &str, documents: Documents) -> Result<(), LoadError> {
        let file: Arc<str> = Arc::from(path);
        for (document, items) in documents {
            let place = Place(Arc::clone(&file), document);
            self.absorb(&Origin::new(path, document), &place, items)?;
        }
        Ok(())
    }

    /// Add one document's items in order, keeping the first of duplicates.
    fn absorb(
        &mut self,
        origin: &Origin<'_>,
        place: &Place,
        items: Vec<Item>,
    ) -> Result<(), LoadError> {
        let objects = items
            .iter()
            .filter(|i| !matches!(i, Item::Warning(_) | Item::Error(_)))
            .count();
        self.objects += objects;
        if self.objects > MAX_OBJECTS {
            return Err(too_many_objects(origin.path, Some(origin.document)));
        }
        for item in items {
            match item {
                Item::Warning(warning) => self.warnings.push(warning),
                Item::Error(error) => self.errors.push(error),
                Item::Route(key, route) => {
                    if self.is_duplicate_route(origin, &key) {
                        continue;
                    }
                    self.routes.insert(key, (route, place.clone()));
                }
                Item::Undecodable(key, route) => {
                    if self.is_duplicate_route(origin, &key) {
                        continue;
                    }
                    self.undecodable.insert(key, (*route, place.clone()));
                }
                Item::Service(key, svc) => {
                    self.duplicates |= insert_first(
                        &mut self.services,
                        &mut self.warnings,
                        "Service",
                        key,
                        svc,
                        (origin, place),
                    )
                }
                Item::Slice(key, slice) => {
                    self.duplicates |= insert_first(
                        &mut self.slices,
                        &mut self.warnings,
                        "EndpointSlice",
                        key,
                        slice,
                        (origin, place),
                    )
                }
                Item::Secret(key, secret) => {
                    self.duplicates |= insert_first(
                        &mut self.secrets,
                        &mut self.warnings,
                        "Secret",
                        key,
                        secret,
                        (origin, place),
                    )
                }
                Item::Namespace(name, ns) => match self.namespaces.entry(name) {
                    std::collections::btree_map::Entry::Occupied(e) => {
                        self.duplicates = true;
                        self.warnings.push(format!(
                            "{origin}: duplicate Namespace {}; first definition kept",
                            e.key()
                        ))
                    }
                    std::collections::btree_map::Entry::Vacant(e) => {
                        e.insert((ns, place.clone()));
                    }
                },
            }
        }
        Ok(())
    }

    fn is_duplicate_route(&mut self, origin: &Origin<'_>, key: &ObjectKey) -> bool {
        let duplicate = self.routes.contains_key(key) || self.undecodable.contains_key(key);
        self.duplicates |= duplicate;
        if duplicate {
            self.warnings.push(format!(
                "{origin}: duplicate Route {key}; the first definition is kept"
            ));
        }
        duplicate
    }

    fn finish(self) -> Loaded {
        Loaded {
            snapshot: Snapshot {
                routes: self.routes.into_values().map(|(r, _)| r).collect(),
                undecodable_routes: self.undecodable.into_values().map(|(r, _)| r).collect(),
                services: self.services.into_values().map(|(s, _)| s).collect(),
                endpoint_slices: self.slices.into_values().map(|(s, _)| s).collect(),
                namespaces: self.namespaces.into_values().map(|(n, _)| n).collect(),
                secrets: self.secrets.into_values().map(|(s, _)| s).collect(),
                forbidden_secrets: Vec::new(),
            },
            warnings: self.warnings,
            errors: self.errors,
        }
    }
}

/// Parse and decode one file's bytes (YAML stream or JSON) into its
/// documents; the first syntax or structure error fails the file.
fn parse_file(
    path: &str,
    bytes: &[u8],
    is_json: bool,
    options: &LoadOptions<'_>,
    parallel: bool,
) -> Result<Documents, LoadError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(LoadError::File {
            path: path.into(),
            message: format!("larger than the {MAX_FILE_BYTES}-byte limit for one manifest file"),
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| LoadError::File {
        path: path.into(),
        message: format!("not UTF-8 text: {e}"),
    })?;
    if is_json {
        let items = match parse_json_list(path, text, options, parallel) {
            Some(items) => items?,
            None => parse_json_whole(path, text, options)?,
        };
        return Ok(vec![(1, items)]);
    }
    let mut outcomes = parse_yaml_documents(path, text, options, parallel);
    if let Some(first) = outcomes
        .iter()
        .position(|o| matches!(o, Outcome::Syntax(_)))
    {
        if let Outcome::Syntax(error) = outcomes.swap_remove(first) {
            return Err(error);
        }
    }
    let mut documents = Vec::with_capacity(outcomes.len());
    for (index, outcome) in outcomes.into_iter().enumerate() {
        if let Outcome::Parsed(items) = outcome {
            documents.push((index + 1, items?));
        }
    }
    documents.shrink_to_fit();
    Ok(documents)
}

/// A JSON file decoded as one value (any object, and every error: syntax,
/// shape, a List without usable items).
fn parse_json_whole(
    path: &str,
    text: &str,
    options: &LoadOptions<'_>,
) -> Result<Vec<Item>, LoadError> {
    let value: Value = serde_json::from_str(text).map_err(|e| invalid_json(path, &e))?;
    let origin = Origin {
        source: Some((text, 1)),
        ..Origin::new(path, 1)
    };
    let mut items = Vec::new();
    classify(&origin, value, 0, options, &mut items)?;
    Ok(items)
}

/// A JSON file that is not JSON, at the line serde_json stopped on.
fn invalid_json(path: &str, error: &serde_json::Error) -> LoadError {
    LoadError::Document {
        path: path.into(),
        document: 1,
        message: format!("invalid JSON: {error}"),
        line: Some(error.line().max(1)),
    }
}

/// A JSON file that is a List (`kind: List` or `<Kind>List` with `items`,
/// what `kubectl get -o json` writes), decoded item by item: the file is
/// read once into raw slices of its text (no value is built), then each
/// item is parsed and classified on its own, on rayon's pool for long
/// lists, exactly as [`classify`] does for the items of a whole value. A
/// list of 100,000 objects never holds one value tree of all of them
/// (2 GiB at 100,000 Routes). `None` for anything else (not a List, not
/// valid JSON, items not a list): [`parse_json_whole`] decodes it and words
/// any error as before.
fn parse_json_list(
    path: &str,
    text: &str,
    options: &LoadOptions<'_>,
    parallel: bool,
) -> Option<Result<Vec<Item>, LoadError>> {
    use serde_json::value::RawValue;
    // A later duplicate key wins, as in a `Value`.
    let top: HashMap<String, &RawValue> = serde_json::from_str(text).ok()?;
    let kind: String = serde_json::from_str(top.get("kind")?.get()).ok()?;
    let is_list = kind == "List" || (kind.ends_with("List") && top.contains_key("items"));
    if !is_list {
        return None;
    }
    let list: Vec<&RawValue> = serde_json::from_str(top.get("items")?.get()).ok()?;
    let origin = Origin {
        source: Some((text, 1)),
        ..Origin::new(path, 1)
    };
    let outcomes = map_in_order(&list, parallel, |index, raw| {
        // Valid JSON: the text was read through once already.
        let value: Value = serde_json::from_str(raw.get()).map_err(|e| invalid_json(path, &e))?;
        let origin = Origin {
            item: Some(index),
            ..origin.clone()
        };
        let mut items = Vec::new();
        classify(&origin, value, 1, options, &mut items)?;
        Ok(items)
    });
    let mut items = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        // The first error in item order, as a sequential decode stops at.
        match outcome {
            Ok(more) => items.extend(more),
            Err(error) => return Some(Err(error)),
        }
    }
    Some(Ok(items))
}

/// Decode one document (or List item) into `items`.
fn classify(
    origin: &Origin<'_>,
    value: Value,
    depth: usize,
    options: &LoadOptions<'_>,
    items: &mut Vec<Item>,
) -> Result<(), LoadError> {
    let default_namespace = options.default_namespace;
    let doc_err = |message: String| LoadError::Document {
        path: origin.path.into(),
        document: origin.document,
        message,
        line: origin.source.map(|(_, first_line)| first_line),
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
        let Value::Object(mut map) = value else {
            unreachable!("checked above")
        };
        let Some(Value::Array(list)) = map.remove("items") else {
            return Err(doc_err(format!("{kind}: field items must be a list")));
        };
        for (index, item) in list.into_iter().enumerate() {
            let origin = Origin {
                item: Some(index),
                ..origin.clone()
            };
            classify(&origin, item, depth + 1, options, items)?;
        }
        return Ok(());
    }

    let mut value = value;
    if let Err(message) = normalize_meta_names(&mut value) {
        items.push(Item::Warning(format!(
            "{origin}: {kind} skipped: {message}"
        )));
        return Ok(());
    }
    match (kind.as_str(), api_version.as_str()) {
        ("Route", "route.openshift.io/v1" | "v1") => classify_route(origin, value, options, items),
        ("Service", "v1") => {
            if !check_fields(origin, fields::Kind::Service, &value, options, items) {
                return Ok(());
            }
            if let Some((key, svc)) =
                decode_object::<Service>(origin, "Service", value, default_namespace, items, true)
            {
                items.push(Item::Service(key, Arc::new(svc.into())));
            }
        }
        ("EndpointSlice", "discovery.k8s.io/v1") => {
            if !check_fields(origin, fields::Kind::EndpointSlice, &value, options, items) {
                return Ok(());
            }
            if let Some((key, slice)) = decode_object::<EndpointSlice>(
                origin,
                "EndpointSlice",
                value,
                default_namespace,
                items,
                true,
            ) {
                // Converted at once: the snapshot holds the model's compact
                // form, never the full object.
                items.push(Item::Slice(key, Arc::new(slice.into())));
            }
        }
        ("Secret", "v1") => {
            if let Some((key, secret)) = decode_secret(origin, value, default_namespace, items) {
                items.push(Item::Secret(key, Arc::new(secret)));
            }
        }
        ("Namespace", "v1") => match serde_path_to_error::deserialize::<_, Namespace>(value) {
            Ok(ns) => {
                let name = ns.metadata.name.clone().unwrap_or_default();
                if name.is_empty() {
                    items.push(Item::Warning(format!(
                        "{origin}: Namespace without metadata.name skipped"
                    )));
                } else {
                    items.push(Item::Namespace(name, Arc::new(ns)));
                }
            }
            Err(e) => items.push(Item::Warning(format!(
                "{origin}: Namespace skipped: field {}: {}",
                e.path(),
                e.inner()
            ))),
        },
        _ => items.push(Item::Warning(format!(
            "{origin}: kind {kind} (apiVersion {}) is not used by routegen; skipped",
            if api_version.is_empty() {
                "<none>"
            } else {
                &api_version
            }
        ))),
    }
    Ok(())
}

/// A `kind: Secret` (for Routes' `spec.tls.externalCertificate`): decoded
/// like any object, except that a decoding error names only the field,
/// never the value (Secret contents are never printed), and `stringData`
/// is merged into `data` (overriding it, as the API server does).
fn decode_secret(
    origin: &Origin<'_>,
    value: Value,
    default_namespace: &str,
    items: &mut Vec<Item>,
) -> Option<(ObjectKey, Secret)> {
    let (key, mut secret) =
        decode_object::<Secret>(origin, "Secret", value, default_namespace, items, false)?;
    if let Some(string_data) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(Default::default);
        for (k, v) in string_data {
            data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
        }
    }
    Some((key, secret))
}

/// Decode a namespaced object, filling in the default namespace; a type
/// error skips the object with a warning naming the field (and the
/// decoder's message, which may quote the value, only with `show_values`).
fn decode_object<T>(
    origin: &Origin<'_>,
    kind: &str,
    value: Value,
    default_namespace: &str,
    items: &mut Vec<Item>,
    show_values: bool,
) -> Option<(ObjectKey, T)>
where
    T: DeserializeOwned
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
{
    let (ns, name) = meta_names(&value);
    let mut object: T = match serde_path_to_error::deserialize(value) {
        Ok(object) => object,
        Err(e) => {
            let label = format!(
                "{kind} {}/{}",
                ns.as_deref().unwrap_or(default_namespace),
                name.as_deref().unwrap_or("<unnamed>")
            );
            let problem = if show_values {
                e.inner().to_string()
            } else {
                "not valid (contents not shown)".to_string()
            };
            items.push(Item::Warning(format!(
                "{origin}: {label} skipped: field {}: {problem}",
                e.path(),
            )));
            return None;
        }
    };
    let meta = object.metadata_mut();
    if meta.name.as_deref().unwrap_or("").is_empty() {
        items.push(Item::Warning(format!(
            "{origin}: {kind} without metadata.name skipped"
        )));
        return None;
    }
    if meta.namespace.as_deref().unwrap_or("").is_empty() {
        meta.namespace = Some(default_namespace.to_string());
    }
    let key = routegen_core::model::snapshot::key_of(meta);
    Some((key, object))
}

fn classify_route(
    origin: &Origin<'_>,
    mut value: Value,
    options: &LoadOptions<'_>,
    items: &mut Vec<Item>,
) {
    let (ns, name) = meta_names(&value);
    let namespace = ns
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| options.default_namespace.to_string());
    let name = match name.filter(|n| !n.is_empty()) {
        Some(name) => name,
        None => {
            let generated = generated_name(origin);
            items.push(Item::Warning(format!(
                "{origin}: Route without metadata.name; named {generated}"
            )));
            generated
        }
    };
    let key = ObjectKey::new(namespace.clone(), name.clone());
    let unknown = unknown_fields(origin, fields::Kind::Route, &value, &format!("Route {key}"));
    let strict_failure = (options.strict && !unknown.is_empty()).then(|| {
        let fields: Vec<String> = unknown.iter().map(|(field, _)| field.to_string()).collect();
        format!("strict decoding error: {}", fields.join("; "))
    });
    for (_, line) in unknown {
        items.push(if options.strict {
            Item::Error(line)
        } else {
            Item::Warning(line)
        });
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
    // Decoded by value (no copy of the certificates); the metadata is kept
    // aside for the undecodable case only, and what nothing reads of it is
    // not kept at all.
    routegen_core::model::route::drop_unread_metadata(&mut value);
    let metadata_value = value.get("metadata").cloned();
    let decoded = match strict_failure {
        Some(message) => Err(message),
        None => serde_path_to_error::deserialize::<_, Route>(value)
            .map_err(|e| format!("field {}: {}", e.path(), e.inner())),
    };
    match decoded {
        Ok(route) => items.push(Item::Route(key, Arc::new(route))),
        Err(message) => {
            let mut metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta =
                metadata_value
                    .and_then(|m| serde_json::from_value(m).ok())
                    .unwrap_or_default();
            metadata.namespace = Some(namespace);
            metadata.name = Some(name);
            items.push(Item::Undecodable(
                key,
                Box::new(UndecodableRoute { metadata, message }),
            ));
        }
    }
}

/// The unknown or misplaced fields of one object of `kind` (see
/// [`fields`]), each with its message for the load's findings:
/// `<file>:<line>: document <n>: <label>: spec.tsl: unknown field, did you
/// mean spec.tls?`, the line counted from the start of the file
/// (`<file>: document <n>: …` when the line cannot be found).
fn unknown_fields(
    origin: &Origin<'_>,
    kind: fields::Kind,
    value: &Value,
    label: &str,
) -> Vec<(fields::UnknownField, String)> {
    let found = fields::unknown_fields(kind, value);
    if found.is_empty() {
        return Vec::new();
    }
    // Parsed again for the lines only now that there is something to show.
    let located = origin
        .source
        .and_then(|(text, first_line)| Some((fields::Located::parse(text)?, first_line)));
    let mut found: Vec<_> = found
        .into_iter()
        .map(|field| {
            let mut steps = match origin.item {
                Some(index) => vec![
                    fields::Step::Key("items".into()),
                    fields::Step::Index(index),
                ],
                None => Vec::new(),
            };
            steps.extend(field.path.0.iter().cloned());
            let line = located.as_ref().and_then(|(located, first_line)| {
                Some(located.line_of(&steps)? as usize + first_line - 1)
            });
            (field, line)
        })
        .collect();
    // In the order of the text where the lines are known (a stable sort
    // keeps the path order otherwise).
    found.sort_by_key(|(_, line)| line.unwrap_or(0));
    found
        .into_iter()
        .map(|(field, line)| {
            let place = match line {
                Some(line) => format!("{}:{line}: document {}", origin.path, origin.document),
                None => origin.to_string(),
            };
            let message = format!("{place}: {label}: {field}");
            (field, message)
        })
        .collect()
}

/// Report the unknown fields of a Service or EndpointSlice as warnings,
/// or with [`LoadOptions::strict`] as errors. Returns whether the object
/// is kept (false: strict, and it has unknown fields).
fn check_fields(
    origin: &Origin<'_>,
    kind: fields::Kind,
    value: &Value,
    options: &LoadOptions<'_>,
    items: &mut Vec<Item>,
) -> bool {
    let (ns, name) = meta_names(value);
    let label = format!(
        "{} {}/{}",
        kind.name(),
        ns.as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(options.default_namespace),
        name.as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or("<unnamed>")
    );
    let unknown = unknown_fields(origin, kind, value, &label);
    let keep = !options.strict || unknown.is_empty();
    for (_, message) in unknown {
        items.push(if options.strict {
            Item::Error(message)
        } else {
            Item::Warning(message)
        });
    }
    keep
}

/// Insert unless the key is taken (then warn); `true` when it was.
fn insert_first<T>(
    map: &mut BTreeMap<ObjectKey, (T, Place)>,
    warnings: &mut Vec<String>,
    kind: &str,
    key: ObjectKey,
    object: T,
    (origin, place): (&Origin<'_>, &Place),
) -> bool {
    if let Some((_, first)) = map.get(&key) {
        warnings.push(format!(
            "{origin}: duplicate {kind} {key}; the first definition ({first}) is kept"
        ));
        true
    } else {
        map.insert(key, (object, place.clone()));
        false
    }
}

/// `metadata.namespace` and `metadata.name` if they are strings.
/// `metadata.name` / `metadata.namespace` written as a YAML integer
/// (`name: 1`) are the string of their digits to whoever wrote them: make
/// them that string, so the object keeps the name it was given. Any other
/// non-string value (a float, a boolean, a mapping) is refused, naming the
/// field: its text cannot be recovered from the parsed value.
fn normalize_meta_names(value: &mut Value) -> Result<(), String> {
    let Some(Value::Object(meta)) = value.get_mut("metadata") else {
        return Ok(());
    };
    for field in ["name", "namespace"] {
        let Some(slot) = meta.get_mut(field) else {
            continue;
        };
        match slot {
            Value::String(_) | Value::Null => {}
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                *slot = Value::String(n.to_string());
            }
            other => {
                return Err(format!(
                    "field metadata.{field}: expected a string, found {} (quote the value)",
                    json_type_name(other)
                ))
            }
        }
    }
    Ok(())
}

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

/// Split a YAML stream into documents and parse and decode each one, on
/// rayon's pool for large streams (in order). A line starting with `---` at column
/// 0 starts a document and `...` ends one (YAML forbids both inside content
/// at column 0, so splitting on them is exact); this gives exact document
/// numbers and keeps one document's error from hiding where it is. The
/// result has one outcome per document, in order (empty documents are
/// counted).
fn parse_yaml_documents(
    path: &str,
    text: &str,
    options: &LoadOptions<'_>,
    parallel: bool,
) -> Vec<Outcome> {
    let chunks = split_yaml_documents(text);
    if chunks.len() > MAX_OBJECTS {
        // Refused before any document is decoded: memory stays bounded.
        return vec![Outcome::Syntax(too_many_objects(path, None))];
    }
    map_in_order(&chunks, parallel, |index, chunk| {
        parse_document(path, index, chunk, options)
    })
}

/// `f(index, item)` for every item, results in order: on rayon's pool in
/// batches when `parallel` and there are enough items to pay for it, else
/// on this thread.
fn map_in_order<T: Sync, R: Send>(
    items: &[T],
    parallel: bool,
    f: impl Fn(usize, &T) -> R + Sync,
) -> Vec<R> {
    if !parallel || items.len() < PARALLEL_MIN_DOCUMENTS {
        return items
            .iter()
            .enumerate()
            .map(|(i, item)| f(i, item))
            .collect();
    }
    use rayon::prelude::*;
    items
        .par_iter()
        .enumerate()
        .with_min_len(BATCH)
        .map(|(i, item)| f(i, item))
        .collect()
}

/// How one YAML document is parsed: one document, limits far above any
/// real manifest file.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: 1,
            max_nodes: 200_000_000,
            max_events: 400_000_000,
            max_total_scalar_bytes: MAX_FILE_BYTES,
        },
    }
}

/// Parse and decode the document at `index` (0-based). A syntax error's
/// line is counted from the start of the file.
fn parse_document(
    path: &str,
    index: usize,
    chunk: &Chunk<'_>,
    options: &LoadOptions<'_>,
) -> Outcome {
    if !has_content(chunk.text) {
        return Outcome::Empty;
    }
    match serde_saphyr::from_str_with_options::<Value>(chunk.text, yaml_options()) {
        Ok(Value::Null) => Outcome::Empty,
        Ok(value) => {
            let origin = Origin {
                source: Some((chunk.text, chunk.first_line)),
                ..Origin::new(path, index + 1)
            };
            let mut items = Vec::new();
            Outcome::Parsed(classify(&origin, value, 0, options, &mut items).map(|()| {
                // Kept with the file until it changes: a document is nearly
                // always one object, and a first push leaves room for four.
                items.shrink_to_fit();
                items
            }))
        }
        Err(e) => {
            let message = e.render_with_options(serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
                line_offset: chunk.first_line as u64 - 1,
            });
            let line = e
                .location()
                .map(|l| l.line() as usize)
                .filter(|&l| l > 0)
                .map_or(chunk.first_line, |l| l + chunk.first_line - 1);
            Outcome::Syntax(LoadError::Document {
                path: path.into(),
                document: index + 1,
                message: format!("invalid YAML: {}", message.trim()),
                line: Some(line),
            })
        }
    }
}

/// The error for more than [`MAX_OBJECTS`] objects in one load.
fn too_many_objects(path: &str, document: Option<usize>) -> LoadError {
    let message = format!(
        "more than {MAX_OBJECTS} objects in one load (the limit of objects per input); split the input or use the Kubernetes source"
    );
    match document {
        Some(document) => LoadError::Document {
            path: path.into(),
            document,
            message,
            line: None,
        },
        None => LoadError::File {
            path: path.into(),
            message,
        },
    }
}

/// One document of a YAML stream: its text (from the end of its `---`
/// marker, which leaves the marker's line as line 1) and the line of the
/// file its first line is.
#[derive(Debug, PartialEq, Eq)]
struct Chunk<'a> {
    text: &'a str,
    first_line: usize,
}

/// The documents of a YAML stream (see [`parse_yaml_documents`]).
///
/// Written here, although serde-saphyr (2.2) reads multi-document streams
/// (`from_multiple_with_options`, `read`), because what the loader
/// promises needs each document's number, first line and text, which
/// neither gives:
/// - both skip empty, comment-only and `null` documents without a trace,
///   so the document numbers of warnings and errors (which count them)
///   and the generated names (`unnamed-<file>-<n>`) would shift;
/// - an error carries the file's line and column but not its document,
///   and `from_multiple_with_options` fails the whole stream with no
///   document decoded; `read` ends at the first syntax error;
/// - the unknown-field lines are found by parsing one document's text
///   again, and neither hands out a document's text or start line;
/// - one stream is parsed on one thread, where documents split here are
///   parsed on rayon's pool.
///
/// Measured (BENCHMARKS.md, "The YAML document splitter"): with the
/// stream read by `from_multiple_with_options` instead, 7 of the 22 tests
/// of this module and its submodules fail (6 on document numbers and
/// field lines, 1 on the object cap, which the crate's `max_documents`
/// budget could keep); loading a 10,000-Route fleet (14 MB, 31,250
/// documents, `routegen-bench load FILE --cold`, 2 shared cores) takes
/// the same time within the noise (medians 2.94 s here, 2.97 s there
/// over 9 interleaved runs; 2.55 s and 2.09 s over 7 in a second run;
/// every run between 1.6 and 3.4 s) and peaks at 217-221 MiB instead of
/// 140-144 MiB (every document's value is held until the stream ends).
fn split_yaml_documents(text: &str) -> Vec<Chunk<'_>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut chunks: Vec<Chunk> = Vec::new();
    // The document being read is `text[start..end]`: a document is one
    // run of lines (its `---` cut off), so it is borrowed, not copied.
    let (mut start, mut end) = (0, 0);
    let mut first_line = 1;
    let mut started = false;
    let mut ended = false;
    let mut offset = 0;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        let line_start = offset;
        offset += line.len();
        let marker = |m: &str| {
            line.strip_prefix(m)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
        };
        if marker("---") {
            if started || has_content(&text[start..end]) {
                chunks.push(Chunk {
                    text: &text[start..end],
                    first_line,
                });
            }
            (start, end) = (line_start + 3, offset);
            first_line = number;
            started = true;
            ended = false;
        } else if marker("...") {
            if !ended {
                chunks.push(Chunk {
                    text: &text[start..end],
                    first_line,
                });
            }
            ended = true;
        } else if !ended || has_content(line) {
            if ended {
                started = true;
                ended = false;
                first_line = number;
                start = line_start;
            }
            end = offset;
        }
    }
    if !ended && (started || has_content(&text[start..end])) {
        chunks.push(Chunk {
            text: &text[start..end],
            first_line,
        });
    }
    chunks
}

/// Whether a piece of YAML has anything but blank lines, comments and directives.
fn has_content(text: &str) -> bool {
    text.lines().any(|l| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !l.starts_with('%')
    })
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn more_documents_than_the_object_cap_are_refused_before_decoding() {
        let text = "---\nkind: Namespace\n".repeat(MAX_OBJECTS + 1);
        let err = load_str("big.yaml", &text, "default").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "big.yaml: more than {MAX_OBJECTS} objects in one load (the limit of objects per input); split the input or use the Kubernetes source"
            )
        );
    }

    #[test]
    fn the_cap_counts_objects_not_warnings() {
        // Unknown kinds are skipped with a warning and do not count.
        let text = "---\nkind: Unknown\n".repeat(3);
        let loaded = load_str("w.yaml", &text, "default").unwrap();
        assert_eq!(loaded.warnings.len(), 3);
    }
}

#[cfg(test)]
mod name_tests {
    use super::*;

    fn route(name: &str) -> String {
        format!(
            "kind: Route\napiVersion: route.openshift.io/v1\nmetadata:\n  name: {name}\n  namespace: 7\nspec:\n  host: www.example.com\n  to:\n    kind: Service\n    name: svc\n"
        )
    }

    #[test]
    fn an_integer_name_is_the_string_of_its_digits() {
        // OpenShift router test tables write `name: 1`: it is "1", never renamed.
        let loaded = load_str("r.yaml", &route("1"), "default").unwrap();
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let text = format!("{:?}", loaded.snapshot);
        assert!(text.contains("name: Some(\"1\")"), "{text}");
        assert!(text.contains("namespace: Some(\"7\")"), "{text}");
        assert!(!text.contains("unnamed"), "{text}");
    }

    #[test]
    fn other_non_string_names_are_refused_naming_the_field() {
        for (name, found) in [
            ("1.5", "a number"),
            ("true", "a boolean"),
            ("{a: b}", "a mapping"),
        ] {
            let loaded = load_str("r.yaml", &route(name), "default").unwrap();
            assert_eq!(
                loaded.warnings,
                vec![format!(
                    "r.yaml: document 1: Route skipped: field metadata.name: expected a string, found {found} (quote the value)"
                )],
                "{name}"
            );
            assert!(!format!("{:?}", loaded.snapshot).contains("unnamed"));
        }
    }
}

#[cfg(test)]
mod parallel_tests {
    use super::*;

    /// Load `text` on a rayon pool of `threads` threads (1: on this
    /// thread): (snapshot as text, warnings) or the error message.
    fn load_with(text: &str, threads: usize) -> Result<(String, Vec<String>), String> {
        let mut loader = Loader::new(LoadOptions::new("default"));
        loader.parallel = threads > 1;
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| loader.add_bytes("big.yaml", text.as_bytes(), false))
            .map_err(|e| e.to_string())?;
        let loaded = loader.finish();
        Ok((format!("{:?}", loaded.snapshot), loaded.warnings))
    }

    /// Block-style YAML written by hand, not `testkit::RouteBuilder::to_yaml`:
    /// these tests are about the YAML stream loader, and `mixed_stream`
    /// puts a YAML flow sequence where the host goes (`[not, a, host]`, a
    /// wrong type that only YAML text can carry).
    fn route(name: &str, host: &str) -> String {
        format!(
            "apiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: {name}\n  \
             namespace: ns\nspec:\n  host: {host}\n  to:\n    name: svc\n"
        )
    }

    /// A stream long enough for the parallel path, with every kind of
    /// finding spread over many batches.
    fn mixed_stream(documents: usize) -> Vec<String> {
        (0..documents)
            .map(|i| match i % 9 {
                0 => route(&format!("r{}", i % 50), &format!("h{i}.example.com")),
                1 => "# only a comment\n".to_string(),
                2 => "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n".to_string(),
                3 => format!(
                    "apiVersion: v1\nkind: Service\nmetadata:\n  name: s{}\n  namespace: ns\n\
                     spec:\n  ports:\n  - port: 80\n",
                    i % 40
                ),
                4 => {
                    "apiVersion: route.openshift.io/v1\nkind: Route\nspec:\n  host: x.example.com\n"
                        .to_string()
                }
                5 => route(&format!("bad{i}"), "[not, a, host]"),
                6 => format!(
                    "apiVersion: v1\nkind: List\nitems:\n- {}\n",
                    route(&format!("l{i}"), "l.example.com")
                        .trim_end()
                        .replace('\n', "\n  ")
                ),
                7 => "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns\n".to_string(),
                _ => "apiVersion: v1\nkind: Service\nmetadata:\n  name: 7\nspec: {ports: 3}\n"
                    .to_string(),
            })
            .collect()
    }

    #[test]
    fn parallel_load_equals_sequential_load() {
        let text = mixed_stream(700).join("---\n");
        let sequential = load_with(&text, 1).unwrap();
        for threads in [2, 3, 8] {
            assert_eq!(
                load_with(&text, threads).unwrap(),
                sequential,
                "{threads} threads"
            );
        }
        // Findings come in document order.
        let numbers: Vec<usize> = sequential
            .1
            .iter()
            .filter_map(|w| w.split("document ").nth(1)?.split(':').next()?.parse().ok())
            .collect();
        assert!(numbers.windows(2).all(|w| w[0] <= w[1]), "{numbers:?}");
        assert!(sequential
            .1
            .iter()
            .any(|w| w.contains("duplicate Route ns/r")));
        assert!(sequential
            .1
            .iter()
            .any(|w| w.contains("duplicate Namespace ns")));
        assert!(sequential
            .1
            .iter()
            .any(|w| w.contains("named unnamed-big-5")));
    }

    #[test]
    fn parallel_load_reports_the_same_first_error() {
        let mut docs = mixed_stream(400);
        // A document that is not an object early, YAML syntax errors later:
        // as in a sequential load, the first syntax error wins.
        docs[100] = "just a string\n".to_string();
        docs[250] = "a: [1, 2\n".to_string();
        docs[300] = "b: {\n".to_string();
        let text = docs.join("---\n");
        let sequential = load_with(&text, 1).unwrap_err();
        assert!(
            sequential.contains("document 251: invalid YAML"),
            "{sequential}"
        );
        assert_eq!(load_with(&text, 2).unwrap_err(), sequential);
        docs[250] = route("fine", "fine.example.com");
        docs[300] = route("fine2", "fine2.example.com");
        let text = docs.join("---\n");
        let sequential = load_with(&text, 1).unwrap_err();
        assert!(
            sequential.contains("document 101: expected a Kubernetes object"),
            "{sequential}"
        );
        assert_eq!(load_with(&text, 4).unwrap_err(), sequential);
    }

    #[test]
    fn secrets_load_without_showing_contents() {
        let text = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: a\ntype: kubernetes.io/tls\n\
                    data:\n  tls.crt: Q1JU\n  tls.key: b2xk\nstringData:\n  tls.key: KEY\n\
                    ---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n  namespace: x\n\
                    data:\n  tls.key: \"TOPSECRET!!\"\n";
        let loaded = load_str("s.yaml", text, "ns").unwrap();
        assert_eq!(loaded.snapshot.secrets.len(), 1);
        let a = &loaded.snapshot.secrets[0];
        assert_eq!(a.metadata.namespace.as_deref(), Some("ns"));
        let data = a.data.as_ref().unwrap();
        assert_eq!(data["tls.crt"].0, b"CRT");
        // stringData overrides data, as the API server merges them.
        assert_eq!(data["tls.key"].0, b"KEY");
        assert!(a.string_data.is_none());
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("Secret x/b skipped: field data.tls.key"));
        assert!(!loaded.warnings[0].contains("TOPSECRET"));
    }
}

#[cfg(test)]
mod field_tests {
    use super::*;

    /// Three documents (a comment before the first, a Service in the
    /// second, a List of one Route in the third) with unknown fields.
    const STREAM: &str = "# routes\n\
        apiVersion: route.openshift.io/v1\n\
        kind: Route\n\
        metadata:\n  name: web\n  namespace: ns\n\
        spec:\n  host: web.example.com\n  to: {name: web}\n  tsl:\n    termination: edge\n\
        ---\n\
        apiVersion: v1\n\
        kind: Service\n\
        metadata: {name: web, namespace: ns}\n\
        spec:\n  prots: []\n\
        ---\n\
        apiVersion: v1\n\
        kind: List\n\
        items:\n\
        - apiVersion: route.openshift.io/v1\n  kind: Route\n  namespace: ns\n  metadata: {name: other}\n  spec: {to: {name: web}}\n";

    fn load(text: &str, strict: bool) -> Loaded {
        let mut loader = Loader::new(LoadOptions {
            default_namespace: "default",
            strict,
        });
        loader.add_bytes("s.yaml", text.as_bytes(), false).unwrap();
        loader.finish()
    }

    #[test]
    fn unknown_fields_are_warned_with_file_lines_and_objects_kept() {
        let loaded = load(STREAM, false);
        assert_eq!(
            loaded.warnings,
            [
                "s.yaml:10: document 1: Route ns/web: spec.tsl: unknown field, did you mean spec.tls?",
                "s.yaml:17: document 2: Service ns/web: spec.prots: unknown field, did you mean spec.ports?",
                "s.yaml:24: document 3: Route default/other: namespace: unknown field, did you mean metadata.namespace?",
            ]
        );
        assert!(loaded.errors.is_empty());
        assert_eq!(loaded.snapshot.routes.len(), 2);
        assert_eq!(loaded.snapshot.services.len(), 1);
    }

    #[test]
    fn strict_refuses_the_objects_with_unknown_fields() {
        let loaded = load(STREAM, true);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        assert_eq!(loaded.errors.len(), 3, "{:?}", loaded.errors);
        assert!(loaded.errors[0].starts_with("s.yaml:10: document 1: Route ns/web: spec.tsl"));
        assert!(loaded.snapshot.routes.is_empty());
        assert!(
            loaded.snapshot.services.is_empty(),
            "the Service is left out"
        );
        let messages: Vec<&str> = loaded
            .snapshot
            .undecodable_routes
            .iter()
            .map(|r| r.message.as_str())
            .collect();
        assert_eq!(
            messages,
            [
                "strict decoding error: namespace: unknown field, did you mean metadata.namespace?",
                "strict decoding error: spec.tsl: unknown field, did you mean spec.tls?",
            ]
        );
        // Without unknown fields strict changes nothing.
        let clean = STREAM.replace("tsl:", "tls:").replace("prots", "ports");
        let clean = clean.replace("  namespace: ns\n  metadata", "  metadata");
        let loaded = load(&clean, true);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        assert_eq!(loaded.snapshot.routes.len(), 2);
        assert_eq!(loaded.snapshot.services.len(), 1);
    }

    #[test]
    fn json_files_get_lines_too() {
        let json = "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"Service\",\n  \"metadata\": {\"name\": \"s\"},\n  \"spec\": {\"ports\": [{\"port\": 80, \"nme\": \"x\"}]}\n}\n";
        let mut loader = Loader::new(LoadOptions::new("ns"));
        loader.add_bytes("s.json", json.as_bytes(), true).unwrap();
        assert_eq!(
            loader.finish().warnings,
            ["s.json:5: document 1: Service ns/s: spec.ports[0].nme: unknown field, did you mean spec.ports[0].name?"]
        );
    }

    /// A JSON List decoded item by item gives what decoding it as one
    /// value gives: objects, warnings (with lines and item numbers) and
    /// the first error, in order, sequential and on the pool.
    #[test]
    fn json_lists_decoded_item_by_item_equal_the_whole_value() {
        let route = |i: usize| {
            format!(
                r#"{{"apiVersion":"route.openshift.io/v1","kind":"Route","metadata":{{"name":"r{i}"}},"spec":{{"host":"h{i}.example.com","to":{{"kind":"Service","name":"s"}}}}}}"#
            )
        };
        let service = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"other"},"spec":{"ports":[{"port":80,"nme":"x"}]}}"#;
        let many: Vec<String> = (0..300).map(route).collect();
        let list = |kind: &str, items: &[String], items_first: bool| {
            let items = format!("[\n{}\n]", items.join(",\n"));
            if items_first {
                format!("{{\"apiVersion\":\"v1\",\"items\":{items},\"kind\":\"{kind}\",\"metadata\":{{}}}}")
            } else {
                format!("{{\"kind\":\"{kind}\",\"apiVersion\":\"v1\",\"items\":{items}}}")
            }
        };
        let mut inputs = vec![
            list("List", &[route(1), service.to_string(), route(2)], true),
            list("List", &[route(1), service.to_string()], false),
            list("RouteList", &[route(3)], false),
            list("List", &many, true),
            // An item that is no object, a nested list, an unknown kind.
            list("List", &[route(1), "7".into(), route(2)], false),
            list("List", &[list("List", &[route(1)], false)], false),
            list(
                "List",
                &[r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#.into()],
                false,
            ),
            // Not a list, or not one this path reads.
            route(9),
            r#"{"kind":"List"}"#.into(),
            r#"{"kind":"List","items":{}}"#.into(),
            r#"{"kind":"List","items":[1,]}"#.into(),
            "[]".into(),
        ];
        let mut with_error = many.clone();
        with_error[200] = "null".into();
        inputs.push(list("List", &with_error, false));
        for text in &inputs {
            let options = LoadOptions::new("ns");
            let whole = format!("{:?}", parse_json_whole("l.json", text, &options));
            for parallel in [false, true] {
                let by_item = match parse_json_list("l.json", text, &options, parallel) {
                    Some(result) => format!("{result:?}"),
                    None => format!("{:?}", parse_json_whole("l.json", text, &options)),
                };
                assert_eq!(by_item, whole, "{text}");
            }
        }
        assert!(parse_json_list("l.json", &inputs[3], &LoadOptions::new("ns"), true).is_some());
        assert!(parse_json_list("l.json", &inputs[7], &LoadOptions::new("ns"), true).is_none());
    }

    #[test]
    fn documents_know_the_file_line_they_start_on() {
        let text = "# c\na: 1\n---\nb: 2\n\n--- # x\nc: 3\n...\n# gap\n\nd: 4\n";
        let chunks = split_yaml_documents(text);
        let starts: Vec<(usize, &str)> = chunks
            .iter()
            .map(|c| (c.first_line, c.text.trim()))
            .collect();
        assert_eq!(
            starts,
            [
                (1, "# c\na: 1"),
                (3, "b: 2"),
                (6, "# x\nc: 3"),
                (11, "d: 4")
            ]
        );
    }

    #[test]
    fn yaml_errors_give_the_line_of_the_file() {
        // The broken line is line 4 of document 3 and line 11 of the file.
        let text = "a: 1\n---\nb: 2\nc: 3\n---\n# three\nd: 4\ne:\n  f: 5\n  g: [1,\n  h: {\n";
        let err = load_str("m.yaml", text, "default").unwrap_err().to_string();
        assert_eq!(
            err,
            "m.yaml: document 3: invalid YAML: unclosed bracket '{' at line 11, column 6"
        );
    }
}
