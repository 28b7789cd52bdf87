//! `spec.path`.

use super::{describe_char, quote, Errors};

/// RFC 3986 path characters: unreserved, sub-delims, `:`, `@`, `/` and
/// `%XX` escapes. Anything else (quotes, `#`, `?`, braces, backslashes,
/// `%` without two hex digits, non-ASCII) never appears unencoded in a
/// request path, so such a Route could never match; refusing it also keeps
/// every path a plain token in map files and regular expressions.
fn uri_path_violation(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(|c| c.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return Some("must not contain \"%\" except in %XX escapes (RFC 3986)".into());
            }
            i += 3;
            continue;
        }
        let allowed = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b);
        if !allowed {
            let shown = path[i..]
                .chars()
                .next()
                .map(describe_char)
                .unwrap_or_default();
            return Some(format!(
                "must contain only RFC 3986 path characters and %XX escapes (found {shown}): no request path can carry it unencoded"
            ));
        }
        i += 1;
    }
    None
}

/// Longest accepted `spec.path`. Keeps every map line far below HAProxy's
/// line buffer (a longer line would be split into two entries).
pub const MAX_PATH_LEN: usize = 2048;

/// A non-empty `spec.path`.
pub(super) fn check_path(path: &str, passthrough: bool, errs: &mut Errors) {
    const FIELD: &str = "spec.path";
    if !path.starts_with('/') {
        errs.invalid(FIELD, &quote(path), "must start with \"/\"");
    }
    if path.len() > MAX_PATH_LEN {
        errs.invalid(
            FIELD,
            &quote(path),
            &format!(
                "must be at most {MAX_PATH_LEN} bytes long (found {})",
                path.len()
            ),
        );
    } else if let Some(bad) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        errs.invalid(
            FIELD,
            &quote(path),
            &format!(
                "must not contain whitespace or control characters (found {}): no request path can contain them",
                describe_char(bad)
            ),
        );
    } else if let Some(rule) = uri_path_violation(path) {
        errs.invalid(FIELD, &quote(path), &rule);
    }
    if passthrough {
        errs.invalid(
            FIELD,
            &quote(path),
            "passthrough termination does not support paths",
        );
    }
}
