//! The HAProxy renderer: [`render_haproxy`] turns a [`Plan`] into the full
//! output tree (SPEC §8): `haproxy.cfg`, the lookup maps, the crt-list, the
//! certificate, CA and allowlist files.
//!
//! # Request routing
//! Every lookup is a prefix-tree lookup (`map_beg`, which HAProxy indexes
//! as a tree and answers with the longest matching key): the cost per
//! request is O(key length), the same whatever other hosts' Routes are
//! (issue 17: one tenant's deep paths must not slow another's requests),
//! and the frontends are the same for every set of Routes, so a Route's
//! path never needs a reload.
//!
//! `fe_http` (port 80) and `fe_terminate` (TLS terminated) look a request
//! up the same way, in `maps/http.map` and `maps/https.map`:
//! 1. `txn.host` = the Host header without `:port`, lower-cased, without a
//!    trailing dot; unset unless it is made of `a-z 0-9 _ -` labels (so a
//!    crafted Host such as `a.com/admin` cannot reach a path entry).
//! 2. `txn.path` = the path (`/` for a request without one, such as
//!    `OPTIONS *`), never holding `?` (the query starts there).
//! 3. The longest key that begins `<txn.host><txn.path>?`; if none, the
//!    same with `txn.whost` = `*.` + the host without its first label (only
//!    when that label is `[a-z0-9-]+`).
//! 4. The value is a backend name, `redirect` (302 to https) or
//!    `be_no_route` (503).
//!
//! The keys ([`map_keys`]) make every hit a true OpenShift match: a Prefix
//! path `/foo` is `<host>/foo?` (the path itself, which no other path
//! begins with) and `<host>/foo/` (anything below it), so `/foobar` is not
//! matched; an Under path `/foo/` is `<host>/foo/`, and wins that key over
//! a Prefix `/foo` of the same host (the more specific Route); the host's
//! fallback is `<host>/`. The longest key is the deepest path, so the most
//! specific Route wins.
//!
//! `fe_https` (port 443) reads the SNI without terminating: an exact, then
//! wildcard, hit in `maps/passthrough.map` goes to that TCP backend; the
//! rest goes through `be_terminate` (PROXY v2 over a Unix socket) to
//! `fe_terminate`.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use serde::Serialize;

use crate::output::OutputTree;
use crate::Files;
use routegen_core::admit::route::Termination;
use routegen_core::model::ArcStr;
use routegen_core::plan::{
    Backend, LookupAction, LookupEntry, Mode, PathMatch, Plan, Server, ServerTls, ServerVerify,
    Shared,
};
use routegen_core::values::{Balance, ForwardedPolicy};

use super::escape::{self, Checked, EscapeError};
use super::{RenderError, RenderSettings, Templates};

mod context;
pub mod runtime;
pub mod subset;

use context::{BackendCtx, HeaderActionCtx, LookupCtx, RateLimitCtx, RewriteCtx, ServerCtx, Text};

/// Name of the backend that answers 503 (also a map value: `Refuse`).
pub const NO_ROUTE_BACKEND: &str = "be_no_route";
/// Map value meaning "redirect to https".
pub const REDIRECT_VALUE: &str = "redirect";

/// File names in the tree.
pub const CONFIG_FILE: &str = "haproxy.cfg";
/// Directory of the backend sections (`-f` on a directory: its `*.cfg`
/// files in lexical order).
pub const BACKENDS_DIR: &str = "backends";
pub const HTTP_MAP: &str = "maps/http.map";
pub const HTTPS_MAP: &str = "maps/https.map";
pub const PASSTHROUGH_MAP: &str = "maps/passthrough.map";
pub const CRT_LIST: &str = "crt-list.txt";
pub const DEFAULT_CERT_FILE: &str = "certs/default.pem";
/// Socket names inside the run directory.
pub const STATS_SOCKET: &str = "haproxy.sock";
pub const TERMINATE_SOCKET: &str = "fe_terminate.sock";
/// Where HAProxy sends its event messages when
/// [`RenderSettings::events_log`](crate::RenderSettings::events_log) is set.
pub const EVENTS_SOCKET: &str = "events.sock";

#[derive(Serialize)]
struct Context<'a> {
    global: GlobalCtx,
    fe_http: FrontendCtx<'a>,
    fe_https: FrontendCtx<'a>,
    fe_terminate: TerminateCtx<'a>,
    /// HAProxy's Prometheus exporter (`--haproxy-metrics-bind`; no binds:
    /// no frontend).
    fe_metrics: MetricsCtx,
    /// The router's global header actions, in `fe_http` and
    /// `fe_terminate`: request ones before the Route's (which run in the
    /// backend, later, so the Route wins), response ones after the Route's
    /// (the frontend's response rules run after the backend's: the router
    /// wins), as OpenShift orders them.
    global_headers: GlobalHeadersCtx,
}

#[derive(Serialize)]
struct MetricsCtx {
    binds: Vec<String>,
}

#[derive(Serialize)]
struct GlobalHeadersCtx {
    request: Vec<HeaderActionCtx>,
    response: Vec<HeaderActionCtx>,
}

#[derive(Serialize)]
struct DefaultBackendsCtx {
    socket: String,
}

#[derive(Serialize)]
struct GlobalCtx {
    /// `--haproxy-log`: the syslog target (`IPv4:PORT`, `[IPv6]:PORT`).
    log: Option<String>,
    /// The events socket (`<run_dir>/events.sock`), when `run` reads it.
    events_log: Option<String>,
    maxconn: String,
    hard_stop_after: String,
    max_old_workers: u32,
    stats_socket: String,
}

