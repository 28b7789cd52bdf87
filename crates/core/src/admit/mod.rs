//! Admission: for a whole snapshot, which Routes this router serves and why
//! not (SPEC §3). A pure function of the snapshot, the router settings and
//! "now" (an argument: only certificate validity warnings depend on it).
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
pub mod external;
pub mod host;
pub mod limits;
pub mod ownership;
pub mod route;
pub mod tls;
pub mod validation;
pub mod verdict;

use std::collections::BTreeMap;

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::model::{same_arcs, ObjectKey, Route, Snapshot};
use crate::settings::RouterSettings;

pub use route::AdmittedRoute;
pub use verdict::{Reason, Rejection, Verdict, VerdictData, VerdictReport};

/// Decide every Route of the snapshot at `now_unix` (seconds since the
/// epoch; used only for certificate validity warnings). The result is
/// sorted by `namespace/name` and does not depend on the order of the
/// snapshot.
///
/// No certificate check result is kept beyond the call; long-running
/// callers use [`admit_memo`] with a [`tls::TlsCheckCache`] of their own.
pub fn admit_at(snapshot: &Snapshot, settings: &RouterSettings, now_unix: i64) -> Vec<Verdict> {
    admit_memo(
        &mut AdmitMemo::default(),
        &tls::TlsCheckCache::default(),
        snapshot,
        settings,
        now_unix,
    )
}

/// Per-Route admission results kept between passes (see [`admit_memo`]).
/// Keyed by the Route's `Arc` (pointer identity, the `Arc` held so the
/// pointer cannot be reused): a source hands the same `Arc` for an
/// unchanged object.
#[derive(Debug, Default)]
pub struct AdmitMemo {
    settings: Option<RouterSettings>,
    routes: HashMap<usize, MemoEntry>,
    /// Passes made (stamps the entries of `routes` each pass uses).
    pass: u64,
    /// The last pass, for a pass with the same inputs.
    last: Option<LastPass>,
    /// The claim candidates of the last pass (held, compared by identity)
    /// and the losers among them.
    claims: Option<ClaimsMemo>,
}

type ClaimsMemo = (Vec<Arc<FirstSteps>>, BTreeMap<ObjectKey, Rejection>);

#[derive(Debug)]
struct MemoEntry {
    route: Arc<Route>,
    first: Arc<FirstSteps>,
    /// Steps 4-5 of a claim winner, and the range of "now" it holds for.
    finished: Option<(Verdict, (i64, i64))>,
    /// The external certificate's Secret steps 4-5 used (held, compared by
    /// identity: a new Secret `Arc` decides again) and whether it was
    /// forbidden.
    secret: (Option<Arc<k8s_openapi::api::core::v1::Secret>>, bool),
    /// The last pass that used it.
    pass: u64,
}

/// Steps 1-2 of one Route: functions of the Route and the settings only.
#[derive(Debug)]
// Held in an `Arc`, one per Route: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
enum FirstSteps {
    Rejected(Verdict),
    Passed {
        candidate: ownership::Candidate,
        host: route::RouteHost,
        spec: validation::ValidatedSpec,
        warnings: Vec<String>,
    },
}

