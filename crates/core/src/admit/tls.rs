//! Step 4 of admission: TLS material (`ExtendedValidationFailed`).
//!
//! The question answered here is "will HAProxy load this, and will clients
//! be able to build the chain?", answered with OpenSSL itself (the `openssl`
//! crate links the same system libssl as Debian's HAProxy). What is
//! refused, and why:
//! - passthrough with any certificate field or with policy `Allow`; edge
//!   with a destination CA (also refused by the API step; repeated here so
//!   this function is safe on its own);
//! - a field that is not clean PEM of the right kinds, naming the block
//!   found: `certificate` holds CERTIFICATE blocks and optionally private
//!   keys (OpenShift allows them there); `key` holds private keys (PKCS#1,
//!   SEC1 with or without `EC PARAMETERS`, PKCS#8, and an EC key under a
//!   `PRIVATE KEY` or `ECDSA PRIVATE KEY` label, read as the EC key it is,
//!   Red Hat bug 1723400); the CA fields hold CERTIFICATE blocks.
//!   Explanatory text before a block is allowed (RFC 7468), text after the
//!   last block is not (see `tls/pem.rs`). As the OpenShift router does, a
//!   block whose END line is missing, malformed or names another label is
//!   dropped (a warning), and so is `EC PARAMETERS`, even empty;
//! - encrypted private keys (HAProxy would ask for a passphrase);
//! - a certificate without a key (a key without a certificate is accepted
//!   and unused, with a warning, as OpenShift accepts it; of several keys
//!   the first, the certificate field's first, is used and the others are
//!   named in a warning);
//! - a key that does not match the leaf (the first certificate), by public
//!   key (what HAProxy checks) and by a probe signature (a damaged private
//!   half would load and then fail every handshake);
//! - keys below OpenSSL security level 2 (RSA < 2048 bits, EC < 224 bits)
//!   anywhere HAProxy loads them (key, chain, CA), and key types that cannot
//!   sign (X25519, DH) or that no TLS 1.3 client accepts (DSA);
//! - CA-signed certificates (not self-signed in OpenSSL's sense) whose
//!   signature uses SHA-1 or MD5, in any field (self-signed roots and leaves
//!   may, as OpenSSL exempts them);
//! - a `certificate` chain that is not "leaf, then each issuer in turn"
//!   (out of order or unrelated certificates: HAProxy serves the chain as
//!   given, and clients that do not reorder fail);
//! - a chain that does not verify against `caCertificate` (time checks off,
//!   TLS server purpose on, the given CA certificates are the only trust
//!   anchors). Without `caCertificate`, the chain is verified up to its own
//!   last certificate, but as the OpenShift router ignores verification
//!   errors without a CA, a failure there is a warning, not a rejection (a
//!   leaf whose issuer is not given at all verifies: OpenShift accepts
//!   certificates of public CAs it does not know).
//!
//! Warnings (admitted): any certificate expired or not yet valid, a leaf
//! that does not name the host (`*.<domain>` for wildcard Routes), a
//! `caCertificate` without a certificate of the Route's own, destination CA
//! certificates that HAProxy's verification will refuse.
//!
//! Output is re-encoded from the parsed objects: the key as PKCS#8 (the one
//! format every key type has; HAProxy 2.6 loads it, `EC PARAMETERS` dropped),
//! certificates as plain CERTIFICATE blocks.
//!
//! Time: only the warnings depend on "now"; [`check_tls_at`] takes it as an
//! argument (the core never reads the clock).
//!
//! Cache: [`TlsCheckCache::check`] answers from a cache the caller owns,
//! keyed by the SHA-256 of its inputs (see `tls/cache.rs`), so a warm
//! re-admission of the same Routes parses no certificate;
//! [`check_tls_at`] always checks. Both give the same results.

mod cache;
mod chain;
mod coverage;
mod pem;
mod pkcs8;
mod time;

#[cfg(test)]
mod tests;

use std::fmt;

use openssl::ec::EcKey;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::X509;

pub use self::cache::{CacheStats, TlsCheckCache, MAX_ENTRIES as CACHE_MAX_ENTRIES};
use self::chain::OrderError;
use self::pem::Block;
use super::route::{InsecurePolicy, RouteHost, RouteTls, ServingCert, Termination};
use super::validation::ValidatedTls;
use super::verdict::{Reason, Rejection};

