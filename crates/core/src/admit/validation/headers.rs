//! `spec.httpHeaders`: the API server's rules for header actions.
//!
//! The field is kept as raw JSON in the model (it is newer than the seed
//! reference and never rendered), so this module checks both the schema
//! (types, required fields, enums, lengths, list sizes) and the rules the API
//! adds on top (reserved header names, unique names, the format of values
//! with HAProxy dynamic parts, no header actions on passthrough Routes).
//!
//! Facts taken from the Route API (`route.openshift.io/v1`):
//! - `actions.request` / `actions.response`: at most 20 items each, a list
//!   keyed by `name` (names unique within a list);
//! - item `name`: required, 1..=255 characters of the RFC 7230 token set
//!   (`-!#$%&'*+.^_`|~`, digits, letters); `Strict-Transport-Security`,
//!   `Proxy`, `Cookie` and `Set-Cookie` (any case) are reserved;
//! - item `action.type`: required, `Set` or `Delete`; `action.set` is
//!   required when the type is `Set` and forbidden otherwise;
//! - `action.set.value`: required, 1..=16384 bytes, a header value that may
//!   contain HAProxy dynamic parts `%[fetch,conv...]` (optionally with
//!   flags, `%{+Q}[...]`) and `%%`. Allowed sample fetchers: `req.hdr(NAME)`
//!   (request lists) or `res.hdr(NAME)` (response lists), and `ssl_c_der`;
//!   allowed converters: `lower`, `base64`. Outside dynamic parts every
//!   character except `%` and ASCII control characters is allowed.

use serde_json::{Map, Value};

use super::Errors;
use crate::values::{
    Converter, DynamicPart, Fetch, HeaderAction, HeaderActions, HeaderOp, HeaderValue, ValuePart,
};

/// At most this many actions per list.
const MAX_ACTIONS: usize = 20;
/// Longest header name (bytes).
const MAX_NAME_LEN: usize = 255;
/// Longest header value (bytes).
const MAX_VALUE_LEN: usize = 16384;
/// Header names that header actions may not touch (compared lower-cased).
const RESERVED_NAMES: [&str; 4] = ["strict-transport-security", "proxy", "cookie", "set-cookie"];

/// Which list an action belongs to; decides the header fetcher allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Direction {
    Request,
    Response,
}

impl Direction {
    fn list_name(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }

    /// The header sample fetcher this direction may use.
    fn hdr_fetcher(self) -> &'static str {
        match self {
            Direction::Request => "req.hdr",
            Direction::Response => "res.hdr",
        }
    }
}

/// Validate `spec.httpHeaders` (already known to be present and not null).
/// Returns the header actions found (complete only when `errs` stays
/// empty).
pub(super) fn validate(headers: &Value, passthrough: bool, errs: &mut Errors) -> HeaderActions {
    const PATH: &str = "spec.httpHeaders";
    if passthrough {
        errs.forbidden(
            PATH,
            "header actions are not permitted when tls termination is passthrough",
        );
    }
    let Some(headers) = as_object(headers, PATH, errs) else {
        return HeaderActions::default();
    };
    let actions_path = format!("{PATH}.actions");
    let Some(actions) = present(headers.get("actions")) else {
        return HeaderActions::default();
    };
    validate_actions(actions, &actions_path, errs)
}

/// An `actions` object (`{request: [...], response: [...]}`) at `path`:
/// the Route's `spec.httpHeaders.actions`, or the router's global actions
/// (the IngressController's `spec.httpHeaders.actions`), which follow the
/// same rules.
pub(super) fn validate_actions(actions: &Value, path: &str, errs: &mut Errors) -> HeaderActions {
    let mut out = HeaderActions::default();
    let Some(actions) = as_object(actions, path, errs) else {
        return out;
    };
    for direction in [Direction::Request, Direction::Response] {
        let list_path = format!("{path}.{}", direction.list_name());
        if let Some(list) = present(actions.get(direction.list_name())) {
            let parsed = validate_list(list, &list_path, direction, errs);
            match direction {
                Direction::Request => out.request = parsed,
                Direction::Response => out.response = parsed,
            }
        }
    }
    out
}

/// One list of actions; returns the actions that parsed.
fn validate_list(
    list: &Value,
    path: &str,
    direction: Direction,
    errs: &mut Errors,
) -> Vec<HeaderAction> {
    let mut out = Vec::new();
    let Some(items) = list.as_array() else {
        errs.wrong_type(path, list, "array");
        return out;
    };
    if items.len() > MAX_ACTIONS {
        errs.too_many(path, items.len(), MAX_ACTIONS);
    }
    let mut seen: Vec<&str> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{index}]");
        let Some(item) = as_object(item, &item_path, errs) else {
            continue;
        };
        let name = validate_name(item, &item_path, errs);
        if let Some(name) = name {
            if seen.contains(&name) {
                errs.duplicate(&format!("{item_path}.name"), name);
            } else {
                seen.push(name);
            }
        }
        let op = validate_action(item, &item_path, direction, errs);
        if let (Some(name), Some(op)) = (name, op) {
            out.push(HeaderAction {
                name: name.to_string(),
                op,
            });
        }
    }
    out
}

