//! What a running HAProxy holds of a rendered tree, and the runtime-API
//! commands that turn what it holds into what a new tree says, without a
//! reload. Pure: no I/O; the host sends the commands
//! (`routegen_host::runtime`).
//!
//! # The model
//!
//! [`RuntimeState::of_tree`] reads a tree as HAProxy would after loading
//! it, from the rendered text itself (so the model is exactly what the
//! files say):
//! - each backend section of `backends/routes-*.cfg`: its *shape* (a hash
//!   of every line but the `# route` comment and the `server` lines), its
//!   `dynamic-cookie-key`, and its `server` lines (name, `id`, `weight`,
//!   the rest of the arguments);
//! - the map files (`maps/*.map`: key → value);
//! - the certificates (`certs/*.pem`) and the `crt-list.txt` lines naming
//!   each;
//! - the CA files (`cas/*.pem`) and which of them a server line names
//!   (HAProxy loads a CA file only when a server uses it);
//! - every other file, byte for byte (`haproxy.cfg`,
//!   `backends/default.cfg`, allowlists): the *fixed* part.
//!
//! # What is live
//!
//! [`delta`] compares the state HAProxy runs with a new tree's state and
//! returns the commands for what can change live, the state HAProxy holds
//! once they succeeded, and the reasons a reload is still needed for the
//! rest:
//!
//! | change | live command | reload when |
//! |---|---|---|
//! | server added | `add server` with the file line's arguments, `enable server`, `enable health` (with `check`), `set dynamic-cookie-key` (cookie backends: recomputes every server's cookie) | its `id` is taken by another server |
//! | server removed | `set server … state maint`, `del server` (drained and retried by the host while it has connections) | never |
//! | server weight | `set server … weight` | never |
//! | other server options | — | always (`server options`) |
//! | map key added, changed, removed | `add map`, `set map`, `del map` (exact-match maps: one key's change cannot reorder others) | the value names a backend HAProxy does not run yet (its key waits for the reload) |
//! | certificate added, changed, removed | `new`/`set`/`commit ssl cert`, `add`/`del ssl crt-list`, `del ssl cert` | a file in more than one crt-list line, a PEM over the command buffer, a PEM with an empty line, a crt-list line to delete (certificate removed, SNI changed) whose path has a `:` (`del ssl crt-list` cannot name it) |
//! | CA file first used by a new server | `new`/`set`/`commit ssl ca-file` | a PEM over the command buffer |
//! | CA file in use changed | — | always (servers keep connections verified against the old CA) |
//! | backend removed | nothing (no map key names it any more; the next reload drops it) | never |
//! | backend added, or its shape changed | — | always (HAProxy before 3.4 cannot create backends), except an empty spare (`be_spare:…`, see `routegen_core::plan::spares`): nothing names it, the next reload brings it |
//! | a new Route placed in a spare HAProxy runs | `add server` + `add map` (the spare's section is the Route's, without servers) | the shapes differ |
//! | anything else (frontends, global, allowlists) | — | always |
//!
//! A delta whose reload reasons are empty leaves HAProxy holding exactly
//! the new tree's state: a reload at that moment changes nothing
//! observable.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use imbl::{OrdMap, OrdSet};

use crate::output::OutputTree;
use routegen_core::plan::spares;

use super::{BACKENDS_DIR, CRT_LIST, NO_ROUTE_BACKEND, REDIRECT_VALUE};

/// Largest PEM sent in one command: HAProxy 2.6 reads a command and its
/// payload into one buffer of `tune.bufsize` (16 KiB by default); the
/// rest of the buffer holds the command itself.
pub const MAX_RUNTIME_PEM: usize = 15 * 1024;

/// One `server` line of a backend section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerLine {
    /// The `id` argument (every line routegen renders has one).
    pub id: u32,
    pub weight: u16,
    /// Every argument after the name (address first), exactly as written:
    /// what `add server <backend>/<name>` is sent.
    pub args: String,
    /// It has `check` (`enable health` after `add server`).
    pub check: bool,
}

impl ServerLine {
    /// `args` without the `weight` argument: equal means only the weight
    /// differs. Derived when asked (a few times per changed server) rather
    /// than held beside `args` for every server.
    pub fn options(&self) -> String {
        self.option_words().collect::<Vec<_>>().join(" ")
    }

    /// The words of [`ServerLine::options`].
    fn option_words(&self) -> impl Iterator<Item = &str> {
        let mut words = self.args.split(' ');
        std::iter::from_fn(move || loop {
            match words.next()? {
                "weight" => {
                    words.next();
                }
                word => return Some(word),
            }
        })
    }

    /// The `ca-file` it names, if any.
    pub fn ca_file(&self) -> Option<&str> {
        let mut words = self.args.split(' ');
        words.find(|w| *w == "ca-file")?;
        words.next()
    }
}

