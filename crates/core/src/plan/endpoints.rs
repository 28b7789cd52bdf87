//! Servers from EndpointSlices (SPEC §2, §5).
//!
//! The EndpointSlices of a Service are those in the Route's namespace
//! labelled `kubernetes.io/service-name: <service>`. Of them:
//!
//! - only `addressType` `IPv4` and `IPv6` slices are read (`FQDN` and
//!   unknown types are skipped);
//! - only ready endpoints count (`conditions.ready` unset = ready);
//! - only TCP ports (protocol unset = TCP) with a number in 1..=65535;
//!   OpenShift drops UDP ports too (its default `--include-udp=false`), and
//!   HAProxy can proxy neither UDP nor SCTP;
//! - addresses that are not IP addresses are skipped with a warning;
//!   loopback, unspecified, link-local (incl. `169.254.169.254`), multicast,
//!   `168.63.129.16`, `fd00:ec2::254` and the IPv4-mapped IPv6 forms of
//!   these are dropped as OpenShift does (`allow_loopback` keeps loopback);
//! - one server per address + port (the first by server name wins, so
//!   duplicates across slices never depend on input order).
//!
//! Port selection by the Route's `spec.port.targetPort`: a name matches the
//! slice port of that name (and, as OpenShift compares
//! `TargetPort.String()` with both the port name and the port number, a
//! numeric string also matches that port number); a number matches the
//! endpoint port number; no targetPort takes every port.
//!
//! Server names are OpenShift's endpoint IDs:
//! `pod:<pod>:<service>:<portName>:<ip>:<port>` for endpoints whose
//! `targetRef` is a Pod, else `ept:<service>:<portName>:<ip>:<port>`.
//! Pod and port names are checked ([`is_safe_name`]); an unsafe pod name
//! gives the `ept:` form, an unsafe port name is replaced by the empty
//! string, so nothing from an EndpointSlice reaches the configuration
//! unchecked. The IP is written in its canonical form.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::model::{EndpointSlice, SliceEndpoint, SlicePort};

use super::Server;
use crate::admit::route::TargetPort;
use crate::model::{ArcStr, ObjectKey};
use crate::values::{quote_for_message, Weight};

/// Label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// How many characters of a bad address a warning shows.
const SHOWN_CHARS: usize = 64;

/// Each Service's EndpointSlices, by namespace and Service name (the
/// label), each group in slice-name order. Kept between passes by the plan
/// memo and updated with the slices that changed ([`SliceGroups::update`]),
/// so a pass that changed, added or removed one slice does not regroup the
/// fleet's.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SliceGroups {
    by_service: FxHashMap<String, FxHashMap<String, Vec<Arc<EndpointSlice>>>>,
}

/// The namespace and Service a slice belongs to, if it names one.
fn group_of(slice: &EndpointSlice) -> Option<(&str, &str)> {
    Some((&slice.namespace, slice.service.as_deref()?))
}

fn slice_name(slice: &EndpointSlice) -> &str {
    &slice.name
}

impl SliceGroups {
    /// The groups of `slices`.
    pub fn new(slices: &[Arc<EndpointSlice>]) -> Self {
        let mut groups = SliceGroups::default();
        for slice in slices {
            groups.add(slice);
        }
        groups
    }

    /// Make the groups of `before` (what `self` holds) those of `now`:
    /// equal to [`SliceGroups::new`]`(now)`. The same objects at the same
    /// places cost a pointer compare each; otherwise the slices only one
    /// list holds are found by address and moved. Returns the groups
    /// (namespace, Service) whose slices changed, sorted.
    pub fn update(
        &mut self,
        before: &[Arc<EndpointSlice>],
        now: &[Arc<EndpointSlice>],
    ) -> Vec<(String, String)> {
        let mut touched = Vec::new();
        let mut touch = |slice: &EndpointSlice| {
            if let Some((namespace, service)) = group_of(slice) {
                touched.push((namespace.to_string(), service.to_string()));
            }
        };
        if before.len() == now.len() {
            for (old, new) in before.iter().zip(now) {
                if !Arc::ptr_eq(old, new) {
                    self.remove(old);
                    self.add(new);
                    touch(old);
                    touch(new);
                }
            }
        } else {
            let addresses =
                |list: &[Arc<EndpointSlice>]| -> rustc_hash::FxHashSet<*const EndpointSlice> {
                    list.iter().map(Arc::as_ptr).collect()
                };
            let (was, is) = (addresses(before), addresses(now));
            for slice in before.iter().filter(|s| !is.contains(&Arc::as_ptr(s))) {
                self.remove(slice);
                touch(slice);
            }
            for slice in now.iter().filter(|s| !was.contains(&Arc::as_ptr(s))) {
                self.add(slice);
                touch(slice);
            }
        }
        touched.sort();
        touched.dedup();
        touched
    }