#[derive(Serialize)]
struct FrontendCtx<'a> {
    binds: Vec<String>,
    /// `None` for `fe_https`, which looks up the SNI (in the template).
    lookup: Option<&'a LookupCtx>,
}

#[derive(Serialize)]
struct TerminateCtx<'a> {
    socket: String,
    lookup: &'a LookupCtx,
}

/// Render the whole HAProxy tree for `plan`. Byte-identical output for
/// equal inputs.
pub fn render_haproxy(
    plan: &Plan,
    settings: &RenderSettings,
    templates: &Templates,
) -> Result<OutputTree, RenderError> {
    render_haproxy_memo(&mut HaproxyMemo::default(), plan, settings, templates)
}

/// Rendered backend sections and `backends/routes-*.cfg` files kept
/// between passes (see [`render_haproxy_memo`]). One memo serves one set
/// of templates: the caller ([`crate::engine::Engine`]) keeps it with the
/// templates it was filled with.
#[derive(Debug, Default)]
pub struct HaproxyMemo {
    /// Backend names of the last pass, spares last (checked unique and
    /// not reserved).
    names: Vec<ArcStr>,
    /// The backends and spares of the last pass and their files, in path
    /// order.
    backends: Vec<Arc<Backend>>,
    /// `None` before the first pass.
    backend_files: Option<Vec<(String, Arc<[u8]>)>>,
    /// Maps, lookup lines and haproxy.cfg of the last tables.
    tables: Option<TablesPart>,
    certs: Option<(Arc<Vec<routegen_core::plan::CertEntry>>, Vec<PartFile>)>,
    cas: Option<(Arc<Vec<routegen_core::plan::PemFile>>, Vec<PartFile>)>,
    allowlists: Option<(Arc<Vec<routegen_core::plan::AllowlistFile>>, Vec<PartFile>)>,
    /// The settings `haproxy.cfg` and `backends/default.cfg` were rendered with.
    settings: Option<RenderSettings>,
    /// Backend name → its section as last rendered.
    sections: HashMap<ArcStr, MemoSection>,
    /// Passes made (stamps the sections each pass uses).
    pass: u64,
    /// Where each backend of the last pass is, by place (see [`Places`]).
    places: Option<Places>,
    /// File path → the sections it was made of (held, compared by
    /// identity) and its contents.
    files: HashMap<String, BackendFile>,
}

/// The backends and spares of the last pass by place (backends, then
/// spares, as in `HaproxyMemo::backends`).
#[derive(Debug)]
struct Places {
    /// How many of them are Routes' backends (the rest are spares).
    route_backends: usize,
    /// Each one's section text.
    texts: Vec<SectionText>,
    /// Each one's file index.
    file_of: Vec<u32>,
    /// Each file's sections (places), in name order.
    members: Vec<Vec<u32>>,
}

/// A backend section as rendered.
#[derive(Debug)]
struct MemoSection {
    backend: Arc<Backend>,
    /// Rendered as a spare.
    spare: bool,
    text: SectionText,
    /// (file count, index of its file): the index is a hash of the name.
    file: (usize, usize),
    /// The last pass that used it.
    pass: u64,
}

/// What the lookup tables render to.
#[derive(Debug)]
struct TablesPart {
    http: Shared<LookupEntry>,
    https: Shared<LookupEntry>,
    passthrough: Shared<routegen_core::plan::SniEntry>,
    /// The three map files.
    files: Vec<PartFile>,
    /// The lookups of `fe_http` and `fe_terminate`.
    http_lookup: LookupCtx,
    https_lookup: LookupCtx,
    /// haproxy.cfg and backends/default.cfg for these lookups.
    config: Option<ConfigFiles>,
}

/// Contents of `haproxy.cfg` and `backends/default.cfg`.
type ConfigFiles = (Arc<[u8]>, Arc<[u8]>);

/// A backend file's sections (held, compared by identity) and contents.
type BackendFile = (Vec<SectionText>, Arc<[u8]>);

/// A backend section's text: its place in the contents of the file it was
/// last written into, or, rendered this pass and not yet written, bytes
/// of its own. Held so, a section costs no copy of its text beside its
/// file's (at 100,000 Routes the copies were 71 MiB).
#[derive(Clone, Debug)]
struct SectionText {
    bytes: Arc<[u8]>,
    start: u32,
    end: u32,
}

impl SectionText {
    /// A section as rendered.
    fn rendered(text: String) -> SectionText {
        let end = u32::try_from(text.len()).expect("a section is far below 4 GiB");
        SectionText {
            bytes: Arc::from(text.into_bytes()),
            start: 0,
            end,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[self.start as usize..self.end as usize]
    }

    /// The same text at the same place (not merely equal bytes).
    fn same(&self, other: &SectionText) -> bool {
        Arc::ptr_eq(&self.bytes, &other.bytes) && self.start == other.start && self.end == other.end
    }
}

/// Target number of backend sections per `backends/routes-*.cfg` file: a
/// change to one Route rewrites one file of about this many sections.
pub const SECTIONS_PER_FILE: usize = 128;

/// How many `backends/routes-*.cfg` files a plan of `backends` backends
/// uses: a power of two, about [`SECTIONS_PER_FILE`] sections each, at
/// least 1, at most 4096.
pub fn backend_file_count(backends: usize) -> usize {
    backends
        .div_ceil(SECTIONS_PER_FILE)
        .clamp(1, 4096)
        .next_power_of_two()
}

/// The file (index) holding backend `name` among `count` files: FNV-1a of
/// the name, so a backend stays in its file while others come and go.
pub fn backend_file_index(name: &str, count: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % count as u64) as usize
}

/// Path of backend file `index` of `count`.
pub fn backend_file_path(index: usize, count: usize) -> String {
    let width = (count - 1).to_string().len().max(3);
    format!("{BACKENDS_DIR}/routes-{index:0width$}.cfg")
}