/// A Route's TLS settings after the certificate checks, plus warnings.
#[derive(Clone, Debug)]
pub struct TlsCheck {
    pub tls: RouteTls,
    pub warnings: Vec<String>,
    /// The closed range of "now" (seconds since the epoch) over which this
    /// result, warnings included, stays the same: a caller may reuse it for
    /// any time inside.
    pub stable: (i64, i64),
}

/// A warning of the check, worded when "now" is known.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Note {
    /// A warning that does not depend on the clock.
    Text(String),
    /// Expired / not yet valid, decided at [`Analysis::finish`].
    Validity {
        field: Field,
        label: String,
        not_before: Option<i64>,
        not_after: Option<i64>,
    },
}

/// The clock-independent outcome of a successful check (what the cache keeps).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Analysis {
    tls: RouteTls,
    notes: Vec<Note>,
}

impl Analysis {
    /// The check's result at `now_unix`: notes worded in order.
    fn finish(&self, now_unix: i64) -> TlsCheck {
        let mut warnings = Vec::new();
        let (mut from, mut to) = (i64::MIN, i64::MAX);
        for note in &self.notes {
            match note {
                Note::Text(text) => warnings.push(text.clone()),
                Note::Validity {
                    field,
                    label,
                    not_before,
                    not_after,
                } => {
                    if let Some(not_after) = *not_after {
                        // Expired from not_after + 1 on.
                        if not_after < now_unix {
                            from = from.max(not_after.saturating_add(1));
                        } else {
                            to = to.min(not_after);
                        }
                        if not_after < now_unix {
                            warnings.push(format!(
                                "{}: {label} expired at {}",
                                field.path(),
                                time::rfc3339(not_after)
                            ));
                        }
                    }
                    if let Some(not_before) = *not_before {
                        // Not yet valid until not_before - 1.
                        if not_before > now_unix {
                            to = to.min(not_before.saturating_sub(1));
                        } else {
                            from = from.max(not_before);
                        }
                        if not_before > now_unix {
                            warnings.push(format!(
                                "{}: {label} is not yet valid (valid from {})",
                                field.path(),
                                time::rfc3339(not_before)
                            ));
                        }
                    }
                }
            }
        }
        TlsCheck {
            tls: self.tls.clone(),
            warnings,
            stable: (from, to),
        }
    }
}

/// Check one Route's TLS material at `now_unix` (seconds since the Unix
/// epoch; only expiry warnings depend on it). Every certificate is parsed
/// and checked; [`TlsCheckCache::check`] gives the same result from a
/// cache.
pub fn check_tls_at(
    host: &RouteHost,
    tls: &ValidatedTls,
    now_unix: i64,
) -> Result<TlsCheck, Rejection> {
    analyze(host, tls).map(|analysis| analysis.finish(now_unix))
}

