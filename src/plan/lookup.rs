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

use k8s_openapi::jiff::Timestamp;

use super::backends::{backend_name, host_key};
use super::{LookupAction, LookupEntry, PathMatch, SniEntry};
use crate::admit::route::{AdmittedRoute, InsecurePolicy, Termination};
use crate::model::ObjectKey;

/// How old a Route is, for deciding which of two Routes keeps a key.
/// Orders oldest first; a Route without a creationTimestamp counts as the
/// newest. `Default` is "unknown" (newest).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteAge {
    no_timestamp: bool,
    created: Option<Timestamp>,
    uid: String,
}

impl Default for RouteAge {
    fn default() -> Self {
        Self::new(None, "")
    }
}

impl RouteAge {
    pub fn new(created: Option<Timestamp>, uid: impl Into<String>) -> Self {
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

/// The lookup key for a host key and path match.
pub fn lookup_key(host_key: &str, path: &PathMatch) -> String {
    match path {
        PathMatch::Fallback => host_key.to_string(),
        PathMatch::Prefix(p) | PathMatch::Under(p) => format!("{host_key}{p}"),
    }
}

fn entry(route: &AdmittedRoute, path: Option<&str>, action: LookupAction) -> LookupEntry {
    let host_key = host_key(route);
    let (path, depth) = path_match(path);
    LookupEntry {
        key: lookup_key(&host_key, &path),
        host_key,
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
    let unknown = RouteAge::default();
    // Each Route's age looked up once, not in every comparison.
    let mut aged: Vec<(&RouteAge, &AdmittedRoute)> = routes
        .iter()
        .map(|r| (ages.get(&r.key).unwrap_or(&unknown), *r))
        .collect();
    aged.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.key.cmp(&b.1.key)));
    let ordered = aged.into_iter().map(|(_, r)| r);

    let mut http: BTreeMap<String, LookupEntry> = BTreeMap::new();
    let mut https: BTreeMap<String, LookupEntry> = BTreeMap::new();
    let mut passthrough: BTreeMap<String, SniEntry> = BTreeMap::new();

    for route in ordered {
        let termination = route.tls.as_ref().map(|t| t.termination);
        let backend = backend_name(&route.key, termination);
        let path = route.path.as_deref();
        match &route.tls {
            None => insert(
                &mut http,
                entry(route, path, LookupAction::Backend(backend)),
                "port 80",
                warnings,
            ),
            Some(tls) if tls.termination == Termination::Passthrough => {
                let sni = SniEntry {
                    sni: host_key(route),
                    backend,
                    route: route.key.clone(),
                };
                match passthrough.get(&sni.sni) {
                    Some(owner) => {
                        warnings.push(duplicate_warning(&route.key, "SNI", &sni.sni, &owner.route))
                    }
                    None => {
                        passthrough.insert(sni.sni.clone(), sni);
                    }
                }
                let action = match tls.insecure_policy {
                    InsecurePolicy::Redirect => LookupAction::RedirectToHttps,
                    // Allow is refused by admission for passthrough.
                    InsecurePolicy::None | InsecurePolicy::Allow => LookupAction::Refuse,
                };
                insert(&mut http, entry(route, None, action), "port 80", warnings);
            }
            Some(tls) => {
                insert(
                    &mut https,
                    entry(route, path, LookupAction::Backend(backend.clone())),
                    "TLS",
                    warnings,
                );
                let action = match tls.insecure_policy {
                    InsecurePolicy::Allow => LookupAction::Backend(backend),
                    InsecurePolicy::Redirect => LookupAction::RedirectToHttps,
                    InsecurePolicy::None => LookupAction::Refuse,
                };
                insert(&mut http, entry(route, path, action), "port 80", warnings);
            }
        }
    }

    let max_path_depth = http
        .values()
        .chain(https.values())
        .map(|e| e.depth)
        .max()
        .unwrap_or(0);
    Tables {
        http: http.into_values().collect(),
        https: https.into_values().collect(),
        passthrough: passthrough.into_values().collect(),
        max_path_depth,
    }
}

fn insert(
    table: &mut BTreeMap<String, LookupEntry>,
    entry: LookupEntry,
    table_name: &str,
    warnings: &mut Vec<String>,
) {
    match table.get(&entry.key) {
        Some(owner) => warnings.push(duplicate_warning(
            &entry.route,
            table_name,
            &entry.key,
            &owner.route,
        )),
        None => {
            table.insert(entry.key.clone(), entry);
        }
    }
}

fn duplicate_warning(route: &ObjectKey, table: &str, key: &str, owner: &ObjectKey) -> String {
    format!("{route}: {table} lookup key {key} is already used by the older Route {owner}: entry dropped")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::annotations::RouteOptions;
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
            path: path.map(str::to_string),
            backends: vec![BackendRef {
                service: "svc".into(),
                weight: 100,
            }],
            target_port: None,
            tls: tls.map(|(termination, insecure_policy)| RouteTls {
                termination,
                insecure_policy,
                serving: None,
                destination_ca_pem: None,
            }),
            options: RouteOptions::default(),
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
            assert_eq!(lookup_key("h", &got), key);
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
        let be = |s: &str| Some(LookupAction::Backend(s.to_string()));

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
