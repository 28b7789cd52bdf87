//! Files always equal runtime (issue 15): a real HAProxy changed through
//! its runtime API serves exactly what a fresh HAProxy started from the
//! same files serves.
//!
//! A small fleet (plain HTTP with several endpoints and a sticky cookie, a
//! path Route on the same host, a weighted split over two Services, edge
//! with its own certificate, reencrypt with a destination CA, passthrough,
//! a Route whose host changes, a removable one) is rendered with its
//! endpoints on 127.0.0.1, each a tiny echo server answering its identity.
//! A HAProxy (master-worker) runs the first tree. Then, for each fixed
//! seed, a pseudo-random sequence of changes to the snapshot: endpoints
//! added, removed, not ready; Service weights; certificates rotated (two
//! valid certificates for the same host, generated at test time with
//! different keys); Routes removed and re-added; a
//! host changed; the destination CA file changed (re-issued with the same
//! key, or a bundle with a second CA), and at random points a reload (the
//! master CLI) or a restart of HAProxy on the files.
//!
//! After each step the new tree is rendered and written where HAProxy
//! reads it, and [`runtime::delta`] from what HAProxy runs is applied as
//! the sidecar does: a live delta through [`Live`] only, anything else
//! with its live part sent and then a reload. Then a *fresh* HAProxy is
//! started from the same snapshot rendered with other binds and run
//! directory (which change only `haproxy.cfg` and `backends/default.cfg`,
//! asserted), and:
//! - [`observe`] of both processes is equal (servers with ids, weights and
//!   admin state; maps; certificates; crt-list; CA files), up to what a
//!   live removal leaves behind by design until the next reload: the
//!   backends of removed Routes, which no map key names any more, and CA
//!   files no server uses any more; both are checked to be exactly such
//!   leftovers;
//! - a request per host (and path) through each process gets the same
//!   status, from a backend of the set the snapshot says (503 for removed
//!   Routes and Routes without endpoints), and over TLS the same leaf
//!   certificate (SHA-256 fingerprint), the one the snapshot says;
//! - a client pinned to a server by the sticky cookie of one process
//!   reaches the same server through the other;
//! - an inserted reload changes nothing [`observe`] sees.
//!
//! Everything listens on 127.0.0.1; every wait is bounded; HAProxy
//! processes are killed on drop. Skipped, with a message, when `haproxy`
//! cannot be run. `ROUTEGEN_EQUIV_SEEDS=1,2,3` runs other seeds.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use openssl::x509::X509;
use routegen::run::placement;
use routegen_core::model::{Route, Snapshot};
use routegen_core::plan::spares::Placement;
use routegen_core::testkit::certs::{CertSpec, Issued};
use routegen_core::testkit::{EndpointSliceBuilder, ServiceBuilder, SnapshotBuilder};
use routegen_core::RouterSettings;
use routegen_host::config::PipelineOptions;
use routegen_host::reload::{HaproxyProcess, SpawnOptions};
use routegen_host::runtime::live::Live;
use routegen_host::runtime::{observe, Observed, StatsSocket};
use routegen_render::engine::Engine;
use routegen_render::haproxy::runtime::{self, RuntimeState};
use routegen_render::output::OutputTree;
use routegen_render::pipeline::PipelineConfig;
use routegen_testsupport::config::haproxy_f_args;
use routegen_testsupport::e2e::{
    self, fingerprint, free_port, haproxy_bin, https_request, Request, Response, TlsOpts,
};
use routegen_testsupport::workspace_root;

const NS: &str = "eq";
/// Steps per seed.
const STEPS: usize = 20;
/// The fixed seeds (CI is deterministic).
const SEEDS: [u64; 2] = [0x5eed_0001, 0x5eed_0002];
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound of waiting for a removed server's connections to end.
const DRAIN_WAIT: Duration = Duration::from_secs(15);

fn haproxy_missing() -> bool {
    let missing = Command::new(haproxy_bin())
        .arg("-v")
        .stdout(Stdio::null())
        .status()
        .is_err();
    if missing {
        eprintln!("skipping: `haproxy` cannot be run");
    }
    missing
}

// ---------------------------------------------------------------------------
// The fleet

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Http,
    Edge,
    Reencrypt,
    Passthrough,
}