/// Path of the file with `be_no_route` and `be_terminate`.
pub const DEFAULT_BACKENDS_FILE: &str = "backends/default.cfg";

/// [`render_haproxy`] reusing `memo`: a backend equal to one rendered in
/// the previous pass keeps its section text, and a backend file made of
/// the same sections keeps its contents (the same `Arc`, so writers can
/// skip unchanged files by identity). Everything else is rendered as by
/// [`render_haproxy`], whose result this equals.
pub fn render_haproxy_memo(
    memo: &mut HaproxyMemo,
    plan: &Plan,
    settings: &RenderSettings,
    templates: &Templates,
) -> Result<OutputTree, RenderError> {
    let mut tree = Files::default();

    // Backend names (spares too): unique, not reserved (checked again
    // only when they change).
    let all_backends = || plan.backends.iter().chain(&plan.spares);
    let count = plan.backends.len() + plan.spares.len();
    let names_same = memo.names.len() == count
        && memo
            .names
            .iter()
            .zip(all_backends())
            .all(|(a, b)| *a == b.name);
    if !names_same {
        let backend_names: BTreeSet<&str> = all_backends().map(|b| b.name.as_str()).collect();
        if backend_names.len() != count {
            return Err(RenderError::Plan("two backends have the same name".into()));
        }
        for reserved in [NO_ROUTE_BACKEND, "be_terminate", REDIRECT_VALUE] {
            if backend_names.contains(reserved) {
                return Err(RenderError::Plan(format!(
                    "backend name {reserved} is reserved"
                )));
            }
        }
        memo.names = all_backends().map(|b| b.name.clone()).collect();
        memo.tables = None;
    }

    // Maps and the frontends' lookup lines: from the tables (and names).
    let tables = match memo.tables.take() {
        Some(t)
            if Shared::ptr_eq(&t.http, &plan.http_lookup)
                && Shared::ptr_eq(&t.https, &plan.https_lookup)
                && Shared::ptr_eq(&t.passthrough, &plan.passthrough) =>
        {
            t
        }
        _ => {
            let backend_names: BTreeSet<&str> =
                plan.backends.iter().map(|b| b.name.as_str()).collect();
            TablesPart {
                http: plan.http_lookup.clone(),
                https: plan.https_lookup.clone(),
                passthrough: plan.passthrough.clone(),
                files: vec![
                    part_file(
                        HTTP_MAP,
                        lookup_map(&plan.http_lookup, &backend_names, HTTP_MAP)?,
                        false,
                    ),
                    part_file(
                        HTTPS_MAP,
                        lookup_map(&plan.https_lookup, &backend_names, HTTPS_MAP)?,
                        false,
                    ),
                    part_file(
                        PASSTHROUGH_MAP,
                        passthrough_map(plan, &backend_names)?,
                        false,
                    ),
                ],
                http_lookup: lookup(HTTP_MAP)?,
                https_lookup: lookup(HTTPS_MAP)?,
                config: None,
            }
        }
    };
    insert_part(&mut tree, &tables.files)?;

    // Certificates, CA and allowlist files.
    if !settings.default_cert_pem.contains("PRIVATE KEY-----") {
        return Err(RenderError::Setting {
            setting: "default certificate",
            message: "no private key in the default certificate PEM".into(),
        });
    }
    tree.insert(
        DEFAULT_CERT_FILE,
        settings.default_cert_pem.clone().into_bytes(),
        true,
    )?;
    let certs = match memo.certs.take() {
        Some((input, files)) if Arc::ptr_eq(&input, &plan.certificates) => (input, files),
        _ => (
            Arc::clone(&plan.certificates),
            certificate_files(&plan.certificates)?,
        ),
    };
    insert_part(&mut tree, &certs.1)?;
    memo.certs = Some(certs);
    let cas = match memo.cas.take() {
        Some((input, files)) if Arc::ptr_eq(&input, &plan.ca_files) => (input, files),
        _ => (Arc::clone(&plan.ca_files), ca_files(&plan.ca_files)?),
    };
    insert_part(&mut tree, &cas.1)?;
    memo.cas = Some(cas);
    let allowlists = match memo.allowlists.take() {
        Some((input, files)) if Arc::ptr_eq(&input, &plan.allowlist_files) => (input, files),
        _ => (
            Arc::clone(&plan.allowlist_files),
            allowlist_files(&plan.allowlist_files)?,
        ),
    };
    insert_part(&mut tree, &allowlists.1)?;
    memo.allowlists = Some(allowlists);

    // haproxy.cfg.
    let run_dir = escape::absolute_dir("run directory", &settings.run_dir).map_err(|e| {
        RenderError::Setting {
            setting: "run directory",
            message: e.to_string(),
        }
    })?;
    let socket = |name: &str| -> Result<String, RenderError> {
        let path = if run_dir == "/" {
            format!("/{name}")
        } else {
            format!("{run_dir}/{name}")
        };
        escape::socket_path("socket path", &path)
            .map(str::to_string)
            .map_err(|e| RenderError::Setting {
                setting: "run directory",
                message: e.to_string(),
            })
    };
    let binds =
        |list: &[super::BindAddr], setting: &'static str| -> Result<Vec<String>, RenderError> {
            if list.is_empty() {
                return Err(RenderError::Setting {
                    setting,
                    message: "at least one address is needed".into(),
                });
            }
            let mut seen = BTreeSet::new();
            list.iter()
                .filter(|b| seen.insert(**b))
                .map(|b| {
                    Checked::value("bind address", b)
                        .map(|c| c.to_string())
                        .map_err(|e| RenderError::Setting {
                            setting,
                            message: e.to_string(),
                        })
                })
                .collect()
        };
    if settings.maxconn == 0 || settings.maxconn > routegen_core::values::POSITIVE_INT_MAX {
        return Err(RenderError::Setting {
            setting: "maxconn",
            message: "must be from 1 to 2147483647".into(),
        });
    }
    let mut tables = tables;
    let same_settings = memo.settings.as_ref() == Some(settings);
    let (config, defaults) = match (&tables.config, same_settings) {
        (Some(done), true) => done.clone(),
        _ => {
            let context = Context {
                global: GlobalCtx {
                    log: settings.log_target.map(|addr| {
                        crate::BindAddr {
                            ip: Some(addr.ip()),
                            port: addr.port(),
                        }
                        .to_string()
                    }),
                    events_log: settings
                        .events_log
                        .then(|| socket(EVENTS_SOCKET))
                        .transpose()?,
                    maxconn: settings.maxconn.to_string(),
                    hard_stop_after: Checked::value("hard-stop-after", &settings.hard_stop_after)
                        .map_err(RenderError::unsafe_value("setting hard-stop-after"))?
                        .to_string(),
                    stats_socket: socket(STATS_SOCKET)?,
                    max_old_workers: settings.max_old_workers,
                },
                fe_http: FrontendCtx {
                    binds: binds(&settings.http_bind, "HTTP bind address")?,
                    lookup: Some(&tables.http_lookup),
                },
                fe_https: FrontendCtx {
                    binds: binds(&settings.https_bind, "HTTPS bind address")?,
                    lookup: None,
                },
                fe_terminate: TerminateCtx {
                    socket: socket(TERMINATE_SOCKET)?,
                    lookup: &tables.https_lookup,
                },
                fe_metrics: MetricsCtx {
                    binds: if settings.metrics_bind.is_empty() {
                        Vec::new()
                    } else {
                        binds(&settings.metrics_bind, "HAProxy metrics bind address")?
                    },
                },
                global_headers: GlobalHeadersCtx {
                    request: HeaderActionCtx::list(
                        "global request header",
                        &settings.header_actions.request,
                    )
                    .map_err(RenderError::unsafe_value("setting header actions"))?,
                    response: HeaderActionCtx::list(
                        "global response header",
                        &settings.header_actions.response,
                    )
                    .map_err(RenderError::unsafe_value("setting header actions"))?,
                },
            };
            let default_backends = DefaultBackendsCtx {
                socket: context.fe_terminate.socket.clone(),
            };
            let config = templates.render(
                "haproxy.cfg.tera",
                &tera_context(&context, "haproxy.cfg.tera")?,
            )?;
            let defaults = templates.render(
                "default-backends.cfg.tera",
                &tera_context(&default_backends, "default-backends.cfg.tera")?,
            )?;
            let done: ConfigFiles = (
                Arc::from(config.into_bytes()),
                Arc::from(defaults.into_bytes()),
            );
            tables.config = Some(done.clone());
            memo.settings = Some(settings.clone());
            done
        }
    };
    tree.insert_shared(CONFIG_FILE, config, false)?;
    tree.insert_shared(DEFAULT_BACKENDS_FILE, defaults, false)?;
    memo.tables = Some(tables);
    backend_files(memo, plan, templates, &mut tree)?;
    Ok(tree.0)
}