/// A backend's server lines by name, sorted: a boxed slice rather than a
/// map, since a backend has a few servers and a B-tree leaf is sized for
/// eleven (a kilobyte per backend, most of this state at 100k Routes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerLines(Box<[(String, ServerLine)]>);

impl ServerLines {
    /// The line of the server `name`.
    pub fn get(&self, name: &str) -> Option<&ServerLine> {
        let i = self
            .0
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()?;
        Some(&self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// (name, line) in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &ServerLine)> {
        self.into_iter()
    }

    /// The lines in name order.
    pub fn values(&self) -> impl Iterator<Item = &ServerLine> {
        self.0.iter().map(|(_, line)| line)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// As a map is built: sorted by name, a later line of a name replacing an
/// earlier one.
impl FromIterator<(String, ServerLine)> for ServerLines {
    fn from_iter<I: IntoIterator<Item = (String, ServerLine)>>(lines: I) -> Self {
        let map: BTreeMap<String, ServerLine> = lines.into_iter().collect();
        ServerLines(map.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a ServerLines {
    type Item = (&'a String, &'a ServerLine);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, ServerLine)>,
        fn(&'a (String, ServerLine)) -> (&'a String, &'a ServerLine),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(name, line)| (name, line))
    }
}

impl std::ops::Index<&str> for ServerLines {
    type Output = ServerLine;

    /// Panics when no server has that name, as a map's index does.
    fn index(&self, name: &str) -> &ServerLine {
        self.get(name).expect("no server line of that name")
    }
}

/// One backend section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendState {
    /// sha256 of its lines other than the `# route` comment and `server`
    /// lines: equal shapes mean the same backend-level settings.
    pub shape: [u8; 32],
    /// `dynamic-cookie-key`, with a `cookie … dynamic` directive.
    pub cookie_key: Option<String>,
    /// Server name → line.
    pub servers: ServerLines,
}

/// What HAProxy holds of a tree (see the module documentation).
///
/// Persistent maps ([`imbl`]): a clone shares everything and costs O(1),
/// and an update copies one path, so the state of a tree that differs
/// from the last one in a few files costs about those files
/// ([`RuntimeState::of_tree_memo`]), and [`delta`]'s starting copy of the
/// running state costs nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeState {
    /// Files whose change needs a reload, by path.
    pub fixed: OrdMap<String, Arc<[u8]>>,
    /// Backend name → state.
    pub backends: OrdMap<Arc<str>, Arc<BackendState>>,
    /// Map file → key → value.
    pub maps: OrdMap<String, Arc<BTreeMap<String, String>>>,
    /// Certificate file → contents.
    pub certs: OrdMap<String, Arc<[u8]>>,
    /// Certificate file → its `crt-list.txt` lines, in file order.
    pub crt_list: OrdMap<String, Vec<String>>,
    /// CA file → contents (every one in the tree).
    pub ca_files: OrdMap<String, Arc<[u8]>>,
    /// The CA files some server line names (those HAProxy has loaded).
    pub ca_loaded: OrdSet<String>,
}

/// Why a tree could not be read as a routegen HAProxy tree.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct StateError {
    pub file: String,
    pub message: String,
}

/// What [`RuntimeState::of_tree_memo`] keeps between calls: the state it
/// returned last, the contents of each file that state was read from, the
/// parsed backend sections of each backend file and how many server lines
/// name each CA file. A file whose contents are the same allocation (or
/// the same bytes) as last time is not read again; a changed one takes
/// out what it contributed and puts in what it now says.
#[derive(Debug, Default)]
pub struct StateMemo {
    last: RuntimeState,
    contents: HashMap<String, Arc<[u8]>>,
    backend_files: HashMap<String, Arc<FileBackends>>,
    ca_users: HashMap<String, usize>,
}

/// The backend sections of one file, in file order.
type FileBackends = Vec<(Arc<str>, Arc<BackendState>)>;

impl RuntimeState {
    /// The state of `tree` (see the module documentation).
    pub fn of_tree(tree: &OutputTree) -> Result<RuntimeState, StateError> {
        RuntimeState::of_tree_memo(&mut StateMemo::default(), tree)
    }

    /// [`RuntimeState::of_tree`], reading again only the files that
    /// changed since the last call with `memo`. An error leaves `memo`
    /// empty, and a duplicate backend is reported as a fresh read
    /// reports it (the error names the later file in path order).
    pub fn of_tree_memo(
        memo: &mut StateMemo,
        tree: &OutputTree,
    ) -> Result<RuntimeState, StateError> {
        let fresh = memo.contents.is_empty();
        match memo.update(tree) {
            Ok(state) => Ok(state),
            Err(e) => {
                *memo = StateMemo::default();
                if fresh {
                    Err(e)
                } else {
                    memo.update(tree)
                        .inspect_err(|_| *memo = StateMemo::default())
                }
            }
        }
    }
}

impl StateMemo {
    fn update(&mut self, tree: &OutputTree) -> Result<RuntimeState, StateError> {
        let mut changed = Vec::new();
        let mut kept = 0;
        for (path, file) in tree {
            match self.contents.get_mut(path) {
                Some(old) if Arc::ptr_eq(old, &file.contents) => kept += 1,
                Some(old) if **old == *file.contents => {
                    *old = file.contents.clone();
                    kept += 1;
                }
                _ => changed.push(path.as_str()),
            }
        }
        let removed: Vec<String> =
            if kept + changed.len() - self.new_paths(&changed) == self.contents.len() {
                Vec::new()
            } else {
                self.contents
                    .keys()
                    .filter(|p| !tree.contains_key(*p))
                    .cloned()
                    .collect()
            };
        for path in removed
            .iter()
            .map(String::as_str)
            .chain(changed.iter().copied())
        {
            self.forget(path);
        }
        for path in changed {
            self.read(path, &tree[path].contents)?;
        }
        Ok(self.last.clone())
    }

    /// How many of `changed` this memo has not seen.
    fn new_paths(&self, changed: &[&str]) -> usize {
        changed
            .iter()
            .filter(|p| !self.contents.contains_key(**p))
            .count()
    }

    /// Take out what the file at `path` contributed to the state.
    fn forget(&mut self, path: &str) {
        if self.contents.remove(path).is_none() {
            return;
        }
        let state = &mut self.last;
        if is_route_backends(path) {
            let Some(parsed) = self.backend_files.remove(path) else {
                return;
            };
            for (name, backend) in parsed.iter() {
                state.backends.remove(name);
                for ca in backend.servers.values().filter_map(ServerLine::ca_file) {
                    let users = self.ca_users.get_mut(ca).expect("counted when read");
                    *users -= 1;
                    if *users == 0 {
                        self.ca_users.remove(ca);
                        state.ca_loaded.remove(ca);
                    }
                }
            }
        } else if is_map(path) {
            state.maps.remove(path);
        } else if path.starts_with("certs/") {
            state.certs.remove(path);
        } else if path.starts_with("cas/") {
            state.ca_files.remove(path);
        } else if path == CRT_LIST {
            state.crt_list = OrdMap::new();
        } else {
            state.fixed.remove(path);
        }
    }

    /// Put in what the file at `path` says.
    fn read(&mut self, path: &str, bytes: &Arc<[u8]>) -> Result<(), StateError> {
        let state = &mut self.last;
        if is_route_backends(path) {
            let parsed = Arc::new(parse_backend_file(path, bytes)?);
            for (name, backend) in parsed.iter() {
                if state
                    .backends
                    .insert(name.clone(), backend.clone())
                    .is_some()
                {
                    return Err(StateError {
                        file: path.to_string(),
                        message: format!("backend {name} is defined twice"),
                    });
                }
                for ca in backend.servers.values().filter_map(ServerLine::ca_file) {
                    let users = self.ca_users.entry(ca.to_string()).or_default();
                    *users += 1;
                    if *users == 1 {
                        state.ca_loaded.insert(ca.to_string());
                    }
                }
            }
            self.backend_files.insert(path.to_string(), parsed);
        } else if is_map(path) {
            state
                .maps
                .insert(path.to_string(), Arc::new(parse_map(path, bytes)?));
        } else if path.starts_with("certs/") {
            state.certs.insert(path.to_string(), bytes.clone());
        } else if path.starts_with("cas/") {
            state.ca_files.insert(path.to_string(), bytes.clone());
        } else if path == CRT_LIST {
            let mut crt_list: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let text = utf8(path, bytes)?;
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let file = line.split_whitespace().next().unwrap_or_default();
                crt_list
                    .entry(file.to_string())
                    .or_default()
                    .push(line.to_string());
            }
            state.crt_list = crt_list.into_iter().collect();
        } else {
            state.fixed.insert(path.to_string(), bytes.clone());
        }
        self.contents.insert(path.to_string(), bytes.clone());
        Ok(())
    }
}

/// `maps/*.map`.
fn is_map(path: &str) -> bool {
    path.starts_with("maps/") && path.ends_with(".map")
}

/// `backends/routes-*.cfg` (the Routes' backends; `backends/default.cfg`
/// is fixed).
fn is_route_backends(path: &str) -> bool {
    path.strip_prefix(BACKENDS_DIR)
        .and_then(|p| p.strip_prefix("/routes-"))
        .is_some_and(|p| p.ends_with(".cfg"))
}

fn utf8<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, StateError> {
    std::str::from_utf8(bytes).map_err(|_| StateError {
        file: path.to_string(),
        message: "not UTF-8".into(),
    })
}

/// The backend sections of one `backends/routes-*.cfg` file, in file order.
fn parse_backend_file(path: &str, bytes: &[u8]) -> Result<FileBackends, StateError> {
    let text = utf8(path, bytes)?;
    let err = |message: String| StateError {
        file: path.to_string(),
        message,
    };
    let mut out = Vec::new();
    // A section being read: its name, the hash of its shape, the state
    // without its servers, and its server lines in file order.
    type Section = (
        String,
        openssl::sha::Sha256,
        BackendState,
        Vec<(String, ServerLine)>,
    );
    let mut current: Option<Section> = None;
    let mut finish = |current: Option<Section>| {
        if let Some((name, hash, mut backend, servers)) = current {
            backend.shape = hash.finish();
            backend.servers = servers.into_iter().collect();
            out.push((Arc::from(name), Arc::new(backend)));
        }
    };
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("backend ") {
            finish(current.take());
            let mut hash = openssl::sha::Sha256::new();
            hash.update(line.as_bytes());
            hash.update(b"\n");
            // `backend <name> [from <defaults>]`: the defaults named is
            // part of the settings (hashed above), not of the name.
            let name = name.split_whitespace().next().unwrap_or_default();
            let backend = BackendState {
                shape: [0; 32],
                cookie_key: None,
                servers: ServerLines::default(),
            };
            current = Some((name.to_string(), hash, backend, Vec::new()));
            continue;
        }
        let Some((name, hash, backend, servers)) = current.as_mut() else {
            continue; // the file's header comments
        };
        if line.starts_with('#') || line.trim().is_empty() {
            continue; // the next section's comment: not part of any shape
        }
        if let Some(rest) = line.trim_start().strip_prefix("server ") {
            let (server, args) = rest
                .split_once(' ')
                .ok_or_else(|| err(format!("backend {name}: server line without address")))?;
            let parsed = parse_server_args(args)
                .map_err(|m| err(format!("backend {name}, server {server}: {m}")))?;
            servers.push((server.to_string(), parsed));
            continue;
        }
        if let Some(key) = line.trim_start().strip_prefix("dynamic-cookie-key ") {
            backend.cookie_key = Some(key.trim().to_string());
        }
        hash.update(line.as_bytes());
        hash.update(b"\n");
    }
    finish(current.take());
    Ok(out)
}

