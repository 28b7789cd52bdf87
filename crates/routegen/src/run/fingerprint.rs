//! Per-Route fingerprints of a plan: a hash of everything the plan holds
//! for a Route (backend and servers, lookup entries, certificate, CA and
//! allowlist files). Equal fingerprints mean the Route renders the same;
//! `run` uses them to tell which Routes a pass changed and to release a
//! quarantined Route once its part of the plan changes.
//!
//! The plan shares unchanged parts between passes (`Arc`s, see
//! `routegen_core::plan::PlanMemo`), so [`Fingerprints`] keeps the digest of
//! every shared item by pointer and hashes only new items: a pass that
//! changed one Route costs one item's `Debug` text, not the fleet's (it
//! was 40% of a one-endpoint pass at 10,000 Routes).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use openssl::sha::Sha256;
use routegen_core::model::ObjectKey;
use routegen_core::plan::{Plan, ServerVerify};

pub type Digest = [u8; 32];

fn digest_of<T: Debug>(tag: &str, item: &T) -> Digest {
    let mut h = Sha256::new();
    h.update(tag.as_bytes());
    h.update(format!("{item:?}").as_bytes());
    h.finish()
}

/// Digests of shared items, kept with the last list they came in; the
/// `Arc`s are kept so an address cannot be reused by another item while it
/// is remembered.
#[derive(Debug)]
struct ByPointer<T> {
    tag: &'static str,
    items: Vec<Arc<T>>,
    digests: Vec<Digest>,
}

impl<T: Debug> ByPointer<T> {
    fn new(tag: &'static str) -> Self {
        ByPointer {
            tag,
            items: Vec::new(),
            digests: Vec::new(),
        }
    }

    /// The digests of `items`, in order. An item at the same place as in
    /// the last list costs a pointer compare, one elsewhere a lookup by
    /// address among the last list's (built only when needed); only items
    /// not in the last list are hashed. The Routes (`route_of`) of items
    /// that differ from the last list's at their place go to `touched`;
    /// a list of another length touches everything.
    fn digests(
        &mut self,
        items: &[Arc<T>],
        route_of: impl Fn(&T) -> &ObjectKey,
        touched: &mut Touched,
    ) -> &[Digest] {
        if items.len() != self.items.len() {
            *touched = Touched::All;
        }
        let mut unchanged = items.len() == self.items.len();
        for (new, old) in items.iter().zip(&self.items) {
            if !Arc::ptr_eq(new, old) {
                unchanged = false;
                touched.add(route_of(old));
                touched.add(route_of(new));
            }
        }
        if unchanged {
            return &self.digests;
        }
        let mut by_address: Option<FxHashMap<*const T, Digest>> = None;
        let digests = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                if self.items.get(i).is_some_and(|old| Arc::ptr_eq(old, item)) {
                    return self.digests[i];
                }
                let known = by_address.get_or_insert_with(|| {
                    self.items
                        .iter()
                        .map(Arc::as_ptr)
                        .zip(self.digests.iter().copied())
                        .collect()
                });
                known
                    .get(&Arc::as_ptr(item))
                    .copied()
                    .unwrap_or_else(|| digest_of(self.tag, &**item))
            })
            .collect();
        self.items = items.to_vec();
        self.digests = digests;
        &self.digests
    }
}

/// Digests of a shared list's elements, recomputed when the list changes.
#[derive(Debug)]
struct ByList<T> {
    tag: &'static str,
    list: Option<Arc<Vec<T>>>,
    digests: Vec<Digest>,
}

impl<T: Debug> ByList<T> {
    fn new(tag: &'static str) -> Self {
        ByList {
            tag,
            list: None,
            digests: Vec::new(),
        }
    }

    /// The digests of `list`'s elements; a list that is not the last one
    /// touches everything.
    fn digests(&mut self, list: &Arc<Vec<T>>, touched: &mut Touched) -> &[Digest] {
        if !self.list.as_ref().is_some_and(|l| Arc::ptr_eq(l, list)) {
            *touched = Touched::All;
            self.digests = list.iter().map(|e| digest_of(self.tag, e)).collect();
            self.list = Some(Arc::clone(list));
        }
        &self.digests
    }
}

/// Fingerprints per Route, in a persistent map: an unchanged result is
/// handed on as it is, a result with a few Routes changed shares the rest
/// with the last one (and [`imbl::OrdMap::diff`] skips what is shared).
pub type RouteFingerprints = imbl::OrdMap<ObjectKey, Digest>;

/// Up to this many Routes whose parts changed are fingerprinted alone;
/// more, and every Route is.
const MAX_TOUCHED: usize = 16;

