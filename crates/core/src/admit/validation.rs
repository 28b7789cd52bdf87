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
//!   [`headers`]); valid header actions are *not applied*, and the Route
//!   gets the warning `spec.httpHeaders is not supported yet and is ignored`.
//! - `spec.tls.externalCertificate` (a reference to a Secret) is validated
//!   (not with passthrough, not together with `spec.tls.certificate`). A
//!   valid reference is accepted, as the API server accepts it, but routegen
//!   cannot read Secrets: the Route is admitted with the warning
//!   `spec.tls.externalCertificate is not supported; the Route is served
//!   with the default certificate` rather than rejected, so a Route that a
//!   cluster stores keeps working (with the router's default certificate)
//!   and the gap is visible in `check` and in the logs.

mod headers;

use std::fmt::Display;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::model::{Route, RouteTargetReference, TlsConfig};

use super::route::{BackendRef, InsecurePolicy, TargetPort, Termination};
use super::verdict::{Reason, Rejection};

/// `spec.tls` after the API rules: termination and policy parsed, PEM
/// fields still raw text (checked in the TLS step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedTls {
    pub termination: Termination,
    pub insecure_policy: InsecurePolicy,
    pub certificate: Option<String>,
    pub key: Option<String>,
    pub ca_certificate: Option<String>,
    pub destination_ca_certificate: Option<String>,
}

/// The parts of a Route spec that passed API validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedSpec {
    pub path: Option<String>,
    pub backends: Vec<BackendRef>,
    pub target_port: Option<TargetPort>,
    pub tls: Option<ValidatedTls>,
    pub warnings: Vec<String>,
}

/// Warning for a Route with valid header actions.
const HTTP_HEADERS_WARNING: &str = "spec.httpHeaders is not supported yet and is ignored";
/// Warning for a Route with a valid `spec.tls.externalCertificate`.
const EXTERNAL_CERT_WARNING: &str =
    "spec.tls.externalCertificate is not supported; the Route is served with the default certificate";

