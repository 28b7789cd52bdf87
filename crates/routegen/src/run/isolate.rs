//! Per-Route fault isolation: when `haproxy -c` refuses a tree, find the
//! Route(s) responsible so they alone can be left out (issue "The sidecar",
//! part 4).
//!
//! Two tools, both bounded:
//! - [`attribute`] (pure) reads HAProxy's alert lines and maps what they
//!   name back to Routes through the tree and the plan that produced it:
//!   per-Route files (`certs/<ns>:<name>.pem`, `cas/<ns>:<name>.pem`,
//!   `allowlists/<ns>:<name>.txt`), `[crt-list.txt:N]` / `line N in file
//!   'crt-list.txt'` (the crt-list entry's certificate file), map file lines
//!   (the entry's backend or key), backend and server names
//!   (`'server be_x:<ns>:<name>/…'`, `backend 'be_x:<ns>:<name>'`), and
//!   lines of the configuration files: `[…/backends/routes-007.cfg:N]`
//!   (any `backends/*.cfg`, where the backend sections are) and
//!   `[…/haproxy.cfg:N]` map to the backend section holding line N of *that*
//!   file (by its name, else the `# route <ns>/<name>` comment heading it).
//!   A line that names a file shared by several Routes (the default
//!   certificate, the service CA) or a line outside any Route's backend
//!   (`global`, `defaults`, the frontends of `haproxy.cfg`, `be_no_route`
//!   and `be_terminate` in `backends/default.cfg`) is *not* attributed: that
//!   is not one Route's fault.
//! - [`bisect`] when nothing can be attributed: validate the tree with no
//!   Route at all (if that fails too, the problem is global and no Route is
//!   blamed), then halves of the candidates, assuming each bad Route is bad
//!   on its own. At most `budget` validations.

use std::collections::{BTreeMap, BTreeSet};

use routegen_core::model::ObjectKey;
use routegen_core::plan::{Plan, ServerVerify};
use routegen_render::haproxy::{map_keys, BACKENDS_DIR, CONFIG_FILE};
use routegen_render::output::OutputTree;

/// What [`attribute`] found in one `haproxy -c` output.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attribution {
    /// Route → the first alert line that named it (cleaned, see [`clean_alert`]).
    pub culprits: BTreeMap<ObjectKey, String>,
    /// Alert lines that name no single Route.
    pub unattributed: Vec<String>,
}

/// Where tree files, backends and lookup keys come from.
struct Index<'a> {
    tree: &'a OutputTree,
    /// Tree file → the one Route it belongs to.
    route_files: BTreeMap<String, ObjectKey>,
    /// Tree files used by no single Route (default certificate, shared CA).
    shared_files: BTreeSet<String>,
    backends: BTreeMap<&'a str, &'a ObjectKey>,
    /// Map keys as written (see `routegen_render::haproxy::map_keys`) and
    /// SNI values → Route and the precedence it wrote the key with.
    lookup_keys: BTreeMap<String, (&'a ObjectKey, u8)>,
}