/// The Routes whose parts may differ from the last plan's.
enum Touched {
    Some(Vec<ObjectKey>),
    All,
}

impl Touched {
    fn add(&mut self, route: &ObjectKey) {
        if let Touched::Some(routes) = self {
            if routes.contains(route) {
                return;
            }
            if routes.len() >= MAX_TOUCHED {
                *self = Touched::All;
            } else {
                routes.push(route.clone());
            }
        }
    }
}

/// Computes [`Fingerprints::of`] plan after plan, remembering the digests
/// of shared items.
#[derive(Debug)]
pub struct Fingerprints {
    backends: ByPointer<routegen_core::plan::Backend>,
    http: ByPointer<routegen_core::plan::LookupEntry>,
    https: ByPointer<routegen_core::plan::LookupEntry>,
    sni: ByPointer<routegen_core::plan::SniEntry>,
    certificates: ByList<routegen_core::plan::CertEntry>,
    allowlists: ByList<routegen_core::plan::AllowlistFile>,
    cas: ByList<routegen_core::plan::PemFile>,
    /// The result of the last call.
    last: Option<RouteFingerprints>,
}

impl Default for Fingerprints {
    fn default() -> Self {
        Fingerprints {
            backends: ByPointer::new("backend"),
            http: ByPointer::new("http"),
            https: ByPointer::new("https"),
            sni: ByPointer::new("sni"),
            certificates: ByList::new("cert"),
            allowlists: ByList::new("allow"),
            cas: ByList::new("ca"),
            last: None,
        }
    }
}

impl Fingerprints {
    /// One fingerprint per Route that has a part in `plan`. The same plan
    /// gives the same fingerprints whatever was computed before. When only
    /// a few Routes' parts changed since the last call (items replaced in
    /// place, as an endpoint change does), only those Routes are
    /// fingerprinted again and the rest of the last result is kept.
    pub fn of(&mut self, plan: &Plan) -> RouteFingerprints {
        let mut touched = Touched::Some(Vec::new());
        let t = &mut touched;
        let digests = PlanDigests {
            backends: self.backends.digests(&plan.backends, |b| &b.route, t),
            http: self.http.digests(&plan.http_lookup, |e| &e.route, t),
            https: self.https.digests(&plan.https_lookup, |e| &e.route, t),
            sni: self.sni.digests(&plan.passthrough, |e| &e.route, t),
            certs: self.certificates.digests(&plan.certificates, t),
            allow: self.allowlists.digests(&plan.allowlist_files, t),
            ca: self.cas.digests(&plan.ca_files, t),
        };
        let result = match (&mut self.last, touched) {
            (Some(last), Touched::Some(routes)) => {
                if !routes.is_empty() {
                    let mut fresh = digests.fold(plan, |k| routes.contains(k));
                    for route in &routes {
                        match fresh.remove(route) {
                            Some(d) => last.insert(route.clone(), d),
                            None => last.remove(route),
                        };
                    }
                }
                last.clone()
            }
            _ => {
                let all = digests.fold(plan, |_| true);
                let mut sorted: Vec<(&ObjectKey, Digest)> = all.into_iter().collect();
                sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
                sorted.into_iter().map(|(k, d)| (k.clone(), d)).collect()
            }
        };
        self.last = Some(result.clone());
        result
    }
}

/// The digests of a plan's items, list by list (in the plan's order).
struct PlanDigests<'a> {
    backends: &'a [Digest],
    http: &'a [Digest],
    https: &'a [Digest],
    sni: &'a [Digest],
    certs: &'a [Digest],
    allow: &'a [Digest],
    ca: &'a [Digest],
}

