//! The OpenShift router's `TestExtendedValidateRoute` table, run against
//! routegen's admission: every case agrees with the verdict the Go test
//! asserts or is a deliberate difference with its reason (the cases and
//! their reasons: `routegen_core::testkit::openshift`). Run twice: with the
//! Go fixtures' RSA-1024 keys as given, and with those keys at 2048 bits.

use routegen_core::admit::{admit_at, Verdict};
use routegen_core::testkit::certs::now_unix;
use routegen_core::testkit::openshift::{
    extended_validation_cases, settings, Expect, Origin, TlsCase, EXTENDED_VALIDATION_COMMIT,
};
use routegen_core::testkit::snapshot;

fn verdict_of(case: &TlsCase) -> Verdict {
    let verdicts = admit_at(&snapshot([case.route.clone()]), &settings(), now_unix());
    assert_eq!(verdicts.len(), 1);
    verdicts.into_iter().next().unwrap()
}

fn matches(expect: Expect, verdict: &Verdict) -> bool {
    match (expect, verdict.rejection()) {
        (Expect::Admitted, None) => true,
        (Expect::Rejected(want), Some(got)) => got.reason == want,
        _ => false,
    }
}

fn describe(verdict: &Verdict) -> String {
    match verdict.rejection() {
        None => format!("Admitted (warnings {:?})", verdict.warnings),
        Some(r) => format!("{} ({})", r.reason, r.message),
    }
}

/// Runs the cases; returns (agree, deliberate, extra) and the failures.
fn run(weak_bits: u32, failures: &mut Vec<String>) -> (usize, usize, usize) {
    let (mut agree, mut deliberate, mut extra) = (0, 0, 0);
    for case in extended_validation_cases(weak_bits) {
        let got = verdict_of(&case);
        let go_admits = case.go_errors == 0;
        let ours_admits = case.expect == Expect::Admitted;
        // A case not marked deliberate must give the Go verdict.
        if case.deliberate.is_none() && go_admits != ours_admits {
            failures.push(format!(
                "[{weak_bits}] {}: table says Go {} but ours {:?} without a reason",
                case.name, case.go_errors, case.expect
            ));
        }
        if !matches(case.expect, &got) {
            failures.push(format!(
                "[{weak_bits}] {}: want {:?}, got {}",
                case.name,
                case.expect,
                describe(&got)
            ));
            continue;
        }
        match (case.origin, case.deliberate) {
            (Origin::Extra, _) => extra += 1,
            (Origin::Ported, Some(_)) => deliberate += 1,
            (Origin::Ported, None) => agree += 1,
        }
    }
    (agree, deliberate, extra)
}

#[test]
fn openshift_extended_validation_table_agrees() {
    let mut failures = Vec::new();
    for bits in [1024, 2048] {
        let (agree, deliberate, extra) = run(bits, &mut failures);
        println!(
            "TestExtendedValidateRoute (openshift/router {EXTENDED_VALIDATION_COMMIT}), Go \
             fixtures' RSA-1024 keys at {bits} bits: {agree} agree, {deliberate} deliberate; \
             {extra} extra cases of ours pass"
        );
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_cleaned_key_is_what_is_served() {
    // An EC key under a PKCS#8 label (Red Hat bug 1723400) comes out as a
    // proper PKCS#8 key; dropped blocks are said in warnings.
    for case in extended_validation_cases(2048)
        .into_iter()
        .filter(|c| c.origin == Origin::Extra)
    {
        let verdict = verdict_of(&case);
        let admitted = verdict.outcome.as_ref().expect(case.name);
        let tls = admitted.tls.as_ref().expect("tls");
        let serving = tls.serving.as_ref().expect("the Route's own certificate");
        assert!(
            serving.key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{}: {}",
            case.name,
            serving.key_pem
        );
        assert_eq!(
            serving.key_pem.matches("-----BEGIN").count(),
            1,
            "{}",
            case.name
        );
        assert!(
            verdict.warnings.iter().any(|w| w.contains("spec.tls.key")),
            "{}: {:?}",
            case.name,
            verdict.warnings
        );
    }
}
