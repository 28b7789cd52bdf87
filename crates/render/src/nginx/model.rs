//! Facts the nginx renderer needs that the plan states in HAProxy-neutral
//! form (lookup tables keyed by host and path): pure helpers that derive
//! them from plan data without making any new routing decision.
//!
//! nginx selects a `server` by host and then a `location` by the longest
//! matching prefix. The plan's lookup tables say what each `(host, path)`
//! key does and SPEC §4 says how keys match a request: the longest path on
//! a segment boundary wins, every exact-host key before any `*.domain` key.
//! [`host_servers`] lays a table out as nginx servers and locations so that
//! nginx's own choice of location gives exactly that answer:
//!
//! - every Route path becomes the locations that match what it matches:
//!   a prefix `/foo` → `= /foo` and `/foo/`; a path `/foo/` → `/foo/` (plus
//!   `= /foo`, so that nginx does not answer `/foo` with its automatic 301
//!   to `/foo/`); every server has `/`;
//! - an exact host's server also carries the locations of the
//!   `*.<its parent domain>` Route paths, because a request for that host
//!   whose path matches none of the exact host's keys is served by the
//!   wildcard Routes (SPEC §4: exact host first, then wildcard);
//! - the answer of each location is found by [`resolve`] on a path that
//!   represents every request nginx sends there (the location's own path):
//!   the entry the plan's matching rule picks, or none (503).
//!
//! All outputs are sorted; nothing depends on input order.

use std::collections::{BTreeMap, BTreeSet};

use routegen_core::plan::{CertEntry, LookupEntry, PathMatch, SniEntry};

/// How an nginx `location` matches, on the Route path as written in the
/// Route (percent-escapes not yet decoded).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Loc {
    /// `location = <path>`.
    Exact(String),
    /// `location <path>` where the path ends with `/` (`/` itself for the
    /// host's fallback).
    Prefix(String),
}

impl Loc {
    /// The path that stands for every request nginx sends to this location.
    pub fn representative(&self) -> &str {
        match self {
            Loc::Exact(p) | Loc::Prefix(p) => p,
        }
    }

    /// Sort key for output: by path, `= /foo` before `/foo/`.
    fn order_key(&self) -> (&str, u8) {
        match self {
            Loc::Exact(p) => (p, 0),
            Loc::Prefix(p) => (p, 1),
        }
    }
}

/// The locations that together match what a Route path matches.
pub fn locations_of(path: &PathMatch) -> Vec<Loc> {
    match path {
        PathMatch::Fallback => vec![Loc::Prefix("/".into())],
        PathMatch::Prefix(p) => vec![Loc::Exact(p.clone()), Loc::Prefix(format!("{p}/"))],
        PathMatch::Under(p) => {
            let mut out = vec![Loc::Prefix(p.clone())];
            let bare = &p[..p.len().saturating_sub(1)];
            if !bare.is_empty() {
                out.push(Loc::Exact(bare.to_string()));
            }
            out
        }
    }
}

/// Whether a Route path matches request path `p` (SPEC §4: prefix on a
/// segment boundary; a path ending in `/` matches anything under it).
pub fn covers(path: &PathMatch, p: &str) -> bool {
    match path {
        PathMatch::Fallback => true,
        PathMatch::Prefix(q) => {
            p == q
                || (p.len() > q.len() && p.starts_with(q.as_str()) && p.as_bytes()[q.len()] == b'/')
        }
        PathMatch::Under(q) => p.starts_with(q.as_str()),
    }
}

/// How specific a Route path is: the longer the path, the more specific
/// (`/foo/` beats `/foo`, which beats the fallback). Two different paths
/// that both match one request never have the same length.
fn specificity(path: &PathMatch) -> usize {
    match path {
        PathMatch::Fallback => 0,
        PathMatch::Prefix(q) | PathMatch::Under(q) => q.len(),
    }
}