/// One file of a memoized part of the tree: path, contents, secret.
type PartFile = (String, Arc<[u8]>, bool);

fn part_file(path: &str, contents: Vec<u8>, secret: bool) -> PartFile {
    (path.to_string(), Arc::from(contents), secret)
}

fn insert_part(tree: &mut Files, files: &[PartFile]) -> Result<(), RenderError> {
    for (path, contents, secret) in files {
        tree.insert_shared(path, Arc::clone(contents), *secret)?;
    }
    Ok(())
}

/// crt-list.txt and one file per Route certificate.
fn certificate_files(
    certificates: &[routegen_core::plan::CertEntry],
) -> Result<Vec<PartFile>, RenderError> {
    let mut files = Vec::with_capacity(certificates.len() + 1);
    let mut crt_list = String::new();
    for cert in certificates {
        let object = format!("certificate of Route {}", cert.route);
        let file = escape::relative_path("certificate file", &cert.file)
            .map_err(RenderError::unsafe_value(&object))?;
        let sni = escape::host_key("SNI filter", &cert.sni)
            .map_err(RenderError::unsafe_value(&object))?;
        let line = if cert.h2 {
            format!("{file} [alpn h2,http/1.1] {sni}\n")
        } else {
            format!("{file} {sni}\n")
        };
        escape::line("crt-list line", line.trim_end())
            .map_err(RenderError::unsafe_value(&object))?;
        crt_list.push_str(&line);
        files.push((
            file.to_string(),
            Arc::<[u8]>::from(Arc::clone(&cert.pem)),
            true,
        ));
    }
    files.push(part_file(CRT_LIST, crt_list.into_bytes(), false));
    Ok(files)
}

fn ca_files(cas: &[routegen_core::plan::PemFile]) -> Result<Vec<PartFile>, RenderError> {
    cas.iter()
        .map(|ca| {
            let file = escape::relative_path("CA file", &ca.file)
                .map_err(RenderError::unsafe_value("CA file"))?;
            Ok(part_file(file, ca.pem.clone().into_bytes(), false))
        })
        .collect()
}

