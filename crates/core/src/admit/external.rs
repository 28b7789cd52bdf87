//! `spec.tls.externalCertificate`: the Secret a Route names, resolved in
//! the Route's namespace, with OpenShift's rejections (reason
//! `ExtendedValidationFailed`, messages of the router's
//! `ValidateTLSExternalCertificate`):
//! - the source may not read it (403): `spec.tls.externalCertificate:
//!   Forbidden: router serviceaccount does not have permission to get this
//!   secret`;
//! - it does not exist: `spec.tls.externalCertificate: Not found:
//!   "secrets \"<name>\" not found"`;
//! - its type is not `kubernetes.io/tls`: `spec.tls.externalCertificate:
//!   Invalid value: "<name>": secret of type "kubernetes.io/tls" required`.
//!
//! A TLS Secret's `tls.crt` and `tls.key` then stand in for
//! `spec.tls.certificate` and `spec.tls.key`, and the TLS step checks them
//! exactly as inline ones (key match, expiry, SANs, re-encoding). Secret
//! contents never appear in a message.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;

use super::validation::ValidatedTls;
use super::verdict::{Reason, Rejection};
use crate::model::{ObjectKey, Snapshot};

const FIELD: &str = "spec.tls.externalCertificate";
/// The Secret type a Route's external certificate must have.
pub const SECRET_TYPE_TLS: &str = "kubernetes.io/tls";

/// What the snapshot holds for a referenced Secret.
#[derive(Clone, Debug)]
pub enum SecretLookup<'a> {
    Found(&'a Arc<Secret>),
    Missing,
    Forbidden,
}

impl SecretLookup<'_> {
    /// The Secret found, for memo identity.
    pub fn found(&self) -> Option<&Arc<Secret>> {
        match self {
            SecretLookup::Found(secret) => Some(secret),
            _ => None,
        }
    }
}

/// The snapshot's Secrets by `namespace/name`, indexed on first use (a
/// pass without external certificates builds nothing).
pub struct SecretIndex<'a> {
    snapshot: &'a Snapshot,
    by_key: std::cell::OnceCell<rustc_hash::FxHashMap<(&'a str, &'a str), &'a Arc<Secret>>>,
}

impl<'a> SecretIndex<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        SecretIndex {
            snapshot,
            by_key: std::cell::OnceCell::new(),
        }
    }

    /// What the snapshot holds for `namespace/name`.
    pub fn lookup(&self, key: &ObjectKey) -> SecretLookup<'a> {
        if self.snapshot.forbidden_secrets.contains(key) {
            return SecretLookup::Forbidden;
        }
        let by_key = self.by_key.get_or_init(|| {
            self.snapshot
                .secrets
                .iter()
                .map(|s| {
                    let m = &s.metadata;
                    let key = (
                        m.namespace.as_deref().unwrap_or_default(),
                        m.name.as_deref().unwrap_or_default(),
                    );
                    (key, s)
                })
                .collect()
        });
        by_key
            .get(&(key.namespace.as_str(), key.name.as_str()))
            .map_or(SecretLookup::Missing, |s| SecretLookup::Found(s))
    }
}

/// Look `namespace/name` up in `snapshot` (one lookup; see [`SecretIndex`]).
pub fn lookup<'a>(snapshot: &'a Snapshot, key: &ObjectKey) -> SecretLookup<'a> {
    SecretIndex::new(snapshot).lookup(key)
}

/// `tls` with the Secret's certificate and key in place of the inline
/// fields, or the Route's rejection.
pub fn resolve(
    tls: &ValidatedTls,
    name: &str,
    lookup: SecretLookup<'_>,
) -> Result<ValidatedTls, Rejection> {
    let reject = |message: String| Err(Rejection::new(Reason::ExtendedValidationFailed, message));
    let quoted = |s: &str| format!("{s:?}");
    let secret = match lookup {
        SecretLookup::Forbidden => {
            return reject(format!(
            "{FIELD}: Forbidden: router serviceaccount does not have permission to get this secret"
        ))
        }
        SecretLookup::Missing => {
            return reject(format!(
                "{FIELD}: Not found: {}",
                quoted(&format!("secrets {} not found", quoted(name)))
            ))
        }
        SecretLookup::Found(secret) => secret,
    };
    if secret.type_.as_deref() != Some(SECRET_TYPE_TLS) {
        return reject(format!(
            "{FIELD}: Invalid value: {}: secret of type {} required",
            quoted(name),
            quoted(SECRET_TYPE_TLS)
        ));
    }
    let field = |key: &str| -> Result<String, Rejection> {
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(key))
            .map(|b| b.0.as_slice())
            .unwrap_or_default();
        if bytes.is_empty() {
            return Err(Rejection::new(
                Reason::ExtendedValidationFailed,
                format!(
                    "{FIELD}: Invalid value: {}: secret has no {key}",
                    quoted(name)
                ),
            ));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| {
            Rejection::new(
                Reason::ExtendedValidationFailed,
                format!(
                    "{FIELD}: Invalid value: {}: {key} is not PEM text (not UTF-8)",
                    quoted(name)
                ),
            )
        })
    };
    let mut resolved = tls.clone();
    resolved.certificate = Some(field("tls.crt")?.into());
    resolved.key = Some(field("tls.key")?.into());
    Ok(resolved)
}