/// One Route of the model.
#[derive(Clone, Debug)]
struct RouteModel {
    name: &'static str,
    kind: Kind,
    host: &'static str,
    path: Option<&'static str>,
    /// Services with their weights (`None`: the API default, 100).
    services: Vec<(&'static str, Option<i64>)>,
    present: bool,
    /// How often it was replaced by a new Route object (another name, the
    /// same spec): a new backend for HAProxy.
    generation: u32,
}

/// One endpoint: the echo server `id` (also the pod name) on `port`.
#[derive(Clone, Debug)]
struct EndpointModel {
    id: String,
    port: u16,
    ready: bool,
}

/// The certificates and echo servers every step uses.
struct Fixture {
    /// Signs the edge and reencrypt Routes' certificates.
    _ca: Issued,
    /// Two valid certificates (different keys) for shop.eq.test.
    shop: [Issued; 2],
    /// Two valid certificates for secure.eq.test.
    secure: [Issued; 2],
    /// Destination CA variants: the CA, the same CA re-issued (same key and
    /// subject, another serial), the CA bundled with another CA. Each
    /// verifies the reencrypt backends' certificate.
    dest_cas: [String; 3],
    /// What the passthrough backends present.
    pass_leaf: Issued,
    default_cert_sha256: String,
    /// (id, port) of the echo servers, by the kind of backend they serve.
    http_pool: Vec<(String, u16)>,
    reencrypt_pool: Vec<(String, u16)>,
    passthrough_pool: Vec<(String, u16)>,
}

impl Fixture {
    fn new() -> Fixture {
        let ca = CertSpec::ca("routegen equivalence CA").self_signed();
        let shop = [0, 1].map(|_| CertSpec::leaf(&["shop.eq.test"]).signed_by(&ca));
        let secure = [0, 1].map(|_| CertSpec::leaf(&["secure.eq.test"]).signed_by(&ca));
        let dest = CertSpec::ca("routegen equivalence destination CA").self_signed();
        let dest_again = CertSpec::ca("routegen equivalence destination CA")
            .with_key(&dest.key)
            .self_signed();
        let other = CertSpec::ca("routegen equivalence other CA").self_signed();
        let dest_cas = [
            dest.cert_pem(),
            dest_again.cert_pem(),
            format!("{}{}", dest.cert_pem(), other.cert_pem()),
        ];
        let backend_leaf = CertSpec::leaf(&["backend.eq.test"]).signed_by(&dest);
        let pass_leaf = CertSpec::leaf(&["vault.eq.test"]).self_signed();
        let default_pem =
            std::fs::read(workspace_root().join("testdata/certs/default.pem")).unwrap();
        let default_cert = X509::stack_from_pem(&default_pem).unwrap().remove(0);
        Fixture {
            _ca: ca,
            default_cert_sha256: fingerprint(&default_cert),
            http_pool: pool("h", 14, e2e::echo_server),
            reencrypt_pool: pool("r", 4, |id| e2e::tls_echo_server(id, &backend_leaf, &[])),
            passthrough_pool: pool("t", 3, |id| e2e::tls_echo_server(id, &pass_leaf, &[])),
            shop,
            secure,
            dest_cas,
            pass_leaf,
        }
    }

    /// The echo servers Service `service` may have as endpoints.
    fn pool(&self, service: &str) -> &[(String, u16)] {
        match service {
            "secure" => &self.reencrypt_pool,
            "vault" => &self.passthrough_pool,
            _ => &self.http_pool,
        }
    }
}

/// `n` echo servers `<prefix>0`, `<prefix>1`, … started by `spawn`: (id,
/// port).
fn pool(prefix: &str, n: usize, spawn: impl Fn(&str) -> u16) -> Vec<(String, u16)> {
    (0..n)
        .map(|i| {
            let id = format!("{prefix}{i}");
            let port = spawn(&id);
            (id, port)
        })
        .collect()
}

/// The snapshot as the test changes it.
#[derive(Clone, Debug)]
struct Model {
    routes: Vec<RouteModel>,
    /// Service → endpoints.
    endpoints: BTreeMap<&'static str, Vec<EndpointModel>>,
    /// Which of the two certificates shop and secure use.
    shop_cert: usize,
    secure_cert: usize,
    /// Which destination CA variant secure uses.
    dest_ca: usize,
}

/// Plain HTTP Routes a step may replace by a new Route object with the
/// same spec (a new backend: served from a spare when one is free).
const RENAMABLE: [&str; 2] = ["extra", "api"];
/// Routes a step may remove and add again.
const REMOVABLE: [&str; 5] = ["extra", "shop", "vault", "api", "secure"];
const SERVICES: [&str; 9] = [
    "web", "api", "blue", "green", "shop", "misc", "extra", "secure", "vault",
];
const WEIGHTS: [i64; 5] = [0, 1, 3, 10, 50];

impl Model {
    fn initial(fx: &Fixture) -> Model {
        let route = |name, kind, host, path, services| RouteModel {
            name,
            kind,
            host,
            path,
            services,
            present: true,
            generation: 0,
        };
        let routes = vec![
            route("web", Kind::Http, "web.eq.test", None, vec![("web", None)]),
            route(
                "api",
                Kind::Http,
                "web.eq.test",
                Some("/api"),
                vec![("api", None)],
            ),
            route(
                "split",
                Kind::Http,
                "split.eq.test",
                None,
                vec![("blue", Some(3)), ("green", Some(1))],
            ),
            route(
                "shop",
                Kind::Edge,
                "shop.eq.test",
                None,
                vec![("shop", None)],
            ),
            route(
                "secure",
                Kind::Reencrypt,
                "secure.eq.test",
                None,
                vec![("secure", None)],
            ),
            route(
                "vault",
                Kind::Passthrough,
                "vault.eq.test",
                None,
                vec![("vault", None)],
            ),
            route(
                "misc",
                Kind::Http,
                "misc.eq.test",
                None,
                vec![("misc", None)],
            ),
            route(
                "extra",
                Kind::Http,
                "extra.eq.test",
                None,
                vec![("extra", None)],
            ),
        ];
        let initial: [(&str, &[usize]); 9] = [
            ("web", &[0, 1, 2]),
            ("api", &[3]),
            ("blue", &[4, 5]),
            ("green", &[6]),
            ("shop", &[7]),
            ("misc", &[8]),
            ("extra", &[9]),
            ("secure", &[0, 1]),
            ("vault", &[0]),
        ];
        let endpoints = initial
            .into_iter()
            .map(|(service, picks)| {
                let pool = fx.pool(service);
                let eps = picks
                    .iter()
                    .map(|&i| EndpointModel {
                        id: pool[i].0.clone(),
                        port: pool[i].1,
                        ready: true,
                    })
                    .collect();
                (service, eps)
            })
            .collect();
        Model {
            routes,
            endpoints,
            shop_cert: 0,
            secure_cert: 0,
            dest_ca: 0,
        }
    }

