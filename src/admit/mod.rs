//! Admission: for a whole snapshot, which Routes this router serves and why
//! not (SPEC §3). A pure function of the snapshot and the router settings.
//!
//! Order of the steps:
//! 1. API validation (`ValidationFailed`): what an API server would have
//!    refused never reaches the router's own rules. It runs before the host
//!    step so that, e.g., a wildcard Route without a host is reported as the
//!    API would report it.
//! 2. Host (`NoHostValue`, `InvalidHost`, `RouteNotAdmitted`).
//! 3. Ownership (`HostAlreadyClaimed`) among the Routes that passed 1–2.
//! 4. TLS (`ExtendedValidationFailed`) for the claim winners; a Route
//!    rejected here keeps its claim, so a broken certificate never hands a
//!    host to another namespace.
//! 5. Annotations: invalid values become warnings, never rejections.

pub mod annotations;
pub mod host;
pub mod ownership;
pub mod route;
pub mod tls;
pub mod validation;
pub mod verdict;

use std::collections::BTreeMap;

use crate::model::{ObjectKey, Route, Snapshot};
use crate::settings::RouterSettings;

pub use route::AdmittedRoute;
pub use verdict::{Reason, Rejection, Verdict, VerdictReport};

/// [`admit_at`] with the system clock (which only affects certificate
/// validity warnings).
pub fn admit(snapshot: &Snapshot, settings: &RouterSettings) -> Vec<Verdict> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    admit_at(snapshot, settings, now)
}

/// Decide every Route of the snapshot at `now_unix` (seconds since the
/// epoch; used only for certificate validity warnings). The result is
/// sorted by `namespace/name` and does not depend on the order of the
/// snapshot.
pub fn admit_at(snapshot: &Snapshot, settings: &RouterSettings, now_unix: i64) -> Vec<Verdict> {
    let mut verdicts: BTreeMap<ObjectKey, Verdict> = BTreeMap::new();

    for undecodable in &snapshot.undecodable_routes {
        let key = crate::model::snapshot::key_of(&undecodable.metadata);
        verdicts.insert(
            key.clone(),
            Verdict {
                key,
                host: String::new(),
                outcome: Err(Rejection::new(
                    Reason::ValidationFailed,
                    format!("the Route cannot be decoded: {}", undecodable.message),
                )),
                warnings: Vec::new(),
            },
        );
    }

    // Steps 1-2 per Route.
    let mut passed: Vec<(
        &Route,
        route::RouteHost,
        validation::ValidatedSpec,
        Vec<String>,
    )> = Vec::new();
    for route in &snapshot.routes {
        let key = crate::model::snapshot::key_of(&route.metadata);
        let requested_host = route.spec.host.clone().unwrap_or_default();
        if let Err(rejection) = check_identity(&key) {
            verdicts.insert(
                key.clone(),
                rejected(key, requested_host, rejection, Vec::new()),
            );
            continue;
        }
        let spec = match validation::validate_spec(route) {
            Ok(spec) => spec,
            Err(rejection) => {
                verdicts.insert(
                    key.clone(),
                    rejected(key, requested_host, rejection, Vec::new()),
                );
                continue;
            }
        };
        match host::resolve_host(route, settings) {
            Ok(resolution) => {
                let mut warnings = spec.warnings.clone();
                warnings.extend(resolution.warnings);
                passed.push((route, resolution.host, spec, warnings));
            }
            Err(e) => {
                let host = if e.reported_host.is_empty() {
                    requested_host
                } else {
                    e.reported_host
                };
                verdicts.insert(key.clone(), rejected(key, host, e.rejection, spec.warnings));
            }
        }
    }

    // Step 3 over the survivors.
    let candidates: Vec<ownership::Candidate> = passed
        .iter()
        .map(|(route, host, spec, _)| ownership::Candidate {
            key: crate::model::snapshot::key_of(&route.metadata),
            host: host.clone(),
            path: spec.path.clone(),
            termination: spec.tls.as_ref().map(|t| t.termination),
            created: route.metadata.creation_timestamp.clone(),
            uid: route.metadata.uid.clone().unwrap_or_default(),
        })
        .collect();
    let mut claim_losers =
        ownership::resolve_claims(&candidates, !settings.disable_namespace_ownership_check);

    // Steps 4-5 for the winners.
    for (route, host, spec, mut warnings) in passed {
        let key = crate::model::snapshot::key_of(&route.metadata);
        let host_text = host.host.clone();
        if let Some(rejection) = claim_losers.remove(&key) {
            verdicts.insert(key.clone(), rejected(key, host_text, rejection, warnings));
            continue;
        }
        let tls = match &spec.tls {
            None => None,
            Some(raw) => match tls::check_tls_at(&host, raw, now_unix) {
                Ok(check) => {
                    warnings.extend(check.warnings);
                    Some(check.tls)
                }
                Err(rejection) => {
                    verdicts.insert(key.clone(), rejected(key, host_text, rejection, warnings));
                    continue;
                }
            },
        };
        let annotations: BTreeMap<String, String> =
            route.metadata.annotations.clone().unwrap_or_default();
        let (options, annotation_warnings) =
            annotations::parse_annotations(&annotations, tls.as_ref().map(|t| t.termination));
        warnings.extend(annotation_warnings);
        let admitted = AdmittedRoute {
            key: key.clone(),
            host,
            path: spec.path,
            backends: spec.backends,
            target_port: spec.target_port,
            tls,
            options,
        };
        warnings.sort();
        warnings.dedup();
        verdicts.insert(
            key.clone(),
            Verdict {
                key,
                host: host_text,
                outcome: Ok(admitted),
                warnings,
            },
        );
    }
    verdicts.into_values().collect()
}

/// Names end up in backend names, server names and file names: hold them to
/// the API server's rules (namespace: DNS-1123 label; name: DNS-1123
/// subdomain), which manifests read from files never passed.
fn check_identity(key: &ObjectKey) -> Result<(), Rejection> {
    let mut problems = Vec::new();
    if key.namespace.len() > host::MAX_LABEL_LEN || key.namespace.contains('.') {
        problems.push(format!(
            "metadata.namespace: Invalid value: \"{}\": must be a DNS-1123 label (at most 63 characters, no dots)",
            host::printable(&key.namespace)
        ));
    } else if let Err(rule) = host::check_dns_subdomain(&key.namespace, false) {
        problems.push(format!(
            "metadata.namespace: Invalid value: \"{}\": must be a DNS-1123 label: {rule}",
            host::printable(&key.namespace)
        ));
    }
    if let Err(rule) = host::check_dns_subdomain(&key.name, false) {
        problems.push(format!(
            "metadata.name: Invalid value: \"{}\": must be a DNS-1123 subdomain: {rule}",
            host::printable(&key.name)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Rejection::new(
            Reason::ValidationFailed,
            problems.join("; "),
        ))
    }
}

fn rejected(
    key: ObjectKey,
    host: String,
    rejection: Rejection,
    mut warnings: Vec<String>,
) -> Verdict {
    warnings.sort();
    warnings.dedup();
    Verdict {
        key,
        host,
        outcome: Err(rejection),
        warnings,
    }
}
