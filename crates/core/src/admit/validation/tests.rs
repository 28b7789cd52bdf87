//! Tests of [`validate_spec`] as a whole (every violation reported, in
//! order; what a valid spec yields; warnings) and the helpers the field
//! group tests share (`tests/<group>.rs`).

mod backends;
mod headers;
mod path;
mod port;
mod subdomain;
mod tls;
mod wildcard;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::*;

/// A PEM field of `spec.tls`.
fn some_pem(s: &str) -> Option<std::sync::Arc<str>> {
    Some(s.into())
}
use crate::admit::route::InsecurePolicy;
use crate::model::route::RoutePort;
use crate::model::{RouteSpec, RouteTargetReference, TlsConfig};
use crate::testkit::RouteBuilder;
use crate::values::{
    Converter, DynamicPart, Fetch, HeaderAction, HeaderOp, HeaderValue, ValuePart, Weight,
};

/// What a case expects: admitted, or rejected with messages containing
/// every one of these fragments.
enum Expect {
    Ok,
    Err(&'static [&'static str]),
}

fn backend(name: &str, weight: Option<i64>) -> RouteTargetReference {
    RouteTargetReference {
        kind: None,
        name: name.to_string(),
        weight,
    }
}

/// [`validate_spec`] of the Route `ns/r` with `spec`.
fn validate(spec: RouteSpec) -> Result<ValidatedSpec, Rejection> {
    validate_spec(&RouteBuilder::new("ns", "r").spec(spec).build())
}

/// A valid plain-HTTP Route; cases change one thing.
fn base() -> RouteSpec {
    RouteSpec {
        host: Some("a.example.com".to_string()),
        to: RouteTargetReference {
            kind: Some("Service".to_string()),
            name: "svc".to_string(),
            weight: None,
        },
        ..Default::default()
    }
}

fn with(change: impl FnOnce(&mut RouteSpec)) -> RouteSpec {
    let mut spec = base();
    change(&mut spec);
    spec
}

fn tls(termination: &str) -> TlsConfig {
    TlsConfig {
        termination: termination.to_string(),
        ..Default::default()
    }
}

