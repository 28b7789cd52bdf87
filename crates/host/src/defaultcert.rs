//! The default certificate (SPEC §6): served to TLS clients without SNI or
//! whose SNI has no Route certificate.
//!
//! Either the operator's (`--default-cert FILE`: private key and
//! certificate chain in one PEM file; the key must match the first
//! certificate), or a self-signed one (EC P-256, CN
//! [`SELF_SIGNED_CN`], valid 10 years) generated once and kept, mode
//! 0600, as [`STATE_FILE`] in the state directory, and reused on every
//! later run so the rendered tree stays the same across runs.
//!
//! A dry run (`render`, `diff`) given neither writes nothing: it uses
//! [`placeholder`], the same certificate everywhere, so two machines render
//! the same bytes. Its private key is in this source file: a tree rendered
//! with it must not be served.
//!
//! The PEM handed to the renderer is normalised: the private key (PKCS#8)
//! followed by the certificates in their original order; nothing else of
//! the input file (comments, other blocks) is carried over.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

/// Default `--state-dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/routegen";
/// The self-signed certificate's file in the state directory.
pub const STATE_FILE: &str = "default-cert.pem";
/// Common name of the self-signed certificate.
pub const SELF_SIGNED_CN: &str = "routegen default certificate";
/// Validity of the self-signed certificate.
pub const SELF_SIGNED_DAYS: u32 = 3650;

/// The dry run's default certificate (see the module documentation):
/// EC P-256, self-signed, valid until 2126. Its key is public: never serve
/// a tree that carries it.
pub const PLACEHOLDER_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgX7Oe+k8y6cWjJd61\n\
ZMWyhCnx2xTicIZiiFhOS1/W6qOhRANCAASRuiO+s8nKEUpu/q6ZzfGcXaMwTJro\n\
dlih062/CMchs6GoXDNBiT1oM/SB8KSq47c4+dF5n5d4oZP9vYX12g/2\n\
-----END PRIVATE KEY-----\n\
-----BEGIN CERTIFICATE-----\n\
MIIB9jCCAZygAwIBAgIBATAKBggqhkjOPQQDAjBIMREwDwYDVQQKDAhyb3V0ZWdl\n\
bjEzMDEGA1UEAwwqcm91dGVnZW4gcGxhY2Vob2xkZXIgKGRyeSBydW4sIHB1Ymxp\n\
YyBrZXkpMCAXDTI2MTIwNjAzMjYxMloYDzIxMjYxMTEyMDMyNjEyWjBIMREwDwYD\n\
VQQKDAhyb3V0ZWdlbjEzMDEGA1UEAwwqcm91dGVnZW4gcGxhY2Vob2xkZXIgKGRy\n\
eSBydW4sIHB1YmxpYyBrZXkpMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEkboj\n\
vrPJyhFKbv6umc3xnF2jMEya6HZYodOtvwjHIbOhqFwzQYk9aDP0gfCkquO3OPnR\n\
eZ+XeKGT/b2F9doP9qN1MHMwHQYDVR0OBBYEFHnq0xY+y+KTOi1RVxO9ReUWal2u\n\
MB8GA1UdIwQYMBaAFHnq0xY+y+KTOi1RVxO9ReUWal2uMAwGA1UdEwEB/wQCMAAw\n\
DgYDVR0PAQH/BAQDAgeAMBMGA1UdJQQMMAoGCCsGAQUFBwMBMAoGCCqGSM49BAMC\n\
A0gAMEUCIQDOJx309Xuu+87i67xdV+pCBicL8SVAEzPkuzSYzmOFIwIgOlKNL9Vq\n\
s2UvY7bno9X87Z5h4MifVXso5BTdEDuwhIM=\n\
-----END CERTIFICATE-----\n\
";

/// [`PLACEHOLDER_PEM`] as a default certificate.
pub fn placeholder() -> DefaultCert {
    parse(PLACEHOLDER_PEM.as_bytes(), "the built-in placeholder").expect("the placeholder is valid")
}

