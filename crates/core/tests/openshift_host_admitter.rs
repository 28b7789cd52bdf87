//! The OpenShift router's host-admission test tables, run against routegen's
//! admission. The cases and the verdicts the Go tests assert are data
//! (`data/openshift/host_admitter.txt`, with the source commit and the
//! format); this file is routegen's own runner. Every row either agrees or
//! is marked there as a deliberate difference with its reason; the counts
//! per Go test are printed (`--nocapture`).

use std::collections::{BTreeMap, BTreeSet};

use routegen_core::admit::{admit_at, Reason, Verdict};
use routegen_core::model::{Route, Snapshot};
use routegen_core::testkit::{snapshot, RouteBuilder};
use routegen_core::RouterSettings;

const TABLE: &str = include_str!("data/openshift/host_admitter.txt");
/// "now" for admission (only certificate expiry depends on it).
const NOW: i64 = 1_704_153_600; // 2024-01-02T00:00:00Z

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Alone,
    Sequence,
    Pairs,
    PairsAll,
    Groups,
}

/// What a verdict is expected to be.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Expect {
    Admitted,
    Rejected,
    Reason(Reason),
}

impl Expect {
    fn parse(text: &str) -> Expect {
        match text {
            "Admitted" => Expect::Admitted,
            "Rejected" => Expect::Rejected,
            "NoHostValue" => Expect::Reason(Reason::NoHostValue),
            "InvalidHost" => Expect::Reason(Reason::InvalidHost),
            "RouteNotAdmitted" => Expect::Reason(Reason::RouteNotAdmitted),
            "ValidationFailed" => Expect::Reason(Reason::ValidationFailed),
            "HostAlreadyClaimed" => Expect::Reason(Reason::HostAlreadyClaimed),
            "ExtendedValidationFailed" => Expect::Reason(Reason::ExtendedValidationFailed),
            other => panic!("unknown verdict {other:?}"),
        }
    }

    fn matches(&self, verdict: &Verdict) -> bool {
        match (self, verdict.rejection()) {
            (Expect::Admitted, None) => true,
            (Expect::Rejected, Some(_)) => true,
            (Expect::Reason(want), Some(got)) => got.reason == *want,
            _ => false,
        }
    }
}

#[derive(Clone, Debug)]
struct Row {
    key: String,
    route: Route,
    go: Expect,
    errif: BTreeSet<String>,
    /// The `case` a row belongs to (groups mode).
    group: String,
    /// What routegen gives instead, and why.
    deliberate: Option<(Expect, String)>,
}

impl Row {
    fn ours(&self) -> &Expect {
        self.deliberate.as_ref().map_or(&self.go, |(ours, _)| ours)
    }
}

#[derive(Debug)]
struct Section {
    go_test: String,
    mode: Mode,
    settings: RouterSettings,
    rows: Vec<Row>,
    /// `check ns/name Verdict`, after all rows of a sequence.
    checks: Vec<(String, Expect)>,
}

