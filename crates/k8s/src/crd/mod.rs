//! The Route CustomResourceDefinition, derived from the core's
//! [`RouteSpec`](routegen_core::model::RouteSpec) and [`RouteStatus`] schemas (`deploy/` ships it for
//! clusters without OpenShift's own; a test keeps the two equal).
//!
//! The core's `Route` is written by hand so the core does not depend on
//! kube; the CRD comes from kube's derive on a transparent wrapper of the
//! same spec, here, with openshift/api's validation laid over it
//! ([`openshift`]).

pub mod openshift;

use kube::CustomResource;
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use routegen_core::model::{RouteSpec as CoreSpec, RouteStatus};

/// `spec` of a Route.
// Only for the derive (its name is the CRD's description): the core's
// `RouteSpec`, transparently.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "route.openshift.io",
    version = "v1",
    kind = "Route",
    plural = "routes",
    namespaced,
    status = "RouteStatus"
)]
#[serde(transparent)]
#[schemars(transparent)]
struct RouteSpec {
    spec: CoreSpec,
}

/// The CustomResourceDefinition of `routes.route.openshift.io`: the
/// structure derived from the core's types, the validation and printer
/// columns of openshift/api's.
pub fn route_crd() -> CustomResourceDefinition {
    let mut crd = Route::crd();
    for version in &mut crd.spec.versions {
        let schema = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.take())
            .expect("the derive writes an openAPIV3Schema");
        let mut schema = serde_json::to_value(schema).expect("a schema serializes");
        openshift::apply(&mut schema);
        version.schema.as_mut().unwrap().open_api_v3_schema =
            Some(serde_json::from_value(schema).expect("openshift.rs writes valid schema fields"));
        version.additional_printer_columns = Some(
            serde_json::from_value(openshift::printer_columns())
                .expect("printer columns are valid"),
        );
    }
    crd
}
