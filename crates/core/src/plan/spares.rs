//! Spare backends: a few empty backends per *shape*, so that a new Route
//! whose backend has the shape of one HAProxy already runs is served
//! without a reload (HAProxy before 3.4 cannot create a backend at
//! runtime). docs/runtime.md has the design and its costs.
//!
//! - A backend's **shape** is everything in its section except the parts
//!   that belong to one Route: its name, the comment naming the Route, the
//!   default cookie name (derived from the Route), the termination (only
//!   the comment names it; the mode is part of the shape) and the `server` lines
//!   (with the server-line options: health checks, `maxconn`, TLS towards
//!   the servers). Backends with an allowlist have no shape: their section
//!   names a file of their own, so no other Route could use their spare.
//! - The plan holds the **pool** ([`super::Plan::spares`]): for the shapes
//!   of the admitted Routes, most common first, [`SpareSettings::per_shape`]
//!   empty backends named `be_spare:<shape>:<n>`, at most
//!   [`SpareSettings::max`] in all. The pool is a function of the admitted
//!   Routes alone, so a dry run renders the same bytes everywhere.
//! - **Placement** is the sidecar's state, not the input's: `routegen run`
//!   puts a new Route into a free spare that the running HAProxy has
//!   ([`place`] renames its backend and points its lookup entries there),
//!   so the runtime delta is `add server` + `add map`. Placed Routes go
//!   back to their own names at the next reload that happens anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use super::backends::default_cookie_name;
use super::endpoints::md5_hex;
use super::{Backend, LookupAction, LookupEntry, Plan, Shared, SniEntry};
use crate::model::{ArcStr, ObjectKey};

/// Prefix of every spare backend's name.
pub const SPARE_PREFIX: &str = "be_spare:";

/// Default of [`SpareSettings::per_shape`] (`--spare-backends`).
pub const DEFAULT_PER_SHAPE: usize = 2;
/// Default of [`SpareSettings::max`] (`--max-spare-backends`).
pub const DEFAULT_MAX: usize = 256;
/// Largest accepted [`SpareSettings::per_shape`].
pub const PER_SHAPE_LIMIT: usize = 16;
/// Largest accepted [`SpareSettings::max`]: each spare is a backend
/// HAProxy parses and holds (~1 KiB empty).
pub const MAX_LIMIT: usize = 4096;

/// How many spare backends the plan holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpareSettings {
    /// Spares per shape (0: none, every new Route reloads).
    pub per_shape: usize,
    /// Spares in all: the shapes of the most Routes are served first.
    pub max: usize,
}

impl Default for SpareSettings {
    fn default() -> Self {
        SpareSettings {
            per_shape: DEFAULT_PER_SHAPE,
            max: DEFAULT_MAX,
        }
    }
}

impl SpareSettings {
    /// No spares (the nginx target, which reloads for every change).
    pub const NONE: SpareSettings = SpareSettings {
        per_shape: 0,
        max: 0,
    };
}

/// A backend shape: the first 64 bits of the sha256 of its normalized
/// form ([`shape_of`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shape([u8; 8]);

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// `be_spare:<shape>:<n>`.
pub fn spare_name(shape: Shape, n: usize) -> String {
    format!("{SPARE_PREFIX}{shape}:{n}")
}

/// The shape and number of a spare's name (`None`: not a spare's name).
pub fn parse_spare_name(name: &str) -> Option<(Shape, usize)> {
    let (hex, n) = name.strip_prefix(SPARE_PREFIX)?.split_once(':')?;
    if hex.len() != 16 || n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
        return None;
    }
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    if hex.bytes().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Some((Shape(bytes), n.parse().ok()?))
}

/// The cookie name a backend placed in spare `name` carries when its Route
/// has the default one (derived from the Route): derived from the spare.
fn spare_cookie_name(name: &str) -> crate::values::CookieName {
    md5_hex(name)
        .parse()
        .expect("a hex md5 is a valid cookie name")
}

/// The cookie name of a normalized backend whose Route has the default one.
const PLACEHOLDER_COOKIE: &str = "routegen-spare-cookie";

/// `b` without what belongs to its Route alone (see the module docs), and
/// its shape; `None` when no other Route could share its section.
pub fn shape_of(b: &Backend) -> Option<(Shape, Backend)> {
    if b.allowlist_file.is_some() {
        return None;
    }
    let cookie = b.cookie.clone().map(|mut c| {
        if c.name == default_cookie_name(&b.route) {
            c.name = PLACEHOLDER_COOKIE.parse().expect("a valid cookie name");
        }
        c
    });
    let normalized = Backend {
        name: ArcStr::new(),
        route: ObjectKey::new(ArcStr::new(), ArcStr::new()),
        host_key: ArcStr::new(),
        path: None,
        // Named only in the comment: an edge and a plain-HTTP Route with
        // the same settings have the same section.
        termination: None,
        mode: b.mode,
        balance: b.balance,
        servers: Vec::new(),
        servers_left_out: 0,
        health_check: None,
        cookie,
        timeout_server: b.timeout_server,
        timeout_tunnel: b.timeout_tunnel,
        allowlist_file: None,
        hsts: b.hsts,
        rewrite: b.rewrite.clone(),
        rate_limit: b.rate_limit.clone(),
        server_maxconn: None,
        forwarded: b.forwarded,
        server_tls: None,
        headers: b.headers.clone(),
    };
    let digest = openssl::sha::sha256(format!("{normalized:?}").as_bytes());
    let mut shape = [0u8; 8];
    shape.copy_from_slice(&digest[..8]);
    Some((Shape(shape), normalized))
}

