//! Cases of `spec.subdomain`.

use super::*;

#[test]
fn subdomain() {
    run_cases(vec![
        (
            "subdomain ok",
            with(|s| s.subdomain = some("Foo-1.bar")),
            Expect::Ok,
        ),
        (
            "subdomain empty",
            with(|s| s.subdomain = some("")),
            Expect::Ok,
        ),
        (
            "subdomain 253",
            with(|s| s.subdomain = some(&["a"; 127].join("."))),
            Expect::Ok,
        ),
        (
            "subdomain underscore",
            with(|s| s.subdomain = some("a_b")),
            Expect::Err(&[r#"spec.subdomain: Invalid value: "a_b": must be a DNS subdomain"#]),
        ),
        (
            "subdomain leading dash",
            with(|s| s.subdomain = some("-a")),
            Expect::Err(&["spec.subdomain"]),
        ),
        (
            "subdomain empty label",
            with(|s| s.subdomain = some("a..b")),
            Expect::Err(&["spec.subdomain"]),
        ),
        (
            "subdomain long label",
            with(|s| s.subdomain = some(&"a".repeat(64))),
            Expect::Err(&["spec.subdomain"]),
        ),
        (
            "subdomain too long",
            with(|s| s.subdomain = some(&["a"; 128].join("."))),
            Expect::Err(&["spec.subdomain: Too long: may not be more than 253 bytes"]),
        ),
    ]);
}