impl PlanDigests<'_> {
    /// The fingerprint of each Route `wanted` picks that has a part in
    /// `plan`: its parts' digests in plan order, list by list, hashed.
    fn fold<'p>(
        &self,
        plan: &'p Plan,
        wanted: impl Fn(&ObjectKey) -> bool,
    ) -> FxHashMap<&'p ObjectKey, Digest> {
        let mut parts: FxHashMap<&ObjectKey, Sha256> = FxHashMap::default();
        let mut add = |route: &'p ObjectKey, digest: &Digest| {
            if wanted(route) {
                parts.entry(route).or_default().update(digest);
            }
        };
        let mut allowlists = HashMap::new();
        let mut cas = HashMap::new();
        for (b, d) in plan.backends.iter().zip(self.backends) {
            add(&b.route, d);
            if let Some(f) = &b.allowlist_file {
                allowlists.insert(f.as_str(), &b.route);
            }
            if let Some(tls) = &b.server_tls {
                if let ServerVerify::CaFile { file, .. } = &tls.verify {
                    cas.insert(file.as_str(), &b.route);
                }
            }
        }
        for (entries, digests) in [
            (&plan.http_lookup, self.http),
            (&plan.https_lookup, self.https),
        ] {
            for (e, d) in entries.iter().zip(digests) {
                add(&e.route, d);
            }
        }
        for (e, d) in plan.passthrough.iter().zip(self.sni) {
            add(&e.route, d);
        }
        for (c, d) in plan.certificates.iter().zip(self.certs) {
            add(&c.route, d);
        }
        for (a, d) in plan.allowlist_files.iter().zip(self.allow) {
            if let Some(route) = allowlists.get(a.file.as_str()) {
                add(route, d);
            }
        }
        for (c, d) in plan.ca_files.iter().zip(self.ca) {
            if let Some(route) = cas.get(c.file.as_str()) {
                add(route, d);
            }
        }
        parts.into_iter().map(|(k, h)| (k, h.finish())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routegen_core::plan::Backend;

    fn backend(route: &str, name: &str) -> Arc<Backend> {
        let key = ObjectKey::new("ns", route);
        Arc::new(routegen_core::testkit::plan::backend(
            name,
            key,
            "h",
            Vec::new(),
        ))
    }

    /// Random edits of a plan (backends replaced in place by equal or
    /// changed ones, moved to another Route, added, removed, swapped): the
    /// memo, fingerprinting only the Routes it sees touched, always agrees
    /// with a fresh computation.
    #[test]
    fn touched_routes_alone_agree_with_a_fresh_computation() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut plan = Plan {
            backends: (0..30)
                .map(|i| backend(&format!("r{}", i % 20), &format!("be_{i}")))
                .collect(),
            ..Plan::default()
        };
        let mut memo = Fingerprints::default();
        for step in 0..500 {
            let n = plan.backends.len();
            let at = rng.usize(0..n.max(1));
            let (route, name) = (
                format!("r{}", rng.usize(0..25)),
                format!("be_{}", rng.usize(0..40)),
            );
            match rng.usize(0..8) {
                0 | 1 if n > 0 => {
                    let old = &plan.backends[at];
                    let key = old.route.name.clone();
                    plan.backends[at] = backend(&key, &old.name.clone());
                }
                2 | 3 if n > 0 => {
                    let key = plan.backends[at].route.name.clone();
                    plan.backends[at] = backend(&key, &name);
                }
                4 if n > 0 => plan.backends[at] = backend(&route, &name),
                5 => plan
                    .backends
                    .insert(rng.usize(0..=n), backend(&route, &name)),
                6 if n > 1 => {
                    plan.backends.remove(at);
                }
                _ if n > 1 => plan.backends.swap(at, rng.usize(0..n)),
                _ => {}
            }
            let fresh = Fingerprints::default().of(&plan);
            assert_eq!(memo.of(&plan), fresh, "step {step}");
            // Asked again: the same result, shared.
            let again = memo.of(&plan);
            assert!(again.ptr_eq(&memo.of(&plan)), "step {step}");
        }
    }

    #[test]
    fn memo_agrees_with_a_fresh_computation_and_sees_each_change() {
        let mut plan = Plan {
            backends: vec![backend("a", "be_a"), backend("b", "be_b")],
            ..Plan::default()
        };
        let mut memo = Fingerprints::default();
        let first = memo.of(&plan);
        assert_eq!(first, Fingerprints::default().of(&plan));
        assert_eq!(memo.of(&plan), first);
        // A new Arc with equal content: the same fingerprint.
        plan.backends[0] = backend("a", "be_a");
        assert_eq!(memo.of(&plan), first);
        // Changed content: only that Route's fingerprint moves.
        plan.backends[1] = backend("b", "be_b2");
        let changed = memo.of(&plan);
        assert_eq!(changed, Fingerprints::default().of(&plan));
        assert_eq!(
            changed[&ObjectKey::new("ns", "a")],
            first[&ObjectKey::new("ns", "a")]
        );
        assert_ne!(
            changed[&ObjectKey::new("ns", "b")],
            first[&ObjectKey::new("ns", "b")]
        );
        // Moved, or after one inserted before it: the same.
        plan.backends.insert(0, backend("c", "be_c"));
        assert_eq!(memo.of(&plan), Fingerprints::default().of(&plan));
        plan.backends.swap(0, 2);
        let moved = memo.of(&plan);
        assert_eq!(moved, Fingerprints::default().of(&plan));
        assert_eq!(
            moved[&ObjectKey::new("ns", "b")],
            changed[&ObjectKey::new("ns", "b")]
        );
        plan.backends.remove(1);
        // Gone from the plan: gone from the fingerprints.
        plan.backends.pop();
        assert_eq!(memo.of(&plan).len(), 1);
    }
}
