//! The OpenShift router's `TestExtendedValidateRoute` table
//! (`pkg/router/routeapihelpers/validation_test.go` at commit
//! [`EXTENDED_VALIDATION_COMMIT`]) as routegen test cases: each case's TLS
//! fields, built from certificates generated here with the shape the Go
//! fixture has (who signs what, validity, digest, PEM form), and the
//! verdict the Go test asserts (`go_errors`: 0 = admitted). The Go
//! fixtures themselves are not copied: they are generated again, so no key
//! material is committed (see [`super::certs`]).
//!
//! Key size: most Go fixtures carry RSA-1024 keys, which routegen refuses
//! on purpose (HAProxy's OpenSSL, security level 2, will not load them).
//! [`extended_validation_cases`] therefore takes the size of those keys:
//! at 1024 bits the cases are the Go test as given (where the Go test
//! admits them, a deliberate difference); at 2048 bits they ask the
//! question each case is about, and every verdict must agree.
//!
//! Used by `routegen-core`'s `tests/openshift_extended_validation.rs` (the
//! verdicts) and `routegen`'s `tests/openshift_haproxy_check.rs` (the
//! admitted cases rendered into one tree that `haproxy -c` must accept).

use openssl::pkey::Id;

use super::certs::{CertSpec, Digest, Issued, KeyKind, DAY};
use super::RouteBuilder;
use crate::admit::Reason;
use crate::model::{Route, TlsConfig};
use crate::RouterSettings;

/// The openshift/router commit the table was read at.
pub const EXTENDED_VALIDATION_COMMIT: &str = "15430fd4fa51f63bb5413200fe524b670e79c1cf";

/// What routegen is expected to decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Admitted,
    Rejected(Reason),
}

/// Where a case comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A row of the Go table.
    Ported,
    /// Not in the Go table: the same clean-up with a certificate, so the
    /// cleaned key is rendered and loaded by HAProxy.
    Extra,
}

/// One case: the Route, the Go verdict and routegen's.
#[derive(Clone, Debug)]
pub struct TlsCase {
    /// The Go case name (or, for [`Origin::Extra`], a name of ours).
    pub name: &'static str,
    pub origin: Origin,
    /// The number of errors the Go test expects (0 = admitted).
    pub go_errors: u8,
    pub route: Route,
    /// routegen's verdict.
    pub expect: Expect,
    /// Why routegen's verdict differs from the Go test's, when it does.
    pub deliberate: Option<&'static str>,
}

/// Settings for the cases: Routes without `spec.host` get one from a
/// template (the API server fills it in; the Go test has no host at all).
pub fn settings() -> RouterSettings {
    RouterSettings {
        hostname_template: Some("${name}.nohost.test".into()),
        ..Default::default()
    }
}

const RSA_TOO_WEAK: &str = "RSA keys below 2048 bits are refused: HAProxy's OpenSSL (security \
    level 2) will not load them, so the Route is rejected up front with that reason";
const API_LEVEL: &str = "the API server refuses this Route (termination or field combination), \
    so routegen reports ValidationFailed, not ExtendedValidationFailed";
const EXPIRED_CA_QUIRK: &str = "a chain that does not verify against spec.tls.caCertificate is \
    refused even when the certificate has expired; the Go router admits it only because Go's \
    verifier reports the expiry first and that error is ignored (a quirk kept since 3.3)";

