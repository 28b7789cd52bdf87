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

use std::collections::{BTreeMap, HashMap};
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
    /// not in the last list are hashed.
    fn digests(&mut self, items: &[Arc<T>]) -> &[Digest] {
        let unchanged = items.len() == self.items.len()
            && items
                .iter()
                .zip(&self.items)
                .all(|(a, b)| Arc::ptr_eq(a, b));
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

    fn digests(&mut self, list: &Arc<Vec<T>>) -> &[Digest] {
        if !self.list.as_ref().is_some_and(|l| Arc::ptr_eq(l, list)) {
            self.digests = list.iter().map(|e| digest_of(self.tag, e)).collect();
            self.list = Some(Arc::clone(list));
        }
        &self.digests
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
        }
    }
}

impl Fingerprints {
    /// One fingerprint per Route that has a part in `plan`. The same plan
    /// gives the same fingerprints whatever was computed before.
    pub fn of(&mut self, plan: &Plan) -> BTreeMap<ObjectKey, Digest> {
        // Each Route's part digests, in plan order, fed to its hash.
        let mut parts: FxHashMap<&ObjectKey, Sha256> = FxHashMap::default();
        parts.reserve(plan.backends.len());
        let mut add = |route, digest: &Digest| parts.entry(route).or_default().update(digest);
        let mut allowlists = HashMap::new();
        let mut cas = HashMap::new();
        let backend_digests = self.backends.digests(&plan.backends);
        for (b, d) in plan.backends.iter().zip(backend_digests) {
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
        for (memo, entries) in [
            (&mut self.http, &plan.http_lookup),
            (&mut self.https, &plan.https_lookup),
        ] {
            for (e, d) in entries.iter().zip(memo.digests(entries)) {
                add(&e.route, d);
            }
        }
        let sni = self.sni.digests(&plan.passthrough);
        for (e, d) in plan.passthrough.iter().zip(sni) {
            add(&e.route, d);
        }
        let certs = self.certificates.digests(&plan.certificates);
        for (c, d) in plan.certificates.iter().zip(certs) {
            add(&c.route, d);
        }
        let allow = self.allowlists.digests(&plan.allowlist_files);
        for (a, d) in plan.allowlist_files.iter().zip(allow) {
            if let Some(route) = allowlists.get(a.file.as_str()) {
                add(route, d);
            }
        }
        let ca = self.cas.digests(&plan.ca_files);
        for (c, d) in plan.ca_files.iter().zip(ca) {
            if let Some(route) = cas.get(c.file.as_str()) {
                add(route, d);
            }
        }
        let mut sorted: Vec<(&ObjectKey, Digest)> =
            parts.into_iter().map(|(k, h)| (k, h.finish())).collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        sorted.into_iter().map(|(k, d)| (k.clone(), d)).collect()
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
