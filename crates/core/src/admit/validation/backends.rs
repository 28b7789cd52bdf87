//! `spec.to` and `spec.alternateBackends`: kind, name and weight of each
//! Service, at most three alternates.

use crate::model::{RouteSpec, RouteTargetReference};

use super::Errors;
use crate::admit::route::BackendRef;
use crate::values::Weight;

/// At most this many `spec.alternateBackends`.
const MAX_ALTERNATE_BACKENDS: usize = 3;

/// `spec.to`, then each of `spec.alternateBackends`: the valid ones, in
/// order.
pub(super) fn check_backends(spec: &RouteSpec, errs: &mut Errors) -> Vec<BackendRef> {
    let mut backends = Vec::new();
    backends.extend(check_backend("spec.to", &spec.to, errs));
    if let Some(alternates) = &spec.alternate_backends {
        if alternates.len() > MAX_ALTERNATE_BACKENDS {
            errs.too_many(
                "spec.alternateBackends",
                alternates.len(),
                MAX_ALTERNATE_BACKENDS,
            );
        }
        for (index, backend) in alternates.iter().enumerate() {
            let path = format!("spec.alternateBackends[{index}]");
            backends.extend(check_backend(&path, backend, errs));
        }
    }
    backends
}

/// `spec.to` or one of `spec.alternateBackends`.
fn check_backend(
    path: &str,
    backend: &RouteTargetReference,
    errs: &mut Errors,
) -> Option<BackendRef> {
    let mut ok = true;
    let kind = backend.kind.as_deref().unwrap_or("");
    if !kind.is_empty() && kind != "Service" {
        errs.unsupported(&format!("{path}.kind"), kind, &["Service"]);
        ok = false;
    }
    if backend.name.is_empty() {
        errs.required(&format!("{path}.name"), None);
        ok = false;
    }
    // The one check of the weight's range: everything after admission
    // takes the `Weight` as it is.
    let weight = match backend.weight {
        None => Weight::DEFAULT,
        Some(raw) => match Weight::try_from(raw) {
            Ok(weight) => weight,
            Err(rule) => {
                errs.invalid(&format!("{path}.weight"), &raw, rule.rule());
                ok = false;
                Weight::ZERO
            }
        },
    };
    ok.then(|| BackendRef {
        service: backend.name.clone().into(),
        weight,
    })
}