/// The entry answering request path `p`: the most specific match among the
/// exact host's entries, else among the wildcard host's, else none.
pub fn resolve<'p>(
    own: &[&'p LookupEntry],
    wildcard: &[&'p LookupEntry],
    p: &str,
) -> Option<&'p LookupEntry> {
    let best = |list: &[&'p LookupEntry]| {
        list.iter()
            .copied()
            .filter(|e| covers(&e.path, p))
            .max_by_key(|e| specificity(&e.path))
    };
    best(own).or_else(|| best(wildcard))
}

/// One location of a server and the entry that answers it (`None`: no
/// Route, 503).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location<'p> {
    pub loc: Loc,
    pub entry: Option<&'p LookupEntry>,
}

/// One nginx `server` for a host key of a lookup table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostServer<'p> {
    /// `www.example.com` or `*.example.com`.
    pub host_key: &'p str,
    /// Sorted by path (`= /foo` before `/foo/`); always holds `/`.
    pub locations: Vec<Location<'p>>,
}

impl HostServer<'_> {
    /// For a wildcard server, the domain after `*.`.
    pub fn wildcard_domain(&self) -> Option<&str> {
        self.host_key.strip_prefix("*.")
    }
}

/// `*.<parent>` of an exact host (`None` for a wildcard key or one label).
pub fn wildcard_key_of(host: &str) -> Option<String> {
    if host.starts_with("*.") {
        return None;
    }
    host.split_once('.')
        .map(|(_, parent)| format!("*.{parent}"))
}

/// Lay a lookup table out as servers (see the module documentation),
/// sorted by host key.
pub fn host_servers(table: &[std::sync::Arc<LookupEntry>]) -> Vec<HostServer<'_>> {
    let mut by_host: BTreeMap<&str, Vec<&LookupEntry>> = BTreeMap::new();
    for e in table.iter().map(|e| &**e) {
        by_host.entry(e.host_key.as_str()).or_default().push(e);
    }
    let empty: Vec<&LookupEntry> = Vec::new();
    by_host
        .iter()
        .map(|(host, own)| {
            let wildcard = wildcard_key_of(host)
                .and_then(|k| by_host.get(k.as_str()))
                .unwrap_or(&empty);
            let mut locs: BTreeSet<Loc> = BTreeSet::new();
            locs.insert(Loc::Prefix("/".into()));
            for e in own.iter().chain(wildcard.iter()) {
                locs.extend(locations_of(&e.path));
            }
            let mut locations: Vec<Location<'_>> = locs
                .into_iter()
                .map(|loc| {
                    let entry = resolve(own, wildcard, loc.representative());
                    Location { loc, entry }
                })
                .collect();
            locations.sort_by(|a, b| a.loc.order_key().cmp(&b.loc.order_key()));
            HostServer {
                host_key: host,
                locations,
            }
        })
        .collect()
}

/// Where the public TLS listener sends a connection, by SNI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsHop {
    /// The passthrough hop (then to the Route's servers, untouched).
    Passthrough,
    /// The terminating listener that offers `h2,http/1.1`.
    H2,
}

/// SNI routing of the public TLS listener: exact names first, then the
/// domain of a one-label wildcard; everything else goes to the terminating
/// listener that offers only http/1.1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsRouting<'p> {
    /// Exact SNI → hop, sorted.
    pub exact: Vec<(&'p str, TlsHop)>,
    /// Domain `d` of a wildcard `*.d` → hop, sorted.
    pub wildcard: Vec<(&'p str, TlsHop)>,
}

/// Whether `sni` is one label under `domain`.
fn one_label_under(sni: &str, domain: &str) -> bool {
    sni.split_once('.').is_some_and(|(_, rest)| rest == domain)
}

/// SNI routing (as HAProxy's `fe_https`): a passthrough SNI (exact, then
/// one-label wildcard) wins; then a certificate that offers h2 (exact
/// names only: wildcard certificates never offer h2).
pub fn tls_routing<'p>(
    passthrough: &'p [std::sync::Arc<SniEntry>],
    certificates: &'p [CertEntry],
) -> TlsRouting<'p> {
    let mut exact: BTreeMap<&str, TlsHop> = BTreeMap::new();
    let mut wildcard: BTreeMap<&str, TlsHop> = BTreeMap::new();
    for e in passthrough {
        match e.sni.strip_prefix("*.") {
            Some(domain) => wildcard.insert(domain, TlsHop::Passthrough),
            None => exact.insert(e.sni.as_str(), TlsHop::Passthrough),
        };
    }
    for c in certificates
        .iter()
        .filter(|c| c.h2 && !c.sni.starts_with("*."))
    {
        let covered = exact.contains_key(c.sni.as_str())
            || wildcard.keys().any(|d| one_label_under(&c.sni, d));
        if !covered {
            exact.insert(c.sni.as_str(), TlsHop::H2);
        }
    }
    TlsRouting {
        exact: exact.into_iter().collect(),
        wildcard: wildcard.into_iter().collect(),
    }
}

