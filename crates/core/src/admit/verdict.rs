//! What admission says about each Route.

use std::fmt;

use serde::Serialize;

use crate::model::ObjectKey;

use super::route::AdmittedRoute;

/// Why a Route was not admitted. The names are OpenShift's status reasons,
/// which are part of the API (`status.ingress[].conditions[].reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Reason {
    /// No host, no subdomain with a router domain, no hostname template.
    NoHostValue,
    /// The host is not a DNS-1123 subdomain.
    InvalidHost,
    /// Refused by router policy: denied/allowed domains, wildcard policy.
    RouteNotAdmitted,
    /// What the API server would refuse (schema and validation rules).
    ValidationFailed,
    /// Another Route owns the host (and path).
    HostAlreadyClaimed,
    /// TLS material that cannot be served.
    ExtendedValidationFailed,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoHostValue => "NoHostValue",
            Reason::InvalidHost => "InvalidHost",
            Reason::RouteNotAdmitted => "RouteNotAdmitted",
            Reason::ValidationFailed => "ValidationFailed",
            Reason::HostAlreadyClaimed => "HostAlreadyClaimed",
            Reason::ExtendedValidationFailed => "ExtendedValidationFailed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejection: the reason and a message naming the field and the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub message: String,
}

impl Rejection {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }
}

/// The decision for one Route: a shared [`VerdictData`] (its fields are
/// read through `Deref`). A pass hands on every Route's verdict, most of
/// them unchanged: cloning one costs a reference count, not its strings.
/// Writing through `DerefMut` copies a shared verdict first.
#[derive(Clone, Debug)]
pub struct Verdict(std::sync::Arc<VerdictData>);

/// What a [`Verdict`] says.
#[derive(Clone, Debug)]
pub struct VerdictData {
    pub key: ObjectKey,
    /// The effective host (derived, lower-cased) or, when none could be
    /// derived, whatever the Route asked for (possibly empty).
    pub host: crate::model::ArcStr,
    /// Shared: an unchanged Route keeps the same `Arc` from pass to pass
    /// (see [`super::AdmitMemo`]), which the plan's memo keys on.
    pub outcome: Result<std::sync::Arc<AdmittedRoute>, Rejection>,
    /// Non-fatal findings: ignored annotations, certificate expiry, SAN
    /// mismatch, case folding. Sorted, without duplicates.
    pub warnings: Vec<String>,
}

impl From<VerdictData> for Verdict {
    fn from(data: VerdictData) -> Verdict {
        Verdict(std::sync::Arc::new(data))
    }
}

impl std::ops::Deref for Verdict {
    type Target = VerdictData;
    fn deref(&self) -> &VerdictData {
        &self.0
    }
}

impl std::ops::DerefMut for Verdict {
    fn deref_mut(&mut self) -> &mut VerdictData {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl Verdict {
    pub fn is_admitted(&self) -> bool {
        self.outcome.is_ok()
    }

    pub fn rejection(&self) -> Option<&Rejection> {
        self.outcome.as_ref().err()
    }

    /// The flat, serializable report line `check --output json` prints.
    pub fn report(&self) -> VerdictReport {
        let (reason, message) = match &self.outcome {
            Ok(_) => (None, None),
            Err(r) => (Some(r.reason.as_str().to_string()), Some(r.message.clone())),
        };
        VerdictReport {
            namespace: self.key.namespace.to_string(),
            name: self.key.name.to_string(),
            host: self.host.to_string(),
            admitted: self.is_admitted(),
            reason,
            message,
            warnings: self.warnings.clone(),
        }
    }
}

/// SPEC §1 JSON shape of one `check` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerdictReport {
    pub namespace: String,
    pub name: String,
    pub host: String,
    pub admitted: bool,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub warnings: Vec<String>,
}
