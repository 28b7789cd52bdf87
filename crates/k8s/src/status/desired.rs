//! The pure half of Route status: from a verdict and the status an object
//! holds, our `status.ingress[]` entry, whether to write it, and the merge
//! patch that writes it. See the [`status`](super) contract.
//!
//! No I/O: the time to record is an argument (`now`), the object's status
//! is given, not read.

use routegen_core::admit::Verdict;
use routegen_core::model::route::{RouteIngress, RouteIngressCondition, RouteStatus};
use routegen_core::model::ObjectKey;

/// Condition type routegen writes.
pub const ADMITTED: &str = "Admitted";
/// Condition written only while an admitted Route's backend leaves ready
/// endpoints out (the bound of servers per backend): status `True`.
pub const SERVERS_LEFT_OUT: &str = "ServersLeftOut";
/// Its reason.
pub const SERVERS_LEFT_OUT_REASON: &str = "MaxServersPerBackend";

/// Who we are in `status.ingress[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusConfig {
    /// `routerName` (`--router-name`).
    pub router_name: String,
    /// `routerCanonicalHostname` (`--router-canonical-hostname`).
    pub canonical_hostname: Option<String>,
}

impl StatusConfig {
    pub fn new(router_name: impl Into<String>, canonical_hostname: Option<String>) -> Self {
        StatusConfig {
            router_name: router_name.into(),
            canonical_hostname,
        }
    }
}

/// What the status of one Route depends on: the part of a [`Verdict`]
/// status shows (small, cheap to queue).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteVerdict {
    pub key: ObjectKey,
    pub host: String,
    /// `None`: admitted; else OpenShift's reason and the message.
    pub rejection: Option<(String, String)>,
    /// Ready endpoints the backend does not serve (the bound of servers
    /// per backend); 0 for most Routes.
    pub servers_left_out: usize,
}

impl From<&Verdict> for RouteVerdict {
    fn from(v: &Verdict) -> Self {
        RouteVerdict {
            key: v.key.clone(),
            host: v.host.to_string(),
            rejection: v
                .rejection()
                .map(|r| (r.reason.as_str().to_string(), r.message.clone())),
            servers_left_out: 0,
        }
    }
}

/// Our entry for a Route given its verdict. `wildcard_policy` is the
/// Route's `spec.wildcardPolicy`; `existing` our current entry, if any
/// (only its `lastTransitionTime` is used); `now` the time to record when
/// the condition flips (or is new).
pub fn desired_ingress(
    verdict: &Verdict,
    wildcard_policy: Option<&str>,
    config: &StatusConfig,
    existing: Option<&RouteIngress>,
    now: &str,
) -> RouteIngress {
    desired_entry(
        &RouteVerdict::from(verdict),
        wildcard_policy,
        config,
        existing,
        now,
    )
}

/// [`desired_ingress`] from the compact [`RouteVerdict`].
pub fn desired_entry(
    verdict: &RouteVerdict,
    wildcard_policy: Option<&str>,
    config: &StatusConfig,
    existing: Option<&RouteIngress>,
    now: &str,
) -> RouteIngress {
    let status = if verdict.rejection.is_none() {
        "True"
    } else {
        "False"
    };
    // A condition keeps its time while its status stays.
    let since = |type_: &str, status: &str| {
        existing
            .and_then(|e| e.conditions.iter().find(|c| c.type_ == type_))
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.to_string())
    };
    let (reason, message) = match &verdict.rejection {
        None => (None, None),
        Some((reason, message)) => (Some(reason.clone()), Some(message.clone())),
    };
    let mut conditions = vec![RouteIngressCondition {
        type_: ADMITTED.to_string(),
        status: status.to_string(),
        reason,
        message,
        last_transition_time: Some(since(ADMITTED, status)),
    }];
    if verdict.rejection.is_none() && verdict.servers_left_out > 0 {
        // The message holds no count, so scaling does not rewrite status;
        // routegen_route_servers_left_out has the count.
        conditions.push(RouteIngressCondition {
            type_: SERVERS_LEFT_OUT.to_string(),
            status: "True".to_string(),
            reason: Some(SERVERS_LEFT_OUT_REASON.to_string()),
            message: Some(format!(
                "the Route's Services have more ready endpoints than the {} servers a backend holds \
                 (MAX_SERVERS_PER_BACKEND); each Service serves its first endpoints by server name \
                 and the rest are not served",
                routegen_core::plan::backends::MAX_SERVERS_PER_BACKEND
            )),
            last_transition_time: Some(since(SERVERS_LEFT_OUT, "True")),
        });
    }
    RouteIngress {
        host: verdict.host.clone(),
        router_name: config.router_name.clone(),
        wildcard_policy: Some(
            wildcard_policy
                .filter(|p| !p.is_empty())
                .unwrap_or("None")
                .to_string(),
        ),
        router_canonical_hostname: config.canonical_hostname.clone(),
        conditions,
    }
}