fn parse_server_args(args: &str) -> Result<ServerLine, String> {
    let (mut id, mut weight, mut check) = (None, None, false);
    let mut words = args.split(' ').peekable();
    while let Some(word) = words.next() {
        match word {
            "id" => id = words.peek().and_then(|n| n.parse::<u32>().ok()),
            "weight" => weight = words.peek().and_then(|n| n.parse::<u16>().ok()),
            "check" => check = true,
            _ => {}
        }
    }
    Ok(ServerLine {
        id: id.ok_or("no numeric id")?,
        weight: weight.ok_or("no numeric weight")?,
        args: args.to_string(),
        check,
    })
}

fn parse_map(path: &str, bytes: &[u8]) -> Result<BTreeMap<String, String>, StateError> {
    let text = utf8(path, bytes)?;
    let mut entries = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(' ').ok_or_else(|| StateError {
            file: path.to_string(),
            message: format!("line without a value: {line}"),
        })?;
        entries.push((key.to_string(), value.trim().to_string()));
    }
    // Built at once, as inserting would (a later line of a key wins), but
    // with full B-tree nodes: inserting in key order leaves them half empty.
    Ok(entries.into_iter().collect())
}

/// One runtime-API command, in the order [`delta`] gives them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `add server <backend>/<server> <args>`, then `enable server` and,
    /// with `check`, `enable health`.
    AddServer {
        backend: String,
        server: String,
        args: String,
        check: bool,
    },
    /// `set server <backend>/<server> weight <weight>`.
    SetWeight {
        backend: String,
        server: String,
        weight: u16,
    },
    /// `set server <backend>/<server> state maint`, then `del server`
    /// (the host drains a server that still has connections).
    RemoveServer {
        backend: String,
        server: String,
        /// Its `add server` arguments (a server that comes back unchanged
        /// while it drains is made ready again).
        args: String,
    },
    /// `set dynamic-cookie-key backend <backend> <key>`: gives servers
    /// added at runtime their cookie (HAProxy 2.6 computes dynamic cookies
    /// of added servers only then).
    SetCookieKey {
        backend: String,
        key: String,
    },
    AddMap {
        map: String,
        key: String,
        value: String,
    },
    SetMap {
        map: String,
        key: String,
        value: String,
    },
    DelMap {
        map: String,
        key: String,
    },
    /// `new ssl cert <file>` (a file HAProxy has not loaded).
    NewCert {
        file: String,
    },
    /// `set ssl cert <file> <<PEM` then `commit ssl cert <file>`.
    UpdateCert {
        file: String,
        pem: Arc<[u8]>,
    },
    /// `add ssl crt-list crt-list.txt <<line`.
    AddCrtListLine {
        line: String,
    },
    /// `del ssl crt-list crt-list.txt <file>`.
    DelCrtListLine {
        file: String,
    },
    /// `del ssl cert <file>`.
    DelCert {
        file: String,
    },
    /// `new ssl ca-file <file>` (a CA file HAProxy has not loaded).
    NewCaFile {
        file: String,
    },
    /// `set ssl ca-file <file> <<PEM` then `commit ssl ca-file <file>`.
    UpdateCaFile {
        file: String,
        pem: Arc<[u8]>,
    },
}