impl AdmitMemo {
    /// Routes remembered from the last pass.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

/// [`admit_at`] reusing `memo`: steps 1-2 and 4-5 of a Route whose `Arc`
/// was in the previous pass are taken from it (steps 4-5 only while "now"
/// stays in the range where their certificate validity warnings do not
/// change); ownership (step 3) is decided over the whole snapshot every
/// time. Certificate checks are answered from `tls_cache` when it holds
/// the same inputs. The result equals `admit_at(snapshot, settings,
/// now_unix)`; `memo` then describes this snapshot.
pub fn admit_memo(
    memo: &mut AdmitMemo,
    tls_cache: &tls::TlsCheckCache,
    snapshot: &Snapshot,
    settings: &RouterSettings,
    now_unix: i64,
) -> Vec<Verdict> {
    if memo.settings.as_ref() != Some(settings) {
        memo.routes.clear();
        memo.claims = None;
        memo.last = None;
        memo.settings = Some(settings.clone());
    }
    // The same inputs as the last pass (an endpoint change): its verdicts.
    if let Some(last) = memo
        .last
        .as_ref()
        .filter(|last| last.holds(snapshot, now_unix))
    {
        return last.verdicts.clone();
    }
    // Entries are kept in place and stamped with this pass; those left
    // unstamped (Routes gone) are dropped after the walk. An entry holds
    // its Route, so no other Route can have its address meanwhile.
    memo.pass += 1;
    let pass = memo.pass;
    let mut live = 0;
    // In decision order; for a key decided twice the later decision
    // stands (see the end).
    let mut verdicts: Vec<Verdict> = Vec::with_capacity(snapshot.routes.len());

    for undecodable in &snapshot.undecodable_routes {
        let key = crate::model::snapshot::key_of(&undecodable.metadata);
        verdicts.push(Verdict::from(VerdictData {
            key,
            host: Default::default(),
            outcome: Err(Rejection::new(
                Reason::ValidationFailed,
                format!("the Route cannot be decoded: {}", undecodable.message),
            )),
            warnings: Vec::new(),
        }));
    }

    // Steps 1-2 per Route (remembered).
    let mut passed: Vec<usize> = Vec::new();
    for route in &snapshot.routes {
        let id = Arc::as_ptr(route) as usize;
        let entry = memo.routes.entry(id).or_insert_with(|| MemoEntry {
            route: route.clone(),
            first: Arc::new(first_steps(route, settings)),
            finished: None,
            secret: (None, false),
            pass: 0,
        });
        if entry.pass != pass {
            entry.pass = pass;
            live += 1;
        }
        match &*entry.first {
            FirstSteps::Rejected(verdict) => {
                verdicts.push(verdict.clone());
            }
            FirstSteps::Passed { .. } => passed.push(id),
        }
    }
    if memo.routes.len() > live {
        memo.routes.retain(|_, entry| entry.pass == pass);
    }

    // Step 3 over the survivors.
    // Same candidates (by identity, in order) as the last pass: same claims.
    let firsts: Vec<Arc<FirstSteps>> = passed
        .iter()
        .map(|id| Arc::clone(&memo.routes[id].first))
        .collect();
    let same_candidates = memo
        .claims
        .as_ref()
        .is_some_and(|(before, _)| same_arcs(before, &firsts));
    if !same_candidates {
        let candidates = firsts.iter().map(|first| match &**first {
            FirstSteps::Passed { candidate, .. } => candidate,
            FirstSteps::Rejected(_) => unreachable!("only passed Routes are listed"),
        });
        let rules = ownership::ClaimRules {
            namespace_ownership_check: !settings.disable_namespace_ownership_check,
            max_routes_per_host: settings.max_routes_per_host,
        };
        let losers = ownership::resolve_claims(candidates, rules);
        memo.claims = Some((firsts, losers));
    }
    let mut claim_losers = memo.claims.as_ref().expect("set above").1.clone();

    // Steps 4-5 for the winners (remembered), in three phases: which
    // Routes need them again (cheap, in order), those steps in parallel
    // (certificate checks dominate a cold pass; the check cache is shared),
    // then the results recorded in order.
    let secrets = external::SecretIndex::new(snapshot);
    let mut records: Vec<Record> = Vec::with_capacity(passed.len());
    let mut work: Vec<Option<Again>> = Vec::with_capacity(passed.len());
    for &id in &passed {
        let entry = &memo.routes[&id];
        let FirstSteps::Passed {
            candidate,
            host,
            spec,
            warnings,
        } = &*entry.first
        else {
            unreachable!("only passed Routes are listed");
        };
        let key = &candidate.key;
        if let Some(rejection) = claim_losers.remove(key) {
            let verdict = rejected(key.clone(), host.host.clone(), rejection, warnings.clone());
            records.push(Record::Lost(verdict));
            work.push(None);
            continue;
        }
        let external = spec
            .tls
            .as_ref()
            .and_then(|t| t.external_certificate.as_deref())
            .map(|name| {
                let lookup = secrets.lookup(&ObjectKey::new(key.namespace.clone(), name));
                (name, lookup)
            });
        let secret_now = match &external {
            Some((_, lookup)) => (
                lookup.found().cloned(),
                matches!(lookup, external::SecretLookup::Forbidden),
            ),
            None => (None, false),
        };
        let same_secret = match (&entry.secret.0, &secret_now.0) {
            (None, None) => entry.secret.1 == secret_now.1,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        let still_holds = matches!(
            &entry.finished,
            Some((_, (from, to))) if same_secret && (*from..=*to).contains(&now_unix)
        );
        records.push(Record::Won { id, secret_now });
        work.push((!still_holds).then_some(Again {
            route: &entry.route,
            key,
            host,
            spec,
            warnings,
            external,
        }));
    }
    let fresh: Vec<Option<(Verdict, (i64, i64))>> = work
        .into_par_iter()
        .map(|again| {
            let again = again?;
            Some(finish_route(
                again.route,
                again.key.clone(),
                again.host,
                again.spec,
                again.warnings,
                TlsStep {
                    cache: tls_cache,
                    external: again.external,
                    now_unix,
                },
            ))
        })
        .collect();
    // The range of "now" every verdict of this pass holds for.
    let mut valid = (i64::MIN, i64::MAX);
    for (record, fresh) in records.into_iter().zip(fresh) {
        match record {
            Record::Lost(verdict) => verdicts.push(verdict),
            Record::Won { id, secret_now } => {
                let entry = memo.routes.get_mut(&id).expect("listed above");
                entry.secret = secret_now;
                if let Some(finished) = fresh {
                    entry.finished = Some(finished);
                }
                let (verdict, (from, to)) = entry.finished.as_ref().expect("set above");
                valid = (valid.0.max(*from), valid.1.min(*to));
                verdicts.push(verdict.clone());
            }
        }
    }
    // Sorted by key; of equal keys the last decided (stable sort) stays.
    verdicts.sort_by(|a, b| a.key.cmp(&b.key));
    let mut unique: Vec<Verdict> = Vec::with_capacity(verdicts.len());
    for v in verdicts {
        match unique.last_mut() {
            Some(last) if last.key == v.key => *last = v,
            _ => unique.push(v),
        }
    }
    memo.last = Some(LastPass {
        routes: snapshot.routes.clone(),
        undecodable: snapshot.undecodable_routes.clone(),
        secrets: snapshot.secrets.clone(),
        forbidden: snapshot.forbidden_secrets.clone(),
        valid,
        verdicts: unique.clone(),
    });
    unique
}

/// A pass's verdicts and the inputs they came from beyond the settings:
/// the Route objects (held, compared by identity), the undecodable ones,
/// the Secrets (by identity) and which are forbidden, and the range of
/// "now" every certificate-validity finding holds for.
#[derive(Debug)]
struct LastPass {
    routes: Vec<Arc<Route>>,
    undecodable: Vec<crate::model::snapshot::UndecodableRoute>,
    secrets: Vec<Arc<k8s_openapi::api::core::v1::Secret>>,
    forbidden: Vec<ObjectKey>,
    valid: (i64, i64),
    verdicts: Vec<Verdict>,
}

impl LastPass {
    /// Whether a pass over `snapshot` at `now_unix` decides what this one
    /// did: the same inputs, "now" in range.
    fn holds(&self, snapshot: &Snapshot, now_unix: i64) -> bool {
        (self.valid.0..=self.valid.1).contains(&now_unix)
            && same_arcs(&self.routes, &snapshot.routes)
            && same_arcs(&self.secrets, &snapshot.secrets)
            && self.undecodable == snapshot.undecodable_routes
            && self.forbidden == snapshot.forbidden_secrets
    }
}

/// Steps 1-2 for one Route.
fn first_steps(route: &Route, settings: &RouterSettings) -> FirstSteps {
    let key = crate::model::snapshot::key_of(&route.metadata);
    let requested_host = route.spec.host.clone().unwrap_or_default();
    if let Err(rejection) = check_identity(&key) {
        return FirstSteps::Rejected(rejected(key, requested_host, rejection, Vec::new()));
    }
    let spec = match validation::validate_spec(route) {
        Ok(spec) => spec,
        Err(rejection) => {
            return FirstSteps::Rejected(rejected(key, requested_host, rejection, Vec::new()));
        }
    };
    match host::resolve_host(route, settings) {
        Ok(resolution) => {
            let mut warnings = spec.warnings.clone();
            warnings.extend(resolution.warnings);
            let candidate = ownership::Candidate {
                key,
                host: resolution.host.clone(),
                path: spec.path.clone(),
                termination: spec.tls.as_ref().map(|t| t.termination),
                created: route.metadata.creation_timestamp.clone(),
                uid: route.metadata.uid.clone().unwrap_or_default(),
            };
            FirstSteps::Passed {
                candidate,
                host: resolution.host,
                spec,
                warnings,
            }
        }
        Err(e) => {
            let host = if e.reported_host.is_empty() {
                requested_host
            } else {
                e.reported_host
            };
            FirstSteps::Rejected(rejected(key, host, e.rejection, spec.warnings))
        }
    }
}

/// What steps 4-5 come to for one Route that passed steps 1-2, in the
/// order the verdicts are recorded.
enum Record {
    /// Lost its host claim (step 3).
    Lost(Verdict),
    /// Won it; `secret_now` is its external certificate's Secret this pass.
    Won {
        id: usize,
        secret_now: (Option<Arc<k8s_openapi::api::core::v1::Secret>>, bool),
    },
}

/// Steps 4-5 to decide again for a claim winner (the last decision no
/// longer holds): what they read, borrowed from the memo.
struct Again<'a> {
    route: &'a Route,
    key: &'a ObjectKey,
    host: &'a route::RouteHost,
    spec: &'a validation::ValidatedSpec,
    warnings: &'a [String],
    external: Option<(&'a str, external::SecretLookup<'a>)>,
}

/// What step 4 (TLS) takes besides the Route: the check cache, the
/// external certificate's name and Secret, and "now".
struct TlsStep<'a> {
    cache: &'a tls::TlsCheckCache,
    external: Option<(&'a str, external::SecretLookup<'a>)>,
    now_unix: i64,
}