/// The generated certificates, with the Go fixture each stands for.
struct Fixtures {
    /// testCACertificate: self-signed CA (RSA, weak size).
    ca: Issued,
    /// testCertificate / testPrivateKey: www.example.com signed by `ca`
    /// (RSA-2048 in the Go fixture too).
    cert: Issued,
    /// testUnrelatedCACertificate(+Key): www.example.com by another CA.
    unrelated: Issued,
    /// testExpiredCertCA and testExpiredCert(+Key), expired a year ago.
    expired_ca: Issued,
    expired: Issued,
    /// testExpiredCertNoKey: expired, issuer not given.
    expired_no_key: Issued,
    /// testSelfSignedCert(+Key): self.signer.test.
    self_signed: Issued,
    /// testValidInFutureCert(+Key): valid from 2038 on.
    future: Issued,
    /// testIntCACertificateChain: intermediate, then root.
    root: Issued,
    intermediate: Issued,
    /// testCertificateWithIntCA, testExpiredCertificateWithIntCA,
    /// testFutureValidCertificateWithIntCA and their keys.
    int_leaf: Issued,
    int_expired: Issued,
    int_future: Issued,
    /// testCertificateMD5 / RsaSha1 / EcdsaSha1: CA-signed with weak digests.
    md5: Issued,
    sha1_rsa: Issued,
    sha1_ecdsa: Issued,
    /// testCertificateRsaSha1SelfSigned, testCertificateMD5SelfSigned.
    sha1_self_signed: Issued,
    md5_self_signed: Issued,
    /// testCertificateRsaSha1SelfSignedRootCA, testCertificateRsaSha1IntCA,
    /// testCertificateRsaSha256 (signed by the SHA-1 root with SHA-256).
    sha1_root: Issued,
    sha1_int: Issued,
    sha256_by_sha1_root: Issued,
    /// testCertificateRsaSha1SameSubjIssuer: subject equals issuer, CA-signed.
    same_subject: Issued,
    /// bz1723400: an EC key.
    ec: Issued,
}

impl Fixtures {
    fn new(weak: KeyKind) -> Fixtures {
        let ca = CertSpec::ca("header.test CA").key(weak).self_signed();
        let cert = CertSpec::leaf(&["www.example.com"])
            .cn("header.test")
            .key(KeyKind::Rsa2048)
            .signed_by(&ca);
        let other_ca = CertSpec::ca("www.exampleca.com").key(weak).self_signed();
        let unrelated = CertSpec::leaf(&["www.example.com"])
            .key(weak)
            .signed_by(&other_ca);
        let expired_ca = CertSpec::ca("www.exampleca.com expired test")
            .key(weak)
            .self_signed();
        let expired = CertSpec::leaf(&["www.example.com"])
            .key(weak)
            .valid(-366 * DAY, -365 * DAY)
            .signed_by(&expired_ca);
        let expired_no_key = CertSpec::leaf(&["www.example.com"])
            .key(weak)
            .valid(-366 * DAY, -365 * DAY)
            .signed_by(&other_ca);
        let self_signed = CertSpec::leaf(&["self.signer.test"])
            .key(KeyKind::Rsa2048)
            .self_signed();
        let future = CertSpec::leaf(&["self.signer.test"])
            .key(KeyKind::Rsa2048)
            .valid(12 * 365 * DAY, 32 * 365 * DAY)
            .self_signed();
        let root = CertSpec::ca("root.ca.org")
            .key(KeyKind::Rsa2048)
            .self_signed();
        let intermediate = CertSpec::ca("intermediate.ca.org")
            .key(KeyKind::Rsa2048Other)
            .signed_by(&root);
        let int_leaf = CertSpec::leaf(&["www.ca.test"]).signed_by(&intermediate);
        let int_expired = CertSpec::leaf(&["expired.ca.test"])
            .valid(-366 * DAY, -365 * DAY)
            .signed_by(&intermediate);
        let int_future = CertSpec::leaf(&["valid.in.the.future.ca.test"])
            .valid(12 * 365 * DAY, 32 * 365 * DAY)
            .signed_by(&intermediate);
        let rsa_ca = CertSpec::ca("www.exampleca.com digests")
            .key(weak)
            .self_signed();
        let md5 = CertSpec::leaf(&["www.example.com"])
            .key(weak)
            .digest(Digest::Md5)
            .signed_by(&rsa_ca);
        let sha1_rsa = CertSpec::leaf(&["www.example.com"])
            .key(weak)
            .digest(Digest::Sha1)
            .signed_by(&rsa_ca);
        let ec_ca = CertSpec::ca("www.exampleca.com ec")
            .key(KeyKind::P256)
            .self_signed();
        let sha1_ecdsa = CertSpec::leaf(&["www.example.com"])
            .key(KeyKind::P256)
            .digest(Digest::Sha1)
            .signed_by(&ec_ca);
        let sha1_self_signed = CertSpec::leaf(&["www.example.com"])
            .key(KeyKind::Rsa2048)
            .digest(Digest::Sha1)
            .self_signed();
        let md5_self_signed = CertSpec::leaf(&["www.example.com"])
            .key(weak)
            .digest(Digest::Md5)
            .self_signed();
        let sha1_root = CertSpec::ca("www.exampleca.com sha1 root")
            .key(weak)
            .digest(Digest::Sha1)
            .self_signed();
        let sha1_int = CertSpec::ca("www.example-int.com")
            .key(weak)
            .digest(Digest::Sha1)
            .signed_by(&sha1_root);
        let sha256_by_sha1_root = CertSpec::leaf(&["www.example.com"])
            .key(weak)
            .signed_by(&sha1_root);
        let same_ca = CertSpec::ca("www.example.com same").key(weak).self_signed();
        let same_subject = CertSpec::leaf(&["www.example.com"])
            .cn("www.example.com same")
            .key(weak)
            .digest(Digest::Sha1)
            .signed_by(&same_ca);
        let ec = CertSpec::leaf(&["www.example.com"])
            .key(KeyKind::P256)
            .self_signed();
        Fixtures {
            ca,
            cert,
            unrelated,
            expired_ca,
            expired,
            expired_no_key,
            self_signed,
            future,
            root,
            intermediate,
            int_leaf,
            int_expired,
            int_future,
            md5,
            sha1_rsa,
            sha1_ecdsa,
            sha1_self_signed,
            md5_self_signed,
            sha1_root,
            sha1_int,
            sha256_by_sha1_root,
            same_subject,
            ec,
        }
    }

