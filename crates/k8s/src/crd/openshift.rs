//! What openshift/api's Route CRD (`route/v1`, `routes.route.openshift.io`)
//! validates, laid over the schema derived from the core's types: printer
//! columns, enums, patterns, lengths, required fields, defaults and CEL
//! rules (`x-kubernetes-validations`), so that a cluster using
//! `deploy/crd-route.yaml` refuses what an OpenShift API server refuses.
//!
//! Facts read from openshift/api (`route/v1/types.go` markers and the
//! generated `zz_generated.crd-manifests/routes-Default.crd.yaml`); where
//! openshift/api states a rule as `allOf`/`anyOf`/`not` schema, it is
//! written here as a CEL rule with a message naming the fields.
//!
//! The derived schema's `nullable` and serde-derived `default`s are
//! removed first: openshift/api has neither (a field sent as `null` is
//! dropped by the API server), and a derived `default: ""` would not
//! satisfy `minLength: 1` or an enum, which makes the API server refuse
//! the CRD itself.

use serde_json::{json, Map, Value};

/// A DNS-1123-like host name, as openshift/api's `host` and `subdomain`
/// patterns: labels of letters, digits and inner `-`, at most 63 each.
pub const HOST_PATTERN: &str = r"^([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9]))*$";

/// An HTTP header name (RFC 7230 token), as openshift/api's header action
/// `name` pattern.
pub const HEADER_NAME_PATTERN: &str = r"^[-!#$%&'*+.0-9A-Z^_`a-z|~]+$";

/// The printer columns of `kubectl get routes`: openshift/api's Host,
/// Admitted and Service, and `oc get routes`' Path, Port, Termination
/// and Wildcard. (openshift/api's `TLS` column reads `.spec.tls.type`, a
/// field the Route has not; Termination reads `.spec.tls.termination`.)
pub fn printer_columns() -> Value {
    json!([
        {"name": "Host", "type": "string", "jsonPath": ".status.ingress[0].host"},
        {"name": "Admitted", "type": "string",
         "jsonPath": ".status.ingress[0].conditions[?(@.type==\"Admitted\")].status"},
        {"name": "Path", "type": "string", "jsonPath": ".spec.path"},
        {"name": "Service", "type": "string", "jsonPath": ".spec.to.name"},
        {"name": "Port", "type": "string", "jsonPath": ".spec.port.targetPort"},
        {"name": "Termination", "type": "string", "jsonPath": ".spec.tls.termination"},
        {"name": "Wildcard", "type": "string", "jsonPath": ".spec.wildcardPolicy"},
    ])
}

/// Lays openshift/api's validation over `schema`, the derived
/// `openAPIV3Schema` of the Route. Panics when the derived schema lacks a
/// field named here (the core's model and this table must agree; the CRD
/// test runs this).
pub fn apply(schema: &mut Value) {
    strip(schema, &["nullable", "default"]);

    let spec = at(schema, &["spec"]);
    set(spec, "required", json!(["to"]));
    set(
        spec,
        "x-kubernetes-validations",
        json!([
            rule(
                "!has(self.tls) || self.tls.termination != 'passthrough' || !has(self.httpHeaders)",
                "header actions are not permitted when tls termination is passthrough.",
            ),
            rule(
                "!has(self.tls) || self.tls.termination != 'passthrough' || !has(self.path) || size(self.path) == 0",
                "spec.path is not allowed with spec.tls.termination: passthrough",
            ),
            rule(
                "!has(self.wildcardPolicy) || self.wildcardPolicy != 'Subdomain' || (has(self.host) && size(self.host) > 0)",
                "spec.wildcardPolicy: Subdomain needs spec.host",
            ),
        ]),
    );
    for name in ["host", "subdomain"] {
        let field = at(schema, &["spec", name]);
        set(field, "maxLength", json!(253));
        set(field, "pattern", json!(HOST_PATTERN));
    }
    set(at(schema, &["spec", "path"]), "pattern", json!("^/"));
    set(
        at(schema, &["spec", "wildcardPolicy"]),
        "enum",
        json!(["None", "Subdomain", ""]),
    );
    set(
        at(schema, &["spec", "wildcardPolicy"]),
        "default",
        json!("None"),
    );

    target_reference(at(schema, &["spec", "to"]));
    target_reference(at(schema, &["spec", "alternateBackends", "[]"]));
    set(
        at(schema, &["spec", "alternateBackends"]),
        "maxItems",
        json!(3),
    );

    set(
        at(schema, &["spec", "port", "targetPort"]),
        "allOf",
        json!([{"not": {"enum": [0]}}, {"not": {"enum": [""]}}]),
    );

    let tls = at(schema, &["spec", "tls"]);
    set(tls, "required", json!(["termination"]));
    props(tls).insert(
        "externalCertificate".into(),
        json!({
            "description": "A Secret in the Route's namespace holding the certificate (`tls.crt`, `tls.key`); forbidden with `certificate`.",
            "type": "object",
            "properties": {"name": {"description": "The Secret's name.", "type": "string"}},
            "x-kubernetes-map-type": "atomic",
        }),
    );
    set(
        tls,
        "x-kubernetes-validations",
        json!([
            rule(
                "has(self.termination) && has(self.insecureEdgeTerminationPolicy) ? !((self.termination=='passthrough') && (self.insecureEdgeTerminationPolicy=='Allow')) : true",
                "cannot have both spec.tls.termination: passthrough and spec.tls.insecureEdgeTerminationPolicy: Allow",
            ),
            rule(
                "self.termination != 'passthrough' || ((!has(self.certificate) || size(self.certificate) == 0) && (!has(self.key) || size(self.key) == 0) && (!has(self.caCertificate) || size(self.caCertificate) == 0) && (!has(self.destinationCACertificate) || size(self.destinationCACertificate) == 0))",
                "spec.tls.termination: passthrough takes no certificate, key, caCertificate or destinationCACertificate",
            ),
            rule(
                "self.termination != 'edge' || !has(self.destinationCACertificate) || size(self.destinationCACertificate) == 0",
                "spec.tls.destinationCACertificate is not allowed with spec.tls.termination: edge",
            ),
            rule(
                "!(has(self.certificate) && has(self.externalCertificate))",
                "cannot have both spec.tls.certificate and spec.tls.externalCertificate",
            ),
        ]),
    );
    set(
        at(schema, &["spec", "tls", "termination"]),
        "enum",
        json!(["edge", "reencrypt", "passthrough"]),
    );
    set(
        at(schema, &["spec", "tls", "insecureEdgeTerminationPolicy"]),
        "enum",
        json!(["Allow", "None", "Redirect", ""]),
    );

    props(at(schema, &["spec"])).insert("httpHeaders".into(), http_headers());

    set(
        at(
            schema,
            &[
                "status",
                "ingress",
                "[]",
                "conditions",
                "[]",
                "lastTransitionTime",
            ],
        ),
        "format",
        json!("date-time"),
    );
}

