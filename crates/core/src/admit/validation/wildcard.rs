//! `spec.wildcardPolicy`.

use super::{quote, Errors};

/// `spec.wildcardPolicy` (empty = `None`).
pub(super) fn check_wildcard_policy(policy: &str, host: &str, errs: &mut Errors) {
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