impl<'a> Index<'a> {
    fn new(tree: &'a OutputTree, plan: &'a Plan) -> Index<'a> {
        let mut users: BTreeMap<String, BTreeSet<ObjectKey>> = BTreeMap::new();
        for cert in plan.certificates.iter() {
            users
                .entry(cert.file.clone())
                .or_default()
                .insert(cert.route.clone());
        }
        let mut backends = BTreeMap::new();
        // A spare names a Route of its shape: a spare refused is that shape refused.
        for backend in plan.backends.iter().chain(&plan.spares) {
            backends.insert(backend.name.as_str(), &backend.route);
            if let Some(file) = &backend.allowlist_file {
                users
                    .entry(file.clone())
                    .or_default()
                    .insert(backend.route.clone());
            }
            if let Some(tls) = &backend.server_tls {
                if let ServerVerify::CaFile { file, .. } = &tls.verify {
                    users
                        .entry(file.clone())
                        .or_default()
                        .insert(backend.route.clone());
                }
            }
        }
        let mut route_files = BTreeMap::new();
        let mut shared_files = BTreeSet::new();
        for (file, routes) in users {
            if routes.len() == 1 {
                route_files.insert(file, routes.into_iter().next().expect("one"));
            } else {
                shared_files.insert(file);
            }
        }
        // Every other file of the tree that is not a per-Route one is shared
        // (haproxy.cfg, backends/*.cfg, maps and crt-list are handled by
        // line).
        for file in tree.keys() {
            if !route_files.contains_key(file) {
                shared_files.insert(file.clone());
            }
        }
        let mut lookup_keys: BTreeMap<String, (&ObjectKey, u8)> = BTreeMap::new();
        for entry in plan.http_lookup.iter().chain(plan.https_lookup.iter()) {
            for (key, precedence) in map_keys(entry).into_iter().flatten() {
                let held = lookup_keys.entry(key).or_insert((&entry.route, precedence));
                if held.1 < precedence {
                    *held = (&entry.route, precedence);
                }
            }
        }
        for entry in plan.passthrough.iter() {
            lookup_keys.insert(entry.sni.to_string(), (&entry.route, u8::MAX));
        }
        Index {
            tree,
            route_files,
            shared_files,
            backends,
            lookup_keys,
        }
    }

    /// The tree path a path printed by HAProxy stands for: itself, or its
    /// longest suffix (after a `/`) that is a tree file (HAProxy prints the
    /// configuration file with the staging directory in front).
    fn tree_path(&self, printed: &str) -> Option<&'a str> {
        if let Some((k, _)) = self.tree.get_key_value(printed) {
            return Some(k.as_str());
        }
        let mut rest = printed;
        while let Some(i) = rest.find('/') {
            rest = &rest[i + 1..];
            if let Some((k, _)) = self.tree.get_key_value(rest) {
                return Some(k.as_str());
            }
        }
        None
    }

    fn line_of(&self, path: &str, line: usize) -> Option<&'a str> {
        let file = self.tree.get(path)?;
        std::str::from_utf8(&file.contents)
            .ok()?
            .lines()
            .nth(line.checked_sub(1)?)
    }

    /// The Route owning line `line` of `path`, if that line belongs to one.
    fn route_at(&self, path: &str, line: usize) -> Lookup {
        if is_config_file(path) {
            return self.cfg_section_route(path, line);
        }
        if self.route_files.contains_key(path) {
            return Lookup::Route(self.route_files[path].clone());
        }
        let Some(text) = self.line_of(path, line) else {
            return Lookup::Nothing;
        };
        if path == "crt-list.txt" {
            return match text.split_whitespace().next() {
                Some(file) => self.file(file),
                None => Lookup::Nothing,
            };
        }
        if path.ends_with(".map") {
            let mut fields = text.split_whitespace();
            let key = fields.next();
            let value = fields.next();
            if let Some(route) = value.and_then(|v| self.backends.get(v)) {
                return Lookup::Route((*route).clone());
            }
            if let Some((route, _)) = key.and_then(|k| self.lookup_keys.get(k)) {
                return Lookup::Route((*route).clone());
            }
        }
        Lookup::Nothing
    }

    /// Line `line` of the configuration file `path` (`haproxy.cfg` or a
    /// `backends/*.cfg`): the backend section around it.
    fn cfg_section_route(&self, path: &str, line: usize) -> Lookup {
        let Some(file) = self.tree.get(path) else {
            return Lookup::Nothing;
        };
        let Ok(text) = std::str::from_utf8(&file.contents) else {
            return Lookup::Nothing;
        };
        let lines: Vec<&str> = text.lines().collect();
        if line == 0 || line > lines.len() {
            return Lookup::Nothing;
        }
        for i in (0..line).rev() {
            let l = lines[i];
            let keyword = l.split_whitespace().next().unwrap_or("");
            let indented = l.starts_with(' ') || l.starts_with('\t');
            if indented || keyword.is_empty() || keyword.starts_with('#') {
                continue;
            }
            if keyword != "backend" {
                // global, defaults, frontend, listen, ...: not a Route's.
                return Lookup::Shared;
            }
            let name = l.split_whitespace().nth(1).unwrap_or("");
            if let Some(route) = self.backends.get(name) {
                return Lookup::Route((*route).clone());
            }
            // A backend of the template, or one the plan does not know:
            // try the comment heading it.
            if let Some(route) = i
                .checked_sub(1)
                .and_then(|j| route_comment(lines[j]))
                .filter(|k| self.backends.values().any(|r| *r == k))
            {
                return Lookup::Route(route);
            }
            return Lookup::Shared;
        }
        Lookup::Shared
    }

    fn file(&self, printed: &str) -> Lookup {
        match self.tree_path(printed) {
            Some(path) => match self.route_files.get(path) {
                Some(route) => Lookup::Route(route.clone()),
                None if self.shared_files.contains(path) && !is_line_mapped(path) => Lookup::Shared,
                None => Lookup::Nothing,
            },
            None => Lookup::Nothing,
        }
    }

    /// A backend name, or `server <backend>/<server>`.
    fn name(&self, text: &str) -> Option<ObjectKey> {
        let text = text.strip_prefix("server ").unwrap_or(text);
        let backend = text.split('/').next().unwrap_or(text);
        self.backends.get(backend).map(|r| (*r).clone())
    }
}

/// Files whose lines, not the whole file, belong to Routes.
fn is_line_mapped(path: &str) -> bool {
    is_config_file(path) || path == "crt-list.txt" || path.ends_with(".map")
}

/// The HAProxy configuration files of a tree: `haproxy.cfg` (global,
/// defaults, frontends) and `backends/*.cfg` (the backend sections).
fn is_config_file(path: &str) -> bool {
    path == CONFIG_FILE || backend_file_name(path).is_some()
}