/// The clock-independent part of the check: the verdict and the warnings,
/// with certificate validity kept as times so [`Analysis::finish`] can
/// word the expiry warnings for any "now".
fn analyze(host: &RouteHost, tls: &ValidatedTls) -> Result<Analysis, Rejection> {
    let certificate = present(&tls.certificate);
    let key = present(&tls.key);
    let ca_certificate = present(&tls.ca_certificate);
    let destination_ca = present(&tls.destination_ca_certificate);
    let mut warnings: Vec<Note> = Vec::new();

    match tls.termination {
        Termination::Passthrough => {
            for (field, value) in [
                (Field::Certificate, certificate),
                (Field::Key, key),
                (Field::CaCertificate, ca_certificate),
                (Field::DestinationCaCertificate, destination_ca),
            ] {
                if value.is_some() {
                    return Err(
                        field.reject("passthrough termination does not support certificates")
                    );
                }
            }
            if tls.insecure_policy == InsecurePolicy::Allow {
                return Err(Rejection::new(
                    Reason::ExtendedValidationFailed,
                    "spec.tls.insecureEdgeTerminationPolicy: Allow is not supported with \
                     passthrough termination (use None or Redirect)",
                ));
            }
            return Ok(Analysis {
                tls: RouteTls {
                    termination: tls.termination,
                    insecure_policy: tls.insecure_policy,
                    serving: None,
                    destination_ca_pem: None,
                },
                notes: warnings,
            });
        }
        Termination::Edge if destination_ca.is_some() => {
            return Err(Field::DestinationCaCertificate
                .reject("edge termination does not support destination certificates"));
        }
        Termination::Edge | Termination::Reencrypt => {}
    }

    for (field, value) in [
        (Field::Certificate, certificate),
        (Field::Key, key),
        (Field::CaCertificate, ca_certificate),
        (Field::DestinationCaCertificate, destination_ca),
    ] {
        check_field_size(field, value)?;
    }
    if let (Some(cert_text), Some(key_text)) = (certificate, key) {
        check_swapped(cert_text, key_text)?;
    }
    let cert_field = certificate
        .map(|text| parse_certificate_field(text, Field::Certificate, true, &mut warnings))
        .transpose()?;
    let key_field = key
        .map(|text| parse_key_field(text, &mut warnings))
        .transpose()?
        .unwrap_or_default();
    let cas = ca_certificate
        .map(|text| parse_certificate_field(text, Field::CaCertificate, false, &mut warnings))
        .transpose()?
        .map(|parsed| parsed.certs);
    let destination_cas = destination_ca
        .map(|text| {
            parse_certificate_field(text, Field::DestinationCaCertificate, false, &mut warnings)
        })
        .transpose()?
        .map(|parsed| parsed.certs);

    // Which certificate and key the Route brings, if any. Keys in the
    // certificate field come first (OpenShift moves them to the key field,
    // in front of what it holds); the first key is the one used.
    let (certs, mut keys) = match cert_field {
        Some(CertField { certs, keys }) => (certs, keys),
        None => (Vec::new(), Vec::new()),
    };
    keys.extend(key_field);
    let private_key = first_private_key(keys, &mut warnings);
    let serving = match (certs.is_empty(), private_key) {
        (true, None) => None,
        (true, Some(key)) => {
            // OpenShift accepts a key without a certificate; it is unused.
            warnings.push(Note::Text(format!(
                "{}: ignored: the Route has no certificate of its own (spec.tls.certificate is \
                 empty), so the router's default certificate is served",
                key.field.path()
            )));
            None
        }
        (false, None) => {
            return Err(Field::Key.reject(
                "the certificate has no private key (spec.tls.key is empty and \
                 spec.tls.certificate holds no private key)",
            ));
        }
        (false, Some(private_key)) => Some((certs, private_key)),
    };

    // Signature digests: every field, as OpenShift checks them.
    for (field, list) in [
        (Field::Certificate, serving.as_ref().map(|(certs, _)| certs)),
        (Field::CaCertificate, cas.as_ref()),
        (Field::DestinationCaCertificate, destination_cas.as_ref()),
    ] {
        if let Some(list) = list {
            check_signature_digests(field, list)?;
        }
    }

    let serving = match serving {
        Some((certs, private_key)) => Some(check_serving(
            host,
            certs,
            private_key,
            cas.as_deref(),
            &mut warnings,
        )?),
        None => {
            if cas.is_some() {
                warnings.push(Note::Text(format!(
                    "{}: ignored: the Route has no certificate of its own, so the router's \
                     default certificate is served",
                    Field::CaCertificate.path()
                )));
            }
            None
        }
    };

    let destination_ca_pem = match destination_cas {
        Some(list) => {
            destination_ca_warnings(&list, &mut warnings);
            Some(to_pem(&list).map_err(|e| Field::DestinationCaCertificate.internal(e))?)
        }
        None => None,
    };

    Ok(Analysis {
        tls: RouteTls {
            termination: tls.termination,
            insecure_policy: tls.insecure_policy,
            serving,
            destination_ca_pem,
        },
        notes: warnings,
    })
}

