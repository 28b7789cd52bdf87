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
//!   request path can contain them, and they would corrupt map files);
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

/// Apply the API server's rules to one Route.
pub fn validate_spec(route: &Route) -> Result<ValidatedSpec, Rejection> {
    let spec = &route.spec;
    let mut errs = Errors::default();
    let mut warnings = Vec::new();

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

/// `spec.to` or one of `spec.alternateBackends`.
fn check_backend(path: &str, backend: &RouteTargetReference, errs: &mut Errors) -> Option<BackendRef> {
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
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A non-empty `spec.path`.
fn check_path(path: &str, passthrough: bool, errs: &mut Errors) {
    const FIELD: &str = "spec.path";
    if !path.starts_with('/') {
        errs.invalid(FIELD, &quote(path), "must start with \"/\"");
    }
    if let Some(bad) = path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        errs.invalid(
            FIELD,
            &quote(path),
            &format!(
                "must not contain whitespace or control characters (found {}): no request path can contain them",
                describe_char(bad)
            ),
        );
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
        IntOrString::Int(number) if (1..=65535).contains(number) => Some(TargetPort::Number(*number)),
        IntOrString::Int(number) => {
            errs.invalid(
                FIELD,
                number,
                "must be a port number between 1 and 65535, or a port name",
            );
            None
        }
        IntOrString::String(name) if name.is_empty() => {
            errs.required(FIELD, Some("must be a port number or a port name, not empty"));
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

    let policy_raw = tls.insecure_edge_termination_policy.as_deref().unwrap_or("");
    let policy = parse_insecure_policy(policy_raw);
    match policy {
        None => errs.unsupported(
            "spec.tls.insecureEdgeTerminationPolicy",
            policy_raw,
            &["Allow", "None", "Redirect", ""],
        ),
        Some(InsecurePolicy::Allow) if termination == Some(Termination::Passthrough) => errs.invalid(
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
        errs.forbidden(FIELD, "passthrough termination does not support certificates");
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
        self.0.push(format!("{path}: Invalid value: {value}: {detail}"));
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
        self.0
            .push(format!("{path}: Too many: {count}: must have at most {max} items"));
    }

    fn too_long(&mut self, path: &str, max: usize) {
        self.0
            .push(format!("{path}: Too long: may not be more than {max} bytes"));
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
}