fn allowlist_files(
    lists: &[routegen_core::plan::AllowlistFile],
) -> Result<Vec<PartFile>, RenderError> {
    let mut files = Vec::with_capacity(lists.len());
    for list in lists {
        let file = escape::relative_path("allowlist file", &list.file)
            .map_err(RenderError::unsafe_value("allowlist file"))?;
        let mut text = String::new();
        for net in list.list.entries() {
            let entry =
                Checked::value("allowlist entry", net).map_err(RenderError::unsafe_value(file))?;
            text.push_str(entry.as_str());
            text.push('\n');
        }
        files.push(part_file(file, text.into_bytes(), false));
    }
    Ok(files)
}

fn tera_context(value: &impl Serialize, name: &str) -> Result<tera::Context, RenderError> {
    tera::Context::from_serialize(value).map_err(|e| RenderError::Template {
        name: name.into(),
        message: e.to_string(),
    })
}

/// The backend sections, spread over `backends/routes-*.cfg` (see
/// [`backend_file_index`]), each file's sections in name order.
fn backend_files(
    memo: &mut HaproxyMemo,
    plan: &Plan,
    templates: &Templates,
    tree: &mut Files,
) -> Result<(), RenderError> {
    let all = || {
        plan.backends
            .iter()
            .map(|b| (b, false))
            .chain(plan.spares.iter().map(|b| (b, true)))
    };
    let unchanged = memo.backends.len() == plan.backends.len() + plan.spares.len()
        && memo
            .backends
            .iter()
            .zip(all())
            .all(|(a, (b, _))| Arc::ptr_eq(a, b));
    if let (true, Some(files)) = (unchanged, &memo.backend_files) {
        for (path, contents) in files {
            tree.insert_shared(path, Arc::clone(contents), false)?;
        }
        return Ok(());
    }
    if backend_files_in_place(memo, plan, templates)? {
        for (path, contents) in memo.backend_files.iter().flatten() {
            tree.insert_shared(path, Arc::clone(contents), false)?;
        }
        return Ok(());
    }
    let count = backend_file_count(plan.backends.len() + plan.spares.len());
    // Sections are kept in place and stamped with this pass; those left
    // unstamped (backends gone) are dropped after the walk.
    memo.pass += 1;
    let pass = memo.pass;
    let mut live = 0;
    let mut written = Vec::with_capacity(count);
    // Each file's sections: (name, place).
    let mut files: Vec<Vec<(&str, u32)>> = vec![Vec::new(); count];
    let mut places = Places {
        route_backends: plan.backends.len(),
        texts: Vec::with_capacity(plan.backends.len() + plan.spares.len()),
        file_of: Vec::with_capacity(plan.backends.len() + plan.spares.len()),
        members: vec![Vec::new(); count],
    };
    // Sections to render, rendered on rayon's pool (a cold pass renders
    // every backend); the first error in backend order is the one reported.
    let items: Vec<(&Arc<Backend>, bool)> = all().collect();
    let reusable = |b: &Arc<Backend>, spare: bool, old: &MemoSection| {
        old.spare == spare && (Arc::ptr_eq(&old.backend, b) || *old.backend == **b)
    };
    // Each text is moved into its exact size at once: the renderer's
    // buffer is a few times larger than a section, and a cold pass holds
    // every section (at 100,000 Routes over 100 MiB of slack at its peak).
    let mut texts: Vec<Option<SectionText>> = {
        use rayon::prelude::*;
        let sections = &memo.sections;
        let rendered: Vec<Result<Option<SectionText>, RenderError>> = items
            .par_iter()
            .with_min_len(64)
            .map(|&(b, spare)| match sections.get(b.name.as_str()) {
                Some(old) if reusable(b, spare, old) => Ok(None),
                _ => templates
                    .render("backend.cfg.tera", &backend(b, spare)?.to_tera())
                    .map(|text| Some(SectionText::rendered(text))),
            })
            .collect();
        rendered.into_iter().collect::<Result<_, _>>()?
    };
    for (i, &(b, spare)) in items.iter().enumerate() {
        // Rendered above exactly when the section could not be reused.
        let section = match (texts[i].take(), memo.sections.get_mut(b.name.as_str())) {
            (None, Some(old)) => {
                old.backend = Arc::clone(b);
                old
            }
            (None, None) => unreachable!("a section is reused only when there is one"),
            (Some(text), old) => {
                let section = MemoSection {
                    backend: Arc::clone(b),
                    spare,
                    text,
                    file: (count, backend_file_index(&b.name, count)),
                    pass: 0,
                };
                match old {
                    Some(old) => {
                        *old = section;
                        old
                    }
                    None => memo
                        .sections
                        .entry(b.name.clone())
                        .insert_entry(section)
                        .into_mut(),
                }
            }
        };
        if section.pass != pass {
            section.pass = pass;
            live += 1;
        }
        if section.file.0 != count {
            section.file = (count, backend_file_index(&b.name, count));
        }
        files[section.file.1].push((b.name.as_str(), places.texts.len() as u32));
        places.members[section.file.1].push(places.texts.len() as u32);
        places.file_of.push(section.file.1 as u32);
        places.texts.push(section.text.clone());
    }
    let names: Vec<&str> = all().map(|(b, _)| b.name.as_str()).collect();
    for members in &mut places.members {
        members.sort_by(|&a, &b| names[a as usize].cmp(names[b as usize]));
    }
    if memo.sections.len() > live {
        memo.sections.retain(|_, section| section.pass == pass);
    }
    let mut previous_files = std::mem::take(&mut memo.files);
    for (index, mut sections) in files.into_iter().enumerate() {
        sections.sort_by(|a, b| a.0.cmp(b.0));
        let path = backend_file_path(index, count);
        let mut parts: Vec<SectionText> = sections
            .iter()
            .map(|&(_, at)| places.texts[at as usize].clone())
            .collect();
        let contents = match previous_files.remove(&path) {
            Some((old, contents))
                if old.len() == parts.len() && old.iter().zip(&parts).all(|(a, b)| a.same(b)) =>
            {
                contents
            }
            _ => {
                let contents = backend_file_text(index, count, &mut parts);
                for (&(name, at), text) in sections.iter().zip(&parts) {
                    places.texts[at as usize] = text.clone();
                    if let Some(section) = memo.sections.get_mut(name) {
                        section.text = text.clone();
                    }
                }
                contents
            }
        };
        tree.insert_shared(&path, Arc::clone(&contents), false)?;
        written.push((path.clone(), Arc::clone(&contents)));
        memo.files.insert(path, (parts, contents));
    }
    memo.backends = all().map(|(b, _)| Arc::clone(b)).collect();
    memo.backend_files = Some(written);
    memo.places = Some(places);
    Ok(())
}