/// The Route's own certificate: key, chain and CA checks; the output form.
fn check_serving(
    host: &RouteHost,
    certs: Vec<X509>,
    private_key: ParsedKey,
    cas: Option<&[X509]>,
    warnings: &mut Vec<Note>,
) -> Result<ServingCert, Rejection> {
    let leaf = &certs[0];
    let key_field = private_key.field;
    let key = &private_key.key;

    // The key matches the leaf.
    let leaf_public = leaf
        .public_key()
        .map_err(|e| Field::Certificate.internal(e))?;
    if !key.public_eq(&leaf_public) {
        let later = certs
            .iter()
            .skip(1)
            .position(|c| c.public_key().is_ok_and(|p| key.public_eq(&p)));
        let message = match (key_field, later) {
            (Field::Key, None) => {
                "the private key does not match the certificate's public key".to_string()
            }
            (_, None) => {
                "the private key it holds does not match the certificate's public key".to_string()
            }
            (_, Some(i)) => format!(
                "the private key does not match the first certificate ({}) but certificate {} \
                 ({}); the certificate for the key must come first",
                chain::describe(leaf),
                i + 2,
                chain::describe(&certs[i + 1]),
            ),
        };
        return Err(key_field.reject(message));
    }
    if !chain::signs_for(key, &leaf_public) {
        return Err(key_field.reject(
            "the private key is damaged: a signature made with it does not verify with the \
             certificate's public key",
        ));
    }

    // Key strength of everything HAProxy loads: the chain and the CA.
    check_key_strength(Field::Certificate, &certs)?;
    if let Some(cas) = cas {
        check_key_strength(Field::CaCertificate, cas)?;
    }

    // The chain as given: leaf, then each issuer in turn.
    if let Err(error) = chain::check_order(&certs) {
        return Err(Field::Certificate.reject(order_message(&certs, &error)));
    }

    // Verification: against the CA field, else up to the chain's own top.
    let intermediates = &certs[1..];
    let result = match cas {
        Some(cas) => chain::verify(leaf, intermediates, cas, true),
        None => {
            let top = certs.last().map(|c| vec![c.clone()]).unwrap_or_default();
            chain::verify(leaf, intermediates, &top, false)
        }
    };
    if let Err(error) = result {
        let mut message = match cas {
            Some(_) => format!(
                "the certificate chain does not verify against spec.tls.caCertificate: {}",
                error.reason
            ),
            None => format!("the certificate chain does not verify: {}", error.reason),
        };
        if let Some(at) = &error.at {
            message.push_str(&format!(" (at {at}"));
            if let Some(issuer) = &error.issuer {
                message.push_str(&format!(", issued by {issuer}"));
            }
            message.push(')');
        }
        if error.reason.contains("local issuer") {
            message.push_str(
                "; add the missing intermediate certificates to spec.tls.certificate after the \
                 leaf, or the issuing CA to spec.tls.caCertificate",
            );
        }
        if cas.is_some() {
            return Err(Field::Certificate.reject(message));
        }
        // Without a CA the OpenShift router ignores verification errors
        // (e.g. a PKCS#12 export whose chain does not verify); HAProxy
        // loads such a chain, so it is admitted with the reason as a warning.
        warnings.push(Note::Text(format!(
            "{}: {message}; admitted, as spec.tls.caCertificate is empty",
            Field::Certificate.path()
        )));
    }

    // Warnings.
    for (i, cert) in certs.iter().enumerate() {
        let label = if i == 0 {
            "certificate".to_string()
        } else {
            format!("certificate {} ({})", i + 1, chain::describe(cert))
        };
        validity_warnings(Field::Certificate, &label, cert, warnings);
    }
    if let Some(cas) = cas {
        for (i, cert) in cas.iter().enumerate() {
            let label = format!("certificate {} ({})", i + 1, chain::describe(cert));
            validity_warnings(Field::CaCertificate, &label, cert, warnings);
        }
    }
    if let Some(warning) = coverage::coverage_warning(leaf, host) {
        warnings.push(Note::Text(warning));
    }

    let key_pem = key
        .private_key_to_pem_pkcs8()
        .map_err(|e| key_field.internal(e))
        .and_then(|pem| String::from_utf8(pem).map_err(|e| key_field.internal(e)))?;
    let leaf_der = leaf.to_der().map_err(|e| Field::Certificate.internal(e))?;
    let not_after_unix = time::unix_seconds(leaf.not_after()).ok_or_else(|| {
        Field::Certificate.reject("the certificate's notAfter time is unreadable")
    })?;
    // Shared: the check cache's result and every admitted Route with the
    // same material hold one copy.
    Ok(ServingCert {
        key_pem: key_pem.into(),
        chain_pem: to_pem(&certs)
            .map_err(|e| Field::Certificate.internal(e))?
            .into(),
        ca_pem: cas
            .map(to_pem)
            .transpose()
            .map_err(|e| Field::CaCertificate.internal(e))?
            .map(Into::into),
        leaf_sha256: openssl::sha::sha256(&leaf_der),
        not_after_unix,
        wildcard_leaf: coverage::is_wildcard_certificate(leaf),
    })
}

/// The TLS fields, for messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Certificate,
    Key,
    CaCertificate,
    DestinationCaCertificate,
}

