//! Step 3 of admission: who may serve a host (`HostAlreadyClaimed`).
//!
//! Candidates are the Routes that passed steps 1–2. They are visited oldest
//! first (creationTimestamp, then UID, then `namespace/name` so the result
//! is total and never depends on input order); each either joins the set of
//! claims or is rejected against the claim that blocks it. Rules:
//! - the first (oldest) Route of a host fixes the owning namespace; Routes
//!   of that host from other namespaces are rejected (unless the namespace
//!   ownership check is disabled);
//! - within the host, paths must be distinct (no path and `/` are the same
//!   fallback and therefore conflict);
//! - a passthrough Route cannot share its host with any other TLS Route;
//! - a wildcard Route (`*.d`) and plain hosts directly in `d` conflict
//!   across namespaces the same way.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::model::ObjectKey;

use super::route::{RouteHost, Termination};
use super::verdict::{Reason, Rejection};

/// What ownership needs to know about a Route.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub key: ObjectKey,
    pub host: RouteHost,
    pub path: Option<crate::model::ArcStr>,
    /// `None` for plain HTTP Routes.
    pub termination: Option<Termination>,
    pub created: Option<Time>,
    pub uid: String,
}

impl Candidate {
    /// The key routing uses for this Route's host: `*.d` for wildcards.
    fn host_key(&self) -> String {
        match self.host.wildcard_domain() {
            Some(domain) => format!("*.{domain}"),
            None => self.host.host.to_string(),
        }
    }

    /// The domain that a plain host lies directly in (for wildcard conflicts).
    fn parent_domain(&self) -> Option<&str> {
        if self.host.wildcard {
            return None;
        }
        self.host.host.split_once('.').map(|(_, d)| d)
    }

    /// The fallback (no path) and `/` are the same routing slot.
    fn path_key(&self) -> &str {
        match self.path.as_deref() {
            None | Some("/") => "",
            Some(p) => p,
        }
    }
}

/// Age order: oldest first; objects without a creationTimestamp count as
/// newest (they have not been stored by an API server yet).
fn age_order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    let created = |c: &Candidate| c.created.as_ref().map(|t| t.0);
    match (created(a), created(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
    .then_with(|| a.uid.cmp(&b.uid))
    .then_with(|| a.key.cmp(&b.key))
}

/// The rules of [`resolve_claims`] that a deployment sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClaimRules {
    /// Routes of another namespace may not join a host (nor a wildcard's
    /// domain).
    pub namespace_ownership_check: bool,
    /// At most this many Routes per host key (`host` or `*.domain`); the
    /// newer ones are refused (`RouteNotAdmitted`). `None`: no bound.
    pub max_routes_per_host: Option<usize>,
}

/// The claims admitted on one host key so far, oldest first, indexed so a
/// newer Route is checked in O(1) whatever the host holds.
#[derive(Default)]
struct HostClaims<'a> {
    claims: Vec<&'a Candidate>,
    /// Path slot ([`Candidate::path_key`]) → its claim's index.
    paths: HashMap<&'a str, usize>,
    /// Index of the first TLS claim, and of the first passthrough claim.
    first_tls: Option<usize>,
    first_passthrough: Option<usize>,
}

impl<'a> HostClaims<'a> {
    fn push(&mut self, claim: &'a Candidate) {
        let index = self.claims.len();
        self.paths.entry(claim.path_key()).or_insert(index);
        if claim.termination.is_some() {
            self.first_tls.get_or_insert(index);
        }
        if claim.termination == Some(Termination::Passthrough) {
            self.first_passthrough.get_or_insert(index);
        }
        self.claims.push(claim);
    }

    /// The oldest claim that blocks `newer` (see [`conflict`]), with the
    /// reason; the same answer as trying every claim in age order.
    fn blocker(&self, newer: &Candidate, namespace_ownership_check: bool) -> Option<String> {
        let first = self.claims.first()?;
        // With the check on, every claim is in the first claim's namespace.
        if namespace_ownership_check && first.key.namespace != newer.key.namespace {
            return conflict(first, newer, true);
        }
        let path = self.paths.get(newer.path_key()).copied();
        let tls = match newer.termination {
            Some(Termination::Passthrough) => self.first_tls,
            Some(_) => self.first_passthrough,
            None => None,
        };
        let index = match (path, tls) {
            (Some(p), Some(t)) => p.min(t),
            (p, t) => p.or(t)?,
        };
        conflict(self.claims[index], newer, namespace_ownership_check)
    }
}