/// `spec.to` and each of `spec.alternateBackends`.
fn target_reference(reference: &mut Value) {
    set(reference, "required", json!(["kind", "name"]));
    let kind = at(reference, &["kind"]);
    set(kind, "enum", json!(["Service", ""]));
    set(kind, "default", json!("Service"));
    set(at(reference, &["name"]), "minLength", json!(1));
    let weight = at(reference, &["weight"]);
    set(weight, "format", json!("int32"));
    set(weight, "minimum", json!(0));
    set(weight, "maximum", json!(256));
    set(weight, "default", json!(100));
}

/// `spec.httpHeaders` (not in the core's derived schema: the core keeps it
/// as raw JSON and validates it itself).
fn http_headers() -> Value {
    json!({
        "description": "Header actions: request and response headers set or deleted.",
        "type": "object",
        "properties": {
            "actions": {
                "type": "object",
                "properties": {
                    "request": header_actions("req.hdr"),
                    "response": header_actions("res.hdr"),
                },
            },
        },
    })
}

/// A list of header actions whose dynamic values may use `fetch` (and
/// `ssl_c_der`, converters `lower` and `base64`).
fn header_actions(fetch: &str) -> Value {
    let fetch_re = fetch.replace('.', r"\\.");
    let value_rule = format!(
        r#"self.all(key, key.action.type == "Delete" || (has(key.action.set) && key.action.set.value.matches('^(?:%(?:%|(?:\\{{[-+]?[QXE](?:,[-+]?[QXE])*\\}})?\\[(?:{fetch_re}\\([0-9A-Za-z-]+\\)|ssl_c_der)(?:,(?:lower|base64))*\\])|[^%[:cntrl:]])+$')))"#
    );
    let reserved: Vec<Value> = ["strict-transport-security", "proxy", "cookie", "set-cookie"]
        .into_iter()
        .map(|h| {
            rule(
                &format!("self.lowerAscii() != '{h}'"),
                &format!("{h} header may not be modified via header actions"),
            )
        })
        .collect();
    json!({
        "type": "array",
        "maxItems": 20,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "x-kubernetes-validations": [rule(
            &value_rule,
            &format!("Either the header value provided is not in correct format or the sample fetcher/converter specified is not allowed: a value is text without control characters, `%%` or `%[...]` with the sample fetchers {fetch}, ssl_c_der and the converters lower, base64."),
        )],
        "items": {
            "type": "object",
            "required": ["action", "name"],
            "properties": {
                "name": {
                    "description": "The header's name (an HTTP token, unique in the list).",
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": HEADER_NAME_PATTERN,
                    "x-kubernetes-validations": reserved,
                },
                "action": {
                    "type": "object",
                    "required": ["type"],
                    "properties": {
                        "type": {"type": "string", "enum": ["Set", "Delete"]},
                        "set": {
                            "type": "object",
                            "required": ["value"],
                            "properties": {
                                "value": {"type": "string", "minLength": 1, "maxLength": 16384},
                            },
                        },
                    },
                    "x-kubernetes-validations": [rule(
                        "has(self.type) && self.type == 'Set' ?  has(self.set) : !has(self.set)",
                        "set is required when type is Set, and forbidden otherwise",
                    )],
                },
            },
        },
    })
}

fn rule(rule: &str, message: &str) -> Value {
    json!({"rule": rule, "message": message})
}

/// Removes the schema keywords `keys` from every object of the schema
/// tree (no Route field is named like them).
fn strip(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            for key in keys {
                map.remove(*key);
            }
            for (_, v) in map.iter_mut() {
                strip(v, keys);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip(v, keys)),
        _ => {}
    }
}

/// The schema of the field at `path` (`[]` steps into an array's items).
fn at<'a>(schema: &'a mut Value, path: &[&str]) -> &'a mut Value {
    let mut node = schema;
    for (i, step) in path.iter().enumerate() {
        let next = if *step == "[]" {
            node.get_mut("items")
        } else {
            node.get_mut("properties").and_then(|p| p.get_mut(*step))
        };
        node = next.unwrap_or_else(|| {
            panic!(
                "the derived Route schema has no {} (openshift.rs and the core's model disagree)",
                path[..=i].join(".")
            )
        });
    }
    node
}

fn props(schema: &mut Value) -> &mut Map<String, Value> {
    schema
        .get_mut("properties")
        .and_then(Value::as_object_mut)
        .expect("an object schema with properties")
}

fn set(schema: &mut Value, key: &str, value: Value) {
    schema
        .as_object_mut()
        .expect("a schema object")
        .insert(key.to_string(), value);
}