impl Field {
    fn path(self) -> &'static str {
        match self {
            Field::Certificate => "spec.tls.certificate",
            Field::Key => "spec.tls.key",
            Field::CaCertificate => "spec.tls.caCertificate",
            Field::DestinationCaCertificate => "spec.tls.destinationCACertificate",
        }
    }

    fn reject(self, message: impl fmt::Display) -> Rejection {
        Rejection::new(
            Reason::ExtendedValidationFailed,
            format!("{}: {message}", self.path()),
        )
    }

    /// OpenSSL failing on input that already parsed (should not happen).
    fn internal(self, error: impl fmt::Display) -> Rejection {
        self.reject(format_args!("cannot be processed: {error}"))
    }
}

/// At most this many CERTIFICATE blocks in one PEM field (SECURITY.md,
/// "Bounds"). A real chain is a leaf and a few intermediates, a CA bundle a
/// few roots (two during a rotation); every certificate is parsed at
/// admission, written to the tree and loaded by every `haproxy -c` and
/// reload (a chain of 20,000 copies: render 6.9 s, `haproxy -c` 8.2 s).
pub const MAX_CERTIFICATES_PER_FIELD: usize = 10;

/// At most this many bytes in one PEM field, explanatory text included:
/// ten certificates of the largest RSA keys HAProxy loads (16384 bits,
/// about 5 KiB of PEM each) with `openssl x509 -text` output in front of
/// each fit several times over; it is the API server's budget for all of a
/// Route's annotations.
pub const MAX_PEM_FIELD_BYTES: usize = 256 * 1024;

/// A field over [`MAX_PEM_FIELD_BYTES`] is refused before it is read.
fn check_field_size(field: Field, value: Option<&str>) -> Result<(), Rejection> {
    match value {
        Some(text) if text.len() > MAX_PEM_FIELD_BYTES => Err(field.reject(format!(
            "too long: at most {MAX_PEM_FIELD_BYTES} bytes per PEM field \
             (MAX_PEM_FIELD_BYTES), this one has {}",
            text.len()
        ))),
        _ => Ok(()),
    }
}

/// A field's text, unless empty or whitespace only (= absent).
fn present(value: &Option<std::sync::Arc<str>>) -> Option<&str> {
    value.as_deref().filter(|text| !text.trim().is_empty())
}

/// `ECDSA PRIVATE KEY` is no standard label, but tools write it for SEC1 EC
/// keys and the OpenShift router reads it (Red Hat bug 1723400).
const PRIVATE_KEY_LABELS: [&str; 4] = [
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "EC PRIVATE KEY",
    "ECDSA PRIVATE KEY",
];

fn is_private_key_label(label: &str) -> bool {
    PRIVATE_KEY_LABELS.contains(&label)
}

fn is_encrypted_key(block: &Block) -> bool {
    block.label == "ENCRYPTED PRIVATE KEY"
        || (block.label.ends_with("PRIVATE KEY") && block.is_legacy_encrypted())
}

/// Block types people paste by mistake, with what they are.
fn label_hint(label: &str) -> &'static str {
    match label {
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => {
            " (a certificate signing request, not a certificate: use the certificate the CA issued)"
        }
        "PUBLIC KEY" | "RSA PUBLIC KEY" => " (a public key, not a certificate or private key)",
        "TRUSTED CERTIFICATE" => {
            " (OpenSSL's trusted-certificate form: use a plain CERTIFICATE block)"
        }
        "X509 CRL" => " (a certificate revocation list)",
        "PKCS7" | "CMS" => " (a PKCS#7 bundle: extract the certificates as CERTIFICATE blocks)",
        "DSA PRIVATE KEY" => {
            " (DSA keys are not usable for TLS 1.3 servers: use RSA, ECDSA or Ed25519)"
        }
        _ => "",
    }
}

/// The field's well-formed blocks; each block dropped for a bad END line
/// becomes a warning.
fn scan(field: Field, text: &str, notes: &mut Vec<Note>) -> Result<pem::Scanned, Rejection> {
    let scanned = pem::scan(text).map_err(|e| field.reject(e))?;
    for dropped in &scanned.dropped {
        notes.push(Note::Text(format!(
            "{}: {dropped}; the block is dropped (the OpenShift router drops it too)",
            field.path()
        )));
    }
    Ok(scanned)
}

