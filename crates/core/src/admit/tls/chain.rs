//! Certificate properties and chain checks, all answered by OpenSSL itself
//! (the library HAProxy links) so "accepted here" means "loads there".

use std::fmt::Write as _;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::EcPoint;
use openssl::error::ErrorStack;
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

/// The private key really is the other half of `public`. (Matching public
/// parts, what HAProxy checks, do not prove that the private part is
/// intact.) For EC and RSA keys the key pair's defining relations are
/// checked first ([`ec_pair_holds`], [`rsa_pair_holds`]: a few big-number
/// operations); when they hold, the answer is yes. Otherwise, and for every
/// other key type, a probe decides: it is signed with the key and must
/// verify with `public`. The verdict is therefore the probe's, only
/// cheaper for intact keys (a probe costs 0.1 ms for P-256 and 0.4-0.7 ms
/// for RSA-2048 in OpenSSL 3.0, most of it provider set-up and RSA
/// blinding). RSA-PSS keys, whose signing parameters are constrained, are
/// not probed.
pub(crate) fn signs_for<T: HasPublic>(key: &PKeyRef<Private>, public: &PKeyRef<T>) -> bool {
    let proven = match key.id() {
        Id::RSA_PSS => return true,
        Id::EC => ec_pair_holds(key, public),
        Id::RSA => rsa_pair_holds(key, public),
        _ => false,
    };
    proven || probe_signs_for(key, public)
}

