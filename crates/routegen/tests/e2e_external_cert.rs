//! `spec.tls.externalCertificate` from `kind: Secret` manifests through the
//! real HAProxy (issue 19): the SNI handshake presents the Secret's
//! certificate; after the Secret changes (and the tree is rendered and
//! reloaded again, as `run` does with a directory source) the new one.
//! Traffic only to 127.0.0.1.

use routegen_core::testkit::certs;
use routegen_testsupport::e2e;

use certs::{CertSpec, Issued};
use e2e::{fingerprint, route, service1, Router};
use serde_json::{json, Value};

const ROUTEGEN: &str = env!("CARGO_BIN_EXE_routegen");

fn tls_secret(ns: &str, name: &str, cert: &Issued) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"namespace": ns, "name": name},
        "type": "kubernetes.io/tls",
        "stringData": {"tls.crt": cert.cert_pem(), "tls.key": cert.key_pem()},
    })
}

#[test]
fn external_certificate_served_and_rotated() {
    let default_cert: Issued = CertSpec::leaf(&["default.router.test"]).self_signed();
    let default_fp = fingerprint(&default_cert.cert);
    let mut r = Router::new(ROUTEGEN, &[], default_cert);
    let ns = "ext";
    let first = CertSpec::leaf(&["ext.test"]).cn("first").self_signed();
    let second = CertSpec::leaf(&["ext.test"]).cn("second").self_signed();
    let mut objects: Vec<Value> = service1(ns, "app", e2e::echo_server("app"));
    objects.push(
        route(ns, "app", "ext.test")
            .to("app", None)
            .tls("edge")
            .with_spec(|s| {
                s.tls.as_mut().unwrap().external_certificate = Some(json!({"name": "app-tls"}));
            })
            .to_json(),
    );
    let mut with_secret = objects.clone();
    with_secret.push(tls_secret(ns, "app-tls", &first));
    r.render(&with_secret);
    r.start();

    assert_eq!(
        served(&r),
        fingerprint(&first.cert),
        "the Secret's certificate"
    );
    assert_ne!(served(&r), default_fp);

    // Rotation: the Secret now holds another certificate.
    let mut rotated = objects.clone();
    rotated.push(tls_secret(ns, "app-tls", &second));
    r.render(&rotated);
    r.reload();
    assert_eq!(
        served(&r),
        fingerprint(&second.cert),
        "the rotated certificate"
    );
}

/// The certificate HAProxy presents for SNI `ext.test` (and the request
/// reaches the Route's server).
fn served(r: &Router) -> String {
    let (info, resp) = r.https("ext.test", "/");
    assert_eq!(resp.backend(), "app");
    info.fingerprint()
}
