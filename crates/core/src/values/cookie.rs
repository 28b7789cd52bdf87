//! Cookie settings: the sticky cookie's name and its SameSite attribute.

use std::fmt;
use std::str::FromStr;

use super::{ValueError, ValueKind};

/// Longest accepted cookie name.
pub const COOKIE_NAME_MAX_LEN: usize = 255;

/// A sticky-session cookie name: 1..=255 of `A-Z a-z 0-9 _ -` (OpenShift's
/// `[a-zA-Z0-9_-]+`, a subset of RFC 6265 token characters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CookieName(String);

impl CookieName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for CookieName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= COOKIE_NAME_MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if ok {
            Ok(CookieName(s.to_owned()))
        } else {
            Err(ValueError::new(
                ValueKind::CookieName,
                "expected 1 to 255 characters from A-Z a-z 0-9 _ -",
            ))
        }
    }
}

impl fmt::Display for CookieName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `SameSite` attribute of the sticky cookie. Input is
/// case-insensitive (OpenShift only accepts the exact spellings, and falls
/// back to `None` otherwise; accepting `lax` as `Lax` is never less strict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Strict => "Strict",
            SameSite::Lax => "Lax",
            SameSite::None => "None",
        }
    }
}

impl FromStr for SameSite {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("strict") {
            Ok(SameSite::Strict)
        } else if s.eq_ignore_ascii_case("lax") {
            Ok(SameSite::Lax)
        } else if s.eq_ignore_ascii_case("none") {
            Ok(SameSite::None)
        } else {
            Err(ValueError::new(
                ValueKind::SameSite,
                "expected Strict, Lax or None",
            ))
        }
    }
}

impl fmt::Display for SameSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
