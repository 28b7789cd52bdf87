//! One backend per admitted Route: servers and weights, balance, health
//! checks, sticky cookie, and the annotation-driven settings (SPEC §5, §7).
//!
//! Everything here follows OpenShift's `haproxy-config.template` and
//! `pkg/router/template/router.go`:
//!
//! - **Services.** `spec.to` then `spec.alternateBackends`. The API allows
//!   the same Service more than once; OpenShift keeps the services of a
//!   Route in a map keyed by Service (`getServiceUnits`), so a repeated
//!   Service appears once, with the weight of its *last* occurrence. We do
//!   the same ([`unique_services`]).
//! - **Weights** ([`endpoint_weights`]): OpenShift's
//!   `calculateServiceWeights`, including its `float32` arithmetic.
//! - **Balance**: the annotation, else `roundrobin` when more than one
//!   Service has weight > 0 (OpenShift's `ActiveServiceUnits`, counted
//!   without looking at endpoints, so endpoint churn never changes the
//!   backend's algorithm), else `random` (HTTP) / `source` (TCP).
//! - **Health checks**: when more than one server belongs to a Service
//!   with weight > 0 (OpenShift's `ActiveEndpoints`); weight-0 servers kept
//!   on HTTP backends do not count.
//! - **Cookie name**: annotation, else `--cookie-name`, else OpenShift's
//!   `RoutingKeyName`: hex md5 of `"<termination> <ns>:<name>"` computed
//!   in `createServiceAliasConfig` *before* the termination is filled in,
//!   i.e. always md5 of `" <ns>:<name>"` (leading space).

use super::endpoints::{self, md5_hex, EndpointIndex};
use super::names::{backend_name, host_key};
use super::{
    tls, AllowlistFile, Backend, Mode, PathRewrite, PemFile, PlanSettings, RateLimit, Server,
    StickyCookie,
};
use crate::admit::route::{AdmittedRoute, BackendRef, InsecurePolicy, Termination};
use crate::model::ObjectKey;
use crate::values::{
    Balance, CookieName, Duration, ForwardedPolicy, HeaderActions, SameSite, Weight,
};

/// Default `check inter` (OpenShift's `ROUTER_BACKEND_CHECK_INTERVAL` default).
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 5000;

/// At most this many servers in one Route's backend (SECURITY.md, "Bounds").
/// `haproxy -c`, paid on every apply and reload for every tenant, grows
/// faster than linearly with servers (10,000 in one backend: 2.1 s; 50,000:
/// 51 s). Above the bound the Route keeps serving with a deterministic
/// subset ([`cap_servers`]) and a warning: a scaled-up Deployment never
/// takes its Route down.
pub const MAX_SERVERS_PER_BACKEND: usize = 1000;

/// A backend and the files it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltBackend {
    pub backend: Backend,
    pub allowlist_file: Option<AllowlistFile>,
    /// CA file for reencrypt server verification (may be shared: `cas/service-ca.pem`).
    pub ca_file: Option<PemFile>,
}

/// Services of a Route, each once, in order of first appearance, with the
/// weight of the last occurrence (OpenShift's map semantics).
pub fn unique_services(refs: &[BackendRef]) -> Vec<BackendRef> {
    let mut out: Vec<BackendRef> = Vec::with_capacity(refs.len());
    for r in refs {
        match out.iter_mut().find(|o| o.service == r.service) {
            Some(existing) => existing.weight = r.weight,
            None => out.push(r.clone()),
        }
    }
    out
}

/// Per-server weight of each service, given `(route weight, number of
/// servers)` per service, exactly as OpenShift's `calculateServiceWeights`:
///
/// - exactly one service with weight > 0 and servers: its servers get 1,
///   the others (weight 0) get 0;
/// - otherwise each service's share per server is `w / n` (float32); the
///   largest share is scaled to 256 (`scale = 256 / max`, then
///   `trunc(share * scale)`), and a non-zero weight never goes below 1.
///
/// Services without servers get 0 (they contribute no server lines).
pub fn endpoint_weights(services: &[(Weight, usize)]) -> Vec<Weight> {
    let active = services
        .iter()
        .filter(|(w, n)| !w.is_zero() && *n > 0)
        .count();
    if active == 1 {
        return services
            .iter()
            .map(|(w, n)| {
                if !w.is_zero() && *n > 0 {
                    Weight::ONE
                } else {
                    Weight::ZERO
                }
            })
            .collect();
    }
    // float32 throughout, as OpenShift computes it; the results can differ
    // from exact arithmetic by one (e.g. 255 for the largest share).
    let shares: Vec<f32> = services
        .iter()
        .map(|&(w, n)| {
            if n > 0 {
                f32::from(w.get()) / n as f32
            } else {
                0.0
            }
        })
        .collect();
    let max = shares.iter().copied().fold(0.0f32, f32::max);
    let scale = if max > 0.0 { 256.0f32 / max } else { 0.0 };
    shares
        .iter()
        .map(|&share| {
            let mut weight = (share * scale) as i32;
            if share > 0.0 && weight < 1 {
                weight = 1;
            }
            // The largest share scales to 256 and the others below it;
            // the clamp only guards against float32 rounding.
            Weight::clamped(i64::from(weight))
        })
        .collect()
}