/// Our entry in `status` (the first with our router name).
pub fn our_entry<'a>(
    status: Option<&'a RouteStatus>,
    router_name: &str,
) -> Option<&'a RouteIngress> {
    status?
        .ingress
        .iter()
        .find(|i| i.router_name == router_name)
}

/// Whether the object must be written: our entry (by `routerName`) is
/// missing, different from `desired`, or duplicated. Other routers'
/// entries are not looked at.
pub fn needs_patch(current: Option<&RouteStatus>, desired: &RouteIngress) -> bool {
    let mut ours = current
        .map(|s| s.ingress.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|i| i.router_name == desired.router_name);
    match (ours.next(), ours.next()) {
        (Some(entry), None) => entry != desired,
        _ => true,
    }
}

/// The `status.ingress` array to write: every other router's entry as it
/// is, in order; ours in place of the first entry with our name (later
/// duplicates dropped), or appended.
pub fn merged_ingress(current: Option<&RouteStatus>, desired: &RouteIngress) -> Vec<RouteIngress> {
    let mut out = Vec::new();
    let mut placed = false;
    for entry in current.map(|s| s.ingress.as_slice()).unwrap_or_default() {
        if entry.router_name == desired.router_name {
            if !placed {
                out.push(desired.clone());
                placed = true;
            }
        } else {
            out.push(entry.clone());
        }
    }
    if !placed {
        out.push(desired.clone());
    }
    out
}

/// The merge patch body: resourceVersion precondition and the whole array.
pub fn patch_body(resource_version: &str, ingress: &[RouteIngress]) -> serde_json::Value {
    serde_json::json!({
        "metadata": { "resourceVersion": resource_version },
        "status": { "ingress": ingress },
    })
}