const ENCRYPTED_KEY_MESSAGE: &str =
    "the private key is encrypted; HAProxy cannot load it without a passphrase, so give it \
     unencrypted (e.g. `openssl pkey -in key.pem -out plain.pem`)";

/// Certificate and key fields exchanged: a common paste error.
fn check_swapped(cert_text: &str, key_text: &str) -> Result<(), Rejection> {
    let (Ok(cert_blocks), Ok(key_blocks)) = (pem::scan(cert_text), pem::scan(key_text)) else {
        return Ok(());
    };
    let (cert_blocks, key_blocks) = (cert_blocks.blocks, key_blocks.blocks);
    let cert_has_cert = cert_blocks.iter().any(|b| b.label == "CERTIFICATE");
    let cert_has_key = cert_blocks.iter().any(|b| is_private_key_label(&b.label));
    let key_has_cert = key_blocks.iter().any(|b| b.label == "CERTIFICATE");
    if !cert_has_cert && cert_has_key && key_has_cert {
        return Err(Field::Certificate.reject(
            "holds a private key and spec.tls.key holds a certificate; the two fields look swapped",
        ));
    }
    Ok(())
}

/// A parsed private key and the field it came from.
struct ParsedKey {
    key: PKey<Private>,
    field: Field,
}

/// A parsed certificate-type field.
struct CertField {
    certs: Vec<X509>,
    keys: Vec<ParsedKey>,
}

/// `certificate` (CERTIFICATE blocks, optionally private keys: OpenShift
/// moves them to the key) or a CA field (CERTIFICATE blocks only).
fn parse_certificate_field(
    text: &str,
    field: Field,
    allow_key: bool,
    notes: &mut Vec<Note>,
) -> Result<CertField, Rejection> {
    let mut certs = Vec::new();
    let mut keys = Vec::new();
    let scanned = scan(field, text, notes)?;
    // Counted before any is parsed: the cost is in parsing.
    let count = scanned
        .blocks
        .iter()
        .filter(|b| b.label == "CERTIFICATE")
        .count();
    if count > MAX_CERTIFICATES_PER_FIELD {
        return Err(field.reject(format!(
            "holds {count} certificates; at most {MAX_CERTIFICATES_PER_FIELD} are allowed per \
             PEM field (MAX_CERTIFICATES_PER_FIELD): a chain is the leaf and its \
             intermediates, a CA bundle the CAs it needs"
        )));
    }
    for block in scanned.blocks {
        let label = block.label.as_str();
        if label == "CERTIFICATE" {
            certs.push(parse_certificate(field, &block)?);
        } else if allow_key && is_encrypted_key(&block) {
            return Err(field.reject(ENCRYPTED_KEY_MESSAGE));
        } else if allow_key && is_private_key_label(label) {
            keys.push(parse_private_key(field, &block, notes)?);
        } else if allow_key && label == "EC PARAMETERS" {
            // Written by `openssl ecparam -genkey`; the key names its curve.
        } else {
            let expected = if allow_key {
                "this field holds CERTIFICATE blocks (and optionally the private key)"
            } else {
                "this field holds only CERTIFICATE blocks"
            };
            return Err(field.reject(format!(
                "unexpected {label} block (block {}){}; {expected}",
                block.index,
                label_hint(label)
            )));
        }
    }
    if certs.is_empty() {
        return Err(match scanned.dropped.first() {
            Some(dropped) => field.reject(format!("holds no CERTIFICATE block ({dropped})")),
            None => field.reject("holds no CERTIFICATE block"),
        });
    }
    Ok(CertField { certs, keys })
}

/// `key`: private keys, in order (the first is the one used), optionally
/// with `EC PARAMETERS` (dropped, even when empty: the key names its
/// curve). No key at all (only dropped blocks) is an absent key.
fn parse_key_field(text: &str, notes: &mut Vec<Note>) -> Result<Vec<ParsedKey>, Rejection> {
    let field = Field::Key;
    let mut keys = Vec::new();
    for block in scan(field, text, notes)?.blocks {
        let label = block.label.as_str();
        if is_encrypted_key(&block) {
            return Err(field.reject(ENCRYPTED_KEY_MESSAGE));
        } else if is_private_key_label(label) {
            keys.push(parse_private_key(field, &block, notes)?);
        } else if label == "EC PARAMETERS" {
            // Dropped: the key names its curve.
        } else {
            let hint = match label {
                "CERTIFICATE" => " (certificates belong in spec.tls.certificate)",
                other => label_hint(other),
            };
            return Err(field.reject(format!(
                "unexpected {label} block (block {}){hint}; this field holds only the private key",
                block.index
            )));
        }
    }
    Ok(keys)
}

