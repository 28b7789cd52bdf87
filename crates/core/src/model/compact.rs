//! What the router keeps of Services and EndpointSlices: the fields the
//! plan reads, nothing more.
//!
//! Sources apply these as objects arrive (the directory loader right
//! after decoding, the kube watchers before their caches store an
//! object), so whatever else a cluster's objects carry (annotations,
//! owner references, topology, hints, status) costs no memory and no
//! pass. At 100,000 Routes the Services alone held 156 MiB of heap in
//! their full form.
//!
//! - A Service is kept for its presence only: name, namespace, uid and
//!   resourceVersion. Servers come from EndpointSlices (SPEC §2: a Route's
//!   targetPort matches the slice ports' names and numbers, which carry
//!   the Service's port names), so nothing reads a Service's spec.
//! - An EndpointSlice keeps its identity, the `kubernetes.io/service-name`
//!   label, `addressType`, its ports, and per endpoint the addresses,
//!   `conditions.ready` and the `targetRef`'s kind and name (the server's
//!   name).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::plan::endpoints::SERVICE_NAME_LABEL;

/// `service` reduced to what the router keeps (see the module docs).
pub fn compact_service(service: &mut Service) {
    compact_meta(&mut service.metadata, None);
    service.spec = None;
    service.status = None;
}

/// `slice` reduced to what the plan reads (see the module docs).
pub fn compact_endpoint_slice(slice: &mut EndpointSlice) {
    compact_meta(&mut slice.metadata, Some(SERVICE_NAME_LABEL));
    for endpoint in &mut slice.endpoints {
        compact_endpoint(endpoint);
    }
}

/// Identity (name, namespace, uid, resourceVersion) and the label `keep`.
fn compact_meta(meta: &mut ObjectMeta, keep: Option<&str>) {
    let labels = keep
        .and_then(|label| meta.labels.as_mut()?.remove_entry(label))
        .map(|(k, v)| BTreeMap::from([(k, v)]));
    *meta = ObjectMeta {
        name: meta.name.take(),
        namespace: meta.namespace.take(),
        uid: meta.uid.take(),
        resource_version: meta.resource_version.take(),
        labels,
        ..ObjectMeta::default()
    };
}

fn compact_endpoint(endpoint: &mut Endpoint) {
    let ready = endpoint.conditions.as_ref().and_then(|c| c.ready);
    let target_ref = endpoint.target_ref.take().map(|r| ObjectReference {
        kind: r.kind,
        name: r.name,
        ..ObjectReference::default()
    });
    *endpoint = Endpoint {
        addresses: std::mem::take(&mut endpoint.addresses),
        conditions: ready.map(|ready| EndpointConditions {
            ready: Some(ready),
            ..EndpointConditions::default()
        }),
        target_ref,
        ..Endpoint::default()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_slice() -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
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
        }))
        .unwrap()
    }

    #[test]
    fn a_slice_keeps_what_the_plan_reads() {
        let mut slice = full_slice();
        compact_endpoint_slice(&mut slice);
        let want: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "web-abcde", "namespace": "shop", "uid": "u1", "resourceVersion": "7",
                "labels": {"kubernetes.io/service-name": "web"}
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP", "appProtocol": "h2c"}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true},
                 "targetRef": {"kind": "Pod", "name": "web-0"}},
                {"addresses": ["10.0.0.2"]},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false}}
            ]
        }))
        .unwrap();
        assert_eq!(slice, want);
    }

    #[test]
    fn a_compact_slice_gives_the_same_servers() {
        use crate::admit::route::TargetPort;
        use crate::plan::endpoints::{service_servers, EndpointIndex};
        let full = full_slice();
        let mut compact = full.clone();
        compact_endpoint_slice(&mut compact);
        let servers = |slice: EndpointSlice| {
            let index = EndpointIndex::new(&[slice]);
            let mut warnings = Vec::new();
            let target = TargetPort::Name("http".into());
            let servers =
                service_servers(&index, "shop", "web", Some(&target), false, &mut warnings);
            (servers, warnings)
        };
        let got = servers(compact);
        assert_eq!(got, servers(full));
        assert_eq!(got.0.len(), 2, "the two ready endpoints");
    }

    #[test]
    fn a_service_keeps_its_identity_only() {
        let mut service: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u0", "resourceVersion": "5",
                         "labels": {"app": "web"}, "annotations": {"a": "b"}},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}], "selector": {"app": "web"}},
            "status": {"loadBalancer": {}}
        }))
        .unwrap();
        compact_service(&mut service);
        let want: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "shop", "uid": "u0", "resourceVersion": "5"}
        }))
        .unwrap();
        assert_eq!(service, want);
    }
}
