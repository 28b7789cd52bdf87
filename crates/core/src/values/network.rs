//! IP networks and source-address allowlists.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::{ValueError, ValueKind};

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