/// `name` of one action; returns it when it is a string (for the
/// uniqueness check).
fn validate_name<'a>(
    item: &'a Map<String, Value>,
    item_path: &str,
    errs: &mut Errors,
) -> Option<&'a str> {
    let path = format!("{item_path}.name");
    let Some(value) = present(item.get("name")) else {
        errs.required(&path, None);
        return None;
    };
    let Some(name) = value.as_str() else {
        errs.wrong_type(&path, value, "string");
        return None;
    };
    let lower = name.to_ascii_lowercase();
    if name.is_empty() {
        errs.required(&path, None);
    } else if name.len() > MAX_NAME_LEN {
        errs.too_long(&path, MAX_NAME_LEN);
    } else if RESERVED_NAMES.contains(&lower.as_str()) {
        errs.forbidden(
            &path,
            &format!("{lower} header may not be modified via header actions"),
        );
    } else if let Some(bad) = name.chars().find(|&c| !is_token_char(c)) {
        errs.invalid(
            &path,
            &super::quote(name),
            &format!(
                "must be a valid HTTP header name (letters, digits and -!#$%&'*+.^_`|~), found {}",
                super::describe_char(bad)
            ),
        );
    }
    Some(name)
}

/// RFC 7230 `tchar`.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-!#$%&'*+.^_`|~".contains(c)
}

/// `action` of one header action; the operation when it is valid.
fn validate_action(
    item: &Map<String, Value>,
    item_path: &str,
    direction: Direction,
    errs: &mut Errors,
) -> Option<HeaderOp> {
    let path = format!("{item_path}.action");
    let Some(action) = present(item.get("action")) else {
        errs.required(&path, None);
        return None;
    };
    let action = as_object(action, &path, errs)?;

    let type_path = format!("{path}.type");
    let kind = match present(action.get("type")) {
        None => {
            errs.required(&type_path, None);
            None
        }
        Some(Value::String(kind)) if kind == "Set" || kind == "Delete" => Some(kind.as_str()),
        Some(Value::String(kind)) => {
            errs.unsupported(&type_path, kind, &["Set", "Delete"]);
            None
        }
        Some(other) => {
            errs.wrong_type(&type_path, other, "string");
            None
        }
    };

    let set_path = format!("{path}.set");
    let set = present(action.get("set"));
    const SET_RULE: &str = "set is required when type is Set, and forbidden otherwise";
    match (kind, set) {
        (Some("Set"), None) => errs.required(&set_path, Some(SET_RULE)),
        (Some("Delete"), Some(_)) => errs.forbidden(&set_path, SET_RULE),
        _ => {}
    }
    let value = set
        .and_then(|set| as_object(set, &set_path, errs))
        .and_then(|set| validate_value(set, &set_path, direction, errs));
    match (kind, value) {
        (Some("Set"), Some(value)) => Some(HeaderOp::Set(value)),
        (Some("Delete"), None) if set.is_none() => Some(HeaderOp::Delete),
        _ => None,
    }
}

/// `action.set.value`; the parsed value when it is valid.
fn validate_value(
    set: &Map<String, Value>,
    set_path: &str,
    direction: Direction,
    errs: &mut Errors,
) -> Option<HeaderValue> {
    let path = format!("{set_path}.value");
    let Some(value) = present(set.get("value")) else {
        errs.required(&path, None);
        return None;
    };
    let Some(value) = value.as_str() else {
        errs.wrong_type(&path, value, "string");
        return None;
    };
    if value.is_empty() {
        errs.required(&path, None);
        return None;
    }
    if value.len() > MAX_VALUE_LEN {
        errs.too_long(&path, MAX_VALUE_LEN);
        return None;
    }
    match parse_value(value, direction) {
        Ok(parts) => Some(HeaderValue { parts }),
        Err(problem) => {
            errs.invalid(
                &path,
                &super::quote(value),
                &format!(
                    "{problem}; a {} header value is text without control characters, where \
                 \"%\" starts a dynamic value %[fetcher,converter...] or %{{flags}}[...] \
                 (\"%%\" for a literal \"%\"); sample fetchers allowed are {}, ssl_c_der; \
                 converters allowed are lower, base64",
                    direction.list_name(),
                    direction.hdr_fetcher(),
                ),
            );
            None
        }
    }
}

/// Check a header value against the API's format. `Err` says what is wrong
/// (the first problem found).
#[cfg(test)]
pub(super) fn check_value(value: &str, direction: Direction) -> Result<(), String> {
    parse_value(value, direction).map(drop)
}