/// `backends/<name>.cfg` → `<name>.cfg`, `<name>` made of `[A-Za-z0-9_.-]`
/// (what the renderer writes there: `default.cfg`, `routes-007.cfg`).
fn backend_file_name(path: &str) -> Option<&str> {
    let name = path.strip_prefix(BACKENDS_DIR)?.strip_prefix('/')?;
    let stem = name.strip_suffix(".cfg")?;
    (!stem.is_empty()
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')))
    .then_some(name)
}

#[derive(Debug)]
enum Lookup {
    Route(ObjectKey),
    /// Names something shared by many Routes, or no Route's section.
    Shared,
    Nothing,
}

/// `# route <ns>/<name> ...` → the Route.
fn route_comment(line: &str) -> Option<ObjectKey> {
    let rest = line.trim_start().strip_prefix("# route ")?;
    let key = rest.split_whitespace().next()?;
    let (ns, name) = key.split_once('/')?;
    Some(ObjectKey::new(ns, name))
}

/// The alert lines of a `haproxy -c` output, cleaned: the `[ALERT] (pid) :`
/// prefix and staging directories dropped; HAProxy's closing summary lines
/// ("Error(s) found…", "Fatal errors found…") left out.
pub fn alert_lines(output: &str) -> Vec<String> {
    output
        .lines()
        .filter(|l| l.contains("[ALERT]"))
        .map(clean_alert)
        .filter(|l| {
            !(l.contains("Error(s) found in configuration file")
                || l.contains("Fatal errors found in configuration")
                || l.is_empty())
        })
        .collect()
}

/// One alert line without `[ALERT]    (1234) : ` and with any path in
/// front of `haproxy.cfg` or `backends/<file>.cfg` removed
/// (`parsing [haproxy.cfg:63] : …`, `parsing [backends/routes-007.cfg:25] : …`).
pub fn clean_alert(line: &str) -> String {
    let mut text = line.trim();
    if let Some(i) = text.find("[ALERT]") {
        text = text[i + "[ALERT]".len()..].trim_start();
        // `(pid) : `
        if text.starts_with('(') {
            if let Some(j) = text.find(") : ") {
                text = &text[j + 4..];
            }
        }
    }
    strip_cfg_dirs(text.trim())
}

/// `[/x/y/haproxy.cfg:3]` → `[haproxy.cfg:3]`; `: /x/haproxy.cfg` → `: haproxy.cfg`;
/// `[/x/y/backends/routes-007.cfg:9]` → `[backends/routes-007.cfg:9]`.
fn strip_cfg_dirs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((i, len)) = next_config_path(rest) {
        let before = &rest[..i];
        // Walk back over the path in front of it.
        // Inside `[...]` or quotes the path may hold spaces; bare, it ends
        // at the previous space.
        let last_open = before.rfind('[');
        let inside_bracket = last_open.is_some() && last_open > before.rfind(']');
        let quotes = before.matches('\'').count();
        let start = if quotes % 2 == 1 {
            before.rfind('\'').map(|q| q + 1)
        } else if inside_bracket {
            last_open.map(|b| b + 1)
        } else {
            before.rfind(' ').map(|sp| sp + 1)
        }
        .unwrap_or(0);
        if before[start..].ends_with('/') || before[start..].is_empty() {
            out.push_str(&before[..start]);
        } else {
            out.push_str(before);
        }
        out.push_str(&rest[i..i + len]);
        rest = &rest[i + len..];
    }
    out.push_str(rest);
    out
}

