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
    pub path: Option<String>,
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
            None => self.host.host.clone(),
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

/// Decide host claims. Returns a rejection for each losing Route; Routes
/// not in the map won their claim.
pub fn resolve_claims<'a>(
    candidates: impl IntoIterator<Item = &'a Candidate>,
    namespace_ownership_check: bool,
) -> BTreeMap<ObjectKey, Rejection> {
    let mut order: Vec<&Candidate> = candidates.into_iter().collect();
    order.sort_by(|a, b| age_order(a, b));

    let mut by_host: HashMap<String, Vec<&Candidate>> = HashMap::new();
    // domain -> admitted wildcard Routes for `*.domain`
    let mut wildcards: HashMap<&str, Vec<&Candidate>> = HashMap::new();
    // domain -> admitted plain Routes whose host lies directly in it
    let mut plain_in_domain: HashMap<&str, Vec<&Candidate>> = HashMap::new();
    let mut rejected = BTreeMap::new();

    for candidate in order {
        let host_key = candidate.host_key();
        let blocker = by_host
            .get(&host_key)
            .and_then(|claims| claims.iter().find_map(|claim| conflict(claim, candidate, namespace_ownership_check)))
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
        match blocker {
            Some(message) => {
                rejected.insert(
                    candidate.key.clone(),
                    Rejection::new(Reason::HostAlreadyClaimed, message),
                );
            }
            None => {
                by_host.entry(host_key).or_default().push(candidate);
                if let Some(domain) = candidate.host.wildcard_domain() {
                    wildcards.entry(domain).or_default().push(candidate);
                } else if let Some(domain) = candidate.parent_domain() {
                    plain_in_domain.entry(domain).or_default().push(candidate);
                }
            }
        }
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
                        host: host.to_string(),
                        wildcard: *wildcard,
                    },
                    path: path.map(str::to_string),
                    termination: *termination,
                    created: age.map(|s| {
                        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000 + s).unwrap())
                    }),
                    uid: uid.to_string(),
                },
            )
            .collect()
    }

    /// Names of the losers, sorted; checked for every rotation and a few
    /// shuffles of the input so order independence is part of every case.
    fn losers(specs: &[Spec], check: bool) -> Vec<String> {
        let base = candidates(specs);
        let expected: Vec<String> = resolve_claims(&base, check)
            .keys()
            .map(|k| k.name.clone())
            .collect();
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..(base.len() + 8) {
            let mut shuffled = base.clone();
            if round < base.len() {
                shuffled.rotate_left(round);
            } else {
                rng.shuffle(&mut shuffled);
            }
            let got: Vec<String> = resolve_claims(&shuffled, check)
                .keys()
                .map(|k| k.name.clone())
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
        let rejected = resolve_claims(&c, true);
        let r = &rejected[&ObjectKey::new("b", "new")];
        assert_eq!(r.reason, Reason::HostAlreadyClaimed);
        assert!(r.message.contains("a/old"), "{}", r.message);
    }
}
