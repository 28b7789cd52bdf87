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
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

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

// ---------------------------------------------------------------------------
// Duration

/// HAProxy's largest time value: 2147483647 ms (~24.8 days). Larger values
/// make `haproxy -c` fail ("timer overflow"), so they are clipped to this.
pub const HAPROXY_MAX_TIMEOUT_MS: u64 = 2_147_483_647;

const MAX_MICROS: u64 = HAPROXY_MAX_TIMEOUT_MS * 1_000;

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

// ---------------------------------------------------------------------------
// Cookie name

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

// ---------------------------------------------------------------------------
// SameSite

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

// ---------------------------------------------------------------------------
// Balance

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

// ---------------------------------------------------------------------------
// Forwarded headers policy

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

// ---------------------------------------------------------------------------
// Positive integers (rate limits, connection limits)

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

// ---------------------------------------------------------------------------
// Booleans

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

// ---------------------------------------------------------------------------
// IP networks and allowlists

const IP_NETWORK_RULE: &str =
    "expected an IPv4 or IPv6 address, optionally with /<prefix length> (CIDR)";

/// An IPv4 or IPv6 address or CIDR network, parsed with the standard
/// library (no zone ids, no IPv4 octets with leading zeros, no netmask
/// notation). Host bits after the prefix are kept as written (HAProxy masks
/// them). `Display` is the canonical address (`::1`, lower-case hex),
/// followed by `/<prefix>` unless the prefix is the full length (`/32` or
/// `/128` render as the bare address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length (32 or 128 for a single address).
    pub fn prefix_len(&self) -> u8 {
        self.prefix
    }

    fn max_prefix(addr: &IpAddr) -> u8 {
        match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }
}

impl FromStr for IpNetwork {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ValueError::new(ValueKind::IpNetwork, IP_NETWORK_RULE);
        // Only the characters an address can hold; this also keeps the std
        // parsers away from anything exotic.
        if s.is_empty()
            || s.len() > 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':' || b == b'/')
        {
            return Err(err());
        }
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = if addr_text.contains(':') {
            IpAddr::V6(addr_text.parse::<Ipv6Addr>().map_err(|_| err())?)
        } else {
            IpAddr::V4(addr_text.parse::<Ipv4Addr>().map_err(|_| err())?)
        };
        let max = IpNetwork::max_prefix(&addr);
        let prefix = match prefix_text {
            None => max,
            Some(p) => {
                let canonical = !p.is_empty()
                    && p.len() <= 3
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (p == "0" || !p.starts_with('0'));
                let n: u8 = if canonical {
                    p.parse().map_err(|_| err())?
                } else {
                    return Err(err());
                };
                if n > max {
                    return Err(err());
                }
                n
            }
        };
        Ok(IpNetwork { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == IpNetwork::max_prefix(&self.addr) {
            write!(f, "{}", self.addr)
        } else {
            write!(f, "{}/{}", self.addr, self.prefix)
        }
    }
}

/// Longest accepted allowlist text: 256 KiB, the Kubernetes limit for all
/// annotations of an object together, so anything a real API server
/// accepts is accepted here.
pub const IP_ALLOWLIST_MAX_BYTES: usize = 256 * 1024;

/// Most entries OpenShift writes inline on the `acl ... src` line (HAProxy
/// allows 64 words per line); longer lists go to a file (`src -f`).
pub const IP_ALLOWLIST_INLINE_MAX: usize = 61;

/// A non-empty list of [`IpNetwork`]s, written as a whitespace-separated
/// list (OpenShift: `strings.Fields`, so any Unicode whitespace separates).
/// There is no limit on the number of entries beyond
/// [`IP_ALLOWLIST_MAX_BYTES`] of input; lists longer than
/// [`IP_ALLOWLIST_INLINE_MAX`] must be rendered into a file, as OpenShift
/// does ([`IpAllowlist::fits_inline`]). `Display` joins the canonical
/// entries with single spaces; [`IpAllowlist::entries`] gives them one by
/// one (one per line in a file).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IpAllowlist(Vec<IpNetwork>);

impl IpAllowlist {
    pub fn entries(&self) -> &[IpNetwork] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: an allowlist has at least one entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the list may be written inline on one `acl ... src` line.
    pub fn fits_inline(&self) -> bool {
        self.0.len() <= IP_ALLOWLIST_INLINE_MAX
    }

