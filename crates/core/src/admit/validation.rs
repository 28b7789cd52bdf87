//! Step 2 of admission: the rules the API server enforces (schema, CEL and
//! validation code), so manifests that never passed an API server are held
//! to the same standard. Reason `ValidationFailed`.
//!
//! Every violation of a Route is reported, not just the first: the message
//! joins them with `"; "` in a fixed order (the order of the fields in the
//! spec: `to`, `alternateBackends`, `subdomain`, `path`, `port`, `tls`,
//! `wildcardPolicy`, `httpHeaders`), each as `<field path>: <kind>: <rule>`
//! in the API server's style, e.g.
//! `spec.to.weight: Invalid value: 300: must be between 0 and 256`.
//!
//! Not checked here: `spec.host` (step 1 folds case and checks DNS-1123,
//! reason `InvalidHost`) and `metadata` (the loader names objects).
//!
//! Where routegen is stricter than the API server, because the Route could
//! never be served as written:
//! - `spec.path` must not contain whitespace or control characters (no
//!   request path can contain them, and they would corrupt map files), and
//!   must consist of RFC 3986 path characters and `%XX` escapes;
//! - a numeric `spec.port.targetPort` must be a port number, 1..=65535.
//!
//! Where routegen is more lenient, as the SPEC says: `spec.tls.termination`
//! is case-insensitive (normalised to lower case) and the legacy
//! `insecureEdgeTerminationPolicy: Disable` means `None`.
//!
//! Fields newer than the seed reference:
//! - `spec.httpHeaders` is validated like the API server does (see
//!   `headers.rs`); valid header actions become typed
//!   [`HeaderActions`] the plan carries to
//!   the Route's backend.
//! - `spec.tls.externalCertificate` (a reference to a Secret) is validated
//!   (not with passthrough, not together with `spec.tls.certificate`); the
//!   Secret itself is resolved after ownership (`admit/external.rs`).
//!
//! Layout: this file holds the entry point ([`validate_spec`]) and the
//! helpers every field group shares (the error list `Errors`, `quote`,
//! `describe_char`); each field group has its own module: `backends`
//! (`to`, `alternateBackends`), `subdomain`, `path`, `port`, `tls`,
//! `wildcard` (`wildcardPolicy`) and `headers` (`httpHeaders`). Their
//! tests are in `validation/tests/<group>.rs`; `validation/tests.rs` tests
//! the spec as a whole.

mod backends;
mod headers;
mod path;
mod port;
mod subdomain;
mod tls;
mod wildcard;

#[cfg(test)]
mod tests;

use std::fmt::Display;

use serde_json::Value;

use crate::model::Route;
use crate::values::HeaderActions;

use super::route::{BackendRef, TargetPort, Termination};
use super::verdict::{Reason, Rejection};

pub use self::path::MAX_PATH_LEN;
pub use self::tls::ValidatedTls;

/// The parts of a Route spec that passed API validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedSpec {
    pub path: Option<crate::model::ArcStr>,
    pub backends: Vec<BackendRef>,
    pub target_port: Option<TargetPort>,
    pub tls: Option<ValidatedTls>,
    /// `spec.httpHeaders.actions` (empty without any).
    pub headers: HeaderActions,
    pub warnings: Vec<String>,
}

