//! Step 1 of admission: the effective host name and router host policy
//! (`NoHostValue`, `InvalidHost`, `RouteNotAdmitted`).

use crate::model::Route;
use crate::settings::RouterSettings;

use super::route::RouteHost;
use super::verdict::{Reason, Rejection};

/// Longest host name (DNS-1123 subdomain).
pub const MAX_HOST_LEN: usize = 253;
/// Longest DNS label.
pub const MAX_LABEL_LEN: usize = 63;

/// The host a Route gets, with warnings (e.g. case folding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostResolution {
    pub host: RouteHost,
    pub warnings: Vec<String>,
}

/// A host rejection also reports the host as far as it could be derived,
/// so `check` can show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRejection {
    pub reported_host: String,
    pub rejection: Rejection,
}

/// Resolve and check the host of one Route.
pub fn resolve_host(
    route: &Route,
    settings: &RouterSettings,
) -> Result<HostResolution, HostRejection> {
    let spec = &route.spec;
    let wildcard = spec.wildcard_policy.as_deref() == Some("Subdomain");
    let requested = spec.host.as_deref().unwrap_or("");
    let reject = |host: &str, reason, message: String| HostRejection {
        reported_host: host.to_string(),
        rejection: Rejection::new(reason, message),
    };

    let derived = if !requested.is_empty() {
        requested.to_string()
    } else if let (Some(sub), Some(domain)) = (
        spec.subdomain.as_deref().filter(|s| !s.is_empty()),
        settings.router_domain.as_deref().filter(|d| !d.is_empty()),
    ) {
        format!("{sub}.{domain}")
    } else if let Some(template) = settings
        .hostname_template
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        template
            .replace("${name}", route.metadata.name.as_deref().unwrap_or(""))
            .replace(
                "${namespace}",
                route.metadata.namespace.as_deref().unwrap_or(""),
            )
    } else {
        let message = if spec.subdomain.as_deref().is_some_and(|s| !s.is_empty()) {
            "spec.host is empty and spec.subdomain needs a router domain (--router-domain), which is not configured"
        } else {
            "spec.host is empty and neither spec.subdomain with a router domain nor a hostname template (--hostname-template) can provide one"
        };
        return Err(reject("", Reason::NoHostValue, message.to_string()));
    };

    let mut warnings = Vec::new();
    let host = if derived.chars().any(|c| c.is_ascii_uppercase()) {
        let folded = derived.to_ascii_lowercase();
        warnings.push(format!(
            "spec.host: upper-case letters folded to lower case ({} -> {folded})",
            printable(&derived)
        ));
        folded
    } else {
        derived
    };

    if let Err(rule) = check_dns_subdomain(&host, wildcard) {
        return Err(reject(
            &host,
            Reason::InvalidHost,
            format!(
                "host \"{}\" is not a valid DNS-1123 subdomain: {rule}",
                printable(&host)
            ),
        ));
    }

    if let Some(domain) = settings.denied_domains.iter().find(|d| in_domain(&host, d)) {
        return Err(reject(
            &host,
            Reason::RouteNotAdmitted,
            format!("host {host} is in denied domain {domain} (--denied-domains)"),
        ));
    }
    if !settings.allowed_domains.is_empty()
        && !settings.allowed_domains.iter().any(|d| in_domain(&host, d))
    {
        return Err(reject(
            &host,
            Reason::RouteNotAdmitted,
            format!(
                "host {host} is not in an allowed domain ({}; --allowed-domains)",
                settings.allowed_domains.join(", ")
            ),
        ));
    }

    let route_host = RouteHost {
        host: host.clone().into(),
        wildcard,
    };
    if wildcard {
        if !settings.allow_wildcard_routes {
            return Err(reject(
                &host,
                Reason::RouteNotAdmitted,
                "wildcardPolicy Subdomain is not allowed by this router (start it with --allow-wildcard-routes)".into(),
            ));
        }
        // A wildcard over a one-label domain (`*.com`, `www.test`) is
        // admitted, as the OpenShift router admits it: the host-ownership
        // rules (first namespace to claim the domain owns it) decide who may
        // use the names below it, and `--denied-domains` / `--allowed-domains`
        // are the operator's tool to keep such Routes out.
        //
        // A wildcard Route whose host is a single label (`net`) has no domain
        // to cover. OpenShift gives it the empty domain (it then claims every
        // one-label host); there is no such name to serve, so it is refused
        // (a deliberate difference, see README).
        if route_host.wildcard_domain().is_none() {
            return Err(reject(
                &host,
                Reason::RouteNotAdmitted,
                format!(
                    "wildcard Route host {host} is a single label: there is no domain below it \
                     for the wildcard to cover (give the host a domain, e.g. www.{host})"
                ),
            ));
        }
    }
    Ok(HostResolution {
        host: route_host,
        warnings,
    })
}