/// The first `haproxy.cfg` or `backends/<name>.cfg` in `text`: its offset
/// and length.
fn next_config_path(text: &str) -> Option<(usize, usize)> {
    let cfg = text.find(CONFIG_FILE).map(|i| (i, CONFIG_FILE.len()));
    let mut from = 0;
    let backend = loop {
        let Some(i) = text[from..].find(BACKENDS_DIR).map(|i| from + i) else {
            break None;
        };
        let tail = &text[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')))
            .unwrap_or(tail.len());
        // Not a sentence's closing dot.
        let token = tail[..end].trim_end_matches('.');
        if backend_file_name(token).is_some() {
            break Some((i, token.len()));
        }
        from = i + BACKENDS_DIR.len();
    };
    match (cfg, backend) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// References an alert line makes: `(path, line)` locations and quoted words.
fn references(line: &str) -> (Vec<(String, usize)>, Vec<String>) {
    let mut locations = Vec::new();
    let mut quoted = Vec::new();
    // `[path:N]`
    let mut rest = line;
    while let Some(i) = rest.find('[') {
        rest = &rest[i + 1..];
        if let Some(j) = rest.find(']') {
            let inner = &rest[..j];
            if let Some((path, n)) = inner.rsplit_once(':') {
                if let Ok(n) = n.parse::<usize>() {
                    locations.push((path.to_string(), n));
                }
            }
        }
    }
    // `'quoted'`
    let mut parts = line.split('\'');
    parts.next();
    while let Some(inside) = parts.next() {
        quoted.push(inside.to_string());
        if parts.next().is_none() {
            break;
        }
    }
    // `line N of file 'path'` / `line N in file 'path'`
    let words: Vec<&str> = line.split_whitespace().collect();
    for w in words.windows(5) {
        if w[0] == "line" && (w[2] == "of" || w[2] == "in") && w[3] == "file" {
            if let Ok(n) = w[1].parse::<usize>() {
                let path =
                    w[4].trim_matches(|c: char| c == '\'' || c == '"' || c == ',' || c == ':');
                locations.push((path.to_string(), n));
            }
        }
    }
    (locations, quoted)
}

/// Map `haproxy -c`'s output back to Routes (see the module docs).
pub fn attribute(output: &str, tree: &OutputTree, plan: &Plan) -> Attribution {
    let index = Index::new(tree, plan);
    let mut result = Attribution::default();
    let alerts = alert_lines(output);
    if alerts.is_empty() {
        let text = output.trim();
        if !text.is_empty() {
            result
                .unattributed
                .push(text.lines().last().unwrap_or(text).to_string());
        }
        return result;
    }
    for alert in alerts {
        let (locations, quoted) = references(&alert);
        let mut routes: BTreeSet<ObjectKey> = BTreeSet::new();
        let mut shared = false;
        // Files named outright.
        for q in &quoted {
            match index.file(q) {
                Lookup::Route(r) => {
                    routes.insert(r);
                }
                Lookup::Shared => shared = true,
                _ => {}
            }
            if let Some(r) = index.name(q) {
                routes.insert(r);
            }
        }
        // `unable to load cas/x.pem.` style (unquoted file names).
        for word in alert.split_whitespace() {
            let word = word.trim_end_matches(['.', ',', ':', ';']);
            if word.contains('/') && !word.starts_with('[') {
                if let Lookup::Route(r) = index.file(word) {
                    routes.insert(r);
                }
            }
        }
        for (printed, n) in &locations {
            let Some(path) = index.tree_path(printed) else {
                continue;
            };
            match index.route_at(path, *n) {
                Lookup::Route(r) => {
                    routes.insert(r);
                }
                // A configuration line outside any Route's backend (a
                // frontend's `bind` line, say) does not make the alert
                // shared: what else it names decides.
                Lookup::Shared if !is_config_file(path) => shared = true,
                _ => {}
            }
        }
        if shared || routes.is_empty() {
            // A shared file is named: not one Route's fault, even if the
            // line also names a backend using it.
            result.unattributed.push(alert);
            continue;
        }
        for r in routes {
            result.culprits.entry(r).or_insert_with(|| alert.clone());
        }
    }
    result
}

/// Why [`bisect`] found no culprit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BisectError<E> {
    /// The tree is refused even with no Route in it: the proxy's first
    /// alert (the caller's message names the proxy).
    NotPerRoute(String),
    /// The whole set is refused but no single Route on its own is: the
    /// fault needs several Routes together.
    NoSingleCulprit,
    /// More validations would be needed than the budget allows.
    BudgetExhausted { used: usize },
    /// Validating failed for another reason (I/O, HAProxy missing).
    Check(E),
}

impl<E: std::fmt::Display> std::fmt::Display for BisectError<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BisectError::NotPerRoute(alert) => {
                write!(
                    f,
                    "the configuration is refused even without any Route: {alert}"
                )
            }
            BisectError::NoSingleCulprit => f.write_str(
                "no single Route is refused on its own; the fault needs several together",
            ),
            BisectError::BudgetExhausted { used } => {
                write!(f, "gave up after {used} validations")
            }
            BisectError::Check(e) => write!(f, "{e}"),
        }
    }
}

/// A subset still to examine.
enum Pending {
    /// Not validated yet.
    Unknown,
    /// Known to be refused, with HAProxy's output when it was validated
    /// itself (not only inferred from its sibling being fine).
    Refused(Option<String>),
}

