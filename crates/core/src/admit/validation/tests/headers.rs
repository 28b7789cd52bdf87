//! Cases of `spec.httpHeaders` (see `validation/headers.rs`).

use super::super::headers::{check_value, Direction};
use super::*;

#[test]
fn http_headers() {
    let valid = json!({"actions": {
        "response": [
            set("X-Frame-Options", "DENY"),
            set("X-Cache-Info", "not cacheable; meta data too large"),
            {"name": "X-XSS-Protection", "action": {"type": "Delete"}},
            set("X-Source", "%[res.hdr(X-Value),lower]"),
        ],
        "request": [
            set("Content-Location", "/my-first-blog-post"),
            set("X-SSL-Client-Cert", "%{+Q}[ssl_c_der,base64]"),
            {"name": "Content-Language", "action": {"type": "Delete"}},
            set("X-Target", "%[req.hdr(host),lower]"),
            set("X-Conditional", "%[req.hdr(Host)] if foo"),
            set("X-Condition", "%[req.hdr(Host)]\\ if\\ foo"),
        ],
    }});
    let many: Vec<_> = (0..21).map(|i| set(&format!("X-{i}"), "v")).collect();
    let twenty: Vec<_> = many[..20].to_vec();
    run_cases(vec![
        ("valid", with(|s| {
            s.tls = Some(tls("edge"));
            s.http_headers = Some(valid.clone());
        }), Expect::Ok),
        ("valid without tls", with(|s| s.http_headers = Some(valid.clone())), Expect::Ok),
        ("valid reencrypt", with(|s| {
            s.tls = Some(tls("reencrypt"));
            s.http_headers = Some(valid.clone());
        }), Expect::Ok),
        (
            "passthrough",
            with(|s| {
                s.tls = Some(tls("passthrough"));
                s.http_headers = Some(json!({"actions": {"response": [set("X-Frame-Options", "DENY")]}}));
            }),
            Expect::Err(&["spec.httpHeaders: Forbidden: header actions are not permitted when tls termination is passthrough"]),
        ),
        (
            "passthrough, empty actions",
            with(|s| {
                s.tls = Some(tls("passthrough"));
                s.http_headers = Some(json!({}));
            }),
            Expect::Err(&["spec.httpHeaders: Forbidden"]),
        ),
        (
            "HSTS",
            header("response", json!({"name": "Strict-Transport-Security", "action": {"type": "Delete"}})),
            Expect::Err(&["spec.httpHeaders.actions.response[0].name: Forbidden: strict-transport-security header may not be modified via header actions"]),
        ),
        (
            "proxy",
            header("request", set("Proxy", "example.xyz")),
            Expect::Err(&["spec.httpHeaders.actions.request[0].name: Forbidden: proxy header may not be modified via header actions"]),
        ),
        (
            "cookie",
            header("request", set("COOKIE", "a=b")),
            Expect::Err(&["cookie header may not be modified via header actions"]),
        ),
        (
            "set-cookie",
            header("response", set("set-Cookie", "a=b")),
            Expect::Err(&["set-cookie header may not be modified via header actions"]),
        ),
        ("host is allowed", header("request", set("Host", "x")), Expect::Ok),
        (
            "name with space",
            header("request", set("X A", "v")),
            Expect::Err(&[r#"spec.httpHeaders.actions.request[0].name: Invalid value: "X A": must be a valid HTTP header name"#]),
        ),
        ("name with colon", header("request", set("X:A", "v")), Expect::Err(&["must be a valid HTTP header name"])),
        ("name with LF", header("request", set("X\nA", "v")), Expect::Err(&["must be a valid HTTP header name"])),
        ("name non-ASCII", header("request", set("Xé", "v")), Expect::Err(&["must be a valid HTTP header name"])),
        ("name with token symbols", header("request", set("X-!#$%&'*+.^_`|~1", "v")), Expect::Ok),
        (
            "name empty",
            header("request", set("", "v")),
            Expect::Err(&["spec.httpHeaders.actions.request[0].name: Required value"]),
        ),
        (
            "name missing",
            header("request", json!({"action": {"type": "Delete"}})),
            Expect::Err(&["spec.httpHeaders.actions.request[0].name: Required value"]),
        ),
        (
            "name not a string",
            header("request", json!({"name": 5, "action": {"type": "Delete"}})),
            Expect::Err(&[r#"spec.httpHeaders.actions.request[0].name: Invalid value: "integer": must be of type string"#]),
        ),
        ("name 255", header("request", set(&"a".repeat(255), "v")), Expect::Ok),
        (
            "name 256",
            header("request", set(&"a".repeat(256), "v")),
            Expect::Err(&["spec.httpHeaders.actions.request[0].name: Too long: may not be more than 255 bytes"]),
        ),
        (
            "duplicate names",
            with(|s| s.http_headers = Some(json!({"actions": {"request": [set("X-A", "1"), set("X-B", "2"), set("X-A", "3")]}}))),
            Expect::Err(&[r#"spec.httpHeaders.actions.request[2].name: Duplicate value: "X-A""#]),
        ),
        (
            "same name in request and response",
            with(|s| s.http_headers = Some(json!({"actions": {"request": [set("X-A", "1")], "response": [set("X-A", "1")]}}))),
            Expect::Ok,
        ),
        (
            "20 actions",
            with(|s| s.http_headers = Some(json!({"actions": {"response": twenty.clone()}}))),
            Expect::Ok,
        ),
        (
            "21 actions",
            with(|s| s.http_headers = Some(json!({"actions": {"response": many.clone()}}))),
            Expect::Err(&["spec.httpHeaders.actions.response: Too many: 21: must have at most 20 items"]),
        ),
        (
            "type missing",
            header("response", json!({"name": "X-Frame-Options", "action": {"set": {"value": "DENY"}}})),
            Expect::Err(&["spec.httpHeaders.actions.response[0].action.type: Required value"]),
        ),
        (
            "type unknown",
            header("response", json!({"name": "X-A", "action": {"type": "Append", "set": {"value": "v"}}})),
            Expect::Err(&[r#"spec.httpHeaders.actions.response[0].action.type: Unsupported value: "Append": supported values: "Set", "Delete""#]),
        ),
        (
            "type lower case",
            header("response", json!({"name": "X-A", "action": {"type": "delete"}})),
            Expect::Err(&["action.type: Unsupported value"]),
        ),
        (
            "Set without set",
            header("response", json!({"name": "X-Frame-Options", "action": {"type": "Set"}})),
            Expect::Err(&["spec.httpHeaders.actions.response[0].action.set: Required value: set is required when type is Set, and forbidden otherwise"]),
        ),
        (
            "Delete with set",
            header("response", json!({"name": "X-A", "action": {"type": "Delete", "set": {"value": "v"}}})),
            Expect::Err(&["spec.httpHeaders.actions.response[0].action.set: Forbidden: set is required when type is Set, and forbidden otherwise"]),
        ),
        (
            "action missing",
            header("request", json!({"name": "X-A"})),
            Expect::Err(&["spec.httpHeaders.actions.request[0].action: Required value"]),
        ),
        (
            "value null",
            header("request", json!({"name": "X-A", "action": {"type": "Set", "set": {"value": null}}})),
            Expect::Err(&["spec.httpHeaders.actions.request[0].action.set.value: Required value"]),
        ),
        (
            "value missing",
            header("response", json!({"name": "X-A", "action": {"type": "Set", "set": {}}})),
            Expect::Err(&["spec.httpHeaders.actions.response[0].action.set.value: Required value"]),
        ),
        (
            "value empty",
            header("request", set("X-A", "")),
            Expect::Err(&["action.set.value: Required value"]),
        ),
        ("value 16384", header("request", set("X-A", &"v".repeat(16384))), Expect::Ok),
        (
            "value 16385",
            header("request", set("X-A", &"v".repeat(16385))),
            Expect::Err(&["action.set.value: Too long: may not be more than 16384 bytes"]),
        ),
        (
            "value not a string",
            header("request", json!({"name": "X-A", "action": {"type": "Set", "set": {"value": true}}})),
            Expect::Err(&[r#"action.set.value: Invalid value: "boolean": must be of type string"#]),
        ),
        (
            "unclosed bracket",
            header("request", set("expires", "%[req.hdr(host),lower")),
            Expect::Err(&[
                r#"spec.httpHeaders.actions.request[0].action.set.value: Invalid value: "%[req.hdr(host),lower": missing "]" to close "%[""#,
                "sample fetchers allowed are req.hdr, ssl_c_der",
            ]),
        ),
        (
            "request uses res.hdr",
            header("request", set("X-Source", "%[res.hdr(X-Value),lower]")),
            Expect::Err(&[r#"sample fetcher "res.hdr" is not allowed in request headers"#]),
        ),
        (
            "response uses req.hdr",
            header("response", set("X-Target", "%[req.hdr(host),lower]")),
            Expect::Err(&[
                r#"sample fetcher "req.hdr" is not allowed in response headers"#,
                "sample fetchers allowed are res.hdr, ssl_c_der",
            ]),
        ),
        (
            "bad converter",
            header("response", set("X-Target", "%{+Q}[ssl_c_der,bogus]")),
            Expect::Err(&[r#"converter "bogus" is not allowed"#]),
        ),
        (
            "bad fetcher",
            header("request", set("X-SSL-Client-Cert", "%{+Q}[ssl_c_der1122,base64]")),
            Expect::Err(&[r#"sample fetcher "ssl_c_der1122" is not allowed in request headers"#]),
        ),
        (
            "httpHeaders not an object",
            with(|s| s.http_headers = Some(json!([]))),
            Expect::Err(&[r#"spec.httpHeaders: Invalid value: "array": must be of type object"#]),
        ),
        (
            "actions not an object",
            with(|s| s.http_headers = Some(json!({"actions": "x"}))),
            Expect::Err(&[r#"spec.httpHeaders.actions: Invalid value: "string": must be of type object"#]),
        ),
        (
            "request not a list",
            with(|s| s.http_headers = Some(json!({"actions": {"request": {}}}))),
            Expect::Err(&[r#"spec.httpHeaders.actions.request: Invalid value: "object": must be of type array"#]),
        ),
        (
            "item not an object",
            with(|s| s.http_headers = Some(json!({"actions": {"response": [1.5]}}))),
            Expect::Err(&[r#"spec.httpHeaders.actions.response[0]: Invalid value: "number": must be of type object"#]),
        ),
        (
            "action not an object",
            header("request", json!({"name": "X-A", "action": "Delete"})),
            Expect::Err(&[r#"spec.httpHeaders.actions.request[0].action: Invalid value: "string": must be of type object"#]),
        ),
        (
            "set not an object",
            header("request", json!({"name": "X-A", "action": {"type": "Set", "set": "v"}})),
            Expect::Err(&[r#"spec.httpHeaders.actions.request[0].action.set: Invalid value: "string": must be of type object"#]),
        ),
        (
            "unknown fields are ignored",
            header("request", json!({"name": "X-A", "extra": 1, "action": {"type": "Delete", "other": {}}})),
            Expect::Ok,
        ),
    ]);
}

#[test]
fn header_values() {
    use Direction::{Request, Response};
    let cases: &[(&str, Direction, bool)] = &[
        ("DENY", Request, true),
        ("not cacheable; meta data too large", Response, true),
        ("%[req.hdr(host),lower]", Request, true),
        ("%[res.hdr(X-Value),lower]", Response, true),
        ("%{+Q}[ssl_c_der,base64]", Request, true),
        ("%{+Q}[ssl_c_der,base64]", Response, true),
        ("%[req.hdr(Host)] if foo", Request, true),
        ("%[req.hdr(Host)]\\ if\\ foo", Request, true),
        ("%[ssl_c_der]", Request, true),
        ("%{Q,-X,+E}[ssl_c_der,lower,base64,lower]", Request, true),
        ("%[req.hdr(X-a-1)]%[req.hdr(b)]", Request, true),
        ("100%%", Request, true),
        ("%%[not dynamic]", Request, true),
        ("[brackets] {braces} (parens)", Request, true),
        ("ünïcode ✓", Response, true),
        ("%[req.hdr(host),lower", Request, false),
        ("%[req.hdr(host)", Request, false),
        ("%[ssl_c_der", Request, false),
        ("%[", Request, false),
        ("%", Request, false),
        ("100%", Request, false),
        ("% [ssl_c_der]", Request, false),
        ("%{+Q}[ssl_c_der1122,base64]", Request, false),
        ("%{+Q}[ssl_c_der1,base64]", Response, false),
        ("%{+Q}[ssl_c_der,bogus]", Request, false),
        ("%{+Q}[ssl_c_der,bogus]", Response, false),
        ("%[res.hdr(X-Value),lower]", Request, false),
        ("%[req.hdr(host),lower]", Response, false),
        ("%[ssl_c_der,]", Request, false),
        ("%[ssl_c_der,,lower]", Request, false),
        ("%[ssl_c_der(x)]", Request, false),
        ("%[ssl_c_der,lower(1)]", Request, false),
        ("%[req.hdr]", Request, false),
        ("%[req.hdr()]", Request, false),
        ("%[req.hdr(a b)]", Request, false),
        ("%[req.hdr(a_b)]", Request, false),
        ("%[req.hdr(a),lower)]", Request, false),
        ("%[src]", Request, false),
        ("%[]", Request, false),
        ("%{}[ssl_c_der]", Request, false),
        ("%{+q}[ssl_c_der]", Request, false),
        ("%{+Q,}[ssl_c_der]", Request, false),
        ("%{+Q}", Request, false),
        ("%{+Q", Request, false),
        ("a\tb", Request, false),
        ("a\nb", Response, false),
        ("a\rb", Response, false),
        ("\0", Response, false),
        ("x\u{7f}", Response, false),
    ];
    let mut failures = Vec::new();
    for (value, direction, ok) in cases {
        let result = check_value(value, *direction);
        if result.is_ok() != *ok {
            failures.push(format!(
                "{value:?} ({direction:?}): expected ok={ok}, got {result:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
