//! Test certificates, generated at test time with the `openssl` crate (the
//! same library HAProxy links), so no key material is ever committed.
//!
//! Every crate's tests use it as `routegen_core::testkit::certs` (feature
//! `testkit`). Test code, so it reads the clock: validity windows are given in seconds relative to *now*, so a test never
//! depends on the clock beyond "generated a moment ago".
//!
//! ```ignore
//! let ca = CertSpec::ca("Test CA").self_signed();
//! let leaf = CertSpec::leaf(&["www.example.com"]).signed_by(&ca);
//! let (cert_pem, key_pem, ca_pem) = (leaf.cert_pem(), leaf.key_pem(), ca.cert_pem());
//! ```

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;
use openssl::symm::Cipher;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509Name, X509NameBuilder, X509Req, X509};

/// One day in seconds, for validity windows.
pub const DAY: i64 = 86_400;

/// Key algorithm of a generated certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A shared RSA-2048 key, generated once per test binary.
    Rsa2048,
    /// A second shared RSA-2048 key, distinct from [`KeyKind::Rsa2048`].
    Rsa2048Other,
    /// A fresh RSA key of the given size (slow above 2048 bits).
    Rsa(u32),
    /// A fresh EC key on P-256 (prime256v1).
    P256,
    /// A fresh EC key on P-384.
    P384,
    /// A fresh EC key on P-521.
    P521,
    /// A fresh EC key on P-192 (prime192v1), too weak for HAProxy.
    P192,
    /// A fresh Ed25519 key.
    Ed25519,
}

/// Signature digest used by the issuer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
    Sha1,
    /// Only with an RSA issuer key.
    Md5,
}

fn shared_rsa(slot: usize) -> PKey<Private> {
    static KEYS: [OnceLock<PKey<Private>>; 2] = [OnceLock::new(), OnceLock::new()];
    KEYS[slot]
        .get_or_init(|| PKey::from_rsa(Rsa::generate(2048).expect("rsa keygen")).expect("pkey"))
        .clone()
}

fn ec_key(curve: Nid) -> PKey<Private> {
    let group = EcGroup::from_curve_name(curve).expect("curve");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec keygen")).expect("pkey")
}