fn with_tls(termination: &str, change: impl FnOnce(&mut TlsConfig)) -> RouteSpec {
    let mut config = tls(termination);
    change(&mut config);
    with(|s| s.tls = Some(config))
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

fn port(target: IntOrString) -> Option<RoutePort> {
    Some(RoutePort {
        target_port: target,
    })
}

fn run_cases(cases: Vec<(&str, RouteSpec, Expect)>) {
    let mut failures = Vec::new();
    for (name, spec, expect) in cases {
        let result = validate(spec);
        match (&expect, &result) {
            (Expect::Ok, Ok(_)) => {}
            (Expect::Err(fragments), Err(rejection)) => {
                if rejection.reason != Reason::ValidationFailed {
                    failures.push(format!("{name}: reason {:?}", rejection.reason));
                }
                for fragment in *fragments {
                    if !rejection.message.contains(fragment) {
                        failures.push(format!(
                            "{name}: message {:?} lacks {fragment:?}",
                            rejection.message
                        ));
                    }
                }
            }
            (Expect::Ok, Err(rejection)) => {
                failures.push(format!("{name}: expected Ok, got {:?}", rejection.message))
            }
            (Expect::Err(_), Ok(spec)) => {
                failures.push(format!("{name}: expected rejection, got {spec:?}"))
            }
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

#[test]
fn collects_every_violation_in_order() {
    let spec = with(|s| {
        s.to.name = String::new();
        s.to.weight = Some(300);
        s.alternate_backends = Some(vec![backend("", Some(-5)); 4]);
        s.path = some("x");
        s.port = port(IntOrString::Int(0));
        s.tls = Some(TlsConfig {
            termination: "passthrough".into(),
            key: some_pem("k"),
            insecure_edge_termination_policy: some("Allow"),
            ..Default::default()
        });
        s.wildcard_policy = some("Nope");
        s.http_headers = Some(
            json!({"actions": {"request": [{"name": "Proxy", "action": {"type": "Delete"}}]}}),
        );
    });
    let rejection = validate(spec).unwrap_err();
    assert_eq!(rejection.reason, Reason::ValidationFailed);
    let parts: Vec<&str> = rejection.message.split("; ").collect();
    let fields: Vec<&str> = parts.iter().map(|p| p.split(':').next().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "spec.to.name",
            "spec.to.weight",
            "spec.alternateBackends",
            "spec.alternateBackends[0].name",
            "spec.alternateBackends[0].weight",
            "spec.alternateBackends[1].name",
            "spec.alternateBackends[1].weight",
            "spec.alternateBackends[2].name",
            "spec.alternateBackends[2].weight",
            "spec.alternateBackends[3].name",
            "spec.alternateBackends[3].weight",
            "spec.path",
            "spec.path",
            "spec.port.targetPort",
            "spec.tls.insecureEdgeTerminationPolicy",
            "spec.tls.key",
            "spec.wildcardPolicy",
            "spec.httpHeaders",
            "spec.httpHeaders.actions.request[0].name",
        ],
        "{}",
        rejection.message
    );
    // Same input, same message.
    let again = validate(with(|s| {
        s.to.name = String::new();
        s.to.weight = Some(300);
    }))
    .unwrap_err();
    assert_eq!(
        again.message,
        "spec.to.name: Required value; spec.to.weight: Invalid value: 300: must be between 0 and 256"
    );
}

#[test]
fn validated_spec_contents() {
    let spec = with(|s| {
        s.to.weight = Some(0);
        s.alternate_backends = Some(vec![backend("b", None), backend("c", Some(256))]);
        s.path = some("/api");
        s.port = port(IntOrString::Int(8443));
        s.tls = Some(TlsConfig {
            termination: "ReEncrypt".into(),
            certificate: some_pem("CERT"),
            key: some_pem("  \n"),
            ca_certificate: some_pem(""),
            destination_ca_certificate: some_pem("DEST"),
            insecure_edge_termination_policy: some("Disable"),
            external_certificate: None,
        });
    });
    let validated = validate(spec).unwrap();
    assert_eq!(
        validated,
        ValidatedSpec {
            path: Some("/api".into()),
            backends: vec![
                BackendRef {
                    service: "svc".into(),
                    weight: Weight::ZERO
                },
                BackendRef {
                    service: "b".into(),
                    weight: Weight::DEFAULT
                },
                BackendRef {
                    service: "c".into(),
                    weight: Weight::MAX
                },
            ],
            target_port: Some(TargetPort::Number(8443)),
            tls: Some(ValidatedTls {
                termination: Termination::Reencrypt,
                insecure_policy: InsecurePolicy::None,
                certificate: some_pem("CERT"),
                key: None,
                ca_certificate: None,
                destination_ca_certificate: some_pem("DEST"),
                external_certificate: None,
            }),
            headers: HeaderActions::default(),
            warnings: vec![],
        }
    );

    let minimal = validate(with(|s| {
        s.path = some("");
        s.port = port(IntOrString::String("https".into()));
    }))
    .unwrap();
    assert_eq!(minimal.path, None);
    assert_eq!(minimal.target_port, Some(TargetPort::Name("https".into())));
    assert_eq!(minimal.tls, None);
    assert!(minimal.warnings.is_empty());

    for (raw, policy) in [
        ("Allow", InsecurePolicy::Allow),
        ("Redirect", InsecurePolicy::Redirect),
        ("None", InsecurePolicy::None),
        ("", InsecurePolicy::None),
    ] {
        let v = validate(with_tls("Edge", |t| {
            t.insecure_edge_termination_policy = some(raw)
        }))
        .unwrap();
        let tls = v.tls.unwrap();
        assert_eq!(tls.termination, Termination::Edge);
        assert_eq!(tls.insecure_policy, policy, "{raw}");
    }
}

#[test]
fn newer_fields_are_applied_not_warned() {
    let v = validate(with_tls("edge", |t| {
        t.external_certificate = Some(json!({"name": "secret"}))
    }))
    .unwrap();
    // The reference is kept for admission to resolve (admit/external.rs).
    assert!(v.warnings.is_empty());
    let tls = v.tls.unwrap();
    assert_eq!(tls.certificate, None);
    assert_eq!(tls.external_certificate.as_deref(), Some("secret"));

    // A reference without a name counts as unset.
    let v = validate(with_tls("edge", |t| {
        t.external_certificate = Some(json!({}))
    }))
    .unwrap();
    assert!(v.warnings.is_empty());
    assert_eq!(v.tls.unwrap().external_certificate, None);

    // Header actions are applied: typed, in list order, no warning.
    let v = validate(with(|s| {
        s.http_headers = Some(json!({"actions": {
            "request": [
                {"name": "X-B", "action": {"type": "Set", "set": {"value": "a%%b %[req.hdr(X-C),lower,base64]!"}}},
                {"name": "X-A", "action": {"type": "Delete"}},
            ],
            "response": [
                {"name": "X-A", "action": {"type": "Delete"}},
                {"name": "X-D", "action": {"type": "Set", "set": {"value": "%{+Q}[ssl_c_der]"}}},
            ],
        }}))
    }))
    .unwrap();
    assert!(v.warnings.is_empty());
    let dynamic = |flags: Option<&str>, fetch, converters| {
        ValuePart::Dynamic(DynamicPart {
            flags: flags.map(str::to_string),
            fetch,
            converters,
        })
    };
    assert_eq!(
        v.headers,
        HeaderActions {
            request: vec![
                HeaderAction {
                    name: "X-B".into(),
                    op: HeaderOp::Set(HeaderValue {
                        parts: vec![
                            ValuePart::Literal("a%b ".into()),
                            dynamic(
                                None,
                                Fetch::ReqHdr("X-C".into()),
                                vec![Converter::Lower, Converter::Base64]
                            ),
                            ValuePart::Literal("!".into()),
                        ]
                    }),
                },
                HeaderAction {
                    name: "X-A".into(),
                    op: HeaderOp::Delete
                },
            ],
            response: vec![
                HeaderAction {
                    name: "X-A".into(),
                    op: HeaderOp::Delete
                },
                HeaderAction {
                    name: "X-D".into(),
                    op: HeaderOp::Set(HeaderValue {
                        parts: vec![dynamic(Some("+Q"), Fetch::SslCDer, vec![])]
                    }),
                },
            ],
        }
    );
    // The global actions (`--header-actions`) follow the same rules.
    let global = validate_global_header_actions(
        &json!({"request": [{"name": "X-A", "action": {"type": "Delete"}}]}),
        "actions",
    )
    .unwrap();
    assert_eq!(global.request.len(), 1);
    let err = validate_global_header_actions(
        &json!({"response": [{"name": "Set-Cookie", "action": {"type": "Delete"}}]}),
        "actions",
    )
    .unwrap_err();
    assert!(
        err.starts_with("actions.response[0].name: Forbidden"),
        "{err}"
    );

    // Nothing to ignore, nothing to warn about.
    for empty in [
        json!({}),
        json!({"actions": {}}),
        json!({"actions": {"request": []}}),
        json!(null),
    ] {
        let v = validate(with(|s| s.http_headers = Some(empty.clone()))).unwrap();
        assert!(v.warnings.is_empty(), "{empty}");
    }
}

/// A Route with one request (or response) action.
fn header(direction: &str, action: serde_json::Value) -> RouteSpec {
    with(|s| {
        s.tls = Some(tls("edge"));
        s.http_headers = Some(json!({ "actions": { direction: [action] } }));
    })
}

fn set(name: &str, value: &str) -> serde_json::Value {
    json!({"name": name, "action": {"type": "Set", "set": {"value": value}}})
}

#[test]
fn long_values_are_cut_in_messages() {
    let value = format!("{}%", "v".repeat(1000));
    let rejection = validate(header("request", set("X-A", &value))).unwrap_err();
    assert!(
        rejection.message.contains("vvv\"..."),
        "{}",
        rejection.message
    );
    assert!(rejection.message.len() < 1000, "{}", rejection.message);
}

#[test]
fn pem_contents_never_echoed() {
    let rejection = validate(with_tls("passthrough", |t| {
        t.key = some_pem("SECRET-KEY-MATERIAL");
        t.certificate = some_pem("SECRET-CERT");
    }))
    .unwrap_err();
    assert!(
        !rejection.message.contains("SECRET"),
        "{}",
        rejection.message
    );
}

#[test]
fn annotations_over_the_api_size_limit_are_refused_naming_the_field() {
    let mut r = RouteBuilder::new("ns", "r").spec(base()).build();
    let mut annotations = std::collections::BTreeMap::new();
    // 262144 bytes in total (key + value) is still allowed.
    let key = "haproxy.router.openshift.io/timeout".to_string();
    let fill = MAX_ANNOTATIONS_BYTES - key.len();
    annotations.insert(key.clone(), "x".repeat(fill));
    r.metadata.annotations = Some(annotations.clone());
    assert!(validate_spec(&r).is_ok());

    annotations.insert(key, "x".repeat(fill + 1));
    r.metadata.annotations = Some(annotations);
    let rejection = validate_spec(&r).unwrap_err();
    assert_eq!(rejection.reason, Reason::ValidationFailed);
    assert_eq!(
        rejection.message,
        "metadata.annotations: Too long: 262145 bytes: must have at most 262144 bytes"
    );
}