/// The certificate a TLS server presents: the Route certificate whose SNI
/// filter is the host key, else (exact hosts) the one for `*.<parent>`, as
/// HAProxy's crt-list would pick by SNI; `None` means the default
/// certificate. Several certificates for one host: the first by file (the
/// others are returned as the second value, to be reported).
pub fn certificate_for<'p>(
    host_key: &str,
    certificates: &'p [CertEntry],
) -> (Option<&'p CertEntry>, Vec<&'p CertEntry>) {
    let pick = |sni: &str| -> Vec<&'p CertEntry> {
        certificates.iter().filter(|c| c.sni == sni).collect()
    };
    let mut found = pick(host_key);
    if found.is_empty() {
        if let Some(w) = wildcard_key_of(host_key) {
            found = pick(&w);
            // A wildcard certificate is reported at its own server only.
            return (found.first().copied(), Vec::new());
        }
    }
    let first = found.first().copied();
    let rest = found.into_iter().skip(1).collect();
    (first, rest)
}

/// The URI `proxy_pass` replaces a location's path with, so that the
/// request reaches the server as HAProxy's `rewrite-target` handling sends
/// it: the Route path `prefix` is replaced by `target` (target `/` also
/// drops one leading `/` of the rest). `location` is the location's path,
/// which starts with `prefix` (every request nginx sends there does).
/// `None` when the location does not start with the prefix (a plan bug).
pub fn rewrite_uri(prefix: &str, target: &str, location: &str) -> Option<String> {
    let rest = location.strip_prefix(prefix)?;
    Some(if target == "/" {
        format!("/{}", rest.strip_prefix('/').unwrap_or(rest))
    } else {
        format!("{target}{rest}")
    })
}

