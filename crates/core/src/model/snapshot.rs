//! One consistent set of objects: the input of admission and planning.

use std::fmt;
use std::sync::Arc;

/// Shared strings of the model and everything after it (see [`ObjectKey`]).
pub use arcstr::ArcStr;
use k8s_openapi::api::core::v1::{Namespace, Secret};

use super::{EndpointSlice, Route, Service};

/// `namespace/name` of a namespaced object. Orders by namespace, then name.
///
/// The two names are shared strings ([`ArcStr`], one pointer each): a key
/// is copied into every memo and table that names its object (admission,
/// plan, lookup index, certificates), and a copy is two reference counts,
/// not two allocations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub namespace: ArcStr,
    pub name: ArcStr,
}

impl ObjectKey {
    pub fn new(namespace: impl Into<ArcStr>, name: impl Into<ArcStr>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Every object the router knows at one instant. Every object carries a
/// namespace (the loader fills in the default). The order of the vectors is
/// irrelevant: consumers sort what they need, so results never depend on
/// arrival order.
///
/// Objects are shared (`Arc`): a source hands the same `Arc` for an object
/// that did not change, which is what lets `routegen_render::engine::Engine` reuse
/// its per-object results by pointer identity instead of comparing or
/// hashing contents. Change an object with `Arc::make_mut` or by replacing
/// its `Arc`; never mutate through shared ownership.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub routes: Vec<Arc<Route>>,
    /// Route documents with wrong field types (rejected by admission).
    pub undecodable_routes: Vec<UndecodableRoute>,
    pub services: Vec<Arc<Service>>,
    pub endpoint_slices: Vec<Arc<EndpointSlice>>,
    pub namespaces: Vec<Arc<Namespace>>,
    /// Secrets named by a Route's `spec.tls.externalCertificate` (a source
    /// may hold only those): `data` only (`stringData` already merged in,
    /// as the API server does).
    pub secrets: Vec<Arc<Secret>>,
    /// Secrets a Route names that the source may not read (403: the
    /// router's ServiceAccount has no Role for them).
    pub forbidden_secrets: Vec<ObjectKey>,
}

/// The `namespace/name` of any object with metadata.
pub fn key_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ObjectKey {
    ObjectKey::new(
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// The `(namespace, name)` of any object with metadata, borrowed; ordered
/// as [`key_of`]'s `ObjectKey` (a missing field is the empty string), the
/// order of a snapshot's lists.
pub fn key_str(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Whether two lists hold the same objects (the same `Arc`s) in the same
/// order: how the memos recognise inputs they have seen.
pub fn same_arcs<T, A, B>(a: &[A], b: &[B]) -> bool
where
    A: std::borrow::Borrow<Arc<T>>,
    B: std::borrow::Borrow<Arc<T>>,
{
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| Arc::ptr_eq(a.borrow(), b.borrow()))
}

/// A Route document whose fields could not be decoded (wrong types). Kept
/// so admission can reject it by name with the decoder's message instead of
/// failing the whole input.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UndecodableRoute {
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// `field <path>: <serde message>`.
    pub message: String,
}

/// Whether two Route objects are equal (the Route type, kube's derive, has
/// no `PartialEq`: its parts are compared).
pub fn routes_equal(a: &Route, b: &Route) -> bool {
    a.metadata == b.metadata && a.spec == b.spec && a.status == b.status
}

impl Snapshot {
    /// Replace each object equal to the object of the same kind and
    /// `namespace/name` in `previous` by `previous`'s `Arc`, so that a
    /// source that re-reads everything (a directory of manifests) still
    /// hands unchanged objects to the engine as the same `Arc`s. Returns
    /// how many objects were replaced.
    pub fn reuse_unchanged(&mut self, previous: &Snapshot) -> usize {
        self.reuse_recorded(previous, &mut Replacements::default())
    }

    /// [`Snapshot::reuse_unchanged`] that also takes `replaced`'s pairs
    /// (recorded by the last call against `previous`): an object that is
    /// the given `Arc` of a pair takes the pair's earlier `Arc` without
    /// being compared again. A source that keeps its own `Arc`s (the
    /// directory loader, the watch caches) would otherwise have every
    /// object it once re-read compared in depth on every pass. `replaced`
    /// then holds this call's pairs.
    fn reuse_recorded(&mut self, previous: &Snapshot, replaced: &mut Replacements) -> usize {
        fn reuse<T>(
            now: &mut [Arc<T>],
            (before, replaced): (&[Arc<T>], &mut Replaced<T>),
            key: impl for<'a> Fn(&'a T) -> (&'a str, &'a str),
            equal: impl Fn(&T, &T) -> bool,
        ) -> usize {
            /// How an object of `before` is found by key.
            enum Lookup<'a, T> {
                /// `before` is in key order: binary search.
                Sorted,
                Index(rustc_hash::FxHashMap<(&'a str, &'a str), &'a Arc<T>>),
            }
            // Sources keep objects in key order (the directory loader and
            // the Kubernetes snapshot sort them): one walk over `now` and
            // `before` together finds each object's previous version; an
            // object that is the one at the walk's position, or the given
            // side of a pair `replaced` recorded, needs no key comparison.
            // Objects the walk does not place (new ones, or input out of
            // order) are looked up: binary search when `before` is in key
            // order, a hash index otherwise.
            let earlier = std::mem::take(replaced);
            let mut reused = 0;
            let mut unplaced = Vec::new();
            let mut j = 0;
            // `object` (given) is equal to `old` (earlier): pass `old` on.
            let mut replace = |object: &mut Arc<T>, old: &Arc<T>| {
                replaced.insert(
                    Arc::as_ptr(object) as usize,
                    (Arc::clone(object), Arc::clone(old)),
                );
                *object = Arc::clone(old);
            };
            for (i, object) in now.iter_mut().enumerate() {
                if before.get(j).is_some_and(|old| Arc::ptr_eq(old, object)) {
                    j += 1;
                    continue;
                }
                if let Some((_, old)) = earlier.get(&(Arc::as_ptr(object) as usize)) {
                    if before.get(j).is_some_and(|b| Arc::ptr_eq(b, old)) {
                        j += 1;
                    }
                    replace(object, old);
                    reused += 1;
                    continue;
                }
                let wanted = key(object);
                while before.get(j).is_some_and(|o| key(o.as_ref()) < wanted) {
                    j += 1;
                }
                match before.get(j) {
                    Some(old) if key(old.as_ref()) == wanted => {
                        if !Arc::ptr_eq(old, object) && equal(old, object) {
                            replace(object, old);
                            reused += 1;
                        }
                        j += 1;
                    }
                    _ => unplaced.push(i),
                }
            }
            if unplaced.is_empty() {
                return reused;
            }
            let lookup = if before.is_sorted_by(|a, b| key(a.as_ref()) < key(b.as_ref())) {
                Lookup::Sorted
            } else {
                Lookup::Index(before.iter().map(|o| (key(o.as_ref()), o)).collect())
            };
            for i in unplaced {
                let object = &mut now[i];
                let wanted = key(object);
                let old = match &lookup {
                    Lookup::Sorted => before
                        .binary_search_by(|o| key(o.as_ref()).cmp(&wanted))
                        .ok()
                        .map(|at| &before[at]),
                    // Shared, so the keys may live shorter than `before`.
                    Lookup::Index(index) => index.get(&wanted).copied(),
                };
                if let Some(old) = old {
                    if !Arc::ptr_eq(old, object) && equal(old, object) {
                        replace(object, old);
                        reused += 1;
                    }
                }
            }
            reused
        }
        reuse(
            &mut self.routes,
            (&previous.routes, &mut replaced.routes),
            |r| key_str(&r.metadata),
            routes_equal,
        ) + reuse(
            &mut self.services,
            (&previous.services, &mut replaced.services),
            |s| (&s.namespace, &s.name),
            |a, b| a == b,
        ) + reuse(
            &mut self.endpoint_slices,
            (&previous.endpoint_slices, &mut replaced.endpoint_slices),
            |s| (&s.namespace, &s.name),
            |a, b| a == b,
        ) + reuse(
            &mut self.namespaces,
            (&previous.namespaces, &mut replaced.namespaces),
            |n| key_str(&n.metadata),
            |a, b| a == b,
        ) + reuse(
            &mut self.secrets,
            (&previous.secrets, &mut replaced.secrets),
            |s| key_str(&s.metadata),
            |a, b| a == b,
        )
    }
}

/// Objects a reuse replaced, by the address of the `Arc` the source gave
/// (held, so no other object can have that address): (given, earlier).
type Replaced<T> = rustc_hash::FxHashMap<usize, (Arc<T>, Arc<T>)>;

/// [`Replaced`] for each kind of object.
#[derive(Debug, Default)]
struct Replacements {
    routes: Replaced<Route>,
    services: Replaced<Service>,
    endpoint_slices: Replaced<EndpointSlice>,
    namespaces: Replaced<Namespace>,
    secrets: Replaced<Secret>,
}

/// What [`ReuseMemo::reuse`] remembers of the last pass: the snapshot it
/// passed on (shared with the caller) and the objects it replaced there.
#[derive(Debug, Default)]
pub struct ReuseMemo {
    passed: Arc<Snapshot>,
    replaced: Replacements,
}

impl ReuseMemo {
    /// `snapshot` after [`Snapshot::reuse_unchanged`] against the last
    /// snapshot this memo passed on, comparing in depth only objects the
    /// source gave anew. Neither snapshot is copied.
    pub fn reuse(&mut self, mut snapshot: Snapshot) -> Arc<Snapshot> {
        snapshot.reuse_recorded(&self.passed, &mut self.replaced);
        self.passed = Arc::new(snapshot);
        Arc::clone(&self.passed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn equal_objects_take_the_previous_arc_changed_ones_keep_theirs() {
        let before = testkit::snapshot([
            testkit::route("ns", "a", "a.example.com", "s"),
            testkit::route("ns", "b", "b.example.com", "s"),
        ]);
        let mut now = testkit::snapshot([
            testkit::route("ns", "b", "b2.example.com", "s"),
            testkit::route("ns", "a", "a.example.com", "s"),
            testkit::route("ns", "c", "c.example.com", "s"),
        ]);
        assert_eq!(now.reuse_unchanged(&before), 1);
        assert!(Arc::ptr_eq(&now.routes[1], &before.routes[0]));
        assert!(!Arc::ptr_eq(&now.routes[0], &before.routes[1]));
        assert_eq!(now.routes[0].spec.host.as_deref(), Some("b2.example.com"));
        assert_eq!(now.reuse_unchanged(&before), 0, "idempotent");
    }

    /// The memo passes on the same `Arc`s as a plain reuse against the
    /// last snapshot passed on, for a source that keeps its own `Arc`s.
    #[test]
    fn the_memo_passes_on_what_a_plain_reuse_does() {
        let route = |name: &str, host: &str| testkit::route("ns", name, host, "s");
        let mut memo = ReuseMemo::default();
        let mut last: Option<Snapshot> = None;
        // The source's own objects: `a` re-read (equal, a new Arc) once,
        // then kept; `b` changed; `0` added before both, `c` after.
        let a1 = testkit::snapshot([route("a", "a.test"), route("b", "b.test")]);
        let mut a2 = testkit::snapshot([route("a", "a.test"), route("b", "b2.test")]);
        a2.routes[1] = a1.routes[1].clone();
        let mut a3 = a2.clone();
        a3.routes[1] = Arc::new(route("b", "b3.test"));
        a3.routes.push(Arc::new(route("c", "c.test")));
        a3.routes.insert(0, Arc::new(route("0", "0.test")));
        for given in [&a1, &a2, &a2, &a3, &a3] {
            let with_memo = (*memo.reuse(given.clone())).clone();
            let mut plain = given.clone();
            if let Some(last) = &last {
                plain.reuse_unchanged(last);
            }
            let same = |x: &Snapshot, y: &Snapshot| {
                x.routes.len() == y.routes.len()
                    && x.routes
                        .iter()
                        .zip(&y.routes)
                        .all(|(p, q)| Arc::ptr_eq(p, q))
            };
            assert!(same(&with_memo, &plain));
            last = Some(with_memo);
        }
        // `a` is the first pass's Arc throughout.
        assert!(Arc::ptr_eq(&last.unwrap().routes[1], &a1.routes[0]));
    }

    /// Found by binary search when the previous objects are in key order,
    /// by a hash index when they are not: the same result.
    #[test]
    fn previous_objects_in_any_order_are_found() {
        let routes = |names: &[&str]| {
            testkit::snapshot(
                names
                    .iter()
                    .map(|n| testkit::route("ns", n, &format!("{n}.example.com"), "s")),
            )
        };
        for before in [routes(&["a", "b", "c", "d"]), routes(&["d", "b", "a", "c"])] {
            // Shifted by one: no object is at its old place.
            let mut now = routes(&["0", "a", "b", "c", "d"]);
            assert_eq!(now.reuse_unchanged(&before), 4);
            for r in &now.routes[1..] {
                assert!(before.routes.iter().any(|b| Arc::ptr_eq(b, r)));
            }
        }
    }
}
