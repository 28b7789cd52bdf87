//! Certificate properties and chain checks, all answered by OpenSSL itself
//! (the library HAProxy links) so "accepted here" means "loads there".

use std::fmt::Write as _;

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKeyRef, Private};
use openssl::sign::{Signer, Verifier};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{
    X509NameRef, X509PurposeId, X509Ref, X509StoreContext, X509VerifyResult, X509,
};

/// Minimum security strength, in bits, of any key HAProxy loads: OpenSSL
/// security level 2, Debian's default (RSA/DSA >= 2048, EC >= 224 bits).
/// Checked with `haproxy -c` on HAProxy 2.6 + OpenSSL 3.0: an RSA-1024 or
/// P-192 leaf fails "unable to load SSL certificate", an RSA-1024 CA in the
/// chain fails "unable to load chain certificate".
pub(crate) const MIN_SECURITY_BITS: u32 = 112;

/// `CN=www.example.com, O=Example` (OpenSSL short names, subject order).
pub(crate) fn name_string(name: &X509NameRef) -> String {
    let mut out = String::new();
    for entry in name.entries() {
        let key = entry.object().nid().short_name().unwrap_or("?");
        let value = entry.data().to_string().unwrap_or_else(|_| "?".to_string());
        if !out.is_empty() {
            out.push_str(", ");
        }
        let _ = write!(out, "{key}={value}");
    }
    if out.is_empty() {
        out.push_str("empty subject");
    }
    out
}

/// Short description of a certificate for messages: its CN, else its subject.
pub(crate) fn describe(cert: &X509Ref) -> String {
    let subject = cert.subject_name();
    match subject.entries_by_nid(Nid::COMMONNAME).next() {
        Some(cn) => match cn.data().to_string() {
            Ok(cn) => format!("CN={cn}"),
            Err(_) => name_string(subject),
        },
        None => name_string(subject),
    }
}

fn names_equal(a: &X509NameRef, b: &X509NameRef) -> bool {
    matches!(a.try_cmp(b), Ok(std::cmp::Ordering::Equal))
}

/// Self-signed in OpenSSL's sense (`EXFLAG_SS`, what HAProxy's OpenSSL
/// exempts from the signature digest check): issuer equals subject, the
/// authority key id (if any) is the certificate's own key id, and the
/// signature algorithm fits the certificate's own key type. The signature
/// itself is not verified, as OpenSSL does not either.
pub(crate) fn is_self_signed(cert: &X509Ref) -> bool {
    if !names_equal(cert.subject_name(), cert.issuer_name()) {
        return false;
    }
    if let (Some(akid), Some(skid)) = (cert.authority_key_id(), cert.subject_key_id()) {
        if akid.as_slice() != skid.as_slice() {
            return false;
        }
    }
    let Ok(key) = cert.public_key() else {
        return false;
    };
    let sig_nid = cert.signature_algorithm().object().nid();
    match sig_nid.signature_algorithms() {
        Some(algs) => {
            let sig_key = algs.pkey.as_raw();
            let key_id = key.id();
            sig_key == key_id.as_raw()
                || (sig_key == Nid::RSASSAPSS.as_raw() && key_id == Id::RSA)
                || (sig_key == Nid::RSAENCRYPTION.as_raw() && key_id == Id::RSA_PSS)
        }
        None => false,
    }
}

/// The name of a digest HAProxy's OpenSSL refuses in a CA-signed
/// certificate (SHA-1, MD5, MD4, MD2), if the signature uses one.
pub(crate) fn weak_signature_digest(cert: &X509Ref) -> Option<&'static str> {
    let algs = cert
        .signature_algorithm()
        .object()
        .nid()
        .signature_algorithms()?;
    match algs.digest {
        Nid::SHA1 => Some("SHA-1"),
        Nid::MD5 => Some("MD5"),
        Nid::MD4 => Some("MD4"),
        Nid::MD2 => Some("MD2"),
        Nid::MD5_SHA1 => Some("MD5-SHA1"),
        _ => None,
    }
}

/// Name of the certificate's signature algorithm, e.g. `sha1WithRSAEncryption`.
pub(crate) fn signature_algorithm_name(cert: &X509Ref) -> String {
    let obj = cert.signature_algorithm().object();
    obj.nid()
        .long_name()
        .map(str::to_string)
        .unwrap_or_else(|_| obj.to_string())
}

/// `None` when the key is strong enough for HAProxy (security level 2),
/// else a description of the key ("RSA key of 1024 bits").
pub(crate) fn weak_key<T: HasPublic>(key: &PKeyRef<T>) -> Option<String> {
    if key.security_bits() >= MIN_SECURITY_BITS {
        return None;
    }
    Some(key_description(key))
}

/// "RSA key of 2048 bits", "EC key on prime256v1", "ED25519 key".
pub(crate) fn key_description<T: HasPublic>(key: &PKeyRef<T>) -> String {
    match key.id() {
        Id::RSA | Id::RSA_PSS => format!("RSA key of {} bits", key.bits()),
        Id::DSA => format!("DSA key of {} bits", key.bits()),
        Id::EC => {
            let curve = key
                .ec_key()
                .ok()
                .and_then(|ec| ec.group().curve_name())
                .and_then(|nid| nid.short_name().ok())
                .unwrap_or("an unnamed curve");
            format!("EC key on {curve} ({} bits)", key.bits())
        }
        Id::ED25519 => "Ed25519 key".to_string(),
        Id::ED448 => "Ed448 key".to_string(),
        other => format!("key of type {}", key_type_name(other)),
    }
}

fn key_type_name(id: Id) -> String {
    Nid::from_raw(id.as_raw())
        .short_name()
        .map(str::to_string)
        .unwrap_or_else(|_| format!("#{}", id.as_raw()))
}