/// Parse a header value (the API's format) into its parts. `Err` says what
/// is wrong (the first problem found).
fn parse_value(value: &str, direction: Direction) -> Result<Vec<ValuePart>, String> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        if c == '%' {
            let (part, after) = dynamic_part(rest, direction)?;
            rest = after;
            match part {
                None => literal.push('%'),
                Some(dynamic) => {
                    if !literal.is_empty() {
                        parts.push(ValuePart::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(ValuePart::Dynamic(dynamic));
                }
            }
        } else if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            // Stricter than the API (ASCII controls only): C1 controls and
            // the Unicode line separators are refused too, as in every
            // other text routegen writes into a configuration line.
            return Err(format!("contains {}", super::describe_char(c)));
        } else {
            literal.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if !literal.is_empty() {
        parts.push(ValuePart::Literal(literal));
    }
    Ok(parts)
}

/// Parse one `%...` part at the start of `s`: `None` for `%%`, else the
/// dynamic part; and what follows it.
fn dynamic_part(s: &str, direction: Direction) -> Result<(Option<DynamicPart>, &str), String> {
    let mut rest = &s[1..];
    if let Some(after) = rest.strip_prefix('%') {
        return Ok((None, after));
    }
    let mut flag_text = None;
    if let Some(after) = rest.strip_prefix('{') {
        let after_flags = flags(after)?;
        flag_text = Some(after[..after.len() - after_flags.len() - 1].to_string());
        rest = after_flags;
    }
    let Some(after) = rest.strip_prefix('[') else {
        return Err("\"%\" must be followed by \"[\", \"{flags}[\" or another \"%\"".to_string());
    };
    rest = after;

    // Sample fetcher: a name up to "(", ",", "]" or ")".
    let end = rest.find(['(', ')', ',', ']']).unwrap_or(rest.len());
    let fetcher = &rest[..end];
    rest = &rest[end..];
    let fetch;
    if fetcher == direction.hdr_fetcher() {
        let Some(after) = rest.strip_prefix('(') else {
            return Err(format!("{fetcher} needs a header name: {fetcher}(NAME)"));
        };
        let name_end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(after.len());
        if name_end == 0 {
            return Err(format!(
                "{fetcher}(...) needs a header name of letters, digits and \"-\""
            ));
        }
        let Some(after_name) = after[name_end..].strip_prefix(')') else {
            return Err(format!(
                "{fetcher}(...) takes one header name of letters, digits and \"-\", closed by \")\""
            ));
        };
        let name = after[..name_end].to_string();
        fetch = match direction {
            Direction::Request => Fetch::ReqHdr(name),
            Direction::Response => Fetch::ResHdr(name),
        };
        rest = after_name;
    } else if fetcher == "ssl_c_der" {
        fetch = Fetch::SslCDer;
    } else {
        return Err(format!(
            "sample fetcher {} is not allowed in {} headers",
            super::quote(fetcher),
            direction.list_name()
        ));
    }

    // Converters, then the closing bracket.
    let mut converters = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix(',') {
            let end = after.find([',', ']']).unwrap_or(after.len());
            let converter = &after[..end];
            let Some(converter) = Converter::parse(converter) else {
                return Err(format!(
                    "converter {} is not allowed",
                    super::quote(converter)
                ));
            };
            converters.push(converter);
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix(']') {
            let part = DynamicPart {
                flags: flag_text,
                fetch,
                converters,
            };
            return Ok((Some(part), after));
        } else if rest.is_empty() {
            return Err("missing \"]\" to close \"%[\"".to_string());
        } else {
            return Err(format!(
                "unexpected {} in a dynamic value: expected \",converter\" or \"]\"",
                super::describe_char(rest.chars().next().unwrap_or_default())
            ));
        }
    }
}

/// Parse `Q,+X,-E}` (after the `{`); returns what follows the `}`.
fn flags(s: &str) -> Result<&str, String> {
    const MESSAGE: &str = "flags in \"%{...}\" must be a comma-separated list of Q, X or E, each optionally prefixed with + or -";
    let mut rest = s;
    loop {
        rest = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        rest = rest.strip_prefix(['Q', 'X', 'E']).ok_or(MESSAGE)?;
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
        } else if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        } else {
            return Err(MESSAGE.to_string());
        }
    }
}

/// Treat JSON `null` like an absent field, as the API server does for
/// non-nullable fields.
fn present(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| !v.is_null())
}

fn as_object<'a>(
    value: &'a Value,
    path: &str,
    errs: &mut Errors,
) -> Option<&'a Map<String, Value>> {
    let object = value.as_object();
    if object.is_none() {
        errs.wrong_type(path, value, "object");
    }
    object
}