/// Generate (or fetch, for the shared RSA keys) a private key.
pub fn new_key(kind: KeyKind) -> PKey<Private> {
    match kind {
        KeyKind::Rsa2048 => shared_rsa(0),
        KeyKind::Rsa2048Other => shared_rsa(1),
        KeyKind::Rsa(bits) => {
            PKey::from_rsa(Rsa::generate(bits).expect("rsa keygen")).expect("pkey")
        }
        KeyKind::P256 => ec_key(Nid::X9_62_PRIME256V1),
        KeyKind::P384 => ec_key(Nid::SECP384R1),
        KeyKind::P521 => ec_key(Nid::SECP521R1),
        KeyKind::P192 => ec_key(Nid::X9_62_PRIME192V1),
        KeyKind::Ed25519 => PKey::generate_ed25519().expect("ed25519 keygen"),
    }
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// A generated certificate with its private key.
#[derive(Clone)]
pub struct Issued {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Issued {
    /// The certificate as one `CERTIFICATE` block.
    pub fn cert_pem(&self) -> String {
        utf8(self.cert.to_pem().expect("cert pem"))
    }

    /// The key as PKCS#8 (`PRIVATE KEY`).
    pub fn key_pem(&self) -> String {
        utf8(self.key.private_key_to_pem_pkcs8().expect("pkcs8 pem"))
    }

    /// The key in its traditional form: PKCS#1 (`RSA PRIVATE KEY`) or SEC1
    /// (`EC PRIVATE KEY`); PKCS#8 for other key types.
    pub fn key_pem_traditional(&self) -> String {
        match self.key.id() {
            Id::RSA => utf8(self.key.rsa().unwrap().private_key_to_pem().unwrap()),
            Id::EC => utf8(self.key.ec_key().unwrap().private_key_to_pem().unwrap()),
            _ => self.key_pem(),
        }
    }

    /// SEC1 key preceded by an `EC PARAMETERS` block, as `openssl ecparam
    /// -genkey` writes it (EC keys on P-256/P-384/P-521 only).
    pub fn key_pem_with_ec_parameters(&self) -> String {
        let ec = self.key.ec_key().expect("an EC key");
        let params = match ec.group().curve_name() {
            Some(Nid::X9_62_PRIME256V1) => "BggqhkjOPQMBBw==",
            Some(Nid::SECP384R1) => "BgUrgQQAIg==",
            Some(Nid::SECP521R1) => "BgUrgQQAIw==",
            other => panic!("no EC PARAMETERS constant for {other:?}"),
        };
        format!(
            "-----BEGIN EC PARAMETERS-----\n{params}\n-----END EC PARAMETERS-----\n{}",
            utf8(ec.private_key_to_pem().unwrap())
        )
    }

    /// PKCS#8 encrypted with a passphrase (`ENCRYPTED PRIVATE KEY`).
    pub fn key_pem_encrypted_pkcs8(&self) -> String {
        utf8(
            self.key
                .private_key_to_pem_pkcs8_passphrase(Cipher::aes_256_cbc(), b"secret")
                .unwrap(),
        )
    }

    /// Legacy OpenSSL encryption (`Proc-Type: 4,ENCRYPTED` header), RSA or EC.
    pub fn key_pem_encrypted_legacy(&self) -> String {
        let cipher = Cipher::aes_128_cbc();
        match self.key.id() {
            Id::RSA => utf8(
                self.key
                    .rsa()
                    .unwrap()
                    .private_key_to_pem_passphrase(cipher, b"secret")
                    .unwrap(),
            ),
            Id::EC => utf8(
                self.key
                    .ec_key()
                    .unwrap()
                    .private_key_to_pem_passphrase(cipher, b"secret")
                    .unwrap(),
            ),
            other => panic!("no legacy encryption for {other:?}"),
        }
    }

    /// A certificate signing request for this key and subject (`CERTIFICATE
    /// REQUEST`), the classic wrong thing to paste into a certificate field.
    pub fn csr_pem(&self) -> String {
        let mut req = X509Req::builder().unwrap();
        req.set_pubkey(&self.key).unwrap();
        req.set_subject_name(self.cert.subject_name()).unwrap();
        req.sign(&self.key, digest_for(&self.key, Digest::Sha256))
            .unwrap();
        utf8(req.build().to_pem().unwrap())
    }
}

/// Concatenate certificates as one PEM chain, in the given order.
pub fn chain_pem(certs: &[&Issued]) -> String {
    certs.iter().map(|c| c.cert_pem()).collect()
}

/// What to generate: a leaf (server certificate) or a CA.
#[derive(Clone)]
pub struct CertSpec {
    cn: String,
    sans: Vec<String>,
    key: Option<PKey<Private>>,
    key_kind: KeyKind,
    digest: Digest,
    not_before: i64,
    not_after: i64,
    ca: bool,
    server_auth: bool,
}

impl CertSpec {
    /// A server certificate for `sans` (DNS names, or IP addresses), CN =
    /// the first SAN; P-256 key; SHA-256; valid from a day ago for 90 days.
    pub fn leaf(sans: &[&str]) -> Self {
        CertSpec {
            cn: sans.first().copied().unwrap_or("leaf").to_string(),
            sans: sans.iter().map(|s| s.to_string()).collect(),
            key: None,
            key_kind: KeyKind::P256,
            digest: Digest::Sha256,
            not_before: -DAY,
            not_after: 90 * DAY,
            ca: false,
            server_auth: true,
        }
    }

    /// A CA certificate (basicConstraints CA:TRUE, keyCertSign); P-256 key;
    /// SHA-256; valid from a day ago for ten years.
    pub fn ca(cn: &str) -> Self {
        CertSpec {
            cn: cn.to_string(),
            sans: Vec::new(),
            key: None,
            key_kind: KeyKind::P256,
            digest: Digest::Sha256,
            not_before: -DAY,
            not_after: 3650 * DAY,
            ca: true,
            server_auth: false,
        }
    }

    pub fn cn(mut self, cn: &str) -> Self {
        self.cn = cn.to_string();
        self
    }

    /// Key algorithm (ignored when [`CertSpec::with_key`] is used).
    pub fn key(mut self, kind: KeyKind) -> Self {
        self.key_kind = kind;
        self
    }

    /// Use this exact key.
    pub fn with_key(mut self, key: &PKey<Private>) -> Self {
        self.key = Some(key.clone());
        self
    }

    /// Digest the *issuer* signs with (for `self_signed`, this key).
    pub fn digest(mut self, digest: Digest) -> Self {
        self.digest = digest;
        self
    }

    /// Validity window in seconds relative to now (negative = in the past).
    pub fn valid(mut self, not_before: i64, not_after: i64) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// Leave out the serverAuth extended key usage and put clientAuth only.
    pub fn client_auth_only(mut self) -> Self {
        self.server_auth = false;
        self
    }

    /// Issuer = subject, signed with its own key.
    pub fn self_signed(self) -> Issued {
        let key = self.key.clone().unwrap_or_else(|| new_key(self.key_kind));
        let name = name(&self.cn);
        self.build(&key, &name, None, &key)
    }

    /// Signed by `issuer`.
    pub fn signed_by(self, issuer: &Issued) -> Issued {
        let key = self.key.clone().unwrap_or_else(|| new_key(self.key_kind));
        let name = name(&self.cn);
        self.build(&key, &name, Some(&issuer.cert), &issuer.key)
    }

    fn build(
        &self,
        key: &PKey<Private>,
        subject: &X509Name,
        issuer: Option<&X509>,
        signer: &PKey<Private>,
    ) -> Issued {
        let now = now_unix();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(subject).unwrap();
        b.set_issuer_name(issuer.map_or(subject, |i| i.subject_name()))
            .unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&Asn1Time::from_unix(now + self.not_before).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(now + self.not_after).unwrap())
            .unwrap();

        if self.ca {
            b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
                .unwrap();
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .digital_signature()
                    .build()
                    .unwrap(),
            )
            .unwrap();
        } else {
            b.append_extension(BasicConstraints::new().build().unwrap())
                .unwrap();
            let mut ku = KeyUsage::new();
            ku.critical().digital_signature();
            if key.id() == Id::RSA {
                ku.key_encipherment();
            }
            b.append_extension(ku.build().unwrap()).unwrap();
            let mut eku = ExtendedKeyUsage::new();
            if self.server_auth {
                eku.server_auth();
            } else {
                eku.client_auth();
            }
            b.append_extension(eku.build().unwrap()).unwrap();
        }
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(issuer.map(|i| &**i), None))
            .unwrap();
        b.append_extension(ski).unwrap();
        if let Some(issuer) = issuer {
            let aki = AuthorityKeyIdentifier::new()
                .keyid(false)
                .build(&b.x509v3_context(Some(issuer), None))
                .unwrap();
            b.append_extension(aki).unwrap();
        }
        if !self.sans.is_empty() {
            let mut san = SubjectAlternativeName::new();
            for s in &self.sans {
                if s.parse::<std::net::IpAddr>().is_ok() {
                    san.ip(s);
                } else {
                    san.dns(s);
                }
            }
            let ext = san
                .build(&b.x509v3_context(issuer.map(|i| &**i), None))
                .unwrap();
            b.append_extension(ext).unwrap();
        }
        b.sign(signer, digest_for(signer, self.digest)).unwrap();
        Issued {
            cert: b.build(),
            key: key.clone(),
        }
    }
}

