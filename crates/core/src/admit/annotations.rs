//! Step 5 of admission: annotations (SPEC §3 step 5, §7).
//!
//! Every known annotation is parsed into a typed value from
//! [`crate::values`]; an invalid value is ignored (the Route is still
//! admitted, the option keeps its default) and reported as one warning line:
//!
//! ```text
//! annotation haproxy.router.openshift.io/timeout: invalid value "5x": expected <digits>[us|ms|s|m|h|d] ...
//! ```
//!
//! The value shown is cut to 64 characters and escaped, so a warning is
//! always one line of printable ASCII. Unknown annotations are ignored
//! silently. An annotation whose value is the empty string counts as
//! absent (no warning), as in OpenShift, where an empty value never matches.
//!
//! Annotations that cannot have an effect on the Route's termination are
//! dropped with an `ignored` warning so that the planner never sees them:
//! HTTP-only annotations on passthrough Routes, and `hsts_header` /
//! `cookie-same-site` on Routes without TLS termination (they only apply
//! to edge and reencrypt).

use std::collections::BTreeMap;

use crate::values::{
    parse_bool, quote_for_message, Balance, CookieName, Duration, ForwardedPolicy,
    HealthCheckInterval, HstsPolicy, IpAllowlist, PositiveInt, RewriteTarget, SameSite,
    Termination, ValueError,
};

/// `haproxy.router.openshift.io/balance`
pub const BALANCE: &str = "haproxy.router.openshift.io/balance";
/// `haproxy.router.openshift.io/timeout`
pub const TIMEOUT: &str = "haproxy.router.openshift.io/timeout";
/// `haproxy.router.openshift.io/timeout-tunnel`
pub const TIMEOUT_TUNNEL: &str = "haproxy.router.openshift.io/timeout-tunnel";
/// `haproxy.router.openshift.io/ip_allowlist`
pub const IP_ALLOWLIST: &str = "haproxy.router.openshift.io/ip_allowlist";
/// `haproxy.router.openshift.io/ip_whitelist` (legacy name of `ip_allowlist`)
pub const IP_WHITELIST: &str = "haproxy.router.openshift.io/ip_whitelist";
/// `haproxy.router.openshift.io/hsts_header`
pub const HSTS_HEADER: &str = "haproxy.router.openshift.io/hsts_header";
/// `haproxy.router.openshift.io/disable_cookies`
pub const DISABLE_COOKIES: &str = "haproxy.router.openshift.io/disable_cookies";
/// `haproxy.router.openshift.io/rewrite-target`
pub const REWRITE_TARGET: &str = "haproxy.router.openshift.io/rewrite-target";
/// `haproxy.router.openshift.io/rate-limit-connections`
pub const RATE_LIMIT_CONNECTIONS: &str = "haproxy.router.openshift.io/rate-limit-connections";
/// `haproxy.router.openshift.io/rate-limit-connections.concurrent-tcp`
pub const RATE_LIMIT_CONCURRENT_TCP: &str =
    "haproxy.router.openshift.io/rate-limit-connections.concurrent-tcp";
/// `haproxy.router.openshift.io/rate-limit-connections.rate-tcp`
pub const RATE_LIMIT_RATE_TCP: &str = "haproxy.router.openshift.io/rate-limit-connections.rate-tcp";
/// `haproxy.router.openshift.io/rate-limit-connections.rate-http`
pub const RATE_LIMIT_RATE_HTTP: &str =
    "haproxy.router.openshift.io/rate-limit-connections.rate-http";
/// Largest `...rate-limit-connections.concurrent-tcp` both targets can
/// render: nginx's `limit_conn` refuses 65536 and more ("connection limit
/// must be less 65536"), HAProxy takes any positive int. A larger value is
/// clipped to this with a warning at admission (as a timeout over
/// HAProxy's maximum is), so the Route keeps a limit and every target's
/// tree loads (issue 17). 65,535 concurrent connections from one client
/// address is no limit in practice.
pub const MAX_CONCURRENT_TCP: u32 = 65_535;
/// `haproxy.router.openshift.io/pod-concurrent-connections`
pub const POD_CONCURRENT_CONNECTIONS: &str =
    "haproxy.router.openshift.io/pod-concurrent-connections";
/// `haproxy.router.openshift.io/set-forwarded-headers`
pub const SET_FORWARDED_HEADERS: &str = "haproxy.router.openshift.io/set-forwarded-headers";
/// `router.openshift.io/cookie_name`
pub const COOKIE_NAME: &str = "router.openshift.io/cookie_name";
/// `router.openshift.io/cookie-same-site`
pub const COOKIE_SAME_SITE: &str = "router.openshift.io/cookie-same-site";
/// `router.openshift.io/haproxy.health.check.interval`
pub const HEALTH_CHECK_INTERVAL: &str = "router.openshift.io/haproxy.health.check.interval";

/// How many characters of a value a warning shows.
const SHOWN_CHARS: usize = 64;
/// How many dropped allowlist entries a warning lists.
const SHOWN_ENTRIES: usize = 5;

