//! Unknown and misplaced fields of Routes, Services and EndpointSlices
//! (issue 18), reported as kubectl's field validation does since 1.27
//! (`unknown field "spec.tsl"`).
//!
//! routegen's own types decode only what it uses and ignore the rest, so
//! they cannot tell a typo from a valid field routegen has no use for
//! (`status`, `metadata.managedFields`, an EndpointSlice's `hints`). The
//! valid fields are therefore those of the real API schemas, as JSON
//! Schemas: k8s-openapi's (its `schemars` feature) for `Service`,
//! `EndpointSlice` and every `metadata`, and [`route_schema`], written from
//! OpenShift's Route reference (`route.openshift.io/v1`, including the
//! newer `spec.httpHeaders` and `spec.tls.externalCertificate`), for
//! `Route`. A field is unknown when its object's schema lists properties
//! and neither they nor `additionalProperties` admit it; free-form objects
//! (maps such as `labels`, `fieldsV1`) admit anything. Values of the wrong
//! type are not this module's business: the decoders report them.
//!
//! A near miss of a known sibling is suggested (`spec.tsl` → `spec.tls`,
//! Damerau–Levenshtein distance 1, or 2 for names longer than four
//! characters); otherwise a field that exists exactly one level further
//! down (`namespace` at the top → `metadata.namespace`).
//!
//! [`Located`] finds the line of a field in the YAML text, for messages.

use std::fmt;
use std::sync::OnceLock;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};

/// The kinds whose fields are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Route,
    Service,
    EndpointSlice,
}

impl Kind {
    /// The kind's name, as in manifests.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Route => "Route",
            Kind::Service => "Service",
            Kind::EndpointSlice => "EndpointSlice",
        }
    }
}

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

/// A field path, shown as `spec.ports[0].name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldPath(pub(crate) Vec<Step>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Key(key) if i == 0 => write!(f, "{key}")?,
                Step::Key(key) => write!(f, ".{key}")?,
                Step::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A field that is not part of its object's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct UnknownField {
    /// Where it is, from the object's root.
    pub(crate) path: FieldPath,
    /// The known field it probably stands for, as a whole path.
    pub(crate) suggestion: Option<FieldPath>,
}

impl fmt::Display for UnknownField {
    /// `spec.tsl: unknown field, did you mean spec.tls?`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: unknown field", self.path)?;
        if let Some(suggestion) = &self.suggestion {
            write!(f, ", did you mean {suggestion}?")?;
        }
        Ok(())
    }
}

/// The fields of `object` (a whole object of `kind`, as parsed) that are
/// not in the kind's schema, depth first in the order of the parsed
/// object's keys (sorted: a JSON map). Below an unknown field nothing is
/// reported.
pub(crate) fn unknown_fields(kind: Kind, object: &Value) -> Vec<UnknownField> {
    let schema = Schema::of(kind);
    let mut out = Vec::new();
    schema.walk(&schema.root, object, &mut Vec::new(), &mut out);
    out
}

/// A JSON Schema with its definitions (`$ref: "#/$defs/<name>"`).
struct Schema {
    root: Value,
    defs: Map<String, Value>,
}

/// Most `$ref`s followed in a row (the schemas have no cycles of bare
/// references; this only bounds a mistake).
const MAX_REFS: usize = 16;

