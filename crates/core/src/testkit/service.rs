//! [`ServiceBuilder`] and [`EndpointSliceBuilder`]: the objects behind a
//! Route's backends.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ObjectReference, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::plan::endpoints::SERVICE_NAME_LABEL;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: Some(ns.to_string()),
        ..ObjectMeta::default()
    }
}

/// A [`Service`] under construction.
///
/// Defaults ([`ServiceBuilder::new`]): `metadata.namespace` and
/// `metadata.name` only; an empty spec (no ports, no type, no selector);
/// no status.
#[derive(Clone, Debug)]
pub struct ServiceBuilder {
    service: Service,
}

impl ServiceBuilder {
    /// Service `ns/name` with an empty spec.
    pub fn new(ns: &str, name: &str) -> Self {
        ServiceBuilder {
            service: Service {
                metadata: meta(ns, name),
                spec: Some(ServiceSpec::default()),
                status: None,
            },
        }
    }

    /// One more port: `name`, `port`, numeric `targetPort`; no protocol.
    pub fn port(self, name: &str, port: i32, target_port: i32) -> Self {
        self.push_port(name, port, target_port, None)
    }

    /// [`port`](Self::port) with `protocol: TCP`.
    pub fn tcp_port(self, name: &str, port: i32, target_port: i32) -> Self {
        self.push_port(name, port, target_port, Some("TCP"))
    }

    fn push_port(mut self, name: &str, port: i32, target: i32, protocol: Option<&str>) -> Self {
        let spec = self.service.spec.get_or_insert_with(ServiceSpec::default);
        spec.ports.get_or_insert_with(Vec::new).push(ServicePort {
            name: Some(name.to_string()),
            port,
            target_port: Some(IntOrString::Int(target)),
            protocol: protocol.map(str::to_string),
            ..ServicePort::default()
        });
        self
    }

    super::manifest_methods!(service: Service, "Service");
}

/// An [`EndpointSlice`] under construction.
///
/// Defaults ([`EndpointSliceBuilder::new`]): `metadata.namespace`,
/// `metadata.name` and the label `kubernetes.io/service-name: <service>`;
/// `addressType: IPv4`; no ports (`ports` absent); no endpoints
/// (`endpoints: []`).
#[derive(Clone, Debug)]
pub struct EndpointSliceBuilder {
    slice: EndpointSlice,
}

impl EndpointSliceBuilder {
    /// Slice `ns/name` of Service `ns/service`, IPv4, empty.
    pub fn new(ns: &str, name: &str, service: &str) -> Self {
        let mut metadata = meta(ns, name);
        metadata.labels = Some(BTreeMap::from([(
            SERVICE_NAME_LABEL.to_string(),
            service.to_string(),
        )]));
        EndpointSliceBuilder {
            slice: EndpointSlice {
                metadata,
                address_type: "IPv4".to_string(),
                endpoints: Vec::new(),
                ports: None,
            },
        }
    }

    /// `addressType` (`IPv4`, `IPv6`, `FQDN`).
    pub fn address_type(mut self, address_type: &str) -> Self {
        self.slice.address_type = address_type.to_string();
        self
    }

    /// One more port: `name` and `port`; no protocol.
    pub fn port(self, name: &str, port: i32) -> Self {
        self.push_port(name, port, None)
    }

    /// [`port`](Self::port) with `protocol: TCP`.
    pub fn tcp_port(self, name: &str, port: i32) -> Self {
        self.push_port(name, port, Some("TCP"))
    }

    fn push_port(mut self, name: &str, port: i32, protocol: Option<&str>) -> Self {
        self.slice
            .ports
            .get_or_insert_with(Vec::new)
            .push(EndpointPort {
                name: Some(name.to_string()),
                port: Some(port),
                protocol: protocol.map(str::to_string),
                ..EndpointPort::default()
            });
        self
    }

    /// One more endpoint with only `addresses: [address]` (no conditions:
    /// readiness unknown, which consumers treat as ready).
    pub fn endpoint(self, address: &str) -> Self {
        self.push_endpoint(address, None, None)
    }

    /// One more endpoint `address` with `conditions.ready: true`.
    pub fn ready_endpoint(self, address: &str) -> Self {
        self.push_endpoint(address, Some(true), None)
    }

    /// One more endpoint `address` with `conditions.ready: true` and a
    /// `targetRef` to Pod `pod` in the slice's namespace.
    pub fn pod_endpoint(self, address: &str, pod: &str) -> Self {
        self.push_endpoint(address, Some(true), Some(pod))
    }

    fn push_endpoint(mut self, address: &str, ready: Option<bool>, pod: Option<&str>) -> Self {
        let target_ref = pod.map(|pod| ObjectReference {
            kind: Some("Pod".to_string()),
            name: Some(pod.to_string()),
            namespace: self.slice.metadata.namespace.clone(),
            ..ObjectReference::default()
        });
        self.slice.endpoints.push(Endpoint {
            addresses: vec![address.to_string()],
            conditions: ready.map(|ready| EndpointConditions {
                ready: Some(ready),
                ..EndpointConditions::default()
            }),
            target_ref,
            ..Endpoint::default()
        });
        self
    }

    super::manifest_methods!(slice: EndpointSlice, "EndpointSlice");
}
