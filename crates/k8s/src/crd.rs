//! The Route CustomResourceDefinition, derived from the core's
//! [`RouteSpec`](routegen_core::model::RouteSpec) and [`RouteStatus`] schemas (`deploy/` ships it for
//! clusters without OpenShift's own; a test keeps the two equal).
//!
//! The core's `Route` is written by hand so the core does not depend on
//! kube; the CRD comes from kube's derive on a transparent wrapper of the
//! same spec, here.

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

/// The CustomResourceDefinition of `routes.route.openshift.io`.
pub fn route_crd() -> CustomResourceDefinition {
    Route::crd()
}