/// Find the Routes among `candidates` whose presence alone makes the tree
/// invalid, knowing the whole set is refused. `check(subset)` renders and
/// validates the tree with only `subset` admitted (the other candidates
/// left out) and returns `Ok(None)` when it is valid, `Ok(Some(output))`
/// with HAProxy's output when not. At most `budget` calls; the first is
/// the empty subset (a refusal there means the fault is not any Route's).
pub fn bisect<E, F>(
    candidates: &[ObjectKey],
    budget: usize,
    mut check: F,
) -> Result<BTreeMap<ObjectKey, String>, BisectError<E>>
where
    F: FnMut(&[ObjectKey]) -> Result<Option<String>, E>,
{
    let mut used = 0usize;
    let mut run = |subset: &[ObjectKey]| -> Result<Option<String>, BisectError<E>> {
        if used >= budget {
            return Err(BisectError::BudgetExhausted { used });
        }
        used += 1;
        check(subset).map_err(BisectError::Check)
    };
    let first_alert = |output: &str| {
        alert_lines(output)
            .into_iter()
            .next()
            .unwrap_or_else(|| output.trim().to_string())
    };
    if let Some(output) = run(&[])? {
        return Err(BisectError::NotPerRoute(first_alert(&output)));
    }
    let mut found = BTreeMap::new();
    let mut work: Vec<(Vec<ObjectKey>, Pending)> =
        vec![(candidates.to_vec(), Pending::Refused(None))];
    while let Some((set, state)) = work.pop() {
        if set.is_empty() {
            continue;
        }
        let output = match state {
            Pending::Refused(Some(output)) => Some(output),
            Pending::Refused(None) if set.len() > 1 => None,
            _ => match run(&set)? {
                None => continue,
                Some(output) => Some(output),
            },
        };
        if set.len() == 1 {
            let output = output.unwrap_or_default();
            found.insert(set[0].clone(), first_alert(&output));
            continue;
        }
        let (left, right) = set.split_at(set.len() / 2);
        match run(left)? {
            // The left half is fine: the fault is in the right half.
            None => work.push((right.to_vec(), Pending::Refused(None))),
            Some(left_output) => {
                work.push((right.to_vec(), Pending::Unknown));
                work.push((left.to_vec(), Pending::Refused(Some(left_output))));
            }
        }
    }
    if found.is_empty() {
        return Err(BisectError::NoSingleCulprit);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    //! The alert texts below were captured from `haproxy -c` (HAProxy
    //! 2.6.12, OpenSSL 3.0) on trees rendered from the named `testdata/`
    //! cases and then damaged by hand (garbage or RSA-1024 certificate,
    //! missing file, bad crt-list option, bad CA file, bad allowlist entry,
    //! unknown keyword in a backend or on a server line, unknown keyword in
    //! `global`, broken default certificate), validated as the sidecar does
    //! (`haproxy -c -f <tree>/haproxy.cfg -f <tree>/backends`): lines of the
    //! frontends are `[…/haproxy.cfg:N]`, lines of backend sections
    //! `[…/backends/routes-NNN.cfg:N]` or `[…/backends/default.cfg:N]`. Only
    //! the staging directory in front of them was changed (`TREE`).

    use super::*;
    use routegen_host::config::PipelineOptions;
    use routegen_host::source::files;
    use routegen_render::pipeline::{self, Rendered};

    const TREE: &str = "/srv/out/staging/00000007-1a2b3c4d";
    const STAGED: &str = "/srv/out/staging/00000007-1a2b3c4d/haproxy.cfg";

    fn render_case(case: &str) -> Rendered {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        render_input(&root.join("testdata").join(case).join("input"))
    }

    fn render_input(input: &Path) -> Rendered {
        let state = tempfile::tempdir().unwrap();
        let options = PipelineOptions {
            target: Default::default(),
            router: Default::default(),
            template_dir: None,
            state_dir: Some(state.path().to_path_buf()),
            default_cert: None,
            service_ca_file: None,
            cookie_name: None,
            disable_http2: false,
            allow_loopback_endpoints: false,
            http_bind: vec![":80".parse().unwrap()],
            https_bind: vec![":443".parse().unwrap()],
            run_dir: "/tmp/exp/run".into(),
            maxconn: 1000,
            hard_stop_after: "30m".parse().unwrap(),
            max_old_workers: 5,
            header_actions_file: None,
            spares: Default::default(),
            haproxy_metrics_bind: Vec::new(),
            haproxy_log: None,
            haproxy_events: false,
        };
        let config = routegen_host::config::load(&options).unwrap();
        let loaded = files::load_paths(&[input.to_path_buf()], "default").unwrap();
        pipeline::render_snapshot_at(&loaded.snapshot, &config, 1_800_000_000).unwrap()
    }

    use std::path::Path;

    fn output(alerts: &[&str]) -> String {
        let mut out = String::from(
            "[NOTICE]   (25689) : haproxy version is 2.6.12-1+deb12u4\n[NOTICE]   (25689) : path to executable is /usr/sbin/haproxy\n",
        );
        for a in alerts {
            out.push_str(
                &a.replace("STAGED", STAGED)
                    .replace("TREE/", &format!("{TREE}/")),
            );
            out.push('\n');
        }
        out.push_str(&format!(
            "[ALERT]    (25689) : config : Error(s) found in configuration file : {STAGED}\n[ALERT]    (25689) : config : Fatal errors found in configuration."
        ));
        out
    }

    fn key(ns: &str, name: &str) -> ObjectKey {
        ObjectKey::new(ns, name)
    }

    fn culprits(r: &Rendered, alerts: &[&str]) -> Attribution {
        attribute(&output(alerts), &r.tree, &r.plan)
    }

    #[test]
    fn certificate_problems_name_the_route() {
        let r = render_case("edge-unique-cert-h2");
        for alert in [
            // garbage instead of the PEM
            "[ALERT]    (25689) : config : parsing [STAGED:63] : 'bind unix@/tmp/exp/run/fe_terminate.sock' in section 'frontend' : 'crt-list' : unable to load certificate from file 'certs/shop:www.pem'.",
            // RSA-1024 key (OpenSSL security level 2)
            "[ALERT]    (25697) : config : parsing [STAGED:63] : 'bind unix@/tmp/exp/run/fe_terminate.sock' in section 'frontend' : 'crt-list' : error processing line 1 in file 'crt-list.txt' : unable to load SSL certificate into SSL Context 'certs/shop:www.pem'.",
            // key of another certificate
            "[ALERT]    (25703) : config : parsing [STAGED:63] : 'bind unix@/tmp/exp/run/fe_terminate.sock' in section 'frontend' : 'crt-list' : inconsistencies between private key and certificate loaded 'certs/shop:www.pem'.",
            // file missing
            "[ALERT]    (25710) : config : parsing [STAGED:63] : 'bind unix@/tmp/exp/run/fe_terminate.sock' in section 'frontend' : 'crt-list' : unable to stat SSL certificate from file 'certs/shop:www.pem' : No such file or directory.",
            // bad crt-list option: only the crt-list line names it
            "[ALERT]    (25850) : config : parsing [STAGED:63] : 'bind unix@/tmp/exp/run/fe_terminate.sock' in section 'frontend' : 'crt-list' : parsing [crt-list.txt:1]: unknown ssl keyword bogus",
        ] {
            let a = culprits(&r, &[alert]);
            assert_eq!(
                a.culprits.keys().collect::<Vec<_>>(),
                vec![&key("shop", "www")],
                "{alert}"
            );
            assert!(a.unattributed.is_empty(), "{alert}: {a:?}");
            let line = &a.culprits[&key("shop", "www")];
            assert!(line.starts_with("config : parsing [haproxy.cfg:63] : 'bind unix@"), "{line}");
            assert!(!line.contains("/srv/out"), "staging path removed: {line}");
        }
    }

    #[test]
    fn backend_lines_name_the_route() {
        let r = render_case("edge-unique-cert-h2");
        let a = culprits(
            &r,
            &["[ALERT]    (17787) : config : parsing [TREE/backends/routes-000.cfg:8] : unknown keyword 'bogus-directive' in 'backend' section"],
        );
        assert_eq!(
            a.culprits,
            [(
                key("shop", "www"),
                "config : parsing [backends/routes-000.cfg:8] : unknown keyword 'bogus-directive' in 'backend' section".to_string()
            )]
            .into_iter()
            .collect()
        );
        assert!(a.unattributed.is_empty(), "{a:?}");
        // The section's `backend` line, its first and last lines.
        for n in [4, 5, 18] {
            let a = culprits(
                &r,
                &[&format!("[ALERT]    (1) : config : parsing [TREE/backends/routes-000.cfg:{n}] : unknown keyword 'x' in 'backend' section")],
            );
            assert_eq!(
                a.culprits.keys().collect::<Vec<_>>(),
                vec![&key("shop", "www")],
                "line {n}"
            );
        }
        // haproxy.cfg: a line in a frontend, in `global`, or past the end
        // (line 8 of the backend file is nothing of haproxy.cfg's); the
        // backend file's header, past its end; `global`, be_no_route and
        // be_terminate in backends/default.cfg: nobody's.
        for (file, n) in [
            ("haproxy.cfg", 40),
            ("haproxy.cfg", 5),
            ("haproxy.cfg", 63),
            ("haproxy.cfg", 76),
            ("haproxy.cfg", 10_000),
            ("backends/routes-000.cfg", 1),
            ("backends/routes-000.cfg", 10_000),
            ("backends/default.cfg", 7),
            ("backends/default.cfg", 11),
            ("backends/default.cfg", 17),
            ("backends/routes-001.cfg", 8),
        ] {
            let a = culprits(
                &r,
                &[&format!("[ALERT]    (1) : config : parsing [TREE/{file}:{n}] : unknown keyword 'x' in 'frontend' section")],
            );
            assert!(a.culprits.is_empty(), "{file}:{n}: {a:?}");
            assert_eq!(a.unattributed.len(), 1, "{file}:{n}");
        }
        // A line of a spare backend: the Route whose shape it has (a spare
        // refused is that shape refused).
        let a = culprits(
            &r,
            &["[ALERT]    (1) : config : parsing [TREE/backends/routes-000.cfg:22] : unknown keyword 'x' in 'backend' section"],
        );
        assert_eq!(
            a.culprits.keys().collect::<Vec<_>>(),
            vec![&key("shop", "www")]
        );
        // be_no_route broken (captured): HAProxy's message, no Route's.
        let a = culprits(
            &r,
            &["[ALERT]    (18250) : config : parsing [TREE/backends/default.cfg:11] : unknown keyword 'bogus-default' in 'backend' section; did you mean 'defaults' maybe ?"],
        );
        assert!(a.culprits.is_empty(), "{a:?}");
        assert_eq!(
            a.unattributed,
            ["config : parsing [backends/default.cfg:11] : unknown keyword 'bogus-default' in 'backend' section; did you mean 'defaults' maybe ?"]
        );
    }

    /// 1000 plain HTTP Routes `many/r0`..`many/r999` (8 backend files).
    fn render_many() -> Rendered {
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = String::from(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: site\n  namespace: many\nspec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n---\n\
             apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: site-1\n  namespace: many\n  labels:\n    kubernetes.io/service-name: site\n\
             addressType: IPv4\nports:\n- port: 8080\n  name: http\nendpoints:\n- addresses: [\"10.0.0.1\"]\n  conditions:\n    ready: true\n",
        );
        for i in 0..1000 {
            yaml.push_str(&format!(
                "---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: r{i}\n  namespace: many\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n\
                 spec:\n  host: r{i}.example.com\n  to:\n    kind: Service\n    name: site\n"
            ));
        }
        std::fs::write(dir.path().join("many.yaml"), yaml).unwrap();
        render_input(dir.path())
    }

    #[test]
    fn lines_of_each_backend_file_name_that_files_route() {
        let r = render_many();
        let files: Vec<&String> = r
            .tree
            .keys()
            .filter(|k| k.starts_with("backends/"))
            .collect();
        assert_eq!(files.len(), 9, "{files:?}");
        // Captured: line 25 of routes-007.cfg is inside be_http:many:r111;
        // one alert also breaks be_no_route in default.cfg.
        let a = culprits(
            &r,
            &[
                "[ALERT]    (18250) : config : parsing [TREE/backends/default.cfg:11] : unknown keyword 'bogus-default' in 'backend' section; did you mean 'defaults' maybe ?",
                "[ALERT]    (18250) : config : Error(s) found in configuration file : TREE/backends/default.cfg",
                "[ALERT]    (18250) : config : parsing [TREE/backends/routes-007.cfg:25] : unknown keyword 'bogus-directive' in 'backend' section",
                "[ALERT]    (18250) : config : Error(s) found in configuration file : TREE/backends/routes-007.cfg",
            ],
        );
        assert_eq!(
            a.culprits,
            [(
                key("many", "r111"),
                "config : parsing [backends/routes-007.cfg:25] : unknown keyword 'bogus-directive' in 'backend' section".to_string()
            )]
            .into_iter()
            .collect()
        );
        assert_eq!(a.unattributed.len(), 1, "{a:?}");
        assert!(a.unattributed[0].contains("[backends/default.cfg:11]"));
        // The same line number in every other file: that file's section.
        for file in &files[1..] {
            let text = std::str::from_utf8(&r.tree[*file].contents).unwrap();
            let backend = text
                .lines()
                .take(25)
                .filter_map(|l| l.strip_prefix("backend ")?.split(' ').next())
                .last();
            let a = culprits(
                &r,
                &[&format!("[ALERT]    (1) : config : parsing [TREE/{file}:25] : unknown keyword 'x' in 'backend' section")],
            );
            let want: Vec<ObjectKey> = backend
                .map(|b| {
                    let name = b.strip_prefix("be_http:many:").unwrap();
                    key("many", name)
                })
                .into_iter()
                .collect();
            assert_eq!(
                a.culprits.keys().cloned().collect::<Vec<_>>(),
                want,
                "{file}"
            );
            assert_eq!(want.len(), 1, "{file}: line 25 is in a Route's backend");
        }
        assert_eq!(files[0], "backends/default.cfg");
        assert_eq!(files[8], "backends/routes-007.cfg");
    }

    #[test]
    fn ca_and_server_problems_name_the_route() {
        let r = render_case("reencrypt-destination-ca");
        let a = culprits(
            &r,
            &[
                "[ALERT]    (18328) : config : [TREE/backends/routes-000.cfg:16] : 'server be_secure:pay:api/pod:api-0:api:https:10.0.2.1:8443' : Couldn't open the ca-file 'cas/pay:api.pem' (no certificate or crl found).",
                "[ALERT]    (18328) : config : 'ca-file' : unable to load cas/pay:api.pem.",
                "[ALERT]    (18328) : config : [TREE/backends/routes-000.cfg:17] : 'server be_secure:pay:api/pod:api-1:api:https:10.0.2.2:8443' : Couldn't open the ca-file 'cas/pay:api.pem' (no certificate or crl found).",
            ],
        );
        assert_eq!(
            a.culprits.keys().collect::<Vec<_>>(),
            vec![&key("pay", "api")]
        );
        assert!(a.unattributed.is_empty(), "{a:?}");
        assert!(a.culprits[&key("pay", "api")]
            .starts_with("config : [backends/routes-000.cfg:16] : 'server be_secure:pay:api/"));
        let a = culprits(
            &r,
            &["[ALERT]    (18379) : config : [TREE/backends/routes-000.cfg:16] : 'server be_secure:pay:api/pod:api-0:api:https:10.0.2.1:8443' : unknown keyword 'bogusopt'."],
        );
        assert_eq!(
            a.culprits.keys().collect::<Vec<_>>(),
            vec![&key("pay", "api")]
        );
    }

    #[test]
    fn allowlist_and_map_lines_name_the_route() {
        let r = render_case("annotations-valid");
        let a = culprits(
            &r,
            &["[ALERT]    (18386) : config : parsing [TREE/backends/routes-000.cfg:9] : 'tcp-request content reject' : error detected in backend 'be_edge_http:ann:all' while parsing 'if' condition : 'not-an-ip' is not a valid IPv4 or IPv6 address at line 4 of file 'allowlists/ann:all.txt'"],
        );
        assert_eq!(
            a.culprits.keys().collect::<Vec<_>>(),
            vec![&key("ann", "all")]
        );
        // Map lines: by the backend they name, else by their key.
        let http_map = String::from_utf8(r.tree["maps/http.map"].contents.to_vec()).unwrap();
        let nocookie = http_map
            .lines()
            .position(|l| l.ends_with("be_http:ann:nocookie"))
            .unwrap()
            + 1;
        let redirect = http_map
            .lines()
            .position(|l| l.ends_with(" redirect"))
            .unwrap()
            + 1;
        let a = culprits(
            &r,
            &[&format!("[ALERT]    (1) : config : parsing [STAGED:40] : error at line {nocookie} of file 'maps/http.map'")],
        );
        assert_eq!(
            a.culprits.keys().collect::<Vec<_>>(),
            vec![&key("ann", "nocookie")]
        );
        let a = culprits(
            &r,
            &[&format!(
                "[ALERT]    (1) : config : bad entry [maps/http.map:{redirect}]"
            )],
        );
        assert_eq!(
            a.culprits.keys().collect::<Vec<_>>(),
            vec![&key("ann", "all")]
        );
    }

    #[test]
    fn global_problems_are_not_attributed() {
        let r = render_case("edge-unique-cert-h2");
        for alert in [
            "[ALERT]    (1442) : config : parsing [STAGED:7] : unknown keyword 'bogus-global' in 'global' section; did you mean 'global' maybe ?",
            "[ALERT]    (1448) : config : parsing [STAGED:63] : 'bind unix@/tmp/exp/run/fe_terminate.sock' in section 'frontend' : unable to load certificate from file 'certs/default.pem'.",
        ] {
            let a = culprits(&r, &[alert]);
            assert!(a.culprits.is_empty(), "{alert}: {a:?}");
            assert_eq!(a.unattributed.len(), 1);
        }
        // No alert at all (HAProxy crashed?): the last line is reported.
        let a = attribute("Segmentation fault", &r.tree, &r.plan);
        assert!(a.culprits.is_empty());
        assert_eq!(a.unattributed, vec!["Segmentation fault".to_string()]);
    }

    #[test]
    fn clean_alert_drops_prefix_and_staging_path() {
        assert_eq!(
            clean_alert(
                "[ALERT]    (25727) : config : parsing [/a b/x/haproxy.cfg:76] : unknown keyword"
            ),
            "config : parsing [haproxy.cfg:76] : unknown keyword"
        );
        assert_eq!(
            clean_alert(
                "[ALERT]    (1) : config : Error(s) found in configuration file : /x/y/haproxy.cfg"
            ),
            "config : Error(s) found in configuration file : haproxy.cfg"
        );
        assert_eq!(
            clean_alert(
                "[ALERT]    (18250) : config : parsing [/a b/x/backends/routes-007.cfg:25] : unknown keyword 'bogus-directive' in 'backend' section"
            ),
            "config : parsing [backends/routes-007.cfg:25] : unknown keyword 'bogus-directive' in 'backend' section"
        );
        assert_eq!(
            clean_alert(
                "[ALERT]    (18250) : config : Error(s) found in configuration file : /x/y/backends/default.cfg"
            ),
            "config : Error(s) found in configuration file : backends/default.cfg"
        );
        assert_eq!(
            clean_alert(
                "[ALERT] (1) : config : [/x/y/haproxy.cfg:3] then [/x/y/backends/default.cfg:4]."
            ),
            "config : [haproxy.cfg:3] then [backends/default.cfg:4]."
        );
        // Not a configuration file: left alone.
        assert_eq!(
            clean_alert("[ALERT] (1) : config : '/x/backends/notes.txt' and /x/mybackends/a.cfg"),
            "config : '/x/backends/notes.txt' and /x/mybackends/a.cfg"
        );
        assert_eq!(clean_alert("no alert here"), "no alert here");
        assert!(alert_lines(&output(&[])).is_empty());
    }

    fn keys(names: &[&str]) -> Vec<ObjectKey> {
        names.iter().map(|n| key("ns", n)).collect()
    }

    #[test]
    fn bisect_finds_independent_culprits_within_budget() {
        let all = keys(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]);
        let bad = keys(&["c", "i"]);
        let mut calls = 0;
        let found = bisect::<(), _>(&all, 40, |subset| {
            calls += 1;
            Ok(subset
                .iter()
                .find(|k| bad.contains(k))
                .map(|k| format!("[ALERT]    (1) : config : broken {}", k.name)))
        })
        .unwrap();
        assert_eq!(found.keys().cloned().collect::<Vec<_>>(), bad);
        assert_eq!(found[&key("ns", "c")], "config : broken c");
        assert!(calls <= 16, "{calls} validations");

        // One bad Route among many: about 2 log2(n) validations.
        let many: Vec<ObjectKey> = (0..1000).map(|i| key("ns", &format!("r{i}"))).collect();
        let mut calls = 0;
        let found = bisect::<(), _>(&many, 40, |subset| {
            calls += 1;
            Ok(subset
                .iter()
                .any(|k| k.name == "r617")
                .then(|| "x".to_string()))
        })
        .unwrap();
        assert_eq!(
            found.keys().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            vec!["r617"]
        );
        assert!(calls <= 22, "{calls} validations");
    }

    #[test]
    fn bisect_gives_up_cleanly() {
        let all = keys(&["a", "b", "c", "d"]);
        // Refused even without Routes: global.
        let e = bisect::<(), _>(&all, 10, |_| {
            Ok(Some("[ALERT] (1) : config : global".into()))
        })
        .unwrap_err();
        assert_eq!(e, BisectError::NotPerRoute("config : global".into()));
        // Only b and d together are refused.
        let e = bisect::<(), _>(&all, 20, |s| {
            Ok((s.contains(&key("ns", "b")) && s.contains(&key("ns", "d"))).then(String::new))
        })
        .unwrap_err();
        assert_eq!(e, BisectError::NoSingleCulprit);
        // Budget.
        let many: Vec<ObjectKey> = (0..1000).map(|i| key("ns", &format!("r{i}"))).collect();
        let e = bisect::<(), _>(&many, 5, |s| Ok((!s.is_empty()).then(String::new))).unwrap_err();
        assert_eq!(e, BisectError::BudgetExhausted { used: 5 });
        // Check errors pass through.
        let e = bisect(&all, 5, |_| Err("io")).unwrap_err();
        assert_eq!(e, BisectError::Check("io"));
    }
}
