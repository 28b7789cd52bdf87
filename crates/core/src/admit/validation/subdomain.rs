//! `spec.subdomain`.

use super::{quote, Errors};

/// Longest `spec.subdomain`.
const MAX_SUBDOMAIN_LEN: usize = 253;

/// `spec.subdomain`: a DNS subdomain (letters of either case, as the API
/// schema's pattern allows; step 1 folds case).
pub(super) fn check_subdomain(subdomain: &str, errs: &mut Errors) {
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
