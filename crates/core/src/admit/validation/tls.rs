//! `spec.tls`: termination, insecure policy, which certificate fields each
//! termination allows, `externalCertificate`. PEM contents are checked in
//! the TLS step (`admit/tls.rs`), never here.

use std::sync::Arc;

use serde_json::Value;

use crate::model::TlsConfig;

use super::{quote, Errors};
use crate::admit::route::{InsecurePolicy, Termination};

/// `spec.tls` after the API rules: termination and policy parsed, PEM
/// fields still raw text (checked in the TLS step).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatedTls {
    pub termination: Termination,
    pub insecure_policy: InsecurePolicy,
    pub certificate: Option<Arc<str>>,
    pub key: Option<Arc<str>>,
    pub ca_certificate: Option<Arc<str>>,
    pub destination_ca_certificate: Option<Arc<str>>,
    /// `spec.tls.externalCertificate.name`: a Secret of the Route's
    /// namespace whose `tls.crt`/`tls.key` admission puts into
    /// `certificate`/`key` (`admit/external.rs`) before the TLS step.
    pub external_certificate: Option<String>,
}

/// `spec.tls.termination`, case-insensitive; `None` when not one of the three.
pub(super) fn parse_termination(raw: &str) -> Option<Termination> {
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
pub(super) fn check_tls(
    tls: &TlsConfig,
    termination: Option<Termination>,
    errs: &mut Errors,
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

    let external_certificate = check_external_certificate(tls, termination, certificate, errs);

    let termination = termination?;
    let insecure_policy = policy?;
    Some(ValidatedTls {
        termination,
        insecure_policy,
        certificate: pem(&tls.certificate),
        key: pem(&tls.key),
        ca_certificate: pem(&tls.ca_certificate),
        destination_ca_certificate: pem(&tls.destination_ca_certificate),
        external_certificate,
    })
}

/// `spec.tls.externalCertificate` (`{name: <secret>}`). Returns the name
/// when a valid, non-empty reference is present. A reference with an empty
/// name counts as unset, as in the API.
fn check_external_certificate(
    tls: &TlsConfig,
    termination: Option<Termination>,
    certificate: &str,
    errs: &mut Errors,
) -> Option<String> {
    const FIELD: &str = "spec.tls.externalCertificate";
    let external = tls.external_certificate.as_ref().filter(|v| !v.is_null())?;
    let Some(object) = external.as_object() else {
        errs.wrong_type(FIELD, external, "object");
        return None;
    };
    let name = match object.get("name") {
        None | Some(Value::Null) => "",
        Some(Value::String(name)) => name.as_str(),
        Some(other) => {
            errs.wrong_type(&format!("{FIELD}.name"), other, "string");
            return None;
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
    (ok && !name.is_empty()).then(|| name.to_string())
}

/// A PEM field: `None` when absent, empty or only whitespace.
/// A PEM field when it has content: the Route's own string, shared.
fn pem(value: &Option<Arc<str>>) -> Option<Arc<str>> {
    value.as_ref().filter(|v| !v.trim().is_empty()).cloned()
}
