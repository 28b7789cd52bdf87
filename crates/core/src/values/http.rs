//! HTTP-level policies: HSTS and path rewriting.

use std::fmt;
use std::str::FromStr;

use super::{ValueError, ValueKind};

const HSTS_RULE: &str =
    "expected max-age=<digits> with optional includeSubDomains and preload, separated by ';'";

/// A `Strict-Transport-Security` policy.
///
/// Input as OpenShift validates it: directives separated by `;`, exactly one
/// `max-age=<digits>` (the number may be in double quotes), any number of
/// `includeSubDomains` and `preload`, in any order, directive names case
/// insensitive, spaces or tabs allowed around `;` and `=` but not at the
/// start or end, no other directive, no empty directive. `max-age` must fit
/// in 64 bits.
///
/// `Display` is canonical and has no spaces, so it is one HAProxy word:
/// `max-age=N[;includeSubDomains][;preload]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HstsPolicy {
    pub max_age: u64,
    pub include_subdomains: bool,
    pub preload: bool,
}

impl FromStr for HstsPolicy {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::new(ValueKind::HstsPolicy, HSTS_RULE);
        let is_ws = |c: char| c == ' ' || c == '\t';
        if s.is_empty() || s.starts_with(is_ws) || s.ends_with(is_ws) {
            return Err(err());
        }
        let mut max_age = None;
        let mut include_subdomains = false;
        let mut preload = false;
        for part in s.split(';') {
            let part = part.trim_matches(is_ws);
            if part.eq_ignore_ascii_case("includeSubDomains") {
                include_subdomains = true;
            } else if part.eq_ignore_ascii_case("preload") {
                preload = true;
            } else {
                let (name, value) = part.split_once('=').ok_or_else(err)?;
                if !name.trim_end_matches(is_ws).eq_ignore_ascii_case("max-age")
                    || max_age.is_some()
                {
                    return Err(err());
                }
                let value = value.trim_start_matches(is_ws);
                let digits = match value.strip_prefix('"') {
                    Some(rest) => rest.strip_suffix('"').ok_or_else(err)?,
                    None => value,
                };
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(err());
                }
                let n = digits.parse::<u64>().map_err(|_| {
                    ValueError::new(
                        ValueKind::HstsPolicy,
                        "max-age must be at most 18446744073709551615",
                    )
                })?;
                max_age = Some(n);
            }
        }
        Ok(HstsPolicy {
            max_age: max_age.ok_or_else(err)?,
            include_subdomains,
            preload,
        })
    }
}

impl fmt::Display for HstsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "max-age={}", self.max_age)?;
        if self.include_subdomains {
            f.write_str(";includeSubDomains")?;
        }
        if self.preload {
            f.write_str(";preload")?;
        }
        Ok(())
    }
}

/// Longest accepted rewrite target, in bytes (HAProxy lines are limited, and
/// the rule also carries the Route path).
pub const REWRITE_TARGET_MAX_LEN: usize = 1024;

const REWRITE_TARGET_RULE: &str = "expected a path starting with '/' of at most 1024 characters from A-Z a-z 0-9 - . _ ~ ! & ( ) * + , ; = : @ / and %XX escapes (two hex digits)";

/// The path that replaces the Route's matched path prefix
/// (`haproxy.router.openshift.io/rewrite-target`).
///
/// Rule: starts with `/` (as OpenShift's `^/.*$`); at most
/// [`REWRITE_TARGET_MAX_LEN`] bytes; only RFC 3986 path characters
/// `A-Z a-z 0-9 - . _ ~ ! & ( ) * + , ; = : @ /` and percent-escapes `%XX`
/// (exactly two hex digits). Refused, unlike OpenShift (which rewrites
/// them with ad-hoc escaping rules): whitespace, control characters,
/// non-ASCII, `"`, `'`, `\`, `#`, `$`, `?`, `{}`, `[]`, `<>`, `|`, `^`, `` ` ``
/// and any `%` not starting a `%XX` escape (so `%[`, `%{` and `%%` are
/// impossible).
///
/// `Display`/[`RewriteTarget::as_str`] give the path as it goes on the
/// wire. In an HAProxy log-format argument (the format of
/// `http-request replace-path`) the renderer must still double every `%`
/// (`%20` -> `%%20`): a lone `%` starts a log-format variable there and
/// `haproxy -c` refuses it. No other character of the alphabet is special
/// in a log-format argument or an unquoted configuration word.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RewriteTarget(String);

impl RewriteTarget {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RewriteTarget {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::new(ValueKind::RewriteTarget, REWRITE_TARGET_RULE);
        if !s.starts_with('/') || s.len() > REWRITE_TARGET_MAX_LEN {
            return Err(err());
        }
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b == b'%' {
                let escape_ok = bytes.len() > i + 2
                    && bytes[i + 1].is_ascii_hexdigit()
                    && bytes[i + 2].is_ascii_hexdigit();
                if !escape_ok {
                    return Err(err());
                }
                i += 3;
                continue;
            }
            let ok = b.is_ascii_alphanumeric() || b"-._~!&()*+,;=:@/".contains(&b);
            if !ok {
                return Err(err());
            }
            i += 1;
        }
        Ok(RewriteTarget(s.to_owned()))
    }
}

impl fmt::Display for RewriteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