/// A usable default certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct DefaultCert {
    /// Private key then certificate chain (PEM). Secret.
    pub pem: String,
    /// SHA-256 of the leaf certificate's DER (`PlanSettings::default_cert_sha256`).
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for DefaultCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fp: String = self.sha256.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("DefaultCert")
            .field("pem", &"<redacted>")
            .field("sha256", &fp)
            .finish()
    }
}

/// Why no default certificate could be had.
#[derive(Debug, thiserror::Error)]
pub enum DefaultCertError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("cannot generate the default certificate: {0}")]
    Generate(#[from] openssl::error::ErrorStack),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> DefaultCertError + '_ {
    move |source| DefaultCertError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Parse and check a key + certificate chain PEM (`origin` names it in
/// errors).
pub fn parse(pem: &[u8], origin: &str) -> Result<DefaultCert, DefaultCertError> {
    let invalid = |message: String| DefaultCertError::Invalid {
        path: origin.to_string(),
        message,
    };
    let key = PKey::private_key_from_pem(pem).map_err(|_| {
        invalid(
            "no unencrypted PEM private key found (the file must hold the key and the certificate)"
                .into(),
        )
    })?;
    let certs = X509::stack_from_pem(pem)
        .map_err(|e| invalid(format!("cannot parse the certificates: {e}")))?;
    let leaf = certs.first().ok_or_else(|| {
        invalid("no PEM certificate found (the file must hold the key and the certificate)".into())
    })?;
    let leaf_key = leaf
        .public_key()
        .map_err(|e| invalid(format!("cannot read the certificate's public key: {e}")))?;
    if !leaf_key.public_eq(&key) {
        return Err(invalid(
            "the private key does not match the first certificate".into(),
        ));
    }
    let mut out = String::from_utf8(key.private_key_to_pem_pkcs8()?).expect("PEM is ASCII");
    for cert in &certs {
        out.push_str(std::str::from_utf8(&cert.to_pem()?).expect("PEM is ASCII"));
    }
    let digest = leaf.digest(MessageDigest::sha256())?;
    let mut sha256 = [0u8; 32];
    sha256.copy_from_slice(&digest);
    Ok(DefaultCert { pem: out, sha256 })
}

/// Read `--default-cert FILE`.
pub fn load_file(path: &Path) -> Result<DefaultCert, DefaultCertError> {
    let pem = fs::read(path).map_err(io_err(path))?;
    parse(&pem, &path.display().to_string())
}

/// A new self-signed certificate (EC P-256, CN [`SELF_SIGNED_CN`],
/// [`SELF_SIGNED_DAYS`] days), as key + certificate PEM.
pub fn generate_self_signed() -> Result<String, DefaultCertError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, SELF_SIGNED_CN)?;
    let name = name.build();

    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = Asn1Integer::from_bn(&serial)?;

    let mut b = X509Builder::new()?;
    b.set_version(2)?;
    b.set_serial_number(&serial)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let not_before = Asn1Time::days_from_now(0)?;
    let not_after = Asn1Time::days_from_now(SELF_SIGNED_DAYS)?;
    b.set_not_before(&not_before)?;
    b.set_not_after(&not_after)?;
    b.append_extension(BasicConstraints::new().critical().build()?)?;
    b.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    b.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None))?;
    b.append_extension(ski)?;
    b.sign(&key, MessageDigest::sha256())?;
    let cert = b.build();

    let mut pem = String::from_utf8(key.private_key_to_pem_pkcs8()?).expect("PEM is ASCII");
    pem.push_str(std::str::from_utf8(&cert.to_pem()?).expect("PEM is ASCII"));
    Ok(pem)
}