    fn add(&mut self, slice: &Arc<EndpointSlice>) {
        let Some((namespace, service)) = group_of(slice) else {
            return;
        };
        let group = self
            .by_service
            .entry(namespace.to_string())
            .or_default()
            .entry(service.to_string())
            .or_default();
        // Names are unique in a namespace; equal names (input that breaks
        // that) keep list order.
        let at = group.partition_point(|s| slice_name(s) <= slice_name(slice));
        group.insert(at, Arc::clone(slice));
    }

    /// Take `slice` out of its group; empty groups go (as `new` has none).
    fn remove(&mut self, slice: &Arc<EndpointSlice>) {
        let Some((namespace, service)) = group_of(slice) else {
            return;
        };
        let Some(services) = self.by_service.get_mut(namespace) else {
            return;
        };
        if let Some(group) = services.get_mut(service) {
            if let Some(at) = group.iter().position(|s| Arc::ptr_eq(s, slice)) {
                group.remove(at);
            }
            if group.is_empty() {
                services.remove(service);
            }
        }
        if services.is_empty() {
            self.by_service.remove(namespace);
        }
    }

    fn group(&self, namespace: &str, service: &str) -> &[Arc<EndpointSlice>] {
        self.by_service
            .get(namespace)
            .and_then(|services| services.get(service))
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// EndpointSlices grouped by namespace and Service name.
#[derive(Debug)]
pub struct EndpointIndex<'a> {
    groups: std::borrow::Cow<'a, SliceGroups>,
}

impl<'a> EndpointIndex<'a> {
    /// Index every slice that names its Service (copies them: tests; the
    /// plan keeps [`SliceGroups`] and uses [`EndpointIndex::with_groups`]).
    pub fn new<S: std::borrow::Borrow<EndpointSlice>>(slices: &[S]) -> Self {
        let slices: Vec<Arc<EndpointSlice>> = slices
            .iter()
            .map(|s| Arc::new(s.borrow().clone()))
            .collect();
        Self {
            groups: std::borrow::Cow::Owned(SliceGroups::new(&slices)),
        }
    }

    /// The index whose groups are `groups`.
    pub fn with_groups(groups: &'a SliceGroups) -> Self {
        Self {
            groups: std::borrow::Cow::Borrowed(groups),
        }
    }

