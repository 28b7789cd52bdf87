//! The one place where text becomes configuration (ARCHITECTURE: "escaping
//! in one module").
//!
//! Every string the HAProxy renderer writes into `haproxy.cfg`, a
//! `backends/*.cfg` file, a map file, the crt-list or an ACL file passes
//! through exactly one function of this module, chosen by the *context*
//! the text lands in. Nothing is rewritten to make it fit (except `%`
//! doubling for log-format literals, which is lossless): text that cannot
//! be written safely in its context is **refused** with an [`EscapeError`]
//! that names the context and the rule, and shows the value only through
//! [`quote_for_message`].
//!
//! What every context refuses: CR, LF, NUL and every other control
//! character (so nothing can start a new line, a new directive or a new map
//! entry). On top of that, each context refuses what would change how HAProxy
//! cuts the line into words (§2.2 of the configuration manual): spaces,
//! quotes, backslashes, `#` (comment start), `$` (environment expansion) and
//! `%` (log-format) unless the context says otherwise.
//!
//! Typed values from [`routegen_core::values`] are already safe by construction;
//! the renderer still passes their `Display` form through [`word`] as a
//! final check.

use std::fmt;

use routegen_core::values::quote_for_message;

/// Longest line accepted in a map or ACL pattern file, newline included.
///
/// HAProxy reads pattern files with `fgets` into a buffer of `tune.bufsize`
/// bytes (16384 by default, sometimes tuned lower) and treats the rest of
/// a longer line as a *new line*: the tail of an over-long key would become
/// a key of its own (a host hijack). 4096 leaves a wide margin.
pub const MAX_PATTERN_LINE: usize = 4096;

/// Longest HAProxy identifier (proxy or server name) accepted.
pub const MAX_NAME_LEN: usize = 1024;

/// Longest Unix socket path (`sun_path` is 108 bytes with the final NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Text refused for one output context.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{context} {value}: {rule}")]
pub struct EscapeError {
    /// What the text was meant to be (e.g. `server name`, `map key`).
    pub context: String,
    /// The refused text, quoted and shortened for messages.
    pub value: String,
    /// The rule it broke.
    pub rule: &'static str,
}

fn refuse<T>(context: &str, s: &str, rule: &'static str) -> Result<T, EscapeError> {
    Err(EscapeError {
        context: context.to_string(),
        value: quote_for_message(s, 64),
        rule,
    })
}