/// A rejection of the TLS step for a Secret's contents, said as such: the
/// step names `spec.tls.certificate`/`spec.tls.key`, which here are the
/// Secret's `tls.crt`/`tls.key`.
pub fn from_secret(name: &str, rejection: Rejection) -> Rejection {
    Rejection::new(
        rejection.reason,
        format!(
            "{FIELD}: secret {name:?} (tls.crt as spec.tls.certificate, tls.key as spec.tls.key): {}",
            rejection.message
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::route::{InsecurePolicy, Termination};
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    fn tls() -> ValidatedTls {
        ValidatedTls {
            termination: Termination::Edge,
            insecure_policy: InsecurePolicy::None,
            certificate: None,
            key: None,
            ca_certificate: None,
            destination_ca_certificate: None,
            external_certificate: Some("s".into()),
        }
    }

    fn secret(type_: &str, data: &[(&str, &str)]) -> Arc<Secret> {
        let mut s = Secret::default();
        s.metadata.namespace = Some("ns".into());
        s.metadata.name = Some("s".into());
        s.type_ = Some(type_.into());
        s.data = Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect::<BTreeMap<_, _>>(),
        );
        Arc::new(s)
    }

    #[test]
    fn openshift_messages() {
        let key = ObjectKey::new("ns", "s");
        let mut snapshot = Snapshot::default();
        let err = resolve(&tls(), "s", lookup(&snapshot, &key)).unwrap_err();
        assert_eq!(err.reason, Reason::ExtendedValidationFailed);
        assert_eq!(
            err.message,
            r#"spec.tls.externalCertificate: Not found: "secrets \"s\" not found""#
        );
        snapshot.forbidden_secrets.push(key.clone());
        let err = resolve(&tls(), "s", lookup(&snapshot, &key)).unwrap_err();
        assert_eq!(
            err.message,
            "spec.tls.externalCertificate: Forbidden: router serviceaccount does not have permission to get this secret"
        );
        snapshot.forbidden_secrets.clear();
        snapshot
            .secrets
            .push(secret("Opaque", &[("tls.crt", "SECRET-CRT")]));
        let err = resolve(&tls(), "s", lookup(&snapshot, &key)).unwrap_err();
        assert_eq!(
            err.message,
            r#"spec.tls.externalCertificate: Invalid value: "s": secret of type "kubernetes.io/tls" required"#
        );
        snapshot.secrets = vec![secret(SECRET_TYPE_TLS, &[("tls.crt", "SECRET-CRT")])];
        let err = resolve(&tls(), "s", lookup(&snapshot, &key)).unwrap_err();
        assert!(
            err.message.ends_with("secret has no tls.key"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("SECRET-CRT"));
        snapshot.secrets = vec![secret(
            SECRET_TYPE_TLS,
            &[("tls.crt", "SECRET-CRT"), ("tls.key", "SECRET-KEY")],
        )];
        let ok = resolve(&tls(), "s", lookup(&snapshot, &key)).unwrap();
        assert_eq!(ok.certificate.as_deref(), Some("SECRET-CRT"));
        assert_eq!(ok.key.as_deref(), Some("SECRET-KEY"));
        // Another namespace's Secret of the same name is not the Route's.
        let other = ObjectKey::new("other", "s");
        assert!(matches!(lookup(&snapshot, &other), SecretLookup::Missing));
    }

    /// The memo decides a Route again when its Secret changes (same Route
    /// `Arc`), and equals a fresh admission.
    #[test]
    fn memo_follows_the_secret() {
        use crate::admit::{admit_at, admit_memo, AdmitMemo};
        use crate::testkit::certs::{now_unix, CertSpec};
        use crate::testkit::RouteBuilder;

        let route = Arc::new(
            RouteBuilder::new("ns", "r")
                .host("r.example.com")
                .to("svc", None)
                .tls("edge")
                .with_spec(|s| {
                    s.tls.as_mut().unwrap().external_certificate =
                        Some(serde_json::json!({"name": "s"}))
                })
                .build(),
        );
        let leaf = CertSpec::leaf(&["r.example.com"]).self_signed();
        let good = secret(
            SECRET_TYPE_TLS,
            &[("tls.crt", &leaf.cert_pem()), ("tls.key", &leaf.key_pem())],
        );
        let settings = crate::RouterSettings::default();
        let cache = crate::admit::tls::TlsCheckCache::default();
        let mut memo = AdmitMemo::default();
        let mut snapshot = Snapshot {
            routes: vec![route.clone()],
            ..Snapshot::default()
        };
        let now = now_unix();
        let mut pass = |snapshot: &Snapshot| {
            let memoized = admit_memo(&mut memo, &cache, snapshot, &settings, now);
            let fresh = admit_at(snapshot, &settings, now);
            assert_eq!(format!("{memoized:?}"), format!("{fresh:?}"));
            memoized.into_iter().next().unwrap()
        };
        assert!(pass(&snapshot)
            .rejection()
            .unwrap()
            .message
            .contains("Not found"));
        snapshot.secrets = vec![good.clone()];
        let v = pass(&snapshot);
        assert!(v.is_admitted(), "{:?}", v.rejection());
        let served = v.outcome.as_ref().unwrap().tls.as_ref().unwrap();
        assert!(
            served.serving.is_some(),
            "served with the Secret's certificate"
        );
        snapshot.secrets = vec![secret("Opaque", &[])];
        assert!(pass(&snapshot)
            .rejection()
            .unwrap()
            .message
            .contains("kubernetes.io/tls"));
        snapshot.secrets = vec![good];
        snapshot.forbidden_secrets = vec![ObjectKey::new("ns", "s")];
        assert!(pass(&snapshot)
            .rejection()
            .unwrap()
            .message
            .contains("Forbidden"));
    }
}
