//! Admission enforces exactly the table: both ends accepted as written,
//! one step outside refused, ignored or clipped as the row says, with a
//! message naming the setting; and `docs/limits.md` states every row.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::admit::annotations::{parse_annotations, RouteOptions, RATE_LIMIT_CONNECTIONS};
use crate::admit::Verdict;
use crate::model::route::RoutePort;
use crate::settings::RouterSettings;
use crate::testkit::{snapshot, RouteBuilder};
use crate::values::Termination;

/// The value admission keeps for an annotation row (`None`: not set).
fn kept(o: &RouteOptions, setting: &str) -> Option<u64> {
    let int = |n: Option<crate::values::PositiveInt>| n.map(|n| u64::from(n.get()));
    match setting {
        TIMEOUT => o.timeout.map(|d| d.as_micros()),
        TIMEOUT_TUNNEL => o.timeout_tunnel.map(|d| d.as_micros()),
        HEALTH_CHECK_INTERVAL => o.health_check_interval.map(|d| d.as_micros()),
        RATE_LIMIT_CONCURRENT_TCP => int(o.rate_limit_concurrent_tcp),
        RATE_LIMIT_RATE_TCP => int(o.rate_limit_rate_tcp),
        RATE_LIMIT_RATE_HTTP => int(o.rate_limit_rate_http),
        // 0 is "no limit": kept as no setting.
        POD_CONCURRENT_CONNECTIONS => int(o.pod_concurrent_connections).or(Some(0)),
        HSTS_HEADER => o.hsts.as_ref().map(|h| h.max_age),
        other => panic!("no annotation row {other}"),
    }
}

fn annotate(limit: &NumericLimit, n: i128) -> (RouteOptions, Vec<String>) {
    let annotations = BTreeMap::from([
        (limit.setting.to_string(), limit.text(n)),
        (RATE_LIMIT_CONNECTIONS.to_string(), "true".to_string()),
    ]);
    parse_annotations(&annotations, Some(Termination::Edge))
}

fn admit_field(limit: &NumericLimit, n: i128) -> Verdict {
    let n = i64::try_from(n).unwrap();
    let route = RouteBuilder::new("ns", "r").host("r.example.com");
    let route = match limit.setting {
        "spec.to.weight" => route.to("s", Some(n)),
        "spec.alternateBackends[].weight" => route.to("s", None).alt("t", Some(n)),
        "spec.port.targetPort" => route.to("s", None).with_spec(|spec| {
            spec.port = Some(RoutePort {
                target_port: IntOrString::Int(i32::try_from(n).unwrap()),
            })
        }),
        other => panic!("no field row {other}"),
    };
    let verdicts =
        crate::admit::admit_at(&snapshot([route.build()]), &RouterSettings::default(), 0);
    verdicts.into_iter().next().unwrap()
}

#[test]
fn both_ends_are_accepted_as_written() {
    for limit in NUMERIC_LIMITS {
        for n in [limit.min, limit.max] {
            let what = format!("{} = {}", limit.setting, limit.text(i128::from(n)));
            match limit.place {
                Place::Annotation => {
                    let (options, warnings) = annotate(limit, i128::from(n));
                    assert!(warnings.is_empty(), "{what}: {warnings:?}");
                    assert_eq!(kept(&options, limit.setting), Some(n), "{what}");
                }
                Place::Field => {
                    let verdict = admit_field(limit, i128::from(n));
                    assert!(verdict.is_admitted(), "{what}: {verdict:?}");
                }
            }
        }
    }
}

#[test]
fn one_step_outside_is_refused_or_clipped_naming_the_setting() {
    for limit in NUMERIC_LIMITS {
        let outside = [
            (i128::from(limit.min) - 1, limit.below),
            (i128::from(limit.max) + 1, limit.above),
        ];
        for (n, expected) in outside {
            let what = format!("{} = {}", limit.setting, limit.text(n));
            match expected {
                OutOfRange::Ignored | OutOfRange::Clipped => {
                    assert_eq!(limit.place, Place::Annotation, "{what}");
                    let (options, warnings) = annotate(limit, n);
                    assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
                    let prefix = format!("annotation {}: ", limit.setting);
                    assert!(warnings[0].starts_with(&prefix), "{what}: {warnings:?}");
                    let default = kept(&RouteOptions::default(), limit.setting);
                    if expected == OutOfRange::Clipped {
                        assert!(warnings[0].contains("clipped to"), "{what}: {warnings:?}");
                        assert_eq!(kept(&options, limit.setting), Some(limit.max), "{what}");
                    } else {
                        assert!(
                            warnings[0].contains("invalid value"),
                            "{what}: {warnings:?}"
                        );
                        assert_eq!(kept(&options, limit.setting), default, "{what}");
                    }
                }
                OutOfRange::Rejected => {
                    assert_eq!(limit.place, Place::Field, "{what}");
                    let verdict = admit_field(limit, n);
                    let rejection = verdict.rejection().unwrap_or_else(|| panic!("{what}"));
                    let field = limit.setting.replace("[]", "[0]");
                    assert!(
                        rejection.message.contains(&field),
                        "{what}: {}",
                        rejection.message
                    );
                }
            }
        }
    }
}

#[test]
fn docs_limits_md_states_every_row() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/limits.md");
    let doc = std::fs::read_to_string(path).unwrap();
    for limit in NUMERIC_LIMITS {
        let start = format!("| `{}` |", limit.setting);
        let row = doc
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("docs/limits.md has no row for {}", limit.setting));
        assert!(
            row.contains(&limit.range_text()),
            "docs/limits.md: {} must state {}: {row}",
            limit.setting,
            limit.range_text()
        );
        let outside = match (limit.below, limit.above) {
            (_, OutOfRange::Rejected) => "Route rejected",
            (_, OutOfRange::Clipped) => "clipped",
            _ => "ignored",
        };
        assert!(row.contains(outside), "{}: {outside}: {row}", limit.setting);
    }
}