/// What an [`Op`] changes, for `routegen_changes_total{kind}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    Server,
    Map,
    Certificate,
    CaFile,
}

impl OpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Server => "endpoint",
            OpKind::Map => "route",
            OpKind::Certificate => "certificate",
            OpKind::CaFile => "ca_file",
        }
    }
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Op::AddServer { .. }
            | Op::SetWeight { .. }
            | Op::RemoveServer { .. }
            | Op::SetCookieKey { .. } => OpKind::Server,
            Op::AddMap { .. } | Op::SetMap { .. } | Op::DelMap { .. } => OpKind::Map,
            Op::NewCert { .. }
            | Op::UpdateCert { .. }
            | Op::AddCrtListLine { .. }
            | Op::DelCrtListLine { .. }
            | Op::DelCert { .. } => OpKind::Certificate,
            Op::NewCaFile { .. } | Op::UpdateCaFile { .. } => OpKind::CaFile,
        }
    }
}

/// Why a change needs a reload (`routegen_reloads_total{reason}` and the
/// logs).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ReloadReason {
    /// A file of the fixed part (frontends, global, allowlists...).
    Config { file: String },
    /// A backend HAProxy does not run.
    BackendAdded { backend: String },
    /// A backend's settings (other than its servers) changed.
    BackendChanged { backend: String },
    /// A server's options other than its weight changed, or its id is
    /// taken.
    ServerChanged { backend: String, server: String },
    /// A certificate the runtime API cannot carry (see [`MAX_RUNTIME_PEM`]),
    /// or named by several crt-list lines.
    Certificate { file: String, why: &'static str },
}

