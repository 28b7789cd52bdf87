//! Lookup tables: host and path to action (SPEC §4, §6), as exact keys so
//! a renderer can look them up in constant time per path depth instead of
//! scanning regexes.
//!
//! Keys: the host key (`host`, or `*.<domain>` for wildcard Routes)
//! followed by the path: nothing for a Route without a path or with `/`
//! (the host's fallback), `/foo` for a prefix path, `/foo/` for a path that
//! ends in a slash. Depth is the number of non-empty path segments.
//!
//! Tables:
//! - port 80 ([`Tables::http`]): Routes without TLS and edge/reencrypt
//!   Routes with policy `Allow` go to their backend; policy `Redirect`
//!   (edge, reencrypt, passthrough) answers with a redirect to https;
//!   edge/reencrypt with policy `None` and passthrough with `None` are
//!   refused (503), so plain HTTP never reaches a TLS-only Route;
//! - TLS-terminated ([`Tables::https`]): edge and reencrypt Routes;
//! - SNI ([`Tables::passthrough`]): passthrough Routes.
//!
//! Admission makes keys unique. Should two Routes still produce the same
//! key in one table, the oldest Route (creationTimestamp, then UID, then
//! namespace/name, as admission orders claims) keeps it and the other entry
//! is dropped with a warning: a table never holds duplicates and the result
//! never depends on input order.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::names::{backend_name, host_key};
use super::{LookupAction, LookupEntry, PathMatch, SniEntry};
use crate::admit::route::{AdmittedRoute, InsecurePolicy, Termination};
use crate::model::{ArcStr, ObjectKey};

/// How old a Route is, for deciding which of two Routes keeps a key.
/// Orders oldest first; a Route without a creationTimestamp counts as the
/// newest. `Default` is "unknown" (newest).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteAge {
    no_timestamp: bool,
    created: Option<Timestamp>,
    uid: ArcStr,
}

impl Default for RouteAge {
    fn default() -> Self {
        Self::new(None, "")
    }
}

impl RouteAge {
    pub fn new(created: Option<Timestamp>, uid: impl Into<ArcStr>) -> Self {
        Self {
            no_timestamp: created.is_none(),
            created,
            uid: uid.into(),
        }
    }
}

/// The lookup tables of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// Sorted by key.
    pub http: Vec<LookupEntry>,
    /// Sorted by key.
    pub https: Vec<LookupEntry>,
    /// Sorted by SNI.
    pub passthrough: Vec<SniEntry>,
    /// Deepest path of any entry of `http` and `https`.
    pub max_path_depth: usize,
}

/// Path match, key suffix and depth of a Route path.
pub fn path_match(path: Option<&str>) -> (PathMatch, usize) {
    match path {
        None | Some("") | Some("/") => (PathMatch::Fallback, 0),
        Some(p) => {
            let depth = p.split('/').filter(|s| !s.is_empty()).count();
            if p.ends_with('/') {
                (PathMatch::Under(p.to_string()), depth)
            } else {
                (PathMatch::Prefix(p.to_string()), depth)
            }
        }
    }
}

/// The lookup key for a host key and path match (the host key itself,
/// shared, for the host's fallback).
pub fn lookup_key(host_key: &ArcStr, path: &PathMatch) -> ArcStr {
    match path {
        PathMatch::Fallback => host_key.clone(),
        PathMatch::Prefix(p) | PathMatch::Under(p) => arcstr::format!("{host_key}{p}"),
    }
}

fn entry(
    route: &AdmittedRoute,
    host_key: &ArcStr,
    path: Option<&str>,
    action: LookupAction,
) -> LookupEntry {
    let (path, depth) = path_match(path);
    LookupEntry {
        key: lookup_key(host_key, &path),
        host_key: host_key.clone(),
        path,
        depth,
        action,
        route: route.key.clone(),
    }
}