    fn route_mut(&mut self, name: &str) -> &mut RouteModel {
        self.routes.iter_mut().find(|r| r.name == name).unwrap()
    }

    fn snapshot(&self, fx: &Fixture) -> Snapshot {
        let mut b = SnapshotBuilder::new();
        for r in self.routes.iter().filter(|r| r.present) {
            b = b.route(self.route_object(r, fx));
        }
        for (service, endpoints) in &self.endpoints {
            b = b.service(
                ServiceBuilder::new(NS, service)
                    .port("http", 80, 8080)
                    .build(),
            );
            for ep in endpoints {
                let mut slice =
                    EndpointSliceBuilder::new(NS, &format!("{service}-{}", ep.id), service)
                        .tcp_port("http", i32::from(ep.port))
                        .pod_endpoint("127.0.0.1", &ep.id)
                        .build();
                if !ep.ready {
                    let conditions = slice.endpoints[0].conditions.as_mut().unwrap();
                    conditions.ready = Some(false);
                }
                b = b.endpoint_slice(slice);
            }
        }
        b.build()
    }

    fn route_object(&self, r: &RouteModel, fx: &Fixture) -> Route {
        let name = match r.generation {
            0 => r.name.to_string(),
            n => format!("{}-{n}", r.name),
        };
        let mut b = e2e::route(NS, &name, r.host);
        if let Some(path) = r.path {
            b = b.path(path);
        }
        let (first, rest) = r.services.split_first().unwrap();
        b = b.to(first.0, first.1);
        for (service, weight) in rest {
            b = b.alt(service, *weight);
        }
        match r.kind {
            Kind::Http => b,
            Kind::Edge => b.tls("edge").cert(&fx.shop[self.shop_cert], None),
            Kind::Passthrough => b.tls("passthrough"),
            Kind::Reencrypt => {
                let ca = fx.dest_cas[self.dest_ca].clone();
                b.tls("reencrypt")
                    .cert(&fx.secure[self.secure_cert], None)
                    .with_spec(|spec| {
                        spec.tls.as_mut().unwrap().destination_ca_certificate = Some(ca.into())
                    })
            }
        }
        .build()
    }

    /// Echo servers some endpoint uses.
    fn used(&self) -> BTreeSet<&str> {
        self.endpoints
            .values()
            .flatten()
            .map(|e| e.id.as_str())
            .collect()
    }

    /// One random change; its description.
    fn change(&mut self, rng: &mut fastrand::Rng, fx: &Fixture) -> String {
        for _ in 0..100 {
            match rng.usize(0..10) {
                0 | 1 => {
                    let service = SERVICES[rng.usize(0..SERVICES.len())];
                    let used = self.used();
                    let free: Vec<&(String, u16)> = fx
                        .pool(service)
                        .iter()
                        .filter(|(id, _)| !used.contains(id.as_str()))
                        .collect();
                    if free.is_empty() {
                        continue;
                    }
                    let (id, port) = free[rng.usize(0..free.len())].clone();
                    self.endpoints
                        .get_mut(service)
                        .unwrap()
                        .push(EndpointModel {
                            id: id.clone(),
                            port,
                            ready: true,
                        });
                    return format!("endpoint {id} added to {service}");
                }
                2 => {
                    let service = SERVICES[rng.usize(0..SERVICES.len())];
                    let eps = self.endpoints.get_mut(service).unwrap();
                    if eps.is_empty() {
                        continue;
                    }
                    let ep = eps.remove(rng.usize(0..eps.len()));
                    return format!("endpoint {} removed from {service}", ep.id);
                }
                3 => {
                    let service = SERVICES[rng.usize(0..SERVICES.len())];
                    let eps = self.endpoints.get_mut(service).unwrap();
                    if eps.is_empty() {
                        continue;
                    }
                    let i = rng.usize(0..eps.len());
                    eps[i].ready = !eps[i].ready;
                    return format!(
                        "endpoint {} of {service} {}",
                        eps[i].id,
                        if eps[i].ready { "ready" } else { "not ready" }
                    );
                }
                4 => {
                    let split = self.route_mut("split");
                    let i = rng.usize(0..2);
                    let weight = WEIGHTS[rng.usize(0..WEIGHTS.len())];
                    if split.services[i].1 == Some(weight) {
                        continue;
                    }
                    split.services[i].1 = Some(weight);
                    return format!("split: {} weight {weight}", split.services[i].0);
                }
                5 => {
                    if rng.bool() {
                        self.shop_cert = 1 - self.shop_cert;
                        return format!("shop certificate rotated to #{}", self.shop_cert);
                    }
                    self.secure_cert = 1 - self.secure_cert;
                    return format!("secure certificate rotated to #{}", self.secure_cert);
                }
                6 => {
                    let name = REMOVABLE[rng.usize(0..REMOVABLE.len())];
                    let r = self.route_mut(name);
                    r.present = !r.present;
                    return format!(
                        "route {name} {}",
                        if r.present { "re-added" } else { "removed" }
                    );
                }
                8 => {
                    let name = RENAMABLE[rng.usize(0..RENAMABLE.len())];
                    let r = self.route_mut(name);
                    if !r.present {
                        continue;
                    }
                    r.generation += 1;
                    return format!("route {name} replaced by {name}-{}", r.generation);
                }
                7 => {
                    let misc = self.route_mut("misc");
                    misc.host = if misc.host == "misc.eq.test" {
                        "misc2.eq.test"
                    } else {
                        "misc.eq.test"
                    };
                    return format!("misc host changed to {}", misc.host);
                }
                _ => {
                    self.dest_ca = (self.dest_ca + 1 + rng.usize(0..2)) % 3;
                    return format!("secure destination CA variant #{}", self.dest_ca);
                }
            }
        }
        unreachable!("some change always applies")
    }