    /// Parse as OpenShift does: invalid entries are dropped, the rest is
    /// kept. Returns the list and the dropped entries (as written). Fails
    /// when the text is longer than [`IP_ALLOWLIST_MAX_BYTES`] or holds no
    /// valid entry.
    pub fn parse_lenient(s: &str) -> Result<(IpAllowlist, Vec<&str>), ValueError> {
        if s.len() > IP_ALLOWLIST_MAX_BYTES {
            return Err(ValueError::new(
                ValueKind::IpAllowlist,
                "expected at most 262144 bytes of whitespace-separated IP addresses or CIDRs",
            ));
        }
        let mut good = Vec::new();
        let mut bad = Vec::new();
        for word in s.split_whitespace() {
            match word.parse::<IpNetwork>() {
                Ok(net) => good.push(net),
                Err(_) => bad.push(word),
            }
        }
        if good.is_empty() {
            return Err(ValueError::new(
                ValueKind::IpAllowlist,
                "expected a whitespace-separated list of IPv4/IPv6 addresses or CIDRs with at least one valid entry",
            ));
        }
        Ok((IpAllowlist(good), bad))
    }
}

impl FromStr for IpAllowlist {
    type Err = ValueError;
    /// Strict: every entry must be valid.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (list, bad) = IpAllowlist::parse_lenient(s)?;
        if bad.is_empty() {
            Ok(list)
        } else {
            Err(ValueError::new(
                ValueKind::IpAllowlist,
                "expected a whitespace-separated list of IPv4/IPv6 addresses or CIDRs",
            ))
        }
    }
}

impl fmt::Display for IpAllowlist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// HSTS

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

// ---------------------------------------------------------------------------
// Rewrite target

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

// ---------------------------------------------------------------------------
// Weight

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

// ---------------------------------------------------------------------------
// Termination

/// TLS termination type (`spec.tls.termination`, lower-cased). Parsed in
/// admission (case-insensitively, with the API server's messages), so it
/// has no `FromStr` here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Termination {
    Edge,
    Passthrough,
    Reencrypt,
}

