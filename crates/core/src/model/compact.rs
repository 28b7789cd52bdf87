//! What the router keeps of Services and EndpointSlices: the fields the
//! plan reads, in types of its own.
//!
//! Sources convert objects as they arrive (the directory loader right
//! after decoding, the kube watchers before their caches hold an object),
//! so whatever else a cluster's objects carry (annotations, owner
//! references, topology, hints, status) costs no memory and no pass, and
//! an edit of such a field gives an equal object (a source keeps the one it
//! has). At 100,000 Routes (`routegen-bench memory`), Services and
//! EndpointSlices held 327 MiB of heap in k8s-openapi's types, already
//! stripped to these fields; in these types they hold 79 MiB.
//!
//! - A [`Service`] is kept for its presence only: namespace and name.
//!   Servers come from EndpointSlices (SPEC §2: a Route's targetPort
//!   matches the slice ports' names and numbers, which carry the Service's
//!   port names), so nothing reads a Service's spec.
//! - An [`EndpointSlice`] keeps its namespace and name, the
//!   `kubernetes.io/service-name` label, `addressType`, its ports (name,
//!   number, protocol, appProtocol), and per endpoint the addresses,
//!   `conditions.ready` and the `targetRef`'s kind and name (the server's
//!   name).
//!
//! Both deserialize from the Kubernetes JSON of the full object (through
//! k8s-openapi's decoder, so the same documents are accepted and refused).

use k8s_openapi::api::core::v1 as core_v1;
use k8s_openapi::api::discovery::v1 as discovery;
use serde::Deserialize;

use crate::plan::endpoints::SERVICE_NAME_LABEL;

/// A Service, as the router keeps it (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "core_v1::Service")]
pub struct Service {
    pub namespace: String,
    pub name: String,
}

/// An EndpointSlice, as the router keeps it (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(from = "discovery::EndpointSlice")]
pub struct EndpointSlice {
    pub namespace: String,
    pub name: String,
    /// Its `kubernetes.io/service-name` label: the Service it belongs to.
    pub service: Option<String>,
    /// `addressType`: `IPv4`, `IPv6` or `FQDN`.
    pub address_type: String,
    pub ports: Vec<SlicePort>,
    pub endpoints: Vec<SliceEndpoint>,
}

/// One port of an [`EndpointSlice`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SlicePort {
    pub name: Option<String>,
    pub port: Option<i32>,
    /// Unset means TCP.
    pub protocol: Option<String>,
    pub app_protocol: Option<String>,
}

/// One endpoint of an [`EndpointSlice`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SliceEndpoint {
    pub addresses: Vec<String>,
    /// `conditions.ready` (unset counts as ready).
    pub ready: Option<bool>,
    /// The `targetRef`'s kind and name.
    pub target: Option<TargetRef>,
}

/// What an endpoint's `targetRef` names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TargetRef {
    pub kind: Option<String>,
    pub name: Option<String>,
}

impl EndpointSlice {
    /// Its `namespace/name`.
    pub fn key(&self) -> super::ObjectKey {
        super::ObjectKey::new(self.namespace.as_str(), self.name.as_str())
    }
}

/// `s` in an allocation of its length: decoders leave spare capacity
/// (a parser's buffer), which a held object would keep for its lifetime.
fn tight(mut s: String) -> String {
    s.shrink_to_fit();
    s
}

fn tight_opt(s: Option<String>) -> Option<String> {
    s.map(tight)
}

/// `v` in an allocation of its length. Collecting a mapped `into_iter()`
/// reuses the source's buffer, sized for k8s-openapi's (much larger)
/// elements.
fn tight_vec<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

impl From<core_v1::Service> for Service {
    fn from(service: core_v1::Service) -> Self {
        Service {
            namespace: tight(service.metadata.namespace.unwrap_or_default()),
            name: tight(service.metadata.name.unwrap_or_default()),
        }
    }
}