/// True for characters that may end or split a line anywhere: C0/C1
/// controls (CR, LF, NUL, TAB, ESC, DEL, ...) and the Unicode line and
/// paragraph separators. A text holding one can never be written into a
/// configuration line (every quoting function refuses it).
pub fn breaks_lines(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// Characters that change how HAProxy cuts a line into words, or that are
/// interpreted inside a word: see the manual, §2.2 "Quoting and escaping".
fn is_config_special(b: u8) -> bool {
    matches!(b, b'"' | b'\'' | b'\\' | b'#' | b'$' | b'{' | b'}')
}

/// A HAProxy identifier: a proxy (backend) or server name. HAProxy allows
/// exactly `A-Z a-z 0-9 . _ - :` in names.
pub fn name<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str = "must be 1 to 1024 characters from A-Z a-z 0-9 . _ - :";
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'));
    if ok {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

/// One bare configuration word (an argument that is not a log-format
/// string): printable ASCII without spaces, quotes, backslashes, `#`, `$`,
/// `%`, `{` or `}`.
pub fn word<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str =
        "must be printable ASCII without spaces, quotes, backslashes, '#', '$', '%', '{' or '}'";
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !is_config_special(b) && b != b'%');
    if ok {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

/// Literal text inside a log-format argument (`set-path`, `set-header`,
/// `redirect location`): the [`word`] rules, except that `%` is allowed and
/// written doubled (`%%`), so it can never start a `%[...]` expression.
pub fn log_format_literal(context: &str, s: &str) -> Result<String, EscapeError> {
    const RULE: &str =
        "must be printable ASCII without spaces, quotes, backslashes, '#', '$', '{' or '}'";
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !is_config_special(b));
    if ok {
        Ok(s.replace('%', "%%"))
    } else {
        refuse(context, s, RULE)
    }
}

fn is_path_component(c: &str) -> bool {
    !c.is_empty()
        && c != "."
        && c != ".."
        && c.len() <= 255
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// A path inside the output tree, as written in the configuration and used
/// to name the file: `/`-separated components of `A-Z a-z 0-9 . _ - :`, no
/// empty, `.` or `..` component, not absolute. Relative paths are resolved
/// by HAProxy against the configuration's directory (`default-path config`).
pub fn relative_path<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str = "must be a relative path of components from A-Z a-z 0-9 . _ - : (no empty, '.' or '..' component)";
    if s.len() <= 4096 && s.split('/').all(is_path_component) {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

/// An absolute directory (the run directory holding Unix sockets): starts
/// with `/`, components as in [`relative_path`], no trailing `/`, short
/// enough that `<dir>/<socket name>` fits a Unix socket address.
pub fn absolute_dir<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str = "must be an absolute path of components from A-Z a-z 0-9 . _ - : (no '.' or '..' component, no trailing '/'), at most 80 bytes";
    let ok = match s.strip_prefix('/') {
        Some(rest) => s.len() <= 80 && (rest.is_empty() || rest.split('/').all(is_path_component)),
        None => false,
    };
    if ok {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

/// A Unix socket path: an [`absolute_dir`]-style path that fits `sun_path`.
pub fn socket_path<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str =
        "must be an absolute path of components from A-Z a-z 0-9 . _ - : of at most 107 bytes";
    let ok = s.len() <= MAX_SOCKET_PATH
        && s.strip_prefix('/')
            .is_some_and(|rest| rest.split('/').all(is_path_component));
    if ok {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

fn is_dns_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A lower-case DNS name (RFC 1123 labels, at most 253 bytes), e.g. a
/// `verifyhost` name.
pub fn dns_name<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str = "must be a lower-case DNS name (labels of a-z 0-9 -, at most 253 bytes)";
    if s.len() <= 253 && s.split('.').all(is_dns_label) {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

/// A host key: a lower-case DNS name, or `*.` followed by one (a wildcard
/// Route's domain). Used in crt-list SNI filters and map keys.
pub fn host_key<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str = "must be a lower-case DNS name or '*.' followed by one";
    let name = s.strip_prefix("*.").unwrap_or(s);
    if name.len() <= 253 && name.split('.').all(is_dns_label) {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

/// A key of a map file (`<key> <value>` lines): not empty, no whitespace of
/// any kind, no control character, not starting with `#` (a comment), and
/// short enough that `key value` stays within [`MAX_PATTERN_LINE`] with a
/// value of `value_len` bytes. Other characters (including non-ASCII text in
/// a path) are inert in a map file and kept as they are.
pub fn map_key<'a>(context: &str, s: &'a str, value_len: usize) -> Result<&'a str, EscapeError> {
    if s.is_empty() || s.starts_with('#') {
        return refuse(context, s, "must not be empty or start with '#'");
    }
    if s.chars().any(|c| c.is_whitespace() || breaks_lines(c)) {
        return refuse(
            context,
            s,
            "must not contain whitespace or control characters",
        );
    }
    if s.len() + 1 + value_len + 1 > MAX_PATTERN_LINE {
        return refuse(
            context,
            s,
            "is too long: a map line must stay within 4096 bytes (HAProxy would split longer lines into separate entries)",
        );
    }
    Ok(s)
}

/// Text of a `#` comment line: anything printable on one line (no control
/// characters, no Unicode line separators).
pub fn comment<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    if s.chars().any(breaks_lines) {
        refuse(
            context,
            s,
            "must not contain control characters or line separators",
        )
    } else {
        Ok(s)
    }
}

/// Final check of a complete, pre-formatted line before it reaches a
/// template: one line, no control characters. (Words inside it were
/// checked by the functions above when the line was built.)
pub fn line<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    if s.chars().any(breaks_lines) {
        refuse(
            context,
            s,
            "must be a single line without control characters",
        )
    } else {
        Ok(s)
    }
}

/// Text that a quoted string can hold: not empty, one line, no control
/// characters (quoting protects words, never lines).
fn quotable(context: &str, s: &str) -> Result<(), EscapeError> {
    if s.is_empty() {
        return refuse(context, s, "must not be empty");
    }
    if s.chars().any(breaks_lines) {
        return refuse(
            context,
            s,
            "must not contain control characters or line separators",
        );
    }
    Ok(())
}

/// One configuration word in HAProxy's strong (single) quotes, in which
/// nothing is interpreted (§2.2): no `\`, `$`, `#` or space has a meaning
/// there. A `'` in `s` closes the quotes, is written escaped (`\'`) and
/// reopens them (`'a'\''b'` is the one word `a'b`). Control characters
/// and line separators are refused.
pub fn single_quoted(context: &str, s: &str) -> Result<String, EscapeError> {
    quotable(context, s)?;
    Ok(format!("'{}'", s.replace('\'', "'\\''")))
}

/// A header action's value as one HAProxy log-format word: literal text
/// with `%` doubled (so it can never start a sample fetch), the dynamic
/// parts as admission typed them, the whole in single quotes
/// ([`single_quoted`]) so that no character of the value can end the word
/// or start another argument, directive or comment.
pub fn header_value(
    context: &str,
    value: &routegen_core::values::HeaderValue,
) -> Result<String, EscapeError> {
    use routegen_core::values::ValuePart;
    let mut format = String::new();
    for part in &value.parts {
        match part {
            ValuePart::Literal(text) => format.push_str(&text.replace('%', "%%")),
            ValuePart::Dynamic(dynamic) => format.push_str(&dynamic.to_string()),
        }
    }
    single_quoted(context, &format)
}

/// A word that is checked and ready to be written: the result of one of the
/// functions above, kept as a type so line builders cannot mix checked and
/// unchecked text by accident.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Checked(String);

impl Checked {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// [`name`], kept.
    pub fn name(context: &str, s: &str) -> Result<Checked, EscapeError> {
        name(context, s).map(|s| Checked(s.to_string()))
    }

    /// [`word`], kept.
    pub fn word(context: &str, s: &str) -> Result<Checked, EscapeError> {
        word(context, s).map(|s| Checked(s.to_string()))
    }

    /// [`word`] applied to the `Display` form of a typed value.
    pub fn value(context: &str, v: &dyn fmt::Display) -> Result<Checked, EscapeError> {
        Checked::word(context, &v.to_string())
    }

    /// [`relative_path`], kept.
    pub fn path(context: &str, s: &str) -> Result<Checked, EscapeError> {
        relative_path(context, s).map(|s| Checked(s.to_string()))
    }

    /// [`log_format_literal`], kept.
    pub fn log_format_literal(context: &str, s: &str) -> Result<Checked, EscapeError> {
        log_format_literal(context, s).map(Checked)
    }
}

impl fmt::Display for Checked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

// ---------------------------------------------------------------------------
// nginx contexts (`nginx.conf` and the files it includes).
//
// nginx cuts a configuration line into tokens at whitespace; `;` ends a
// directive, `{` and `}` open and close blocks, `#` at the start of a
// token starts a comment, a quote at the start of a token starts a quoted
// string (in which `\"` and `\\` are escapes), and a backslash escapes
// the next character anywhere. Directives that accept variables (the
// "script" ones: `proxy_pass`, `return`, `add_header`, map values, ...)
// expand `$name` and `${name}` even inside quotes, and nginx has no escape
// for `$`. The functions below either write a value so that nginx reads it
// back exactly, or refuse it.

/// Characters that end or split an unquoted nginx token, or are
/// interpreted inside one.
fn is_nginx_special(b: u8) -> bool {
    matches!(b, b';' | b'{' | b'}' | b'"' | b'\'' | b'\\' | b'$' | b'#')
}

/// One bare nginx token (an upstream name, an address, a relative file
/// path, a duration): printable ASCII without spaces, `;`, `{`, `}`,
/// quotes, backslashes, `$` or `#`.
pub fn nginx_word<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    const RULE: &str =
        "must be printable ASCII without spaces, ';', '{', '}', quotes, backslashes, '$' or '#'";
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && !is_nginx_special(b));
    if ok {
        Ok(s)
    } else {
        refuse(context, s, RULE)
    }
}

/// A double-quoted nginx string for a directive that does **not** expand
/// variables (e.g. a `location` path): `"` and `\` are escaped with a
/// backslash; control characters and line separators are refused.
pub fn nginx_quoted(context: &str, s: &str) -> Result<String, EscapeError> {
    quotable(context, s)?;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// A double-quoted nginx string for a directive that expands variables
/// (`proxy_pass`, `return`, `add_header`, map values): as [`nginx_quoted`],
/// and `$` is refused because nginx cannot escape it.
pub fn nginx_script_quoted(context: &str, s: &str) -> Result<String, EscapeError> {
    if s.contains('$') {
        return refuse(
            context,
            s,
            "must not contain '$' (nginx would expand it as a variable and has no escape for it)",
        );
    }
    nginx_quoted(context, s)
}

/// Text of an nginx `#` comment line: as [`comment`].
pub fn nginx_comment<'a>(context: &str, s: &'a str) -> Result<&'a str, EscapeError> {
    comment(context, s)
}