/// The contents of backend file `index` of `count` with `sections` (in
/// name order); each of `sections` is then its place in those contents.
fn backend_file_text(index: usize, count: usize, sections: &mut [SectionText]) -> Arc<[u8]> {
    let header = format!(
        "# Generated by routegen. Route backends, file {} of {count}.\n",
        index + 1
    );
    let size = header.len()
        + sections
            .iter()
            .map(|s| 1 + s.as_bytes().len())
            .sum::<usize>();
    let mut text = Vec::with_capacity(size);
    text.extend_from_slice(header.as_bytes());
    let mut places = Vec::with_capacity(sections.len());
    for section in sections.iter() {
        text.push(b'\n');
        let start = text.len();
        text.extend_from_slice(section.as_bytes());
        places.push((start, text.len()));
    }
    let contents: Arc<[u8]> = Arc::from(text);
    let offset = |n: usize| u32::try_from(n).expect("a backend file is far below 4 GiB");
    for (section, (start, end)) in sections.iter_mut().zip(places) {
        *section = SectionText {
            bytes: Arc::clone(&contents),
            start: offset(start),
            end: offset(end),
        };
    }
    contents
}

/// The backend files when the backends and spares are the last pass's
/// place for place, by name, some of them changed (an endpoint change):
/// only those sections are looked at and only their files made again.
/// `false` (and `memo` as it was) when that does not hold.
fn backend_files_in_place(
    memo: &mut HaproxyMemo,
    plan: &Plan,
    templates: &Templates,
) -> Result<bool, RenderError> {
    let (Some(places), Some(written)) = (memo.places.as_mut(), memo.backend_files.as_mut()) else {
        return Ok(false);
    };
    let all: Vec<&Arc<Backend>> = plan.backends.iter().chain(&plan.spares).collect();
    if memo.backends.len() != all.len() || places.route_backends != plan.backends.len() {
        return Ok(false);
    }
    let mut changed = Vec::new();
    for (i, (old, new)) in memo.backends.iter().zip(&all).enumerate() {
        if Arc::ptr_eq(old, new) {
            continue;
        }
        if old.name != new.name || !memo.sections.contains_key(new.name.as_str()) {
            return Ok(false);
        }
        changed.push(i);
    }
    let mut dirty = BTreeSet::new();
    for i in changed {
        let (b, spare) = (all[i], i >= places.route_backends);
        let section = memo
            .sections
            .get_mut(b.name.as_str())
            .expect("checked above");
        if !(section.spare == spare
            && (Arc::ptr_eq(&section.backend, b) || *section.backend == **b))
        {
            let text = templates.render("backend.cfg.tera", &backend(b, spare)?.to_tera())?;
            section.text = SectionText::rendered(text);
            section.spare = spare;
        }
        section.backend = Arc::clone(b);
        places.texts[i] = section.text.clone();
        memo.backends[i] = Arc::clone(b);
        dirty.insert(places.file_of[i] as usize);
    }
    let count = places.members.len();
    for index in dirty {
        let mut parts: Vec<SectionText> = places.members[index]
            .iter()
            .map(|&at| places.texts[at as usize].clone())
            .collect();
        let contents = backend_file_text(index, count, &mut parts);
        for (&at, text) in places.members[index].iter().zip(&parts) {
            places.texts[at as usize] = text.clone();
            if let Some(section) = memo.sections.get_mut(all[at as usize].name.as_str()) {
                section.text = text.clone();
            }
        }
        let (path, old) = &mut written[index];
        *old = Arc::clone(&contents);
        memo.files.insert(path.clone(), (parts, contents));
    }
    Ok(true)
}

/// The path part of a lookup key, and whether it is an `Under` path.
fn key_path(path: &PathMatch) -> Option<(&str, bool)> {
    match path {
        PathMatch::Fallback => None,
        PathMatch::Prefix(p) => Some((p, false)),
        PathMatch::Under(p) => Some((p, true)),
    }
}

fn check_entry(entry: &LookupEntry) -> Result<(), RenderError> {
    // The object name is only formatted on the error path: this runs for
    // every entry of every pass.
    let object = || format!("lookup entry of Route {}", entry.route);
    escape::host_key("host", &entry.host_key)
        .map_err(|e| RenderError::unsafe_value(&object())(e))?;
    let path = match key_path(&entry.path) {
        None => "",
        Some((p, under)) => {
            let well_formed = p.starts_with('/')
                && if under {
                    p.ends_with('/')
                } else {
                    !p.ends_with('/')
                };
            if !well_formed {
                return Err(RenderError::Plan(format!(
                    "{}: malformed path {}",
                    object(),
                    routegen_core::values::quote_for_message(p, 64)
                )));
            }
            p
        }
    };
    let matches = entry.key.len() == entry.host_key.len() + path.len()
        && entry.key.starts_with(entry.host_key.as_str())
        && entry.key.ends_with(path);
    if !matches {
        return Err(RenderError::Plan(format!(
            "{}: key {} is not host followed by path",
            object(),
            routegen_core::values::quote_for_message(&entry.key, 64)
        )));
    }
    Ok(())
}