/// Validate the router's global header actions (the IngressController's
/// `spec.httpHeaders.actions`: `{request: [...], response: [...]}`) with the
/// rules of a Route's; `path` names where they come from in messages.
pub fn validate_global_header_actions(
    actions: &Value,
    path: &str,
) -> Result<HeaderActions, String> {
    let mut errs = Errors::default();
    let parsed = headers::validate_actions(actions, path, &mut errs);
    if errs.is_empty() {
        Ok(parsed)
    } else {
        Err(errs.join())
    }
}
/// Largest total size of `metadata.annotations` (keys plus values, in
/// bytes): the API server's limit (`TotalAnnotationSizeLimitB`, 256 KiB).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Apply the API server's rules to one Route.
pub fn validate_spec(route: &Route) -> Result<ValidatedSpec, Rejection> {
    let spec = &route.spec;
    let mut errs = Errors::default();
    let warnings = Vec::new();

    check_annotations_size(route, &mut errs);

    let backends = backends::check_backends(spec, &mut errs);

    if let Some(subdomain) = spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        subdomain::check_subdomain(subdomain, &mut errs);
    }

    // The termination decides several rules below; parse it first, report
    // its problems in the `tls` section.
    let termination = spec
        .tls
        .as_ref()
        .and_then(|tls| tls::parse_termination(&tls.termination));
    let passthrough = termination == Some(Termination::Passthrough);

    let path = spec.path.as_deref().filter(|p| !p.is_empty());
    if let Some(path) = path {
        path::check_path(path, passthrough, &mut errs);
    }

    let target_port = spec
        .port
        .as_ref()
        .and_then(|port| port::check_target_port(&port.target_port, &mut errs));

    let tls = spec
        .tls
        .as_ref()
        .and_then(|tls| tls::check_tls(tls, termination, &mut errs));

    wildcard::check_wildcard_policy(
        spec.wildcard_policy.as_deref().unwrap_or(""),
        spec.host.as_deref().unwrap_or(""),
        &mut errs,
    );

    let header_actions = match spec.http_headers.as_ref().filter(|v| !v.is_null()) {
        Some(http_headers) => headers::validate(http_headers, passthrough, &mut errs),
        None => HeaderActions::default(),
    };

    if !errs.is_empty() {
        return Err(Rejection::new(Reason::ValidationFailed, errs.join()));
    }
    Ok(ValidatedSpec {
        path: path.map(crate::model::ArcStr::from),
        backends,
        target_port,
        tls,
        headers: header_actions,
        warnings,
    })
}

/// The API server's cap on the total size of annotations (keys plus values).
fn check_annotations_size(route: &Route, errs: &mut Errors) {
    let Some(annotations) = route.metadata.annotations.as_ref() else {
        return;
    };
    let total: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_ANNOTATIONS_BYTES {
        errs.0.push(format!(
            "metadata.annotations: Too long: {total} bytes: must have at most {MAX_ANNOTATIONS_BYTES} bytes"
        ));
    }
}

/// Violations found so far, each one formatted like the API server's field
/// errors (`<path>: <kind>: <detail>`).
#[derive(Debug, Default)]
struct Errors(Vec<String>);

impl Errors {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn join(&self) -> String {
        self.0.join("; ")
    }

    /// `value` is printed as is: quote strings with [`quote`].
    fn invalid(&mut self, path: &str, value: &dyn Display, detail: &str) {
        self.0
            .push(format!("{path}: Invalid value: {value}: {detail}"));
    }

    fn required(&mut self, path: &str, detail: Option<&str>) {
        match detail {
            Some(detail) => self.0.push(format!("{path}: Required value: {detail}")),
            None => self.0.push(format!("{path}: Required value")),
        }
    }

    fn unsupported(&mut self, path: &str, value: &str, supported: &[&str]) {
        let supported: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        self.0.push(format!(
            "{path}: Unsupported value: {}: supported values: {}",
            quote(value),
            supported.join(", ")
        ));
    }

    fn forbidden(&mut self, path: &str, detail: &str) {
        self.0.push(format!("{path}: Forbidden: {detail}"));
    }

    fn too_many(&mut self, path: &str, count: usize, max: usize) {
        self.0.push(format!(
            "{path}: Too many: {count}: must have at most {max} items"
        ));
    }

    fn too_long(&mut self, path: &str, max: usize) {
        self.0.push(format!(
            "{path}: Too long: may not be more than {max} bytes"
        ));
    }

    fn duplicate(&mut self, path: &str, value: &str) {
        self.0
            .push(format!("{path}: Duplicate value: {}", quote(value)));
    }

    /// A value of the wrong JSON type (for fields kept as raw JSON).
    fn wrong_type(&mut self, path: &str, value: &Value, expected: &str) {
        self.0.push(format!(
            "{path}: Invalid value: {}: must be of type {expected}",
            quote(json_type(value))
        ));
    }
}

/// Longest value echoed in a message (characters); longer ones are cut.
const MAX_ECHO_CHARS: usize = 128;

/// A string value for a message: double-quoted, with control characters
/// escaped, cut after [`MAX_ECHO_CHARS`] characters.
fn quote(value: &str) -> String {
    match value.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// A single character for a message: `" "` for printable ones, an escape
/// (`"\n"`, `"\u{7f}"`) otherwise, plus what it is.
fn describe_char(c: char) -> String {
    if c == ' ' {
        "a space".to_string()
    } else if c.is_control() {
        format!("control character {:?}", c)
    } else if c.is_whitespace() {
        format!("whitespace {:?}", c)
    } else {
        format!("{:?}", c)
    }
}

/// The JSON type name of a value, as the API server names it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