#[cfg(test)]
mod nginx_tests {
    use super::*;

    #[test]
    fn escape_nginx_word() {
        for ok in [
            "be_http.ns.name",
            "127.0.0.1:8080",
            "[fd00::1]:80",
            "certs/ns:a.pem",
            "30s",
        ] {
            assert_eq!(nginx_word("w", ok), Ok(ok));
        }
        for bad in [
            "", "a b", "a;b", "a{", "}", "a\"b", "a'b", "a\\b", "$host", "#x", "a\nb", "é",
        ] {
            assert!(nginx_word("w", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escape_nginx_quoted() {
        assert_eq!(nginx_quoted("q", "/a b").unwrap(), "\"/a b\"");
        assert_eq!(nginx_quoted("q", "/a\"b\\c").unwrap(), "\"/a\\\"b\\\\c\"");
        assert_eq!(
            nginx_quoted("q", "/a;b{c}#d$e'f").unwrap(),
            "\"/a;b{c}#d$e'f\""
        );
        for bad in ["", "a\nb", "a\rb", "a\0b", "a\u{2028}b", "a\tb"] {
            assert!(nginx_quoted("q", bad).is_err(), "{bad:?}");
        }
        assert!(nginx_script_quoted("q", "/a$b").is_err());
        assert!(nginx_script_quoted("q", "/${x}").is_err());
        assert_eq!(nginx_script_quoted("q", "/v2;x").unwrap(), "\"/v2;x\"");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strings that must never reach a configuration word unchanged.
    fn hostile() -> Vec<String> {
        let mut v: Vec<String> = [
            "a\rb",
            "a\nb",
            "a\r\nuse_backend evil",
            "a\0b",
            "a\tb",
            "a\u{1b}[31m",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{2028}b",
            "a b",
            "a\"b",
            "a'b",
            "a\\b",
            "a\\nb",
            "#comment",
            "a#b",
            "%[src]",
            "a%{+Q}[src]",
            "{{ secret }}",
            "{% raw %}",
            "$HOME",
            "\"$HOME\"",
            "é",
            "\u{202e}abc",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.push(format!("{}\n", "x".repeat(10_000)));
        v
    }

    #[test]
    fn escape_word_refuses_hostile_text() {
        for s in hostile() {
            assert!(word("test", &s).is_err(), "word accepted {s:?}");
            assert!(name("test", &s).is_err(), "name accepted {s:?}");
            assert!(relative_path("test", &s).is_err(), "path accepted {s:?}");
            assert!(dns_name("test", &s).is_err(), "dns accepted {s:?}");
            assert!(host_key("test", &s).is_err(), "host key accepted {s:?}");
        }
        for ok in [
            "roundrobin",
            "30s",
            "max-age=1;includeSubDomains",
            "10.0.0.0/8",
            "[fd00::1]:8080",
        ] {
            assert_eq!(word("test", ok), Ok(ok));
        }
        assert!(word("test", &"x".repeat(10_000)).is_ok());
    }

    #[test]
    fn escape_log_format_doubles_percent() {
        assert_eq!(log_format_literal("t", "/a%20b").unwrap(), "/a%%20b");
        assert_eq!(log_format_literal("t", "/%%").unwrap(), "/%%%%");
        // `%[` becomes `%%[`: a literal, never an expression.
        assert_eq!(log_format_literal("t", "/%[src]").unwrap(), "/%%[src]");
        for s in hostile() {
            if s == "%[src]" {
                continue;
            }
            assert!(log_format_literal("t", &s).is_err(), "accepted {s:?}");
        }
    }

    #[test]
    fn escape_names() {
        for ok in [
            "be_http:ns:name",
            "pod:web-0:web:http:10.0.0.1:8080",
            "ept:web:8080:fd00::1:8080",
            "be_no_route",
        ] {
            assert_eq!(name("n", ok), Ok(ok));
        }
        for bad in [
            "a/b",
            "a,b",
            "a(b)",
            "a=b",
            "a@b",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            assert!(name("n", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escape_paths() {
        for ok in [
            "haproxy.cfg",
            "certs/ns:name.pem",
            "maps/http.map",
            "a/b/c.txt",
            "..x/y",
        ] {
            assert_eq!(relative_path("p", ok), Ok(ok));
        }
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../b",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "..",
            "a b",
            "a\\b",
        ] {
            assert!(relative_path("p", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            absolute_dir("d", "/var/lib/haproxy/run"),
            Ok("/var/lib/haproxy/run")
        );
        assert_eq!(absolute_dir("d", "/"), Ok("/"));
        for bad in [
            "run",
            "/a/../b",
            "/a/",
            "/a b",
            &format!("/{}", "a".repeat(90)),
        ] {
            assert!(absolute_dir("d", bad).is_err(), "{bad:?}");
        }
        assert!(socket_path("s", "/run/x.sock").is_ok());
        assert!(socket_path("s", &format!("/{}", "a".repeat(107))).is_err());
    }

    #[test]
    fn escape_dns_and_host_keys() {
        assert!(dns_name("d", "svc.ns.svc").is_ok());
        assert!(host_key("h", "*.example.com").is_ok());
        assert!(host_key("h", "www.example.com").is_ok());
        for bad in [
            "*.",
            "*",
            "a.*.b",
            "!www.example.com",
            "WWW.example.com",
            "a..b",
            "-a.b",
            "a_b.c",
        ] {
            assert!(host_key("h", bad).is_err(), "{bad:?}");
        }
        assert!(dns_name("d", "*.example.com").is_err());
    }

    #[test]
    fn escape_map_keys() {
        assert_eq!(
            map_key("k", "www.example.com/api", 20),
            Ok("www.example.com/api")
        );
        // Inert in a map file: kept.
        for ok in ["h/a#b", "h/é", "h/a'b\"c\\d", "h/%[src]", "h/{{x}}"] {
            assert_eq!(map_key("k", ok, 20), Ok(ok));
        }
        for bad in [
            "",
            "#h",
            "h/a b",
            "h/a\tb",
            "h/a\nwww.victim.com be_evil",
            "h/a\rb",
            "h/a\0b",
            "h/a\u{a0}b",
            "h/a\u{2028}b",
        ] {
            assert!(map_key("k", bad, 20).is_err(), "{bad:?}");
        }
        let long = format!("h/{}", "a".repeat(10_000));
        let err = map_key("k", &long, 20).unwrap_err();
        assert!(err.rule.contains("too long"), "{err}");
        let just = "a".repeat(MAX_PATTERN_LINE - 2 - 3);
        assert!(map_key("k", &just, 3).is_ok());
        assert!(map_key("k", &format!("{just}a"), 3).is_err());
    }

    #[test]
    fn escape_comments_and_lines() {
        assert!(comment("c", "route ns/name host h path /a#b'\"\\é").is_ok());
        assert!(line("l", "server a 10.0.0.1:80 weight 1").is_ok());
        for bad in ["a\nb", "a\rb", "a\0b", "a\u{2029}b", "a\u{85}"] {
            assert!(comment("c", bad).is_err(), "{bad:?}");
            assert!(line("l", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escape_errors_name_context_without_echoing_raw_text() {
        let err = word("cookie name of be_http:a:b", "x\ny").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("cookie name of be_http:a:b \"x\\ny\": "),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
        let long = "y".repeat(10_000);
        assert!(
            word("w", &format!("{long} "))
                .unwrap_err()
                .to_string()
                .len()
                < 400
        );
    }

    #[test]
    fn escape_checked_wraps_values() {
        let d: routegen_core::values::Duration = "30s".parse().unwrap();
        assert_eq!(Checked::value("timeout", &d).unwrap().as_str(), "30s");
        assert_eq!(
            Checked::log_format_literal("t", "/a%2F")
                .unwrap()
                .to_string(),
            "/a%%2F"
        );
        assert!(Checked::name("n", "a b").is_err());
        assert!(Checked::path("p", "../x").is_err());
    }
}

#[cfg(test)]
mod header_tests {
    use super::*;
    use routegen_core::values::{Converter, DynamicPart, Fetch, HeaderValue, ValuePart};

    #[test]
    fn escape_single_quoted() {
        assert_eq!(single_quoted("h", "a b").unwrap(), "'a b'");
        assert_eq!(single_quoted("h", "it's").unwrap(), r"'it'\''s'");
        assert_eq!(
            single_quoted("h", r#"" # $X \ { }"#).unwrap(),
            r#"'" # $X \ { }'"#
        );
        for bad in ["", "a\nb", "a\rb", "a\0b", "a\u{85}b", "a\u{2028}b"] {
            assert!(single_quoted("h", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escape_header_value() {
        let value = HeaderValue {
            parts: vec![
                ValuePart::Literal("50% ' %[src]".into()),
                ValuePart::Dynamic(DynamicPart {
                    flags: Some("+Q".into()),
                    fetch: Fetch::ReqHdr("X-A".into()),
                    converters: vec![Converter::Lower, Converter::Base64],
                }),
            ],
        };
        // The literal "%[src]" can never become a sample fetch.
        assert_eq!(
            header_value("v", &value).unwrap(),
            r"'50%% '\'' %%[src]%{+Q}[req.hdr(X-A),lower,base64]'"
        );
    }
}
