//! Plan fixtures: the smallest [`Backend`] and [`Server`] a renderer test
//! starts from. Tests change what they rely on with struct update syntax
//! (`Backend { forwarded: .., ..backend(..) }`), so a fixture states every
//! field that matters to it.

use std::net::IpAddr;

use crate::model::ObjectKey;
use crate::plan::{Backend, Mode, Server};
use crate::values::{Balance, ForwardedPolicy, Weight};

/// A server `name` at `address:port` with `weight` (must be 0..=256),
/// id 1 (renumber with [`crate::plan::endpoints::assign_ids`]), service `"svc"`, no h2c, no own `verifyhost`.
pub fn server(name: &str, address: IpAddr, port: u16, weight: u16) -> Server {
    Server {
        name: name.to_string(),
        address,
        port,
        weight: Weight::new(weight).expect("test weight within 0..=256"),
        id: 1,
        h2c: false,
        service: "svc".into(),
        verify_host: None,
    }
}

/// A plain-HTTP backend `name` of Route `route` for `host_key` with
/// `servers`: balance random, `X-Forwarded-*` appended, no path, no TLS, no
/// cookie, no timeouts, no health check, no allowlist, HSTS, rewrite or
/// rate limit.
pub fn backend(name: &str, route: ObjectKey, host_key: &str, servers: Vec<Server>) -> Backend {
    Backend {
        name: name.into(),
        route,
        host_key: host_key.into(),
        path: None,
        termination: None,
        mode: Mode::Http,
        balance: Balance::Random,
        servers,
        servers_left_out: 0,
        health_check: None,
        cookie: None,
        timeout_server: None,
        timeout_tunnel: None,
        allowlist_file: None,
        hsts: None,
        rewrite: None,
        rate_limit: None,
        server_maxconn: None,
        forwarded: Some(ForwardedPolicy::Append),
        server_tls: None,
        headers: Default::default(),
    }
}