    /// testIntCACertificateChain: intermediate then root, with blank lines
    /// between the blocks as in the Go fixture.
    fn int_chain(&self) -> String {
        format!(
            "{}\n\n{}",
            self.intermediate.cert_pem(),
            self.root.cert_pem()
        )
    }
}

/// The EC key as SEC1 DER under another PEM label (bug 1723400).
fn ec_under_label(key: &Issued, label: &str) -> String {
    let sec1 = key
        .key
        .ec_key()
        .expect("an EC key")
        .private_key_to_pem()
        .unwrap();
    let text = String::from_utf8(sec1).unwrap();
    text.replace("EC PRIVATE KEY", label)
}

/// The TLS fields of a case: termination, certificate, key, CA, destination CA.
type Fields = (
    &'static str,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn route(name: &str, host: Option<&str>, fields: Fields) -> Route {
    let (termination, certificate, key, ca_certificate, destination_ca_certificate) = fields;
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let mut slug = slug;
    slug.truncate(60);
    let slug = slug.trim_end_matches('-').to_string();
    let mut builder = RouteBuilder::new("openshift-tls", &slug).to("svc", None);
    if let Some(host) = host {
        builder = builder.host(host);
    }
    builder
        .with_spec(|spec| {
            spec.tls = Some(TlsConfig {
                termination: termination.to_string(),
                certificate: certificate.map(Into::into),
                key: key.map(Into::into),
                ca_certificate: ca_certificate.map(Into::into),
                destination_ca_certificate: destination_ca_certificate.map(Into::into),
                ..Default::default()
            })
        })
        .build()
}

