//! Does the leaf certificate name the Route's host? (A warning, never a
//! rejection: OpenShift does not check it either.)
//!
//! Rules, as browsers and OpenSSL's `X509_check_host` apply them:
//! - DNS subjectAltNames; the subject CN only when there is no DNS SAN;
//! - names compare case-insensitively, ignoring a trailing dot;
//! - a wildcard is a whole leftmost label `*` followed by at least two
//!   labels: `*.example.com` covers `a.example.com`, not `a.b.example.com`
//!   nor `example.com`; partial wildcards (`w*.example.com`) are not honoured;
//! - a host that is an IP address needs an IP address SAN;
//! - a wildcard Route (`wildcardPolicy: Subdomain`) serves every host of its
//!   domain, so its certificate must name `*.<domain>` itself.

use std::net::IpAddr;

use openssl::nid::Nid;
use openssl::x509::X509Ref;

use crate::admit::route::RouteHost;

/// What the leaf names, for matching and for the warning text.
struct Names {
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    /// The CN, when it stands in for missing DNS SANs.
    cn: Option<String>,
}

fn names(leaf: &X509Ref) -> Names {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Some(sans) = leaf.subject_alt_names() {
        for san in &sans {
            if let Some(name) = san.dnsname() {
                dns.push(normalize(name));
            } else if let Some(ip) = san.ipaddress() {
                match ip.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(ip).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(ip).unwrap_or_default())),
                    _ => {}
                }
            }
        }
    }
    let cn = if dns.is_empty() {
        leaf.subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .last()
            .and_then(|e| e.data().to_string().ok())
            .map(|s| normalize(&s))
    } else {
        None
    };
    Names { dns, ips, cn }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Does certificate name `pattern` cover `host` (both normalized)?
pub(crate) fn name_covers(pattern: &str, host: &str) -> bool {
    if pattern == host {
        return true;
    }
    let Some(suffix) = pattern.strip_prefix("*.") else {
        return false;
    };
    // At least two labels after the wildcard, no further wildcard.
    if !suffix.contains('.') || suffix.contains('*') {
        return false;
    }
    match host.split_once('.') {
        Some((first, rest)) => !first.is_empty() && rest == suffix,
        None => false,
    }
}

/// Whether `leaf` is a wildcard certificate (the API reference offers h2
/// only on "a custom (non-wildcard) certificate"): one of its DNS SANs
/// starts with `*`, or, when it has no DNS SAN, one of its subject CNs
/// does. Names as written (not normalized); partial wildcards such as
/// `w*.example.com` do not count, as they do not start with `*`.
pub(crate) fn is_wildcard_certificate(leaf: &X509Ref) -> bool {
    let sans = leaf.subject_alt_names();
    let dns_names: Vec<&str> = sans.iter().flatten().filter_map(|n| n.dnsname()).collect();
    if !dns_names.is_empty() {
        return dns_names.iter().any(|n| n.starts_with('*'));
    }
    leaf.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .any(|e| e.data().as_slice().starts_with(b"*"))
}

/// `None` when the leaf covers what the Route serves, else the warning.
pub(crate) fn coverage_warning(leaf: &X509Ref, host: &RouteHost) -> Option<String> {
    let names = names(leaf);
    let host_name = normalize(&host.host);
    let candidates: Vec<&String> = names.dns.iter().chain(names.cn.iter()).collect();

    let (covered, what) = match host.wildcard_domain() {
        Some(domain) => {
            let wanted = format!("*.{}", normalize(domain));
            (
                candidates.iter().any(|n| **n == wanted),
                format!("{wanted}, which the wildcard Route serves"),
            )
        }
        None => match host_name.parse::<IpAddr>() {
            Ok(ip) => (names.ips.contains(&ip), format!("host {host_name}")),
            Err(_) => (
                candidates.iter().any(|n| name_covers(n, &host_name)),
                format!("host {host_name}"),
            ),
        },
    };
    if covered {
        return None;
    }
    Some(format!(
        "spec.tls.certificate: the certificate does not cover {what} (it names {})",
        listing(&names)
    ))
}

fn listing(names: &Names) -> String {
    const MAX: usize = 5;
    let mut all: Vec<String> = names.dns.clone();
    all.extend(names.ips.iter().map(|ip| ip.to_string()));
    if all.is_empty() {
        return match &names.cn {
            Some(cn) => format!("only CN={cn}"),
            None => "no host names".to_string(),
        };
    }
    let total = all.len();
    let mut text = all.into_iter().take(MAX).collect::<Vec<_>>().join(", ");
    if total > MAX {
        text.push_str(&format!(" and {} more", total - MAX));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{is_wildcard_certificate, name_covers};
    use crate::testkit::certs::CertSpec;

    #[test]
    fn wildcard_detection() {
        let cases = [
            (CertSpec::leaf(&["www.example.com"]), false),
            (CertSpec::leaf(&["*.example.com"]), true),
            (CertSpec::leaf(&["example.com", "*.example.com"]), true),
            (CertSpec::leaf(&["w*.example.com"]), false),
            // DNS SANs decide; the CN only counts without them.
            (
                CertSpec::leaf(&["www.example.com"]).cn("*.example.com"),
                false,
            ),
            (CertSpec::leaf(&[]).cn("*.example.com"), true),
            (CertSpec::leaf(&[]).cn("www.example.com"), false),
            (CertSpec::leaf(&["10.0.0.1"]).cn("*.example.com"), true),
        ];
        for (i, (spec, want)) in cases.into_iter().enumerate() {
            let leaf = spec.self_signed().cert;
            assert_eq!(is_wildcard_certificate(&leaf), want, "case {i}");
        }
    }

    #[test]
    fn wildcard_matching() {
        let cases = [
            ("a.example.com", "a.example.com", true),
            ("a.example.com", "b.example.com", false),
            ("*.example.com", "a.example.com", true),
            ("*.example.com", "a.b.example.com", false),
            ("*.example.com", "example.com", false),
            ("*.com", "example.com", false),
            ("w*.example.com", "www.example.com", false),
            ("*.*.example.com", "a.b.example.com", false),
        ];
        for (pattern, host, want) in cases {
            assert_eq!(name_covers(pattern, host), want, "{pattern} vs {host}");
        }
    }
}