/// Weight of a backend without one (the API default).
const DEFAULT_WEIGHT: u16 = 100;
/// Largest backend weight.
const MAX_WEIGHT: i64 = 256;
/// At most this many `spec.alternateBackends`.
const MAX_ALTERNATE_BACKENDS: usize = 3;
/// Longest `spec.subdomain`.
const MAX_SUBDOMAIN_LEN: usize = 253;
/// Largest total size of `metadata.annotations` (keys plus values, in
/// bytes): the API server's limit (`TotalAnnotationSizeLimitB`, 256 KiB).
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Apply the API server's rules to one Route.
pub fn validate_spec(route: &Route) -> Result<ValidatedSpec, Rejection> {
    let spec = &route.spec;
    let mut errs = Errors::default();
    let mut warnings = Vec::new();

    check_annotations_size(route, &mut errs);

    let mut backends = Vec::new();
    backends.extend(check_backend("spec.to", &spec.to, &mut errs));
    if let Some(alternates) = &spec.alternate_backends {
        if alternates.len() > MAX_ALTERNATE_BACKENDS {
            errs.too_many(
                "spec.alternateBackends",
                alternates.len(),
                MAX_ALTERNATE_BACKENDS,
            );
        }
        for (index, backend) in alternates.iter().enumerate() {
            let path = format!("spec.alternateBackends[{index}]");
            backends.extend(check_backend(&path, backend, &mut errs));
        }
    }

    if let Some(subdomain) = spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        check_subdomain(subdomain, &mut errs);
    }

    // The termination decides several rules below; parse it first, report
    // its problems in the `tls` section.
    let termination = spec
        .tls
        .as_ref()
        .and_then(|tls| parse_termination(&tls.termination));
    let passthrough = termination == Some(Termination::Passthrough);

    let path = spec.path.as_deref().filter(|p| !p.is_empty());
    if let Some(path) = path {
        check_path(path, passthrough, &mut errs);
    }

    let target_port = spec
        .port
        .as_ref()
        .and_then(|port| check_target_port(&port.target_port, &mut errs));

    let tls = spec
        .tls
        .as_ref()
        .and_then(|tls| check_tls(tls, termination, &mut errs, &mut warnings));

    check_wildcard_policy(
        spec.wildcard_policy.as_deref().unwrap_or(""),
        spec.host.as_deref().unwrap_or(""),
        &mut errs,
    );

    if let Some(http_headers) = spec.http_headers.as_ref().filter(|v| !v.is_null()) {
        if headers::validate(http_headers, passthrough, &mut errs) > 0 {
            warnings.push(HTTP_HEADERS_WARNING.to_string());
        }
    }

    if !errs.is_empty() {
        return Err(Rejection::new(Reason::ValidationFailed, errs.join()));
    }
    Ok(ValidatedSpec {
        path: path.map(str::to_string),
        backends,
        target_port,
        tls,
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

/// `spec.to` or one of `spec.alternateBackends`.
fn check_backend(
    path: &str,
    backend: &RouteTargetReference,
    errs: &mut Errors,
) -> Option<BackendRef> {
    let mut ok = true;
    let kind = backend.kind.as_deref().unwrap_or("");
    if !kind.is_empty() && kind != "Service" {
        errs.unsupported(&format!("{path}.kind"), kind, &["Service"]);
        ok = false;
    }
    if backend.name.is_empty() {
        errs.required(&format!("{path}.name"), None);
        ok = false;
    }
    let weight = match backend.weight {
        None => DEFAULT_WEIGHT,
        Some(weight) => match u16::try_from(weight) {
            Ok(weight) if i64::from(weight) <= MAX_WEIGHT => weight,
            _ => {
                errs.invalid(
                    &format!("{path}.weight"),
                    &weight,
                    &format!("must be between 0 and {MAX_WEIGHT}"),
                );
                ok = false;
                0
            }
        },
    };
    ok.then(|| BackendRef {
        service: backend.name.clone(),
        weight,
    })
}

/// `spec.subdomain`: a DNS subdomain (letters of either case, as the API
/// schema's pattern allows; step 1 folds case).
fn check_subdomain(subdomain: &str, errs: &mut Errors) {
    const PATH: &str = "spec.subdomain";
    if subdomain.len() > MAX_SUBDOMAIN_LEN {
        errs.too_long(PATH, MAX_SUBDOMAIN_LEN);
        return;
    }
    if !subdomain.split('.').all(is_dns_label) {
        errs.invalid(
            PATH,
            &quote(subdomain),
            "must be a DNS subdomain: dot-separated labels of at most 63 letters, digits \
             and '-', each starting and ending with a letter or digit",
        );
    }
}

/// A DNS-1123 label, letters of either case.
fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

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
fn check_path(path: &str, passthrough: bool, errs: &mut Errors) {
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

/// `spec.port.targetPort`.
fn check_target_port(target: &IntOrString, errs: &mut Errors) -> Option<TargetPort> {
    const FIELD: &str = "spec.port.targetPort";
    match target {
        IntOrString::Int(number) if (1..=65535).contains(number) => {
            Some(TargetPort::Number(*number))
        }
        IntOrString::Int(number) => {
            errs.invalid(
                FIELD,
                number,
                "must be a port number between 1 and 65535, or a port name",
            );
            None
        }
        IntOrString::String(name) if name.is_empty() => {
            errs.required(
                FIELD,
                Some("must be a port number or a port name, not empty"),
            );
            None
        }
        IntOrString::String(name) => Some(TargetPort::Name(name.clone())),
    }
}

/// `spec.tls.termination`, case-insensitive; `None` when not one of the three.
fn parse_termination(raw: &str) -> Option<Termination> {
    [
        Termination::Edge,
        Termination::Passthrough,
        Termination::Reencrypt,
    ]
    .into_iter()
    .find(|t| raw.eq_ignore_ascii_case(t.as_str()))
}

/// `spec.tls.insecureEdgeTerminationPolicy`; `None` when unknown.
fn parse_insecure_policy(raw: &str) -> Option<InsecurePolicy> {
    match raw {
        "" | "None" | "Disable" => Some(InsecurePolicy::None),
        "Allow" => Some(InsecurePolicy::Allow),
        "Redirect" => Some(InsecurePolicy::Redirect),
        _ => None,
    }
}

/// `spec.tls`. `termination` is the parsed `tls.termination`.
fn check_tls(
    tls: &TlsConfig,
    termination: Option<Termination>,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> Option<ValidatedTls> {
    const TERMINATIONS: [&str; 3] = ["edge", "passthrough", "reencrypt"];
    if termination.is_none() {
        if tls.termination.is_empty() {
            errs.required(
                "spec.tls.termination",
                Some("must be one of \"edge\", \"passthrough\", \"reencrypt\""),
            );
        } else {
            errs.unsupported("spec.tls.termination", &tls.termination, &TERMINATIONS);
        }
    }

    let policy_raw = tls
        .insecure_edge_termination_policy
        .as_deref()
        .unwrap_or("");
    let policy = parse_insecure_policy(policy_raw);
    match policy {
        None => errs.unsupported(
            "spec.tls.insecureEdgeTerminationPolicy",
            policy_raw,
            &["Allow", "None", "Redirect", ""],
        ),
        Some(InsecurePolicy::Allow) if termination == Some(Termination::Passthrough) => errs
            .invalid(
                "spec.tls.insecureEdgeTerminationPolicy",
                &quote(policy_raw),
                "cannot have both spec.tls.termination: passthrough and \
             spec.tls.insecureEdgeTerminationPolicy: Allow",
            ),
        Some(_) => {}
    }

    // Certificates: the API rejects any non-empty value where it is not
    // allowed (even whitespace); contents are never echoed.
    let certificate = tls.certificate.as_deref().unwrap_or("");
    let pem_fields = [
        ("certificate", certificate),
        ("key", tls.key.as_deref().unwrap_or("")),
        ("caCertificate", tls.ca_certificate.as_deref().unwrap_or("")),
        (
            "destinationCACertificate",
            tls.destination_ca_certificate.as_deref().unwrap_or(""),
        ),
    ];
    match termination {
        Some(Termination::Passthrough) => {
            for (field, value) in pem_fields {
                if !value.is_empty() {
                    errs.forbidden(
                        &format!("spec.tls.{field}"),
                        "passthrough termination does not support certificates",
                    );
                }
            }
        }
        Some(Termination::Edge) if !pem_fields[3].1.is_empty() => errs.forbidden(
            "spec.tls.destinationCACertificate",
            "edge termination does not support destination certificates",
        ),
        _ => {}
    }

    let external_ok = check_external_certificate(tls, termination, certificate, errs);

    let termination = termination?;
    let insecure_policy = policy?;
    if external_ok {
        warnings.push(EXTERNAL_CERT_WARNING.to_string());
    }
    Some(ValidatedTls {
        termination,
        insecure_policy,
        certificate: pem(&tls.certificate),
        key: pem(&tls.key),
        ca_certificate: pem(&tls.ca_certificate),
        destination_ca_certificate: pem(&tls.destination_ca_certificate),
    })
}

/// `spec.tls.externalCertificate` (`{name: <secret>}`). Returns true when a
/// valid, non-empty reference is present (so the caller warns that it is
/// not used). A reference with an empty name counts as unset, as in the API.
fn check_external_certificate(
    tls: &TlsConfig,
    termination: Option<Termination>,
    certificate: &str,
    errs: &mut Errors,
) -> bool {
    const FIELD: &str = "spec.tls.externalCertificate";
    let Some(external) = tls.external_certificate.as_ref().filter(|v| !v.is_null()) else {
        return false;
    };
    let Some(object) = external.as_object() else {
        errs.wrong_type(FIELD, external, "object");
        return false;
    };
    let name = match object.get("name") {
        None | Some(Value::Null) => "",
        Some(Value::String(name)) => name.as_str(),
        Some(other) => {
            errs.wrong_type(&format!("{FIELD}.name"), other, "string");
            return false;
        }
    };
    let mut ok = true;
    if !certificate.is_empty() {
        errs.invalid(
            FIELD,
            &quote("object"),
            "cannot have both spec.tls.certificate and spec.tls.externalCertificate",
        );
        ok = false;
    }
    if termination == Some(Termination::Passthrough) && !name.is_empty() {
        errs.forbidden(
            FIELD,
            "passthrough termination does not support certificates",
        );
        ok = false;
    }
    ok && !name.is_empty()
}

/// A PEM field: `None` when absent, empty or only whitespace.
fn pem(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|v| !v.trim().is_empty()).cloned()
}

/// `spec.wildcardPolicy` (empty = `None`).
fn check_wildcard_policy(policy: &str, host: &str, errs: &mut Errors) {
    const FIELD: &str = "spec.wildcardPolicy";
    match policy {
        "" | "None" => {}
        "Subdomain" if host.is_empty() => errs.invalid(
            FIELD,
            &quote(policy),
            "wildcard policy Subdomain requires a non-empty spec.host",
        ),
        "Subdomain" => {}
        other => errs.unsupported(FIELD, other, &["None", "Subdomain"]),
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

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::json;

    use super::headers::{check_value, Direction};
    use super::*;
    use crate::model::route::RoutePort;
    use crate::model::RouteSpec;

    /// What a case expects: admitted, or rejected with messages containing
    /// every one of these fragments.
    enum Expect {
        Ok,
        Err(&'static [&'static str]),
    }

    fn route(spec: RouteSpec) -> Route {
        let mut route = Route::new("r", spec);
        route.metadata.namespace = Some("ns".to_string());
        route
    }

    fn backend(name: &str, weight: Option<i64>) -> RouteTargetReference {
        RouteTargetReference {
            kind: None,
            name: name.to_string(),
            weight,
        }
    }

    /// A valid plain-HTTP Route; cases change one thing.
    fn base() -> RouteSpec {
        RouteSpec {
            host: Some("a.example.com".to_string()),
            to: RouteTargetReference {
                kind: Some("Service".to_string()),
                name: "svc".to_string(),
                weight: None,
            },
            ..Default::default()
        }
    }

    fn with(change: impl FnOnce(&mut RouteSpec)) -> RouteSpec {
        let mut spec = base();
        change(&mut spec);
        spec
    }

    fn tls(termination: &str) -> TlsConfig {
        TlsConfig {
            termination: termination.to_string(),
            ..Default::default()
        }
    }

    fn with_tls(termination: &str, change: impl FnOnce(&mut TlsConfig)) -> RouteSpec {
        let mut config = tls(termination);
        change(&mut config);
        with(|s| s.tls = Some(config))
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    fn port(target: IntOrString) -> Option<RoutePort> {
        Some(RoutePort {
            target_port: target,
        })
    }

    fn run_cases(cases: Vec<(&str, RouteSpec, Expect)>) {
        let mut failures = Vec::new();
        for (name, spec, expect) in cases {
            let result = validate_spec(&route(spec));
            match (&expect, &result) {
                (Expect::Ok, Ok(_)) => {}
                (Expect::Err(fragments), Err(rejection)) => {
                    if rejection.reason != Reason::ValidationFailed {
                        failures.push(format!("{name}: reason {:?}", rejection.reason));
                    }
                    for fragment in *fragments {
                        if !rejection.message.contains(fragment) {
                            failures.push(format!(
                                "{name}: message {:?} lacks {fragment:?}",
                                rejection.message
                            ));
                        }
                    }
                }
                (Expect::Ok, Err(rejection)) => {
                    failures.push(format!("{name}: expected Ok, got {:?}", rejection.message))
                }
                (Expect::Err(_), Ok(spec)) => {
                    failures.push(format!("{name}: expected rejection, got {spec:?}"))
                }
            }
        }
        assert!(
            failures.is_empty(),
            "failed cases:\n{}",
            failures.join("\n")
        );
    }

    #[test]
    fn backends() {
        run_cases(vec![
            ("minimal", with(|s| s.host = None), Expect::Ok),
            ("kind absent", with(|s| s.to.kind = None), Expect::Ok),
            ("kind empty", with(|s| s.to.kind = some("")), Expect::Ok),
            (
                "kind nonsense",
                with(|s| s.to.kind = some("Nonsense")),
                Expect::Err(&[r#"spec.to.kind: Unsupported value: "Nonsense": supported values: "Service""#]),
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
            ("no alternates (empty list)", with(|s| s.alternate_backends = Some(vec![])), Expect::Ok),
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
                Expect::Err(&["spec.alternateBackends[0].weight: Invalid value: 1000: must be between 0 and 256"]),
            ),
        ]);
    }

    #[test]
    fn path_port_wildcard_subdomain() {
        run_cases(vec![
            ("path /", with(|s| s.path = some("/")), Expect::Ok),
            ("path /a/b", with(|s| s.path = some("/a/b")), Expect::Ok),
            ("path with escapes and sub-delims", with(|s| s.path = some("/a%20b/c~d/e;f=g@h:i!$&'()*+,")), Expect::Ok),
            ("path with quote", with(|s| s.path = some("/a\"b")), Expect::Err(&["RFC 3986 path characters"])),
            ("path with hash", with(|s| s.path = some("/a#b")), Expect::Err(&["RFC 3986 path characters"])),
            ("path with query", with(|s| s.path = some("/a?b=1")), Expect::Err(&["RFC 3986 path characters"])),
            ("path with braces", with(|s| s.path = some("/{{x}}")), Expect::Err(&["RFC 3986 path characters"])),
            ("path with backslash", with(|s| s.path = some("/a\\b")), Expect::Err(&["RFC 3986 path characters"])),
            ("path with unicode", with(|s| s.path = some("/bücher")), Expect::Err(&["RFC 3986 path characters"])),
            ("path with %[", with(|s| s.path = some("/%[src]")), Expect::Err(&["%XX escapes"])),
            ("path with bare %", with(|s| s.path = some("/100%")), Expect::Err(&["%XX escapes"])),
            ("path of 2048 bytes", with(|s| s.path = Some(format!("/{}", "a".repeat(2047)))), Expect::Ok),
            ("path of 2049 bytes", with(|s| s.path = Some(format!("/{}", "a".repeat(2048)))), Expect::Err(&["at most 2048 bytes"])),
            ("path empty", with(|s| s.path = some("")), Expect::Ok),
            (
                "path without slash",
                with(|s| s.path = some("x")),
                Expect::Err(&[r#"spec.path: Invalid value: "x": must start with "/""#]),
            ),
            (
                "path with LF",
                with(|s| s.path = some("/a\nb")),
                Expect::Err(&[r#"spec.path: Invalid value: "/a\nb": must not contain whitespace or control characters"#]),
            ),
            (
                "path with CR",
                with(|s| s.path = some("/a\r")),
                Expect::Err(&["control character '\\r'"]),
            ),
            ("path with NUL", with(|s| s.path = some("/\0")), Expect::Err(&["spec.path"])),
            ("path with space", with(|s| s.path = some("/a b")), Expect::Err(&["a space"])),
            ("path with tab", with(|s| s.path = some("/a\tb")), Expect::Err(&["spec.path"])),
            ("path with DEL", with(|s| s.path = some("/a\u{7f}")), Expect::Err(&["spec.path"])),
            (
                "path with passthrough",
                with(|s| {
                    s.path = some("/");
                    s.tls = Some(tls("passthrough"));
                }),
                Expect::Err(&[r#"spec.path: Invalid value: "/": passthrough termination does not support paths"#]),
            ),
            (
                "empty path with passthrough",
                with(|s| {
                    s.path = some("");
                    s.tls = Some(tls("passthrough"));
                }),
                Expect::Ok,
            ),
            ("path with edge", with(|s| {
                s.path = some("/");
                s.tls = Some(tls("edge"));
            }), Expect::Ok),
            ("targetPort 1", with(|s| s.port = port(IntOrString::Int(1))), Expect::Ok),
            ("targetPort 65535", with(|s| s.port = port(IntOrString::Int(65535))), Expect::Ok),
            ("targetPort \"0\"", with(|s| s.port = port(IntOrString::String("0".into()))), Expect::Ok),
            ("targetPort \"x\"", with(|s| s.port = port(IntOrString::String("x".into()))), Expect::Ok),
            (
                "targetPort 0",
                with(|s| s.port = port(IntOrString::Int(0))),
                Expect::Err(&["spec.port.targetPort: Invalid value: 0: must be a port number between 1 and 65535"]),
            ),
            (
                "targetPort -1",
                with(|s| s.port = port(IntOrString::Int(-1))),
                Expect::Err(&["spec.port.targetPort: Invalid value: -1"]),
            ),
            (
                "targetPort 65536",
                with(|s| s.port = port(IntOrString::Int(65536))),
                Expect::Err(&["spec.port.targetPort: Invalid value: 65536"]),
            ),
            (
                "targetPort empty string",
                with(|s| s.port = port(IntOrString::String(String::new()))),
                Expect::Err(&["spec.port.targetPort: Required value"]),
            ),
            ("wildcard None", with(|s| s.wildcard_policy = some("None")), Expect::Ok),
            ("wildcard empty", with(|s| s.wildcard_policy = some("")), Expect::Ok),
            ("wildcard Subdomain with host", with(|s| s.wildcard_policy = some("Subdomain")), Expect::Ok),
            (
                "wildcard Subdomain without host",
                with(|s| {
                    s.host = None;
                    s.wildcard_policy = some("Subdomain");
                }),
                Expect::Err(&[r#"spec.wildcardPolicy: Invalid value: "Subdomain": wildcard policy Subdomain requires a non-empty spec.host"#]),
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
                Expect::Err(&[r#"spec.wildcardPolicy: Unsupported value: "All": supported values: "None", "Subdomain""#]),
            ),
            ("subdomain ok", with(|s| s.subdomain = some("Foo-1.bar")), Expect::Ok),
            ("subdomain empty", with(|s| s.subdomain = some("")), Expect::Ok),
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
            ("subdomain leading dash", with(|s| s.subdomain = some("-a")), Expect::Err(&["spec.subdomain"])),
            ("subdomain empty label", with(|s| s.subdomain = some("a..b")), Expect::Err(&["spec.subdomain"])),
            ("subdomain long label", with(|s| s.subdomain = some(&"a".repeat(64))), Expect::Err(&["spec.subdomain"])),
            (
                "subdomain too long",
                with(|s| s.subdomain = some(&["a"; 128].join("."))),
                Expect::Err(&["spec.subdomain: Too long: may not be more than 253 bytes"]),
            ),
        ]);
    }

    #[test]
    fn tls_rules() {
        const PEM: &str = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
        run_cases(vec![
            ("edge", with_tls("edge", |_| {}), Expect::Ok),
            ("EDGE", with_tls("EDGE", |_| {}), Expect::Ok),
            ("Passthrough", with_tls("Passthrough", |_| {}), Expect::Ok),
            ("reencrypt", with_tls("reencrypt", |_| {}), Expect::Ok),
            (
                "termination empty",
                with_tls("", |_| {}),
                Expect::Err(&["spec.tls.termination: Required value"]),
            ),
            (
                "termination nonsense",
                with_tls("edgy", |_| {}),
                Expect::Err(&[r#"spec.tls.termination: Unsupported value: "edgy": supported values: "edge", "passthrough", "reencrypt""#]),
            ),
            ("edge Allow", with_tls("edge", |t| t.insecure_edge_termination_policy = some("Allow")), Expect::Ok),
            ("edge Redirect", with_tls("edge", |t| t.insecure_edge_termination_policy = some("Redirect")), Expect::Ok),
            ("edge None", with_tls("edge", |t| t.insecure_edge_termination_policy = some("None")), Expect::Ok),
            ("edge Disable", with_tls("edge", |t| t.insecure_edge_termination_policy = some("Disable")), Expect::Ok),
            ("edge empty policy", with_tls("edge", |t| t.insecure_edge_termination_policy = some("")), Expect::Ok),
            ("reencrypt Allow", with_tls("reencrypt", |t| t.insecure_edge_termination_policy = some("Allow")), Expect::Ok),
            (
                "passthrough Redirect",
                with_tls("passthrough", |t| t.insecure_edge_termination_policy = some("Redirect")),
                Expect::Ok,
            ),
            ("passthrough None", with_tls("passthrough", |t| t.insecure_edge_termination_policy = some("None")), Expect::Ok),
            (
                "passthrough Allow",
                with_tls("passthrough", |t| t.insecure_edge_termination_policy = some("Allow")),
                Expect::Err(&["spec.tls.insecureEdgeTerminationPolicy: Invalid value: \"Allow\": cannot have both spec.tls.termination: passthrough and spec.tls.insecureEdgeTerminationPolicy: Allow"]),
            ),
            (
                "PASSTHROUGH Allow",
                with_tls("PASSTHROUGH", |t| t.insecure_edge_termination_policy = some("Allow")),
                Expect::Err(&["cannot have both"]),
            ),
            (
                "policy nonsense",
                with_tls("edge", |t| t.insecure_edge_termination_policy = some("nonsense")),
                Expect::Err(&[r#"spec.tls.insecureEdgeTerminationPolicy: Unsupported value: "nonsense": supported values: "Allow", "None", "Redirect", """#]),
            ),
            (
                "policy lower case",
                with_tls("edge", |t| t.insecure_edge_termination_policy = some("allow")),
                Expect::Err(&["spec.tls.insecureEdgeTerminationPolicy: Unsupported value"]),
            ),
            (
                "edge with cert, key, CA",
                with_tls("edge", |t| {
                    t.certificate = some(PEM);
                    t.key = some(PEM);
                    t.ca_certificate = some(PEM);
                }),
                Expect::Ok,
            ),
            (
                "reencrypt with everything",
                with_tls("reencrypt", |t| {
                    t.certificate = some(PEM);
                    t.key = some(PEM);
                    t.ca_certificate = some(PEM);
                    t.destination_ca_certificate = some(PEM);
                }),
                Expect::Ok,
            ),
            (
                "passthrough with empty PEM fields",
                with_tls("passthrough", |t| {
                    t.certificate = some("");
                    t.key = some("");
                    t.ca_certificate = some("");
                    t.destination_ca_certificate = some("");
                }),
                Expect::Ok,
            ),
            (
                "passthrough with certificate",
                with_tls("passthrough", |t| t.certificate = some("x")),
                Expect::Err(&["spec.tls.certificate: Forbidden: passthrough termination does not support certificates"]),
            ),
            (
                "passthrough with whitespace certificate",
                with_tls("passthrough", |t| t.certificate = some(" ")),
                Expect::Err(&["spec.tls.certificate: Forbidden"]),
            ),
            (
                "passthrough with key",
                with_tls("passthrough", |t| t.key = some("x")),
                Expect::Err(&["spec.tls.key: Forbidden: passthrough termination does not support certificates"]),
            ),
            (
                "passthrough with CA",
                with_tls("passthrough", |t| t.ca_certificate = some("x")),
                Expect::Err(&["spec.tls.caCertificate: Forbidden"]),
            ),
            (
                "passthrough with destination CA",
                with_tls("passthrough", |t| t.destination_ca_certificate = some("x")),
                Expect::Err(&["spec.tls.destinationCACertificate: Forbidden"]),
            ),
            (
                "edge with destination CA",
                with_tls("edge", |t| t.destination_ca_certificate = some("x")),
                Expect::Err(&["spec.tls.destinationCACertificate: Forbidden: edge termination does not support destination certificates"]),
            ),
            (
                "external certificate alone",
                with_tls("edge", |t| t.external_certificate = Some(json!({"name": "secret"}))),
                Expect::Ok,
            ),
            (
                "external certificate with empty certificate",
                with_tls("reencrypt", |t| {
                    t.certificate = some("");
                    t.external_certificate = Some(json!({"name": "secret"}));
                }),
                Expect::Ok,
            ),
            ("external certificate null", with_tls("edge", |t| t.external_certificate = Some(json!(null))), Expect::Ok),
            (
                "external certificate with certificate",
                with_tls("edge", |t| {
                    t.certificate = some(PEM);
                    t.external_certificate = Some(json!({"name": "secret"}));
                }),
                Expect::Err(&[r#"spec.tls.externalCertificate: Invalid value: "object": cannot have both spec.tls.certificate and spec.tls.externalCertificate"#]),
            ),
            (
                "external certificate with passthrough",
                with_tls("passthrough", |t| t.external_certificate = Some(json!({"name": "secret"}))),
                Expect::Err(&["spec.tls.externalCertificate: Forbidden: passthrough termination does not support certificates"]),
            ),
            (
                "external certificate not an object",
                with_tls("edge", |t| t.external_certificate = Some(json!("secret"))),
                Expect::Err(&[r#"spec.tls.externalCertificate: Invalid value: "string": must be of type object"#]),
            ),
            (
                "external certificate name not a string",
                with_tls("edge", |t| t.external_certificate = Some(json!({"name": 1}))),
                Expect::Err(&[r#"spec.tls.externalCertificate.name: Invalid value: "integer": must be of type string"#]),
            ),
        ]);
    }

    #[test]
    fn collects_every_violation_in_order() {
        let spec = with(|s| {
            s.to.name = String::new();
            s.to.weight = Some(300);
            s.alternate_backends = Some(vec![backend("", Some(-5)); 4]);
            s.path = some("x");
            s.port = port(IntOrString::Int(0));
            s.tls = Some(TlsConfig {
                termination: "passthrough".into(),
                key: some("k"),
                insecure_edge_termination_policy: some("Allow"),
                ..Default::default()
            });
            s.wildcard_policy = some("Nope");
            s.http_headers = Some(
                json!({"actions": {"request": [{"name": "Proxy", "action": {"type": "Delete"}}]}}),
            );
        });
        let rejection = validate_spec(&route(spec)).unwrap_err();
        assert_eq!(rejection.reason, Reason::ValidationFailed);
        let parts: Vec<&str> = rejection.message.split("; ").collect();
        let fields: Vec<&str> = parts.iter().map(|p| p.split(':').next().unwrap()).collect();
        assert_eq!(
            fields,
            [
                "spec.to.name",
                "spec.to.weight",
                "spec.alternateBackends",
                "spec.alternateBackends[0].name",
                "spec.alternateBackends[0].weight",
                "spec.alternateBackends[1].name",
                "spec.alternateBackends[1].weight",
                "spec.alternateBackends[2].name",
                "spec.alternateBackends[2].weight",
                "spec.alternateBackends[3].name",
                "spec.alternateBackends[3].weight",
                "spec.path",
                "spec.path",
                "spec.port.targetPort",
                "spec.tls.insecureEdgeTerminationPolicy",
                "spec.tls.key",
                "spec.wildcardPolicy",
                "spec.httpHeaders",
                "spec.httpHeaders.actions.request[0].name",
            ],
            "{}",
            rejection.message
        );
        // Same input, same message.
        let again = validate_spec(&route(with(|s| {
            s.to.name = String::new();
            s.to.weight = Some(300);
        })))
        .unwrap_err();
        assert_eq!(
            again.message,
            "spec.to.name: Required value; spec.to.weight: Invalid value: 300: must be between 0 and 256"
        );
    }

    #[test]
    fn validated_spec_contents() {
        let spec = with(|s| {
            s.to.weight = Some(0);
            s.alternate_backends = Some(vec![backend("b", None), backend("c", Some(256))]);
            s.path = some("/api");
            s.port = port(IntOrString::Int(8443));
            s.tls = Some(TlsConfig {
                termination: "ReEncrypt".into(),
                certificate: some("CERT"),
                key: some("  \n"),
                ca_certificate: some(""),
                destination_ca_certificate: some("DEST"),
                insecure_edge_termination_policy: some("Disable"),
                external_certificate: None,
            });
        });
        let validated = validate_spec(&route(spec)).unwrap();
        assert_eq!(
            validated,
            ValidatedSpec {
                path: some("/api"),
                backends: vec![
                    BackendRef {
                        service: "svc".into(),
                        weight: 0
                    },
                    BackendRef {
                        service: "b".into(),
                        weight: 100
                    },
                    BackendRef {
                        service: "c".into(),
                        weight: 256
                    },
                ],
                target_port: Some(TargetPort::Number(8443)),
                tls: Some(ValidatedTls {
                    termination: Termination::Reencrypt,
                    insecure_policy: InsecurePolicy::None,
                    certificate: some("CERT"),
                    key: None,
                    ca_certificate: None,
                    destination_ca_certificate: some("DEST"),
                }),
                warnings: vec![],
            }
        );

        let minimal = validate_spec(&route(with(|s| {
            s.path = some("");
            s.port = port(IntOrString::String("https".into()));
        })))
        .unwrap();
        assert_eq!(minimal.path, None);
        assert_eq!(minimal.target_port, Some(TargetPort::Name("https".into())));
        assert_eq!(minimal.tls, None);
        assert!(minimal.warnings.is_empty());

        for (raw, policy) in [
            ("Allow", InsecurePolicy::Allow),
            ("Redirect", InsecurePolicy::Redirect),
            ("None", InsecurePolicy::None),
            ("", InsecurePolicy::None),
        ] {
            let v = validate_spec(&route(with_tls("Edge", |t| {
                t.insecure_edge_termination_policy = some(raw)
            })))
            .unwrap();
            let tls = v.tls.unwrap();
            assert_eq!(tls.termination, Termination::Edge);
            assert_eq!(tls.insecure_policy, policy, "{raw}");
        }
    }

    #[test]
    fn unsupported_fields_warn() {
        let v = validate_spec(&route(with_tls("edge", |t| {
            t.external_certificate = Some(json!({"name": "secret"}))
        })))
        .unwrap();
        assert_eq!(v.warnings, [EXTERNAL_CERT_WARNING]);
        assert_eq!(v.tls.unwrap().certificate, None);

        // A reference without a name counts as unset.
        let v = validate_spec(&route(with_tls("edge", |t| {
            t.external_certificate = Some(json!({}))
        })))
        .unwrap();
        assert!(v.warnings.is_empty());

        let v = validate_spec(&route(with(|s| {
            s.http_headers = Some(
                json!({"actions": {"response": [{"name": "X-A", "action": {"type": "Delete"}}]}}),
            )
        })))
        .unwrap();
        assert_eq!(v.warnings, [HTTP_HEADERS_WARNING]);

        // Nothing to ignore, nothing to warn about.
        for empty in [
            json!({}),
            json!({"actions": {}}),
            json!({"actions": {"request": []}}),
            json!(null),
        ] {
            let v = validate_spec(&route(with(|s| s.http_headers = Some(empty.clone())))).unwrap();
            assert!(v.warnings.is_empty(), "{empty}");
        }
    }

    /// A Route with one request (or response) action.
    fn header(direction: &str, action: serde_json::Value) -> RouteSpec {
        with(|s| {
            s.tls = Some(tls("edge"));
            s.http_headers = Some(json!({ "actions": { direction: [action] } }));
        })
    }

    fn set(name: &str, value: &str) -> serde_json::Value {
        json!({"name": name, "action": {"type": "Set", "set": {"value": value}}})
    }

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

    #[test]
    fn long_values_are_cut_in_messages() {
        let value = format!("{}%", "v".repeat(1000));
        let rejection = validate_spec(&route(header("request", set("X-A", &value)))).unwrap_err();
        assert!(
            rejection.message.contains("vvv\"..."),
            "{}",
            rejection.message
        );
        assert!(rejection.message.len() < 1000, "{}", rejection.message);
    }

    #[test]
    fn pem_contents_never_echoed() {
        let rejection = validate_spec(&route(with_tls("passthrough", |t| {
            t.key = some("SECRET-KEY-MATERIAL");
            t.certificate = some("SECRET-CERT");
        })))
        .unwrap_err();
        assert!(
            !rejection.message.contains("SECRET"),
            "{}",
            rejection.message
        );
    }

    #[test]
    fn annotations_over_the_api_size_limit_are_refused_naming_the_field() {
        let mut r = route(base());
        let mut annotations = std::collections::BTreeMap::new();
        // 262144 bytes in total (key + value) is still allowed.
        let key = "haproxy.router.openshift.io/timeout".to_string();
        let fill = MAX_ANNOTATIONS_BYTES - key.len();
        annotations.insert(key.clone(), "x".repeat(fill));
        r.metadata.annotations = Some(annotations.clone());
        assert!(validate_spec(&r).is_ok());

        annotations.insert(key, "x".repeat(fill + 1));
        r.metadata.annotations = Some(annotations);
        let rejection = validate_spec(&r).unwrap_err();
        assert_eq!(rejection.reason, Reason::ValidationFailed);
        assert_eq!(
            rejection.message,
            "metadata.annotations: Too long: 262145 bytes: must have at most 262144 bytes"
        );
    }
}