    /// The slices of `namespace/service`, in slice-name order.
    pub fn slices(&self, namespace: &str, service: &str) -> &[Arc<EndpointSlice>] {
        self.groups.group(namespace, service)
    }
}

/// The servers of one Service for one Route: weight 0 (the caller sets
/// weights), sorted by name, one per address + port. Findings (bad
/// addresses) are appended to `warnings` as `namespace/slice: message`.
pub fn service_servers(
    index: &EndpointIndex<'_>,
    namespace: &str,
    service: &ArcStr,
    target_port: Option<&TargetPort>,
    allow_loopback: bool,
    warnings: &mut Vec<String>,
) -> Vec<Server> {
    if !is_safe_name(service) {
        // No Service can have this name, so no slice can be its own; and
        // the name must never reach a server line.
        return Vec::new();
    }
    let mut by_address: BTreeMap<(IpAddr, u16), Server> = BTreeMap::new();
    for slice in index.slices(namespace, service) {
        if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
            continue;
        }
        let slice_key = slice.key();
        let ports: Vec<(&SlicePort, u16)> = slice
            .ports
            .iter()
            .filter_map(|p| usable_port(p).map(|n| (p, n)))
            .filter(|(p, n)| port_selected(p, *n, target_port))
            .collect();
        if ports.is_empty() {
            continue;
        }
        let mut dropped = DroppedAddresses::default();
        for endpoint in slice.endpoints.iter().filter(|e| is_ready(e)) {
            for raw in &endpoint.addresses {
                let Some(address) =
                    usable_address(raw, allow_loopback, &slice_key, &mut dropped, warnings)
                else {
                    continue;
                };
                for (port, number) in &ports {
                    let server = make_server(service, endpoint, port, address, *number);
                    match by_address.get(&(address, *number)) {
                        Some(existing) if *existing <= server => {}
                        _ => {
                            by_address.insert((address, *number), server);
                        }
                    }
                }
            }
        }
        dropped.report(&slice_key, warnings);
    }
    let mut servers: Vec<Server> = by_address.into_values().collect();
    servers.sort();
    servers.dedup_by(|a, b| a.name == b.name);
    servers
}

/// `conditions.ready`: unset counts as ready.
fn is_ready(endpoint: &SliceEndpoint) -> bool {
    endpoint.ready.unwrap_or(true)
}

/// The port number of a TCP slice port, if it has a usable one.
fn usable_port(port: &SlicePort) -> Option<u16> {
    if port.protocol.as_deref().is_some_and(|p| p != "TCP") {
        return None;
    }
    let number = u16::try_from(port.port?).ok()?;
    (number != 0).then_some(number)
}

/// Does this slice port serve the Route's targetPort?
fn port_selected(port: &SlicePort, number: u16, target: Option<&TargetPort>) -> bool {
    match target {
        None => true,
        Some(TargetPort::Number(n)) => i32::from(number) == *n,
        Some(TargetPort::Name(name)) => {
            port.name.as_deref() == Some(name.as_str()) || name.parse::<u16>().ok() == Some(number)
        }
    }
}

/// The ready addresses of one slice that a [`Blocked`] rule dropped, by
/// rule: reported once per slice and rule, so that a 503 is explained
/// without one line per address.
#[derive(Default)]
struct DroppedAddresses(BTreeMap<Blocked, (usize, IpAddr)>);

impl DroppedAddresses {
    fn add(&mut self, reason: Blocked, address: IpAddr) {
        self.0.entry(reason).or_insert((0, address)).0 += 1;
    }

    fn report(self, slice: &ObjectKey, warnings: &mut Vec<String>) {
        for (reason, (count, first)) in self.0 {
            let (what, hint) = match reason {
                Blocked::Loopback => (
                    "loopback",
                    "; --allow-loopback-endpoints keeps loopback endpoints (local use only)",
                ),
                Blocked::Unspecified => ("unspecified", ""),
                Blocked::LinkLocal => ("link-local", ""),
                Blocked::Multicast => ("multicast", ""),
                Blocked::Platform => ("a cloud platform's service address", ""),
            };
            let addresses = if count == 1 {
                format!("endpoint address {first} is")
            } else {
                format!("{count} endpoint addresses ({first}, ...) are")
            };
            warnings.push(format!(
                "{slice}: {addresses} {what}: never used as a server{hint}"
            ));
        }
    }
}

/// Parse and filter one endpoint address; a blocked one is recorded in
/// `dropped`.
fn usable_address(
    raw: &str,
    allow_loopback: bool,
    slice: &ObjectKey,
    dropped: &mut DroppedAddresses,
    warnings: &mut Vec<String>,
) -> Option<IpAddr> {
    let Ok(address) = raw.parse::<IpAddr>() else {
        warnings.push(format!(
            "{slice}: endpoint address {} is not an IP address: skipped",
            quote_for_message(raw, SHOWN_CHARS)
        ));
        return None;
    };
    match blocked_reason(address) {
        None => Some(address),
        Some(Blocked::Loopback) if allow_loopback => Some(address),
        Some(reason) => {
            dropped.add(reason, address);
            None
        }
    }
}

