//! Numbers and booleans from annotations, and backend weights.

use std::fmt;
use std::str::FromStr;

use super::{ValueError, ValueKind};

/// Largest [`PositiveInt`]: HAProxy's integer arguments (`maxconn`, ACL
/// comparisons) are signed 32-bit.
pub const POSITIVE_INT_MAX: u32 = i32::MAX as u32;

/// An integer in `1..=2147483647`, written as ASCII digits only (leading
/// zeros allowed, no sign, no spaces). Used for rate limits and connection
/// limits. OpenShift accepts any integer here, including `0` and negative
/// numbers, which render into rules that refuse every connection or fail
/// to load; those are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PositiveInt(u32);

impl PositiveInt {
    pub fn get(self) -> u32 {
        self.0
    }

    /// `Some` for `1..=2147483647`.
    pub fn new(n: u32) -> Option<PositiveInt> {
        (1..=POSITIVE_INT_MAX)
            .contains(&n)
            .then_some(PositiveInt(n))
    }
}

impl FromStr for PositiveInt {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || {
            ValueError::new(
                ValueKind::PositiveInt,
                "expected an integer from 1 to 2147483647 (digits only)",
            )
        };
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let trimmed = s.trim_start_matches('0');
        if trimmed.is_empty() || trimmed.len() > 10 {
            return Err(err());
        }
        trimmed
            .parse::<u32>()
            .ok()
            .and_then(PositiveInt::new)
            .ok_or_else(err)
    }
}

impl fmt::Display for PositiveInt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A boolean as OpenShift reads annotations (Go's `strconv.ParseBool`):
/// `1 t T TRUE true True` are true, `0 f F FALSE false False` are false,
/// anything else is refused.
pub fn parse_bool(s: &str) -> Result<bool, ValueError> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ValueError::new(
            ValueKind::Bool,
            "expected true or false (also 1/0, t/f, TRUE/FALSE, True/False)",
        )),
    }
}

/// Largest [`Weight`]: the API's bound on Route backend weights, and
/// HAProxy's on `server ... weight`.
pub const WEIGHT_MAX: u16 = 256;

/// A backend or server weight, `0..=256`.
///
/// Contract: a `Weight` is in range by construction, so nothing after the
/// constructor checks it again. Route weights (`spec.to.weight`,
/// `spec.alternateBackends[].weight`) are made once, in admission, with
/// [`Weight::try_from`] (an API integer; out of range is refused, as the
/// API server does); server weights are computed from them in planning and
/// made with [`Weight::clamped`]. Renderers write the number as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight(u16);

const WEIGHT_RULE: &str = "must be between 0 and 256";

impl Weight {
    /// No new traffic (an HTTP server of weight 0 is reached only through
    /// its sticky cookie).
    pub const ZERO: Weight = Weight(0);
    /// What each server gets when one Service alone has weight > 0
    /// (OpenShift's shortcut).
    pub const ONE: Weight = Weight(1);
    /// The API default of a backend without a weight.
    pub const DEFAULT: Weight = Weight(100);
    /// The largest weight, 256.
    pub const MAX: Weight = Weight(WEIGHT_MAX);

    /// `n` as a weight, `None` above [`WEIGHT_MAX`].
    pub const fn new(n: u16) -> Option<Weight> {
        if n <= WEIGHT_MAX {
            Some(Weight(n))
        } else {
            None
        }
    }

    /// A weight computed from other weights, limited to `0..=256`. The one
    /// place a computed value becomes a `Weight`: for
    /// `plan::backends::endpoint_weights`, whose float32 arithmetic (kept
    /// exact to OpenShift's) can only leave the range by rounding.
    pub fn clamped(n: i64) -> Weight {
        Weight(n.clamp(0, i64::from(WEIGHT_MAX)) as u16)
    }

    pub const fn get(self) -> u16 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<i64> for Weight {
    type Error = ValueError;
    /// An API integer: `0..=256`, else refused (the rule is the API
    /// server's message, `must be between 0 and 256`).
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        u16::try_from(n)
            .ok()
            .and_then(Weight::new)
            .ok_or_else(|| ValueError::new(ValueKind::Weight, WEIGHT_RULE))
    }
}

impl fmt::Display for Weight {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
