//! Table-driven tests of the TLS step, with certificates generated at test
//! time (see [`crate::testkit::certs`]).

use std::sync::OnceLock;

use super::*;
use crate::testkit::certs::{chain_pem, now_unix, CertSpec, Digest, Issued, KeyKind, DAY};

/// Certificates shared by many cases, generated once per test binary.
struct Fixtures {
    /// EC P-256 root CA.
    ca: Issued,
    /// RSA-2048 root CA (for MD5 signatures).
    rsa_ca: Issued,
    /// Intermediate CA signed by `ca`.
    int: Issued,
    /// Second-level intermediate signed by `int`.
    int2: Issued,
    /// `www.example.com` signed by `ca`.
    leaf: Issued,
    /// `www.example.com` signed by `int`.
    leaf_via_int: Issued,
    /// `www.example.com` signed by `int2`.
    leaf_via_int2: Issued,
    /// Unrelated root CA.
    other_ca: Issued,
    /// Self-signed `www.example.com`.
    self_signed: Issued,
}

fn fx() -> &'static Fixtures {
    static FX: OnceLock<Fixtures> = OnceLock::new();
    FX.get_or_init(|| {
        let ca = CertSpec::ca("Test Root CA").self_signed();
        let rsa_ca = CertSpec::ca("Test RSA Root CA")
            .key(KeyKind::Rsa2048Other)
            .self_signed();
        let int = CertSpec::ca("Test Intermediate CA").signed_by(&ca);
        let int2 = CertSpec::ca("Test Intermediate CA 2").signed_by(&int);
        let leaf = CertSpec::leaf(&["www.example.com"]).signed_by(&ca);
        let leaf_via_int = CertSpec::leaf(&["www.example.com"]).signed_by(&int);
        let leaf_via_int2 = CertSpec::leaf(&["www.example.com"]).signed_by(&int2);
        let other_ca = CertSpec::ca("Other Root CA").self_signed();
        let self_signed = CertSpec::leaf(&["www.example.com"]).self_signed();
        Fixtures {
            ca,
            rsa_ca,
            int,
            int2,
            leaf,
            leaf_via_int,
            leaf_via_int2,
            other_ca,
            self_signed,
        }
    })
}

const HOST: &str = "www.example.com";

fn host(name: &str) -> RouteHost {
    RouteHost {
        host: name.into(),
        wildcard: false,
    }
}

fn wildcard_host(name: &str) -> RouteHost {
    RouteHost {
        host: name.into(),
        wildcard: true,
    }
}

fn tls(termination: Termination) -> ValidatedTls {
    ValidatedTls {
        termination,
        insecure_policy: InsecurePolicy::None,
        certificate: None,
        key: None,
        ca_certificate: None,
        destination_ca_certificate: None,
        external_certificate: None,
    }
}

/// Edge TLS with the given fields.
fn edge(cert: Option<String>, key: Option<String>, ca: Option<String>) -> ValidatedTls {
    ValidatedTls {
        certificate: cert.map(Into::into),
        key: key.map(Into::into),
        ca_certificate: ca.map(Into::into),
        ..tls(Termination::Edge)
    }
}

/// Edge TLS serving `cert` (+ `chain`) with its key as PKCS#8.
fn serve(cert: &Issued, chain: &[&Issued], ca: Option<&Issued>) -> ValidatedTls {
    let mut all = vec![cert];
    all.extend_from_slice(chain);
    edge(
        Some(chain_pem(&all)),
        Some(cert.key_pem()),
        ca.map(Issued::cert_pem),
    )
}

enum Want {
    /// Admitted; each listed substring matches one warning, and there are no
    /// other warnings. `serving`: whether a ServingCert is expected.
    Admit {
        serving: bool,
        warnings: &'static [&'static str],
    },
    /// Rejected with `ExtendedValidationFailed` and a message containing this.
    Reject(&'static str),
}

use Want::{Admit, Reject};

const CLEAN: Want = Admit {
    serving: true,
    warnings: &[],
};

struct Case {
    name: &'static str,
    host: RouteHost,
    tls: ValidatedTls,
    want: Want,
}

fn case(name: &'static str, tls: ValidatedTls, want: Want) -> Case {
    Case {
        name,
        host: host(HOST),
        tls,
        want,
    }
}

/// A check's result in comparable form.
fn comparable(result: &Result<TlsCheck, Rejection>) -> Result<(RouteTls, Vec<String>), Rejection> {
    result
        .as_ref()
        .map(|check| (check.tls.clone(), check.warnings.clone()))
        .map_err(Clone::clone)
}

/// The cache changes nothing: cached (first and second call) and uncached
/// results agree, at "now" and at times that change the expiry warnings.
fn cache_problem(c: &Case, now: i64) -> Option<String> {
    let cache = TlsCheckCache::default();
    for at in [now, now - 400 * DAY, now + 40 * 365 * DAY] {
        let uncached = comparable(&check_tls_at(&c.host, &c.tls, at));
        for round in 1..=2 {
            let cached = comparable(&cache.check(&c.host, &c.tls, at));
            if cached != uncached {
                return Some(format!(
                    "cached result (call {round}, now {at}) differs: {cached:?} vs {uncached:?}"
                ));
            }
        }
    }
    None
}

