//! Durations: HAProxy time values with their unit.

use std::fmt;
use std::str::FromStr;

use super::{ValueError, ValueKind};

/// HAProxy's largest time value: 2147483647 ms (~24.8 days). Larger values
/// make `haproxy -c` fail ("timer overflow"), so they are clipped to this.
pub const HAPROXY_MAX_TIMEOUT_MS: u64 = 2_147_483_647;

pub(super) const MAX_MICROS: u64 = HAPROXY_MAX_TIMEOUT_MS * 1_000;

/// The unit a [`Duration`] was written in (and is rendered in).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeUnit {
    Us,
    Ms,
    S,
    M,
    H,
    D,
}

impl TimeUnit {
    /// The HAProxy suffix.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeUnit::Us => "us",
            TimeUnit::Ms => "ms",
            TimeUnit::S => "s",
            TimeUnit::M => "m",
            TimeUnit::H => "h",
            TimeUnit::D => "d",
        }
    }

    /// Microseconds in one unit.
    pub fn micros(self) -> u64 {
        match self {
            TimeUnit::Us => 1,
            TimeUnit::Ms => 1_000,
            TimeUnit::S => 1_000_000,
            TimeUnit::M => 60_000_000,
            TimeUnit::H => 3_600_000_000,
            TimeUnit::D => 86_400_000_000,
        }
    }
}

/// An HAProxy time value (timeouts, check intervals).
///
/// Input: `<digits>[us|ms|s|m|h|d]`, the number positive and without a
/// leading zero (OpenShift's `[1-9][0-9]*(us|ms|s|m|h|d)?`); no unit means
/// milliseconds, as in OpenShift and HAProxy. Values above
/// [`HAPROXY_MAX_TIMEOUT_MS`] are clipped to `2147483647ms`, as OpenShift
/// does (it renders exactly that string).
///
/// Stored as microseconds plus the unit it was written in, so `Display`
/// keeps the author's unit (`30s` stays `30s`, `1500us` stays `1500us`) and
/// always names it (`5000` renders as `5000ms`). Two durations compare equal
/// only when they render the same (`1s` != `1000ms`); compare
/// [`Duration::as_micros`] for the length of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Duration {
    micros: u64,
    unit: TimeUnit,
}

/// Health check interval (`check inter`): same rules as [`Duration`].
pub type HealthCheckInterval = Duration;

const DURATION_RULE: &str =
    "expected <digits>[us|ms|s|m|h|d] (a positive number without leading zero; no unit = ms)";

impl Duration {
    /// The largest value HAProxy accepts, `2147483647ms`.
    pub const MAX: Duration = Duration {
        micros: MAX_MICROS,
        unit: TimeUnit::Ms,
    };

    /// A duration of `ms` milliseconds (at least 1, clipped to the maximum),
    /// rendered in `ms`. For defaults such as `5000ms`.
    pub fn from_millis(ms: u64) -> Duration {
        let ms = ms.clamp(1, HAPROXY_MAX_TIMEOUT_MS);
        Duration {
            micros: ms * 1_000,
            unit: TimeUnit::Ms,
        }
    }

    /// Parse, and report whether the value was clipped to [`Duration::MAX`].
    pub fn parse_reporting_clip(s: &str) -> Result<(Duration, bool), ValueError> {
        let err = || ValueError::new(ValueKind::Duration, DURATION_RULE);
        let digits_end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        let (digits, suffix) = s.split_at(digits_end);
        if digits.is_empty() || digits.starts_with('0') {
            return Err(err());
        }
        let unit = match suffix {
            "" | "ms" => TimeUnit::Ms,
            "us" => TimeUnit::Us,
            "s" => TimeUnit::S,
            "m" => TimeUnit::M,
            "h" => TimeUnit::H,
            "d" => TimeUnit::D,
            _ => return Err(err()),
        };
        let micros = digits
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit.micros()));
        match micros {
            Some(micros) if micros <= MAX_MICROS => Ok((Duration { micros, unit }, false)),
            _ => Ok((Duration::MAX, true)),
        }
    }

    /// Length in microseconds.
    pub fn as_micros(&self) -> u64 {
        self.micros
    }

    /// Length in milliseconds, rounded up (so a positive duration is never 0).
    pub fn as_millis_ceil(&self) -> u64 {
        self.micros.div_ceil(1_000)
    }

    /// The unit used for rendering.
    pub fn unit(&self) -> TimeUnit {
        self.unit
    }

    /// As a standard library duration.
    pub fn to_std(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.micros)
    }
}

impl FromStr for Duration {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Duration::parse_reporting_clip(s).map(|(d, _)| d)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            self.micros / self.unit.micros(),
            self.unit.as_str()
        )
    }
}