    /// Echo servers a Route's requests may reach: ready endpoints of its
    /// Services of weight above 0.
    fn reachable(&self, r: &RouteModel) -> BTreeSet<String> {
        r.services
            .iter()
            .filter(|(_, w)| w.unwrap_or(100) > 0)
            .flat_map(|(s, _)| &self.endpoints[s])
            .filter(|e| e.ready)
            .map(|e| e.id.clone())
            .collect()
    }

    /// What a probe must get.
    fn expect(&self, probe: &Probe, fx: &Fixture) -> Expected {
        let present = |kinds: &[Kind]| {
            self.routes
                .iter()
                .filter(|r| r.present && r.host == probe.host && kinds.contains(&r.kind))
                .filter(|r| r.path.is_none_or(|p| probe.target.starts_with(p)))
                .max_by_key(|r| r.path.map_or(0, str::len))
        };
        let served = |r: Option<&RouteModel>| match r.map(|r| self.reachable(r)) {
            Some(set) if !set.is_empty() => Outcome::Served(set),
            _ => Outcome::Status(503),
        };
        if !probe.tls {
            return Expected {
                cert: None,
                outcome: served(present(&[Kind::Http])),
            };
        }
        if let Some(r) = present(&[Kind::Passthrough]) {
            let set = self.reachable(r);
            return match set.is_empty() {
                true => Expected {
                    cert: None,
                    outcome: Outcome::Refused,
                },
                false => Expected {
                    cert: Some(fingerprint(&fx.pass_leaf.cert)),
                    outcome: Outcome::Served(set),
                },
            };
        }
        let route = present(&[Kind::Edge, Kind::Reencrypt]);
        let cert = match route.map(|r| r.kind) {
            Some(Kind::Edge) => fingerprint(&fx.shop[self.shop_cert].cert),
            Some(Kind::Reencrypt) => fingerprint(&fx.secure[self.secure_cert].cert),
            _ => fx.default_cert_sha256.clone(),
        };
        Expected {
            cert: Some(cert),
            outcome: served(route),
        }
    }
}

/// A request the test sends to both processes.
#[derive(Clone, Copy, Debug)]
struct Probe {
    tls: bool,
    host: &'static str,
    target: &'static str,
}

const PROBES: [Probe; 10] = [
    Probe {
        tls: false,
        host: "web.eq.test",
        target: "/",
    },
    Probe {
        tls: false,
        host: "web.eq.test",
        target: "/api/x",
    },
    Probe {
        tls: false,
        host: "split.eq.test",
        target: "/",
    },
    Probe {
        tls: false,
        host: "misc.eq.test",
        target: "/",
    },
    Probe {
        tls: false,
        host: "misc2.eq.test",
        target: "/",
    },
    Probe {
        tls: false,
        host: "extra.eq.test",
        target: "/",
    },
    Probe {
        tls: true,
        host: "shop.eq.test",
        target: "/",
    },
    Probe {
        tls: true,
        host: "secure.eq.test",
        target: "/",
    },
    Probe {
        tls: true,
        host: "vault.eq.test",
        target: "/",
    },
    Probe {
        tls: true,
        host: "web.eq.test",
        target: "/",
    },
];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// 200 from one of these echo servers.
    Served(BTreeSet<String>),
    /// This status from HAProxy itself.
    Status(u16),
    /// The connection ends before a TLS handshake or a response.
    Refused,
}

#[derive(Clone, Debug)]
struct Expected {
    /// SHA-256 of the leaf presented (TLS probes that get a handshake).
    cert: Option<String>,
    outcome: Outcome,
}

/// What one process answered to a probe.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Answer {
    cert: Option<String>,
    /// `None`: no response (handshake or connection failed).
    status: Option<u16>,
    /// `x-echo-id`, `-` for HAProxy's own answers.
    backend: String,
}

impl Answer {
    fn check(&self, expected: &Expected) -> Result<(), String> {
        if self.cert != expected.cert {
            return Err(format!(
                "certificate {:?}, expected {:?}",
                self.cert, expected.cert
            ));
        }
        let ok = match &expected.outcome {
            Outcome::Served(set) => self.status == Some(200) && set.contains(&self.backend),
            Outcome::Status(s) => self.status == Some(*s) && self.backend == "-",
            Outcome::Refused => self.status.is_none(),
        };
        match ok {
            true => Ok(()),
            false => Err(format!(
                "status {:?} from {}, expected {:?}",
                self.status, self.backend, expected.outcome
            )),
        }
    }
}