/// Build the tables. `ages` gives each Route's age (missing = newest).
pub fn build(
    routes: &[&AdmittedRoute],
    ages: &BTreeMap<ObjectKey, RouteAge>,
    warnings: &mut Vec<String>,
) -> Tables {
    let mut index = TableIndex::default();
    let unknown = RouteAge::default();
    for route in routes {
        index.insert(route, ages.get(&route.key).unwrap_or(&unknown).clone());
    }
    let tables = index.tables();
    warnings.extend(tables.warnings);
    Tables {
        http: tables.http.iter().map(|e| (**e).clone()).collect(),
        https: tables.https.iter().map(|e| (**e).clone()).collect(),
        passthrough: tables.passthrough.iter().map(|e| (**e).clone()).collect(),
        max_path_depth: tables.max_path_depth,
    }
}

/// What one Route puts in the tables (a function of the Route alone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntries {
    pub http: Option<Arc<LookupEntry>>,
    pub https: Option<Arc<LookupEntry>>,
    pub passthrough: Option<Arc<SniEntry>>,
}

/// The entries of one admitted Route.
pub fn route_entries(route: &AdmittedRoute) -> RouteEntries {
    let termination = route.tls.as_ref().map(|t| t.termination);
    route_entries_named(
        route,
        &backend_name(&route.key, termination),
        &host_key(route),
    )
}

/// [`route_entries`] given the Route's backend name and host key, which
/// the entries share (the Route's [`super::Backend`] holds the same).
pub fn route_entries_named(
    route: &AdmittedRoute,
    backend: &ArcStr,
    host_key: &ArcStr,
) -> RouteEntries {
    let backend = backend.clone();
    let path = route.path.as_deref();
    match &route.tls {
        None => RouteEntries {
            http: Some(Arc::new(entry(
                route,
                host_key,
                path,
                LookupAction::Backend(backend),
            ))),
            https: None,
            passthrough: None,
        },
        Some(tls) if tls.termination == Termination::Passthrough => {
            let action = match tls.insecure_policy {
                InsecurePolicy::Redirect => LookupAction::RedirectToHttps,
                // Allow is refused by admission for passthrough.
                InsecurePolicy::None | InsecurePolicy::Allow => LookupAction::Refuse,
            };
            RouteEntries {
                http: Some(Arc::new(entry(route, host_key, None, action))),
                https: None,
                passthrough: Some(Arc::new(SniEntry {
                    sni: host_key.clone(),
                    backend,
                    route: route.key.clone(),
                })),
            }
        }
        Some(tls) => {
            let action = match tls.insecure_policy {
                InsecurePolicy::Allow => LookupAction::Backend(backend.clone()),
                InsecurePolicy::Redirect => LookupAction::RedirectToHttps,
                InsecurePolicy::None => LookupAction::Refuse,
            };
            RouteEntries {
                http: Some(Arc::new(entry(route, host_key, path, action))),
                https: Some(Arc::new(entry(
                    route,
                    host_key,
                    path,
                    LookupAction::Backend(backend),
                ))),
                passthrough: None,
            }
        }
    }
}

/// A Route claiming a key: its age, then its key (the order of claims).
/// Shared by every key the Route claims and by its row in
/// [`TableIndex`]: one copy of the key and age per Route, and a claimant
/// held inline (see [`Claims`]) is two pointers.
type Claim = Arc<(RouteAge, ObjectKey)>;

/// Claimants of one key, oldest first: the first keeps the key. Nearly
/// every key has one claimant, held inline: a B-tree holding one entry
/// allocates a whole node (about a kilobyte here, 2.8 KB per Route of
/// the index at 10,000 Routes before this form).
#[derive(Debug)]
enum Claims<T> {
    One(Claim, Arc<T>),
    Many(BTreeMap<Claim, Arc<T>>),
}

impl<T> Claims<T> {
    /// Add or replace `claim`.
    fn insert(&mut self, claim: Claim, value: Arc<T>) {
        match self {
            Claims::One(only, v) if *only == claim => *v = value,
            Claims::Many(map) => {
                map.insert(claim, value);
            }
            Claims::One(..) => {
                let mut map = BTreeMap::new();
                if let Claims::One(only, v) = std::mem::replace(self, Claims::Many(BTreeMap::new()))
                {
                    map.insert(only, v);
                }
                map.insert(claim, value);
                *self = Claims::Many(map);
            }
        }
    }

