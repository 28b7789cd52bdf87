//! Typed values whose constructors refuse anything that cannot be rendered
//! safely into one HAProxy configuration line.
//!
//! Every type here parses from text (`FromStr`) with an *anchored* rule: the
//! whole input must match, and nothing outside a small, documented alphabet
//! survives. `Display` gives the canonical form to write into the
//! configuration; it never contains whitespace (except [`IpAllowlist`],
//! whose entries are separated by single spaces, as HAProxy arguments),
//! quotes, `#`, backslashes, control characters or non-ASCII text.
//!
//! Errors ([`ValueError`]) say the rule the input broke, never the input
//! itself, so they can be shown next to a hostile value without echoing it
//! twice. Callers that show the input use [`quote_for_message`].
//!
//! Semantics follow the OpenShift router (HAProxy based) where it has them;
//! deviations are stated on each type.
//!
//! Also here, though not parsed from text: [`Weight`], made from an API
//! integer, and [`Termination`], a closed type admission makes from
//! `spec.tls.termination`. They live in this module, which depends on no
//! other, so that every stage can name them without importing another
//! stage's module (no import cycles).

use std::borrow::Cow;

mod balance;
mod cookie;
mod duration;
mod forwarded;
mod headers;
mod http;
mod network;
mod number;
mod termination;

pub use balance::Balance;
pub use cookie::{CookieName, SameSite, COOKIE_NAME_MAX_LEN};
pub use duration::{Duration, HealthCheckInterval, TimeUnit, HAPROXY_MAX_TIMEOUT_MS};
pub use forwarded::ForwardedPolicy;
pub use headers::{
    Converter, DynamicPart, Fetch, HeaderAction, HeaderActions, HeaderOp, HeaderValue, ValuePart,
};
pub use http::{HstsPolicy, RewriteTarget, REWRITE_TARGET_MAX_LEN};
pub use network::{IpAllowlist, IpNetwork, IP_ALLOWLIST_INLINE_MAX, IP_ALLOWLIST_MAX_BYTES};
pub use number::{parse_bool, PositiveInt, Weight, POSITIVE_INT_MAX, WEIGHT_MAX};
pub use termination::Termination;

#[cfg(test)]
mod tests;

/// What kind of value failed to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    Duration,
    CookieName,
    SameSite,
    Balance,
    IpNetwork,
    IpAllowlist,
    HstsPolicy,
    RewriteTarget,
    ForwardedPolicy,
    PositiveInt,
    Bool,
    Weight,
}

/// A value was refused. `Display` is the rule it broke (e.g.
/// `expected <digits>[us|ms|s|m|h|d] ...`), without the input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{rule}")]
pub struct ValueError {
    kind: ValueKind,
    rule: Cow<'static, str>,
}

impl ValueError {
    fn new(kind: ValueKind, rule: impl Into<Cow<'static, str>>) -> Self {
        ValueError {
            kind,
            rule: rule.into(),
        }
    }

    /// Which type refused the value.
    pub fn kind(&self) -> ValueKind {
        self.kind
    }

    /// The rule the value broke.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// Show untrusted text inside a one-line message: at most `max_chars`
/// characters (then `...`), wrapped in double quotes, with `"` and `\`
/// backslash-escaped and everything outside printable ASCII escaped
/// (`\n`, `\r`, `\t`, `\u{..}`). The result is a single line of printable
/// ASCII whatever the input.
pub fn quote_for_message(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 2) + 2);
    out.push('"');
    let mut chars = s.chars();
    for c in chars.by_ref().take(max_chars) {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            _ => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    if chars.next().is_some() {
        out.push_str("...");
    }
    out.push('"');
    out
}