/// The cases, with the Go fixtures' RSA-1024 keys generated at `weak_bits`
/// (1024: the Go test as given; 2048: the question each case asks).
pub fn extended_validation_cases(weak_bits: u32) -> Vec<TlsCase> {
    // Fresh keys for each fixture: no two certificates share a key.
    let weak = KeyKind::Rsa(weak_bits);
    let f = Fixtures::new(weak);
    let as_given = weak_bits < 2048;
    let s = |text: &str| Some(text.to_string());
    let cert = |i: &Issued| Some(i.cert_pem());
    let key = |i: &Issued| Some(i.key_pem());
    let key_rsa = |i: &Issued| {
        Some(match i.key.id() {
            Id::RSA => i.key_pem_traditional(),
            _ => i.key_pem(),
        })
    };
    let int_chain = f.int_chain();
    // Deliberate only when the weak keys are in play and Go admits.
    let weak_key = |go_admits: bool| (as_given && go_admits).then_some(RSA_TOO_WEAK);
    let admitted_unless_weak = || {
        if as_given {
            Expect::Rejected(Reason::ExtendedValidationFailed)
        } else {
            Expect::Admitted
        }
    };
    let ext = Expect::Rejected(Reason::ExtendedValidationFailed);
    let api = Expect::Rejected(Reason::ValidationFailed);
    let ok = Expect::Admitted;

    let mut cases = Vec::new();
    let mut add = |name: &'static str,
                   host: Option<&str>,
                   fields: Fields,
                   go_errors: u8,
                   expect: Expect,
                   deliberate: Option<&'static str>| {
        cases.push(TlsCase {
            name,
            origin: Origin::Ported,
            go_errors,
            route: route(name, host, fields),
            expect,
            deliberate,
        });
    };
    let www = Some("www.example.com");

    add(
        "No TLS Termination",
        None,
        ("", None, None, None, None),
        1,
        api,
        Some(API_LEVEL),
    );
    add(
        "Passthrough termination OK",
        None,
        ("passthrough", None, None, None, None),
        0,
        ok,
        None,
    );
    add(
        "Reencrypt termination OK with certs",
        www,
        (
            "reencrypt",
            cert(&f.cert),
            key_rsa(&f.cert),
            cert(&f.ca),
            cert(&f.ca),
        ),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Reencrypt termination OK with bad config",
        None,
        ("reencrypt", s("def"), s("ghi"), s("jkl"), s("abc")),
        4,
        ext,
        None,
    );
    add(
        "Reencrypt termination OK without certs",
        None,
        ("reencrypt", None, None, None, cert(&f.ca)),
        0,
        ok,
        None,
    );
    add(
        "Reencrypt termination bad config without certs",
        None,
        ("reencrypt", None, None, None, s("abc")),
        1,
        ext,
        None,
    );
    add(
        "Reencrypt termination no dest cert",
        www,
        (
            "reencrypt",
            cert(&f.cert),
            key_rsa(&f.cert),
            cert(&f.ca),
            None,
        ),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Edge termination OK with certs without host",
        None,
        ("edge", cert(&f.cert), key_rsa(&f.cert), cert(&f.ca), None),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Edge termination OK with certs",
        www,
        ("edge", cert(&f.cert), key_rsa(&f.cert), cert(&f.ca), None),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Edge termination bad config with certs",
        www,
        ("edge", s("abc"), s("abc"), s("abc"), None),
        3,
        ext,
        None,
    );
    add(
        "Edge termination mismatched key and cert",
        www,
        (
            "edge",
            cert(&f.cert),
            key_rsa(&f.unrelated),
            cert(&f.ca),
            None,
        ),
        1,
        ext,
        None,
    );
    add(
        "Edge termination cert with unknown CA",
        www,
        ("edge", cert(&f.cert), key_rsa(&f.cert), None, None),
        0,
        ok,
        None,
    );
    add(
        "Edge termination expired cert with unknown CA and diff host",
        Some("think.different.test"),
        ("edge", cert(&f.expired), key(&f.expired), None, None),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Edge termination cert mismatched CA",
        www,
        (
            "edge",
            cert(&f.unrelated),
            key_rsa(&f.unrelated),
            cert(&f.ca),
            None,
        ),
        1,
        ext,
        None,
    );
    add(
        "Edge termination with expired cert, ignoring CA mismatch",
        www,
        ("edge", cert(&f.expired), key(&f.expired), cert(&f.ca), None),
        0,
        ext,
        Some(if as_given {
            RSA_TOO_WEAK
        } else {
            EXPIRED_CA_QUIRK
        }),
    );
    add(
        "Edge termination mismatched key and cert with unrelated CA",
        www,
        (
            "edge",
            cert(&f.unrelated),
            key_rsa(&f.cert),
            cert(&f.ca),
            None,
        ),
        2,
        ext,
        None,
    );
    add(
        "Edge termination OK without certs",
        None,
        ("edge", None, None, None, None),
        0,
        ok,
        None,
    );
    add(
        "Edge termination, dest cert",
        None,
        ("edge", None, None, None, s("abc")),
        2,
        api,
        Some(API_LEVEL),
    );
    add(
        "Passthrough termination, cert",
        None,
        ("passthrough", s("test"), None, None, None),
        3,
        api,
        Some(API_LEVEL),
    );
    add(
        "Passthrough termination, key",
        None,
        ("passthrough", None, s("test"), None, None),
        1,
        api,
        Some(API_LEVEL),
    );
    add(
        "Passthrough termination, ca cert",
        None,
        ("passthrough", None, None, s("test"), None),
        2,
        api,
        Some(API_LEVEL),
    );
    add(
        "Passthrough termination, dest ca cert",
        None,
        ("passthrough", None, None, None, s("test")),
        2,
        api,
        Some(API_LEVEL),
    );
    add(
        "Invalid termination type",
        None,
        ("invalid", None, None, None, None),
        1,
        api,
        Some(API_LEVEL),
    );
    add(
        "Double escaped newlines",
        None,
        (
            "reencrypt",
            s("d\\nef"),
            s("g\\nhi"),
            s("j\\nkl"),
            s("j\\nkl"),
        ),
        4,
        ext,
        None,
    );
    add(
        "expired cert edge",
        www,
        (
            "edge",
            cert(&f.expired),
            key(&f.expired),
            cert(&f.expired_ca),
            None,
        ),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "expired cert reencrypt",
        www,
        (
            "reencrypt",
            cert(&f.expired),
            key(&f.expired),
            cert(&f.expired_ca),
            cert(&f.ca),
        ),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Expired cert invalid key",
        www,
        ("edge", cert(&f.expired_no_key), None, None, None),
        1,
        ext,
        None,
    );
    add(
        "Expired cert mismatched key",
        www,
        (
            "edge",
            cert(&f.expired_no_key),
            key_rsa(&f.cert),
            None,
            None,
        ),
        1,
        ext,
        None,
    );
    add(
        "Expired cert invalid key reencrypt",
        www,
        (
            "reencrypt",
            cert(&f.expired_no_key),
            None,
            None,
            cert(&f.expired_no_key),
        ),
        1,
        ext,
        None,
    );
    add(
        "Expired cert with a different route host",
        Some("think.different.test"),
        (
            "edge",
            cert(&f.expired),
            key(&f.expired),
            cert(&f.expired_ca),
            None,
        ),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "self-signed cert",
        Some("self.signer.test"),
        (
            "reencrypt",
            cert(&f.self_signed),
            key(&f.self_signed),
            None,
            cert(&f.self_signed),
        ),
        0,
        ok,
        None,
    );
    add(
        "self-signed cert with different host",
        Some("different.co.us"),
        (
            "edge",
            cert(&f.self_signed),
            key(&f.self_signed),
            None,
            None,
        ),
        0,
        ok,
        None,
    );
    add(
        "future validity date 2038 cert",
        Some("self.signer.test"),
        ("edge", cert(&f.future), key(&f.future), None, None),
        0,
        ok,
        None,
    );
    add(
        "future validity date 2038 cert with whitespace",
        Some("self.signer.test"),
        (
            "edge",
            Some(format!("\n\t\n\t\n{}\n\n\n", f.future.cert_pem())),
            Some(format!("\n\t\n\t\n{}\n\n\n", f.future.key_pem())),
            None,
            None,
        ),
        0,
        ok,
        None,
    );
    add(
        "future validity date 2038 cert with different host",
        Some("www.in.the.future.test"),
        ("edge", cert(&f.future), key(&f.future), None, None),
        0,
        ok,
        None,
    );
    for (name, host, leaf) in [
        ("cert with intermediate CA", "www.ca.test", &f.int_leaf),
        (
            "cert with intermediate CA and diff host",
            "different.ca.test",
            &f.int_leaf,
        ),
        (
            "expired cert with intermediate CA",
            "expired.ca.test",
            &f.int_expired,
        ),
        (
            "expired cert with intermediate CA and diff host",
            "still.expired.test",
            &f.int_expired,
        ),
        (
            "future valid cert with intermediate CA",
            "valid.in.the.future.ca.test",
            &f.int_future,
        ),
        (
            "future valid cert with intermediate CA and diff host",
            "future.valid.test",
            &f.int_future,
        ),
    ] {
        add(
            name,
            Some(host),
            ("edge", cert(leaf), key(leaf), Some(int_chain.clone()), None),
            0,
            ok,
            None,
        );
    }
    let csr = f.cert.csr_pem();
    let key_as_ca = f.cert.key_pem_traditional();
    let malformed = {
        // A CERTIFICATE block whose body is base64 of something else.
        let pem = f.cert.cert_pem();
        let mut lines: Vec<&str> = pem.lines().collect();
        lines.remove(3);
        lines.join("\n")
    };
    add(
        "invalid CA with csr",
        Some("invalid.ca.test"),
        (
            "edge",
            cert(&f.cert),
            key_rsa(&f.cert),
            Some(csr.clone()),
            None,
        ),
        2,
        ext,
        None,
    );
    add(
        "another invalid CA with private key",
        Some("another.invalid.ca.test"),
        (
            "edge",
            cert(&f.cert),
            key_rsa(&f.cert),
            Some(key_as_ca),
            None,
        ),
        2,
        ext,
        None,
    );
    add(
        "invalid CA malformed certificate",
        Some("malformed.ca.test"),
        (
            "edge",
            cert(&f.cert),
            key_rsa(&f.cert),
            Some(malformed.clone()),
            None,
        ),
        2,
        ext,
        None,
    );
    add(
        "invalid destination CA with csr",
        Some("csr.destination.ca"),
        (
            "reencrypt",
            cert(&f.self_signed),
            key(&f.self_signed),
            None,
            Some(csr.clone()),
        ),
        1,
        ext,
        None,
    );
    add(
        "invalid destination CA with private key",
        Some("key.destination.ca"),
        (
            "reencrypt",
            cert(&f.self_signed),
            key(&f.self_signed),
            None,
            Some(csr),
        ),
        1,
        ext,
        None,
    );
    add(
        "malformed destination CA",
        Some("malformed.destination.ca"),
        (
            "reencrypt",
            cert(&f.self_signed),
            key(&f.self_signed),
            None,
            Some(malformed),
        ),
        1,
        ext,
        None,
    );
    add(
        "valid destination CA with whitespace",
        None,
        ("reencrypt", None, None, None, Some(int_chain.clone())),
        0,
        ok,
        None,
    );
    add(
        "unexpected key type",
        None,
        (
            "reencrypt",
            None,
            s("-----BEGIN UNRECOGNIZED-----\n-----END UNRECOGNIZED-----\n"),
            None,
            Some(int_chain.clone()),
        ),
        1,
        ext,
        None,
    );
    add(
        "invalid PEM data silently dropped (bad trailer)",
        None,
        (
            "reencrypt",
            None,
            s("-----BEGIN UNRECOGNIZED-----\n----END UNRECOGNIZED-----\n"),
            None,
            Some(int_chain.clone()),
        ),
        0,
        ok,
        None,
    );
    let empty_ec_parameters = "-----BEGIN EC PARAMETERS-----\n-----END EC PARAMETERS-----\n";
    add(
        "EC PARAMETERS silently dropped",
        None,
        (
            "reencrypt",
            None,
            s(empty_ec_parameters),
            None,
            Some(int_chain.clone()),
        ),
        0,
        ok,
        None,
    );
    add(
        "EC PARAMETERS silently dropped and CA rewritten",
        None,
        (
            "edge",
            None,
            s(empty_ec_parameters),
            Some(int_chain.clone()),
            None,
        ),
        0,
        ok,
        None,
    );
    add(
        "invalid key returns error",
        None,
        (
            "edge",
            None,
            s("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
            Some(int_chain.clone()),
            None,
        ),
        1,
        ext,
        None,
    );
    let bz_keys = [
        ("bug 1723400 key 1", ec_under_label(&f.ec, "PRIVATE KEY")),
        (
            "bug 1723400 key 2",
            ec_under_label(&f.ec, "ECDSA PRIVATE KEY"),
        ),
        (
            "bug 1723400 key 3",
            format!(
                "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{}",
                ec_under_label(&f.ec, "PRIVATE KEY")
            ),
        ),
    ];
    for (name, text) in &bz_keys {
        add(
            name,
            None,
            ("edge", None, Some(text.clone()), cert(&f.ec), None),
            0,
            ok,
            None,
        );
    }
    add(
        "bz1843856",
        None,
        (
            "edge",
            Some(format!(
                "{}\n{}",
                f.cert.cert_pem(),
                f.cert.key_pem_traditional()
            )),
            None,
            None,
            None,
        ),
        0,
        ok,
        None,
    );
    add(
        "Edge termination with private key in both cert and key fields",
        None,
        (
            "edge",
            Some(format!(
                "{}\n{}",
                f.cert.cert_pem(),
                f.cert.key_pem_traditional()
            )),
            key(&f.int_expired),
            None,
            None,
        ),
        0,
        ok,
        None,
    );
    add(
        "Edge termination with invalid cert using MD5",
        None,
        ("edge", cert(&f.md5), key(&f.md5), None, None),
        1,
        ext,
        None,
    );
    add(
        "Edge termination with cert using SHA1 with RSA key",
        None,
        ("edge", cert(&f.sha1_rsa), key(&f.sha1_rsa), None, None),
        1,
        ext,
        None,
    );
    add(
        "Edge termination with cert using SHA1 with ECDSA key",
        None,
        (
            "edge",
            cert(&f.sha1_ecdsa),
            Some(f.sha1_ecdsa.key_pem_with_ec_parameters()),
            None,
            None,
        ),
        1,
        ext,
        None,
    );
    add(
        "Edge termination with self-signed cert using SHA1 RSA is valid",
        None,
        (
            "edge",
            cert(&f.sha1_self_signed),
            key(&f.sha1_self_signed),
            None,
            None,
        ),
        0,
        ok,
        None,
    );
    add(
        "Edge termination with self-signed cert using MD5 RSA is valid",
        None,
        (
            "edge",
            cert(&f.md5_self_signed),
            key(&f.md5_self_signed),
            None,
            None,
        ),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Reencrypt termination with destination CA root and intermediate cert using SHA1 RSA is invalid",
        None,
        (
            "reencrypt",
            None,
            None,
            None,
            Some(format!("{}{}", f.sha1_root.cert_pem(), f.sha1_int.cert_pem())),
        ),
        1,
        ext,
        None,
    );
    add(
        "Reencrypt termination with self-signed destination CA root cert using SHA1 with RSA key is valid",
        None,
        ("reencrypt", None, None, None, cert(&f.sha1_root)),
        0,
        ok,
        None,
    );
    add(
        "Edge termination with self-signed root CA cert using SHA1 and server cert using SHA256 is valid",
        None,
        (
            "edge",
            cert(&f.sha256_by_sha1_root),
            key(&f.sha256_by_sha1_root),
            cert(&f.sha1_root),
            None,
        ),
        0,
        admitted_unless_weak(),
        weak_key(true),
    );
    add(
        "Edge termination with root CA cert using SHA1, intermediate cert using SHA1, and server cert using SHA256 is invalid",
        None,
        (
            "edge",
            cert(&f.sha256_by_sha1_root),
            key(&f.sha256_by_sha1_root),
            Some(format!("{}{}", f.sha1_root.cert_pem(), f.sha1_int.cert_pem())),
            None,
        ),
        1,
        ext,
        None,
    );
    add(
        "Edge termination with CA-signed cert using SHA1, but cert subject is equal to issuer is still invalid",
        None,
        ("edge", cert(&f.same_subject), key(&f.same_subject), None, None),
        1,
        ext,
        None,
    );

    // Extra: the clean-ups with a certificate, so the cleaned key is what
    // HAProxy loads (rendered and checked by `haproxy -c`).
    for (name, text) in [
        (
            "extra: EC key under a PRIVATE KEY label, with its certificate",
            bz_keys[0].1.clone(),
        ),
        (
            "extra: EC key under an ECDSA PRIVATE KEY label, with its certificate",
            bz_keys[1].1.clone(),
        ),
        (
            "extra: key with a dropped bad-END block and an empty EC PARAMETERS block",
            format!(
                "-----BEGIN UNRECOGNIZED-----\n----END UNRECOGNIZED-----\n{empty_ec_parameters}{}",
                bz_keys[0].1
            ),
        ),
    ] {
        cases.push(TlsCase {
            name,
            origin: Origin::Extra,
            go_errors: 0,
            route: route(
                name,
                Some("www.example.com"),
                ("edge", cert(&f.ec), Some(text), None, None),
            ),
            expect: Expect::Admitted,
            deliberate: None,
        });
    }
    cases
}