/// Typed, validated per-Route options from annotations. Every field is the
/// Route's own setting; `None` / `false` means "not set (or invalid, or not
/// applicable to this termination)": the planner then uses the router
/// default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteOptions {
    /// `haproxy.router.openshift.io/balance`: the backend's `balance`
    /// algorithm. `None`: `roundrobin` with more than one active service,
    /// else `random` (HTTP) / `source` (passthrough) (SPEC §5).
    pub balance: Option<Balance>,
    /// `haproxy.router.openshift.io/timeout`: HTTP backends get
    /// `timeout server <this>`. Passthrough backends get
    /// `timeout tunnel <timeout_tunnel or else this>` (OpenShift's
    /// `firstMatch` over timeout-tunnel, timeout). Clipped to 2147483647ms.
    pub timeout: Option<Duration>,
    /// `haproxy.router.openshift.io/timeout-tunnel`: `timeout tunnel` for
    /// every termination (WebSocket and other upgraded connections on HTTP
    /// backends; the whole connection on passthrough).
    pub timeout_tunnel: Option<Duration>,
    /// `haproxy.router.openshift.io/ip_allowlist`, else the legacy
    /// `ip_whitelist`: only these sources may connect (`acl ... src` +
    /// `tcp-request content reject` unless matched). When both are set and
    /// `ip_allowlist` yields a list, `ip_whitelist` is ignored (warned); if
    /// `ip_allowlist` is invalid, a valid `ip_whitelist` is used, so a typo
    /// never opens a Route. Invalid entries are dropped (warned), the rest
    /// kept, as OpenShift does. More than
    /// [`crate::values::IP_ALLOWLIST_INLINE_MAX`] entries must go to a file
    /// ([`IpAllowlist::fits_inline`]).
    pub ip_allowlist: Option<IpAllowlist>,
    /// `haproxy.router.openshift.io/hsts_header`: the
    /// `Strict-Transport-Security` response header. Only for edge and
    /// reencrypt Routes (always `None` otherwise).
    pub hsts: Option<HstsPolicy>,
    /// `haproxy.router.openshift.io/disable_cookies`: `true` turns off the
    /// sticky cookie. Go `ParseBool` values; absent or invalid = `false`.
    /// Always `false` on passthrough.
    pub disable_cookies: bool,
    /// `haproxy.router.openshift.io/rewrite-target`: the Route's path prefix
    /// is replaced by this on the way to the servers (OpenShift:
    /// `http-request replace-path ^<path>(.*)$ <target>\1`, and
    /// `^<path>/?(.*)$` when the target is `/`). `%` must be doubled when
    /// rendered into the replace-path format. `None` on passthrough.
    pub rewrite_target: Option<RewriteTarget>,
    /// `haproxy.router.openshift.io/rate-limit-connections`: `true` turns
    /// on the per-source stick table (`stick-table type ip size 100k expire
    /// 30s store conn_cur,conn_rate(3s),http_req_rate(10s)` +
    /// `tcp-request content track-sc2 src`). The three limits below are
    /// `None` unless this is `true`.
    pub rate_limit_connections: bool,
    /// `...rate-limit-connections.concurrent-tcp`: reject when
    /// `src_conn_cur ge N`. At most [`MAX_CONCURRENT_TCP`] (clipped).
    pub rate_limit_concurrent_tcp: Option<PositiveInt>,
    /// `...rate-limit-connections.rate-tcp`: reject when
    /// `src_conn_rate ge N` (connections per 3s).
    pub rate_limit_rate_tcp: Option<PositiveInt>,
    /// `...rate-limit-connections.rate-http`: reject when
    /// `src_http_req_rate ge N` (requests per 10s). `None` on passthrough.
    pub rate_limit_rate_http: Option<PositiveInt>,
    /// `haproxy.router.openshift.io/pod-concurrent-connections`: `maxconn N`
    /// on every server. `0` means no limit (as documented by OpenShift) and
    /// gives `None` without a warning.
    pub pod_concurrent_connections: Option<PositiveInt>,
    /// `haproxy.router.openshift.io/set-forwarded-headers`: how `Forwarded`
    /// and `X-Forwarded-*` are set; `None` = router default (`append`).
    /// `None` on passthrough.
    pub forwarded_headers: Option<ForwardedPolicy>,
    /// `router.openshift.io/cookie_name`: sticky cookie name; `None` =
    /// `--cookie-name`, else the hashed Route key (SPEC §5). `None` on
    /// passthrough.
    pub cookie_name: Option<CookieName>,
    /// `router.openshift.io/cookie-same-site`: the cookie's `SameSite`
    /// attribute, used (with `secure`) only for edge/reencrypt Routes whose
    /// insecure policy is not `Allow`; `None` = `None` (SPEC §5). Always
    /// `None` for Routes without edge/reencrypt termination.
    pub cookie_same_site: Option<SameSite>,
    /// `router.openshift.io/haproxy.health.check.interval`: `check inter`
    /// for servers (default 5000ms; checks only with more than one server).
    /// Clipped to 2147483647ms.
    pub health_check_interval: Option<HealthCheckInterval>,
}

impl RouteOptions {
    /// `self` in an `Arc`: the default options are one allocation shared
    /// by every Route that has them (most Routes: 170 bytes each kept
    /// otherwise).
    pub fn shared(self) -> std::sync::Arc<RouteOptions> {
        static DEFAULT: std::sync::LazyLock<std::sync::Arc<RouteOptions>> =
            std::sync::LazyLock::new(Default::default);
        if self == RouteOptions::default() {
            std::sync::Arc::clone(&DEFAULT)
        } else {
            std::sync::Arc::new(self)
        }
    }
}

