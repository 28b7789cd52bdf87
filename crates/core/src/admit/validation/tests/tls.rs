//! Cases of `spec.tls`.

use super::*;

/// A PEM field of `spec.tls`.
fn some_pem(s: &str) -> Option<std::sync::Arc<str>> {
    Some(s.into())
}

#[test]
fn tls_rules() {
    const PEM: &str = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
    run_cases(vec![
        ("edge", with_tls("edge", |_| {}), Expect::Ok),
        ("EDGE", with_tls("EDGE", |_| {}), Expect::Ok),
        ("Passthrough", with_tls("Passthrough", |_| {}), Expect::Ok),
        ("reencrypt", with_tls("reencrypt", |_| {}), Expect::Ok),
        (
            "termination empty",
            with_tls("", |_| {}),
            Expect::Err(&["spec.tls.termination: Required value"]),
        ),
        (
            "termination nonsense",
            with_tls("edgy", |_| {}),
            Expect::Err(&[r#"spec.tls.termination: Unsupported value: "edgy": supported values: "edge", "passthrough", "reencrypt""#]),
        ),
        ("edge Allow", with_tls("edge", |t| t.insecure_edge_termination_policy = some("Allow")), Expect::Ok),
        ("edge Redirect", with_tls("edge", |t| t.insecure_edge_termination_policy = some("Redirect")), Expect::Ok),
        ("edge None", with_tls("edge", |t| t.insecure_edge_termination_policy = some("None")), Expect::Ok),
        ("edge Disable", with_tls("edge", |t| t.insecure_edge_termination_policy = some("Disable")), Expect::Ok),
        ("edge empty policy", with_tls("edge", |t| t.insecure_edge_termination_policy = some("")), Expect::Ok),
        ("reencrypt Allow", with_tls("reencrypt", |t| t.insecure_edge_termination_policy = some("Allow")), Expect::Ok),
        (
            "passthrough Redirect",
            with_tls("passthrough", |t| t.insecure_edge_termination_policy = some("Redirect")),
            Expect::Ok,
        ),
        ("passthrough None", with_tls("passthrough", |t| t.insecure_edge_termination_policy = some("None")), Expect::Ok),
        (
            "passthrough Allow",
            with_tls("passthrough", |t| t.insecure_edge_termination_policy = some("Allow")),
            Expect::Err(&["spec.tls.insecureEdgeTerminationPolicy: Invalid value: \"Allow\": cannot have both spec.tls.termination: passthrough and spec.tls.insecureEdgeTerminationPolicy: Allow"]),
        ),
        (
            "PASSTHROUGH Allow",
            with_tls("PASSTHROUGH", |t| t.insecure_edge_termination_policy = some("Allow")),
            Expect::Err(&["cannot have both"]),
        ),
        (
            "policy nonsense",
            with_tls("edge", |t| t.insecure_edge_termination_policy = some("nonsense")),
            Expect::Err(&[r#"spec.tls.insecureEdgeTerminationPolicy: Unsupported value: "nonsense": supported values: "Allow", "None", "Redirect", """#]),
        ),
        (
            "policy lower case",
            with_tls("edge", |t| t.insecure_edge_termination_policy = some("allow")),
            Expect::Err(&["spec.tls.insecureEdgeTerminationPolicy: Unsupported value"]),
        ),
        (
            "edge with cert, key, CA",
            with_tls("edge", |t| {
                t.certificate = some_pem(PEM);
                t.key = some_pem(PEM);
                t.ca_certificate = some_pem(PEM);
            }),
            Expect::Ok,
        ),
        (
            "reencrypt with everything",
            with_tls("reencrypt", |t| {
                t.certificate = some_pem(PEM);
                t.key = some_pem(PEM);
                t.ca_certificate = some_pem(PEM);
                t.destination_ca_certificate = some_pem(PEM);
            }),
            Expect::Ok,
        ),
        (
            "passthrough with empty PEM fields",
            with_tls("passthrough", |t| {
                t.certificate = some_pem("");
                t.key = some_pem("");
                t.ca_certificate = some_pem("");
                t.destination_ca_certificate = some_pem("");
            }),
            Expect::Ok,
        ),
        (
            "passthrough with certificate",
            with_tls("passthrough", |t| t.certificate = some_pem("x")),
            Expect::Err(&["spec.tls.certificate: Forbidden: passthrough termination does not support certificates"]),
        ),
        (
            "passthrough with whitespace certificate",
            with_tls("passthrough", |t| t.certificate = some_pem(" ")),
            Expect::Err(&["spec.tls.certificate: Forbidden"]),
        ),
        (
            "passthrough with key",
            with_tls("passthrough", |t| t.key = some_pem("x")),
            Expect::Err(&["spec.tls.key: Forbidden: passthrough termination does not support certificates"]),
        ),
        (
            "passthrough with CA",
            with_tls("passthrough", |t| t.ca_certificate = some_pem("x")),
            Expect::Err(&["spec.tls.caCertificate: Forbidden"]),
        ),
        (
            "passthrough with destination CA",
            with_tls("passthrough", |t| t.destination_ca_certificate = some_pem("x")),
            Expect::Err(&["spec.tls.destinationCACertificate: Forbidden"]),
        ),
        (
            "edge with destination CA",
            with_tls("edge", |t| t.destination_ca_certificate = some_pem("x")),
            Expect::Err(&["spec.tls.destinationCACertificate: Forbidden: edge termination does not support destination certificates"]),
        ),
        (
            "external certificate alone",
            with_tls("edge", |t| t.external_certificate = Some(json!({"name": "secret"}))),
            Expect::Ok,
        ),
        (
            "external certificate with empty certificate",
            with_tls("reencrypt", |t| {
                t.certificate = some_pem("");
                t.external_certificate = Some(json!({"name": "secret"}));
            }),
            Expect::Ok,
        ),
        ("external certificate null", with_tls("edge", |t| t.external_certificate = Some(json!(null))), Expect::Ok),
        (
            "external certificate with certificate",
            with_tls("edge", |t| {
                t.certificate = some_pem(PEM);
                t.external_certificate = Some(json!({"name": "secret"}));
            }),
            Expect::Err(&[r#"spec.tls.externalCertificate: Invalid value: "object": cannot have both spec.tls.certificate and spec.tls.externalCertificate"#]),
        ),
        (
            "external certificate with passthrough",
            with_tls("passthrough", |t| t.external_certificate = Some(json!({"name": "secret"}))),
            Expect::Err(&["spec.tls.externalCertificate: Forbidden: passthrough termination does not support certificates"]),
        ),
        (
            "external certificate not an object",
            with_tls("edge", |t| t.external_certificate = Some(json!("secret"))),
            Expect::Err(&[r#"spec.tls.externalCertificate: Invalid value: "string": must be of type object"#]),
        ),
        (
            "external certificate name not a string",
            with_tls("edge", |t| t.external_certificate = Some(json!({"name": 1}))),
            Expect::Err(&[r#"spec.tls.externalCertificate.name: Invalid value: "integer": must be of type string"#]),
        ),
    ]);
}