/// RFC 3339 for `offset` seconds after 2024-01-02T00:00:00Z (within a day
/// either side).
fn timestamp(offset: i64) -> String {
    let day = 2 + offset.div_euclid(86_400);
    let secs = offset.rem_euclid(86_400);
    assert!((1..=3).contains(&day), "age {offset} out of range");
    format!(
        "2024-01-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn parse_settings(text: &str) -> RouterSettings {
    let mut settings = RouterSettings {
        hostname_template: Some("${name}-${namespace}.generated.test".into()),
        ..Default::default()
    };
    for item in text.split(',').filter(|s| !s.is_empty()) {
        match item.split_once('=') {
            Some(("deny", domain)) => settings.denied_domains.push(domain.into()),
            None if item == "wildcards" => settings.allow_wildcard_routes = true,
            None if item == "no-ownership" => settings.disable_namespace_ownership_check = true,
            _ => panic!("unknown setting {item:?}"),
        }
    }
    settings
}

fn parse_row(line: &str, number: usize, group: &str) -> Row {
    let (columns, deliberate) = match line.split_once(" | ") {
        Some((columns, note)) => {
            let note = note
                .strip_prefix("deliberate ")
                .unwrap_or_else(|| panic!("line {number}: `| deliberate` expected"));
            let (verdict, reason) = note.split_once(' ').expect("deliberate verdict and reason");
            (columns, Some((Expect::parse(verdict), reason.to_string())))
        }
        None => (line, None),
    };
    let words: Vec<&str> = columns.split_whitespace().collect();
    let [_, key, host, path, policy, age, verdict, extra @ ..] = words.as_slice() else {
        panic!("line {number}: too few columns: {line}")
    };
    let (ns, name) = key.split_once('/').expect("ns/name");
    let mut builder = RouteBuilder::new(ns, name).to("svc", None);
    if *host != "-" {
        builder = builder.host(host);
    }
    if *path != "-" {
        builder = builder.path(path);
    }
    if *policy != "-" {
        builder = builder.wildcard_policy(policy);
    }
    match *age {
        "-" => {}
        "zero" => builder = builder.created("1970-01-01T00:00:00Z"),
        offset => builder = builder.created(&timestamp(offset.parse().expect("age"))),
    }
    let mut uid = Some(format!("uid{number:04}"));
    let mut errif = BTreeSet::new();
    for word in extra {
        match word.split_once('=') {
            Some(("errif", list)) => errif.extend(list.split(',').map(str::to_string)),
            Some(("uid", "-")) => uid = None,
            Some(("uid", value)) => uid = Some(value.to_string()),
            None if *word == "non-dns-host" => {
                builder =
                    builder.annotation("route.openshift.io/allow-non-dns-compliant-host", "true")
            }
            _ => panic!("line {number}: unknown column {word:?}"),
        }
    }
    if let Some(uid) = uid {
        builder = builder.uid(&uid);
    }
    Row {
        key: key.to_string(),
        route: builder.build(),
        go: Expect::parse(verdict),
        errif,
        group: group.to_string(),
        deliberate,
    }
}

fn parse_table(text: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut group = String::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let (name, rest) = header.split_once(']').expect("[GoTest]");
            let mut mode = None;
            let mut settings = parse_settings("");
            for word in rest.split_whitespace() {
                match word.split_once('=') {
                    Some(("mode", m)) => {
                        mode = Some(match m {
                            "alone" => Mode::Alone,
                            "sequence" => Mode::Sequence,
                            "pairs" => Mode::Pairs,
                            "pairs+all" => Mode::PairsAll,
                            "groups" => Mode::Groups,
                            other => panic!("line {number}: mode {other:?}"),
                        })
                    }
                    Some(("settings", s)) => settings = parse_settings(s),
                    _ => panic!("line {number}: {word:?}"),
                }
            }
            sections.push(Section {
                go_test: name.to_string(),
                mode: mode.expect("mode"),
                settings,
                rows: Vec::new(),
                checks: Vec::new(),
            });
            continue;
        }
        let section = sections.last_mut().expect("a [GoTest] section first");
        if let Some(name) = line.strip_prefix("case ") {
            group = name.to_string();
        } else if let Some(check) = line.strip_prefix("check ") {
            let (key, verdict) = check.split_once(' ').expect("check ns/name Verdict");
            section
                .checks
                .push((key.to_string(), Expect::parse(verdict)));
        } else {
            section.rows.push(parse_row(line, number, &group));
        }
    }
    sections
}

fn key_of(route: &Route) -> String {
    format!(
        "{}/{}",
        route.metadata.namespace.as_deref().unwrap_or(""),
        route.metadata.name.as_deref().unwrap_or("")
    )
}

fn verdicts(routes: &[&Route], settings: &RouterSettings) -> BTreeMap<String, Verdict> {
    let snap: Snapshot = snapshot(routes.iter().map(|r| (*r).clone()));
    admit_at(&snap, settings, NOW)
        .into_iter()
        .map(|v| (format!("{}/{}", v.key.namespace, v.key.name), v))
        .collect()
}

fn describe(verdict: &Verdict) -> String {
    match verdict.rejection() {
        None => "Admitted".into(),
        Some(r) => format!("{} ({})", r.reason, r.message),
    }
}

#[derive(Default)]
struct Counts {
    agree: usize,
    deliberate: usize,
    pairs_agree: usize,
    pairs_deliberate: usize,
}

/// Compare one verdict with a row's expectation; counts it and returns a
/// failure line when it differs.
fn judge(row: &Row, got: &Verdict, context: &str, counts: &mut Counts) -> Option<String> {
    let want = row.ours();
    if !want.matches(got) {
        return Some(format!(
            "{context}: {} want {want:?}{}, got {}",
            row.key,
            if row.deliberate.is_some() {
                " (deliberate)"
            } else {
                ""
            },
            describe(got)
        ));
    }
    if row.deliberate.is_some() {
        counts.deliberate += 1;
    } else {
        counts.agree += 1;
    }
    None
}