fn send(ports: Ports, probe: &Probe, extra: &[(&str, &str)]) -> (Answer, Option<Response>) {
    let req = Request {
        host: probe.host,
        target: probe.target,
        extra,
        keep_alive: false,
    };
    let result = match probe.tls {
        false => e2e::http_request(ports.http, &req).map(|r| (None, r)),
        true => https_request(ports.https, TlsOpts::sni(probe.host), &req)
            .map(|(info, r)| (Some(info.fingerprint()), r)),
    };
    match result {
        Ok((cert, resp)) => (
            Answer {
                cert,
                status: Some(resp.status),
                backend: resp.backend().to_string(),
            },
            Some(resp),
        ),
        Err(_) => {
            // The handshake may have succeeded before the backend closed:
            // report the certificate HAProxy presented, if any.
            let cert = match probe.tls {
                true => e2e::tls_connect(ports.https, TlsOpts::sni(probe.host))
                    .ok()
                    .map(|s| e2e::tls_info(&s).fingerprint()),
                false => None,
            };
            (
                Answer {
                    cert,
                    status: None,
                    backend: "-".into(),
                },
                None,
            )
        }
    }
}

// ---------------------------------------------------------------------------
// Rendering

#[derive(Clone, Copy, Debug)]
struct Ports {
    http: u16,
    https: u16,
}

fn pipeline_config(state: &Path, run_dir: &Path, ports: Ports) -> PipelineConfig {
    let options = PipelineOptions {
        target: routegen_render::Target::Haproxy,
        router: RouterSettings::default(),
        template_dir: None,
        state_dir: Some(state.to_path_buf()),
        default_cert: Some(workspace_root().join("testdata/certs/default.pem")),
        service_ca_file: None,
        cookie_name: None,
        disable_http2: false,
        allow_loopback_endpoints: true,
        http_bind: vec![format!("127.0.0.1:{}", ports.http).parse().unwrap()],
        https_bind: vec![format!("127.0.0.1:{}", ports.https).parse().unwrap()],
        run_dir: run_dir.display().to_string(),
        // The default (50000) needs a higher open-files limit than a test
        // environment may grant.
        maxconn: 2000,
        hard_stop_after: "10s".parse().unwrap(),
        max_old_workers: 5,
        header_actions_file: None,
        spares: Default::default(),
        haproxy_metrics_bind: Vec::new(),
        haproxy_log: None,
        haproxy_events: false,
    };
    routegen_host::config::load(&options).unwrap()
}

fn render(engine: &mut Engine, snapshot: &Snapshot, config: &PipelineConfig) -> OutputTree {
    render_placed(engine, snapshot, config, &Placement::default())
}

/// The tree with `placement`'s Routes in their spares, as `routegen run`
/// writes it.
fn render_placed(
    engine: &mut Engine,
    snapshot: &Snapshot,
    config: &PipelineConfig,
    placement: &Placement,
) -> OutputTree {
    let verdicts = engine.admit_at(snapshot, config, now());
    for v in &verdicts {
        assert!(v.is_admitted(), "{} rejected: {:?}", v.key, v.rejection());
    }
    engine
        .render_verdicts_placed(verdicts, snapshot, config, placement)
        .unwrap()
        .tree
}

fn now() -> i64 {
    routegen_core::testkit::certs::now_unix()
}

/// The map files of a tree HAProxy loads (those `haproxy.cfg` names), by
/// the names HAProxy knows them by.
fn map_names(tree: &OutputTree) -> Vec<String> {
    let config = String::from_utf8_lossy(&tree["haproxy.cfg"].contents).into_owned();
    tree.keys()
        .filter(|p| p.starts_with("maps/") && p.ends_with(".map"))
        .filter(|p| config.contains(&format!("({p})")))
        .cloned()
        .collect()
}

fn observe_at(socket: &Path, maps: &[String]) -> Observed {
    let maps: Vec<&str> = maps.iter().map(String::as_str).collect();
    let mut sock = StatsSocket::connect(socket, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("{}: {e}", socket.display()));
    observe(&mut sock, &maps, Some(routegen_render::haproxy::CRT_LIST)).unwrap()
}

// ---------------------------------------------------------------------------
// HAProxy processes

/// The HAProxy changed at runtime: master-worker on `<root>/live`, reloaded
/// through its master CLI or restarted; the whole group killed on drop.
struct LiveProxy {
    rt: tokio::runtime::Runtime,
    process: Option<HaproxyProcess>,
    tree: PathBuf,
    master: PathBuf,
    socket: PathBuf,
    ports: Ports,
}

impl LiveProxy {
    fn new(root: &Path, run_dir: &Path, ports: Ports) -> LiveProxy {
        LiveProxy {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
            process: None,
            tree: root.join("live"),
            master: root.join("master.sock"),
            socket: run_dir.join("haproxy.sock"),
            ports,
        }
    }

    fn start(&mut self) {
        assert!(self.process.is_none());
        let opts = SpawnOptions {
            startup_timeout: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(3),
            ..SpawnOptions::default()
        };
        let process = self
            .rt
            .block_on(HaproxyProcess::spawn_with(
                &haproxy_bin(),
                &self.tree.join("haproxy.cfg"),
                &self.master,
                &[],
                opts,
            ))
            .unwrap_or_else(|e| panic!("HAProxy did not start: {e}"));
        self.process = Some(process);
        wait_serving(&self.socket, self.ports, || self.output());
    }

    /// Kill the group and start again on the files.
    fn restart(&mut self) {
        // SIGTERM, and wait until the master (which waits for its workers)
        // has exited, so that nothing listens on the ports any more.
        if let Some(p) = self.process.take() {
            self.rt.block_on(p.shutdown()).unwrap();
        }
        self.start();
    }