/// The servers of a backend with their weights, plus what the rest of the
/// backend depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeightedServers {
    /// Sorted and deduplicated by name.
    pub servers: Vec<Server>,
    /// Servers of services with weight > 0 (OpenShift's `ActiveEndpoints`).
    pub active_endpoints: usize,
    /// Distinct services with weight > 0 (OpenShift's `ActiveServiceUnits`).
    pub active_services: usize,
}

/// Apply weights to each service's servers. HTTP backends keep the servers
/// of weight-0 services (weight 0: only cookie-pinned clients reach them);
/// TCP backends drop them.
pub fn weigh(services: Vec<(BackendRef, Vec<Server>)>, mode: Mode) -> WeightedServers {
    let counts: Vec<(Weight, usize)> = services
        .iter()
        .map(|(r, servers)| (r.weight, servers.len()))
        .collect();
    let weights = endpoint_weights(&counts);
    let mut out = WeightedServers {
        active_services: services.iter().filter(|(r, _)| !r.weight.is_zero()).count(),
        ..Default::default()
    };
    for ((r, servers), weight) in services.into_iter().zip(weights) {
        if !r.weight.is_zero() {
            out.active_endpoints += servers.len();
        } else if mode == Mode::Tcp {
            continue;
        }
        out.servers
            .extend(servers.into_iter().map(|s| Server { weight, ..s }));
    }
    out.servers.sort();
    out.servers.dedup_by(|a, b| a.name == b.name);
    endpoints::assign_ids(&mut out.servers);
    out
}

/// Keep at most `bound` servers in a backend. Only services whose servers
/// are rendered count (on TCP backends weight-0 services are dropped by
/// [`weigh`]). Over the bound, the bound is shared between those services
/// by water-filling (smallest first; each gets what it has or an equal part
/// of what is left, the last one takes the remainder), so every service of
/// the Route keeps serving and the weight split between services holds;
/// each service keeps its first servers by name (the order servers are
/// written in), so the subset depends only on the endpoints, never on
/// input order. One warning per truncated service names the Route, the
/// service, the count and the bound. Returns how many servers were left
/// out.
pub fn cap_servers(
    key: &ObjectKey,
    services: &mut [(BackendRef, Vec<Server>)],
    mode: Mode,
    bound: usize,
    warnings: &mut Vec<String>,
) -> usize {
    let counted = |r: &BackendRef| mode == Mode::Http || !r.weight.is_zero();
    let total: usize = services
        .iter()
        .filter(|(r, _)| counted(r))
        .map(|(_, s)| s.len())
        .sum();
    if total <= bound {
        return 0;
    }
    let mut order: Vec<usize> = (0..services.len())
        .filter(|&i| counted(&services[i].0))
        .collect();
    order.sort_by_key(|&i| (services[i].1.len(), i));
    let mut left = bound;
    for (k, &i) in order.iter().enumerate() {
        let share = left / (order.len() - k);
        let (r, servers) = &mut services[i];
        let keep = servers.len().min(share);
        if keep < servers.len() {
            warnings.push(format!(
                "{key}: service {} has {} ready endpoints; serving the first {keep} by server \
                 name (bound: {bound} servers per backend, MAX_SERVERS_PER_BACKEND, \
                 shared between the Route's services)",
                show_name(&r.service),
                servers.len(),
            ));
            servers.truncate(keep);
        }
        left -= keep;
    }
    total - bound
}

/// The default cookie name for a Route: OpenShift's `RoutingKeyName`.
pub fn default_cookie_name(key: &ObjectKey) -> CookieName {
    md5_hex(&format!(" {}:{}", key.namespace, key.name))
        .parse()
        .expect("a hex md5 is a valid cookie name")
}