/// A Route path as nginx compares it: nginx matches locations against the
/// request path after decoding `%XX` escapes, so the location must hold
/// the decoded path. `None` when decoding gives something that cannot be a
/// decoded request path nginx would compare (not UTF-8, a control
/// character, an encoded `/`) or that no nginx string can hold (the
/// Unicode line separators U+2028/U+2029, which every quoting function
/// refuses), in which case the location cannot be expressed and the
/// renderer leaves out just that Route's location with a warning instead
/// of failing the whole render.
pub fn decoded_path(path: &str) -> Option<String> {
    if !path.contains('%') {
        return Some(path.to_string());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            let b = u8::from_str_radix(hex, 16).ok()?;
            if b == b'/' || b < 0x20 || b == 0x7f {
                return None;
            }
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    if s.chars().any(crate::escape::breaks_lines) {
        return None;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use routegen_core::model::ObjectKey;
    use routegen_core::plan::lookup::{lookup_key, path_match};
    use routegen_core::plan::LookupAction;

    fn entry(host: &str, path: Option<&str>, name: &str) -> LookupEntry {
        let (path, depth) = path_match(path);
        LookupEntry {
            key: lookup_key(&host.into(), &path),
            host_key: host.into(),
            path,
            depth,
            action: LookupAction::Backend(name.into()),
            route: ObjectKey::new("ns", name),
        }
    }

    fn answer<'p>(servers: &[HostServer<'p>], host: &str, loc: &Loc) -> Option<&'p str> {
        let s = servers.iter().find(|s| s.host_key == host).unwrap();
        let l = s.locations.iter().find(|l| &l.loc == loc).unwrap();
        l.entry.map(|e| e.route.name.as_str())
    }

    /// What nginx does: the longest matching location (exact ones first).
    fn nginx_pick<'a>(server: &'a HostServer<'_>, path: &str) -> &'a Location<'a> {
        if let Some(l) = server
            .locations
            .iter()
            .find(|l| matches!(&l.loc, Loc::Exact(p) if p == path))
        {
            return l;
        }
        server
            .locations
            .iter()
            .filter(|l| matches!(&l.loc, Loc::Prefix(p) if path.starts_with(p.as_str())))
            .max_by_key(|l| l.loc.representative().len())
            .unwrap()
    }

    #[test]
    fn matching_rule() {
        let p = PathMatch::Prefix("/foo".into());
        assert!(covers(&p, "/foo"));
        assert!(covers(&p, "/foo/"));
        assert!(covers(&p, "/foo/bar"));
        assert!(!covers(&p, "/foobar"));
        assert!(!covers(&p, "/fo"));
        let u = PathMatch::Under("/foo/".into());
        assert!(!covers(&u, "/foo"));
        assert!(covers(&u, "/foo/"));
        assert!(covers(&u, "/foo/x"));
        assert!(covers(&PathMatch::Fallback, "/anything"));
    }

    /// Exhaustive check: for many request paths, nginx's location choice on
    /// the laid-out servers gives the same Route as the plan's matching
    /// rule applied directly (exact host first, then wildcard, longest
    /// path first).
    #[test]
    fn nginx_choice_equals_plan_rule() {
        let table = vec![
            entry("x.d", Some("/a"), "xa"),
            entry("x.d", Some("/a/b/"), "xab"),
            entry("x.d", Some("/c/"), "xc"),
            entry("*.d", None, "wfall"),
            entry("*.d", Some("/a/b/c"), "wabc"),
            entry("*.d", Some("/c"), "wc"),
            entry("*.d", Some("/e"), "we"),
            entry("*.d", Some("/e/"), "weu"),
            entry("y.d", None, "yfall"),
            entry("y.d", Some("/e"), "ye"),
            entry("z.other", Some("/q"), "zq"),
        ];
        let table: Vec<std::sync::Arc<LookupEntry>> =
            table.into_iter().map(std::sync::Arc::new).collect();
        let servers = host_servers(&table);
        let hosts: Vec<&str> = servers.iter().map(|s| s.host_key).collect();
        assert_eq!(hosts, vec!["*.d", "x.d", "y.d", "z.other"]);
        let paths = [
            "/", "/a", "/a/", "/a/x", "/ab", "/a/b", "/a/b/", "/a/b/c", "/a/b/c/d", "/a/b/cd",
            "/c", "/c/", "/c/x", "/cx", "/e", "/e/", "/e/x", "/ex", "/q", "/q/r", "/qq", "/z",
        ];
        for server in &servers {
            let own: Vec<&LookupEntry> = table
                .iter()
                .map(|e| &**e)
                .filter(|e| e.host_key == server.host_key)
                .collect();
            let wild_key = wildcard_key_of(server.host_key);
            let wild: Vec<&LookupEntry> = table
                .iter()
                .map(|e| &**e)
                .filter(|e| Some(e.host_key.as_str()) == wild_key.as_deref())
                .collect();
            for p in paths {
                let want = resolve(&own, &wild, p).map(|e| &e.route.name);
                let got = nginx_pick(server, p).entry.map(|e| &e.route.name);
                assert_eq!(got, want, "host {} path {p}", server.host_key);
            }
        }
        // Spot checks of the rule itself.
        assert_eq!(
            answer(&servers, "x.d", &Loc::Prefix("/".into())),
            Some("wfall")
        );
        assert_eq!(
            answer(&servers, "x.d", &Loc::Prefix("/a/b/".into())),
            Some("xab")
        );
        assert_eq!(
            answer(&servers, "x.d", &Loc::Exact("/c".into())),
            Some("wc")
        );
        assert_eq!(
            answer(&servers, "x.d", &Loc::Prefix("/c/".into())),
            Some("xc")
        );
        assert_eq!(
            answer(&servers, "y.d", &Loc::Exact("/c".into())),
            Some("yfall")
        );
        assert_eq!(answer(&servers, "z.other", &Loc::Prefix("/".into())), None);
        // Under: `= /e` is added so nginx does not redirect /e to /e/.
        assert_eq!(
            answer(&servers, "*.d", &Loc::Exact("/e".into())),
            Some("we")
        );
        assert_eq!(
            answer(&servers, "*.d", &Loc::Prefix("/e/".into())),
            Some("weu")
        );
    }

    #[test]
    fn sni_routing() {
        let sni = |s: &str, b: &str| SniEntry {
            sni: s.into(),
            backend: b.into(),
            route: ObjectKey::new("ns", b),
        };
        let cert = |s: &str, h2: bool, file: &str| CertEntry {
            file: file.into(),
            pem: "".into(),
            sni: s.into(),
            h2,
            route: ObjectKey::new("ns", file),
        };
        let pt = vec![sni("vault.d", "v"), sni("*.tcp.d", "t")];
        let certs = vec![
            cert("www.d", true, "a"),
            cert("x.tcp.d", true, "b"),
            cert("*.w.d", false, "c"),
            cert("shared.d", false, "d"),
        ];
        let pt: Vec<std::sync::Arc<SniEntry>> = pt.into_iter().map(std::sync::Arc::new).collect();
        let r = tls_routing(&pt, &certs);
        assert_eq!(
            r.exact,
            vec![("vault.d", TlsHop::Passthrough), ("www.d", TlsHop::H2)]
        );
        assert_eq!(r.wildcard, vec![("tcp.d", TlsHop::Passthrough)]);

        let (c, rest) = certificate_for("q.w.d", &certs);
        assert_eq!(c.map(|c| c.file.as_str()), Some("c"));
        assert!(rest.is_empty());
        let (c, _) = certificate_for("www.d", &certs);
        assert_eq!(c.map(|c| c.file.as_str()), Some("a"));
        assert_eq!(certificate_for("none.d", &certs).0, None);
        let dup = vec![cert("h.d", false, "1"), cert("h.d", false, "2")];
        let (c, rest) = certificate_for("h.d", &dup);
        assert_eq!(c.unwrap().file, "1");
        assert_eq!(rest.len(), 1);
    }

    #[test]
    fn rewrite_uris_match_haproxy() {
        // (prefix, target, location, uri)
        let cases = [
            ("/api", "/v2", "/api", "/v2"),
            ("/api", "/v2", "/api/", "/v2/"),
            ("/api", "/", "/api", "/"),
            ("/api", "/", "/api/", "/"),
            ("/static/", "/", "/static/", "/"),
            ("/static/", "/v2", "/static/", "/v2"),
            ("/static/", "/v2/", "/static/", "/v2/"),
            ("", "/v2", "/", "/v2/"),
            ("", "/", "/", "/"),
            ("/a", "/x", "/a/b/", "/x/b/"),
        ];
        for (prefix, target, loc, want) in cases {
            assert_eq!(
                rewrite_uri(prefix, target, loc).as_deref(),
                Some(want),
                "{prefix} {target} {loc}"
            );
        }
        assert_eq!(rewrite_uri("/b", "/x", "/a/"), None);
    }

    #[test]
    fn decoding() {
        assert_eq!(decoded_path("/a%20b").as_deref(), Some("/a b"));
        assert_eq!(decoded_path("/a%C3%BC").as_deref(), Some("/aü"));
        assert_eq!(decoded_path("/plain;x=1").as_deref(), Some("/plain;x=1"));
        for bad in [
            "/a%2Fb",
            "/a%2fb",
            "/a%0Ab",
            "/a%00",
            "/a%FF",
            "/a%7F",
            "/a%zz",
            "/a%2",
            // U+2028 / U+2029 (and C1 NEL) once decoded: no nginx string
            // can hold them (issue 17: they failed the whole render).
            "/a%E2%80%A8b",
            "/a%e2%80%a9b",
            "/a%C2%85b",
        ] {
            assert_eq!(decoded_path(bad), None, "{bad}");
        }
    }
}