/// Why an address is never used as a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Blocked {
    Loopback,
    Unspecified,
    LinkLocal,
    Multicast,
    /// Cloud metadata / platform service addresses (`168.63.129.16`,
    /// `fd00:ec2::254`).
    Platform,
}

/// The rule that drops `address`, if any (SPEC §2). IPv4-mapped IPv6
/// addresses are judged by the IPv4 address they carry.
pub fn blocked_reason(address: IpAddr) -> Option<Blocked> {
    match address {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => blocked_v4(v4),
            None => blocked_v6(v6),
        },
    }
}

fn blocked_v4(a: Ipv4Addr) -> Option<Blocked> {
    const AZURE_WIRESERVER: Ipv4Addr = Ipv4Addr::new(168, 63, 129, 16);
    if a.is_loopback() {
        Some(Blocked::Loopback)
    } else if a.is_unspecified() {
        Some(Blocked::Unspecified)
    } else if a.is_link_local() {
        Some(Blocked::LinkLocal)
    } else if a.is_multicast() {
        Some(Blocked::Multicast)
    } else if a == AZURE_WIRESERVER {
        Some(Blocked::Platform)
    } else {
        None
    }
}

fn blocked_v6(a: Ipv6Addr) -> Option<Blocked> {
    const AWS_METADATA: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    if a.is_loopback() {
        Some(Blocked::Loopback)
    } else if a.is_unspecified() {
        Some(Blocked::Unspecified)
    } else if a.segments()[0] & 0xffc0 == 0xfe80 {
        Some(Blocked::LinkLocal)
    } else if a.is_multicast() {
        Some(Blocked::Multicast)
    } else if a == AWS_METADATA {
        Some(Blocked::Platform)
    } else {
        None
    }
}

/// A Kubernetes object or port name that may appear in a server name: 1 to
/// 253 of `a-z 0-9 . -`, starting and ending with a letter or digit.
pub fn is_safe_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 253
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// OpenShift's endpoint ID for one address + port.
pub fn server_name(
    pod: Option<&str>,
    service: &str,
    port_name: &str,
    address: IpAddr,
    port: u16,
) -> String {
    match pod {
        Some(pod) => format!("pod:{pod}:{service}:{port_name}:{address}:{port}"),
        None => format!("ept:{service}:{port_name}:{address}:{port}"),
    }
}

/// The largest server id [`assign_ids`] gives (ids are positive `int`s in
/// HAProxy).
pub const MAX_SERVER_ID: u32 = (1 << 31) - 1;

/// Give each server of one backend (sorted by name, names unique) its id:
/// the first 31 bits of the sha256 of its name, or, when a server earlier
/// in name order holds that id, the next free one. An id depends on the
/// name alone (and on a collision, about one in two billion per pair):
/// unchanged when other servers come and go, the same on every machine.
pub fn assign_ids(servers: &mut [Server]) {
    let mut taken = rustc_hash::FxHashSet::default();
    for server in servers {
        let digest = openssl::sha::sha256(server.name.as_bytes());
        let mut id =
            u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) & MAX_SERVER_ID;
        while id == 0 || !taken.insert(id) {
            id = if id >= MAX_SERVER_ID { 1 } else { id + 1 };
        }
        server.id = id;
    }
}

