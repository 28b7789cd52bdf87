//! Every numeric value a Route can set, with the range admission accepts
//! (issue 17, item 2). `docs/limits.md` is this table with what HAProxy
//! and nginx do with each value and why the bound; a test keeps the two in
//! step, and `crates/routegen/tests/numeric_limits.rs` renders a Route at
//! both ends of every row for both targets through the real `haproxy -c`
//! and `nginx -t`.
//!
//! The bounds themselves live in the typed values that enforce them
//! ([`crate::values::Duration`], [`crate::values::PositiveInt`],
//! [`crate::values::Weight`], [`crate::values::HstsPolicy`],
//! [`MAX_CONCURRENT_TCP`], the targetPort check); the table names those
//! same constants, so it cannot say one range while admission enforces
//! another.
//!
//! Every range holds for every target: a value inside renders into a tree
//! both `haproxy -c` and `nginx -t` accept (nginx's `limit_conn` is why
//! `concurrent-tcp` stops at 65535; HAProxy's timer is why time values
//! stop at 2147483647ms).

use super::annotations::{
    HEALTH_CHECK_INTERVAL, HSTS_HEADER, MAX_CONCURRENT_TCP, POD_CONCURRENT_CONNECTIONS,
    RATE_LIMIT_CONCURRENT_TCP, RATE_LIMIT_RATE_HTTP, RATE_LIMIT_RATE_TCP, TIMEOUT, TIMEOUT_TUNNEL,
};
use crate::values::{HAPROXY_MAX_TIMEOUT_MS, POSITIVE_INT_MAX, WEIGHT_MAX};

/// Where a setting is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `metadata.annotations`: a value out of range never rejects the
    /// Route (a warning names the annotation; see [`OutOfRange`]).
    Annotation,
    /// A `spec` field: out of range rejects the Route (`ValidationFailed`,
    /// the field named), as the API server would.
    Field,
}

/// How the number is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// A time value `<n>[us|ms|s|m|h|d]` (no unit: ms); the table's
    /// numbers are microseconds.
    Duration,
    /// Decimal digits.
    Integer,
    /// `max-age=<n>` inside `hsts_header` (seconds).
    HstsMaxAge,
}

/// What admission does with a value outside the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutOfRange {
    /// The annotation is ignored with a warning naming it (the option
    /// keeps its default); the Route is admitted.
    Ignored,
    /// Clipped to the maximum with a warning naming the annotation.
    Clipped,
    /// The Route is rejected (`ValidationFailed`), the field named.
    Rejected,
}

/// One numeric setting and the range admission accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumericLimit {
    /// The annotation's name or the field's path.
    pub setting: &'static str,
    pub place: Place,
    pub syntax: Syntax,
    /// What the number counts, for people.
    pub unit: &'static str,
    /// Smallest accepted value (microseconds for [`Syntax::Duration`]).
    pub min: u64,
    /// Largest accepted value (microseconds for [`Syntax::Duration`]).
    pub max: u64,
    /// What a value below `min` gets.
    pub below: OutOfRange,
    /// What a value above `max` gets.
    pub above: OutOfRange,
}

impl NumericLimit {
    /// `n` as written in the setting (durations in `ms` when whole
    /// milliseconds, else `us`). `n` may lie outside the range (and below
    /// zero), to write the values just outside it.
    pub fn text(&self, n: i128) -> String {
        match self.syntax {
            Syntax::Duration if n > 0 && n % 1000 == 0 => format!("{}ms", n / 1000),
            Syntax::Duration => format!("{n}us"),
            Syntax::Integer => n.to_string(),
            Syntax::HstsMaxAge => format!("max-age={n}"),
        }
    }

    /// The range as `docs/limits.md` writes it: `1us – 2147483647ms`.
    pub fn range_text(&self) -> String {
        format!(
            "{} – {}",
            self.text(i128::from(self.min)),
            self.text(i128::from(self.max))
        )
    }
}

/// Largest time value in microseconds (`2147483647ms`).
const MAX_DURATION_US: u64 = HAPROXY_MAX_TIMEOUT_MS * 1_000;

const fn duration(setting: &'static str, unit: &'static str) -> NumericLimit {
    NumericLimit {
        setting,
        place: Place::Annotation,
        syntax: Syntax::Duration,
        unit,
        min: 1,
        max: MAX_DURATION_US,
        below: OutOfRange::Ignored,
        above: OutOfRange::Clipped,
    }
}

const fn count(setting: &'static str, unit: &'static str, min: u64, max: u32) -> NumericLimit {
    NumericLimit {
        setting,
        place: Place::Annotation,
        syntax: Syntax::Integer,
        unit,
        min,
        max: max as u64,
        below: OutOfRange::Ignored,
        above: OutOfRange::Ignored,
    }
}

const fn field(setting: &'static str, unit: &'static str, min: u64, max: u64) -> NumericLimit {
    NumericLimit {
        setting,
        place: Place::Field,
        syntax: Syntax::Integer,
        unit,
        min,
        max,
        below: OutOfRange::Rejected,
        above: OutOfRange::Rejected,
    }
}

/// Every numeric setting of a Route, in the order of `docs/limits.md`.
pub const NUMERIC_LIMITS: &[NumericLimit] = &[
    duration(TIMEOUT, "time"),
    duration(TIMEOUT_TUNNEL, "time"),
    duration(HEALTH_CHECK_INTERVAL, "time"),
    NumericLimit {
        above: OutOfRange::Clipped,
        ..count(
            RATE_LIMIT_CONCURRENT_TCP,
            "connections per client address",
            1,
            MAX_CONCURRENT_TCP,
        )
    },
    count(
        RATE_LIMIT_RATE_TCP,
        "connections per client address per 3s",
        1,
        POSITIVE_INT_MAX,
    ),
    count(
        RATE_LIMIT_RATE_HTTP,
        "requests per client address per 10s",
        1,
        POSITIVE_INT_MAX,
    ),
    // 0 means no limit (OpenShift's documented meaning): no warning.
    count(
        POD_CONCURRENT_CONNECTIONS,
        "connections per server",
        0,
        POSITIVE_INT_MAX,
    ),
    NumericLimit {
        setting: HSTS_HEADER,
        place: Place::Annotation,
        syntax: Syntax::HstsMaxAge,
        unit: "seconds",
        min: 0,
        max: u64::MAX,
        below: OutOfRange::Ignored,
        above: OutOfRange::Ignored,
    },
    field("spec.to.weight", "relative weight", 0, WEIGHT_MAX as u64),
    field(
        "spec.alternateBackends[].weight",
        "relative weight",
        0,
        WEIGHT_MAX as u64,
    ),
    field("spec.port.targetPort", "port number", 1, 65_535),
];

/// The row of `setting`, if it is numeric.
pub fn numeric_limit(setting: &str) -> Option<&'static NumericLimit> {
    NUMERIC_LIMITS.iter().find(|l| l.setting == setting)
}

#[cfg(test)]
mod tests;