/// Build the backend of one admitted Route. Findings go to `warnings`.
pub fn build_backend(
    route: &AdmittedRoute,
    index: &EndpointIndex<'_>,
    settings: &PlanSettings,
    warnings: &mut Vec<String>,
) -> BuiltBackend {
    let key = &route.key;
    let termination = route.tls.as_ref().map(|t| t.termination);
    let insecure_policy = route.tls.as_ref().map(|t| t.insecure_policy);
    let mode = if termination == Some(Termination::Passthrough) {
        Mode::Tcp
    } else {
        Mode::Http
    };
    let tls_terminated = matches!(
        termination,
        Some(Termination::Edge | Termination::Reencrypt)
    );
    let options = &route.options;
    let name = backend_name(key, termination);

    // Servers and weights.
    let services = unique_services(&route.backends);
    let with_servers: Vec<(BackendRef, Vec<Server>)> = services
        .iter()
        .map(|r| {
            let servers = endpoints::service_servers(
                index,
                &key.namespace,
                &r.service,
                route.target_port.as_ref(),
                settings.allow_loopback_endpoints,
                warnings,
            );
            (r.clone(), servers)
        })
        .collect();
    let mut with_servers = with_servers;
    let servers_left_out = cap_servers(
        key,
        &mut with_servers,
        mode,
        MAX_SERVERS_PER_BACKEND,
        warnings,
    );
    let without_endpoints: Vec<String> = with_servers
        .iter()
        .filter(|(r, servers)| !r.weight.is_zero() && servers.is_empty())
        .map(|(r, _)| show_name(&r.service))
        .collect();
    let weighted = weigh(with_servers, mode);
    if services.iter().all(|r| r.weight.is_zero()) {
        warnings.push(format!(
            "{key}: every backend service has weight 0: requests get 503"
        ));
    } else if weighted.servers.is_empty() {
        warnings.push(format!(
            "{key}: no ready endpoints for service(s) {}: requests get 503",
            without_endpoints.join(", ")
        ));
    }

    let balance = options.balance.unwrap_or(if weighted.active_services > 1 {
        Balance::RoundRobin
    } else if mode == Mode::Tcp {
        Balance::Source
    } else {
        Balance::Random
    });
    let health_check = (weighted.active_endpoints > 1).then(|| {
        options
            .health_check_interval
            .unwrap_or_else(|| Duration::from_millis(DEFAULT_CHECK_INTERVAL_MS))
    });

    let cookie = (mode == Mode::Http && !options.disable_cookies).then(|| {
        let name = options
            .cookie_name
            .clone()
            .or_else(|| settings.cookie_name.clone())
            .unwrap_or_else(|| default_cookie_name(key));
        let secure = tls_terminated && insecure_policy != Some(InsecurePolicy::Allow);
        StickyCookie {
            name,
            secure,
            same_site: secure.then(|| options.cookie_same_site.unwrap_or(SameSite::None)),
        }
    });

    let allowlist_file = options.ip_allowlist.as_ref().map(|list| AllowlistFile {
        file: format!("allowlists/{}:{}.txt", key.namespace, key.name),
        list: list.clone(),
    });

    let rate_limit = options.rate_limit_connections.then(|| RateLimit {
        concurrent_tcp: options.rate_limit_concurrent_tcp,
        rate_tcp: options.rate_limit_rate_tcp,
        rate_http: if mode == Mode::Http {
            options.rate_limit_rate_http
        } else {
            None
        },
    });

    let mut servers = weighted.servers;
    let (server_tls, ca_file) = match &route.tls {
        Some(t) if t.termination == Termination::Reencrypt => {
            let primary = route.backends.first().map(|b| b.service.as_str());
            let mut st = tls::server_tls(key, primary, t, settings, warnings);
            // With the service CA every server is verified against its own
            // service's name, not only the primary one's.
            if let crate::plan::ServerVerify::CaFile { verify_host, .. } = &mut st.tls.verify {
                if verify_host.take().is_some() {
                    for server in &mut servers {
                        server.verify_host =
                            Some(arcstr::format!("{}.{}.svc", server.service, key.namespace));
                    }
                }
            }
            (Some(st.tls), st.ca_file)
        }
        _ => (None, None),
    };

    let (timeout_server, timeout_tunnel) = match mode {
        Mode::Http => (options.timeout, options.timeout_tunnel),
        Mode::Tcp => (None, options.timeout_tunnel.or(options.timeout)),
    };

    let backend = Backend {
        name,
        route: key.clone(),
        host_key: host_key(route),
        path: route.path.clone(),
        termination,
        mode,
        balance,
        servers,
        servers_left_out,
        health_check,
        cookie,
        timeout_server,
        timeout_tunnel,
        allowlist_file: allowlist_file.as_ref().map(|f| f.file.clone()),
        hsts: if tls_terminated { options.hsts } else { None },
        rewrite: match mode {
            Mode::Http => options.rewrite_target.clone().map(|target| {
                Box::new(PathRewrite {
                    prefix: rewrite_prefix(route.path.as_deref()),
                    target,
                })
            }),
            Mode::Tcp => None,
        },
        rate_limit: rate_limit.map(Box::new),
        server_maxconn: options.pod_concurrent_connections,
        forwarded: match mode {
            Mode::Http => Some(options.forwarded_headers.unwrap_or(ForwardedPolicy::Append)),
            Mode::Tcp => None,
        },
        server_tls: server_tls.map(Box::new),
        headers: match mode {
            Mode::Http => route.headers.clone(),
            Mode::Tcp => HeaderActions::default(),
        },
    };
    BuiltBackend {
        backend,
        allowlist_file,
        ca_file,
    }
}