impl ReloadReason {
    /// The `reason` label.
    pub fn label(&self) -> &'static str {
        match self {
            ReloadReason::Config { .. } => "config_changed",
            ReloadReason::BackendAdded { .. } => "backend_added",
            ReloadReason::BackendChanged { .. } => "backend_changed",
            ReloadReason::ServerChanged { .. } => "server_options_changed",
            ReloadReason::Certificate { .. } => "certificate",
        }
    }
}

impl fmt::Display for ReloadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReloadReason::Config { file } => write!(f, "{file} changed"),
            ReloadReason::BackendAdded { backend } => write!(f, "new backend {backend}"),
            ReloadReason::BackendChanged { backend } => {
                write!(f, "settings of backend {backend} changed")
            }
            ReloadReason::ServerChanged { backend, server } => {
                write!(f, "options of server {backend}/{server} changed")
            }
            ReloadReason::Certificate { file, why } => write!(f, "certificate {file}: {why}"),
        }
    }
}

/// The outcome of [`delta`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// The live commands, in order.
    pub ops: Vec<Op>,
    /// What HAProxy holds once `ops` succeeded.
    pub after: RuntimeState,
    /// Why a reload is still needed (empty: `after` equals the new state).
    pub reload: Vec<ReloadReason>,
}

impl Delta {
    /// The new state is served without a reload once `ops` succeeded.
    pub fn is_live(&self) -> bool {
        self.reload.is_empty()
    }
}