impl Schema {
    /// The schema of `kind`, built once.
    fn of(kind: Kind) -> &'static Schema {
        static ROUTE: OnceLock<Schema> = OnceLock::new();
        static SERVICE: OnceLock<Schema> = OnceLock::new();
        static SLICE: OnceLock<Schema> = OnceLock::new();
        match kind {
            Kind::Route => ROUTE.get_or_init(route_schema),
            Kind::Service => SERVICE.get_or_init(Schema::generated::<Service>),
            Kind::EndpointSlice => SLICE.get_or_init(Schema::generated::<EndpointSlice>),
        }
    }

    /// The schema k8s-openapi generates for `T`.
    fn generated<T: schemars::JsonSchema>() -> Schema {
        let mut root = schemars::SchemaGenerator::default()
            .into_root_schema_for::<T>()
            .to_value();
        let defs = match root.as_object_mut().and_then(|o| o.remove("$defs")) {
            Some(Value::Object(defs)) => defs,
            _ => Map::new(),
        };
        Schema { root, defs }
    }

    /// `node` with its `$ref`s followed.
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..MAX_REFS {
            let Some(target) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/$defs/"))
                .and_then(|name| self.defs.get(name))
            else {
                break;
            };
            node = target;
        }
        node
    }

    /// The declared properties of an object schema (after `$ref`s).
    fn properties<'a>(&'a self, node: &'a Value) -> Option<&'a Map<String, Value>> {
        self.resolve(node).get("properties")?.as_object()
    }

    fn walk(
        &self,
        schema: &Value,
        value: &Value,
        path: &mut Vec<Step>,
        out: &mut Vec<UnknownField>,
    ) {
        let schema = self.resolve(schema);
        match value {
            Value::Object(map) => {
                let properties = schema.get("properties").and_then(Value::as_object);
                let additional = schema.get("additionalProperties");
                for (key, child) in map {
                    path.push(Step::Key(key.clone()));
                    if let Some(known) = properties.and_then(|p| p.get(key)) {
                        self.walk(known, child, path, out);
                    } else if let Some(extra) = additional.filter(|a| a.is_object()) {
                        self.walk(extra, child, path, out);
                    } else if let (Some(properties), None | Some(Value::Bool(false))) =
                        (properties, additional)
                    {
                        let parent = &path[..path.len() - 1];
                        out.push(UnknownField {
                            path: FieldPath(path.clone()),
                            suggestion: self.suggest(properties, key).map(|tail| {
                                FieldPath(
                                    parent
                                        .iter()
                                        .cloned()
                                        .chain(tail.into_iter().map(Step::Key))
                                        .collect(),
                                )
                            }),
                        });
                    }
                    path.pop();
                }
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items").filter(|i| i.is_object()) {
                    for (index, item) in items.iter().enumerate() {
                        path.push(Step::Index(index));
                        self.walk(item_schema, item, path, out);
                        path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// What an unknown `key` among `siblings` probably stands for, relative
    /// to their parent: the nearest sibling name within [`near_miss`], else
    /// the one sibling object that declares `key` itself.
    fn suggest(&self, siblings: &Map<String, Value>, key: &str) -> Option<Vec<String>> {
        let nearest = siblings
            .keys()
            .filter_map(|name| near_miss(key, name).map(|d| (d, name)))
            .min_by_key(|(d, _)| *d);
        if let Some((_, name)) = nearest {
            return Some(vec![name.clone()]);
        }
        let mut holders = siblings
            .iter()
            .filter(|(_, schema)| self.properties(schema).is_some_and(|p| p.contains_key(key)));
        match (holders.next(), holders.next()) {
            (Some((holder, _)), None) => Some(vec![holder.clone(), key.to_string()]),
            _ => None,
        }
    }
}

/// The edit distance of `key` from a known `name` when `key` is a near
/// miss of it: at most 1 (an added, dropped, changed or swapped letter) for
/// names of up to four characters, at most 2 for longer ones; letter case
/// does not count.
fn near_miss(key: &str, name: &str) -> Option<usize> {
    let distance = strsim::damerau_levenshtein(&key.to_lowercase(), &name.to_lowercase());
    let limit = if name.chars().count() <= 4 { 1 } else { 2 };
    (distance <= limit).then_some(distance)
}

/// The Route's schema (OpenShift's `route.openshift.io/v1` reference:
/// `seed/route-api-reference.txt`, plus `spec.httpHeaders` and
/// `spec.tls.externalCertificate` of newer releases), with k8s-openapi's
/// `ObjectMeta` for `metadata`. Leaves are `{}`: any value.
fn route_schema() -> Schema {
    let meta = Schema::generated::<ObjectMeta>();
    let mut defs = meta.defs;
    defs.insert("ObjectMeta".into(), meta.root);
    let object = |properties: Value| json!({"type": "object", "properties": properties});
    let array = |items: Value| json!({"type": "array", "items": items});
    defs.insert(
        "RouteTargetReference".into(),
        object(json!({"kind": {}, "name": {}, "weight": {}})),
    );
    let header = object(json!({
        "name": {},
        "action": object(json!({"type": {}, "set": object(json!({"value": {}}))})),
    }));
    let root = object(json!({
        "apiVersion": {},
        "kind": {},
        "metadata": {"$ref": "#/$defs/ObjectMeta"},
        "spec": object(json!({
            "host": {},
            "subdomain": {},
            "path": {},
            "to": {"$ref": "#/$defs/RouteTargetReference"},
            "alternateBackends": array(json!({"$ref": "#/$defs/RouteTargetReference"})),
            "port": object(json!({"targetPort": {}})),
            "tls": object(json!({
                "termination": {},
                "certificate": {},
                "key": {},
                "caCertificate": {},
                "destinationCACertificate": {},
                "insecureEdgeTerminationPolicy": {},
                "externalCertificate": object(json!({"name": {}})),
            })),
            "wildcardPolicy": {},
            "httpHeaders": object(json!({
                "actions": object(json!({
                    "request": array(header.clone()),
                    "response": array(header),
                })),
            })),
        })),
        "status": object(json!({
            "ingress": array(object(json!({
                "host": {},
                "routerName": {},
                "routerCanonicalHostname": {},
                "wildcardPolicy": {},
                "conditions": array(object(json!({
                    "type": {},
                    "status": {},
                    "reason": {},
                    "message": {},
                    "lastTransitionTime": {},
                }))),
            }))),
        })),
    }));
    Schema { root, defs }
}

/// A YAML (or JSON) document's keys with the lines they are on, for
/// pointing at a field: parsed again, only when a document has a finding.
#[derive(Debug)]
pub(crate) enum Located {
    /// Keys with their 1-based lines (relative to the parsed text).
    Map(Vec<(String, u64, Located)>),
    Seq(Vec<Located>),
    Scalar,
}

impl Located {
    /// Parse `text` (one document); `None` when it cannot be (the caller
    /// then shows no line).
    pub(crate) fn parse(text: &str) -> Option<Located> {
        serde_saphyr::from_str_with_options(text, super::yaml_options()).ok()
    }

    /// The line of the key that ends `path`, below `self`.
    pub(crate) fn line_of(&self, path: &[Step]) -> Option<u64> {
        let (first, rest) = path.split_first()?;
        let (line, child) = match (self, first) {
            (Located::Map(entries), Step::Key(key)) => {
                let (_, line, child) = entries.iter().rev().find(|(k, _, _)| k == key)?;
                (Some(*line), child)
            }
            (Located::Seq(items), Step::Index(index)) => (None, items.get(*index)?),
            _ => return None,
        };
        if rest.is_empty() {
            line
        } else {
            child.line_of(rest)
        }
    }
}

impl<'de> Deserialize<'de> for Located {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(LocatedVisitor)
    }
}

struct LocatedVisitor;

/// Visitor methods that take a scalar of each type as [`Located::Scalar`].
macro_rules! scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {
        $(
            fn $method<E: de::Error>(self, _: $ty) -> Result<Located, E> {
                Ok(Located::Scalar)
            }
        )*
    };
}

impl<'de> Visitor<'de> for LocatedVisitor {
    type Value = Located;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Located, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<serde_saphyr::Spanned<KeyText>>()? {
            let value = map.next_value::<Located>()?;
            entries.push((key.value.0, key.referenced.line(), value));
        }
        Ok(Located::Map(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Located>()? {
            items.push(item);
        }
        Ok(Located::Seq(items))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Located, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_none<E: de::Error>(self) -> Result<Located, E> {
        Ok(Located::Scalar)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Located, E> {
        Ok(Located::Scalar)
    }

    scalars!(
        visit_bool: bool,
        visit_i64: i64,
        visit_u64: u64,
        visit_i128: i128,
        visit_u128: u128,
        visit_f64: f64,
        visit_str: &str,
        visit_bytes: &[u8],
    );
}

/// A mapping key as text (a scalar key of any type).
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar key")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }

            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".into()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(kind: Kind, yaml: &str) -> Vec<String> {
        let value: Value = serde_saphyr::from_str(yaml).unwrap();
        unknown_fields(kind, &value)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn typos_and_misplaced_fields_of_a_route_are_found_with_suggestions() {
        let yaml = "apiVersion: route.openshift.io/v1\nkind: Route\nnamespace: ns\n\
                    metadata:\n  name: r\n  annotation: {a: b}\n\
                    spec:\n  host: h\n  too: {name: s}\n  tsl: {termination: edge}\n\
                    \x20 alternateBackends:\n  - {name: a, wieght: 3}\n  termination: edge\n  frobnicate: 1\n";
        assert_eq!(
            found(Kind::Route, yaml),
            [
                "metadata.annotation: unknown field, did you mean metadata.annotations?",
                "namespace: unknown field, did you mean metadata.namespace?",
                "spec.alternateBackends[0].wieght: unknown field, did you mean spec.alternateBackends[0].weight?",
                "spec.frobnicate: unknown field",
                "spec.termination: unknown field, did you mean spec.tls.termination?",
                "spec.too: unknown field, did you mean spec.to?",
                "spec.tsl: unknown field, did you mean spec.tls?",
            ]
        );
    }

    #[test]
    fn every_real_route_field_is_known_including_ones_routegen_ignores() {
        let yaml = r#"
apiVersion: route.openshift.io/v1
kind: Route
metadata:
  name: r
  namespace: ns
  uid: 1
  resourceVersion: "3"
  generation: 2
  creationTimestamp: "2024-01-01T00:00:00Z"
  labels: {anything: goes}
  annotations: {haproxy.router.openshift.io/timeout: 5s}
  ownerReferences: [{apiVersion: v1, kind: X, name: x, uid: u, controller: true, blockOwnerDeletion: true}]
  finalizers: [a]
  managedFields:
  - manager: kubectl
    operation: Apply
    apiVersion: route.openshift.io/v1
    time: "2024-01-01T00:00:00Z"
    fieldsType: FieldsV1
    fieldsV1: {"f:spec": {"f:host": {}}}
spec:
  host: h
  subdomain: s
  path: /
  to: {kind: Service, name: s, weight: 1}
  alternateBackends: [{kind: Service, name: b, weight: 2}]
  port: {targetPort: http}
  wildcardPolicy: None
  tls:
    termination: edge
    certificate: c
    key: k
    caCertificate: ca
    destinationCACertificate: d
    insecureEdgeTerminationPolicy: Redirect
    externalCertificate: {name: secret}
  httpHeaders:
    actions:
      request: [{name: X-A, action: {type: Set, set: {value: v}}}]
      response: [{name: X-B, action: {type: Delete}}]
status:
  ingress:
  - host: h
    routerName: default
    routerCanonicalHostname: router.example.com
    wildcardPolicy: None
    conditions: [{type: Admitted, status: "True", reason: r, message: m, lastTransitionTime: "2024-01-01T00:00:00Z"}]
"#;
        assert_eq!(found(Kind::Route, yaml), Vec::<String>::new());
    }

    #[test]
    fn services_and_endpoint_slices_use_the_kubernetes_schema() {
        let service = r#"
apiVersion: v1
kind: Service
metadata: {name: s, namespace: ns, labels: {a: b}}
spec:
  selector: {app: web}
  type: ClusterIP
  clusterIP: 10.0.0.1
  clusterIPs: [10.0.0.1]
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  sessionAffinity: None
  internalTrafficPolicy: Cluster
  ports:
  - {name: http, port: 80, targetPort: 8080, protocol: TCP, appProtocol: h2c}
  - {name: https, port: 443, targetPort: https, nme: x}
  prots: []
status: {loadBalancer: {ingress: [{ip: 1.2.3.4}]}}
"#;
        assert_eq!(
            found(Kind::Service, service),
            [
                "spec.ports[1].nme: unknown field, did you mean spec.ports[1].name?",
                "spec.prots: unknown field, did you mean spec.ports?",
            ]
        );
        let slice = r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: s-1, labels: {kubernetes.io/service-name: s}}
addressType: IPv4
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true, serving: true, terminating: false}
  hints: {forZones: [{name: z}]}
  nodeName: n
  zone: z
  targetRef: {kind: Pod, name: p, namespace: ns}
  readdy: true
ports: [{name: http, port: 8080, protocol: TCP, appProtocol: http}]
"#;
        assert_eq!(
            found(Kind::EndpointSlice, slice),
            ["endpoints[0].readdy: unknown field"]
        );
    }

    #[test]
    fn near_misses_are_close_and_case_blind() {
        assert_eq!(near_miss("tsl", "tls"), Some(1));
        assert_eq!(
            near_miss("destinationCaCertificate", "destinationCACertificate"),
            Some(0)
        );
        assert_eq!(near_miss("too", "to"), Some(1));
        assert_eq!(near_miss("tlss", "to"), None);
        assert_eq!(near_miss("hots", "port"), None);
        assert_eq!(near_miss("subdomian", "subdomain"), Some(1));
    }

    #[test]
    fn located_finds_the_line_of_a_key() {
        let yaml = "kind: Route\nmetadata:\n  name: r\nspec:\n  ports:\n  - name: a\n  - {name: b,\n     nme: c}\n";
        let located = Located::parse(yaml).unwrap();
        let key = |k: &str| Step::Key(k.into());
        assert_eq!(located.line_of(&[key("spec")]), Some(4));
        assert_eq!(located.line_of(&[key("metadata"), key("name")]), Some(3));
        assert_eq!(
            located.line_of(&[key("spec"), key("ports"), Step::Index(1), key("nme")]),
            Some(8)
        );
        assert_eq!(located.line_of(&[key("nope")]), None);
        // JSON is YAML too.
        let json = "{\n  \"kind\": \"Route\",\n  \"spec\": {\n    \"tsl\": {}\n  }\n}\n";
        let located = Located::parse(json).unwrap();
        assert_eq!(located.line_of(&[key("spec"), key("tsl")]), Some(4));
    }
}