impl Termination {
    pub fn as_str(self) -> &'static str {
        match self {
            Termination::Edge => "edge",
            Termination::Passthrough => "passthrough",
            Termination::Reencrypt => "reencrypt",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs no type may accept.
    const HOSTILE: &[&str] = &[
        "",
        " ",
        "\n",
        "\r\n",
        "\0",
        "\"",
        "'",
        "#",
        "%[src]",
        "{{ .Env }}",
        "${HOME}",
        "\\",
        "é",
        "\u{202e}",
        "\u{2028}",
        "10s\n",
        "10s\r\nbackend evil",
        "10s #comment",
        "/a b",
        "/a\0b",
        "/a\"b",
        "roundrobin\n",
        " roundrobin",
        "Lax\r\n",
        "max-age=1\n",
    ];

    fn refuses_all<T: FromStr>(extra: &[&str]) {
        for s in HOSTILE.iter().chain(extra) {
            assert!(s.parse::<T>().is_err(), "accepted {s:?}");
        }
    }

    fn rendered_is_safe(s: &str) {
        assert!(
            s.bytes()
                .all(|b| (b'!'..=b'~').contains(&b) && !b"\"'#\\".contains(&b)),
            "unsafe rendering {s:?}"
        );
    }

    #[test]
    fn values_duration_units() {
        let cases = [
            ("5000", "5000ms", 5_000_000),
            ("1", "1ms", 1_000),
            ("5000ms", "5000ms", 5_000_000),
            ("1500us", "1500us", 1_500),
            ("30s", "30s", 30_000_000),
            ("2m", "2m", 120_000_000),
            ("1h", "1h", 3_600_000_000),
            ("1d", "1d", 86_400_000_000),
            ("24d", "24d", 24 * 86_400_000_000),
            ("2147483647ms", "2147483647ms", MAX_MICROS),
            ("2147483647000us", "2147483647000us", MAX_MICROS),
        ];
        for (input, shown, micros) in cases {
            let d: Duration = input.parse().unwrap();
            assert_eq!(d.to_string(), shown, "{input}");
            assert_eq!(d.as_micros(), micros, "{input}");
            rendered_is_safe(&d.to_string());
        }
        assert_eq!("1us".parse::<Duration>().unwrap().as_millis_ceil(), 1);
        assert_eq!(
            "30s".parse::<Duration>().unwrap().to_std(),
            std::time::Duration::from_secs(30)
        );
        assert_eq!(Duration::from_millis(5000).to_string(), "5000ms");
        assert_eq!(Duration::from_millis(0).to_string(), "1ms");
        assert_eq!(Duration::from_millis(u64::MAX), Duration::MAX);
    }

    #[test]
    fn values_duration_clipping() {
        for input in [
            "2147483648ms",
            "2147483647001us",
            "24855d",
            "9999999999999999999999999999d",
            "18446744073709551616",
            "99999999999999999999999999999999999999999999999999999us",
        ] {
            let (d, clipped) = Duration::parse_reporting_clip(input).unwrap();
            assert!(clipped, "{input}");
            assert_eq!(d.to_string(), "2147483647ms");
        }
        let (_, clipped) = Duration::parse_reporting_clip("24d").unwrap();
        assert!(!clipped);
        let long = format!("1{}", "0".repeat(100_000));
        assert_eq!(long.parse::<Duration>().unwrap(), Duration::MAX);
    }

    #[test]
    fn values_duration_refused() {
        refuses_all::<Duration>(&[
            "0", "0s", "05s", "00", "-1", "+5", "5x", "5 s", " 5s", "5s ", "5S", "5MS", "5sec",
            "1.5s", "1e3", "s", "ms", "5ss", "5msms", "５s", "5s\0", "0x10",
        ]);
        let e = "5x".parse::<Duration>().unwrap_err();
        assert_eq!(e.kind(), ValueKind::Duration);
        assert!(e
            .to_string()
            .starts_with("expected <digits>[us|ms|s|m|h|d]"));
    }

    #[test]
    fn values_cookie_name() {
        for ok in [
            "a",
            "SESSION",
            "my_cookie",
            "2-edge_cookie",
            "_reen-cookie3",
            "A-Z_09",
        ] {
            let c: CookieName = ok.parse().unwrap();
            assert_eq!(c.to_string(), ok);
            rendered_is_safe(c.as_str());
        }
        let max = "a".repeat(255);
        assert!(max.parse::<CookieName>().is_ok());
        refuses_all::<CookieName>(&[
            "a=b",
            "a;b",
            "a b",
            "a.b",
            "a,b",
            "a:b",
            "a/b",
            "a%b",
            "ä",
            "a\tb",
            &"a".repeat(256),
        ]);
        assert!("x y"
            .parse::<CookieName>()
            .unwrap_err()
            .rule()
            .contains("A-Z a-z 0-9 _ -"));
    }

    #[test]
    fn values_same_site() {
        for (input, out) in [
            ("Strict", SameSite::Strict),
            ("strict", SameSite::Strict),
            ("LAX", SameSite::Lax),
            ("Lax", SameSite::Lax),
            ("None", SameSite::None),
            ("nOnE", SameSite::None),
        ] {
            assert_eq!(input.parse::<SameSite>().unwrap(), out);
        }
        assert_eq!(SameSite::Lax.to_string(), "Lax");
        refuses_all::<SameSite>(&["Laxx", "La x", "Strict;", "none\0", "Ｌax"]);
    }

    #[test]
    fn values_balance() {
        for s in ["roundrobin", "leastconn", "source", "random"] {
            assert_eq!(s.parse::<Balance>().unwrap().to_string(), s);
        }
        refuses_all::<Balance>(&[
            "RoundRobin",
            "first",
            "uri",
            "hdr(host)",
            "random(2)",
            "roundrobin leastconn",
            "source\tx",
            "static-rr",
        ]);
    }

    #[test]
    fn values_forwarded_policy() {
        for s in ["append", "replace", "never", "if-none"] {
            assert_eq!(s.parse::<ForwardedPolicy>().unwrap().to_string(), s);
        }
        assert_eq!(ForwardedPolicy::default(), ForwardedPolicy::Append);
        refuses_all::<ForwardedPolicy>(&["Append", "ifnone", "if_none", "always"]);
    }

    #[test]
    fn values_positive_int() {
        for (input, n) in [
            ("1", 1),
            ("10", 10),
            ("007", 7),
            ("2147483647", 2_147_483_647),
        ] {
            assert_eq!(input.parse::<PositiveInt>().unwrap().get(), n);
        }
        assert_eq!("007".parse::<PositiveInt>().unwrap().to_string(), "7");
        let many_zeros = format!("{}5", "0".repeat(10_000));
        assert_eq!(many_zeros.parse::<PositiveInt>().unwrap().get(), 5);
        refuses_all::<PositiveInt>(&[
            "0",
            "000",
            "-1",
            "+1",
            "1.0",
            "1e3",
            "2147483648",
            "4294967296",
            "99999999999999999999",
            "1 ",
            "0x10",
            "١",
        ]);
        assert_eq!(PositiveInt::new(0), None);
        assert_eq!(PositiveInt::new(u32::MAX), None);
    }

    #[test]
    fn values_bool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_bool(t), Ok(true));
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_bool(f), Ok(false));
        }
        for bad in ["", "yes", "no", "tRuE", "on", " true", "true\n", "2"] {
            assert!(parse_bool(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_ip_network() {
        let cases = [
            ("10.0.0.1", "10.0.0.1"),
            ("10.0.0.1/32", "10.0.0.1"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("10.1.2.3/8", "10.1.2.3/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::/0", "::/0"),
            ("::1", "::1"),
            ("2001:DB8::1/64", "2001:db8::1/64"),
            ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
            ("fe80::1/128", "fe80::1"),
            ("::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ];
        for (input, shown) in cases {
            let n: IpNetwork = input.parse().unwrap();
            assert_eq!(n.to_string(), shown, "{input}");
            rendered_is_safe(&n.to_string());
        }
        refuses_all::<IpNetwork>(&[
            "10.0.0.256",
            "10.0.0",
            "10.0.0.1/33",
            "10.0.0.1/",
            "10.0.0.1/08",
            "10.0.0.1/-1",
            "10.0.0.1/255.0.0.0",
            "010.0.0.1",
            "::1/129",
            "fe80::1%eth0",
            "192.abc.123.0",
            "10.0.0.1/8/8",
            "10.0.0.1,10.0.0.2",
            "localhost",
            "[::1]",
            "1.2.3.4:80",
        ]);
    }

    #[test]
    fn values_ip_allowlist() {
        let l: IpAllowlist = "192.168.1.10 10.0.0.0/8\t::1\n2001:db8::/32"
            .parse()
            .unwrap();
        assert_eq!(l.to_string(), "192.168.1.10 10.0.0.0/8 ::1 2001:db8::/32");
        assert_eq!(l.len(), 4);
        assert!(l.fits_inline());
        assert!(!l.is_empty());

        let (l, bad) = IpAllowlist::parse_lenient("1.2.3.4 nope 5.6.7.8/24 %[src]").unwrap();
        assert_eq!(l.to_string(), "1.2.3.4 5.6.7.8/24");
        assert_eq!(bad, vec!["nope", "%[src]"]);
        assert!("1.2.3.4 nope".parse::<IpAllowlist>().is_err());

        let many: Vec<String> = (0..62).map(|i| format!("10.0.0.{i}")).collect();
        let l: IpAllowlist = many.join(" ").parse().unwrap();
        assert!(!l.fits_inline());
        assert_eq!(l.entries().len(), 62);

        let big: Vec<String> = (0..15_000)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        let l: IpAllowlist = big.join(" ").parse().unwrap();
        assert_eq!(l.len(), 15_000);

        let too_big = "1.1.1.1 ".repeat(IP_ALLOWLIST_MAX_BYTES / 8 + 1);
        assert!(IpAllowlist::parse_lenient(&too_big).is_err());

        refuses_all::<IpAllowlist>(&["1.2.3.4,5.6.7.8", "1.2.3.4;5.6.7.8", "nope"]);
        for s in ["", "   ", "x y z"] {
            assert!(IpAllowlist::parse_lenient(s).is_err(), "{s:?}");
        }
    }

    #[test]
    fn values_hsts() {
        let cases = [
            ("max-age=31536000", "max-age=31536000"),
            ("max-age=0", "max-age=0"),
            (
                "max-age=31536000;includeSubDomains;preload",
                "max-age=31536000;includeSubDomains;preload",
            ),
            (
                "preload; max-age=1 ;INCLUDESUBDOMAINS",
                "max-age=1;includeSubDomains;preload",
            ),
            ("MAX-AGE = \"300\"", "max-age=300"),
            ("max-age\t=\t5\t;\tpreload", "max-age=5;preload"),
            (
                "includesubdomains;includeSubDomains;max-age=9",
                "max-age=9;includeSubDomains",
            ),
            ("max-age=0010", "max-age=10"),
        ];
        for (input, shown) in cases {
            let h: HstsPolicy = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(h.to_string(), shown, "{input}");
            rendered_is_safe(&h.to_string());
        }
        refuses_all::<HstsPolicy>(&[
            "includeSubDomains",
            "max-age",
            "max-age=",
            "max-age=-1",
            "max-age=1.5",
            "max-age=\"1",
            "max-age=1\"",
            "max-age=1;",
            ";max-age=1",
            "max-age=1;;preload",
            "max-age=1;max-age=2",
            "max-age=1;foo",
            "max-age=1;preload=1",
            "max-age=1,preload",
            " max-age=1",
            "max-age=1 ",
            "max-age=1\r\nX-Evil: 1",
            "max-age=1\n;preload",
            "max-age=1;preload'",
            "max-age=99999999999999999999",
            "max-age=1;preload #x",
        ]);
    }

    #[test]
    fn values_rewrite_target() {
        for ok in [
            "/",
            "/api/v2/",
            "/a%20b",
            "/%2F%2f",
            "/a-b_c.d~e",
            "/x!&()*+,;=:@y",
            "//double",
            "/..",
        ] {
            let r: RewriteTarget = ok.parse().unwrap();
            assert_eq!(r.to_string(), ok);
            assert_eq!(r.as_str(), ok);
            rendered_is_safe(r.as_str());
        }
        let max = format!("/{}", "a".repeat(REWRITE_TARGET_MAX_LEN - 1));
        assert!(max.parse::<RewriteTarget>().is_ok());
        refuses_all::<RewriteTarget>(&[
            "api",
            "api/v2",
            "/a%",
            "/a%2",
            "/a%zz",
            "/a%%20",
            "/a%[src]",
            "/a%{+Q}[src]",
            "/a\\1",
            "/a#b",
            "/a'b",
            "/a$b",
            "/a?x=1",
            "/a{b}",
            "/a[0]",
            "/a<b>",
            "/a|b",
            "/a^b",
            "/a`b",
            "/a\tb",
            "/é",
            "/a\u{7f}",
            &format!("/{}", "a".repeat(REWRITE_TARGET_MAX_LEN)),
        ]);
    }

    #[test]
    fn values_weight() {
        for n in [0, 1, 100, 255, 256] {
            let w = Weight::try_from(n).unwrap();
            assert_eq!(i64::from(w.get()), n);
            assert_eq!(w.to_string(), n.to_string());
        }
        for n in [-1, 257, 300, 65_536 + 100, i64::MAX, i64::MIN] {
            let e = Weight::try_from(n).unwrap_err();
            assert_eq!(e.kind(), ValueKind::Weight);
            assert_eq!(e.rule(), "must be between 0 and 256");
        }
        assert_eq!(Weight::new(256), Some(Weight::MAX));
        assert_eq!(Weight::new(257), None);
        assert_eq!(Weight::clamped(-5), Weight::ZERO);
        assert_eq!(Weight::clamped(257), Weight::MAX);
        assert_eq!(Weight::clamped(128).get(), 128);
        assert!(Weight::ZERO.is_zero() && !Weight::ONE.is_zero());
        assert_eq!(Weight::DEFAULT.get(), 100);
        assert!(Weight::ZERO < Weight::ONE && Weight::ONE < Weight::MAX);
    }

    #[test]
    fn values_quote_for_message() {
        assert_eq!(quote_for_message("5x", 64), "\"5x\"");
        assert_eq!(quote_for_message("a\"b\\c", 64), "\"a\\\"b\\\\c\"");
        assert_eq!(quote_for_message("a\r\nb\t\0", 64), "\"a\\r\\nb\\t\\u{0}\"");
        assert_eq!(quote_for_message("é\u{202e}", 64), "\"\\u{e9}\\u{202e}\"");
        let long = "x".repeat(100);
        assert_eq!(
            quote_for_message(&long, 64),
            format!("\"{}...\"", "x".repeat(64))
        );
        assert_eq!(
            quote_for_message(&"x".repeat(64), 64),
            format!("\"{}\"", "x".repeat(64))
        );
        for s in HOSTILE {
            let q = quote_for_message(s, 64);
            assert!(q.bytes().all(|b| (b' '..=b'~').contains(&b)), "{q:?}");
        }
    }
}