/// The lookup of one frontend in `map`: the same for every table (see the
/// module documentation).
fn lookup(map: &'static str) -> Result<LookupCtx, RenderError> {
    Ok(LookupCtx {
        map: Text::path("map file", map).map_err(RenderError::unsafe_value(map))?,
    })
}

/// Ends the string a frontend looks up, `<host><path>?`: `path` never
/// holds a `?` (the query starts there) and admission refuses it in
/// `spec.path`, so a key ending in it matches only that exact path.
const KEY_END: char = '?';

/// The `map_beg` keys of one entry, each with its precedence among entries
/// of the table that produce the same key (see the module documentation):
/// - Fallback: `<host>/` (every path of the host);
/// - Prefix `/foo`: `<host>/foo?` (the path itself) and `<host>/foo/`
///   (below it), the latter yielding to an Under `/foo/` of the host;
/// - Under `/foo/`: `<host>/foo/`.
///
/// A key written by a higher precedence wins.
pub fn map_keys(entry: &LookupEntry) -> [Option<(String, u8)>; 2] {
    let host = entry.host_key.as_str();
    match &entry.path {
        PathMatch::Fallback => [Some((format!("{host}/"), 0)), None],
        PathMatch::Prefix(p) => [
            Some((format!("{host}{p}{KEY_END}"), 2)),
            Some((format!("{host}{p}/"), 1)),
        ],
        PathMatch::Under(p) => [Some((format!("{host}{p}"), 2)), None],
    }
}

/// `key value` lines, in the order given (sorted by key).
fn map_file<'a>(entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let mut out = String::new();
    for (key, value) in entries {
        out.push_str(key);
        out.push(' ');
        out.push_str(value);
        out.push('\n');
    }
    out.into_bytes()
}

fn lookup_map(
    table: &[Arc<LookupEntry>],
    backends: &BTreeSet<&str>,
    file: &str,
) -> Result<Vec<u8>, RenderError> {
    use std::collections::btree_map::Entry;
    let mut plan_keys: BTreeSet<&str> = BTreeSet::new();
    // Map key → (value, precedence of the entry that wrote it).
    let mut entries: BTreeMap<String, (&str, u8)> = BTreeMap::new();
    for entry in table {
        check_entry(entry)?;
        // Formatted only on the error path (this runs for every entry).
        let object = || format!("{file} entry of Route {}", entry.route);
        let value = match &entry.action {
            LookupAction::Backend(name) => {
                if !backends.contains(name.as_str()) {
                    return Err(RenderError::Plan(format!(
                        "{}: no backend {name}",
                        object()
                    )));
                }
                escape::name("backend name", name)
                    .map_err(|e| RenderError::unsafe_value(&object())(e))?
            }
            LookupAction::RedirectToHttps => REDIRECT_VALUE,
            LookupAction::Refuse => NO_ROUTE_BACKEND,
        };
        if !plan_keys.insert(&entry.key) {
            return Err(RenderError::Plan(format!(
                "{}: duplicate key {}",
                object(),
                entry.key
            )));
        }
        for (key, precedence) in map_keys(entry).into_iter().flatten() {
            escape::map_key("map key", &key, value.len())
                .map_err(|e| RenderError::unsafe_value(&object())(e))?;
            match entries.entry(key) {
                Entry::Vacant(v) => {
                    v.insert((value, precedence));
                }
                Entry::Occupied(mut o) => {
                    if o.get().1 == precedence {
                        return Err(RenderError::Plan(format!(
                            "{}: duplicate key {}",
                            object(),
                            o.key()
                        )));
                    }
                    if o.get().1 < precedence {
                        o.insert((value, precedence));
                    }
                }
            }
        }
    }
    Ok(map_file(entries.iter().map(|(k, (v, _))| (k.as_str(), *v))))
}

fn passthrough_map(plan: &Plan, backends: &BTreeSet<&str>) -> Result<Vec<u8>, RenderError> {
    let mut entries: BTreeMap<&str, &str> = BTreeMap::new();
    for entry in plan.passthrough.iter() {
        let object = || format!("{PASSTHROUGH_MAP} entry of Route {}", entry.route);
        if !backends.contains(entry.backend.as_str()) {
            return Err(RenderError::Plan(format!(
                "{}: no backend {}",
                object(),
                entry.backend
            )));
        }
        let value = escape::name("backend name", &entry.backend)
            .map_err(|e| RenderError::unsafe_value(&object())(e))?;
        let key = escape::host_key("SNI", &entry.sni)
            .map_err(|e| RenderError::unsafe_value(&object())(e))?;
        let key = escape::map_key("map key", key, value.len())
            .map_err(|e| RenderError::unsafe_value(&object())(e))?;
        if entries.insert(key, value).is_some() {
            return Err(RenderError::Plan(format!(
                "{}: duplicate SNI {key}",
                object()
            )));
        }
    }
    Ok(map_file(entries))
}