/// A probe signed with `key` verifies with `public`.
fn probe_signs_for<T: HasPublic>(key: &PKeyRef<Private>, public: &PKeyRef<T>) -> bool {
    const PROBE: &[u8] = b"routegen private key consistency probe";
    let result = match key.id() {
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

/// An EC key pair's defining relation: the private scalar times the
/// curve's generator is `public`'s point, on the same curve. `false` when
/// it does not hold or cannot be checked here (a key held only by an
/// OpenSSL 3 provider has no EC_KEY view).
fn ec_pair_holds<T: HasPublic>(key: &PKeyRef<Private>, public: &PKeyRef<T>) -> bool {
    let holds = || -> Result<bool, ErrorStack> {
        let (key, public) = (key.ec_key()?, public.ec_key()?);
        let group = key.group();
        let same_curve = matches!(
            (group.curve_name(), public.group().curve_name()),
            (Some(a), Some(b)) if a == b
        );
        if !same_curve {
            return Ok(false);
        }
        let mut ctx = BigNumContext::new()?;
        let mut point = EcPoint::new(group)?;
        point.mul_generator2(group, key.private_key(), &mut ctx)?;
        point.eq(group, public.public_key(), &mut ctx)
    };
    holds().unwrap_or(false)
}

/// An RSA key pair's defining relations (two primes; RFC 8017 §3.2, the
/// pairwise checks of NIST SP 800-56B §6.4.1.4.3, without the primality
/// tests of `RSA_check_key`, 40 ms a key): `public`'s modulus and exponent
/// are the key's, n = p·q, e·d ≡ 1 modulo p−1 and q−1, the CRT exponents
/// invert e modulo p−1 and q−1, and q·qInv ≡ 1 mod p. n = p·q with both
/// factors above 1 leaves p and q no choice but n's two primes, so these
/// make the key sign and decrypt correctly with or without CRT. `false`
/// when any fails or cannot be checked (a multi-prime key, whose p·q is
/// not n, goes to the probe).
fn rsa_pair_holds<T: HasPublic>(key: &PKeyRef<Private>, public: &PKeyRef<T>) -> bool {
    let holds = || -> Result<bool, ErrorStack> {
        let (key, public) = (key.rsa()?, public.rsa()?);
        let (Some(p), Some(q), Some(dmp1), Some(dmq1), Some(iqmp)) =
            (key.p(), key.q(), key.dmp1(), key.dmq1(), key.iqmp())
        else {
            return Ok(false);
        };
        let (n, e, d) = (key.n(), key.e(), key.d());
        let one = BigNum::from_u32(1)?;
        if n != public.n() || e != public.e() || p <= &one || q <= &one {
            return Ok(false);
        }
        let mut ctx = BigNumContext::new()?;
        let mut product = BigNum::new()?;
        product.checked_mul(p, q, &mut ctx)?;
        if &product != n {
            return Ok(false);
        }
        // x·y ≡ 1 (mod m)
        let inverts = |x: &BigNumRef, y: &BigNumRef, m: &BigNumRef, ctx: &mut BigNumContext| {
            let mut r = BigNum::new()?;
            r.mod_mul(x, y, m, ctx)?;
            Ok::<bool, ErrorStack>(r == one)
        };
        let mut p1 = p.to_owned()?;
        p1.sub_word(1)?;
        let mut q1 = q.to_owned()?;
        q1.sub_word(1)?;
        Ok(inverts(e, d, &p1, &mut ctx)?
            && inverts(e, d, &q1, &mut ctx)?
            && inverts(e, dmp1, &p1, &mut ctx)?
            && inverts(e, dmq1, &q1, &mut ctx)?
            && inverts(q, iqmp, p, &mut ctx)?)
    };
    holds().unwrap_or(false)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::certs::{CertSpec, Issued, KeyKind};
    use openssl::ec::EcKey;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    fn issued(kind: KeyKind) -> Issued {
        CertSpec::leaf(&["www.example.com"]).key(kind).self_signed()
    }

    /// The fast relations agree with the probe on intact keys of every
    /// curve and on RSA, and other key types go to the probe.
    #[test]
    fn intact_pairs_hold_and_the_probe_agrees() {
        for kind in [KeyKind::P256, KeyKind::P384, KeyKind::P521] {
            let leaf = issued(kind);
            let public = leaf.cert.public_key().unwrap();
            assert!(ec_pair_holds(&leaf.key, &public), "{kind:?}");
            assert!(probe_signs_for(&leaf.key, &public), "{kind:?}");
            assert!(signs_for(&leaf.key, &public), "{kind:?}");
        }
        let leaf = issued(KeyKind::Rsa2048);
        let public = leaf.cert.public_key().unwrap();
        assert!(rsa_pair_holds(&leaf.key, &public));
        assert!(probe_signs_for(&leaf.key, &public));
        let ed = issued(KeyKind::Ed25519);
        let public = ed.cert.public_key().unwrap();
        assert!(!ec_pair_holds(&ed.key, &public) && !rsa_pair_holds(&ed.key, &public));
        assert!(signs_for(&ed.key, &public));
    }

    /// Another pair's public half: neither the relations nor the probe.
    #[test]
    fn mismatched_pairs_fail() {
        let (a, b) = (issued(KeyKind::P256), issued(KeyKind::P256));
        let public = b.cert.public_key().unwrap();
        assert!(!ec_pair_holds(&a.key, &public));
        assert!(!signs_for(&a.key, &public));
        let p384 = issued(KeyKind::P384).cert.public_key().unwrap();
        assert!(!ec_pair_holds(&a.key, &p384));
        let (a, b) = (issued(KeyKind::Rsa2048), issued(KeyKind::Rsa2048Other));
        let public = b.cert.public_key().unwrap();
        assert!(!rsa_pair_holds(&a.key, &public));
        assert!(!signs_for(&a.key, &public));
        let ec_public = issued(KeyKind::P256).cert.public_key().unwrap();
        assert!(!rsa_pair_holds(&a.key, &ec_public));
    }

    /// An EC key whose scalar changed but whose public point did not.
    #[test]
    fn damaged_ec_key_fails() {
        let leaf = issued(KeyKind::P256);
        let ec = leaf.key.ec_key().unwrap();
        let mut scalar = ec.private_key().to_owned().unwrap();
        scalar.add_word(1).unwrap();
        let bad = EcKey::from_private_components(ec.group(), &scalar, ec.public_key()).unwrap();
        let bad = PKey::from_ec_key(bad).unwrap();
        let public = leaf.cert.public_key().unwrap();
        assert!(bad.public_eq(&public));
        assert!(!ec_pair_holds(&bad, &public));
        assert!(!signs_for(&bad, &public));
    }

    /// RSA keys with one component changed: the relations refuse each, and
    /// the probe keeps the verdict it always gave (OpenSSL signs with CRT
    /// and falls back to d when the CRT result does not verify, so a key
    /// is refused when both paths are broken).
    #[test]
    fn damaged_rsa_keys() {
        let leaf = issued(KeyKind::Rsa2048);
        let public = leaf.cert.public_key().unwrap();
        let rsa = leaf.key.rsa().unwrap();
        let bumped = |n: &BigNumRef| {
            let mut n = n.to_owned().unwrap();
            n.add_word(2).unwrap();
            n
        };
        let own = |n: &BigNumRef| n.to_owned().unwrap();
        let build = |d: BigNum, dmp1: BigNum, iqmp: BigNum| {
            let rsa = Rsa::from_private_components(
                own(rsa.n()),
                own(rsa.e()),
                d,
                own(rsa.p().unwrap()),
                own(rsa.q().unwrap()),
                dmp1,
                own(rsa.dmq1().unwrap()),
                iqmp,
            )
            .unwrap();
            PKey::from_rsa(rsa).unwrap()
        };
        let (d, dmp1, iqmp) = (rsa.d(), rsa.dmp1().unwrap(), rsa.iqmp().unwrap());
        // Only d damaged: CRT signing still works.
        let key = build(bumped(d), own(dmp1), own(iqmp));
        assert!(!rsa_pair_holds(&key, &public));
        assert!(signs_for(&key, &public));
        // Only a CRT exponent damaged: OpenSSL falls back to d.
        let key = build(own(d), bumped(dmp1), own(iqmp));
        assert!(!rsa_pair_holds(&key, &public));
        assert!(signs_for(&key, &public));
        // Both: no signature verifies.
        let key = build(bumped(d), bumped(dmp1), own(iqmp));
        assert!(!rsa_pair_holds(&key, &public));
        assert!(!signs_for(&key, &public));
        let key = build(own(d), own(dmp1), bumped(iqmp));
        assert!(!rsa_pair_holds(&key, &public));
    }
}
