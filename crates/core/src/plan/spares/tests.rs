use super::*;
use crate::plan::{LookupEntry, Mode, PathMatch, StickyCookie};
use crate::testkit::plan::{backend, server};
use crate::values::Duration;

fn route_backend(name: &str, servers: usize) -> Arc<Backend> {
    let key = ObjectKey::new("ns", name);
    let servers = (0..servers)
        .map(|i| {
            server(
                &format!("pod:p{i}:svc:http:10.0.0.{i}:80"),
                [10, 0, 0, i as u8].into(),
                80,
                1,
            )
        })
        .collect();
    let mut b = backend(&format!("be_http:ns:{name}"), key.clone(), "h", servers);
    b.cookie = Some(StickyCookie {
        name: default_cookie_name(&key),
        secure: false,
        same_site: None,
    });
    Arc::new(b)
}

fn settings(per_shape: usize, max: usize) -> SpareSettings {
    SpareSettings { per_shape, max }
}

#[test]
fn spare_names_round_trip_and_others_are_not_spares() {
    let shape = Shape([0xab, 0, 1, 2, 3, 4, 5, 0xff]);
    let name = spare_name(shape, 7);
    assert_eq!(name, "be_spare:ab000102030405ff:7");
    assert_eq!(parse_spare_name(&name), Some((shape, 7)));
    for other in [
        "be_http:ns:r",
        "be_spare:ab000102030405ff",
        "be_spare:ab000102030405f:1",
        "be_spare:AB000102030405ff:1",
        "be_spare:ab000102030405ff:01",
        "be_spare:ab000102030405ff:",
        "be_spare:ab000102030405ff:x",
    ] {
        assert_eq!(parse_spare_name(other), None, "{other}");
    }
}

#[test]
fn routes_differing_only_in_their_own_parts_share_a_shape() {
    let a = route_backend("a", 1);
    let mut b = (*route_backend("b", 3)).clone();
    b.health_check = Some(Duration::from_millis(5000));
    b.path = Some("/x".into());
    b.host_key = "other".into();
    let (sa, _) = shape_of(&a).unwrap();
    let (sb, _) = shape_of(&b).unwrap();
    assert_eq!(sa, sb);

    // Backend-level settings make another shape.
    let mut c = (*route_backend("c", 1)).clone();
    c.timeout_server = Some(Duration::from_millis(1000));
    assert_ne!(shape_of(&c).unwrap().0, sa);
    let mut d = (*route_backend("d", 1)).clone();
    d.cookie.as_mut().unwrap().name = "CUSTOM".parse().unwrap();
    assert_ne!(shape_of(&d).unwrap().0, sa);
    let mut e = (*route_backend("e", 1)).clone();
    e.mode = Mode::Tcp;
    assert_ne!(shape_of(&e).unwrap().0, sa);

    // An allowlist names a file of the Route's own: no shape.
    let mut f = (*route_backend("f", 1)).clone();
    f.allowlist_file = Some("allowlists/ns:f.txt".into());
    assert!(shape_of(&f).is_none());
}

#[test]
fn shape_forms_are_shared_by_a_shape_and_forgotten_when_unheld() {
    let mut forms = ShapeForms::default();
    let (sa, fa) = forms.intern(shape_of(&route_backend("a", 1)).unwrap());
    let (sb, fb) = forms.intern(shape_of(&route_backend("b", 3)).unwrap());
    assert_eq!(sa, sb);
    assert!(Arc::ptr_eq(&fa, &fb), "one form for the shape");
    assert_eq!(
        (sa, (*fa).clone()),
        shape_of(&route_backend("a", 1)).unwrap()
    );

    let mut other = (*route_backend("c", 1)).clone();
    other.timeout_server = Some(Duration::from_millis(1000));
    let (sc, fc) = forms.intern(shape_of(&other).unwrap());
    assert_ne!(sc, sa);
    assert_eq!(forms.len(), 2);
    drop(fc);
    forms.prune();
    assert_eq!(forms.len(), 1, "the unheld form is forgotten");
    drop((fa, fb));
    forms.prune();
    assert!(forms.is_empty());
}

#[test]
fn pool_serves_the_most_common_shapes_first_within_the_cap() {
    let mut backends: Vec<Arc<Backend>> =
        (0..3).map(|i| route_backend(&format!("r{i}"), 1)).collect();
    let mut rare = (*route_backend("rare", 1)).clone();
    rare.timeout_server = Some(Duration::from_millis(1000));
    backends.push(Arc::new(rare.clone()));
    backends.sort_by(|a, b| a.name.cmp(&b.name));
    let common = shape_of(&backends[0]).unwrap().0;
    let rare_shape = shape_of(&rare).unwrap().0;

    let all = pool(&backends, &settings(2, 10), &BTreeSet::new());
    let names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
    let mut expected = vec![
        spare_name(common, 0),
        spare_name(common, 1),
        spare_name(rare_shape, 0),
        spare_name(rare_shape, 1),
    ];
    expected.sort();
    assert_eq!(names, expected);
    assert!(all.iter().all(|s| s.servers.is_empty()));

    let capped = pool(&backends, &settings(2, 3), &BTreeSet::new());
    assert_eq!(capped.len(), 3);
    assert_eq!(
        capped
            .iter()
            .filter(|s| s.name.contains(&common.to_string()))
            .count(),
        2,
        "the shape of three Routes comes before the shape of one"
    );
    assert!(pool(&backends, &SpareSettings::NONE, &BTreeSet::new()).is_empty());

    // Taken names are skipped.
    let taken: BTreeSet<String> = [spare_name(common, 0)].into();
    let skipping = pool(&backends, &settings(2, 10), &taken);
    assert!(skipping.iter().any(|s| s.name == spare_name(common, 2)));
    assert!(!skipping.iter().any(|s| s.name == spare_name(common, 0)));
}