/// The commands that make HAProxy, running `running`, serve as much of
/// `new` as the runtime API can; see the module documentation.
pub fn delta(running: &RuntimeState, new: &RuntimeState) -> Delta {
    let mut ops = Vec::new();
    let mut reload = Vec::new();
    let mut after = running.clone();

    // The fixed part.
    for path in running.fixed.keys().chain(new.fixed.keys()) {
        let (a, b) = (running.fixed.get(path), new.fixed.get(path));
        let same = match (a, b) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        };
        if !same {
            reload.push(ReloadReason::Config { file: path.clone() });
        }
    }
    for path in running.maps.keys().chain(new.maps.keys()) {
        if !(running.maps.contains_key(path) && new.maps.contains_key(path)) {
            reload.push(ReloadReason::Config { file: path.clone() });
        }
    }

    // CA files: those a new server needs and HAProxy has not loaded, and
    // changed contents of loaded ones.
    let mut ca_ops = Vec::new();
    for file in &new.ca_loaded {
        let Some(pem) = new.ca_files.get(file) else {
            continue; // haproxy -c refuses the tree
        };
        let loaded = running.ca_loaded.contains(file);
        let same = running
            .ca_files
            .get(file)
            .is_some_and(|old| Arc::ptr_eq(old, pem) || old == pem);
        if loaded && same {
            continue;
        }
        if loaded {
            // Committing a changed CA file does not stop HAProxy 2.6 from
            // reusing connections its servers verified against the old one
            // (found by tests/runtime_equivalence.rs): reload.
            reload.push(ReloadReason::Certificate {
                file: file.clone(),
                why: "a CA file servers use changed",
            });
            continue;
        }
        if let Some(why) = pem_unsendable(pem) {
            reload.push(ReloadReason::Certificate {
                file: file.clone(),
                why,
            });
            continue;
        }
        ca_ops.push(Op::NewCaFile { file: file.clone() });
        ca_ops.push(Op::UpdateCaFile {
            file: file.clone(),
            pem: pem.clone(),
        });
        after.ca_loaded.insert(file.clone());
    }
    after.ca_files = new.ca_files.clone();

    // Servers of backends HAProxy runs with the same shape.
    let mut server_ops = Vec::new();
    let mut removals = Vec::new();
    for (name, backend, old) in merge_by_name(&new.backends, &running.backends) {
        let Some(old) = old else {
            if backend.servers.is_empty() && spares::parse_spare_name(name).is_some() {
                // A spare the running HAProxy lacks: nothing refers to it
                // (the next reload brings it); not offered until then.
                continue;
            }
            reload.push(ReloadReason::BackendAdded {
                backend: name.to_string(),
            });
            continue;
        };
        if Arc::ptr_eq(old, backend) {
            continue;
        }
        if old.shape != backend.shape || old.cookie_key != backend.cookie_key {
            reload.push(ReloadReason::BackendChanged {
                backend: name.to_string(),
            });
            continue;
        }
        let (ops_here, removed, reasons) = server_delta(name, old, backend);
        if !reasons.is_empty() {
            // Left as HAProxy runs it until the reload.
            reload.extend(reasons);
            continue;
        }
        let added = ops_here.iter().any(|op| matches!(op, Op::AddServer { .. }));
        server_ops.extend(ops_here);
        if added {
            if let Some(key) = &backend.cookie_key {
                server_ops.push(Op::SetCookieKey {
                    backend: name.to_string(),
                    key: key.clone(),
                });
            }
        }
        removals.extend(removed);
        after.backends.insert(name.clone(), backend.clone());
    }
    // A backend no longer in the tree stays in HAProxy, unreferenced,
    // until the next reload: `after` keeps it, so a Route that comes back
    // with the same settings is served live again.

    // Map keys: applied unless the value is a backend HAProxy does not run
    // as the new tree has it.
    let serves = |value: &str| {
        value == NO_ROUTE_BACKEND
            || value == REDIRECT_VALUE
            || match (after.backends.get(value), new.backends.get(value)) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                _ => false,
            }
    };
    let mut map_ops = Vec::new();
    let mut map_dels = Vec::new();
    let mut new_maps = BTreeMap::new();
    let mut deferred = false;
    for (path, new_map) in &new.maps {
        let Some(old_map) = running.maps.get(path) else {
            continue; // a new map file: reloaded above
        };
        if Arc::ptr_eq(old_map, new_map) {
            continue;
        }
        let mut held: BTreeMap<String, String> = (**old_map).clone();
        for (key, value) in new_map.iter() {
            match old_map.get(key) {
                Some(old) if old == value => {}
                // The key stays as HAProxy has it and the reload brings
                // it (the backend's own reason is recorded above).
                _ if !serves(value) => deferred = true,
                Some(_) => {
                    map_ops.push(Op::SetMap {
                        map: path.clone(),
                        key: key.clone(),
                        value: value.clone(),
                    });
                    held.insert(key.clone(), value.clone());
                }
                None => {
                    map_ops.push(Op::AddMap {
                        map: path.clone(),
                        key: key.clone(),
                        value: value.clone(),
                    });
                    held.insert(key.clone(), value.clone());
                }
            }
        }
        for key in old_map.keys() {
            if !new_map.contains_key(key) {
                map_dels.push(Op::DelMap {
                    map: path.clone(),
                    key: key.clone(),
                });
                held.remove(key);
            }
        }
        new_maps.insert(path.clone(), Arc::new(held));
    }
    for (path, map) in new_maps {
        after.maps.insert(path, map);
    }
    if deferred && reload.is_empty() {
        // Only a tree naming a backend it does not define gets here.
        reload.push(ReloadReason::Config {
            file: "maps/".into(),
        });
    }

    // Certificates and their crt-list lines.
    let mut cert_ops = Vec::new();
    let mut cert_dels = Vec::new();
    for (file, pem) in &new.certs {
        let old = running.certs.get(file);
        let same_pem = old.is_some_and(|o| Arc::ptr_eq(o, pem) || o == pem);
        let old_lines = running.crt_list.get(file);
        let new_lines = new.crt_list.get(file);
        if same_pem && old_lines == new_lines {
            continue;
        }
        if old_lines.is_some_and(|l| l.len() > 1) || new_lines.is_some_and(|l| l.len() > 1) {
            reload.push(ReloadReason::Certificate {
                file: file.clone(),
                why: "named by more than one crt-list line",
            });
            continue;
        }
        if old_lines.is_some() && old_lines != new_lines && !crt_list_line_deletable(file) {
            reload.push(ReloadReason::Certificate {
                file: file.clone(),
                why: UNDELETABLE_LINE,
            });
            continue;
        }
        if !same_pem {
            if let Some(why) = pem_unsendable(pem) {
                reload.push(ReloadReason::Certificate {
                    file: file.clone(),
                    why,
                });
                continue;
            }
            if old.is_none() {
                cert_ops.push(Op::NewCert { file: file.clone() });
            }
            cert_ops.push(Op::UpdateCert {
                file: file.clone(),
                pem: pem.clone(),
            });
        }
        if old_lines != new_lines {
            if old_lines.is_some() {
                cert_ops.push(Op::DelCrtListLine { file: file.clone() });
            }
            if let Some(lines) = new_lines {
                cert_ops.extend(
                    lines
                        .iter()
                        .map(|line| Op::AddCrtListLine { line: line.clone() }),
                );
            }
        }
        after.certs.insert(file.clone(), pem.clone());
        match new_lines {
            Some(lines) => after.crt_list.insert(file.clone(), lines.clone()),
            None => after.crt_list.remove(file),
        };
    }
    for file in running.certs.keys() {
        if new.certs.contains_key(file) {
            continue;
        }
        if running.crt_list.get(file).is_some_and(|l| l.len() > 1) {
            reload.push(ReloadReason::Certificate {
                file: file.clone(),
                why: "named by more than one crt-list line",
            });
            continue;
        }
        if running.crt_list.contains_key(file) && !crt_list_line_deletable(file) {
            reload.push(ReloadReason::Certificate {
                file: file.clone(),
                why: UNDELETABLE_LINE,
            });
            continue;
        }
        if running.crt_list.contains_key(file) {
            cert_dels.push(Op::DelCrtListLine { file: file.clone() });
        }
        cert_dels.push(Op::DelCert { file: file.clone() });
        after.certs.remove(file);
        after.crt_list.remove(file);
    }

    // Order: what new servers and keys need first (CA files, certificates,
    // servers), then the keys, then what nothing names any more.
    ops.extend(ca_ops);
    ops.extend(cert_ops);
    ops.extend(server_ops);
    ops.extend(map_ops);
    ops.extend(map_dels);
    ops.extend(removals);
    ops.extend(cert_dels);
    reload.sort();
    reload.dedup();
    Delta { ops, after, reload }
}