/// Equal except for `lastTransitionTime` (which `desired_entry` takes
/// from the clock when the stored entry is stale).
pub(super) fn same_entry(a: &RouteIngress, b: &RouteIngress) -> bool {
    let strip = |i: &RouteIngress| {
        let mut i = i.clone();
        for c in &mut i.conditions {
            c.last_transition_time = None;
        }
        i
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StatusConfig {
        StatusConfig::new("r1", None)
    }

    fn verdict(rejection: Option<(&str, &str)>) -> RouteVerdict {
        RouteVerdict {
            key: ObjectKey::new("ns", "a"),
            host: "a.example.com".into(),
            rejection: rejection.map(|(r, m)| (r.into(), m.into())),
            servers_left_out: 0,
        }
    }

    #[test]
    fn admitted_entry() {
        let e = desired_entry(&verdict(None), None, &cfg(), None, "2026-01-01T00:00:00Z");
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "host": "a.example.com", "routerName": "r1", "wildcardPolicy": "None",
                "conditions": [{"type": "Admitted", "status": "True",
                                "lastTransitionTime": "2026-01-01T00:00:00Z"}]
            })
        );
    }

    #[test]
    fn transition_time_changes_only_on_flip() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-02T00:00:00Z";
        let rejected = desired_entry(
            &verdict(Some(("HostAlreadyClaimed", "taken"))),
            Some("None"),
            &cfg(),
            None,
            t0,
        );
        // Another reason, same status: time kept.
        let other = desired_entry(
            &verdict(Some(("ExtendedValidationFailed", "bad cert"))),
            None,
            &cfg(),
            Some(&rejected),
            t1,
        );
        assert_eq!(
            other.conditions[0].last_transition_time.as_deref(),
            Some(t0)
        );
        assert_eq!(
            other.conditions[0].reason.as_deref(),
            Some("ExtendedValidationFailed")
        );
        // Flip: new time.
        let admitted = desired_entry(&verdict(None), None, &cfg(), Some(&other), t1);
        assert_eq!(
            admitted.conditions[0].last_transition_time.as_deref(),
            Some(t1)
        );
        assert_eq!(admitted.conditions[0].reason, None);
        // Same again: no patch.
        let status = RouteStatus {
            ingress: vec![admitted.clone()],
        };
        let again = desired_entry(
            &verdict(None),
            None,
            &cfg(),
            our_entry(Some(&status), "r1"),
            "later",
        );
        assert!(!needs_patch(Some(&status), &again));
    }

    #[test]
    fn servers_left_out_is_a_condition_while_it_lasts() {
        let t0 = "2026-01-01T00:00:00Z";
        let t1 = "2026-01-02T00:00:00Z";
        let cut = |n: usize| RouteVerdict {
            servers_left_out: n,
            ..verdict(None)
        };
        let e = desired_entry(&cut(500), None, &cfg(), None, t0);
        let json = serde_json::to_value(&e.conditions[1]).unwrap();
        assert_eq!(json["type"], "ServersLeftOut");
        assert_eq!(json["status"], "True");
        assert_eq!(json["reason"], "MaxServersPerBackend");
        let message = json["message"].as_str().unwrap();
        assert!(
            message.contains("1000 servers a backend holds"),
            "{message}"
        );
        // Scaling further changes nothing written (the count is in the metric).
        let status = RouteStatus {
            ingress: vec![e.clone()],
        };
        let more = desired_entry(&cut(900), None, &cfg(), Some(&e), t1);
        assert!(!needs_patch(Some(&status), &more));
        // Scaled back under the bound: the condition goes.
        let under = desired_entry(&cut(0), None, &cfg(), Some(&e), t1);
        assert_eq!(under.conditions.len(), 1);
        assert_eq!(
            under.conditions[0].last_transition_time.as_deref(),
            Some(t0)
        );
        assert!(needs_patch(Some(&status), &under));
        // A rejected Route has no such condition.
        let rejected = RouteVerdict {
            servers_left_out: 3,
            ..verdict(Some(("HostAlreadyClaimed", "taken")))
        };
        assert_eq!(
            desired_entry(&rejected, None, &cfg(), None, t0)
                .conditions
                .len(),
            1
        );
    }

    #[test]
    fn only_our_entry_is_compared_and_replaced() {
        let ours = desired_entry(&verdict(None), None, &cfg(), None, "t");
        let theirs = RouteIngress {
            router_name: "other".into(),
            host: "x".into(),
            ..RouteIngress::default()
        };
        let status = RouteStatus {
            ingress: vec![theirs.clone(), ours.clone()],
        };
        assert!(!needs_patch(Some(&status), &ours));
        assert!(needs_patch(None, &ours));
        let mut newer = ours.clone();
        newer.host = "b.example.com".into();
        assert!(needs_patch(Some(&status), &newer));
        assert_eq!(
            merged_ingress(Some(&status), &newer),
            vec![theirs.clone(), newer.clone()]
        );
        // Duplicates of ours collapse; absent: appended.
        let dup = RouteStatus {
            ingress: vec![ours.clone(), theirs.clone(), ours.clone()],
        };
        assert!(needs_patch(Some(&dup), &ours));
        assert_eq!(
            merged_ingress(Some(&dup), &ours),
            vec![ours.clone(), theirs.clone()]
        );
        let only_theirs = RouteStatus {
            ingress: vec![theirs.clone()],
        };
        assert_eq!(
            merged_ingress(Some(&only_theirs), &ours),
            vec![theirs, ours]
        );
    }

    #[test]
    fn canonical_hostname_and_wildcard() {
        let c = StatusConfig::new("r1", Some("lb.example.com".into()));
        let e = desired_entry(&verdict(None), Some("Subdomain"), &c, None, "t");
        assert_eq!(
            e.router_canonical_hostname.as_deref(),
            Some("lb.example.com")
        );
        assert_eq!(e.wildcard_policy.as_deref(), Some("Subdomain"));
    }
}
