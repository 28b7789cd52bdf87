//! What the proxy does with `X-Forwarded-*` headers.

use std::fmt;
use std::str::FromStr;

use super::{ValueError, ValueKind};

/// How `Forwarded` and `X-Forwarded-*` request headers are set: exactly
/// `append` (the default), `replace`, `never` or `if-none` (case sensitive,
/// as OpenShift).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ForwardedPolicy {
    /// Add the headers, keeping any the client sent.
    #[default]
    Append,
    /// Set the headers, dropping any the client sent.
    Replace,
    /// Never set them (the client's headers pass through).
    Never,
    /// Set each header only if the client did not send it.
    IfNone,
}

impl ForwardedPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardedPolicy::Append => "append",
            ForwardedPolicy::Replace => "replace",
            ForwardedPolicy::Never => "never",
            ForwardedPolicy::IfNone => "if-none",
        }
    }
}

impl FromStr for ForwardedPolicy {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "append" => Ok(ForwardedPolicy::Append),
            "replace" => Ok(ForwardedPolicy::Replace),
            "never" => Ok(ForwardedPolicy::Never),
            "if-none" => Ok(ForwardedPolicy::IfNone),
            _ => Err(ValueError::new(
                ValueKind::ForwardedPolicy,
                "expected append, replace, never or if-none",
            )),
        }
    }
}

impl fmt::Display for ForwardedPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