/// Steps 4-5 for a claim winner: the verdict and the range of "now" it
/// holds for.
fn finish_route(
    route: &Route,
    key: ObjectKey,
    host: &route::RouteHost,
    spec: &validation::ValidatedSpec,
    warnings: &[String],
    tls_step: TlsStep<'_>,
) -> (Verdict, (i64, i64)) {
    let TlsStep {
        cache: tls_cache,
        external,
        now_unix,
    } = tls_step;
    let mut warnings = warnings.to_vec();
    let host_text = host.host.clone();
    let mut stable = (i64::MIN, i64::MAX);
    let tls = match &spec.tls {
        None => None,
        Some(raw) => {
            // An external certificate's Secret stands in for the inline
            // fields; then the same checks as an inline certificate.
            let resolved = match external {
                None => Ok(None),
                Some((name, lookup)) => {
                    external::resolve(raw, name, lookup).map(|t| Some((name, t)))
                }
            };
            let (external_name, checked) = match resolved {
                Err(rejection) => return (rejected(key, host_text, rejection, warnings), stable),
                Ok(None) => (None, tls_cache.check(host, raw, now_unix)),
                Ok(Some((name, resolved))) => {
                    (Some(name), tls_cache.check(host, &resolved, now_unix))
                }
            };
            match checked {
                Ok(check) => {
                    warnings.extend(check.warnings);
                    stable = check.stable;
                    Some(check.tls)
                }
                Err(rejection) => {
                    let rejection = match external_name {
                        Some(name) => external::from_secret(name, rejection),
                        None => rejection,
                    };
                    return (rejected(key, host_text, rejection, warnings), stable);
                }
            }
        }
    };
    let empty = BTreeMap::new();
    let annotations = route.metadata.annotations.as_ref().unwrap_or(&empty);
    let (options, annotation_warnings) =
        annotations::parse_annotations(annotations, tls.as_ref().map(|t| t.termination));
    warnings.extend(annotation_warnings);
    let admitted = AdmittedRoute {
        key: key.clone(),
        host: host.clone(),
        path: spec.path.clone(),
        backends: spec.backends.clone(),
        target_port: spec.target_port.clone(),
        tls,
        options: options.shared(),
        headers: spec.headers.clone(),
    };
    warnings.sort();
    warnings.dedup();
    (
        Verdict::from(VerdictData {
            key,
            host: host_text,
            outcome: Ok(Arc::new(admitted)),
            warnings,
        }),
        stable,
    )
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
    host: impl Into<crate::model::ArcStr>,
    rejection: Rejection,
    mut warnings: Vec<String>,
) -> Verdict {
    warnings.sort();
    warnings.dedup();
    Verdict::from(VerdictData {
        key,
        host: host.into(),
        outcome: Err(rejection),
        warnings,
    })
}