fn run_cases(cases: Vec<Case>) {
    let now = now_unix();
    let mut failures = Vec::new();
    for c in &cases {
        if let Some(problem) = cache_problem(c, now) {
            failures.push(format!("{}: {problem}", c.name));
        }
        let got = check_tls_at(&c.host, &c.tls, now);
        let problem = match (&c.want, &got) {
            (Admit { serving, warnings }, Ok(check)) => {
                let mut problem = None;
                if check.tls.serving.is_some() != *serving {
                    problem = Some(format!(
                        "serving cert present = {}",
                        check.tls.serving.is_some()
                    ));
                }
                let matched = warnings
                    .iter()
                    .all(|w| check.warnings.iter().any(|got| got.contains(w)));
                if !matched || check.warnings.len() != warnings.len() {
                    problem = Some(format!(
                        "warnings {:?}, want {:?}",
                        check.warnings, warnings
                    ));
                }
                problem
            }
            (Admit { .. }, Err(r)) => Some(format!("rejected: {}", r.message)),
            (Reject(want), Ok(check)) => Some(format!(
                "admitted (warnings {:?}), want rejection containing {want:?}",
                check.warnings
            )),
            (Reject(want), Err(r)) => {
                if r.reason != Reason::ExtendedValidationFailed {
                    Some(format!("reason {:?}", r.reason))
                } else if !r.message.contains(want) {
                    Some(format!("message {:?} lacks {want:?}", r.message))
                } else if !r.message.starts_with("spec.tls.") {
                    Some(format!("message {:?} does not name the field", r.message))
                } else {
                    None
                }
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {problem}", c.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn presence_and_field_contents() {
    let f = fx();
    let leaf = &f.leaf;
    let cert_and_key = format!("{}{}", leaf.cert_pem(), leaf.key_pem());
    let key_and_cert = format!("{}{}", leaf.key_pem(), leaf.cert_pem());
    let other_key = CertSpec::leaf(&[HOST]).self_signed();
    run_cases(vec![
        case("valid edge with CA", serve(leaf, &[], Some(&f.ca)), CLEAN),
        case("self-signed", serve(&f.self_signed, &[], None), CLEAN),
        case(
            "CA-signed leaf without CA (public CA not given)",
            serve(leaf, &[], None),
            CLEAN,
        ),
        case(
            "key in certificate field",
            edge(Some(cert_and_key.clone()), None, Some(f.ca.cert_pem())),
            CLEAN,
        ),
        case(
            "key before the certificate in certificate field",
            edge(Some(key_and_cert), None, None),
            CLEAN,
        ),
        case(
            "key in both fields, identical",
            edge(Some(cert_and_key.clone()), Some(leaf.key_pem_traditional()), None),
            CLEAN,
        ),
        case(
            "key in both fields, different",
            edge(Some(cert_and_key), Some(other_key.key_pem()), None),
            // OpenShift: the certificate field's key comes first and is used.
            Admit {
                serving: true,
                warnings: &["spec.tls.key: ignored: a second private key"],
            },
        ),
        case(
            "only key",
            edge(None, Some(leaf.key_pem()), None),
            // OpenShift accepts it; the key is unused.
            Admit {
                serving: false,
                warnings: &["spec.tls.key: ignored: the Route has no certificate of its own"],
            },
        ),
        case(
            "only cert",
            edge(Some(leaf.cert_pem()), None, None),
            Reject("spec.tls.key: the certificate has no private key"),
        ),
        case(
            "whitespace-only fields are absent",
            edge(Some(" \n".into()), Some("\t".into()), Some(String::new())),
            Admit {
                serving: false,
                warnings: &[],
            },
        ),
        case(
            "key mismatch",
            edge(Some(leaf.cert_pem()), Some(other_key.key_pem()), None),
            Reject("spec.tls.key: the private key does not match the certificate's public key"),
        ),
        case(
            "damaged key (public half matches, private half does not)",
            edge(Some(leaf.cert_pem()), Some(damaged_key_pem(leaf)), None),
            Reject("spec.tls.key: the private key is damaged"),
        ),
        case(
            "key matches the second certificate",
            edge(
                Some(chain_pem(&[&f.int, &f.leaf_via_int])),
                Some(f.leaf_via_int.key_pem()),
                None,
            ),
            Reject("the certificate for the key must come first"),
        ),
        case(
            "swapped cert and key",
            edge(Some(leaf.key_pem()), Some(leaf.cert_pem()), None),
            Reject("spec.tls.certificate: holds a private key and spec.tls.key holds a certificate; the two fields look swapped"),
        ),
        case(
            "certificate in key field",
            edge(
                Some(leaf.cert_pem()),
                Some(format!("{}{}", leaf.key_pem(), leaf.cert_pem())),
                None,
            ),
            Reject("spec.tls.key: unexpected CERTIFICATE block (block 2)"),
        ),
        case(
            "two keys in key field",
            edge(
                Some(leaf.cert_pem()),
                Some(format!("{}{}", leaf.key_pem(), other_key.key_pem())),
                None,
            ),
            // OpenShift uses the first key; it matches.
            Admit {
                serving: true,
                warnings: &["spec.tls.key: ignored: a second private key"],
            },
        ),
        case(
            "two keys in key field, the second matches",
            edge(
                Some(leaf.cert_pem()),
                Some(format!("{}{}", other_key.key_pem(), leaf.key_pem())),
                None,
            ),
            Reject("spec.tls.key: the private key does not match the certificate's public key"),
        ),
        case(
            "certificate field without a certificate",
            edge(Some(leaf.key_pem()), None, None),
            Reject("spec.tls.certificate: holds no CERTIFICATE block"),
        ),
        case(
            "CSR in CA field",
            edge(Some(leaf.cert_pem()), Some(leaf.key_pem()), Some(f.ca.csr_pem())),
            Reject("spec.tls.caCertificate: unexpected CERTIFICATE REQUEST block (block 1) (a certificate signing request"),
        ),
        case(
            "CSR in certificate field",
            edge(Some(leaf.csr_pem()), Some(leaf.key_pem()), None),
            Reject("spec.tls.certificate: unexpected CERTIFICATE REQUEST block"),
        ),
        case(
            "private key in CA field",
            edge(
                Some(leaf.cert_pem()),
                Some(leaf.key_pem()),
                Some(format!("{}{}", f.ca.cert_pem(), f.ca.key_pem())),
            ),
            Reject("spec.tls.caCertificate: unexpected PRIVATE KEY block (block 2)"),
        ),
        case(
            "public key in key field",
            edge(
                Some(leaf.cert_pem()),
                Some(String::from_utf8(leaf.key.public_key_to_pem().unwrap()).unwrap()),
                None,
            ),
            Reject("spec.tls.key: unexpected PUBLIC KEY block (block 1)"),
        ),
        case(
            "encrypted PKCS#8 key",
            edge(Some(leaf.cert_pem()), Some(leaf.key_pem_encrypted_pkcs8()), None),
            Reject("spec.tls.key: the private key is encrypted; HAProxy cannot load it without a passphrase"),
        ),
        case(
            "legacy encrypted key (Proc-Type)",
            edge(Some(leaf.cert_pem()), Some(leaf.key_pem_encrypted_legacy()), None),
            Reject("spec.tls.key: the private key is encrypted"),
        ),
        case(
            "encrypted key inside the certificate field",
            edge(
                Some(format!("{}{}", leaf.cert_pem(), leaf.key_pem_encrypted_pkcs8())),
                None,
                None,
            ),
            Reject("spec.tls.certificate: the private key is encrypted"),
        ),
        case(
            "trailing garbage in certificate",
            edge(
                Some(format!("{}garbage\n", leaf.cert_pem())),
                Some(leaf.key_pem()),
                None,
            ),
            Reject("spec.tls.certificate: unexpected text after the last PEM block"),
        ),
        case(
            "trailing garbage in key",
            edge(
                Some(leaf.cert_pem()),
                Some(format!("{}\nxyz", leaf.key_pem())),
                None,
            ),
            Reject("spec.tls.key: unexpected text after the last PEM block"),
        ),
        case(
            "explanatory text before blocks is allowed",
            edge(
                Some(format!(
                    "subject=CN = www.example.com\nissuer=CN = Test Root CA\n{}",
                    leaf.cert_pem()
                )),
                Some(format!("Bag Attributes\n    localKeyID: 01 02\n{}", leaf.key_pem())),
                None,
            ),
            CLEAN,
        ),
        case(
            "CRLF line endings",
            edge(
                Some(leaf.cert_pem().replace('\n', "\r\n")),
                Some(leaf.key_pem().replace('\n', "\r\n")),
                None,
            ),
            CLEAN,
        ),
        case(
            "truncated certificate",
            edge(
                Some(leaf.cert_pem().lines().take(5).collect::<Vec<_>>().join("\n")),
                Some(leaf.key_pem()),
                None,
            ),
            Reject("spec.tls.certificate: holds no CERTIFICATE block (PEM block 1 (CERTIFICATE) has no matching -----END CERTIFICATE----- line)"),
        ),
        case(
            "corrupt certificate body",
            edge(
                Some(corrupt_body(&leaf.cert_pem())),
                Some(leaf.key_pem()),
                None,
            ),
            Reject("spec.tls.certificate: block 1 (CERTIFICATE) is not a valid X.509 certificate"),
        ),
        case(
            "not PEM at all",
            edge(Some("hello".into()), Some(leaf.key_pem()), None),
            Reject("spec.tls.certificate: not PEM"),
        ),
    ]);
}

/// `issued`'s EC key with the private scalar changed and the public point
/// kept: it still "matches" the certificate by public key.
fn damaged_key_pem(issued: &Issued) -> String {
    let ec = issued.key.ec_key().unwrap();
    let mut scalar = ec.private_key().to_owned().unwrap();
    scalar.add_word(1).unwrap();
    let bad =
        openssl::ec::EcKey::from_private_components(ec.group(), &scalar, ec.public_key()).unwrap();
    let pkey = openssl::pkey::PKey::from_ec_key(bad).unwrap();
    String::from_utf8(pkey.private_key_to_pem_pkcs8().unwrap()).unwrap()
}

/// Flip a character in the middle of the first block's base64 body so it
/// stays base64 but is no longer DER.
fn corrupt_body(pem: &str) -> String {
    let mut lines: Vec<String> = pem.lines().map(str::to_string).collect();
    lines[2] = "A".repeat(lines[2].len());
    lines.join("\n") + "\n"
}

#[test]
fn chains_and_verification() {
    let f = fx();
    run_cases(vec![
        case(
            "intermediate in certificate, root in CA",
            serve(&f.leaf_via_int, &[&f.int], Some(&f.ca)),
            CLEAN,
        ),
        case(
            "two intermediates in order, root in CA",
            serve(&f.leaf_via_int2, &[&f.int2, &f.int], Some(&f.ca)),
            CLEAN,
        ),
        case(
            "intermediate and root in CA field",
            serve(&f.leaf_via_int, &[], Some(&f.int)),
            CLEAN,
        ),
        case(
            "CA field holds intermediate and root",
            edge(
                Some(f.leaf_via_int.cert_pem()),
                Some(f.leaf_via_int.key_pem()),
                Some(chain_pem(&[&f.int, &f.ca])),
            ),
            CLEAN,
        ),
        case(
            "no CA: chain up to a self-signed root",
            serve(&f.leaf_via_int, &[&f.int, &f.ca], None),
            CLEAN,
        ),
        case(
            "no CA: chain up to an intermediate (public root not given)",
            serve(&f.leaf_via_int2, &[&f.int2, &f.int], None),
            CLEAN,
        ),
        case(
            "intermediate missing, CA given",
            serve(&f.leaf_via_int, &[], Some(&f.ca)),
            Reject("spec.tls.certificate: the certificate chain does not verify against spec.tls.caCertificate: unable to get local issuer certificate"),
        ),
        case(
            "one of two intermediates missing, CA given",
            serve(&f.leaf_via_int2, &[&f.int2], Some(&f.ca)),
            Reject("unable to get local issuer certificate"),
        ),
        case(
            "wrong CA",
            serve(&f.leaf, &[], Some(&f.other_ca)),
            Reject("does not verify against spec.tls.caCertificate"),
        ),
        case(
            "self-signed leaf with an unrelated CA",
            serve(&f.self_signed, &[], Some(&f.ca)),
            Reject("does not verify against spec.tls.caCertificate"),
        ),
        case(
            "chain out of order",
            serve(&f.leaf_via_int2, &[&f.int, &f.int2], Some(&f.ca)),
            Reject("spec.tls.certificate: the certificates are out of order: certificate 1 (CN=www.example.com) is issued by certificate 3 (CN=Test Intermediate CA 2)"),
        ),
        case(
            "chain out of order, no CA",
            serve(&f.leaf_via_int2, &[&f.int, &f.int2], None),
            Reject("out of order"),
        ),
        case(
            "two unrelated leaves",
            serve(&f.leaf, &[&f.self_signed], None),
            Reject("spec.tls.certificate: certificate 2 (CN=www.example.com) is not the issuer of certificate 1"),
        ),
        case(
            "unrelated CA after the leaf",
            serve(&f.leaf, &[&f.other_ca], Some(&f.ca)),
            Reject("certificate 2 (CN=Other Root CA) is not the issuer of certificate 1"),
        ),
        case(
            "leaf without serverAuth usage, CA given",
            serve(
                &CertSpec::leaf(&[HOST]).client_auth_only().signed_by(&f.ca),
                &[],
                Some(&f.ca),
            ),
            Reject("unsuitable certificate purpose (at CN=www.example.com"),
        ),
        case(
            "intermediate that is not a CA",
            {
                let not_ca = CertSpec::leaf(&["not-a-ca.example.com"]).signed_by(&f.ca);
                let leaf = CertSpec::leaf(&[HOST]).signed_by(&not_ca);
                serve(&leaf, &[&not_ca], Some(&f.ca))
            },
            Reject("invalid CA certificate"),
        ),
    ]);
}

#[test]
fn algorithms_and_key_formats() {
    let f = fx();
    let rsa_leaf = CertSpec::leaf(&[HOST])
        .key(KeyKind::Rsa2048)
        .signed_by(&f.ca);
    let rsa1024 = CertSpec::leaf(&[HOST])
        .key(KeyKind::Rsa(1024))
        .self_signed();
    let rsa1024_ca = CertSpec::ca("Weak CA")
        .key(KeyKind::Rsa(1024))
        .self_signed();
    let leaf_of_weak_ca = CertSpec::leaf(&[HOST]).signed_by(&rsa1024_ca);
    let p192 = CertSpec::leaf(&[HOST]).key(KeyKind::P192).self_signed();
    let ec_leaf = &f.leaf;
    let p384 = CertSpec::leaf(&[HOST]).key(KeyKind::P384).signed_by(&f.ca);
    let p521 = CertSpec::leaf(&[HOST]).key(KeyKind::P521).signed_by(&f.ca);
    let ed = CertSpec::leaf(&[HOST])
        .key(KeyKind::Ed25519)
        .signed_by(&f.ca);
    let ed_ca = CertSpec::ca("Ed25519 CA")
        .key(KeyKind::Ed25519)
        .self_signed();
    let leaf_of_ed_ca = CertSpec::leaf(&[HOST]).signed_by(&ed_ca);
    let sha1_int = CertSpec::ca("SHA-1 Intermediate")
        .digest(Digest::Sha1)
        .signed_by(&f.ca);
    let sha1_root = CertSpec::ca("SHA-1 Root")
        .digest(Digest::Sha1)
        .key(KeyKind::Rsa2048Other)
        .self_signed();
    let x25519_pkcs8 = String::from_utf8(
        openssl::pkey::PKey::generate_x25519()
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap(),
    )
    .unwrap();
    run_cases(vec![
        case(
            "SHA-1 CA-signed leaf rejected",
            serve(
                &CertSpec::leaf(&[HOST]).digest(Digest::Sha1).signed_by(&f.ca),
                &[],
                Some(&f.ca),
            ),
            Reject("spec.tls.certificate: certificate 1 (CN=www.example.com) is CA-signed with SHA-1 (ecdsa-with-SHA1)"),
        ),
        case(
            "MD5 CA-signed leaf rejected",
            serve(
                &CertSpec::leaf(&[HOST]).digest(Digest::Md5).signed_by(&f.rsa_ca),
                &[],
                Some(&f.rsa_ca),
            ),
            Reject("is CA-signed with MD5 (md5WithRSAEncryption)"),
        ),
        case(
            "self-signed SHA-1 leaf allowed",
            serve(
                &CertSpec::leaf(&[HOST]).digest(Digest::Sha1).self_signed(),
                &[],
                None,
            ),
            CLEAN,
        ),
        case(
            "SHA-1 intermediate rejected",
            {
                let leaf = CertSpec::leaf(&[HOST]).signed_by(&sha1_int);
                serve(&leaf, &[&sha1_int], Some(&f.ca))
            },
            Reject("spec.tls.certificate: certificate 2 (CN=SHA-1 Intermediate) is CA-signed with SHA-1"),
        ),
        case(
            "SHA-1 intermediate in CA field rejected",
            {
                let leaf = CertSpec::leaf(&[HOST]).signed_by(&sha1_int);
                edge(
                    Some(leaf.cert_pem()),
                    Some(leaf.key_pem()),
                    Some(chain_pem(&[&sha1_int, &f.ca])),
                )
            },
            Reject("spec.tls.caCertificate: certificate 1 (CN=SHA-1 Intermediate) is CA-signed with SHA-1"),
        ),
        case(
            "self-signed SHA-1 root in CA field allowed",
            serve(
                &CertSpec::leaf(&[HOST]).signed_by(&sha1_root),
                &[],
                Some(&sha1_root),
            ),
            CLEAN,
        ),
        case(
            "RSA 1024 rejected",
            serve(&rsa1024, &[], None),
            Reject("spec.tls.key: the private key (RSA key of 1024 bits) is too weak"),
        ),
        case(
            "RSA 1024 CA rejected",
            serve(&leaf_of_weak_ca, &[], Some(&rsa1024_ca)),
            Reject("spec.tls.caCertificate: certificate 1 (CN=Weak CA) has a key that is too weak"),
        ),
        case(
            "RSA 1024 root in the chain rejected",
            serve(&leaf_of_weak_ca, &[&rsa1024_ca], None),
            Reject("spec.tls.certificate: certificate 2 (CN=Weak CA) has a key that is too weak"),
        ),
        case(
            "EC P-192 rejected",
            serve(&p192, &[], None),
            Reject("spec.tls.key: the private key (EC key on prime192v1 (192 bits)) is too weak"),
        ),
        case(
            "X25519 key rejected",
            edge(Some(ec_leaf.cert_pem()), Some(x25519_pkcs8), None),
            Reject("spec.tls.key: the private key is a key of type X25519"),
        ),
        case("EC P-256", serve(ec_leaf, &[], Some(&f.ca)), CLEAN),
        case("EC P-384", serve(&p384, &[], Some(&f.ca)), CLEAN),
        case("EC P-521", serve(&p521, &[], Some(&f.ca)), CLEAN),
        case("Ed25519 leaf", serve(&ed, &[], Some(&f.ca)), CLEAN),
        case(
            "leaf signed by an Ed25519 CA",
            serve(&leaf_of_ed_ca, &[], Some(&ed_ca)),
            CLEAN,
        ),
        case(
            "RSA key as PKCS#1",
            edge(
                Some(rsa_leaf.cert_pem()),
                Some(rsa_leaf.key_pem_traditional()),
                Some(f.ca.cert_pem()),
            ),
            CLEAN,
        ),
        case(
            "RSA key as PKCS#8",
            serve(&rsa_leaf, &[], Some(&f.ca)),
            CLEAN,
        ),
        case(
            "EC key as SEC1",
            edge(
                Some(ec_leaf.cert_pem()),
                Some(ec_leaf.key_pem_traditional()),
                None,
            ),
            CLEAN,
        ),
        case(
            "EC key with EC PARAMETERS block",
            edge(
                Some(ec_leaf.cert_pem()),
                Some(ec_leaf.key_pem_with_ec_parameters()),
                None,
            ),
            CLEAN,
        ),
        case(
            "EC key with EC PARAMETERS inside the certificate field",
            edge(
                Some(format!(
                    "{}{}",
                    ec_leaf.cert_pem(),
                    ec_leaf.key_pem_with_ec_parameters()
                )),
                None,
                None,
            ),
            CLEAN,
        ),
        case(
            "mislabelled key (EC key in an RSA PRIVATE KEY block)",
            edge(
                Some(ec_leaf.cert_pem()),
                Some(
                    ec_leaf
                        .key_pem_traditional()
                        .replace("EC PRIVATE KEY", "RSA PRIVATE KEY"),
                ),
                None,
            ),
            Reject("spec.tls.key: block 1 (RSA PRIVATE KEY) is not a valid private key"),
        ),
    ]);
}

#[test]
fn warnings_for_validity_and_names() {
    let f = fx();
    let expired = CertSpec::leaf(&[HOST])
        .valid(-30 * DAY, -10 * DAY)
        .signed_by(&f.ca);
    let future = CertSpec::leaf(&[HOST])
        .valid(10 * DAY, 30 * DAY)
        .signed_by(&f.ca);
    let expired_int = CertSpec::ca("Expired Intermediate")
        .valid(-30 * DAY, -DAY)
        .signed_by(&f.ca);
    let leaf_of_expired_int = CertSpec::leaf(&[HOST]).signed_by(&expired_int);
    let expired_ca = CertSpec::ca("Expired CA")
        .valid(-30 * DAY, -DAY)
        .self_signed();
    let leaf_of_expired_ca = CertSpec::leaf(&[HOST]).signed_by(&expired_ca);
    let other_name = CertSpec::leaf(&["api.example.com", "x.example.org"]).signed_by(&f.ca);
    let wildcard = CertSpec::leaf(&["*.example.com"]).signed_by(&f.ca);
    let cn_only = CertSpec::leaf(&[]).cn(HOST).signed_by(&f.ca);
    let cn_only_other = CertSpec::leaf(&[]).cn("other.example.com").signed_by(&f.ca);
    let ip = CertSpec::leaf(&["10.1.2.3"]).signed_by(&f.ca);

    let with_host = |name: &'static str, host: RouteHost, tls: ValidatedTls, want: Want| Case {
        name,
        host,
        tls,
        want,
    };
    run_cases(vec![
        case(
            "expired leaf",
            serve(&expired, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["spec.tls.certificate: certificate expired at "],
            },
        ),
        case(
            "not yet valid leaf",
            serve(&future, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["spec.tls.certificate: certificate is not yet valid (valid from "],
            },
        ),
        case(
            "expired intermediate",
            serve(&leaf_of_expired_int, &[&expired_int], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &[
                    "spec.tls.certificate: certificate 2 (CN=Expired Intermediate) expired at ",
                ],
            },
        ),
        case(
            "expired CA",
            serve(&leaf_of_expired_ca, &[], Some(&expired_ca)),
            Admit {
                serving: true,
                warnings: &["spec.tls.caCertificate: certificate 1 (CN=Expired CA) expired at "],
            },
        ),
        case(
            "SAN mismatch",
            serve(&other_name, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["spec.tls.certificate: the certificate does not cover host www.example.com (it names api.example.com, x.example.org)"],
            },
        ),
        case(
            "expired and SAN mismatch",
            serve(
                &CertSpec::leaf(&["api.example.com"])
                    .valid(-30 * DAY, -10 * DAY)
                    .self_signed(),
                &[],
                None,
            ),
            Admit {
                serving: true,
                warnings: &["expired at", "does not cover host www.example.com"],
            },
        ),
        case("wildcard SAN covers a host", serve(&wildcard, &[], Some(&f.ca)), CLEAN),
        with_host(
            "wildcard SAN does not cover two labels",
            host("a.www.example.com"),
            serve(&wildcard, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["does not cover host a.www.example.com (it names *.example.com)"],
            },
        ),
        with_host(
            "wildcard SAN does not cover the bare domain",
            host("example.com"),
            serve(&wildcard, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["does not cover host example.com"],
            },
        ),
        with_host(
            "wildcard Route covered by a wildcard SAN",
            wildcard_host("www.example.com"),
            serve(&wildcard, &[], Some(&f.ca)),
            CLEAN,
        ),
        with_host(
            "wildcard Route with a plain SAN",
            wildcard_host("www.example.com"),
            serve(&f.leaf, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["does not cover *.example.com, which the wildcard Route serves (it names www.example.com)"],
            },
        ),
        with_host(
            "wildcard Route with a wildcard SAN of the parent domain",
            wildcard_host("www.sub.example.com"),
            serve(&wildcard, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["does not cover *.sub.example.com"],
            },
        ),
        with_host(
            "host case and trailing dot are ignored",
            host("WWW.Example.COM."),
            serve(&f.leaf, &[], Some(&f.ca)),
            CLEAN,
        ),
        case("CN when there are no SANs", serve(&cn_only, &[], Some(&f.ca)), CLEAN),
        case(
            "CN mismatch when there are no SANs",
            serve(&cn_only_other, &[], Some(&f.ca)),
            Admit {
                serving: true,
                warnings: &["(it names only CN=other.example.com)"],
            },
        ),
        with_host(
            "IP host with an IP SAN",
            host("10.1.2.3"),
            serve(&ip, &[], Some(&f.ca)),
            CLEAN,
        ),
        case(
            "CA without a certificate of its own",
            edge(None, None, Some(f.ca.cert_pem())),
            Admit {
                serving: false,
                warnings: &["spec.tls.caCertificate: ignored"],
            },
        ),
    ]);
}

#[test]
fn termination_rules_and_destination_ca() {
    let f = fx();
    let reencrypt = |dest: Option<String>| ValidatedTls {
        destination_ca_certificate: dest.map(Into::into),
        ..tls(Termination::Reencrypt)
    };
    let passthrough = |cert: Option<String>| ValidatedTls {
        certificate: cert.map(Into::into),
        ..tls(Termination::Passthrough)
    };
    let weak_ca = CertSpec::ca("Weak Destination CA")
        .key(KeyKind::Rsa(1024))
        .self_signed();
    run_cases(vec![
        case(
            "passthrough",
            passthrough(None),
            Admit {
                serving: false,
                warnings: &[],
            },
        ),
        case(
            "passthrough with a certificate",
            passthrough(Some(f.leaf.cert_pem())),
            Reject("spec.tls.certificate: passthrough termination does not support certificates"),
        ),
        case(
            "passthrough with Allow",
            ValidatedTls {
                insecure_policy: InsecurePolicy::Allow,
                ..tls(Termination::Passthrough)
            },
            Reject("spec.tls.insecureEdgeTerminationPolicy: Allow is not supported"),
        ),
        case(
            "edge without certificates",
            tls(Termination::Edge),
            Admit {
                serving: false,
                warnings: &[],
            },
        ),
        case(
            "edge with a destination CA",
            ValidatedTls {
                destination_ca_certificate: Some(f.ca.cert_pem().into()),
                ..tls(Termination::Edge)
            },
            Reject("spec.tls.destinationCACertificate: edge termination does not support destination certificates"),
        ),
        case(
            "reencrypt with a destination CA",
            reencrypt(Some(f.ca.cert_pem())),
            Admit {
                serving: false,
                warnings: &[],
            },
        ),
        case(
            "reencrypt with two destination CAs and its own certificate",
            ValidatedTls {
                certificate: Some(f.leaf.cert_pem().into()),
                key: Some(f.leaf.key_pem().into()),
                ..reencrypt(Some(chain_pem(&[&f.ca, &f.other_ca])))
            },
            CLEAN,
        ),
        case(
            "destination CA garbage",
            reencrypt(Some("garbage".into())),
            Reject("spec.tls.destinationCACertificate: not PEM"),
        ),
        case(
            "destination CA with a key block",
            reencrypt(Some(format!("{}{}", f.ca.cert_pem(), f.ca.key_pem()))),
            Reject("spec.tls.destinationCACertificate: unexpected PRIVATE KEY block (block 2)"),
        ),
        case(
            "destination CA with trailing garbage",
            reencrypt(Some(format!("{}-----", f.ca.cert_pem()))),
            Reject("spec.tls.destinationCACertificate: malformed PEM boundary line"),
        ),
        case(
            "destination CA signed with SHA-1",
            reencrypt(Some(
                CertSpec::ca("SHA-1 Destination CA")
                    .digest(Digest::Sha1)
                    .signed_by(&f.ca)
                    .cert_pem(),
            )),
            Reject("spec.tls.destinationCACertificate: certificate 1 (CN=SHA-1 Destination CA) is CA-signed with SHA-1"),
        ),
        case(
            "weak destination CA is a warning",
            reencrypt(Some(weak_ca.cert_pem())),
            Admit {
                serving: false,
                warnings: &["spec.tls.destinationCACertificate: certificate 1 (CN=Weak Destination CA) has a key that is too weak"],
            },
        ),
    ]);
}

#[test]
fn output_is_normalized() {
    let f = fx();
    let leaf = &f.leaf_via_int;
    let input = edge(
        Some(format!(
            "explanation\n{}\n\n{}",
            leaf.cert_pem().replace('\n', "\r\n"),
            f.int.cert_pem()
        )),
        Some(leaf.key_pem_with_ec_parameters()),
        Some(format!("  {}  ", f.ca.cert_pem())),
    );
    let check = check_tls_at(&host(HOST), &input, now_unix()).unwrap();
    assert!(check.warnings.is_empty(), "{:?}", check.warnings);
    let route_tls = check.tls;
    assert_eq!(route_tls.termination, Termination::Edge);
    assert_eq!(route_tls.insecure_policy, InsecurePolicy::None);
    assert_eq!(route_tls.destination_ca_pem, None);
    let serving = route_tls.serving.unwrap();

    assert_eq!(&*serving.chain_pem, chain_pem(&[leaf, &f.int]));
    assert_eq!(serving.ca_pem.as_deref(), Some(f.ca.cert_pem().as_str()));
    assert_eq!(&*serving.key_pem, leaf.key_pem());
    assert!(serving.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(serving.key_pem.matches("-----BEGIN").count(), 1);
    assert_eq!(
        serving.leaf_sha256,
        openssl::sha::sha256(&leaf.cert.to_der().unwrap())
    );
    let not_after = time::unix_seconds(leaf.cert.not_after()).unwrap();
    assert_eq!(serving.not_after_unix, not_after);
    // Generated with 90 days of validity a moment ago.
    assert!((serving.not_after_unix - now_unix() - 90 * DAY).abs() < 600);

    // A PKCS#1 input key comes out as PKCS#8 too.
    let rsa_leaf = CertSpec::leaf(&[HOST]).key(KeyKind::Rsa2048).self_signed();
    let check = check_tls_at(
        &host(HOST),
        &edge(
            Some(rsa_leaf.cert_pem()),
            Some(rsa_leaf.key_pem_traditional()),
            None,
        ),
        now_unix(),
    )
    .unwrap();
    let serving = check.tls.serving.unwrap();
    assert_eq!(&*serving.key_pem, rsa_leaf.key_pem());
    assert_eq!(serving.ca_pem, None);

    // Destination CA: normalized, trimmed.
    let check = check_tls_at(
        &host(HOST),
        &ValidatedTls {
            destination_ca_certificate: Some(
                format!("\n{}\n{}\n", f.ca.cert_pem(), f.other_ca.cert_pem()).into(),
            ),
            ..tls(Termination::Reencrypt)
        },
        now_unix(),
    )
    .unwrap();
    assert_eq!(
        check.tls.destination_ca_pem,
        Some(chain_pem(&[&f.ca, &f.other_ca]))
    );
}

#[test]
fn expiry_warning_text_is_exact() {
    let ca = CertSpec::ca("Old CA")
        .valid(-60 * DAY, 60 * DAY)
        .self_signed();
    let expired = CertSpec::leaf(&[HOST])
        .valid(-30 * DAY, -10 * DAY)
        .signed_by(&ca);
    let check = check_tls_at(&host(HOST), &serve(&expired, &[], Some(&ca)), now_unix()).unwrap();
    let not_after = time::unix_seconds(expired.cert.not_after()).unwrap();
    assert_eq!(
        check.warnings,
        vec![format!(
            "spec.tls.certificate: certificate expired at {}",
            time::rfc3339(not_after)
        )]
    );
    // The verdict depends on the "now" passed in, not the clock.
    let before = check_tls_at(
        &host(HOST),
        &serve(&expired, &[], Some(&ca)),
        not_after - DAY,
    )
    .unwrap();
    assert!(before.warnings.is_empty(), "{:?}", before.warnings);
}

/// The point of the rules: what is admitted loads in HAProxy, what is
/// refused for strength, digest or key reasons does not. Runs `haproxy -c`
/// when a `haproxy` binary is on PATH; skips otherwise, except under
/// `CI=true`, where a missing binary fails.
///
/// Deliberately stricter than HAProxy (not compared here): chain order and
/// verification against the given CA, and text after the last PEM block,
/// which HAProxy's PEM reader ignores but which signals a paste error.
#[test]
fn haproxy_agrees() {
    let Some(haproxy) = find_haproxy() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "haproxy is required under CI=true (apt-get install haproxy)"
        );
        eprintln!("haproxy not found on PATH: skipping haproxy_agrees");
        return;
    };
    let f = fx();
    let dir = tempfile::tempdir().unwrap();

    let rsa_leaf = CertSpec::leaf(&[HOST])
        .key(KeyKind::Rsa2048)
        .signed_by(&f.ca);
    let rsa1024_ca = CertSpec::ca("Weak CA")
        .key(KeyKind::Rsa(1024))
        .self_signed();
    let inputs: Vec<(&str, ValidatedTls)> = vec![
        (
            "ec-with-int",
            serve(&f.leaf_via_int, &[&f.int], Some(&f.ca)),
        ),
        (
            "rsa-pkcs1",
            edge(
                Some(rsa_leaf.cert_pem()),
                Some(rsa_leaf.key_pem_traditional()),
                Some(f.ca.cert_pem()),
            ),
        ),
        (
            "ed25519",
            serve(
                &CertSpec::leaf(&[HOST])
                    .key(KeyKind::Ed25519)
                    .signed_by(&f.ca),
                &[],
                Some(&f.ca),
            ),
        ),
        ("p521-ec-params", {
            let l = CertSpec::leaf(&[HOST]).key(KeyKind::P521).self_signed();
            edge(
                Some(l.cert_pem()),
                Some(l.key_pem_with_ec_parameters()),
                None,
            )
        }),
        (
            "self-signed-sha1",
            serve(
                &CertSpec::leaf(&[HOST]).digest(Digest::Sha1).self_signed(),
                &[],
                None,
            ),
        ),
        (
            "sha1-leaf",
            serve(
                &CertSpec::leaf(&[HOST])
                    .digest(Digest::Sha1)
                    .signed_by(&f.ca),
                &[],
                Some(&f.ca),
            ),
        ),
        (
            "md5-leaf",
            serve(
                &CertSpec::leaf(&[HOST])
                    .digest(Digest::Md5)
                    .signed_by(&f.rsa_ca),
                &[],
                Some(&f.rsa_ca),
            ),
        ),
        (
            "rsa1024-leaf",
            serve(
                &CertSpec::leaf(&[HOST])
                    .key(KeyKind::Rsa(1024))
                    .self_signed(),
                &[],
                None,
            ),
        ),
        (
            "rsa1024-ca",
            serve(
                &CertSpec::leaf(&[HOST]).signed_by(&rsa1024_ca),
                &[],
                Some(&rsa1024_ca),
            ),
        ),
        ("key-mismatch", {
            let a = CertSpec::leaf(&[HOST]).self_signed();
            let b = CertSpec::leaf(&[HOST]).self_signed();
            edge(Some(a.cert_pem()), Some(b.key_pem()), None)
        }),
        (
            "expired",
            serve(
                &CertSpec::leaf(&[HOST])
                    .valid(-400 * 86_400, -10 * 86_400)
                    .signed_by(&f.ca),
                &[],
                Some(&f.ca),
            ),
        ),
        (
            "not-yet-valid",
            serve(
                &CertSpec::leaf(&[HOST])
                    .valid(10 * 86_400, 400 * 86_400)
                    .signed_by(&f.ca),
                &[],
                Some(&f.ca),
            ),
        ),
        (
            "p192-leaf",
            serve(
                &CertSpec::leaf(&[HOST]).key(KeyKind::P192).self_signed(),
                &[],
                None,
            ),
        ),
    ];

    let mut disagreements = Vec::new();
    for (name, input) in &inputs {
        let verdict = check_tls_at(&host(HOST), input, now_unix());
        // What we would write (admitted), or the raw input (rejected).
        let pem = match &verdict {
            Ok(check) => {
                let s = check.tls.serving.as_ref().unwrap();
                format!(
                    "{}{}{}",
                    s.key_pem,
                    s.chain_pem,
                    s.ca_pem.clone().unwrap_or_default()
                )
            }
            Err(_) => format!(
                "{}{}{}",
                input.key.clone().unwrap_or_default(),
                input.certificate.clone().unwrap_or_default(),
                input.ca_certificate.clone().unwrap_or_default()
            ),
        };
        let pem_path = dir.path().join(format!("{name}.pem"));
        std::fs::write(&pem_path, pem).unwrap();
        let cfg_path = dir.path().join(format!("{name}.cfg"));
        std::fs::write(
            &cfg_path,
            format!(
                "global\n  log stderr local0\ndefaults\n  mode http\n  timeout client 1s\n  \
                 timeout server 1s\n  timeout connect 1s\nfrontend f\n  bind 127.0.0.1:18443 ssl crt {}\n",
                pem_path.display()
            ),
        )
        .unwrap();
        let out = std::process::Command::new(&haproxy)
            .arg("-c")
            .arg("-f")
            .arg(&cfg_path)
            .output()
            .unwrap();
        if out.status.success() != verdict.is_ok() {
            disagreements.push(format!(
                "{name}: routegen {}, haproxy -c {}: {}",
                match &verdict {
                    Ok(_) => "admits".to_string(),
                    Err(r) => format!("rejects ({})", r.message),
                },
                if out.status.success() {
                    "loads it"
                } else {
                    "fails"
                },
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}

fn find_haproxy() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|dir| dir.join("haproxy"))
        .find(|candidate| candidate.is_file())
}

#[test]
fn cache_answers_repeated_checks_without_parsing() {
    let fx = fx();
    // A host of its own, so no other test shares the entry.
    let tls = serve(&fx.leaf, &[], Some(&fx.ca));
    let host = host("cache-test.example.com");
    let cache = TlsCheckCache::default();
    let first = cache.check(&host, &tls, now_unix());
    assert_eq!(cache.stats().misses, 1);
    for _ in 0..3 {
        let again = cache.check(&host, &tls, now_unix());
        assert_eq!(comparable(&again), comparable(&first));
    }
    assert_eq!(
        cache.stats(),
        CacheStats {
            hits: 3,
            misses: 1,
            entries: 1
        }
    );
    // Any change of input is a different entry.
    let other = cache.check(&wildcard_host("cache-test.example.com"), &tls, now_unix());
    assert_eq!(cache.stats().misses, 2);
    cache.clear();
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(
        comparable(&other),
        comparable(&check_tls_at(
            &wildcard_host("cache-test.example.com"),
            &tls,
            now_unix()
        ))
    );
}

#[test]
fn chains_that_do_not_verify_are_refused_only_with_a_ca() {
    // A chain whose second certificate is no CA (as some PKCS#12 exports
    // with "Bag Attributes" hold): it does not verify. OpenShift ignores
    // verification errors when no caCertificate is given, so routegen
    // admits it with the reason as a warning; with a CA it is refused.
    let f = fx();
    let not_a_ca = CertSpec::leaf(&["signer.example.com"]).signed_by(&f.ca);
    let leaf = CertSpec::leaf(&[HOST]).signed_by(&not_a_ca);
    let bagged = format!(
        "Bag Attributes\n    localKeyID: 01 02\nsubject=/CN=www.example.com\n{}",
        chain_pem(&[&leaf, &not_a_ca])
    );
    run_cases(vec![
        case(
            "no CA: admitted, the verification error is a warning",
            edge(Some(bagged.clone()), Some(leaf.key_pem()), None),
            Admit {
                serving: true,
                warnings: &["spec.tls.certificate: the certificate chain does not verify"],
            },
        ),
        case(
            "with a CA: refused",
            edge(Some(bagged), Some(leaf.key_pem()), Some(f.ca.cert_pem())),
            Reject("spec.tls.certificate: the certificate chain does not verify against spec.tls.caCertificate"),
        ),
    ]);
}

#[test]
fn certificates_and_bytes_per_pem_field_are_bounded() {
    let f = fx();
    // A real chain at the bound: leaf, 8 intermediates, root (10 certificates).
    let mut issuers = vec![CertSpec::ca("Bound Root CA").self_signed()];
    for i in 1..=8 {
        let next = CertSpec::ca(&format!("Bound Intermediate {i}")).signed_by(&issuers[i - 1]);
        issuers.push(next);
    }
    let leaf = CertSpec::leaf(&[HOST]).signed_by(issuers.last().unwrap());
    let mut chain: Vec<&Issued> = vec![&leaf];
    chain.extend(issuers.iter().rev());
    assert_eq!(chain.len(), MAX_CERTIFICATES_PER_FIELD);
    let at_bound = chain_pem(&chain);
    let ca_copies = |n: usize| f.ca.cert_pem().repeat(n);
    let over_bound = format!("{at_bound}{}", f.ca.cert_pem());
    let reencrypt = |destination: String| ValidatedTls {
        termination: Termination::Reencrypt,
        destination_ca_certificate: Some(destination.into()),
        ..serve(&f.leaf, &[], None)
    };
    let padded = format!(
        "{}{}",
        "explanatory text\n".repeat(MAX_PEM_FIELD_BYTES / 17 + 1),
        f.leaf.cert_pem()
    );
    run_cases(vec![
        case(
            "a chain of 10 certificates is admitted",
            edge(Some(at_bound), Some(leaf.key_pem()), None),
            CLEAN,
        ),
        case(
            "a chain of 11 certificates is refused before any is parsed",
            edge(Some(over_bound), Some(leaf.key_pem()), None),
            Reject(
                "spec.tls.certificate: holds 11 certificates; at most 10 are allowed per PEM \
                 field (MAX_CERTIFICATES_PER_FIELD)",
            ),
        ),
        case(
            "a CA bundle of 11 is refused",
            serve(&f.leaf, &[], None).with_ca(ca_copies(11)),
            Reject("spec.tls.caCertificate: holds 11 certificates; at most 10"),
        ),
        case(
            "a CA bundle of 20,000 copies (the issue's case) is refused by size, unread",
            serve(&f.leaf, &[], None).with_ca(ca_copies(20_000)),
            Reject("spec.tls.caCertificate: too long: at most 262144 bytes per PEM field"),
        ),
        case(
            "a destination CA bundle of 10 is admitted",
            reencrypt(ca_copies(10)),
            CLEAN,
        ),
        case(
            "a destination CA bundle of 11 is refused",
            reencrypt(ca_copies(11)),
            Reject("spec.tls.destinationCACertificate: holds 11 certificates; at most 10"),
        ),
        case(
            "a field over MAX_PEM_FIELD_BYTES is refused by size",
            edge(Some(padded), Some(f.leaf.key_pem()), None),
            Reject("spec.tls.certificate: too long: at most 262144 bytes per PEM field (MAX_PEM_FIELD_BYTES)"),
        ),
    ]);
}

impl ValidatedTls {
    fn with_ca(self, ca: String) -> Self {
        ValidatedTls {
            ca_certificate: Some(ca.into()),
            ..self
        }
    }
}