/// Decide host claims. Returns a rejection for each losing Route; Routes
/// not in the map won their claim. O(n log n) for n candidates: each is
/// checked against indexes of its host's claims, never against every claim.
pub fn resolve_claims<'a>(
    candidates: impl IntoIterator<Item = &'a Candidate>,
    rules: ClaimRules,
) -> BTreeMap<ObjectKey, Rejection> {
    let namespace_ownership_check = rules.namespace_ownership_check;
    let mut order: Vec<&Candidate> = candidates.into_iter().collect();
    order.sort_by(|a, b| age_order(a, b));

    let mut by_host: HashMap<String, HostClaims> = HashMap::new();
    // domain -> admitted wildcard Routes for `*.domain`
    let mut wildcards: HashMap<&str, Vec<&Candidate>> = HashMap::new();
    // domain -> admitted plain Routes whose host lies directly in it
    let mut plain_in_domain: HashMap<&str, Vec<&Candidate>> = HashMap::new();
    let mut rejected = BTreeMap::new();

    for candidate in order {
        let host_key = candidate.host_key();
        let claims = by_host.get(&host_key);
        let blocker = claims
            .and_then(|claims| claims.blocker(candidate, namespace_ownership_check))
            .or_else(|| {
                if !namespace_ownership_check {
                    return None;
                }
                let other_ns = |c: &&&Candidate| c.key.namespace != candidate.key.namespace;
                if let Some(domain) = candidate.host.wildcard_domain() {
                    plain_in_domain.get(domain).and_then(|v| v.iter().find(other_ns)).map(|c| {
                        format!(
                            "wildcard host *.{domain} conflicts with host {} of route {} in namespace {}, which is older",
                            c.host.host, c.key, c.key.namespace
                        )
                    })
                } else {
                    candidate
                        .parent_domain()
                        .and_then(|d| wildcards.get(d))
                        .and_then(|v| v.iter().find(other_ns))
                        .map(|c| {
                            format!(
                                "host {} is covered by wildcard route {} (*.{}) in namespace {}, which is older",
                                candidate.host.host,
                                c.key,
                                c.host.wildcard_domain().unwrap_or_default(),
                                c.key.namespace
                            )
                        })
                }
            });
        if let Some(message) = blocker {
            rejected.insert(
                candidate.key.clone(),
                Rejection::new(Reason::HostAlreadyClaimed, message),
            );
            continue;
        }
        let held = claims.map_or(0, |c| c.claims.len());
        if let Some(max) = rules.max_routes_per_host.filter(|max| held >= *max) {
            rejected.insert(
                candidate.key.clone(),
                Rejection::new(
                    Reason::RouteNotAdmitted,
                    format!(
                        "host {host_key} already has {held} older Routes, the most one host may have (--max-routes-per-host {max})"
                    ),
                ),
            );
            continue;
        }
        // A conflict names the oldest claim of another namespace: that is
        // the first claim, or the first of a namespace other than its own.
        // Keeping just those two bounds the search whatever a domain holds.
        let keep_first_two = |list: &mut Vec<&'a Candidate>| match list.as_slice() {
            [] => list.push(candidate),
            [first] if first.key.namespace != candidate.key.namespace => list.push(candidate),
            _ => {}
        };
        if let Some(domain) = candidate.host.wildcard_domain() {
            keep_first_two(wildcards.entry(domain).or_default());
        } else if let Some(domain) = candidate.parent_domain() {
            keep_first_two(plain_in_domain.entry(domain).or_default());
        }
        by_host.entry(host_key).or_default().push(candidate);
    }
    rejected
}

