//! Step 5 of admission: annotations. Invalid values are ignored with a warning.

use std::collections::BTreeMap;

use super::route::Termination;

/// Typed, validated per-Route options from annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteOptions {}

/// Parse the annotations of one Route.
pub fn parse_annotations(
    annotations: &BTreeMap<String, String>,
    termination: Option<Termination>,
) -> (RouteOptions, Vec<String>) {
    let _ = (annotations, termination);
    (RouteOptions::default(), Vec::new())
}