/// Whether `host` equals `domain` or lies below it (case-insensitive,
/// trailing dots ignored).
pub fn in_domain(host: &str, domain: &str) -> bool {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if domain.is_empty() {
        return false;
    }
    host == domain
        || host
            .strip_suffix(domain.as_str())
            .is_some_and(|p| p.ends_with('.'))
}

/// DNS-1123 subdomain: at most 253 characters, dot-separated labels of
/// 1–63 characters `[a-z0-9]([-a-z0-9]*[a-z0-9])?`. A wildcard Route may use
/// `*` as its whole first label. Returns the broken rule.
pub fn check_dns_subdomain(host: &str, wildcard: bool) -> Result<(), String> {
    if host.len() > MAX_HOST_LEN {
        return Err(format!(
            "longer than {MAX_HOST_LEN} characters ({})",
            host.len()
        ));
    }
    if host.ends_with('.') {
        return Err("must not end with a dot".into());
    }
    for (index, label) in host.split('.').enumerate() {
        if index == 0 && label == "*" {
            if !wildcard {
                return Err("a \"*\" label needs wildcardPolicy Subdomain".into());
            }
            continue;
        }
        if label.is_empty() {
            return Err("empty label".into());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!("label longer than {MAX_LABEL_LEN} characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("labels may contain only a-z, 0-9 and '-'".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("labels must start and end with a letter or digit".into());
        }
    }
    Ok(())
}

/// A value safe to quote in a one-line message: control characters
/// escaped, long values cut.
pub fn printable(value: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = value
        .chars()
        .take(MAX)
        .flat_map(char::escape_debug)
        .collect();
    if value.chars().count() > MAX {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::RouteBuilder;

    /// The Route `shop/web` with an empty spec; cases add what they test.
    fn web() -> RouteBuilder {
        RouteBuilder::new("shop", "web")
    }

    fn reason(route: &Route, settings: &RouterSettings) -> Result<String, Reason> {
        resolve_host(route, settings)
            .map(|h| h.host.host.to_string())
            .map_err(|e| e.rejection.reason)
    }

    #[test]
    fn host_derivation_and_rejections() {
        let with_domain = RouterSettings {
            router_domain: Some("apps.example.com".into()),
            ..Default::default()
        };
        let with_template = RouterSettings {
            hostname_template: Some("${name}-${namespace}.apps.example.com".into()),
            ..Default::default()
        };
        let wildcards = RouterSettings {
            allow_wildcard_routes: true,
            ..Default::default()
        };
        let denied = RouterSettings {
            denied_domains: vec!["evil.com".into()],
            allowed_domains: vec!["example.com".into()],
            ..Default::default()
        };
        let none = RouterSettings::default();
        let cases: Vec<(Route, &RouterSettings, Result<&str, Reason>)> = vec![
            (
                web().host("www.example.com").build(),
                &none,
                Ok("www.example.com"),
            ),
            (
                web().subdomain("shop").build(),
                &with_domain,
                Ok("shop.apps.example.com"),
            ),
            (
                web().subdomain("shop").build(),
                &none,
                Err(Reason::NoHostValue),
            ),
            (web().build(), &none, Err(Reason::NoHostValue)),
            (web().build(), &with_domain, Err(Reason::NoHostValue)),
            (
                web().build(),
                &with_template,
                Ok("web-shop.apps.example.com"),
            ),
            (
                web().subdomain("a").build(),
                &with_template,
                Ok("web-shop.apps.example.com"),
            ),
            (
                web().host("WWW.Example.COM").build(),
                &none,
                Ok("www.example.com"),
            ),
            (
                web().host("www.example.com.").build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (
                web().host("under_score.example.com").build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (
                web().host("-lead.example.com").build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (web().host("a..b").build(), &none, Err(Reason::InvalidHost)),
            (
                web().host("a\nb.com").build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (
                web().host("a b.com").build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (
                web().host("*.example.com").build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (
                web().host(&"a".repeat(64)).build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (
                web()
                    .host(&format!(
                        "{}.{}",
                        ["a".repeat(63).as_str(); 3].join("."),
                        "b".repeat(61)
                    ))
                    .build(),
                &none,
                Ok(""),
            ),
            (
                web().host(&["a".repeat(63).as_str(); 5].join(".")).build(),
                &none,
                Err(Reason::InvalidHost),
            ),
            (
                web().host("www.example.com").wildcard().build(),
                &none,
                Err(Reason::RouteNotAdmitted),
            ),
            (
                web().host("www.example.com").wildcard().build(),
                &wildcards,
                Ok("www.example.com"),
            ),
            (
                web().host("*.example.com").wildcard().build(),
                &wildcards,
                Ok("*.example.com"),
            ),
            (
                web().host("www.com").wildcard().build(),
                &wildcards,
                Ok("www.com"),
            ),
            (
                web().host("*.com").wildcard().build(),
                &wildcards,
                Ok("*.com"),
            ),
            (
                web().host("net").wildcard().build(),
                &wildcards,
                Err(Reason::RouteNotAdmitted),
            ),
            (
                web().host("a.evil.com").build(),
                &denied,
                Err(Reason::RouteNotAdmitted),
            ),
            (
                web().host("evil.com").build(),
                &denied,
                Err(Reason::RouteNotAdmitted),
            ),
            (
                web().host("notevil.com").build(),
                &denied,
                Err(Reason::RouteNotAdmitted),
            ),
            (
                web().host("a.example.com").build(),
                &denied,
                Ok("a.example.com"),
            ),
            (
                web().host("example.com").build(),
                &denied,
                Ok("example.com"),
            ),
            (
                web().host("badexample.com").build(),
                &denied,
                Err(Reason::RouteNotAdmitted),
            ),
        ];
        for (i, (r, settings, expected)) in cases.into_iter().enumerate() {
            let got = reason(&r, settings);
            match expected {
                Ok("") => assert!(got.is_ok(), "case {i}: {got:?}"),
                Ok(h) => assert_eq!(got, Ok(h.to_string()), "case {i}"),
                Err(reason) => assert_eq!(got, Err(reason), "case {i}"),
            }
        }
    }

    #[test]
    fn case_folding_warns() {
        let r = web().host("Shop.Example.com").build();
        let res = resolve_host(&r, &RouterSettings::default()).unwrap();
        assert_eq!(res.host.host, "shop.example.com");
        assert_eq!(res.warnings.len(), 1);
        assert!(res.warnings[0].contains("folded"), "{:?}", res.warnings);
    }

    #[test]
    fn messages_name_the_rule() {
        let r = web().host("www.example.com.").build();
        let err = resolve_host(&r, &RouterSettings::default()).unwrap_err();
        assert!(err.rejection.message.contains("must not end with a dot"));
        let r = web().host("x.evil.com").build();
        let settings = RouterSettings {
            denied_domains: vec!["evil.com".into()],
            ..Default::default()
        };
        let err = resolve_host(&r, &settings).unwrap_err();
        assert!(err.rejection.message.contains("denied domain evil.com"));
    }
}