/// The one key used: the first of the certificate field's keys, then the
/// key field's (OpenShift's order). Later keys equal to it are duplicates;
/// others are ignored with a warning naming where they are.
fn first_private_key(keys: Vec<ParsedKey>, notes: &mut Vec<Note>) -> Option<ParsedKey> {
    let mut keys = keys.into_iter();
    let first = keys.next()?;
    for other in keys {
        if !same_private_key(&first.key, &other.key) {
            notes.push(Note::Text(format!(
                "{}: ignored: a second private key ({}); the first private key, in {}, is the one used",
                other.field.path(),
                chain::key_description(&other.key),
                first.field.path()
            )));
        }
    }
    Some(first)
}

fn parse_certificate(field: Field, block: &Block) -> Result<X509, Rejection> {
    if block.der.is_empty() {
        return Err(field.reject(format!("block {} (CERTIFICATE) is empty", block.index)));
    }
    let cert = X509::from_der(&block.der).map_err(|e| {
        field.reject(format!(
            "block {} (CERTIFICATE) is not a valid X.509 certificate: {}",
            block.index,
            first_error(&e)
        ))
    })?;
    // d2i ignores bytes after the certificate; they are garbage too.
    let used = cert.to_der().map(|der| der.len()).unwrap_or(0);
    if used != block.der.len() {
        return Err(field.reject(format!(
            "block {} (CERTIFICATE) has {} bytes of trailing data after the certificate",
            block.index,
            block.der.len().saturating_sub(used)
        )));
    }
    Ok(cert)
}

fn sec1_ec_key(der: &[u8]) -> Result<PKey<Private>, openssl::error::ErrorStack> {
    EcKey::private_key_from_der(der).and_then(PKey::from_ec_key)
}

fn parse_private_key(
    field: Field,
    block: &Block,
    notes: &mut Vec<Note>,
) -> Result<ParsedKey, Rejection> {
    let invalid = |detail: String| {
        field.reject(format!(
            "block {} ({}) is not a valid private key: {detail}",
            block.index, block.label
        ))
    };
    if block.der.is_empty() {
        return Err(invalid("the block is empty".into()));
    }
    let pkcs8 = |der: &[u8]| match pkcs8::parse(der) {
        Some(key) => Ok(key),
        None => PKey::private_key_from_pkcs8(der),
    };
    let key = match block.label.as_str() {
        "RSA PRIVATE KEY" => Rsa::private_key_from_der(&block.der).and_then(PKey::from_rsa),
        "EC PRIVATE KEY" => sec1_ec_key(&block.der),
        // Not a standard label: an EC key (SEC1) by the tools that write it.
        "ECDSA PRIVATE KEY" => {
            let key = sec1_ec_key(&block.der).or_else(|_| pkcs8(&block.der));
            if key.is_ok() {
                notes.push(Note::Text(format!(
                    "{}: block {} has the non-standard label ECDSA PRIVATE KEY; it is read as \
                     the EC key it holds",
                    field.path(),
                    block.index
                )));
            }
            key
        }
        _ => match pkcs8(&block.der) {
            Ok(key) => Ok(key),
            // An EC key (SEC1) under the PKCS#8 label (Red Hat bug 1723400):
            // the OpenShift router rewrites it into a proper EC key, and so
            // does the output here (it is re-encoded as PKCS#8).
            Err(error) => match sec1_ec_key(&block.der) {
                Ok(key) => {
                    notes.push(Note::Text(format!(
                        "{}: block {} is an EC private key (SEC1) under the label {}; it is read as the EC key it is",
                        field.path(),
                        block.index,
                        block.label
                    )));
                    Ok(key)
                }
                Err(_) => Err(error),
            },
        },
    }
    .map_err(|e| invalid(first_error(&e)))?;

    let id = key.id();
    if !chain::is_signing_key_type(id) {
        return Err(field.reject(format!(
            "the private key is a {}, which the router does not support for TLS certificates: use \
             RSA, ECDSA or Ed25519",
            chain::key_description(&key)
        )));
    }
    if let Some(weak) = chain::weak_key(&key) {
        return Err(field.reject(format!(
            "the private key ({weak}) is too weak for HAProxy's OpenSSL (security level 2 needs \
             RSA of at least 2048 bits or ECDSA on P-256 or stronger)"
        )));
    }
    Ok(ParsedKey { key, field })
}

