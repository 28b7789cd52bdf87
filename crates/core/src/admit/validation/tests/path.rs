//! Cases of `spec.path`.

use super::*;

#[test]
fn path() {
    run_cases(vec![
        ("path /", with(|s| s.path = some("/")), Expect::Ok),
        ("path /a/b", with(|s| s.path = some("/a/b")), Expect::Ok),
        (
            "path with escapes and sub-delims",
            with(|s| s.path = some("/a%20b/c~d/e;f=g@h:i!$&'()*+,")),
            Expect::Ok,
        ),
        (
            "path with quote",
            with(|s| s.path = some("/a\"b")),
            Expect::Err(&["RFC 3986 path characters"]),
        ),
        (
            "path with hash",
            with(|s| s.path = some("/a#b")),
            Expect::Err(&["RFC 3986 path characters"]),
        ),
        (
            "path with query",
            with(|s| s.path = some("/a?b=1")),
            Expect::Err(&["RFC 3986 path characters"]),
        ),
        (
            "path with braces",
            with(|s| s.path = some("/{{x}}")),
            Expect::Err(&["RFC 3986 path characters"]),
        ),
        (
            "path with backslash",
            with(|s| s.path = some("/a\\b")),
            Expect::Err(&["RFC 3986 path characters"]),
        ),
        (
            "path with unicode",
            with(|s| s.path = some("/bücher")),
            Expect::Err(&["RFC 3986 path characters"]),
        ),
        (
            "path with %[",
            with(|s| s.path = some("/%[src]")),
            Expect::Err(&["%XX escapes"]),
        ),
        (
            "path with bare %",
            with(|s| s.path = some("/100%")),
            Expect::Err(&["%XX escapes"]),
        ),
        (
            "path of 2048 bytes",
            with(|s| s.path = Some(format!("/{}", "a".repeat(2047)))),
            Expect::Ok,
        ),
        (
            "path of 2049 bytes",
            with(|s| s.path = Some(format!("/{}", "a".repeat(2048)))),
            Expect::Err(&["at most 2048 bytes"]),
        ),
        ("path empty", with(|s| s.path = some("")), Expect::Ok),
        (
            "path without slash",
            with(|s| s.path = some("x")),
            Expect::Err(&[r#"spec.path: Invalid value: "x": must start with "/""#]),
        ),
        (
            "path with LF",
            with(|s| s.path = some("/a\nb")),
            Expect::Err(&[
                r#"spec.path: Invalid value: "/a\nb": must not contain whitespace or control characters"#,
            ]),
        ),
        (
            "path with CR",
            with(|s| s.path = some("/a\r")),
            Expect::Err(&["control character '\\r'"]),
        ),
        (
            "path with NUL",
            with(|s| s.path = some("/\0")),
            Expect::Err(&["spec.path"]),
        ),
        (
            "path with space",
            with(|s| s.path = some("/a b")),
            Expect::Err(&["a space"]),
        ),
        (
            "path with tab",
            with(|s| s.path = some("/a\tb")),
            Expect::Err(&["spec.path"]),
        ),
        (
            "path with DEL",
            with(|s| s.path = some("/a\u{7f}")),
            Expect::Err(&["spec.path"]),
        ),
        (
            "path with passthrough",
            with(|s| {
                s.path = some("/");
                s.tls = Some(tls("passthrough"));
            }),
            Expect::Err(&[
                r#"spec.path: Invalid value: "/": passthrough termination does not support paths"#,
            ]),
        ),
        (
            "empty path with passthrough",
            with(|s| {
                s.path = some("");
                s.tls = Some(tls("passthrough"));
            }),
            Expect::Ok,
        ),
        (
            "path with edge",
            with(|s| {
                s.path = some("/");
                s.tls = Some(tls("edge"));
            }),
            Expect::Ok,
        ),
    ]);
}