#[test]
fn pool_is_the_same_whichever_route_of_a_shape_comes_first() {
    let a = vec![route_backend("a", 1), route_backend("b", 2)];
    let b = vec![route_backend("b", 2), route_backend("z", 1)];
    let pa = pool(&a, &settings(1, 10), &BTreeSet::new());
    let pb = pool(&b, &settings(1, 10), &BTreeSet::new());
    assert_eq!(pa.len(), 1);
    let strip = |s: &Backend| Backend {
        route: ObjectKey::new("", ""),
        ..s.clone()
    };
    assert_eq!(strip(&pa[0]), strip(&pb[0]));
    // The spare's default cookie name is its own, not a Route's.
    assert_eq!(
        pa[0].cookie.as_ref().unwrap().name,
        spare_cookie_name(&pa[0].name)
    );
}

fn lookup(key: &str, backend: &str, route: &str) -> Arc<LookupEntry> {
    Arc::new(LookupEntry {
        key: key.into(),
        host_key: key.into(),
        path: PathMatch::Fallback,
        depth: 0,
        action: LookupAction::Backend(backend.into()),
        route: ObjectKey::new("ns", route),
    })
}

#[test]
fn a_placed_route_is_its_spare_with_servers_and_the_pool_moves_on() {
    let old = route_backend("old", 1);
    let new = route_backend("new", 2);
    let settings = settings(2, 10);
    let pool_before = pool(&[Arc::clone(&old)], &settings, &BTreeSet::new());
    let spare = pool_before[0].name.clone();

    let backends = vec![Arc::clone(&new), Arc::clone(&old)];
    let plan = Plan {
        spares: pool(&backends, &settings, &BTreeSet::new()),
        backends,
        http_lookup: Shared::new(vec![
            lookup("n.test", &new.name, "new"),
            lookup("o.test", &old.name, "old"),
        ]),
        ..Plan::default()
    };
    let placement = Placement {
        placed: [(new.route.clone(), spare.to_string())].into(),
        retired: BTreeSet::new(),
    };
    let placed = place(&plan, &placement);

    let written = placed.backends.iter().find(|b| b.name == spare).unwrap();
    assert_eq!(written.servers, new.servers);
    assert_eq!(written.route, new.route);
    // Exactly the spare HAProxy runs, plus servers.
    let mut as_spare = (**written).clone();
    as_spare.servers.clear();
    let running_spare = &pool_before[0];
    assert_eq!(
        shape_of(&as_spare).unwrap().0,
        shape_of(running_spare).unwrap().0
    );
    assert_eq!(as_spare.cookie, running_spare.cookie);
    assert!(!placed.backends.iter().any(|b| b.name == new.name));
    assert!(placed.backends.iter().any(|b| b.name == old.name));

    let actions: Vec<(&str, &LookupAction)> = placed
        .http_lookup
        .iter()
        .map(|e| (e.key.as_str(), &e.action))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("n.test", &LookupAction::Backend(spare.clone())),
            ("o.test", &LookupAction::Backend(old.name.clone())),
        ]
    );
    // The pool no longer offers the placed spare but still has two.
    let (shape, _) = parse_spare_name(&spare).unwrap();
    let names: Vec<&str> = placed.spares.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec![spare_name(shape, 1), spare_name(shape, 2)]);
    assert_eq!(
        placed.spares,
        pool(&plan.backends, &settings, &placement.taken())
    );

    // Retired spares are not offered either; an empty placement changes nothing.
    let retired = Placement {
        placed: BTreeMap::new(),
        retired: [spare_name(shape, 1)].into(),
    };
    let names: Vec<String> = place(&plan, &retired)
        .spares
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, vec![spare_name(shape, 0), spare_name(shape, 2)]);
    assert_eq!(place(&plan, &Placement::default()), plan);
}

#[test]
fn free_spare_finds_a_running_spare_of_the_same_shape() {
    let b = route_backend("new", 1);
    let (shape, _) = shape_of(&b).unwrap();
    let other = Shape([1; 8]);
    let running = [
        "be_http:ns:x".to_string(),
        spare_name(other, 0),
        spare_name(shape, 0),
        spare_name(shape, 1),
    ];
    let none = BTreeSet::new();
    assert_eq!(
        free_spare(&b, running.iter().map(String::as_str), &none),
        Some(spare_name(shape, 0))
    );
    let taken: BTreeSet<String> = [spare_name(shape, 0)].into();
    assert_eq!(
        free_spare(&b, running.iter().map(String::as_str), &taken),
        Some(spare_name(shape, 1))
    );
    let taken: BTreeSet<String> = [spare_name(shape, 0), spare_name(shape, 1)].into();
    assert_eq!(
        free_spare(&b, running.iter().map(String::as_str), &taken),
        None
    );
}
