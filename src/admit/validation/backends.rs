//! `spec.to` and `spec.alternateBackends`: kind, name and weight of each
//! Service, at most three alternates.

use crate::model::{RouteSpec, RouteTargetReference};

use super::Errors;
use crate::admit::route::BackendRef;

/// Weight of a backend without one (the API default).
const DEFAULT_WEIGHT: u16 = 100;
/// Largest backend weight.
const MAX_WEIGHT: i64 = 256;
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
    let weight = match backend.weight {
        None => DEFAULT_WEIGHT,
        Some(weight) => match u16::try_from(weight) {
            Ok(weight) if i64::from(weight) <= MAX_WEIGHT => weight,
            _ => {
                errs.invalid(
                    &format!("{path}.weight"),
                    &weight,
                    &format!("must be between 0 and {MAX_WEIGHT}"),
                );
                ok = false;
                0
            }
        },
    };
    ok.then(|| BackendRef {
        service: backend.name.clone(),
        weight,
    })
}