/// The section of backend `b` (an empty spare when `spare`, see
/// [`routegen_core::plan::spares`]): every value checked, every choice
/// made (see [`context`]); `backend.cfg.tera` writes the directives.
fn backend(b: &Backend, spare: bool) -> Result<BackendCtx<'_>, RenderError> {
    // The object is only formatted on the error path (this runs for every
    // backend of a pass).
    let err = |source: EscapeError| RenderError::Unsafe {
        object: format!("backend {}", b.name),
        source,
    };
    let name = Text::name("backend name", &b.name).map_err(err)?;
    let route = Text::comment_of("comment", &b.route).map_err(err)?;
    let host = Text::comment("comment", &b.host_key).map_err(err)?;
    let path = Text::comment("comment", b.path.as_deref().unwrap_or("-")).map_err(err)?;
    let termination = b.termination.map(Termination::as_str).unwrap_or("http");

    let http = b.mode == Mode::Http;
    let balance = Text::word("balance", b.balance.as_str()).map_err(err)?;
    let timeout_server = b
        .timeout_server
        .as_ref()
        .map(|t| Text::value("timeout server", t))
        .transpose()
        .map_err(err)?;
    let timeout_tunnel = b
        .timeout_tunnel
        .as_ref()
        .map(|t| Text::value("timeout tunnel", t))
        .transpose()
        .map_err(err)?;
    let allowlist_file = b
        .allowlist_file
        .as_deref()
        .map(|f| Text::path("allowlist file", f))
        .transpose()
        .map_err(err)?;
    let rate_limit = b.rate_limit.as_ref().map(|rl| RateLimitCtx {
        store_http_req_rate: http,
        concurrent_tcp: rl.concurrent_tcp.map(|n| n.get()),
        rate_tcp: rl.rate_tcp.map(|n| n.get()),
        rate_http: rl.rate_http.filter(|_| http).map(|n| n.get()),
    });
    // Header rules, path rewrite, cookie and HSTS exist in HTTP mode only.
    let (mut forwarded, mut rewrite, mut cookie, mut hsts) = (None, None, None, None);
    let (mut request_headers, mut response_headers) = (Vec::new(), Vec::new());
    let (mut cookie_secure, mut cookie_same_site, mut cookie_key) = (false, None, None);
    if http {
        // OpenShift's rules per policy, in one named defaults section each
        // (haproxy.cfg); `never` lets the client's headers pass untouched.
        forwarded = b.forwarded.and_then(|policy| match policy {
            ForwardedPolicy::Append => Some("forwarded_append"),
            ForwardedPolicy::Replace => Some("forwarded_replace"),
            ForwardedPolicy::IfNone => Some("forwarded_if_none"),
            ForwardedPolicy::Never => None,
        });
        if let Some(rw) = &b.rewrite {
            let to_root = rw.target.as_str() == "/";
            let target = if to_root {
                None
            } else {
                Some(Text::log_format_literal("rewrite target", rw.target.as_str()).map_err(err)?)
            };
            rewrite = Some(RewriteCtx {
                prefix_len: rw.prefix.len(),
                to_root,
                target,
            });
        }
        if let Some(c) = &b.cookie {
            cookie = Some(Text::word("cookie name", c.name.as_str()).map_err(err)?);
            cookie_key = Some(routegen_core::plan::endpoints::md5_hex(&b.name));
            cookie_secure = c.secure;
            cookie_same_site = c.same_site.map(|s| s.as_str());
        }
        hsts = b
            .hsts
            .as_ref()
            .map(|h| Text::value("HSTS header", h))
            .transpose()
            .map_err(err)?;
        request_headers =
            HeaderActionCtx::list("request header", &b.headers.request).map_err(err)?;
        response_headers =
            HeaderActionCtx::list("response header", &b.headers.response).map_err(err)?;
    }

    let mut sorted: Vec<&Server> = b.servers.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut servers = Vec::with_capacity(sorted.len());
    // The options every server line carries are checked at the first
    // server, in a server line's order of checks (so a plan with two bad
    // values reports the same one as a line-by-line check would).
    let (mut ca_file, mut check_inter) = (None, None);
    for s in sorted {
        let name = Text::name("server name", &s.name).map_err(err)?;
        let address = match s.address {
            std::net::IpAddr::V4(ip) => format!("{ip}:{}", s.port),
            std::net::IpAddr::V6(ip) => format!("[{ip}]:{}", s.port),
        };
        let address = Text::owned("server address", address, escape::word).map_err(err)?;
        let mut verify_host = None;
        if let Some(ServerTls {
            verify:
                ServerVerify::CaFile {
                    file,
                    verify_host: backend_host,
                },
            ..
        }) = b.server_tls.as_deref()
        {
            if ca_file.is_none() {
                ca_file = Some(Text::path("CA file", file).map_err(err)?);
            }
            if let Some(host) = s
                .verify_host
                .as_ref()
                .map(|h| h.as_str())
                .or(backend_host.as_deref())
            {
                verify_host = Some(Text::dns_name("verifyhost", host).map_err(err)?);
            }
        }
        if let (None, Some(inter)) = (&check_inter, &b.health_check) {
            check_inter = Some(Text::value("check interval", inter).map_err(err)?);
        }
        servers.push(ServerCtx {
            name,
            address,
            weight: s.weight.get(),
            id: s.id,
            verify_host,
            proto_h2: s.h2c,
        });
    }

    Ok(BackendCtx {
        spare,
        route,
        host,
        path,
        termination,
        name,
        mode: if http { "http" } else { "tcp" },
        balance,
        // Servers added at runtime need a dynamic balance: a hash balance
        // must use the consistent hash (map-based hashing is static).
        hash_type: (!http || b.balance == Balance::Source).then_some("consistent"),
        timeout_server,
        timeout_tunnel,
        allowlist_file,
        rate_limit,
        forwarded,
        rewrite,
        cookie,
        cookie_key,
        cookie_secure,
        cookie_same_site,
        hsts,
        request_headers,
        response_headers,
        ssl: b.server_tls.is_some(),
        ca_file,
        alpn_h2: b.server_tls.as_ref().is_some_and(|tls| tls.alpn_h2),
        check_inter,
        server_maxconn: b.server_maxconn.map(|n| n.get()),
        servers,
    })
}

#[cfg(test)]
mod tests;
