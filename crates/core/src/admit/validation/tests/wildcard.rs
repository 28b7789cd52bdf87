//! Cases of `spec.wildcardPolicy`.

use super::*;

#[test]
fn wildcard_policy() {
    run_cases(vec![
        (
            "wildcard None",
            with(|s| s.wildcard_policy = some("None")),
            Expect::Ok,
        ),
        (
            "wildcard empty",
            with(|s| s.wildcard_policy = some("")),
            Expect::Ok,
        ),
        (
            "wildcard Subdomain with host",
            with(|s| s.wildcard_policy = some("Subdomain")),
            Expect::Ok,
        ),
        (
            "wildcard Subdomain without host",
            with(|s| {
                s.host = None;
                s.wildcard_policy = some("Subdomain");
            }),
            Expect::Err(&[
                r#"spec.wildcardPolicy: Invalid value: "Subdomain": wildcard policy Subdomain requires a non-empty spec.host"#,
            ]),
        ),
        (
            "wildcard Subdomain with empty host",
            with(|s| {
                s.host = some("");
                s.wildcard_policy = some("Subdomain");
            }),
            Expect::Err(&["spec.wildcardPolicy: Invalid value"]),
        ),
        (
            "wildcard nonsense",
            with(|s| s.wildcard_policy = some("All")),
            Expect::Err(&[
                r#"spec.wildcardPolicy: Unsupported value: "All": supported values: "None", "Subdomain""#,
            ]),
        ),
    ]);
}