/// Key types a TLS server certificate can use with HAProxy/OpenSSL 3.0.
pub(crate) fn is_signing_key_type(id: Id) -> bool {
    matches!(id, Id::RSA | Id::RSA_PSS | Id::EC | Id::ED25519 | Id::ED448)
}

/// The private key really is the other half of `public`: a probe signed
/// with it verifies. (Matching public parts, what HAProxy checks, do not
/// prove that the private part is intact.) RSA-PSS keys, whose signing
/// parameters are constrained, are not probed.
pub(crate) fn signs_for<T: HasPublic>(key: &PKeyRef<Private>, public: &PKeyRef<T>) -> bool {
    const PROBE: &[u8] = b"routegen private key consistency probe";
    let result = match key.id() {
        Id::RSA_PSS => return true,
        Id::ED25519 | Id::ED448 => Signer::new_without_digest(key)
            .and_then(|mut signer| signer.sign_oneshot_to_vec(PROBE))
            .and_then(|sig| {
                Verifier::new_without_digest(public)
                    .and_then(|mut verifier| verifier.verify_oneshot(&sig, PROBE))
            }),
        _ => Signer::new(MessageDigest::sha256(), key)
            .and_then(|mut signer| {
                signer.update(PROBE)?;
                signer.sign_to_vec()
            })
            .and_then(|sig| {
                let mut verifier = Verifier::new(MessageDigest::sha256(), public)?;
                verifier.update(PROBE)?;
                verifier.verify(&sig)
            }),
    };
    result.unwrap_or(false)
}

/// `parent` issued `child`: the child's issuer name is the parent's subject
/// and the child's signature verifies with the parent's key.
pub(crate) fn issued_by(child: &X509Ref, parent: &X509Ref) -> bool {
    names_equal(child.issuer_name(), parent.subject_name())
        && parent
            .public_key()
            .and_then(|key| child.verify(&key))
            .unwrap_or(false)
}

/// Why a chain check failed (the message part after the field name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OrderError {
    /// Certificate `child` (1-based) is issued by a later certificate
    /// `issuer`, not by the one right after it.
    OutOfOrder { child: usize, issuer: usize },
    /// Certificate `child + 1` did not issue certificate `child`.
    Unrelated { child: usize },
}

/// Each certificate of the `certificate` field must be followed by its
/// issuer (RFC 8446 §4.4.2, RFC 5246 §7.4.2): HAProxy sends the chain as
/// given, and clients that do not reorder fail on anything else.
pub(crate) fn check_order(certs: &[X509]) -> Result<(), OrderError> {
    for i in 0..certs.len().saturating_sub(1) {
        if issued_by(&certs[i], &certs[i + 1]) {
            continue;
        }
        let later = (i + 2..certs.len()).find(|&j| issued_by(&certs[i], &certs[j]));
        return Err(match later {
            Some(j) => OrderError::OutOfOrder {
                child: i + 1,
                issuer: j + 1,
            },
            None => OrderError::Unrelated { child: i + 1 },
        });
    }
    Ok(())
}

/// A failed OpenSSL verification.
#[derive(Clone, Debug)]
pub(crate) struct VerifyError {
    /// OpenSSL's reason, e.g. "unable to get local issuer certificate".
    pub reason: String,
    /// The certificate the error is about, described.
    pub at: Option<String>,
    /// That certificate's issuer name.
    pub issuer: Option<String>,
}

/// Verify `leaf` with `untrusted` as candidate intermediates against the
/// trust anchors `anchors`, by OpenSSL's X509_verify_cert with:
/// - `NO_CHECK_TIME`: expiry is a warning, not a rejection;
/// - `PARTIAL_CHAIN`: any anchor given (the Route's own CA field, or the top
///   of its own chain) may end the chain, as Go's verifier (OpenShift) lets
///   any certificate of its root pool do; nothing else is trusted;
/// - with `server_purpose`, the chain must allow TLS server use (extended
///   key usage), as OpenShift's verification demands.
pub(crate) fn verify(
    leaf: &X509Ref,
    untrusted: &[X509],
    anchors: &[X509],
    server_purpose: bool,
) -> Result<(), VerifyError> {
    let internal = |e: openssl::error::ErrorStack| VerifyError {
        reason: format!("OpenSSL error: {e}"),
        at: None,
        issuer: None,
    };
    let mut store = X509StoreBuilder::new().map_err(internal)?;
    for anchor in anchors {
        store.add_cert(anchor.clone()).map_err(internal)?;
    }
    store
        .set_flags(X509VerifyFlags::NO_CHECK_TIME | X509VerifyFlags::PARTIAL_CHAIN)
        .map_err(internal)?;
    if server_purpose {
        store
            .set_purpose(X509PurposeId::SSL_SERVER)
            .map_err(internal)?;
    }
    let store = store.build();
    let mut chain = Stack::new().map_err(internal)?;
    for cert in untrusted {
        chain.push(cert.clone()).map_err(internal)?;
    }

    let mut ctx = X509StoreContext::new().map_err(internal)?;
    let outcome = ctx
        .init(&store, leaf, &chain, |c| {
            let ok = c.verify_cert()?;
            if ok {
                return Ok(None);
            }
            let error = c.error();
            let current = c.current_cert();
            Ok(Some(VerifyError {
                reason: if error == X509VerifyResult::OK {
                    "verification failed".to_string()
                } else {
                    error.error_string().to_string()
                },
                at: current.map(describe),
                issuer: current.map(|c| name_string(c.issuer_name())),
            }))
        })
        .map_err(internal)?;
    match outcome {
        None => Ok(()),
        Some(error) => Err(error),
    }
}