    /// Reload through the master CLI and wait until no old worker is left,
    /// so the stats socket is the new worker's.
    fn reload(&mut self) {
        e2e::master_reload(&self.rt, &self.master)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.output()));
        wait_serving(&self.socket, self.ports, || self.output());
    }

    fn output(&self) -> String {
        self.process
            .as_ref()
            .map(|p| p.recent_output().join("\n"))
            .unwrap_or_default()
    }
}

impl Drop for LiveProxy {
    fn drop(&mut self) {
        if let Some(p) = self.process.take() {
            let _guard = self.rt.enter();
            drop(p);
        }
    }
}

/// A HAProxy started fresh from a tree (`haproxy -db`), killed on drop.
struct FreshProxy {
    child: Child,
}

impl FreshProxy {
    fn start(tree: &Path, socket: &Path, log: &Path, ports: Ports) -> FreshProxy {
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(haproxy_bin())
            .arg("-db")
            .args(haproxy_f_args(tree))
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("start haproxy");
        let mut fresh = FreshProxy { child };
        let output = || std::fs::read_to_string(log).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while StatsSocket::connect(socket, IO_TIMEOUT).is_err() {
            if let Some(status) = fresh.child.try_wait().unwrap() {
                panic!("fresh HAProxy exited with {status}:\n{}", output());
            }
            assert!(
                Instant::now() < deadline,
                "fresh HAProxy not ready:\n{}",
                output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        wait_serving(socket, ports, output);
        fresh
    }
}

impl Drop for FreshProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Bounded wait until the stats socket answers and both ports accept.
fn wait_serving(socket: &Path, ports: Ports, output: impl Fn() -> String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ready = StatsSocket::connect(socket, IO_TIMEOUT)
            .and_then(|mut s| s.command("show info"))
            .is_ok()
            && e2e::tcp_connect(ports.http).is_ok()
            && e2e::tcp_connect(ports.https).is_ok();
        if ready {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "HAProxy does not serve:\n{}",
            output()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// The comparison

/// `live` less what a live removal leaves behind until the next reload
/// (see the module documentation), after checking that it is only that:
/// backends the tree no longer defines and no map value names, CA files no
/// server line of the tree names.
fn without_leftovers(mut live: Observed, fresh: &Observed, new: &RuntimeState) -> Observed {
    let named: BTreeSet<&str> = live
        .maps
        .values()
        .flatten()
        .map(|(_, v)| v.as_str())
        .collect();
    let extra: Vec<String> = live
        .servers
        .keys()
        .filter(|b| !fresh.servers.contains_key(*b))
        .cloned()
        .collect();
    for backend in extra {
        assert!(
            !new.backends.contains_key(backend.as_str()),
            "backend {backend} of the tree has servers only in the live process: {:?}",
            live.servers[&backend]
        );
        assert!(
            !named.contains(backend.as_str()),
            "left-over backend {backend} is still named by a map"
        );
        live.servers.remove(&backend);
    }
    let extra: Vec<String> = live
        .ca_files
        .keys()
        .filter(|f| !fresh.ca_files.contains_key(*f))
        .cloned()
        .collect();
    for file in extra {
        assert!(
            !new.ca_loaded.contains(&file),
            "CA file {file}, used by the tree, is loaded only in the live process"
        );
        live.ca_files.remove(&file);
    }
    live
}

fn assert_observed_equal(live: &Observed, fresh: &Observed, context: &str) {
    if live == fresh {
        return;
    }
    let mut diff = String::new();
    let backends: BTreeSet<&String> = live.servers.keys().chain(fresh.servers.keys()).collect();
    for backend in backends {
        let (a, b) = (live.servers.get(backend), fresh.servers.get(backend));
        if a != b {
            diff.push_str(&format!(
                "servers of {backend}:\n  live:  {a:?}\n  fresh: {b:?}\n"
            ));
        }
    }
    for (what, a, b) in [
        (
            "maps",
            format!("{:?}", live.maps),
            format!("{:?}", fresh.maps),
        ),
        (
            "certs",
            format!("{:?}", live.certs),
            format!("{:?}", fresh.certs),
        ),
        (
            "crt-list",
            format!("{:?}", live.crt_list),
            format!("{:?}", fresh.crt_list),
        ),
        (
            "CA files",
            format!("{:?}", live.ca_files),
            format!("{:?}", fresh.ca_files),
        ),
    ] {
        if a != b {
            diff.push_str(&format!("{what}:\n  live:  {a}\n  fresh: {b}\n"));
        }
    }
    panic!("{context}: the live HAProxy differs from a fresh one:\n{diff}");
}

/// The trees of the same snapshot for the live and the fresh process
/// differ only where binds and the run directory are written.
fn assert_same_but_binds(live: &OutputTree, fresh: &OutputTree) {
    let paths: BTreeSet<&String> = live.keys().chain(fresh.keys()).collect();
    for path in paths {
        if path == "haproxy.cfg" || path == "backends/default.cfg" {
            continue;
        }
        assert!(
            live.get(path) == fresh.get(path),
            "{path} differs between the live and the fresh rendering"
        );
    }
}

/// A client pinned by the sticky cookie `from` sets reaches the same
/// server through `to`.
fn assert_sticky(from: Ports, to: Ports, probe: &Probe, context: &str) {
    let (answer, resp) = send(from, probe, &[]);
    let resp = resp.unwrap_or_else(|| panic!("{context}: no answer to {probe:?}"));
    let Some((name, value)) = resp
        .set_cookies()
        .into_iter()
        .find(|(name, _)| !name.starts_with("app-"))
    else {
        panic!(
            "{context}: no sticky cookie from {probe:?}: {:?}",
            resp.headers
        );
    };
    let cookie = format!("{name}={value}");
    for _ in 0..3 {
        let (pinned, _) = send(to, probe, &[("cookie", &cookie)]);
        assert_eq!(
            (pinned.status, pinned.backend.as_str()),
            (Some(200), answer.backend.as_str()),
            "{context}: cookie {cookie} from one process pinned {} there, not on the other",
            answer.backend
        );
    }
}

// ---------------------------------------------------------------------------
// The test

struct Run<'a> {
    fx: &'a Fixture,
    engine: Engine,
    live_config: PipelineConfig,
    fresh_config: PipelineConfig,
    fresh_run: PathBuf,
    fresh_ports: Ports,
    live: LiveProxy,
    api: Live,
    running: RuntimeState,
    /// New Routes served from spare backends, as `routegen run` places them.
    placement: Placement,
    history: Vec<String>,
    reloads: usize,
    live_steps: usize,
    /// Routes placed in a spare (served live although new).
    placed_routes: usize,
    /// Last, so it is removed after HAProxy is gone.
    root: tempfile::TempDir,
}

impl<'a> Run<'a> {
    fn new(fx: &'a Fixture, model: &Model) -> Run<'a> {
        // Short, under /tmp: unix socket paths are limited.
        let root = tempfile::Builder::new()
            .prefix("rgeq")
            .tempdir_in("/tmp")
            .unwrap();
        let live_run = root.path().join("run");
        let fresh_run = root.path().join("fresh-run");
        std::fs::create_dir(&live_run).unwrap();
        std::fs::create_dir(&fresh_run).unwrap();
        let state = root.path().join("state");
        let live_ports = Ports {
            http: free_port(),
            https: free_port(),
        };
        let fresh_ports = Ports {
            http: free_port(),
            https: free_port(),
        };
        let live_config = pipeline_config(&state, &live_run, live_ports);
        let fresh_config = pipeline_config(&state, &fresh_run, fresh_ports);
        let mut engine = Engine::new();
        let tree = render(&mut engine, &model.snapshot(fx), &live_config);
        let mut live = LiveProxy::new(root.path(), &live_run, live_ports);
        routegen_host::tree::write_tree(&tree, &live.tree).unwrap();
        live.start();
        let api = Live::new(live.socket.clone());
        Run {
            fx,
            engine,
            live_config,
            fresh_config,
            fresh_run,
            fresh_ports,
            live,
            api,
            running: RuntimeState::of_tree(&tree).unwrap(),
            placement: Placement::default(),
            history: vec!["initial tree".into()],
            reloads: 0,
            live_steps: 0,
            placed_routes: 0,
            root,
        }
    }

    fn context(&self, seed: u64) -> String {
        format!(
            "seed {seed:#x}, after: {}",
            self.history
                .iter()
                .enumerate()
                .map(|(i, h)| format!("\n  {i}: {h}"))
                .collect::<String>()
        )
    }

    /// Apply `model`'s tree as the sidecar would; `reload_anyway` inserts
    /// a reload (or a restart) afterwards.
    fn step(&mut self, model: &Model, reload_anyway: Option<bool>, seed: u64) {
        // Placed as `routegen run` places new Routes (run::placement):
        // kept while the change is live, undone when it reloads anyway.
        let snapshot = model.snapshot(self.fx);
        let verdicts = self.engine.admit_at(&snapshot, &self.live_config, now());
        let full = self.engine.plan(&verdicts, &snapshot, &self.live_config);
        let mut placement = placement::for_pass(
            &self.placement,
            &full,
            Some(&self.running),
            &self.api.draining_servers(),
        );
        let mut tree = render_placed(&mut self.engine, &snapshot, &self.live_config, &placement);
        let mut new = RuntimeState::of_tree(&tree).unwrap();
        let mut delta = runtime::delta(&self.running, &new);
        if !placement.placed.is_empty() && !delta.is_live() {
            placement = placement::normalized(&self.placement);
            tree = render_placed(&mut self.engine, &snapshot, &self.live_config, &placement);
            new = RuntimeState::of_tree(&tree).unwrap();
            delta = runtime::delta(&self.running, &new);
        }
        let newly: Vec<String> = placement
            .placed
            .iter()
            .filter(|(k, s)| self.placement.placed.get(*k) != Some(*s))
            .map(|(k, s)| format!("{} in {s}", k.name))
            .collect();
        if !newly.is_empty() {
            self.placed_routes += newly.len();
            self.history
                .last_mut()
                .unwrap()
                .push_str(&format!(" [placed: {}]", newly.join(", ")));
        }
        self.placement = placement;
        // Files first, as an atomic apply would have them by now; HAProxy
        // reads them only when it starts or reloads.
        routegen_host::tree::write_tree(&tree, &self.live.tree).unwrap();
        let report = self.api.apply(&delta.ops).unwrap_or_else(|e| {
            panic!(
                "{}\nthe runtime API refused {:?}: {e}",
                self.context(seed),
                delta.ops
            )
        });
        self.wait_drained(seed);
        let last = self.history.last_mut().unwrap();
        if delta.is_live() {
            self.live_steps += 1;
            last.push_str(&format!(" [live: {} commands]", report.commands));
            self.running = delta.after;
        } else {
            let reasons: Vec<String> = delta.reload.iter().map(|r| r.to_string()).collect();
            last.push_str(&format!(
                " [live part {} commands, then reload: {}]",
                report.commands,
                reasons.join("; ")
            ));
            self.reload(false);
            self.running = new.clone();
        }
        if let Some(restart) = reload_anyway {
            let maps = map_names(&tree);
            let before = observe_at(&self.live.socket, &maps);
            self.reload(restart);
            self.running = new.clone();
            let after = observe_at(&self.live.socket, &maps);
            let before = without_leftovers(before, &after, &new);
            let context = format!(
                "{}\n(an inserted reload changed what HAProxy serves)",
                self.context(seed)
            );
            assert_observed_equal(&before, &after, &context);
            self.history.last_mut().unwrap().push_str(match restart {
                true => " [restart]",
                false => " [reload]",
            });
        }
        self.compare(model, &tree, &new, seed);
    }

    fn reload(&mut self, restart: bool) {
        match restart {
            true => self.live.restart(),
            false => self.live.reload(),
        }
        self.api.forget_draining();
        self.placement.retired.clear();
        self.reloads += 1;
    }

    /// Removed servers that still had connections: retry their deletion,
    /// as the sidecar does, until none is left (bounded).
    fn wait_drained(&mut self, seed: u64) {
        let deadline = Instant::now() + DRAIN_WAIT;
        while self.api.retry_draining() > 0 {
            assert!(
                Instant::now() < deadline,
                "{}\nremoved servers still draining after {DRAIN_WAIT:?}",
                self.context(seed)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A fresh HAProxy from the same snapshot serves what the live one does.
    fn compare(&mut self, model: &Model, live_tree: &OutputTree, new: &RuntimeState, seed: u64) {
        let context = self.context(seed);
        let fresh_tree = render_placed(
            &mut self.engine,
            &model.snapshot(self.fx),
            &self.fresh_config,
            &self.placement,
        );
        assert_same_but_binds(live_tree, &fresh_tree);
        let dir = self.root.path().join("fresh");
        routegen_host::tree::write_tree(&fresh_tree, &dir).unwrap();
        let socket = self.fresh_run.join("haproxy.sock");
        let fresh = FreshProxy::start(
            &dir,
            &socket,
            &self.root.path().join("fresh.log"),
            self.fresh_ports,
        );

        let maps = map_names(live_tree);
        let fresh_observed = observe_at(&socket, &maps);
        let live_observed =
            without_leftovers(observe_at(&self.live.socket, &maps), &fresh_observed, new);
        assert_observed_equal(&live_observed, &fresh_observed, &context);

        for probe in &PROBES {
            let expected = model.expect(probe, self.fx);
            let (live, _) = send(self.live.ports, probe, &[]);
            let (fresh, _) = send(self.fresh_ports, probe, &[]);
            assert_eq!(
                (&live.cert, live.status),
                (&fresh.cert, fresh.status),
                "{context}\n{probe:?}: the live and the fresh HAProxy answer differently ({} / {})",
                live.backend,
                fresh.backend
            );
            for (who, answer) in [("live", &live), ("fresh", &fresh)] {
                if let Err(e) = answer.check(&expected) {
                    panic!("{context}\n{probe:?} through the {who} HAProxy: {e}");
                }
            }
        }

        let web = &PROBES[0];
        let web_route = model.routes.iter().find(|r| r.name == "web").unwrap();
        if model.reachable(web_route).len() > 1 {
            assert_sticky(self.fresh_ports, self.live.ports, web, &context);
            assert_sticky(self.live.ports, self.fresh_ports, web, &context);
        }
        drop(fresh);
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("ROUTEGEN_EQUIV_SEEDS") {
        Ok(list) => list
            .split(',')
            .map(|s| {
                let s = s.trim();
                match s.strip_prefix("0x") {
                    Some(hex) => u64::from_str_radix(hex, 16).unwrap(),
                    None => s.parse().unwrap(),
                }
            })
            .collect(),
        Err(_) => SEEDS.to_vec(),
    }
}

#[test]
fn live_changes_serve_what_a_fresh_haproxy_serves_from_the_files() {
    if haproxy_missing() {
        return;
    }
    let started = Instant::now();
    let fx = Fixture::new();
    let mut placed = 0;
    for seed in seeds() {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut model = Model::initial(&fx);
        let mut run = Run::new(&fx, &model);
        let tree = render(&mut run.engine, &model.snapshot(&fx), &run.live_config);
        let running = run.running.clone();
        run.compare(&model, &tree, &running, seed);
        for _ in 0..STEPS {
            let change = model.change(&mut rng, &fx);
            run.history.push(change);
            let reload = match rng.usize(0..10) {
                0 => Some(true),
                1 => Some(false),
                _ => None,
            };
            run.step(&model, reload, seed);
        }
        eprintln!(
            "seed {seed:#x}: {STEPS} steps, {} fully live ({} new Routes placed in spares), {} reloads or restarts; {:?} so far",
            run.live_steps,
            run.placed_routes,
            run.reloads,
            started.elapsed()
        );
        placed += run.placed_routes;
        for line in &run.history {
            eprintln!("  {line}");
        }
    }
    if std::env::var("ROUTEGEN_EQUIV_SEEDS").is_err() {
        assert!(placed > 0, "the seeds place no new Route in a spare");
    }
}