/// The prefix `rewrite-target` replaces: the Route's path, or the empty
/// string for a Route without a path. OpenShift renders
/// `replace-path ^{{ $cfg.Path }}(.*)$ <target>\1` (`^<path>/?(.*)$` for
/// target `/`) with `Path` empty when the Route has none, so `GET /foo` with
/// target `/x` becomes `/x/foo`; a `/` prefix would give `/xfoo`.
pub fn rewrite_prefix(path: Option<&str>) -> String {
    path.unwrap_or("").to_string()
}

/// A service name in a warning: as is when it is a safe name, else quoted.
fn show_name(s: &str) -> String {
    if endpoints::is_safe_name(s) {
        s.to_string()
    } else {
        crate::values::quote_for_message(s, 64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admit::annotations::RouteOptions;
    use crate::admit::route::{RouteHost, RouteTls};
    use crate::model::EndpointSlice;
    use crate::plan::endpoints::tests::{ep, port, slice};
    use crate::plan::ServerVerify;
    use crate::values::{HstsPolicy, IpAllowlist, PositiveInt};
    use std::collections::BTreeMap;

    fn bref(service: &str, weight: u16) -> BackendRef {
        BackendRef {
            service: service.into(),
            weight: Weight::new(weight).unwrap(),
        }
    }

    fn route(name: &str, backends: Vec<BackendRef>, tls: Option<RouteTls>) -> AdmittedRoute {
        AdmittedRoute {
            key: ObjectKey::new("ns", name),
            host: RouteHost {
                host: "www.example.com".into(),
                wildcard: false,
            },
            path: None,
            backends,
            target_port: None,
            tls,
            options: Default::default(),
            headers: Default::default(),
        }
    }

    fn tls(termination: Termination, insecure_policy: InsecurePolicy) -> Option<RouteTls> {
        Some(RouteTls {
            termination,
            insecure_policy,
            serving: None,
            destination_ca_pem: None,
        })
    }

    /// `n` ready endpoints 10.<i>.0.<k> for service `svc`.
    fn svc_slice(svc: &str, i: u8, n: u8) -> EndpointSlice {
        let eps = (1..=n)
            .map(|k| {
                ep(
                    &[&format!("10.{i}.0.{k}")],
                    None,
                    Some(&format!("{svc}-{k}")),
                )
            })
            .collect();
        slice(
            "ns",
            &format!("{svc}-slice"),
            svc,
            "IPv4",
            vec![port(Some("http"), 8080)],
            eps,
        )
    }

    fn build(
        r: &AdmittedRoute,
        slices: &[EndpointSlice],
        settings: &PlanSettings,
    ) -> (Backend, Vec<String>) {
        let index = EndpointIndex::new(slices);
        let mut warnings = Vec::new();
        let built = build_backend(r, &index, settings, &mut warnings);
        (built.backend, warnings)
    }

    fn weights_by_service(b: &Backend) -> BTreeMap<String, Vec<u16>> {
        let mut out: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        for s in &b.servers {
            let svc = s.name.split(':').nth(2).unwrap().to_string();
            out.entry(svc).or_default().push(s.weight.get());
        }
        out
    }

    /// `slices` EndpointSlices of 240 ready endpoints each for `svc`, on
    /// 10.<first + i>.0.0/24.
    fn big_service(svc: &str, first: u8, slices: u8) -> Vec<EndpointSlice> {
        (first..first + slices)
            .map(|i| svc_slice(svc, i, 240))
            .collect()
    }

    fn per_service(b: &Backend) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &b.servers {
            *out.entry(s.service.to_string()).or_default() += 1;
        }
        out
    }

    #[test]
    fn servers_over_the_bound_keep_the_first_by_name_with_a_warning() {
        let r = route("big", vec![bref("web", 1)], None);
        let mut slices = big_service("web", 0, 5); // 1,200 endpoints
        let (b, warnings) = build(&r, &slices, &PlanSettings::default());
        assert_eq!(b.servers.len(), MAX_SERVERS_PER_BACKEND);
        assert_eq!(b.servers_left_out, 200, "counted for the metric");
        let warning = warnings
            .iter()
            .find(|w| w.contains("MAX_SERVERS_PER_BACKEND"))
            .expect("a warning names the bound");
        for part in [
            "ns/big",
            "service web",
            "1200 ready endpoints",
            "first 1000",
            "bound: 1000",
        ] {
            assert!(warning.contains(part), "{part:?} missing from {warning}");
        }
        // The first 1,000 by server name, whatever the input order.
        let mut all: Vec<String> = {
            let index = EndpointIndex::new(&slices);
            endpoints::service_servers(&index, "ns", &"web".into(), None, false, &mut Vec::new())
                .into_iter()
                .map(|s| s.name)
                .collect()
        };
        assert_eq!(all.len(), 1200);
        all.truncate(MAX_SERVERS_PER_BACKEND);
        let kept: Vec<String> = b.servers.iter().map(|s| s.name.clone()).collect();
        assert_eq!(kept, all);
        slices.reverse();
        let (again, _) = build(&r, &slices, &PlanSettings::default());
        assert_eq!(again, b);
        // Still served: weights and health checks as for any backend.
        assert!(b.servers.iter().all(|s| s.weight == Weight::ONE));
        assert!(b.health_check.is_some());
    }

    #[test]
    fn servers_at_the_bound_are_all_kept_without_a_warning() {
        let r = route("edge", vec![bref("web", 1)], None);
        let mut slices = big_service("web", 0, 4); // 960
        slices.push(svc_slice("web", 9, 40)); // 1,000
        let (b, warnings) = build(&r, &slices, &PlanSettings::default());
        assert_eq!(b.servers.len(), 1000);
        assert_eq!(b.servers_left_out, 0);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn the_bound_is_shared_between_services_smallest_first() {
        let r = route(
            "ab",
            vec![bref("small", 10), bref("left", 20), bref("right", 30)],
            None,
        );
        let mut slices = vec![svc_slice("small", 1, 100)];
        slices.extend(big_service("left", 10, 5));
        slices.extend(big_service("right", 20, 5));
        let (b, warnings) = build(&r, &slices, &PlanSettings::default());
        let counts = per_service(&b);
        assert_eq!(counts["small"], 100);
        assert_eq!(counts["left"], 450);
        assert_eq!(counts["right"], 450);
        let capped: Vec<&String> = warnings
            .iter()
            .filter(|w| w.contains("MAX_SERVERS_PER_BACKEND"))
            .collect();
        assert_eq!(capped.len(), 2, "{warnings:?}");
        // The weight split is over the servers kept: 20/450 < 30/450.
        let weights = weights_by_service(&b);
        assert!(weights["left"][0] < weights["right"][0]);
    }

    #[test]
    fn weight_zero_services_do_not_count_on_tcp_backends() {
        let passthrough = tls(Termination::Passthrough, InsecurePolicy::None);
        let r = route("tcp", vec![bref("live", 1), bref("idle", 0)], passthrough);
        let mut slices = big_service("live", 0, 4); // 960
        slices.extend(big_service("idle", 10, 2)); // 480, dropped on TCP
        let (b, warnings) = build(&r, &slices, &PlanSettings::default());
        assert_eq!(b.servers.len(), 960);
        assert!(
            !warnings
                .iter()
                .any(|w| w.contains("MAX_SERVERS_PER_BACKEND")),
            "{warnings:?}"
        );
    }

    #[test]
    fn endpoint_weights_table() {
        #[rustfmt::skip]
        type Case<'a> = (&'a str, &'a [(u16, usize)], &'a [u16]);
        let cases: &[Case] = &[
            (
                "OpenShift's example: A 20 over 2, B 10 over 4",
                &[(20, 2), (10, 4)],
                &[256, 64],
            ),
            ("one active service: weight 1", &[(100, 3)], &[1]),
            (
                "one active, one weight 0 with endpoints",
                &[(100, 3), (0, 2)],
                &[1, 0],
            ),
            (
                "one active, one active without endpoints",
                &[(100, 3), (50, 0)],
                &[1, 0],
            ),
            ("all weights 0", &[(0, 2), (0, 1)], &[0, 0]),
            ("no endpoints at all", &[(100, 0), (100, 0)], &[0, 0]),
            ("equal services", &[(100, 2), (100, 2)], &[256, 256]),
            (
                "small share is at least 1",
                &[(256, 1), (1, 100)],
                &[256, 1],
            ),
            (
                "two active plus weight 0",
                &[(50, 1), (100, 1), (0, 5)],
                &[128, 256, 0],
            ),
            // float32 as OpenShift: 256 / (100/29) * (100/29) is 255.99998.
            (
                "float32 truncation of the largest share",
                &[(100, 29), (1, 1)],
                &[255, 74],
            ),
        ];
        for (what, input, want) in cases {
            let input: Vec<(Weight, usize)> = input
                .iter()
                .map(|&(w, n)| (Weight::new(w).unwrap(), n))
                .collect();
            let got: Vec<u16> = endpoint_weights(&input).iter().map(|w| w.get()).collect();
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn unique_services_last_weight_wins() {
        let got = unique_services(&[
            bref("a", 10),
            bref("b", 20),
            bref("a", 0),
            bref("c", 5),
            bref("b", 7),
        ]);
        assert_eq!(got, vec![bref("a", 0), bref("b", 7), bref("c", 5)]);
    }

    #[test]
    fn weights_on_backends() {
        let slices = vec![
            svc_slice("a", 1, 2),
            svc_slice("b", 2, 4),
            svc_slice("z", 3, 1),
        ];
        let s = PlanSettings::default();

        // A 20 / 2 endpoints, B 10 / 4 endpoints: 256 and 64, roundrobin.
        let (b, w) = build(
            &route("r", vec![bref("a", 20), bref("b", 10)], None),
            &slices,
            &s,
        );
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            weights_by_service(&b),
            BTreeMap::from([("a".into(), vec![256, 256]), ("b".into(), vec![64; 4])])
        );
        assert_eq!(b.balance, Balance::RoundRobin);
        assert_eq!(b.health_check, Some(Duration::from_millis(5000)));

        // One active service: weight 1, random; weight-0 servers kept on HTTP.
        let (b, _) = build(
            &route("r", vec![bref("a", 100), bref("z", 0)], None),
            &slices,
            &s,
        );
        assert_eq!(
            weights_by_service(&b),
            BTreeMap::from([("a".into(), vec![1, 1]), ("z".into(), vec![0])])
        );
        assert_eq!(b.balance, Balance::Random);

        // Same on passthrough: weight-0 servers dropped, balance source.
        let (b, _) = build(
            &route(
                "r",
                vec![bref("a", 100), bref("z", 0)],
                tls(Termination::Passthrough, InsecurePolicy::None),
            ),
            &slices,
            &s,
        );
        assert_eq!(
            weights_by_service(&b),
            BTreeMap::from([("a".into(), vec![1, 1])])
        );
        assert_eq!(b.balance, Balance::Source);
        assert_eq!(b.mode, Mode::Tcp);

        // All weights 0: HTTP keeps servers at 0, TCP has none; both warned.
        let (b, w) = build(
            &route("r", vec![bref("a", 0), bref("b", 0)], None),
            &slices,
            &s,
        );
        assert!(b.servers.iter().all(|s| s.weight.is_zero()) && b.servers.len() == 6);
        assert_eq!(
            w,
            vec!["ns/r: every backend service has weight 0: requests get 503"]
        );
        assert_eq!(b.health_check, None, "no active endpoints: no checks");
        let (b, w) = build(
            &route(
                "r",
                vec![bref("a", 0)],
                tls(Termination::Passthrough, InsecurePolicy::None),
            ),
            &slices,
            &s,
        );
        assert!(b.servers.is_empty());
        assert_eq!(w.len(), 1);

        // Same service twice: once, with the last weight (0 here -> no active service).
        let (b, _) = build(
            &route("r", vec![bref("a", 100), bref("a", 0), bref("b", 10)], None),
            &slices,
            &s,
        );
        assert_eq!(
            weights_by_service(&b),
            BTreeMap::from([("a".into(), vec![0, 0]), ("b".into(), vec![1; 4])])
        );
        let (b, _) = build(
            &route(
                "r",
                vec![bref("a", 100), bref("a", 100), bref("a", 100)],
                None,
            ),
            &slices,
            &s,
        );
        assert_eq!(b.servers.len(), 2);
        assert_eq!(b.balance, Balance::Random, "one distinct service");
    }

    #[test]
    fn no_endpoints_warning_and_balance_counts_services_without_endpoints() {
        let slices = vec![svc_slice("a", 1, 1)];
        let s = PlanSettings::default();
        let (b, w) = build(
            &route("r", vec![bref("missing", 100), bref("gone", 10)], None),
            &slices,
            &s,
        );
        assert!(b.servers.is_empty());
        assert_eq!(
            w,
            vec!["ns/r: no ready endpoints for service(s) missing, gone: requests get 503"]
        );

        // B active but without endpoints: OpenShift still says roundrobin;
        // A alone is "active" for weights (weight 1), one server -> no checks.
        let (b, w) = build(
            &route("r", vec![bref("a", 100), bref("missing", 100)], None),
            &slices,
            &s,
        );
        assert!(w.is_empty());
        assert_eq!(b.balance, Balance::RoundRobin);
        assert_eq!(
            b.servers.iter().map(|s| s.weight.get()).collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(b.health_check, None);
    }

    #[test]
    fn names_and_modes() {
        let key = ObjectKey::new("ns", "r");
        for (termination, name) in [
            (None, "be_http:ns:r"),
            (Some(Termination::Edge), "be_edge_http:ns:r"),
            (Some(Termination::Reencrypt), "be_secure:ns:r"),
            (Some(Termination::Passthrough), "be_tcp:ns:r"),
        ] {
            assert_eq!(backend_name(&key, termination), name);
        }
    }

    #[test]
    fn default_cookie_name_is_openshift_routing_key_name() {
        // md5(" ns:r"), the key OpenShift hashes (termination still empty).
        assert_eq!(
            default_cookie_name(&ObjectKey::new("ns", "r")).as_str(),
            md5_hex(" ns:r")
        );
        assert_eq!(md5_hex(" ns:r").len(), 32);
    }

    #[test]
    fn cookie_table() {
        let slices = vec![svc_slice("a", 1, 1)];
        let cookie = |r: &AdmittedRoute, s: &PlanSettings| build(r, &slices, s).0.cookie;
        let default = PlanSettings::default();
        let flag = PlanSettings {
            cookie_name: Some("FLAG".parse().unwrap()),
            ..Default::default()
        };
        let default_name = default_cookie_name(&ObjectKey::new("ns", "r"));

        let plain = route("r", vec![bref("a", 1)], None);
        assert_eq!(
            cookie(&plain, &default),
            Some(StickyCookie {
                name: default_name.clone(),
                secure: false,
                same_site: None
            })
        );
        assert_eq!(cookie(&plain, &flag).unwrap().name.as_str(), "FLAG");
        let mut annotated = plain.clone();
        std::sync::Arc::make_mut(&mut annotated.options).cookie_name =
            Some("ANNOT".parse().unwrap());
        assert_eq!(cookie(&annotated, &flag).unwrap().name.as_str(), "ANNOT");
        let mut disabled = plain.clone();
        std::sync::Arc::make_mut(&mut disabled.options).disable_cookies = true;
        assert_eq!(cookie(&disabled, &default), None);

        for (termination, policy, secure) in [
            (Termination::Edge, InsecurePolicy::None, true),
            (Termination::Edge, InsecurePolicy::Redirect, true),
            (Termination::Edge, InsecurePolicy::Allow, false),
            (Termination::Reencrypt, InsecurePolicy::None, true),
            (Termination::Reencrypt, InsecurePolicy::Allow, false),
        ] {
            let r = route("r", vec![bref("a", 1)], tls(termination, policy));
            let c = cookie(&r, &default).unwrap();
            assert_eq!(c.secure, secure, "{termination:?} {policy:?}");
            assert_eq!(
                c.same_site,
                secure.then_some(SameSite::None),
                "{termination:?} {policy:?}"
            );
        }
        let mut strict = route(
            "r",
            vec![bref("a", 1)],
            tls(Termination::Edge, InsecurePolicy::None),
        );
        std::sync::Arc::make_mut(&mut strict.options).cookie_same_site = Some(SameSite::Strict);
        assert_eq!(
            cookie(&strict, &default).unwrap().same_site,
            Some(SameSite::Strict)
        );

        let pass = route(
            "r",
            vec![bref("a", 1)],
            tls(Termination::Passthrough, InsecurePolicy::None),
        );
        assert_eq!(cookie(&pass, &default), None);
    }

    #[test]
    fn annotations_to_backend() {
        let slices = vec![svc_slice("a", 1, 3)];
        let s = PlanSettings::default();
        let d = |v: &str| v.parse::<Duration>().unwrap();
        let n = |v: u32| PositiveInt::new(v).unwrap();
        let options = RouteOptions {
            balance: Some(Balance::LeastConn),
            timeout: Some(d("30s")),
            timeout_tunnel: Some(d("1h")),
            ip_allowlist: Some("10.0.0.0/8 192.168.1.1".parse::<IpAllowlist>().unwrap()),
            hsts: Some("max-age=31536000".parse::<HstsPolicy>().unwrap()),
            rewrite_target: Some("/v2".parse().unwrap()),
            rate_limit_connections: true,
            rate_limit_concurrent_tcp: Some(n(10)),
            rate_limit_rate_tcp: Some(n(20)),
            rate_limit_rate_http: Some(n(30)),
            pod_concurrent_connections: Some(n(50)),
            forwarded_headers: Some(ForwardedPolicy::Replace),
            health_check_interval: Some(d("2s")),
            ..RouteOptions::default()
        };
        let mut r = route(
            "r",
            vec![bref("a", 1)],
            tls(Termination::Edge, InsecurePolicy::None),
        );
        r.path = Some("/api".into());
        r.options = std::sync::Arc::new(options.clone());
        let index = EndpointIndex::new(&slices);
        let built = build_backend(&r, &index, &s, &mut Vec::new());
        let b = &built.backend;
        assert_eq!(b.balance, Balance::LeastConn);
        assert_eq!(b.timeout_server, Some(d("30s")));
        assert_eq!(b.timeout_tunnel, Some(d("1h")));
        assert_eq!(b.allowlist_file.as_deref(), Some("allowlists/ns:r.txt"));
        assert_eq!(
            built.allowlist_file.as_ref().unwrap().file,
            "allowlists/ns:r.txt"
        );
        assert_eq!(
            built.allowlist_file.as_ref().unwrap().list,
            options.ip_allowlist.clone().unwrap()
        );
        assert_eq!(b.hsts, options.hsts);
        assert_eq!(
            b.rewrite,
            Some(Box::new(PathRewrite {
                prefix: "/api".into(),
                target: "/v2".parse().unwrap()
            }))
        );
        assert_eq!(
            b.rate_limit,
            Some(Box::new(RateLimit {
                concurrent_tcp: Some(n(10)),
                rate_tcp: Some(n(20)),
                rate_http: Some(n(30))
            }))
        );
        assert_eq!(b.server_maxconn, Some(n(50)));
        assert_eq!(b.forwarded, Some(ForwardedPolicy::Replace));
        assert_eq!(b.health_check, Some(d("2s")));
        assert_eq!(b.host_key, "www.example.com");
        assert_eq!(b.path.as_deref(), Some("/api"));
        assert_eq!(b.server_tls, None);

        // Defaults.
        let plain = route("r", vec![bref("a", 1)], None);
        let (b, _) = build(&plain, &slices, &s);
        assert_eq!(b.forwarded, Some(ForwardedPolicy::Append));
        assert_eq!(
            (
                b.timeout_server,
                b.timeout_tunnel,
                b.rate_limit.clone(),
                b.rewrite.clone()
            ),
            (None, None, None, None)
        );
        assert_eq!(b.health_check, Some(Duration::from_millis(5000)));

        // Rewrite without a path: empty prefix (OpenShift's `^(.*)$`).
        let mut no_path = plain.clone();
        std::sync::Arc::make_mut(&mut no_path.options).rewrite_target = Some("/x".parse().unwrap());
        assert_eq!(build(&no_path, &slices, &s).0.rewrite.unwrap().prefix, "");

        // Passthrough: timeout tunnel falls back to timeout; no HTTP settings.
        let mut pass = route(
            "r",
            vec![bref("a", 1)],
            tls(Termination::Passthrough, InsecurePolicy::None),
        );
        std::sync::Arc::make_mut(&mut pass.options).timeout = Some(d("30s"));
        std::sync::Arc::make_mut(&mut pass.options).rate_limit_connections = true;
        std::sync::Arc::make_mut(&mut pass.options).rate_limit_rate_http = Some(n(5));
        let (b, _) = build(&pass, &slices, &s);
        assert_eq!((b.timeout_server, b.timeout_tunnel), (None, Some(d("30s"))));
        assert_eq!(b.forwarded, None);
        assert_eq!(b.rate_limit.unwrap().rate_http, None);
        std::sync::Arc::make_mut(&mut pass.options).timeout_tunnel = Some(d("5m"));
        assert_eq!(build(&pass, &slices, &s).0.timeout_tunnel, Some(d("5m")));

        // HSTS never on plain HTTP backends.
        let mut plain_hsts = plain.clone();
        std::sync::Arc::make_mut(&mut plain_hsts.options).hsts = options.hsts;
        assert_eq!(build(&plain_hsts, &slices, &s).0.hsts, None);
    }

    #[test]
    fn reencrypt_server_tls() {
        let slices = vec![svc_slice("a", 1, 1)];
        let r = route(
            "r",
            vec![bref("a", 1)],
            tls(Termination::Reencrypt, InsecurePolicy::None),
        );
        let (b, w) = build(&r, &slices, &PlanSettings::default());
        let st = b.server_tls.unwrap();
        assert_eq!(st.verify, ServerVerify::None);
        assert!(st.alpn_h2);
        assert_eq!(w, vec!["ns/r: reencrypt without destinationCACertificate or --service-ca-file: servers are not verified"]);
    }
}
