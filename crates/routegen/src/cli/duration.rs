//! The one syntax of every duration flag (`--debounce`,
//! `--min-reload-interval`, `--ops-header-timeout`, `--hard-stop-after`):
//! a number and its unit, read by `humantime` (`500ms`, `5s`, `2m`,
//! `1.5s`, `1h 30m`, `1d`; units `ns`, `us`, `ms`, `s`, `m`, `h`, `d`, `w` and their
//! long forms).
//!
//! # Contract
//!
//! * A bare number is refused with a message asking for a unit (`5s` or
//!   `5ms`): it used to mean seconds for some flags and milliseconds for
//!   `--hard-stop-after`, so no flag guesses any more. `0` alone is the one
//!   number accepted without a unit; flags where zero has no meaning
//!   refuse it themselves (`--hard-stop-after` here, `--ops-header-timeout`
//!   when `run` resolves its flags).
//! * clap names the flag in front of every message (`invalid value '5'
//!   for '--debounce <DURATION>': …`), also for a `ROUTEGEN_*` variable.
//! * [`haproxy_duration`] turns a value into HAProxy's syntax for the
//!   configuration, in the largest unit that holds it exactly (`30m`,
//!   `90s`, `1500ms`), so the rendered text does not depend on how the
//!   flag was spelled beyond its length.

use std::time::Duration;

use routegen_core::values::{Duration as HaproxyDuration, TimeUnit};

/// Shown with every refusal.
const EXAMPLES: &str = "e.g. 500ms, 5s, 2m or 1h 30m";

/// A duration flag's value (see the module contract): clap's
/// `value_parser` of every duration flag.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{s}` has no unit; add one, e.g. {t}s or {t}ms"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("`{s}`: {e}; a number and its unit, {EXAMPLES}"))
}

/// `--hard-stop-after`, which is written into haproxy.cfg: [`parse`], then
/// positive, whole microseconds and at most HAProxy's largest time value
/// (2147483647ms, ~24.8 days), in the largest unit that holds it exactly.
pub(crate) fn haproxy_duration(s: &str) -> Result<HaproxyDuration, String> {
    let d = parse(s)?;
    if d.is_zero() {
        return Err(format!("`{s}`: must be above 0, {EXAMPLES}"));
    }
    if d.subsec_nanos() % 1_000 != 0 {
        return Err(format!("`{s}`: HAProxy counts in whole microseconds (us)"));
    }
    let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let unit = [
        TimeUnit::D,
        TimeUnit::H,
        TimeUnit::M,
        TimeUnit::S,
        TimeUnit::Ms,
        TimeUnit::Us,
    ]
    .into_iter()
    .find(|u| micros.is_multiple_of(u.micros()))
    .unwrap_or(TimeUnit::Us);
    let text = format!("{}{}", micros / unit.micros(), unit.as_str());
    match HaproxyDuration::parse_reporting_clip(&text) {
        Ok((value, false)) => Ok(value),
        _ => Err(format!(
            "`{s}`: above HAProxy's largest time value, 2147483647ms (about 24.8 days)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_as_humantime_reads_them() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse(" 2m "), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse("1500us"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0"), Ok(Duration::ZERO));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn a_bare_number_is_refused_with_the_units_to_add() {
        assert_eq!(
            parse("5").unwrap_err(),
            "`5` has no unit; add one, e.g. 5s or 5ms"
        );
        assert!(parse("30").unwrap_err().contains("30s or 30ms"));
    }

    #[test]
    fn nonsense_is_refused_with_examples() {
        for bad in ["", "soon", "5 parsecs", "-1s"] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains("e.g. 500ms, 5s"), "{bad}: {e}");
        }
    }

    #[test]
    fn haproxy_values_use_the_largest_exact_unit() {
        let h = |s: &str| haproxy_duration(s).map(|d| d.to_string());
        assert_eq!(h("30m"), Ok("30m".into()));
        assert_eq!(h("1800s"), Ok("30m".into()));
        assert_eq!(h("90s"), Ok("90s".into()));
        assert_eq!(h("1h 30m"), Ok("90m".into()));
        assert_eq!(h("1500ms"), Ok("1500ms".into()));
        assert_eq!(h("2d"), Ok("2d".into()));
        assert_eq!(h("7us"), Ok("7us".into()));
    }

    #[test]
    fn haproxy_values_refuse_zero_nanoseconds_and_overflow() {
        assert!(haproxy_duration("0").unwrap_err().contains("above 0"));
        assert!(haproxy_duration("0s").unwrap_err().contains("above 0"));
        assert!(haproxy_duration("5").unwrap_err().contains("no unit"));
        assert!(haproxy_duration("1500ns")
            .unwrap_err()
            .contains("microseconds"));
        assert!(haproxy_duration("30d")
            .unwrap_err()
            .contains("2147483647ms"));
        assert_eq!(
            haproxy_duration("2147483647ms").map(|d| d.to_string()),
            Ok("2147483647ms".into())
        );
    }
}
