//! Cases of `spec.to` and `spec.alternateBackends`.

use super::*;

#[test]
fn backends() {
    run_cases(vec![
        ("minimal", with(|s| s.host = None), Expect::Ok),
        ("kind absent", with(|s| s.to.kind = None), Expect::Ok),
        ("kind empty", with(|s| s.to.kind = some("")), Expect::Ok),
        (
            "kind nonsense",
            with(|s| s.to.kind = some("Nonsense")),
            Expect::Err(&[
                r#"spec.to.kind: Unsupported value: "Nonsense": supported values: "Service""#,
            ]),
        ),
        (
            "kind lower case",
            with(|s| s.to.kind = some("service")),
            Expect::Err(&["spec.to.kind: Unsupported value"]),
        ),
        (
            "name empty",
            with(|s| s.to.name = String::new()),
            Expect::Err(&["spec.to.name: Required value"]),
        ),
        ("weight 0", with(|s| s.to.weight = Some(0)), Expect::Ok),
        ("weight 256", with(|s| s.to.weight = Some(256)), Expect::Ok),
        (
            "weight 257",
            with(|s| s.to.weight = Some(257)),
            Expect::Err(&["spec.to.weight: Invalid value: 257: must be between 0 and 256"]),
        ),
        (
            "weight 300",
            with(|s| s.to.weight = Some(300)),
            Expect::Err(&["spec.to.weight: Invalid value: 300: must be between 0 and 256"]),
        ),
        (
            "weight -1",
            with(|s| s.to.weight = Some(-1)),
            Expect::Err(&["spec.to.weight: Invalid value: -1: must be between 0 and 256"]),
        ),
        (
            "weight huge",
            with(|s| s.to.weight = Some(i64::MAX)),
            Expect::Err(&["spec.to.weight: Invalid value: 9223372036854775807"]),
        ),
        (
            "three alternates",
            with(|s| s.alternate_backends = Some(vec![backend("svc", None); 3])),
            Expect::Ok,
        ),
        (
            "no alternates (empty list)",
            with(|s| s.alternate_backends = Some(vec![])),
            Expect::Ok,
        ),
        (
            "four alternates",
            with(|s| s.alternate_backends = Some(vec![backend("svc", None); 4])),
            Expect::Err(&["spec.alternateBackends: Too many: 4: must have at most 3 items"]),
        ),
        (
            "alternate name empty",
            with(|s| s.alternate_backends = Some(vec![backend("a", None), backend("", None)])),
            Expect::Err(&["spec.alternateBackends[1].name: Required value"]),
        ),
        (
            "alternate kind Service, weight 0",
            with(|s| {
                let mut b = backend("a", Some(0));
                b.kind = some("Service");
                s.alternate_backends = Some(vec![b]);
            }),
            Expect::Ok,
        ),
        (
            "alternate kind wrong",
            with(|s| {
                let mut b = backend("a", None);
                b.kind = some("Pod");
                s.alternate_backends = Some(vec![b]);
            }),
            Expect::Err(&[r#"spec.alternateBackends[0].kind: Unsupported value: "Pod""#]),
        ),
        (
            "alternate weight out of range",
            with(|s| s.alternate_backends = Some(vec![backend("a", Some(1000))])),
            Expect::Err(&[
                "spec.alternateBackends[0].weight: Invalid value: 1000: must be between 0 and 256",
            ]),
        ),
    ]);
}