fn run_section(section: &Section, failures: &mut Vec<String>) -> Counts {
    let mut counts = Counts::default();
    let settings = &section.settings;
    let name = &section.go_test;
    match section.mode {
        Mode::Alone => {
            for row in &section.rows {
                let all = verdicts(&[&row.route], settings);
                failures.extend(judge(row, &all[&row.key], name, &mut counts));
            }
        }
        Mode::Groups => {
            let mut start = 0;
            while start < section.rows.len() {
                let group = &section.rows[start].group;
                let end = section.rows[start..]
                    .iter()
                    .position(|r| &r.group != group)
                    .map_or(section.rows.len(), |n| start + n);
                let rows = &section.rows[start..end];
                let all = verdicts(&rows.iter().map(|r| &r.route).collect::<Vec<_>>(), settings);
                for row in rows {
                    let context = format!("{name} case {group:?}");
                    failures.extend(judge(row, &all[&row.key], &context, &mut counts));
                }
                start = end;
            }
        }
        Mode::Sequence => {
            for (i, row) in section.rows.iter().enumerate() {
                let so_far: Vec<&Route> = section.rows[..=i].iter().map(|r| &r.route).collect();
                let all = verdicts(&so_far, settings);
                failures.extend(judge(row, &all[&row.key], name, &mut counts));
            }
            let every: Vec<&Route> = section.rows.iter().map(|r| &r.route).collect();
            let all = verdicts(&every, settings);
            for (key, want) in &section.checks {
                if want.matches(&all[key]) {
                    counts.agree += 1;
                } else {
                    failures.push(format!(
                        "{name}: after all adds, {key} want {want:?}, got {}",
                        describe(&all[key])
                    ));
                }
            }
        }
        Mode::Pairs | Mode::PairsAll => {
            let known: BTreeSet<&str> = section.rows.iter().map(|r| r.key.as_str()).collect();
            for row in &section.rows {
                for other in &row.errif {
                    assert!(known.contains(other.as_str()), "{name}: unknown {other}");
                }
                let alone = verdicts(&[&row.route], settings);
                failures.extend(judge(row, &alone[&row.key], name, &mut counts));
                for other in section.rows.iter().filter(|o| o.key != row.key) {
                    let pair = verdicts(&[&other.route, &row.route], settings);
                    let got = &pair[&row.key];
                    // A pair with a deliberately refused Route is decided by
                    // that difference: the refused Route claims nothing.
                    let by_deliberate = row.deliberate.is_some() || other.deliberate.is_some();
                    let go_rejects = row.errif.contains(&other.key);
                    let want = if row.deliberate.is_some() {
                        row.ours().clone()
                    } else if go_rejects && other.deliberate.is_none() {
                        Expect::Reason(Reason::HostAlreadyClaimed)
                    } else {
                        Expect::Admitted
                    };
                    if !want.matches(got) {
                        failures.push(format!(
                            "{name}: {} with {}: want {want:?}, got {}",
                            row.key,
                            other.key,
                            describe(got)
                        ));
                    } else if by_deliberate && (go_rejects || row.deliberate.is_some()) {
                        counts.pairs_deliberate += 1;
                    } else {
                        counts.pairs_agree += 1;
                    }
                }
            }
            if section.mode == Mode::PairsAll {
                let every: Vec<&Route> = section.rows.iter().map(|r| &r.route).collect();
                let all = verdicts(&every, settings);
                for row in &section.rows {
                    failures.extend(judge(row, &all[&key_of(&row.route)], name, &mut counts));
                }
            }
        }
    }
    counts
}

#[test]
fn openshift_host_admitter_tables_agree() {
    let sections = parse_table(TABLE);
    assert!(sections.len() >= 12, "sections: {}", sections.len());
    let mut failures = Vec::new();
    for section in &sections {
        let counts = run_section(section, &mut failures);
        println!(
            "{}: rows {} ({} agree, {} deliberate); checks agree {}, deliberate {}{}",
            section.go_test,
            section.rows.len(),
            section
                .rows
                .iter()
                .filter(|r| r.deliberate.is_none())
                .count(),
            section
                .rows
                .iter()
                .filter(|r| r.deliberate.is_some())
                .count(),
            counts.agree,
            counts.deliberate,
            if counts.pairs_agree + counts.pairs_deliberate > 0 {
                format!(
                    "; pairs agree {}, decided by a deliberate row {}",
                    counts.pairs_agree, counts.pairs_deliberate
                )
            } else {
                String::new()
            }
        );
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with the OpenShift router's tables:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