impl From<discovery::EndpointSlice> for EndpointSlice {
    fn from(slice: discovery::EndpointSlice) -> Self {
        let meta = slice.metadata;
        EndpointSlice {
            namespace: tight(meta.namespace.unwrap_or_default()),
            name: tight(meta.name.unwrap_or_default()),
            service: meta
                .labels
                .and_then(|mut labels| labels.remove(SERVICE_NAME_LABEL))
                .map(tight),
            address_type: tight(slice.address_type),
            ports: tight_vec(
                slice
                    .ports
                    .unwrap_or_default()
                    .into_iter()
                    .map(|p| SlicePort {
                        name: tight_opt(p.name),
                        port: p.port,
                        protocol: tight_opt(p.protocol),
                        app_protocol: tight_opt(p.app_protocol),
                    })
                    .collect(),
            ),
            endpoints: tight_vec(
                slice
                    .endpoints
                    .into_iter()
                    .map(|e| SliceEndpoint {
                        addresses: tight_vec(e.addresses.into_iter().map(tight).collect()),
                        ready: e.conditions.and_then(|c| c.ready),
                        target: e.target_ref.map(|r| TargetRef {
                            kind: tight_opt(r.kind),
                            name: tight_opt(r.name),
                        }),
                    })
                    .collect(),
            ),
        }
    }
}

impl From<&discovery::EndpointSlice> for EndpointSlice {
    fn from(slice: &discovery::EndpointSlice) -> Self {
        slice.clone().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_slice() -> serde_json::Value {
        serde_json::json!({
            "metadata": {
                "name": "web-abcde", "namespace": "shop", "uid": "u1",
                "resourceVersion": "7", "generateName": "web-",
                "labels": {
                    "kubernetes.io/service-name": "web",
                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
                },
                "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2026-01-01T00:00:00Z"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": "web", "uid": "u0"}]
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "h2c"}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
                 "nodeName": "node-1", "zone": "a", "hostname": "web-0",
                 "hints": {"forZones": [{"name": "a"}]},
                 "targetRef": {"kind": "Pod", "name": "web-0", "namespace": "shop", "uid": "p0", "resourceVersion": "3"}},
                {"addresses": ["10.0.0.2"], "conditions": {"serving": true}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false}}
            ]
        })
    }

    #[test]
    fn a_slice_keeps_what_the_plan_reads() {
        let slice: EndpointSlice = serde_json::from_value(full_slice()).unwrap();
        let string = |s: &str| Some(s.to_string());
        let endpoint = |address: &str, ready, target| SliceEndpoint {
            addresses: vec![address.to_string()],
            ready,
            target,
        };
        let want = EndpointSlice {
            namespace: "shop".into(),
            name: "web-abcde".into(),
            service: string("web"),
            address_type: "IPv4".into(),
            ports: vec![SlicePort {
                name: string("http"),
                port: Some(8080),
                protocol: string("TCP"),
                app_protocol: string("h2c"),
            }],
            endpoints: vec![
                endpoint(
                    "10.0.0.1",
                    Some(true),
                    Some(TargetRef {
                        kind: string("Pod"),
                        name: string("web-0"),
                    }),
                ),
                endpoint("10.0.0.2", None, None),
                endpoint("10.0.0.3", Some(false), None),
            ],
        };
        assert_eq!(slice, want);
        let typed: discovery::EndpointSlice = serde_json::from_value(full_slice()).unwrap();
        assert_eq!(EndpointSlice::from(&typed), want, "the same as converted");
    }

    #[test]
    fn fields_the_plan_does_not_read_leave_a_slice_equal() {
        let mut edited = full_slice();
        edited["metadata"]["resourceVersion"] = "8".into();
        edited["metadata"]["annotations"]["x"] = "y".into();
        edited["endpoints"][0]["zone"] = "b".into();
        edited["endpoints"][0]["conditions"]["serving"] = false.into();
        let a: EndpointSlice = serde_json::from_value(full_slice()).unwrap();
        let b: EndpointSlice = serde_json::from_value(edited).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn wrong_types_are_refused_as_kubernetes_does() {
        let mut bad = full_slice();
        bad["endpoints"][0]["addresses"] = 7.into();
        assert!(serde_json::from_value::<EndpointSlice>(bad).is_err());
    }

    #[test]
    fn a_service_keeps_its_identity_only() {
        let service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u0", "resourceVersion": "5",
                         "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], "selector": {"app": "web"}},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        assert_eq!(
            service,
            Service {
                namespace: "shop".into(),
                name: "web".into()
            }
        );
    }
}