/// The self-signed certificate kept in `state_dir` ([`STATE_FILE`]),
/// generated and stored (mode 0600, directory 0700 when created) on first
/// use. Concurrent first uses agree on one certificate: the first file
/// written wins, never overwritten.
pub fn ensure_self_signed(state_dir: &Path) -> Result<DefaultCert, DefaultCertError> {
    if !state_dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(io_err(state_dir))?;
    }
    let path: PathBuf = state_dir.join(STATE_FILE);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() || !meta.is_file() => {
            return Err(DefaultCertError::Invalid {
                path: path.display().to_string(),
                message: "is not a regular file".into(),
            })
        }
        Ok(meta) => {
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
                    .map_err(io_err(&path))?;
            }
            return load_file(&path);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    let pem = generate_self_signed()?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(state_dir)
        .map_err(io_err(state_dir))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(io_err(&path))?;
    tmp.write_all(pem.as_bytes()).map_err(io_err(&path))?;
    tmp.as_file().sync_all().map_err(io_err(&path))?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => {
            fs::File::open(state_dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(state_dir))?;
        }
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(&path)(e.error)),
    }
    load_file(&path)
}

/// `--default-cert` when given, else the state directory's self-signed
/// one, or the [`placeholder`] when `state_dir` is `None` (a dry run).
pub fn resolve(
    default_cert: Option<&Path>,
    state_dir: Option<&Path>,
) -> Result<DefaultCert, DefaultCertError> {
    match (default_cert, state_dir) {
        (Some(path), _) => load_file(path),
        (None, Some(dir)) => ensure_self_signed(dir),
        (None, None) => Ok(placeholder()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaultcert_self_signed_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = ensure_self_signed(&state).unwrap();
        let b = ensure_self_signed(&state).unwrap();
        assert_eq!(a, b, "generated once, then reused");
        let file = state.join(STATE_FILE);
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let cert = X509::stack_from_pem(a.pem.as_bytes()).unwrap().remove(0);
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap();
        assert_eq!(cn.data().to_string().unwrap(), SELF_SIGNED_CN);
        let days = Asn1Time::days_from_now(0)
            .unwrap()
            .diff(cert.not_after())
            .unwrap()
            .days;
        assert!((3649..=3650).contains(&days), "{days}");
        assert!(a.pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
        assert_eq!(
            &cert.digest(MessageDigest::sha256()).unwrap()[..],
            &a.sha256[..]
        );
        assert!(!format!("{a:?}").contains("PRIVATE"));
        // A different state directory gets a different certificate.
        let c = ensure_self_signed(&dir.path().join("other")).unwrap();
        assert_ne!(a.sha256, c.sha256);
        // Loose permissions are tightened.
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(ensure_self_signed(&state).unwrap(), a);
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn defaultcert_refuses_planted_symlink_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join(STATE_FILE)).unwrap();
        assert!(ensure_self_signed(dir.path()).is_err());
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(STATE_FILE), "garbage").unwrap();
        assert!(
            ensure_self_signed(dir.path()).is_err(),
            "never silently replaced"
        );
    }

    #[test]
    fn defaultcert_operator_file() {
        let dir = tempfile::tempdir().unwrap();
        let good = generate_self_signed().unwrap();
        let path = dir.path().join("cert.pem");
        // Certificate first, key second, with text around: still fine, normalised.
        let (key, cert) = good.split_at(good.find("-----BEGIN CERTIFICATE").unwrap());
        fs::write(&path, format!("# comment\n{cert}junk\n{key}")).unwrap();
        let loaded = resolve(Some(&path), Some(&dir.path().join("unused"))).unwrap();
        assert_eq!(loaded.pem, good);
        assert!(!dir.path().join("unused").exists());
        // A dry run without a state directory: the placeholder, every time.
        assert_eq!(resolve(None, None).unwrap(), placeholder());
        assert!(placeholder().pem.contains("PRIVATE KEY"));

        let other = generate_self_signed().unwrap();
        let other_key = &other[..other.find("-----BEGIN CERTIFICATE").unwrap()];
        fs::write(&path, format!("{other_key}{cert}")).unwrap();
        let err = load_file(&path).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
        fs::write(&path, cert).unwrap();
        assert!(load_file(&path)
            .unwrap_err()
            .to_string()
            .contains("private key"));
        fs::write(&path, key).unwrap();
        assert!(load_file(&path)
            .unwrap_err()
            .to_string()
            .contains("certificate"));
        assert!(load_file(&dir.path().join("missing.pem")).is_err());
    }
}
