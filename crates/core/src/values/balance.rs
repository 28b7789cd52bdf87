//! Load-balancing algorithms.

use std::fmt;
use std::str::FromStr;

use super::{ValueError, ValueKind};

/// Load-balancing algorithm: exactly `roundrobin`, `leastconn`, `source` or
/// `random` (OpenShift's `roundrobin|leastconn|source|random`, case
/// sensitive, no arguments).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Balance {
    RoundRobin,
    LeastConn,
    Source,
    Random,
}

impl Balance {
    pub fn as_str(self) -> &'static str {
        match self {
            Balance::RoundRobin => "roundrobin",
            Balance::LeastConn => "leastconn",
            Balance::Source => "source",
            Balance::Random => "random",
        }
    }
}

impl FromStr for Balance {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "roundrobin" => Ok(Balance::RoundRobin),
            "leastconn" => Ok(Balance::LeastConn),
            "source" => Ok(Balance::Source),
            "random" => Ok(Balance::Random),
            _ => Err(ValueError::new(
                ValueKind::Balance,
                "expected roundrobin, leastconn, source or random",
            )),
        }
    }
}

impl fmt::Display for Balance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