/// What differs between two trees' states, as the backends and
/// certificates a validation subset must hold
/// ([`super::subset::validation_subset`]): the backend sections that
/// differ or are new, those whose CA file changed, and the certificates
/// that differ or are new (or whose crt-list lines do). `None` when a file
/// of the fixed part differs (frontends, global, allowlists): only a full
/// validation will do.
pub fn changed_parts(
    old: &RuntimeState,
    new: &RuntimeState,
) -> Option<(BTreeSet<String>, BTreeSet<String>)> {
    let same = |a: Option<&Arc<[u8]>>, b: Option<&Arc<[u8]>>| match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        (None, None) => true,
        _ => false,
    };
    let fixed_paths: BTreeSet<&String> = old.fixed.keys().chain(new.fixed.keys()).collect();
    if fixed_paths
        .into_iter()
        .any(|p| !same(old.fixed.get(p), new.fixed.get(p)))
    {
        return None;
    }
    if old.maps.keys().ne(new.maps.keys()) {
        return None;
    }
    let changed_cas: BTreeSet<&str> = new
        .ca_files
        .iter()
        .filter(|(file, _)| !same(old.ca_files.get(*file), new.ca_files.get(*file)))
        .map(|(file, _)| file.as_str())
        .collect();
    let backends = new
        .backends
        .iter()
        .filter(|(name, b)| {
            let differs = old
                .backends
                .get(*name)
                .is_none_or(|o| !(Arc::ptr_eq(o, b) || o == *b));
            differs
                || b.servers
                    .values()
                    .any(|s| s.ca_file().is_some_and(|f| changed_cas.contains(f)))
        })
        .map(|(name, _)| name.to_string())
        .collect();
    let certs = new
        .certs
        .iter()
        .filter(|(file, pem)| {
            !same(old.certs.get(*file), Some(pem))
                || old.crt_list.get(*file) != new.crt_list.get(*file)
        })
        .map(|(file, _)| file.clone())
        .collect();
    Some((backends, certs))
}