fn same_private_key(a: &PKey<Private>, b: &PKey<Private>) -> bool {
    match (a.private_key_to_pkcs8(), b.private_key_to_pkcs8()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The first OpenSSL reason, without the error-stack noise.
fn first_error(error: &openssl::error::ErrorStack) -> String {
    error
        .errors()
        .first()
        .and_then(|e| e.reason().map(str::to_string))
        .unwrap_or_else(|| error.to_string())
}

fn check_signature_digests(field: Field, certs: &[X509]) -> Result<(), Rejection> {
    for (i, cert) in certs.iter().enumerate() {
        if chain::is_self_signed(cert) {
            continue;
        }
        if let Some(digest) = chain::weak_signature_digest(cert) {
            return Err(field.reject(format!(
                "certificate {} ({}) is CA-signed with {digest} ({}); the router does not \
                 support CA-signed certificates using {digest}, reissue it with SHA-256 or better",
                i + 1,
                chain::describe(cert),
                chain::signature_algorithm_name(cert),
            )));
        }
    }
    Ok(())
}

fn check_key_strength(field: Field, certs: &[X509]) -> Result<(), Rejection> {
    for (i, cert) in certs.iter().enumerate() {
        let key = cert.public_key().map_err(|e| {
            field.reject(format!(
                "certificate {} ({}) has an unreadable public key: {}",
                i + 1,
                chain::describe(cert),
                first_error(&e)
            ))
        })?;
        if let Some(weak) = chain::weak_key(&key) {
            return Err(field.reject(format!(
                "certificate {} ({}) has a key that is too weak for HAProxy's OpenSSL ({weak}; \
                 security level 2 needs RSA of at least 2048 bits or ECDSA on P-256 or stronger)",
                i + 1,
                chain::describe(cert),
            )));
        }
    }
    Ok(())
}

fn order_message(certs: &[X509], error: &OrderError) -> String {
    match *error {
        OrderError::OutOfOrder { child, issuer } => format!(
            "the certificates are out of order: certificate {child} ({}) is issued by \
             certificate {issuer} ({}), which must directly follow it; list the leaf first, \
             then each issuer in turn",
            chain::describe(&certs[child - 1]),
            chain::describe(&certs[issuer - 1]),
        ),
        OrderError::Unrelated { child } => format!(
            "certificate {} ({}) is not the issuer of certificate {child} ({}, issued by {}); \
             each certificate must be followed by its issuer",
            child + 1,
            chain::describe(&certs[child]),
            chain::describe(&certs[child - 1]),
            chain::name_string(certs[child - 1].issuer_name()),
        ),
    }
}

/// Expired / not yet valid, as warnings worded by [`Analysis::finish`].
/// `label` is "certificate" for the leaf, "certificate N (CN=...)" for
/// others.
fn validity_warnings(field: Field, label: &str, cert: &X509, warnings: &mut Vec<Note>) {
    warnings.push(Note::Validity {
        field,
        label: label.to_string(),
        not_before: time::unix_seconds(cert.not_before()),
        not_after: time::unix_seconds(cert.not_after()),
    });
}

/// Destination CAs are only used to verify servers at run time, so problems
/// there are warnings: HAProxy starts, but its verification would refuse.
fn destination_ca_warnings(cas: &[X509], warnings: &mut Vec<Note>) {
    let field = Field::DestinationCaCertificate;
    for (i, cert) in cas.iter().enumerate() {
        let label = format!("certificate {} ({})", i + 1, chain::describe(cert));
        validity_warnings(field, &label, cert, warnings);
        if let Some(weak) = cert.public_key().ok().and_then(|k| chain::weak_key(&k)) {
            warnings.push(Note::Text(format!(
                "{}: {label} has a key that is too weak for OpenSSL security level 2 ({weak}); \
                 HAProxy will fail to verify servers that chain to it",
                field.path()
            )));
        }
    }
}

fn to_pem(certs: &[X509]) -> Result<String, openssl::error::ErrorStack> {
    let mut out = String::new();
    for cert in certs {
        out.push_str(&String::from_utf8_lossy(&cert.to_pem()?));
    }
    Ok(out)
}