/// `normalized` (from [`shape_of`]) as the empty spare `name`; `route`
/// names a Route of the shape (for attributing a refusal, never written).
fn spare_backend(normalized: &Backend, route: &ObjectKey, name: String) -> Backend {
    let mut spare = normalized.clone();
    if let Some(c) = &mut spare.cookie {
        if c.name.as_str() == PLACEHOLDER_COOKIE {
            c.name = spare_cookie_name(&name);
        }
    }
    spare.route = route.clone();
    spare.name = name.into();
    spare
}

/// `b` placed in spare `name`: the same backend under the spare's name
/// (and with the spare's cookie name when its own is the default one).
fn placed_backend(b: &Backend, name: &str) -> Backend {
    let mut placed = b.clone();
    if let Some(c) = &mut placed.cookie {
        if c.name == default_cookie_name(&b.route) {
            c.name = spare_cookie_name(name);
        }
    }
    placed.name = ArcStr::from(name);
    placed
}

/// A backend's shape and normalized form ([`shape_of`]), as the plan
/// keeps it per Route.
pub type ShapeOf = (Shape, Arc<Backend>);

/// [`shape_of`] kept for reuse: the shape and the normalized backend.
pub fn shape_entry(b: &Backend) -> Option<ShapeOf> {
    shape_of(b).map(|(s, n)| (s, Arc::new(n)))
}

/// One normalized backend per shape, shared by the Routes of that shape:
/// a copy per Route cost about 500 bytes of the plan's memo per Route
/// (50 MiB at 100,000 Routes), where a fleet has a few shapes.
#[derive(Debug, Default)]
pub struct ShapeForms(std::collections::HashMap<Shape, Arc<Backend>>);

impl ShapeForms {
    /// `(shape, normalized)` from [`shape_of`], its normalized form
    /// shared with the earlier Routes of its shape when equal (a shape is a
    /// truncated digest: an unequal form with the same shape keeps its own
    /// copy).
    pub fn intern(&mut self, (shape, normalized): (Shape, Backend)) -> ShapeOf {
        let shared = self
            .0
            .entry(shape)
            .or_insert_with(|| Arc::new(normalized.clone()));
        if **shared == normalized {
            (shape, Arc::clone(shared))
        } else {
            (shape, Arc::new(normalized))
        }
    }

    /// Forget the forms no Route holds any more.
    pub fn prune(&mut self) {
        self.0.retain(|_, form| Arc::strong_count(form) > 1);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The pool of empty spares for `backends` (see the module docs), sorted
/// by name; names in `taken` are skipped (placed Routes use them, or they
/// were used since the last reload).
pub fn pool(
    backends: &[Arc<Backend>],
    settings: &SpareSettings,
    taken: &BTreeSet<String>,
) -> Vec<Arc<Backend>> {
    let shapes: Vec<Option<ShapeOf>> = backends.iter().map(|b| shape_entry(b)).collect();
    pool_of(
        backends
            .iter()
            .map(|b| &b.route)
            .zip(shapes.iter().map(Option::as_ref)),
        settings,
        taken,
    )
}

/// [`pool`] from each backend's Route (in backend name order) and shape.
pub fn pool_of<'a>(
    shapes: impl Iterator<Item = (&'a ObjectKey, Option<&'a ShapeOf>)>,
    settings: &SpareSettings,
    taken: &BTreeSet<String>,
) -> Vec<Arc<Backend>> {
    if settings.per_shape == 0 || settings.max == 0 {
        return Vec::new();
    }
    // Shape → (Routes, normalized form, the first Route in name order).
    let mut counts: BTreeMap<Shape, (usize, &Arc<Backend>, &ObjectKey)> = BTreeMap::new();
    for (route, shape) in shapes {
        let Some((shape, normalized)) = shape else {
            continue;
        };
        counts
            .entry(*shape)
            .and_modify(|e| e.0 += 1)
            .or_insert((1, normalized, route));
    }
    let mut order: Vec<_> = counts.into_iter().collect();
    order.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    let mut spares = Vec::new();
    'shapes: for (shape, (_, normalized, route)) in order {
        let mut n = 0;
        for _ in 0..settings.per_shape {
            if spares.len() >= settings.max {
                break 'shapes;
            }
            while taken.contains(&spare_name(shape, n)) {
                n += 1;
            }
            spares.push(Arc::new(spare_backend(
                normalized,
                route,
                spare_name(shape, n),
            )));
            n += 1;
        }
    }
    spares.sort_by(|a, b| a.name.cmp(&b.name));
    spares
}