/// Each backend of `new` with `running`'s of the same name, in name
/// order: one walk over both maps instead of a lookup per backend. Names
/// are shared `Arc`s between states read from the same files, so most
/// comparisons are a pointer's.
fn merge_by_name<'a>(
    new: &'a OrdMap<Arc<str>, Arc<BackendState>>,
    running: &'a OrdMap<Arc<str>, Arc<BackendState>>,
) -> impl Iterator<
    Item = (
        &'a Arc<str>,
        &'a Arc<BackendState>,
        Option<&'a Arc<BackendState>>,
    ),
> {
    let mut old = running.iter().peekable();
    new.iter().map(move |(name, backend)| {
        let name_str: &str = name;
        // Backends HAProxy runs that `new` lacks: passed over.
        while old
            .next_if(|(o, _)| !Arc::ptr_eq(o, name) && o.as_ref() < name_str)
            .is_some()
        {}
        let same = old.next_if(|(o, _)| Arc::ptr_eq(o, name) || o.as_ref() == name_str);
        (name, backend, same.map(|(_, b)| b))
    })
}

/// Server ops of one backend whose shape did not change: (adds and
/// weights, removals, reasons to reload instead).
fn server_delta(
    backend: &str,
    old: &BackendState,
    new: &BackendState,
) -> (Vec<Op>, Vec<Op>, Vec<ReloadReason>) {
    let (mut ops, mut removals, mut reasons) = (Vec::new(), Vec::new(), Vec::new());
    let ids_in_use: BTreeMap<u32, &str> = old
        .servers
        .iter()
        .filter(|(name, _)| new.servers.contains_key(name))
        .map(|(name, line)| (line.id, name.as_str()))
        .collect();
    for (name, line) in &new.servers {
        match old.servers.get(name) {
            Some(o) if o == line => {}
            Some(o) if o.option_words().eq(line.option_words()) => ops.push(Op::SetWeight {
                backend: backend.to_string(),
                server: name.clone(),
                weight: line.weight,
            }),
            Some(_) => reasons.push(ReloadReason::ServerChanged {
                backend: backend.to_string(),
                server: name.clone(),
            }),
            None => {
                if ids_in_use.get(&line.id).is_some_and(|n| n != name) {
                    reasons.push(ReloadReason::ServerChanged {
                        backend: backend.to_string(),
                        server: name.clone(),
                    });
                    continue;
                }
                ops.push(Op::AddServer {
                    backend: backend.to_string(),
                    server: name.clone(),
                    args: line.args.clone(),
                    check: line.check,
                });
            }
        }
    }
    for (name, line) in &old.servers {
        if !new.servers.contains_key(name) {
            removals.push(Op::RemoveServer {
                backend: backend.to_string(),
                server: name.clone(),
                args: line.args.clone(),
            });
        }
    }
    (ops, removals, reasons)
}

/// Why the crt-list line of a certificate whose path has a `:` stays until
/// a reload.
const UNDELETABLE_LINE: &str =
    "HAProxy cannot delete its crt-list line at runtime (a ':' in the path)";

/// Whether `del ssl crt-list` can name `file`: HAProxy (2.6 and later)
/// reads its argument as `<file>[:<line>]` from the *first* `:`, so a path
/// with a `:` (every Route's own certificate, `certs/<ns>:<name>.pem`) is
/// refused ("wrong line number after colons"). Its line is removed or
/// changed by a reload instead; the Route's map keys still go at once.
fn crt_list_line_deletable(file: &str) -> bool {
    !file.contains(':')
}

/// Why a PEM cannot be sent over the runtime API, if it cannot.
fn pem_unsendable(pem: &[u8]) -> Option<&'static str> {
    if pem.len() > MAX_RUNTIME_PEM {
        return Some("larger than the runtime API's command buffer");
    }
    let text = std::str::from_utf8(pem).ok()?;
    if text.trim_end().lines().any(|l| l.trim().is_empty()) {
        return Some("has an empty line (it would end the command's payload)");
    }
    None
}

#[cfg(test)]
mod tests;
