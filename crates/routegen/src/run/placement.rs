//! Which new Routes `routegen run` serves from spare backends
//! ([`routegen_core::plan::spares`]): the sidecar's state, never the
//! input's, so a dry run still renders the same bytes everywhere.
//!
//! - A Route whose backend the running HAProxy lacks is placed in a free
//!   spare of its shape that HAProxy runs: its backend is written as the
//!   spare, and the runtime delta is `add server` + `add map`.
//! - A placed Route keeps its spare while every change is live. The first
//!   pass that needs a reload anyway writes every Route under its own name
//!   again ([`normalized`]); the spares HAProxy may still hold servers in
//!   are left out of the tree until that reload is confirmed.
//! - A placed Route that goes away gives its spare back: the spare is
//!   written empty again and its servers are drained live. It is offered
//!   again at once, but not to a Route with a server of the same name as
//!   one still draining there (`add server` would refuse it).

use std::collections::BTreeSet;

use routegen_core::model::ObjectKey;
use routegen_core::plan::spares::{self, Placement};
use routegen_core::plan::Plan;
use routegen_render::haproxy::runtime::RuntimeState;

/// The placement for a pass over `plan`: `applied` (that of the tree made
/// current last) without the Routes `plan` no longer has (their spares are
/// written empty again: their map keys go, their servers drain), plus
/// every Route whose backend `running` lacks placed in a free spare of its
/// shape that `running` has: empty, and none of the `draining` servers
/// (backend, server) in it has the name of one of the Route's servers.
/// `running` is `None` when HAProxy's state is unknown or changes are not
/// made live: nothing new is placed then.
pub fn for_pass(
    applied: &Placement,
    plan: &Plan,
    running: Option<&RuntimeState>,
    draining: &BTreeSet<(&str, &str)>,
) -> Placement {
    let mut placement = applied.clone();
    if !placement.placed.is_empty() {
        let routes: BTreeSet<&ObjectKey> = plan.backends.iter().map(|b| &b.route).collect();
        placement.placed.retain(|k, _| routes.contains(k));
    }
    let Some(running) = running else {
        return placement;
    };
    let free: Vec<&str> = running
        .backends
        .iter()
        .filter(|(name, b)| b.servers.is_empty() && name.starts_with(spares::SPARE_PREFIX))
        .map(|(name, _)| &**name)
        .collect();
    if free.is_empty() {
        return placement;
    }
    let mut taken = placement.taken();
    // Both in name order: one walk instead of a lookup per backend.
    let mut run = running.backends.keys().peekable();
    for b in &plan.backends {
        while run.next_if(|n| n.as_ref() < b.name.as_str()).is_some() {}
        let runs = run.next_if(|n| n.as_ref() == b.name.as_str()).is_some();
        if runs || placement.placed.contains_key(&b.route) {
            continue;
        }
        let clashes = |spare: &str| {
            b.servers
                .iter()
                .any(|s| draining.contains(&(spare, s.name.as_str())))
        };
        let usable = free.iter().copied().filter(|spare| !clashes(spare));
        if let Some(spare) = spares::free_spare(b, usable, &taken) {
            taken.insert(spare.clone());
            placement.placed.insert(b.route.clone(), spare);
        }
    }
    placement
}

/// The placement of a pass that reloads anyway, after `applied`: every
/// Route under its own name, and every spare `applied` used retired until
/// the reload is confirmed (the running HAProxy may hold servers in them
/// and map keys pointing there until then).
pub fn normalized(applied: &Placement) -> Placement {
    Placement {
        placed: Default::default(),
        retired: applied.taken(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use routegen_core::plan::spares::{shape_of, spare_name};
    use routegen_core::testkit::plan::{backend, server};
    use routegen_render::haproxy::runtime::BackendState;
    use std::collections::BTreeMap;
    use std::sync::Arc;

    fn plan_of(names: &[&str]) -> Plan {
        Plan {
            backends: names
                .iter()
                .map(|n| {
                    Arc::new(backend(
                        &format!("be_http:ns:{n}"),
                        ObjectKey::new("ns", *n),
                        "h",
                        Vec::new(),
                    ))
                })
                .collect(),
            ..Plan::default()
        }
    }

    fn running(names: &[String]) -> RuntimeState {
        let empty = Arc::new(BackendState {
            shape: [0; 32],
            cookie_key: None,
            servers: Default::default(),
        });
        RuntimeState {
            backends: names
                .iter()
                .map(|n| (Arc::from(n.as_str()), Arc::clone(&empty)))
                .collect(),
            ..RuntimeState::default()
        }
    }

    #[test]
    fn new_routes_go_to_free_running_spares_and_gone_ones_retire_theirs() {
        let plan = plan_of(&["old", "new1", "new2", "new3"]);
        let (shape, _) = shape_of(&plan.backends[0]).unwrap();
        let state = running(&[
            "be_http:ns:old".into(),
            spare_name(shape, 0),
            spare_name(shape, 1),
        ]);
        let none = BTreeSet::new();
        let p = for_pass(&Placement::default(), &plan, Some(&state), &none);
        assert_eq!(
            p.placed,
            BTreeMap::from([
                (ObjectKey::new("ns", "new1"), spare_name(shape, 0)),
                (ObjectKey::new("ns", "new2"), spare_name(shape, 1)),
            ]),
            "two spares, three new Routes: the third reloads"
        );
        // Unknown HAProxy state: nothing new is placed.
        assert_eq!(for_pass(&p, &plan, None, &none), p);
        // A spare with a server of the same name draining is not free for
        // that Route; other servers draining there do not matter.
        let spare0 = spare_name(shape, 0);
        let clash = BTreeSet::from([(spare0.as_str(), "pod:p0")]);
        let other = BTreeSet::from([(spare0.as_str(), "pod:other")]);
        let with_server = {
            let mut plan = plan_of(&["old", "new1"]);
            let b = Arc::make_mut(&mut plan.backends[1]);
            b.servers = vec![server("pod:p0", [10, 0, 0, 1].into(), 80, 1)];
            plan
        };
        let q = for_pass(&Placement::default(), &with_server, Some(&state), &clash);
        assert_eq!(
            q.placed.values().collect::<Vec<_>>(),
            vec![&spare_name(shape, 1)]
        );
        let q = for_pass(&Placement::default(), &with_server, Some(&state), &other);
        assert_eq!(q.placed.values().collect::<Vec<_>>(), vec![&spare0]);

        // A Route gone gives its spare back (nothing retired).
        let smaller = plan_of(&["old", "new2", "new3"]);
        let next = for_pass(&p, &smaller, None, &none);
        assert_eq!(
            next.placed,
            BTreeMap::from([(ObjectKey::new("ns", "new2"), spare_name(shape, 1))])
        );
        assert!(next.retired.is_empty());

        let reload = normalized(&p);
        assert!(reload.placed.is_empty());
        assert_eq!(
            reload.retired,
            BTreeSet::from([spare_name(shape, 0), spare_name(shape, 1)])
        );
    }
}
