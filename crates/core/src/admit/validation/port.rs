//! `spec.port`.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::Errors;
use crate::admit::route::TargetPort;

/// `spec.port.targetPort`.
pub(super) fn check_target_port(target: &IntOrString, errs: &mut Errors) -> Option<TargetPort> {
    const FIELD: &str = "spec.port.targetPort";
    match target {
        IntOrString::Int(number) if (1..=65535).contains(number) => {
            Some(TargetPort::Number(*number))
        }
        IntOrString::Int(number) => {
            errs.invalid(
                FIELD,
                number,
                "must be a port number between 1 and 65535, or a port name",
            );
            None
        }
        IntOrString::String(name) if name.is_empty() => {
            errs.required(
                FIELD,
                Some("must be a port number or a port name, not empty"),
            );
            None
        }
        IntOrString::String(name) => Some(TargetPort::Name(name.clone())),
    }
}