/// Why `newer` may not join `claim` on the same host, if it may not.
fn conflict(
    claim: &Candidate,
    newer: &Candidate,
    namespace_ownership_check: bool,
) -> Option<String> {
    let host = newer.host_key();
    if namespace_ownership_check && claim.key.namespace != newer.key.namespace {
        return Some(format!(
            "host {host} is owned by namespace {} (route {} is older)",
            claim.key.namespace, claim.key
        ));
    }
    if claim.path_key() == newer.path_key() {
        let path = match newer.path_key() {
            "" => "no path".to_string(),
            p => format!("path {p}"),
        };
        return Some(format!(
            "route {} already serves host {host} with {path} and is older",
            claim.key
        ));
    }
    let passthrough = |c: &Candidate| c.termination == Some(Termination::Passthrough);
    if (passthrough(claim) && newer.termination.is_some())
        || (passthrough(newer) && claim.termination.is_some())
    {
        return Some(format!(
            "a passthrough route cannot share host {host} with another TLS route: route {} is older",
            claim.key
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (ns, name, host, wildcard, path, termination, age seconds, uid)
    type Spec = (
        &'static str,
        &'static str,
        &'static str,
        bool,
        Option<&'static str>,
        Option<Termination>,
        Option<i64>,
        &'static str,
    );

    fn candidates(specs: &[Spec]) -> Vec<Candidate> {
        specs
            .iter()
            .map(
                |(ns, name, host, wildcard, path, termination, age, uid)| Candidate {
                    key: ObjectKey::new(*ns, *name),
                    host: RouteHost {
                        host: (*host).into(),
                        wildcard: *wildcard,
                    },
                    path: path.map(crate::model::ArcStr::from),
                    termination: *termination,
                    created: age.map(|s| {
                        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + s).unwrap())
                    }),
                    uid: uid.to_string(),
                },
            )
            .collect()
    }

    fn rules(namespace_ownership_check: bool) -> ClaimRules {
        ClaimRules {
            namespace_ownership_check,
            max_routes_per_host: None,
        }
    }

    /// Names of the losers, sorted; checked for every rotation and a few
    /// shuffles of the input so order independence is part of every case.
    fn losers(specs: &[Spec], check: bool) -> Vec<String> {
        let base = candidates(specs);
        let expected: Vec<String> = resolve_claims(&base, rules(check))
            .keys()
            .map(|k| k.name.to_string())
            .collect();
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..(base.len() + 8) {
            let mut shuffled = base.clone();
            if round < base.len() {
                shuffled.rotate_left(round);
            } else {
                rng.shuffle(&mut shuffled);
            }
            let got: Vec<String> = resolve_claims(&shuffled, rules(check))
                .keys()
                .map(|k| k.name.to_string())
                .collect();
            assert_eq!(got, expected, "order dependence in round {round}");
        }
        expected
    }

    const E: Option<Termination> = Some(Termination::Edge);
    const P: Option<Termination> = Some(Termination::Passthrough);
    const R: Option<Termination> = Some(Termination::Reencrypt);

    #[test]
    fn ownership_table() {
        let cases: Vec<(&str, Vec<Spec>, bool, Vec<&str>)> = vec![
            (
                "older namespace owns the host",
                vec![
                    ("a", "old", "h.com", false, None, None, Some(1), ""),
                    ("b", "new", "h.com", false, Some("/x"), None, Some(2), ""),
                ],
                true,
                vec!["new"],
            ),
            (
                "same namespace, distinct paths share",
                vec![
                    ("a", "root", "h.com", false, None, None, Some(1), ""),
                    ("a", "api", "h.com", false, Some("/api"), None, Some(2), ""),
                ],
                true,
                vec![],
            ),
            (
                "same namespace, same path: newer loses",
                vec![
                    ("a", "one", "h.com", false, Some("/api"), None, Some(1), ""),
                    ("a", "two", "h.com", false, Some("/api"), None, Some(2), ""),
                ],
                true,
                vec!["two"],
            ),
            (
                "no path and / are the same slot",
                vec![
                    ("a", "one", "h.com", false, None, None, Some(1), ""),
                    ("a", "two", "h.com", false, Some("/"), None, Some(2), ""),
                ],
                true,
                vec!["two"],
            ),
            (
                "uid breaks timestamp ties",
                vec![
                    ("a", "x", "h.com", false, None, None, Some(1), "bbb"),
                    ("a", "y", "h.com", false, None, None, Some(1), "aaa"),
                ],
                true,
                vec!["x"],
            ),
            (
                "timestamps before uid",
                vec![
                    ("a", "x", "h.com", false, None, None, Some(1), "bbb"),
                    ("a", "y", "h.com", false, None, None, Some(2), "aaa"),
                ],
                true,
                vec!["y"],
            ),
            (
                "no timestamp counts as newest",
                vec![
                    ("a", "x", "h.com", false, None, None, None, ""),
                    ("b", "y", "h.com", false, None, None, Some(5), ""),
                ],
                true,
                vec!["x"],
            ),
            (
                "name breaks full ties",
                vec![
                    ("a", "b", "h.com", false, None, None, None, ""),
                    ("a", "a", "h.com", false, None, None, None, ""),
                ],
                true,
                vec!["b"],
            ),
            (
                "ownership check disabled: other namespace with other path",
                vec![
                    ("a", "old", "h.com", false, None, None, Some(1), ""),
                    ("b", "new", "h.com", false, Some("/x"), None, Some(2), ""),
                ],
                false,
                vec![],
            ),
            (
                "ownership check disabled: same path still conflicts",
                vec![
                    ("a", "old", "h.com", false, Some("/x"), None, Some(1), ""),
                    ("b", "new", "h.com", false, Some("/x"), None, Some(2), ""),
                ],
                false,
                vec!["new"],
            ),
            (
                "passthrough first blocks a later edge route",
                vec![
                    ("a", "pt", "h.com", false, None, P, Some(1), ""),
                    ("a", "edge", "h.com", false, Some("/x"), E, Some(2), ""),
                ],
                true,
                vec!["edge"],
            ),
            (
                "edge first blocks a later passthrough",
                vec![
                    ("a", "edge", "h.com", false, Some("/x"), E, Some(1), ""),
                    ("a", "pt", "h.com", false, None, P, Some(2), ""),
                ],
                true,
                vec!["pt"],
            ),
            (
                "reencrypt and passthrough conflict",
                vec![
                    ("a", "re", "h.com", false, Some("/x"), R, Some(1), ""),
                    ("a", "pt", "h.com", false, None, P, Some(2), ""),
                ],
                true,
                vec!["pt"],
            ),
            (
                "passthrough and plain http coexist",
                vec![
                    ("a", "pt", "h.com", false, None, P, Some(1), ""),
                    ("a", "plain", "h.com", false, Some("/x"), None, Some(2), ""),
                ],
                true,
                vec![],
            ),
            (
                "wildcard first blocks plain host of another namespace",
                vec![
                    ("a", "wild", "w.d.com", true, None, None, Some(1), ""),
                    ("b", "plain", "x.d.com", false, None, None, Some(2), ""),
                ],
                true,
                vec!["plain"],
            ),
            (
                "plain host first blocks wildcard of another namespace",
                vec![
                    ("b", "plain", "x.d.com", false, None, None, Some(1), ""),
                    ("a", "wild", "w.d.com", true, None, None, Some(2), ""),
                ],
                true,
                vec!["wild"],
            ),
            (
                "wildcard and plain in the same namespace coexist",
                vec![
                    ("a", "wild", "w.d.com", true, None, None, Some(1), ""),
                    ("a", "plain", "x.d.com", false, None, None, Some(2), ""),
                ],
                true,
                vec![],
            ),
            (
                "wildcard does not cover deeper hosts",
                vec![
                    ("a", "wild", "w.d.com", true, None, None, Some(1), ""),
                    ("b", "deep", "x.y.d.com", false, None, None, Some(2), ""),
                ],
                true,
                vec![],
            ),
            (
                "two wildcards for one domain: older namespace wins",
                vec![
                    ("a", "w1", "w.d.com", true, None, None, Some(1), ""),
                    ("b", "w2", "v.d.com", true, None, None, Some(2), ""),
                ],
                true,
                vec!["w2"],
            ),
            (
                "winner gone: next oldest admitted",
                vec![
                    ("b", "second", "h.com", false, None, None, Some(2), ""),
                    ("c", "third", "h.com", false, None, None, Some(3), ""),
                ],
                true,
                vec!["third"],
            ),
            (
                "loser holds no claim",
                vec![
                    ("a", "first", "h.com", false, Some("/x"), None, Some(1), ""),
                    ("b", "second", "h.com", false, Some("/y"), None, Some(2), ""),
                    ("a", "third", "h.com", false, Some("/y"), None, Some(3), ""),
                ],
                true,
                vec!["second"],
            ),
        ];
        for (name, specs, check, expected) in cases {
            assert_eq!(losers(&specs, check), expected, "{name}");
        }
    }

    #[test]
    fn message_names_the_winner() {
        let c = candidates(&[
            ("a", "old", "h.com", false, None, None, Some(1), ""),
            ("b", "new", "h.com", false, None, None, Some(2), ""),
        ]);
        let rejected = resolve_claims(&c, rules(true));
        let r = &rejected[&ObjectKey::new("b", "new")];
        assert_eq!(r.reason, Reason::HostAlreadyClaimed);
        assert!(r.message.contains("a/old"), "{}", r.message);
    }

    #[test]
    fn routes_per_host_are_bounded_oldest_first() {
        let c = candidates(&[
            ("a", "r1", "h.com", false, Some("/1"), None, Some(1), ""),
            ("a", "r3", "h.com", false, Some("/3"), None, Some(3), ""),
            ("a", "r2", "h.com", false, Some("/2"), None, Some(2), ""),
            // A conflict is still a conflict on a full host.
            ("a", "dup", "h.com", false, Some("/1"), None, Some(4), ""),
            // Other hosts, and the wildcard key of the domain, count apart.
            ("a", "o1", "other.com", false, Some("/1"), None, Some(5), ""),
            ("a", "o2", "other.com", false, Some("/2"), None, Some(6), ""),
            ("a", "w1", "x.h.com", true, Some("/1"), None, Some(7), ""),
        ]);
        let bounded = ClaimRules {
            namespace_ownership_check: true,
            max_routes_per_host: Some(2),
        };
        let rejected = resolve_claims(&c, bounded);
        let names: Vec<&str> = rejected.keys().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["dup", "r3"]);
        let r3 = &rejected[&ObjectKey::new("a", "r3")];
        assert_eq!(r3.reason, Reason::RouteNotAdmitted);
        assert_eq!(
            r3.message,
            "host h.com already has 2 older Routes, the most one host may have (--max-routes-per-host 2)"
        );
        assert_eq!(
            rejected[&ObjectKey::new("a", "dup")].reason,
            Reason::HostAlreadyClaimed
        );
        assert!(resolve_claims(&c, rules(true))
            .keys()
            .all(|k| k.name == "dup"));
    }

    /// The indexed check gives the answer (and the message) of trying
    /// every older claim in age order, on mixed hosts, paths and
    /// terminations in several namespaces.
    #[test]
    fn indexed_claims_equal_the_scan_of_every_claim() {
        let hosts = ["h.com", "a.h.com", "b.h.com", "x.h.com"];
        let paths = [None, Some("/"), Some("/a"), Some("/b")];
        let terms = [None, E, P, R];
        let mut rng = fastrand::Rng::with_seed(11);
        for round in 0..200 {
            let specs: Vec<Spec> = (0..12)
                .map(|i| {
                    let ns: &'static str = ["a", "b", "c"][rng.usize(..3)];
                    let name: &'static str = Box::leak(format!("r{i}").into_boxed_str());
                    let wildcard = rng.usize(..5) == 0;
                    (
                        ns,
                        name,
                        hosts[rng.usize(..hosts.len())],
                        wildcard,
                        paths[rng.usize(..paths.len())],
                        terms[rng.usize(..terms.len())],
                        Some(rng.i64(0..6)),
                        "",
                    )
                })
                .collect();
            let c = candidates(&specs);
            for check in [true, false] {
                let got = resolve_claims(&c, rules(check));
                let want = scan_every_claim(&c, check);
                assert_eq!(got, want, "round {round}, check {check}: {specs:?}");
            }
        }
    }

    /// The definition: each Route, oldest first, against every claim of
    /// its host in age order (wildcard conflicts left out: not indexed).
    fn scan_every_claim(c: &[Candidate], check: bool) -> BTreeMap<ObjectKey, Rejection> {
        let mut order: Vec<&Candidate> = c.iter().collect();
        order.sort_by(|a, b| age_order(a, b));
        let mut claims: Vec<&Candidate> = Vec::new();
        let mut wildcard_rejections = resolve_claims(c, rules(check));
        let mut rejected = BTreeMap::new();
        for candidate in order {
            let blocker = claims
                .iter()
                .filter(|claim| claim.host_key() == candidate.host_key())
                .find_map(|claim| conflict(claim, candidate, check));
            match blocker {
                Some(message) => {
                    rejected.insert(
                        candidate.key.clone(),
                        Rejection::new(Reason::HostAlreadyClaimed, message),
                    );
                }
                None => match wildcard_rejections.remove(&candidate.key) {
                    // A wildcard conflict (checked by resolve_claims only).
                    Some(r) if r.message.contains("wildcard") => {
                        rejected.insert(candidate.key.clone(), r);
                    }
                    _ => claims.push(candidate),
                },
            }
        }
        rejected
    }
}