/// Hex md5 of `s` (cookie names, as OpenShift).
///
/// MD5 is fetched from OpenSSL's provider once per process: a fetch per
/// call (what `openssl::hash::hash` does) takes OpenSSL's global locks and
/// was most of a call's cost (one call per backend and per server).
pub fn md5_hex(s: &str) -> String {
    use std::fmt::Write as _;
    static MD5: std::sync::OnceLock<openssl::md::Md> = std::sync::OnceLock::new();
    let md5 = MD5.get_or_init(|| {
        openssl::md::Md::fetch(None, "MD5", None).expect("md5 is always available")
    });
    let mut digest = [0u8; 16];
    let mut ctx = openssl::md_ctx::MdCtx::new().expect("an OpenSSL digest context");
    ctx.digest_init(md5)
        .and_then(|()| ctx.digest_update(s.as_bytes()))
        .and_then(|()| ctx.digest_final(&mut digest))
        .expect("md5 is always available");
    let mut hex = String::with_capacity(32);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

fn make_server(
    service: &ArcStr,
    endpoint: &SliceEndpoint,
    port: &SlicePort,
    address: IpAddr,
    number: u16,
) -> Server {
    let pod = endpoint
        .target
        .as_ref()
        .filter(|r| r.kind.as_deref() == Some("Pod"))
        .and_then(|r| r.name.as_deref())
        .filter(|name| is_safe_name(name));
    let port_name = port
        .name
        .as_deref()
        .filter(|name| is_safe_name(name))
        .unwrap_or("");
    let name = server_name(pod, service, port_name, address, number);
    let h2c = matches!(
        port.app_protocol.as_deref(),
        Some("h2c" | "kubernetes.io/h2c")
    );
    Server {
        id: 0,
        name,
        address,
        port: number,
        weight: Weight::ZERO,
        h2c,
        service: service.clone(),
        verify_host: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::TargetRef;

    /// An endpoint: addresses, ready condition, optional pod name.
    pub(crate) fn ep(addresses: &[&str], ready: Option<bool>, pod: Option<&str>) -> SliceEndpoint {
        SliceEndpoint {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            ready,
            target: pod.map(|p| TargetRef {
                kind: Some("Pod".into()),
                name: Some(p.into()),
            }),
        }
    }

    pub(crate) fn port(name: Option<&str>, number: i32) -> SlicePort {
        SlicePort {
            name: name.map(str::to_string),
            port: Some(number),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }
    }

    pub(crate) fn slice(
        namespace: &str,
        name: &str,
        service: &str,
        address_type: &str,
        ports: Vec<SlicePort>,
        endpoints: Vec<SliceEndpoint>,
    ) -> EndpointSlice {
        EndpointSlice {
            namespace: namespace.into(),
            name: name.into(),
            service: Some(service.into()),
            address_type: address_type.into(),
            ports,
            endpoints,
        }
    }

    #[test]
    fn slice_groups_updated_in_place_equal_groups_built_anew() {
        let mk = |ns: &str, name: &str, svc: Option<&str>| {
            let mut s = slice(ns, name, svc.unwrap_or("x"), "IPv4", vec![], vec![]);
            if svc.is_none() {
                s.service = None;
            }
            Arc::new(s)
        };
        let mut list: Vec<Arc<EndpointSlice>> = (0..40)
            .map(|i| {
                mk(
                    &format!("ns{}", i % 3),
                    &format!("s{i}"),
                    Some(&format!("svc{}", i % 7)),
                )
            })
            .collect();
        let mut groups = SliceGroups::new(&list);
        let mut rng = fastrand::Rng::with_seed(7);
        for step in 0..400 {
            let before = list.clone();
            let name = format!("n{step}");
            match rng.usize(0..5) {
                // Another object for a slice, maybe of another Service.
                0 | 1 => {
                    let at = rng.usize(0..list.len());
                    let svc = format!("svc{}", rng.usize(0..9));
                    list[at] = mk(&format!("ns{}", rng.usize(0..3)), &name, Some(&svc));
                }
                // One without a Service label.
                2 => {
                    let at = rng.usize(0..list.len());
                    list[at] = mk("ns0", &name, None);
                }
                // A slice added or removed (the places move).
                3 => list.insert(rng.usize(0..=list.len()), mk("ns1", &name, Some("svc1"))),
                _ => {
                    list.remove(rng.usize(0..list.len()));
                }
            }
            let old_groups = groups.clone();
            let touched = groups.update(&before, &list);
            assert_eq!(groups, SliceGroups::new(&list), "step {step}");
            // Every group whose slices differ is named.
            let keys = |g: &SliceGroups| -> Vec<(String, String)> {
                g.by_service
                    .iter()
                    .flat_map(|(ns, services)| services.keys().map(|s| (ns.clone(), s.clone())))
                    .collect()
            };
            for (ns, service) in keys(&old_groups).into_iter().chain(keys(&groups)) {
                let same = crate::model::same_arcs(
                    old_groups.group(&ns, &service),
                    groups.group(&ns, &service),
                );
                assert!(
                    same || touched.contains(&(ns.clone(), service.clone())),
                    "step {step}: {ns}/{service} changed, not named"
                );
            }
        }
    }

    fn names(
        slices: &[EndpointSlice],
        target: Option<TargetPort>,
        allow_loopback: bool,
    ) -> (Vec<String>, Vec<String>) {
        let index = EndpointIndex::new(slices);
        let mut warnings = Vec::new();
        let servers = service_servers(
            &index,
            "ns",
            &"svc".into(),
            target.as_ref(),
            allow_loopback,
            &mut warnings,
        );
        (servers.into_iter().map(|s| s.name).collect(), warnings)
    }

    #[test]
    fn md5_hex_matches_known_digest() {
        assert_eq!(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
        let long = "x".repeat(1000);
        let reference = openssl::hash::hash(openssl::hash::MessageDigest::md5(), long.as_bytes())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>();
        assert_eq!(md5_hex(&long), reference);
    }

    #[test]
    fn selection_table() {
        let http = || port(Some("http"), 8080);
        let metrics = || port(Some("metrics"), 9090);
        let one = |ports: Vec<SlicePort>, eps: Vec<SliceEndpoint>| {
            vec![slice("ns", "s1", "svc", "IPv4", ports, eps)]
        };
        type Case = (
            &'static str,
            Vec<EndpointSlice>,
            Option<TargetPort>,
            bool,
            Vec<&'static str>,
        );
        let cases: Vec<Case> = vec![
            (
                "no targetPort: every port",
                one(
                    vec![http(), metrics()],
                    vec![ep(&["10.0.0.1"], None, Some("p1"))],
                ),
                None,
                false,
                vec![
                    "pod:p1:svc:http:10.0.0.1:8080",
                    "pod:p1:svc:metrics:10.0.0.1:9090",
                ],
            ),
            (
                "targetPort name",
                one(
                    vec![http(), metrics()],
                    vec![ep(&["10.0.0.1"], None, Some("p1"))],
                ),
                Some(TargetPort::Name("metrics".into())),
                false,
                vec!["pod:p1:svc:metrics:10.0.0.1:9090"],
            ),
            (
                "targetPort number",
                one(
                    vec![http(), metrics()],
                    vec![ep(&["10.0.0.1"], None, Some("p1"))],
                ),
                Some(TargetPort::Number(8080)),
                false,
                vec!["pod:p1:svc:http:10.0.0.1:8080"],
            ),
            (
                "targetPort numeric string matches the number (OpenShift String())",
                one(
                    vec![http(), metrics()],
                    vec![ep(&["10.0.0.1"], None, Some("p1"))],
                ),
                Some(TargetPort::Name("9090".into())),
                false,
                vec!["pod:p1:svc:metrics:10.0.0.1:9090"],
            ),
            (
                "targetPort matches nothing",
                one(vec![http()], vec![ep(&["10.0.0.1"], None, Some("p1"))]),
                Some(TargetPort::Name("https".into())),
                false,
                vec![],
            ),
            (
                "ready unset counts, ready false skipped",
                one(
                    vec![http()],
                    vec![
                        ep(&["10.0.0.1"], None, Some("p1")),
                        ep(&["10.0.0.2"], Some(true), Some("p2")),
                        ep(&["10.0.0.3"], Some(false), Some("p3")),
                    ],
                ),
                None,
                false,
                vec![
                    "pod:p1:svc:http:10.0.0.1:8080",
                    "pod:p2:svc:http:10.0.0.2:8080",
                ],
            ),
            (
                "no targetRef, or not a Pod: ept form",
                one(
                    vec![http()],
                    vec![ep(&["10.0.0.1"], None, None), {
                        let mut e = ep(&["10.0.0.2"], None, Some("node1"));
                        e.target.as_mut().unwrap().kind = Some("Node".into());
                        e
                    }],
                ),
                None,
                false,
                vec!["ept:svc:http:10.0.0.1:8080", "ept:svc:http:10.0.0.2:8080"],
            ),
            (
                "unnamed port: empty port name",
                one(
                    vec![port(None, 80)],
                    vec![ep(&["10.0.0.1"], None, Some("p1"))],
                ),
                None,
                false,
                vec!["pod:p1:svc::10.0.0.1:80"],
            ),
            (
                "unsafe pod name: ept form; unsafe port name: empty",
                one(
                    vec![port(Some("Bad Name"), 80)],
                    vec![ep(&["10.0.0.1"], None, Some("p1 x\nserver evil"))],
                ),
                None,
                false,
                vec!["ept:svc::10.0.0.1:80"],
            ),
            (
                "FQDN slices skipped",
                vec![slice(
                    "ns",
                    "s1",
                    "svc",
                    "FQDN",
                    vec![http()],
                    vec![ep(&["example.com"], None, None)],
                )],
                None,
                false,
                vec![],
            ),
            (
                "other namespace and other service ignored",
                vec![
                    slice(
                        "other",
                        "s1",
                        "svc",
                        "IPv4",
                        vec![http()],
                        vec![ep(&["10.0.0.1"], None, None)],
                    ),
                    slice(
                        "ns",
                        "s2",
                        "svc2",
                        "IPv4",
                        vec![http()],
                        vec![ep(&["10.0.0.2"], None, None)],
                    ),
                ],
                None,
                false,
                vec![],
            ),
            (
                "UDP ports skipped",
                one(
                    vec![
                        SlicePort {
                            protocol: Some("UDP".into()),
                            ..port(Some("dns"), 53)
                        },
                        SlicePort {
                            protocol: None,
                            ..port(Some("dns-tcp"), 53)
                        },
                    ],
                    vec![ep(&["10.0.0.1"], None, None)],
                ),
                None,
                false,
                vec!["ept:svc:dns-tcp:10.0.0.1:53"],
            ),
            (
                "duplicates across slices: one per address+port",
                vec![
                    slice(
                        "ns",
                        "s1",
                        "svc",
                        "IPv4",
                        vec![http()],
                        vec![ep(&["10.0.0.1"], None, Some("p1"))],
                    ),
                    slice(
                        "ns",
                        "s2",
                        "svc",
                        "IPv4",
                        vec![http()],
                        vec![ep(&["10.0.0.1"], None, Some("p1"))],
                    ),
                    slice(
                        "ns",
                        "s3",
                        "svc",
                        "IPv4",
                        vec![http()],
                        vec![ep(&["10.0.0.1"], None, None)],
                    ),
                ],
                None,
                false,
                vec!["ept:svc:http:10.0.0.1:8080"],
            ),
            (
                "IPv6 canonical form",
                vec![slice(
                    "ns",
                    "s1",
                    "svc",
                    "IPv6",
                    vec![http()],
                    vec![ep(&["FD00:0:0::10"], None, Some("p1"))],
                )],
                None,
                false,
                vec!["pod:p1:svc:http:fd00::10:8080"],
            ),
            (
                "special addresses dropped",
                one(
                    vec![http()],
                    vec![ep(
                        &[
                            "127.0.0.1",
                            "0.0.0.0",
                            "169.254.169.254",
                            "169.254.1.1",
                            "224.0.0.1",
                            "168.63.129.16",
                            "::1",
                            "::",
                            "fe80::1",
                            "ff02::1",
                            "fd00:ec2::254",
                            "::ffff:127.0.0.1",
                            "::ffff:169.254.169.254",
                            "::ffff:168.63.129.16",
                            "10.1.1.1",
                        ],
                        None,
                        None,
                    )],
                ),
                None,
                false,
                vec!["ept:svc:http:10.1.1.1:8080"],
            ),
            (
                "allow_loopback lifts only loopback",
                one(
                    vec![http()],
                    vec![ep(
                        &[
                            "127.0.0.1",
                            "::1",
                            "::ffff:127.0.0.2",
                            "169.254.169.254",
                            "0.0.0.0",
                        ],
                        None,
                        None,
                    )],
                ),
                None,
                true,
                vec![
                    "ept:svc:http:127.0.0.1:8080",
                    "ept:svc:http:::1:8080",
                    "ept:svc:http:::ffff:127.0.0.2:8080",
                ],
            ),
        ];
        for (what, slices, target, allow_loopback, want) in cases {
            let (got, _) = names(&slices, target, allow_loopback);
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn dropped_addresses_are_warned_once_per_slice_and_rule() {
        let slices = vec![slice(
            "ns",
            "s1",
            "svc",
            "IPv4",
            vec![port(Some("http"), 80)],
            vec![
                ep(&["127.0.0.1", "127.0.0.2", "169.254.169.254"], None, None),
                ep(&["10.0.0.1"], None, None),
            ],
        )];
        let (got, warnings) = names(&slices, None, false);
        assert_eq!(got, vec!["ept:svc:http:10.0.0.1:80"]);
        assert_eq!(
            warnings,
            vec![
                "ns/s1: 2 endpoint addresses (127.0.0.1, ...) are loopback: never used as a server; --allow-loopback-endpoints keeps loopback endpoints (local use only)",
                "ns/s1: endpoint address 169.254.169.254 is link-local: never used as a server",
            ]
        );
        // With the flag, loopback is kept and only the other rule is told.
        let (got, warnings) = names(&slices, None, true);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            warnings,
            vec!["ns/s1: endpoint address 169.254.169.254 is link-local: never used as a server"]
        );
    }

    #[test]
    fn invalid_address_is_warned_and_skipped() {
        let slices = vec![slice(
            "ns",
            "s1",
            "svc",
            "IPv4",
            vec![port(Some("http"), 80)],
            vec![ep(&["10.0.0.1", "not-an-ip", "10.0.0.300"], None, None)],
        )];
        let (got, warnings) = names(&slices, None, false);
        assert_eq!(got, vec!["ept:svc:http:10.0.0.1:80"]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("ns/s1: endpoint address \"not-an-ip\""),
            "{warnings:?}"
        );
    }

    #[test]
    fn server_fields() {
        let mut h2c_port = port(Some("grpc"), 50051);
        h2c_port.app_protocol = Some("kubernetes.io/h2c".into());
        let slices = vec![slice(
            "ns",
            "s1",
            "svc",
            "IPv4",
            vec![h2c_port, port(Some("http"), 80)],
            vec![ep(&["10.0.0.1"], None, Some("p1"))],
        )];
        let index = EndpointIndex::new(&slices);
        let servers = service_servers(&index, "ns", &"svc".into(), None, false, &mut Vec::new());
        assert_eq!(servers.len(), 2);
        let grpc = &servers[0];
        assert_eq!(grpc.name, "pod:p1:svc:grpc:10.0.0.1:50051");
        assert_eq!(grpc.address, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(grpc.port, 50051);
        assert!(grpc.h2c);
        assert!(!servers[1].h2c);
    }

    #[test]
    fn unsafe_service_name_has_no_servers() {
        let slices = vec![slice(
            "ns",
            "s1",
            "Bad:Svc",
            "IPv4",
            vec![port(None, 80)],
            vec![ep(&["10.0.0.1"], None, None)],
        )];
        let index = EndpointIndex::new(&slices);
        assert!(service_servers(
            &index,
            "ns",
            &"Bad:Svc".into(),
            None,
            false,
            &mut Vec::new()
        )
        .is_empty());
    }

    #[test]
    fn safe_names() {
        for (s, ok) in [
            ("web-1", true),
            ("a.b-c", true),
            ("", false),
            ("-a", false),
            ("a-", false),
            ("A", false),
            ("a:b", false),
            ("a b", false),
            (&"a".repeat(254), false),
        ] {
            assert_eq!(is_safe_name(s), ok, "{s:?}");
        }
    }
}