/// Parse the annotations of one Route. `termination` is `None` for plain
/// HTTP Routes. Returns the options and the warnings (one line each).
pub fn parse_annotations(
    annotations: &BTreeMap<String, String>,
    termination: Option<Termination>,
) -> (RouteOptions, Vec<String>) {
    let mut p = Parser {
        annotations,
        termination,
        warnings: Vec::new(),
    };
    let tls_terminated = matches!(
        termination,
        Some(Termination::Edge | Termination::Reencrypt)
    );

    let mut o = RouteOptions {
        balance: p.typed(BALANCE),
        timeout: p.duration(TIMEOUT),
        timeout_tunnel: p.duration(TIMEOUT_TUNNEL),
        ip_allowlist: p.allowlist(),
        health_check_interval: p.duration(HEALTH_CHECK_INTERVAL),
        pod_concurrent_connections: p.pod_concurrent_connections(),
        ..RouteOptions::default()
    };

    // HTTP-only annotations.
    if p.applies_to_http(HSTS_HEADER) && p.applies_to_tls_terminated(HSTS_HEADER, tls_terminated) {
        o.hsts = p.typed(HSTS_HEADER);
    }
    if p.applies_to_http(DISABLE_COOKIES) {
        o.disable_cookies = p.flag(DISABLE_COOKIES);
    }
    if p.applies_to_http(REWRITE_TARGET) {
        o.rewrite_target = p.typed(REWRITE_TARGET);
    }
    if p.applies_to_http(SET_FORWARDED_HEADERS) {
        o.forwarded_headers = p.typed(SET_FORWARDED_HEADERS);
    }
    if p.applies_to_http(COOKIE_NAME) {
        o.cookie_name = p.typed(COOKIE_NAME);
    }
    if p.applies_to_http(COOKIE_SAME_SITE)
        && p.applies_to_tls_terminated(COOKIE_SAME_SITE, tls_terminated)
    {
        o.cookie_same_site = p.typed(COOKIE_SAME_SITE);
    }

    // Rate limiting: the limits only mean something when enabled.
    o.rate_limit_connections = p.flag(RATE_LIMIT_CONNECTIONS);
    let limits = [
        RATE_LIMIT_CONCURRENT_TCP,
        RATE_LIMIT_RATE_TCP,
        RATE_LIMIT_RATE_HTTP,
    ];
    if o.rate_limit_connections {
        o.rate_limit_concurrent_tcp = p.clipped_int(RATE_LIMIT_CONCURRENT_TCP, MAX_CONCURRENT_TCP);
        o.rate_limit_rate_tcp = p.typed(RATE_LIMIT_RATE_TCP);
        if p.applies_to_http(RATE_LIMIT_RATE_HTTP) {
            o.rate_limit_rate_http = p.typed(RATE_LIMIT_RATE_HTTP);
        }
    } else {
        for name in limits {
            if p.get(name).is_some() {
                p.ignored(
                    name,
                    &format!("{RATE_LIMIT_CONNECTIONS} is not set to true"),
                );
            }
        }
    }

    (o, p.warnings)
}

struct Parser<'a> {
    annotations: &'a BTreeMap<String, String>,
    termination: Option<Termination>,
    warnings: Vec<String>,
}

impl<'a> Parser<'a> {
    /// The value of an annotation; the empty string counts as absent.
    fn get(&self, name: &str) -> Option<&'a str> {
        self.annotations
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn invalid(&mut self, name: &str, value: &str, err: &ValueError) {
        self.warnings.push(format!(
            "annotation {name}: invalid value {}: {err}",
            quote_for_message(value, SHOWN_CHARS)
        ));
    }

    fn ignored(&mut self, name: &str, why: &str) {
        self.warnings
            .push(format!("annotation {name}: ignored: {why}"));
    }