    /// Take `claim` out; `true` when no claimant is left.
    fn remove(&mut self, claim: &Claim) -> bool {
        let Claims::Many(map) = self else {
            return matches!(self, Claims::One(only, _) if only == claim);
        };
        map.remove(claim);
        if map.len() == 1 {
            let (only, v) = map.pop_first().expect("one claimant");
            *self = Claims::One(only, v);
        }
        matches!(self, Claims::Many(map) if map.is_empty())
    }

    /// The claimants' values, oldest first.
    fn values(&self) -> impl Iterator<Item = &Arc<T>> {
        let (one, many) = match self {
            Claims::One(_, v) => (Some(v), None),
            Claims::Many(map) => (None, Some(map.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

/// Put `claim` on `table_key` in `table` (which shares the entry's key).
fn add_claim<T>(
    table: &mut BTreeMap<ArcStr, Claims<T>>,
    table_key: &ArcStr,
    claim: Claim,
    value: Arc<T>,
) {
    match table.get_mut(table_key) {
        Some(claims) => claims.insert(claim, value),
        None => {
            table.insert(table_key.clone(), Claims::One(claim, value));
        }
    }
}

/// The tables kept up to date Route by Route: [`TableIndex::insert`] and
/// [`TableIndex::remove`] cost O(log n) per entry, and [`TableIndex::tables`]
/// gives exactly what [`build`] gives for the Routes inserted (each key
/// goes to its oldest claimant, the others are dropped with a warning).
#[derive(Debug, Default)]
pub struct TableIndex {
    routes: rustc_hash::FxHashMap<ObjectKey, (Claim, RouteEntries)>,
    http: BTreeMap<ArcStr, Claims<LookupEntry>>,
    https: BTreeMap<ArcStr, Claims<LookupEntry>>,
    passthrough: BTreeMap<ArcStr, Claims<SniEntry>>,
}

/// [`TableIndex::tables`]: shared entries, sorted by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SharedTables {
    pub http: Vec<Arc<LookupEntry>>,
    pub https: Vec<Arc<LookupEntry>>,
    pub passthrough: Vec<Arc<SniEntry>>,
    pub max_path_depth: usize,
    /// One per dropped entry, in table and key order.
    pub warnings: Vec<String>,
}

impl TableIndex {
    /// Add a Route (replacing an earlier one with the same key).
    pub fn insert(&mut self, route: &AdmittedRoute, age: RouteAge) {
        self.insert_entries(route.key.clone(), age, route_entries(route));
    }

    /// Add a Route's precomputed [`route_entries`].
    pub fn insert_entries(&mut self, key: ObjectKey, age: RouteAge, entries: RouteEntries) {
        self.remove(&key);
        let claim: Claim = Arc::new((age, key.clone()));
        if let Some(e) = &entries.http {
            add_claim(&mut self.http, &e.key, Arc::clone(&claim), Arc::clone(e));
        }
        if let Some(e) = &entries.https {
            add_claim(&mut self.https, &e.key, Arc::clone(&claim), Arc::clone(e));
        }
        if let Some(e) = &entries.passthrough {
            add_claim(
                &mut self.passthrough,
                &e.sni,
                Arc::clone(&claim),
                Arc::clone(e),
            );
        }
        self.routes.insert(key, (claim, entries));
    }

    /// Take a Route out.
    pub fn remove(&mut self, key: &ObjectKey) {
        let Some((claim, entries)) = self.routes.remove(key) else {
            return;
        };
        fn drop_claim<T>(table: &mut BTreeMap<ArcStr, Claims<T>>, table_key: &str, claim: &Claim) {
            if let Some(claims) = table.get_mut(table_key) {
                if claims.remove(claim) {
                    table.remove(table_key);
                }
            }
        }
        if let Some(e) = &entries.http {
            drop_claim(&mut self.http, &e.key, &claim);
        }
        if let Some(e) = &entries.https {
            drop_claim(&mut self.https, &e.key, &claim);
        }
        if let Some(e) = &entries.passthrough {
            drop_claim(&mut self.passthrough, &e.sni, &claim);
        }
    }

    /// The Route stored under `key`: its age and entries.
    pub fn get(&self, key: &ObjectKey) -> Option<(&RouteAge, &RouteEntries)> {
        self.routes
            .get(key)
            .map(|(claim, entries)| (&claim.0, entries))
    }

    /// Number of Routes held.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The tables now.
    pub fn tables(&self) -> SharedTables {
        let mut warnings = Vec::new();
        fn winners<T>(
            table: &BTreeMap<ArcStr, Claims<T>>,
            name: &str,
            route_of: impl Fn(&T) -> &ObjectKey,
            warnings: &mut Vec<String>,
        ) -> Vec<Arc<T>> {
            let mut out = Vec::with_capacity(table.len());
            for (key, claims) in table {
                let mut claims = claims.values();
                let Some(first) = claims.next() else { continue };
                for later in claims {
                    warnings.push(duplicate_warning(
                        route_of(later),
                        name,
                        key,
                        route_of(first),
                    ));
                }
                out.push(Arc::clone(first));
            }
            out
        }
        let http = winners(&self.http, "port 80", |e| &e.route, &mut warnings);
        let https = winners(&self.https, "TLS", |e| &e.route, &mut warnings);
        let passthrough = winners(&self.passthrough, "SNI", |e| &e.route, &mut warnings);
        let max_path_depth = http
            .iter()
            .chain(&https)
            .map(|e| e.depth)
            .max()
            .unwrap_or(0);
        SharedTables {
            http,
            https,
            passthrough,
            max_path_depth,
            warnings,
        }
    }
}

fn duplicate_warning(route: &ObjectKey, table: &str, key: &str, owner: &ObjectKey) -> String {
    format!("{route}: {table} lookup key {key} is already used by the older Route {owner}: entry dropped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::route::{BackendRef, RouteHost, RouteTls};

    fn route(
        name: &str,
        host: &str,
        wildcard: bool,
        path: Option<&str>,
        tls: Option<(Termination, InsecurePolicy)>,
    ) -> AdmittedRoute {
        AdmittedRoute {
            key: ObjectKey::new("ns", name),
            host: RouteHost {
                host: host.into(),
                wildcard,
            },
            path: path.map(ArcStr::from),
            backends: vec![BackendRef {
                service: "svc".into(),
                weight: crate::values::Weight::DEFAULT,
            }],
            target_port: None,
            tls: tls.map(|(termination, insecure_policy)| RouteTls {
                termination,
                insecure_policy,
                serving: None,
                destination_ca_pem: None,
            }),
            options: Default::default(),
            headers: Default::default(),
        }
    }

    #[test]
    fn claims_follow_random_edits_as_a_map() {
        let mut rng = fastrand::Rng::with_seed(20);
        // A fresh Arc each time: claims are compared by value.
        let claim = |i: u8| -> Claim {
            Arc::new((
                RouteAge::new(None, format!("uid-{}", i % 3)),
                ObjectKey::new("ns", i.to_string()),
            ))
        };
        let mut claims: Option<Claims<u8>> = None;
        let mut want: BTreeMap<Claim, Arc<u8>> = BTreeMap::new();
        for step in 0..2000 {
            let (c, v) = (claim(rng.u8(0..6)), Arc::new(rng.u8(..)));
            if rng.bool() {
                match &mut claims {
                    Some(claims) => claims.insert(c.clone(), v.clone()),
                    None => claims = Some(Claims::One(c.clone(), v.clone())),
                }
                want.insert(c, v);
            } else if let Some(held) = &mut claims {
                want.remove(&c);
                if held.remove(&c) {
                    claims = None;
                }
            }
            let got: Vec<u8> = claims
                .iter()
                .flat_map(|c| c.values())
                .map(|v| **v)
                .collect();
            let expected: Vec<u8> = want.values().map(|v| **v).collect();
            assert_eq!(got, expected, "step {step}");
            if let Some(held) = &claims {
                assert_eq!(
                    matches!(held, Claims::One(..)),
                    want.len() == 1,
                    "step {step}"
                );
            }
        }
    }

    #[test]
    fn path_match_table() {
        let cases = [
            (None, PathMatch::Fallback, 0, "h"),
            (Some("/"), PathMatch::Fallback, 0, "h"),
            (Some("/foo"), PathMatch::Prefix("/foo".into()), 1, "h/foo"),
            (Some("/foo/"), PathMatch::Under("/foo/".into()), 1, "h/foo/"),
            (Some("/a/b"), PathMatch::Prefix("/a/b".into()), 2, "h/a/b"),
            (Some("/a/b/"), PathMatch::Under("/a/b/".into()), 2, "h/a/b/"),
            (
                Some("/a//b"),
                PathMatch::Prefix("/a//b".into()),
                2,
                "h/a//b",
            ),
        ];
        for (path, want, depth, key) in cases {
            let (got, got_depth) = path_match(path);
            assert_eq!((&got, got_depth), (&want, depth), "{path:?}");
            assert_eq!(lookup_key(&"h".into(), &got), key);
        }
    }

    fn action_of(t: &[LookupEntry], key: &str) -> Option<LookupAction> {
        t.iter().find(|e| e.key == key).map(|e| e.action.clone())
    }

    #[test]
    fn tables_by_termination_and_policy() {
        use InsecurePolicy as P;
        use Termination::*;
        let routes = [
            route("plain", "plain.example.com", false, Some("/app"), None),
            route(
                "edge-allow",
                "ea.example.com",
                false,
                None,
                Some((Edge, P::Allow)),
            ),
            route(
                "edge-redirect",
                "er.example.com",
                false,
                Some("/x/"),
                Some((Edge, P::Redirect)),
            ),
            route(
                "edge-none",
                "en.example.com",
                false,
                None,
                Some((Edge, P::None)),
            ),
            route(
                "re-allow",
                "ra.example.com",
                false,
                None,
                Some((Reencrypt, P::Allow)),
            ),
            route(
                "re-none",
                "rn.example.com",
                false,
                Some("/a/b/c"),
                Some((Reencrypt, P::None)),
            ),
            route(
                "pass-none",
                "pn.example.com",
                false,
                None,
                Some((Passthrough, P::None)),
            ),
            route(
                "pass-redirect",
                "pr.example.com",
                false,
                None,
                Some((Passthrough, P::Redirect)),
            ),
            route("wild", "any.wild.example.com", true, None, None),
            route(
                "wild-pass",
                "x.wp.example.com",
                true,
                None,
                Some((Passthrough, P::None)),
            ),
        ];
        let refs: Vec<&AdmittedRoute> = routes.iter().collect();
        let mut warnings = Vec::new();
        let t = build(&refs, &BTreeMap::new(), &mut warnings);
        assert!(warnings.is_empty(), "{warnings:?}");
        let be = |s: &str| Some(LookupAction::Backend(s.into()));

        assert_eq!(
            action_of(&t.http, "plain.example.com/app"),
            be("be_http:ns:plain")
        );
        assert_eq!(
            action_of(&t.http, "ea.example.com"),
            be("be_edge_http:ns:edge-allow")
        );
        assert_eq!(
            action_of(&t.http, "er.example.com/x/"),
            Some(LookupAction::RedirectToHttps)
        );
        assert_eq!(
            action_of(&t.http, "en.example.com"),
            Some(LookupAction::Refuse)
        );
        assert_eq!(
            action_of(&t.http, "ra.example.com"),
            be("be_secure:ns:re-allow")
        );
        assert_eq!(
            action_of(&t.http, "rn.example.com/a/b/c"),
            Some(LookupAction::Refuse)
        );
        assert_eq!(
            action_of(&t.http, "pn.example.com"),
            Some(LookupAction::Refuse)
        );
        assert_eq!(
            action_of(&t.http, "pr.example.com"),
            Some(LookupAction::RedirectToHttps)
        );
        assert_eq!(
            action_of(&t.http, "*.wild.example.com"),
            be("be_http:ns:wild")
        );
        assert_eq!(
            action_of(&t.http, "*.wp.example.com"),
            Some(LookupAction::Refuse)
        );
        assert_eq!(t.http.len(), 10);

        let https: Vec<(&str, Option<LookupAction>)> = t
            .https
            .iter()
            .map(|e| (e.key.as_str(), Some(e.action.clone())))
            .collect();
        assert_eq!(
            https,
            vec![
                ("ea.example.com", be("be_edge_http:ns:edge-allow")),
                ("en.example.com", be("be_edge_http:ns:edge-none")),
                ("er.example.com/x/", be("be_edge_http:ns:edge-redirect")),
                ("ra.example.com", be("be_secure:ns:re-allow")),
                ("rn.example.com/a/b/c", be("be_secure:ns:re-none")),
            ]
        );
        let sni: Vec<(&str, &str)> = t
            .passthrough
            .iter()
            .map(|e| (e.sni.as_str(), e.backend.as_str()))
            .collect();
        assert_eq!(
            sni,
            vec![
                ("*.wp.example.com", "be_tcp:ns:wild-pass"),
                ("pn.example.com", "be_tcp:ns:pass-none"),
                ("pr.example.com", "be_tcp:ns:pass-redirect"),
            ]
        );
        assert_eq!(t.max_path_depth, 3);
        assert!(t.http.windows(2).all(|w| w[0].key < w[1].key));
        let e = t
            .http
            .iter()
            .find(|e| e.key == "er.example.com/x/")
            .unwrap();
        assert_eq!(
            (e.host_key.as_str(), &e.path, e.depth),
            ("er.example.com", &PathMatch::Under("/x/".into()), 1)
        );
    }

    #[test]
    fn no_paths_depth_zero() {
        let r = route("a", "a.example.com", false, Some("/"), None);
        let t = build(&[&r], &BTreeMap::new(), &mut Vec::new());
        assert_eq!(t.max_path_depth, 0);
        assert_eq!(t.http[0].path, PathMatch::Fallback);
    }

    #[test]
    fn duplicate_keys_keep_the_oldest() {
        let a = route("a", "h.example.com", false, None, None);
        let b = route("b", "h.example.com", false, Some("/"), None);
        let ts = |s: &str| Some(s.parse::<Timestamp>().unwrap());

        // By age: b is older.
        let ages = BTreeMap::from([
            (
                a.key.clone(),
                RouteAge::new(ts("2024-02-01T00:00:00Z"), "u1"),
            ),
            (
                b.key.clone(),
                RouteAge::new(ts("2024-01-01T00:00:00Z"), "u2"),
            ),
        ]);
        for order in [[&a, &b], [&b, &a]] {
            let mut warnings = Vec::new();
            let t = build(&order, &ages, &mut warnings);
            assert_eq!(t.http.len(), 1);
            assert_eq!(t.http[0].route, b.key);
            assert_eq!(
                warnings,
                vec!["ns/a: port 80 lookup key h.example.com is already used by the older Route ns/b: entry dropped"]
            );
        }

        // Without ages: by key.
        let t = build(&[&b, &a], &BTreeMap::new(), &mut Vec::new());
        assert_eq!(t.http[0].route, a.key);
        // A timestamp beats none.
        let ages = BTreeMap::from([(b.key.clone(), RouteAge::new(ts("2030-01-01T00:00:00Z"), ""))]);
        let t = build(&[&a, &b], &ages, &mut Vec::new());
        assert_eq!(t.http[0].route, b.key);
    }
}