/// A self-signed CA (P-256 or the shared RSA-2048 key).
pub fn ca(cn: &str, kind: KeyKind) -> Issued {
    CertSpec::ca(cn).key(kind).self_signed()
}

/// A leaf for `sans`, signed by `issuer` with `digest`, valid from
/// `now + not_before` to `now + not_after` (seconds).
pub fn leaf(
    issuer: &Issued,
    sans: &[&str],
    not_before: i64,
    not_after: i64,
    digest: Digest,
) -> Issued {
    CertSpec::leaf(sans)
        .valid(not_before, not_after)
        .digest(digest)
        .signed_by(issuer)
}

/// A self-signed leaf for `sans` (P-256, SHA-256, valid now).
pub fn self_signed_leaf(sans: &[&str]) -> Issued {
    CertSpec::leaf(sans).self_signed()
}

fn digest_for(signer: &PKey<Private>, digest: Digest) -> MessageDigest {
    if matches!(signer.id(), Id::ED25519 | Id::ED448) {
        return MessageDigest::null();
    }
    match digest {
        Digest::Sha256 => MessageDigest::sha256(),
        Digest::Sha384 => MessageDigest::sha384(),
        Digest::Sha1 => MessageDigest::sha1(),
        Digest::Md5 => MessageDigest::md5(),
    }
}

fn name(cn: &str) -> X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::ORGANIZATIONNAME, "routegen tests")
        .unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(63, MsbOption::MAYBE_ZERO, false).unwrap();
    bn.to_asn1_integer().unwrap()
}

fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("PEM is ASCII")
}