/// The sidecar's use of the spares: which Routes are served from which
/// spare, and which spares were used since HAProxy last loaded the files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    /// Route → the spare its backend is written as.
    pub placed: BTreeMap<ObjectKey, String>,
    /// Spares used since the last reload and no longer placed: the running
    /// HAProxy may still hold servers in them, so they are left out of the
    /// tree (not offered again) until HAProxy reloads.
    pub retired: BTreeSet<String>,
}

impl Placement {
    pub fn is_empty(&self) -> bool {
        self.placed.is_empty() && self.retired.is_empty()
    }

    /// Every spare name in use: placed or retired.
    pub fn taken(&self) -> BTreeSet<String> {
        self.placed
            .values()
            .cloned()
            .chain(self.retired.iter().cloned())
            .collect()
    }
}

/// `plan` with the placed Routes' backends written as their spares and
/// their lookup entries pointing there, and the pool without the spares
/// `placement` uses. Routes in `placement` that the plan does not have are
/// ignored. With an empty placement this is `plan` itself.
pub fn place(plan: &Plan, placement: &Placement) -> Plan {
    if placement.is_empty() {
        return plan.clone();
    }
    let mut renamed: BTreeMap<&str, &str> = BTreeMap::new();
    let mut backends: Vec<Arc<Backend>> = plan
        .backends
        .iter()
        .map(|b| match placement.placed.get(&b.route) {
            Some(spare) => {
                renamed.insert(b.name.as_str(), spare.as_str());
                Arc::new(placed_backend(b, spare))
            }
            None => Arc::clone(b),
        })
        .collect();
    backends.sort_by(|a, b| a.name.cmp(&b.name));
    let relabel = |table: &Shared<LookupEntry>| -> Shared<LookupEntry> {
        let touched = table.iter().any(
            |e| matches!(&e.action, LookupAction::Backend(n) if renamed.contains_key(n.as_str())),
        );
        if !touched {
            return table.clone();
        }
        Shared::new(
            table
                .iter()
                .map(|e| match &e.action {
                    LookupAction::Backend(n) if renamed.contains_key(n.as_str()) => {
                        let mut e = (**e).clone();
                        e.action = LookupAction::Backend(ArcStr::from(renamed[n.as_str()]));
                        Arc::new(e)
                    }
                    _ => Arc::clone(e),
                })
                .collect(),
        )
    };
    let http_lookup = relabel(&plan.http_lookup);
    let https_lookup = relabel(&plan.https_lookup);
    let passthrough = if plan
        .passthrough
        .iter()
        .any(|e| renamed.contains_key(e.backend.as_str()))
    {
        Shared::new(
            plan.passthrough
                .iter()
                .map(|e| match renamed.get(e.backend.as_str()) {
                    Some(spare) => Arc::new(SniEntry {
                        backend: ArcStr::from(*spare),
                        ..(**e).clone()
                    }),
                    None => Arc::clone(e),
                })
                .collect(),
        )
    } else {
        plan.passthrough.clone()
    };
    let spares = without_taken(&plan.spares, &placement.taken());
    Plan {
        backends,
        http_lookup,
        https_lookup,
        passthrough,
        spares,
        ..plan.clone()
    }
}

/// `pool` (as [`pool`] made it, nothing taken) with each spare in `taken`
/// replaced by the next number of its shape that is neither taken nor in
/// the pool: what [`pool`] gives with `taken`.
fn without_taken(pool: &[Arc<Backend>], taken: &BTreeSet<String>) -> Vec<Arc<Backend>> {
    let mut names: BTreeSet<String> = pool.iter().map(|s| s.name.to_string()).collect();
    let mut spares: Vec<Arc<Backend>> = Vec::with_capacity(pool.len());
    for spare in pool {
        if !taken.contains(spare.name.as_str()) {
            spares.push(Arc::clone(spare));
            continue;
        }
        let Some((shape, _)) = parse_spare_name(&spare.name) else {
            continue;
        };
        let name = (0..)
            .map(|n| spare_name(shape, n))
            .find(|n| !taken.contains(n) && !names.contains(n))
            .expect("an unused number exists");
        let mut moved = (**spare).clone();
        if let Some(c) = &mut moved.cookie {
            if c.name == spare_cookie_name(&spare.name) {
                c.name = spare_cookie_name(&name);
            }
        }
        moved.name = ArcStr::from(&name);
        names.insert(name);
        spares.push(Arc::new(moved));
    }
    spares.sort_by(|a, b| a.name.cmp(&b.name));
    spares
}

/// The free spare of `b`'s shape among `running` (the spares the running
/// HAProxy has, empty), not in `taken`: the spare `b` can be placed in.
pub fn free_spare<'a>(
    b: &Backend,
    mut running: impl Iterator<Item = &'a str>,
    taken: &BTreeSet<String>,
) -> Option<String> {
    let (shape, _) = shape_of(b)?;
    running
        .find(|name| {
            parse_spare_name(name).is_some_and(|(s, _)| s == shape) && !taken.contains(*name)
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests;