    fn typed<T>(&mut self, name: &str) -> Option<T>
    where
        T: std::str::FromStr<Err = ValueError>,
    {
        let value = self.get(name)?;
        match value.parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.invalid(name, value, &e);
                None
            }
        }
    }

    fn flag(&mut self, name: &str) -> bool {
        let Some(value) = self.get(name) else {
            return false;
        };
        match parse_bool(value) {
            Ok(b) => b,
            Err(e) => {
                self.invalid(name, value, &e);
                false
            }
        }
    }

    fn duration(&mut self, name: &str) -> Option<Duration> {
        let value = self.get(name)?;
        match Duration::parse_reporting_clip(value) {
            Ok((d, clipped)) => {
                if clipped {
                    self.warnings.push(format!(
                        "annotation {name}: value {} clipped to {d} (the largest time value every target can apply: HAProxy's timers stop at 2147483647ms; see docs/limits.md)",
                        quote_for_message(value, SHOWN_CHARS)
                    ));
                }
                Some(d)
            }
            Err(e) => {
                self.invalid(name, value, &e);
                None
            }
        }
    }

    /// A positive int annotation that some target bounds lower than
    /// [`PositiveInt`]: a value over `max` is clipped to it, with a warning
    /// naming the annotation, the value and the bound.
    fn clipped_int(&mut self, name: &str, max: u32) -> Option<PositiveInt> {
        let n: PositiveInt = self.typed(name)?;
        if n.get() <= max {
            return Some(n);
        }
        self.warnings.push(format!(
            "annotation {name}: value {} clipped to {max} (the largest value every target can apply: nginx's limit_conn must be less than 65536; see docs/limits.md)",
            n.get()
        ));
        PositiveInt::new(max)
    }

    fn pod_concurrent_connections(&mut self) -> Option<PositiveInt> {
        let value = self.get(POD_CONCURRENT_CONNECTIONS)?;
        if value.bytes().all(|b| b == b'0') {
            return None; // 0 = no limit
        }
        self.typed(POD_CONCURRENT_CONNECTIONS)
    }

    /// One allowlist annotation: invalid entries dropped with a warning.
    fn one_allowlist(&mut self, name: &str) -> Option<IpAllowlist> {
        let value = self.get(name)?;
        match IpAllowlist::parse_lenient(value) {
            Ok((list, dropped)) => {
                if value.trim().len() != value.len() {
                    self.warnings.push(format!(
                        "annotation {name}: leading/trailing whitespace ignored (OpenShift would ignore the whole list)"
                    ));
                }
                if !dropped.is_empty() {
                    let mut shown: Vec<String> = dropped
                        .iter()
                        .take(SHOWN_ENTRIES)
                        .map(|d| quote_for_message(d, SHOWN_CHARS))
                        .collect();
                    if dropped.len() > SHOWN_ENTRIES {
                        shown.push(format!("and {} more", dropped.len() - SHOWN_ENTRIES));
                    }
                    self.warnings.push(format!(
                        "annotation {name}: invalid entries ignored: {}: expected IPv4/IPv6 addresses or CIDRs",
                        shown.join(", ")
                    ));
                }
                Some(list)
            }
            Err(e) => {
                self.invalid(name, value, &e);
                None
            }
        }
    }

    fn allowlist(&mut self) -> Option<IpAllowlist> {
        let allow = self.one_allowlist(IP_ALLOWLIST);
        if allow.is_some() {
            if self.get(IP_WHITELIST).is_some() {
                self.ignored(IP_WHITELIST, &format!("superseded by {IP_ALLOWLIST}"));
            }
            return allow;
        }
        self.one_allowlist(IP_WHITELIST)
    }

    /// False (with a warning if the annotation is set) on passthrough Routes.
    fn applies_to_http(&mut self, name: &str) -> bool {
        if self.termination == Some(Termination::Passthrough) {
            if self.get(name).is_some() {
                self.ignored(name, "has no effect on passthrough routes");
            }
            return false;
        }
        true
    }

    /// False (with a warning if the annotation is set) unless edge/reencrypt.
    fn applies_to_tls_terminated(&mut self, name: &str, tls_terminated: bool) -> bool {
        if !tls_terminated {
            if self.get(name).is_some() {
                self.ignored(name, "only applies to edge and reencrypt routes");
            }
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)], t: Option<Termination>) -> (RouteOptions, Vec<String>) {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_annotations(&map, t)
    }

    const EDGE: Option<Termination> = Some(Termination::Edge);
    const REENCRYPT: Option<Termination> = Some(Termination::Reencrypt);
    const PASSTHROUGH: Option<Termination> = Some(Termination::Passthrough);
    const HTTP: Option<Termination> = None;

    fn ok(pairs: &[(&str, &str)], t: Option<Termination>) -> RouteOptions {
        let (o, w) = parse(pairs, t);
        assert!(w.is_empty(), "unexpected warnings: {w:?}");
        o
    }

    /// Exactly one warning, which starts with `prefix`; options are default.
    fn rejected(name: &str, value: &str, t: Option<Termination>) -> String {
        let (o, w) = parse(&[(name, value)], t);
        assert_eq!(
            o,
            RouteOptions::default(),
            "{name}={value:?} was not ignored"
        );
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].starts_with(&format!("annotation {name}: invalid value ")),
            "{}",
            w[0]
        );
        assert_one_safe_line(&w[0]);
        w[0].clone()
    }

    fn assert_one_safe_line(w: &str) {
        assert!(w.bytes().all(|b| (b' '..=b'~').contains(&b)), "{w:?}");
    }

    #[test]
    fn annotations_none_and_unknown() {
        assert_eq!(ok(&[], HTTP), RouteOptions::default());
        let o = ok(
            &[
                ("haproxy.router.openshift.io/unknown", "\0\r\n"),
                ("example.com/whatever", "x"),
                ("haproxy.router.openshift.io/h1-adjust-case", "true"),
                ("kubectl.kubernetes.io/last-applied-configuration", "{}"),
            ],
            EDGE,
        );
        assert_eq!(o, RouteOptions::default());
    }

    #[test]
    fn annotations_empty_value_is_absent() {
        for name in [
            BALANCE,
            TIMEOUT,
            IP_ALLOWLIST,
            COOKIE_NAME,
            RATE_LIMIT_CONNECTIONS,
            HSTS_HEADER,
        ] {
            assert_eq!(ok(&[(name, "")], EDGE), RouteOptions::default());
        }
    }

    #[test]
    fn annotations_balance() {
        for (v, b) in [
            ("roundrobin", Balance::RoundRobin),
            ("leastconn", Balance::LeastConn),
            ("source", Balance::Source),
            ("random", Balance::Random),
        ] {
            assert_eq!(ok(&[(BALANCE, v)], HTTP).balance, Some(b));
            assert_eq!(ok(&[(BALANCE, v)], PASSTHROUGH).balance, Some(b));
        }
        let w = rejected(BALANCE, "first", HTTP);
        assert_eq!(
            w,
            "annotation haproxy.router.openshift.io/balance: invalid value \"first\": expected roundrobin, leastconn, source or random"
        );
        rejected(BALANCE, "roundrobin\nbackend x", HTTP);
        rejected(BALANCE, "random(2)", HTTP);
    }

    #[test]
    fn annotations_timeouts() {
        let o = ok(&[(TIMEOUT, "5500ms"), (TIMEOUT_TUNNEL, "1h")], EDGE);
        assert_eq!(o.timeout.unwrap().to_string(), "5500ms");
        assert_eq!(o.timeout_tunnel.unwrap().to_string(), "1h");
        assert_eq!(
            ok(&[(TIMEOUT, "2")], HTTP).timeout.unwrap().to_string(),
            "2ms"
        );
        assert_eq!(
            ok(&[(TIMEOUT, "10s")], PASSTHROUGH)
                .timeout
                .unwrap()
                .to_string(),
            "10s"
        );
        let w = rejected(TIMEOUT, "5x", HTTP);
        assert!(w.starts_with(
            "annotation haproxy.router.openshift.io/timeout: invalid value \"5x\": expected <digits>[us|ms|s|m|h|d]"
        ));
        rejected(TIMEOUT_TUNNEL, "0", HTTP);
        rejected(TIMEOUT, "10 s", HTTP);

        // Clipped, with a warning.
        let (o, w) = parse(&[(TIMEOUT, "30d")], HTTP);
        assert_eq!(o.timeout.unwrap().to_string(), "2147483647ms");
        assert_eq!(
            w,
            vec!["annotation haproxy.router.openshift.io/timeout: value \"30d\" clipped to 2147483647ms (the largest time value every target can apply: HAProxy's timers stop at 2147483647ms; see docs/limits.md)"]
        );
    }

    #[test]
    fn annotations_health_check_interval() {
        let o = ok(&[(HEALTH_CHECK_INTERVAL, "250ms")], PASSTHROUGH);
        assert_eq!(o.health_check_interval.unwrap().to_string(), "250ms");
        rejected(HEALTH_CHECK_INTERVAL, "-1s", HTTP);
        let (o, w) = parse(&[(HEALTH_CHECK_INTERVAL, "99999999999999999999999s")], HTTP);
        assert_eq!(o.health_check_interval, Some(Duration::MAX));
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn annotations_ip_allowlist() {
        let o = ok(
            &[(IP_ALLOWLIST, "192.168.1.10 10.0.0.0/8 2001:db8::/32")],
            HTTP,
        );
        assert_eq!(
            o.ip_allowlist.unwrap().to_string(),
            "192.168.1.10 10.0.0.0/8 2001:db8::/32"
        );
        // Applies to passthrough too.
        assert!(ok(&[(IP_ALLOWLIST, "1.2.3.4")], PASSTHROUGH)
            .ip_allowlist
            .is_some());
        // Legacy name alone.
        let o = ok(&[(IP_WHITELIST, "5.6.7.8")], EDGE);
        assert_eq!(o.ip_allowlist.unwrap().to_string(), "5.6.7.8");
        // Nothing valid: ignored.
        let w = rejected(IP_ALLOWLIST, "192.abc.123.0", HTTP);
        assert!(w.contains("\"192.abc.123.0\""));
        rejected(IP_ALLOWLIST, "1.2.3.4,5.6.7.8", HTTP);
    }

    #[test]
    fn annotations_ip_allowlist_partial_and_hostile() {
        let (o, w) = parse(
            &[(
                IP_ALLOWLIST,
                "1.2.3.4 nope\r\n%[src] 5.6.7.8/24 \"x\" #c a b c",
            )],
            HTTP,
        );
        assert_eq!(o.ip_allowlist.unwrap().to_string(), "1.2.3.4 5.6.7.8/24");
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(
            w[0],
            "annotation haproxy.router.openshift.io/ip_allowlist: invalid entries ignored: \"nope\", \"%[src]\", \"\\\"x\\\"\", \"#c\", \"a\", and 2 more: expected IPv4/IPv6 addresses or CIDRs"
        );
        assert_one_safe_line(&w[0]);
    }

    #[test]
    fn annotations_ip_allowlist_whitespace() {
        let (o, w) = parse(&[(IP_ALLOWLIST, " 1.2.3.4\n")], HTTP);
        assert_eq!(o.ip_allowlist.unwrap().to_string(), "1.2.3.4");
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("leading/trailing whitespace ignored"));
        // Only whitespace: nothing valid.
        let (o, w) = parse(&[(IP_ALLOWLIST, "   ")], HTTP);
        assert_eq!(o.ip_allowlist, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("invalid value \"   \""), "{w:?}");
    }

    #[test]
    fn annotations_ip_allowlist_precedence() {
        // Both valid: allowlist wins, whitelist reported as ignored.
        let (o, w) = parse(
            &[(IP_ALLOWLIST, "1.1.1.1"), (IP_WHITELIST, "2.2.2.2")],
            HTTP,
        );
        assert_eq!(o.ip_allowlist.unwrap().to_string(), "1.1.1.1");
        assert_eq!(
            w,
            vec!["annotation haproxy.router.openshift.io/ip_whitelist: ignored: superseded by haproxy.router.openshift.io/ip_allowlist"]
        );
        // Allowlist invalid: the whitelist still restricts the Route.
        let (o, w) = parse(&[(IP_ALLOWLIST, "bogus"), (IP_WHITELIST, "2.2.2.2")], HTTP);
        assert_eq!(o.ip_allowlist.unwrap().to_string(), "2.2.2.2");
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("annotation haproxy.router.openshift.io/ip_allowlist: invalid value")
        );
        // Allowlist empty string: absent, whitelist used silently.
        let o = ok(&[(IP_ALLOWLIST, ""), (IP_WHITELIST, "2.2.2.2")], HTTP);
        assert_eq!(o.ip_allowlist.unwrap().to_string(), "2.2.2.2");
    }

    #[test]
    fn annotations_ip_allowlist_large() {
        let big: Vec<String> = (0..300)
            .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
            .collect();
        let o = ok(&[(IP_ALLOWLIST, &big.join(" "))], HTTP);
        let list = o.ip_allowlist.unwrap();
        assert_eq!(list.len(), 300);
        assert!(!list.fits_inline());
    }

    #[test]
    fn annotations_hsts() {
        for t in [EDGE, REENCRYPT] {
            let o = ok(
                &[(HSTS_HEADER, "max-age=31536000;includeSubDomains;preload")],
                t,
            );
            assert_eq!(
                o.hsts.unwrap().to_string(),
                "max-age=31536000;includeSubDomains;preload"
            );
        }
        let o = ok(&[(HSTS_HEADER, "preload ; MAX-AGE=\"10\"")], EDGE);
        assert_eq!(o.hsts.unwrap().to_string(), "max-age=10;preload");
        rejected(HSTS_HEADER, "includeSubDomains", EDGE);
        rejected(HSTS_HEADER, "max-age=1\r\nSet-Cookie: x=1", REENCRYPT);
        rejected(HSTS_HEADER, "max-age=1; foo", EDGE);

        for t in [HTTP, PASSTHROUGH] {
            let (o, w) = parse(&[(HSTS_HEADER, "max-age=1")], t);
            assert_eq!(o.hsts, None);
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].starts_with("annotation haproxy.router.openshift.io/hsts_header: ignored: ")
            );
        }
    }

    #[test]
    fn annotations_disable_cookies() {
        for v in ["true", "TRUE", "True", "1", "t", "T"] {
            assert!(ok(&[(DISABLE_COOKIES, v)], EDGE).disable_cookies, "{v}");
        }
        for v in ["false", "FALSE", "0", "f"] {
            assert!(!ok(&[(DISABLE_COOKIES, v)], HTTP).disable_cookies, "{v}");
        }
        rejected(DISABLE_COOKIES, "yes", HTTP);
        rejected(DISABLE_COOKIES, "true\n", HTTP);
        let (o, w) = parse(&[(DISABLE_COOKIES, "true")], PASSTHROUGH);
        assert!(!o.disable_cookies);
        assert_eq!(
            w,
            vec!["annotation haproxy.router.openshift.io/disable_cookies: ignored: has no effect on passthrough routes"]
        );
    }

    #[test]
    fn annotations_rewrite_target() {
        for v in ["/", "/api/v2/", "/a%20b"] {
            assert_eq!(
                ok(&[(REWRITE_TARGET, v)], EDGE)
                    .rewrite_target
                    .unwrap()
                    .as_str(),
                v
            );
        }
        for v in [
            "api", "/a b", "/a#b", "/a%[src]", "/a\\1", "/a'b", "/a\"b", "/{{x}}", "/a\nb",
        ] {
            rejected(REWRITE_TARGET, v, HTTP);
        }
        let (o, w) = parse(&[(REWRITE_TARGET, "/")], PASSTHROUGH);
        assert_eq!(o.rewrite_target, None);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn annotations_rate_limits() {
        let o = ok(
            &[
                (RATE_LIMIT_CONNECTIONS, "true"),
                (RATE_LIMIT_CONCURRENT_TCP, "10"),
                (RATE_LIMIT_RATE_TCP, "20"),
                (RATE_LIMIT_RATE_HTTP, "30"),
            ],
            EDGE,
        );
        assert!(o.rate_limit_connections);
        assert_eq!(o.rate_limit_concurrent_tcp.unwrap().get(), 10);
        assert_eq!(o.rate_limit_rate_tcp.unwrap().get(), 20);
        assert_eq!(o.rate_limit_rate_http.unwrap().get(), 30);

        // Enabled alone: stick table, no limits.
        let o = ok(&[(RATE_LIMIT_CONNECTIONS, "TRUE")], HTTP);
        assert!(o.rate_limit_connections);
        assert_eq!(o.rate_limit_concurrent_tcp, None);

        // Passthrough: TCP limits apply, rate-http does not.
        let (o, w) = parse(
            &[
                (RATE_LIMIT_CONNECTIONS, "true"),
                (RATE_LIMIT_CONCURRENT_TCP, "10"),
                (RATE_LIMIT_RATE_HTTP, "30"),
            ],
            PASSTHROUGH,
        );
        assert_eq!(o.rate_limit_concurrent_tcp.unwrap().get(), 10);
        assert_eq!(o.rate_limit_rate_http, None);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("rate-http: ignored: has no effect on passthrough"));

        // Limits without enabling: ignored, one warning each.
        let (o, w) = parse(
            &[
                (RATE_LIMIT_CONCURRENT_TCP, "10"),
                (RATE_LIMIT_RATE_TCP, "5"),
            ],
            HTTP,
        );
        assert_eq!(o, RouteOptions::default());
        assert_eq!(w.len(), 2);
        assert!(w.iter().all(|w| w.contains(
            ": ignored: haproxy.router.openshift.io/rate-limit-connections is not set to true"
        )));
        let (_, w) = parse(
            &[
                (RATE_LIMIT_CONNECTIONS, "false"),
                (RATE_LIMIT_RATE_HTTP, "5"),
            ],
            HTTP,
        );
        assert_eq!(w.len(), 1);

        // Invalid values.
        rejected(RATE_LIMIT_CONNECTIONS, "on", HTTP);
        for v in ["0", "-1", "+5", "1.5", "ten", "2147483648", "5 ", "5\n"] {
            let (o, w) = parse(
                &[(RATE_LIMIT_CONNECTIONS, "true"), (RATE_LIMIT_RATE_TCP, v)],
                HTTP,
            );
            assert_eq!(o.rate_limit_rate_tcp, None, "{v:?}");
            assert_eq!(w.len(), 1, "{v:?}");
            assert!(w[0].starts_with("annotation haproxy.router.openshift.io/rate-limit-connections.rate-tcp: invalid value"));
            assert!(w[0].ends_with("expected an integer from 1 to 2147483647 (digits only)"));
            assert_one_safe_line(&w[0]);
        }
    }

    /// Issue 17, item 2: nginx's `limit_conn` refuses 65536 and more; the
    /// value is clipped at admission so both targets render a tree their
    /// proxy loads (the golden case `annotations-numeric-bounds` checks
    /// both ends with the real `haproxy -c` and `nginx -t`).
    #[test]
    fn annotations_concurrent_tcp_is_clipped_to_what_every_target_can_apply() {
        let limit = |v: &str| {
            parse(
                &[
                    (RATE_LIMIT_CONNECTIONS, "true"),
                    (RATE_LIMIT_CONCURRENT_TCP, v),
                ],
                EDGE,
            )
        };
        for v in ["1", "65535", "065535"] {
            let (o, w) = limit(v);
            assert!(w.is_empty(), "{v}: {w:?}");
            assert_eq!(
                o.rate_limit_concurrent_tcp.unwrap().get(),
                v.parse::<u32>().unwrap()
            );
        }
        for v in ["65536", "70000", "2147483647"] {
            let (o, w) = limit(v);
            assert_eq!(
                o.rate_limit_concurrent_tcp.unwrap().get(),
                MAX_CONCURRENT_TCP,
                "{v}"
            );
            assert_eq!(
                w,
                [format!(
                    "annotation {RATE_LIMIT_CONCURRENT_TCP}: value {v} clipped to 65535 (the largest value every target can apply: nginx's limit_conn must be less than 65536; see docs/limits.md)"
                )]
            );
        }
        // Still refused as before: not a positive int.
        let (o, w) = limit("2147483648");
        assert_eq!(o.rate_limit_concurrent_tcp, None);
        assert!(w[0].ends_with("expected an integer from 1 to 2147483647 (digits only)"));
    }

    #[test]
    fn annotations_pod_concurrent_connections() {
        let o = ok(&[(POD_CONCURRENT_CONNECTIONS, "100")], PASSTHROUGH);
        assert_eq!(o.pod_concurrent_connections.unwrap().get(), 100);
        assert_eq!(
            ok(&[(POD_CONCURRENT_CONNECTIONS, "0")], HTTP).pod_concurrent_connections,
            None
        );
        assert_eq!(
            ok(&[(POD_CONCURRENT_CONNECTIONS, "00")], HTTP).pod_concurrent_connections,
            None
        );
        rejected(POD_CONCURRENT_CONNECTIONS, "-1", HTTP);
        rejected(POD_CONCURRENT_CONNECTIONS, "many", HTTP);
    }

    #[test]
    fn annotations_set_forwarded_headers() {
        for (v, p) in [
            ("append", ForwardedPolicy::Append),
            ("replace", ForwardedPolicy::Replace),
            ("never", ForwardedPolicy::Never),
            ("if-none", ForwardedPolicy::IfNone),
        ] {
            assert_eq!(
                ok(&[(SET_FORWARDED_HEADERS, v)], HTTP).forwarded_headers,
                Some(p)
            );
        }
        rejected(SET_FORWARDED_HEADERS, "Replace", HTTP);
        rejected(SET_FORWARDED_HEADERS, "replace;never", HTTP);
        let (o, w) = parse(&[(SET_FORWARDED_HEADERS, "never")], PASSTHROUGH);
        assert_eq!(o.forwarded_headers, None);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn annotations_cookie_name() {
        let o = ok(&[(COOKIE_NAME, "my_cookie-2")], HTTP);
        assert_eq!(o.cookie_name.unwrap().as_str(), "my_cookie-2");
        for v in ["a b", "a=b", "a;b", "k\u{e9}ks", "x\r\nSet-Cookie: y"] {
            rejected(COOKIE_NAME, v, EDGE);
        }
        let (o, w) = parse(&[(COOKIE_NAME, "abc")], PASSTHROUGH);
        assert_eq!(o.cookie_name, None);
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn annotations_cookie_same_site() {
        for (v, s) in [
            ("Strict", SameSite::Strict),
            ("lax", SameSite::Lax),
            ("None", SameSite::None),
        ] {
            assert_eq!(ok(&[(COOKIE_SAME_SITE, v)], EDGE).cookie_same_site, Some(s));
            assert_eq!(
                ok(&[(COOKIE_SAME_SITE, v)], REENCRYPT).cookie_same_site,
                Some(s)
            );
        }
        rejected(COOKIE_SAME_SITE, "Lax; Secure", EDGE);
        for t in [HTTP, PASSTHROUGH] {
            let (o, w) = parse(&[(COOKIE_SAME_SITE, "Lax")], t);
            assert_eq!(o.cookie_same_site, None);
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].starts_with("annotation router.openshift.io/cookie-same-site: ignored: "));
        }
    }

    #[test]
    fn annotations_hostile_values_never_pass_and_warn_on_one_line() {
        let names = [
            BALANCE,
            TIMEOUT,
            TIMEOUT_TUNNEL,
            IP_ALLOWLIST,
            IP_WHITELIST,
            HSTS_HEADER,
            DISABLE_COOKIES,
            REWRITE_TARGET,
            RATE_LIMIT_CONNECTIONS,
            POD_CONCURRENT_CONNECTIONS,
            SET_FORWARDED_HEADERS,
            COOKIE_NAME,
            COOKIE_SAME_SITE,
            HEALTH_CHECK_INTERVAL,
        ];
        let long = "A".repeat(100_000);
        let hostile = [
            "\r\n",
            "\0",
            "x\nbackend evil",
            "\"quoted\"",
            "'single'",
            "# comment",
            "%[src]",
            "{{ .Env.SECRET }}",
            "${HOME}",
            "\\",
            "\u{202e}evil\u{2028}",
            "日本語",
            long.as_str(),
        ];
        for name in names {
            for value in hostile {
                let (o, w) = parse(&[(name, value)], EDGE);
                assert_eq!(o, RouteOptions::default(), "{name}={value:?} passed");
                assert_eq!(w.len(), 1, "{name}={value:?}: {w:?}");
                assert!(w[0].starts_with(&format!("annotation {name}: invalid value \"")));
                assert_one_safe_line(&w[0]);
                assert!(w[0].len() < 700, "warning too long: {}", w[0].len());
            }
        }
        // The value shown is truncated.
        let (_, w) = parse(&[(TIMEOUT, long.as_str())], HTTP);
        assert!(w[0].contains(&format!("\"{}...\"", "A".repeat(64))));
        // Control characters are escaped.
        let (_, w) = parse(&[(BALANCE, "a\r\nb\0")], HTTP);
        assert!(w[0].contains(r#""a\r\nb\u{0}""#), "{}", w[0]);
    }

    #[test]
    fn annotations_all_together() {
        let (o, w) = parse(
            &[
                (BALANCE, "leastconn"),
                (TIMEOUT, "30s"),
                (TIMEOUT_TUNNEL, "1h"),
                (IP_WHITELIST, "10.0.0.0/8"),
                (HSTS_HEADER, "max-age=300"),
                (DISABLE_COOKIES, "false"),
                (REWRITE_TARGET, "/v2/"),
                (RATE_LIMIT_CONNECTIONS, "true"),
                (RATE_LIMIT_CONCURRENT_TCP, "5"),
                (RATE_LIMIT_RATE_TCP, "6"),
                (RATE_LIMIT_RATE_HTTP, "7"),
                (POD_CONCURRENT_CONNECTIONS, "8"),
                (SET_FORWARDED_HEADERS, "if-none"),
                (COOKIE_NAME, "sess"),
                (COOKIE_SAME_SITE, "Strict"),
                (HEALTH_CHECK_INTERVAL, "2s"),
            ],
            REENCRYPT,
        );
        assert!(w.is_empty(), "{w:?}");
        let show = |d: Option<Duration>| d.map(|d| d.to_string());
        assert_eq!(o.balance, Some(Balance::LeastConn));
        assert_eq!(show(o.timeout).as_deref(), Some("30s"));
        assert_eq!(show(o.timeout_tunnel).as_deref(), Some("1h"));
        assert_eq!(o.ip_allowlist.unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(o.hsts.unwrap().max_age, 300);
        assert!(!o.disable_cookies);
        assert_eq!(o.rewrite_target.unwrap().as_str(), "/v2/");
        assert!(o.rate_limit_connections);
        assert_eq!(o.rate_limit_concurrent_tcp.map(PositiveInt::get), Some(5));
        assert_eq!(o.rate_limit_rate_tcp.map(PositiveInt::get), Some(6));
        assert_eq!(o.rate_limit_rate_http.map(PositiveInt::get), Some(7));
        assert_eq!(o.pod_concurrent_connections.map(PositiveInt::get), Some(8));
        assert_eq!(o.forwarded_headers, Some(ForwardedPolicy::IfNone));
        assert_eq!(o.cookie_name.unwrap().as_str(), "sess");
        assert_eq!(o.cookie_same_site, Some(SameSite::Strict));
        assert_eq!(show(o.health_check_interval).as_deref(), Some("2s"));
    }
}
