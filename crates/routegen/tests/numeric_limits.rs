//! Issue 17, item 2: every numeric setting of a Route
//! (`routegen_core::admit::limits::NUMERIC_LIMITS`, documented in
//! `docs/limits.md`) through the real binary and the real proxies.
//!
//! * A Route at the minimum and one at the maximum of every row (time
//!   values also at the largest value of each unit, and on a passthrough
//!   Route) render for both targets with no warning about the value, and
//!   the trees pass `haproxy -c` and `nginx -t`.
//! * One step outside each end (min-1, max+1) is refused at admission as
//!   the row says (annotation ignored or clipped with a warning naming it,
//!   Route rejected naming the field), and what is rendered still passes
//!   both checks.

use std::path::Path;
use std::process::Command;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use routegen_core::admit::annotations::RATE_LIMIT_CONNECTIONS;
use routegen_core::admit::limits::{NumericLimit, OutOfRange, Syntax, NUMERIC_LIMITS};
use routegen_core::model::route::RoutePort;
use routegen_core::testkit::{EndpointSliceBuilder, RouteBuilder, ServiceBuilder};
use routegen_testsupport::e2e::{haproxy_bin, nginx_bin};
use routegen_testsupport::{config, workspace_root};

const NS: &str = "limits";
/// `--run-dir` of the nginx trees (`nginx -t` binds the sockets there).
const RUN_DIR: &str = "/tmp/routegen-numeric-limits-run";

/// A Service `name` (port `http` 80 → `port`) with two ready endpoints,
/// so health checks are rendered.
fn service(name: &str, port: i32) -> String {
    format!(
        "{}---\n{}",
        ServiceBuilder::new(NS, name)
            .port("http", 80, port)
            .to_yaml(),
        EndpointSliceBuilder::new(NS, &format!("{name}-1"), name)
            .port("http", port)
            .ready_endpoint("10.9.0.1")
            .ready_endpoint("10.9.0.2")
            .to_yaml()
    )
}

/// Route `name` with `limit` set to `n`: edge (HSTS applies) or
/// passthrough, rate limiting on; a targetPort row gets a Service of its
/// own on that port when the port is one.
fn route(name: &str, limit: &NumericLimit, n: i128, passthrough: bool) -> String {
    let host = format!("{name}.example.com");
    let mut route = RouteBuilder::new(NS, name)
        .host(&host)
        .created("2026-01-01T00:00:00Z")
        .tls(if passthrough { "passthrough" } else { "edge" });
    let mut extra = String::new();
    let weight = i64::try_from(n).ok();
    route = match limit.setting {
        "spec.to.weight" => route.to("s", weight),
        "spec.alternateBackends[].weight" => route.to("s", None).alt("t", weight),
        "spec.port.targetPort" => {
            let port = i32::try_from(n).unwrap();
            if (1..=65_535).contains(&port) {
                extra = format!("---\n{}", service(&format!("port-{port}"), port));
            }
            route.to(&format!("port-{port}"), None).with_spec(|spec| {
                spec.port = Some(RoutePort {
                    target_port: IntOrString::Int(port),
                })
            })
        }
        annotation => route
            .to("s", None)
            .annotation(annotation, &limit.text(n))
            .annotation(RATE_LIMIT_CONNECTIONS, "true"),
    };
    format!("{}{extra}", route.to_yaml())
}

/// The largest value of each time unit within the range (microseconds).
fn unit_extremes(limit: &NumericLimit) -> Vec<(&'static str, String)> {
    let max_ms = limit.max / 1000;
    vec![
        ("us", format!("{}us", limit.max)),
        ("s", format!("{}s", max_ms / 1000)),
        ("m", format!("{}m", max_ms / 60_000)),
        ("h", format!("{}h", max_ms / 3_600_000)),
        ("d", format!("{}d", max_ms / 86_400_000)),
    ]
}

/// Render `manifests` for `target` into `out`; returns stderr.
fn render(manifests: &Path, out: &Path, target: &str) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_routegen"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ROUTEGEN_") {
            cmd.env_remove(k);
        }
    }
    let output = cmd
        .current_dir(workspace_root())
        .arg("render")
        .arg("-f")
        .arg(manifests)
        .arg("--out")
        .arg(out)
        .arg("--state-dir")
        .arg(out.with_extension("state"))
        .args(["--default-cert", "testdata/certs/default.pem"])
        .args(["--target", target, "--run-dir", RUN_DIR])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        output.status.success(),
        "render --target {target}: {stderr}"
    );
    stderr
}

/// Render for both targets and check each tree with its real proxy;
/// returns the stderr of each render (HAProxy, nginx).
fn render_and_check(manifests: &str) -> [String; 2] {
    std::fs::create_dir_all(RUN_DIR).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    std::fs::create_dir(&input).unwrap();
    std::fs::write(input.join("manifests.yaml"), manifests).unwrap();
    let haproxy_out = tmp.path().join("haproxy");
    let haproxy_stderr = render(&input, &haproxy_out, "haproxy");
    let check = config::haproxy_c(&haproxy_bin(), &haproxy_out);
    assert!(
        check.status.success(),
        "haproxy -c refused:\n{}{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr),
        config::whole_config(&haproxy_out)
    );
    let nginx_out = tmp.path().join("nginx");
    let nginx_stderr = render(&input, &nginx_out, "nginx");
    if let Err(e) = config::nginx_t(&nginx_bin(), &nginx_out) {
        panic!(
            "nginx -t refused: {e}\n{}",
            std::fs::read_to_string(nginx_out.join("nginx.conf")).unwrap()
        );
    }
    [haproxy_stderr, nginx_stderr]
}

/// The manifests shared by every Route: Services `s` and `t`.
fn services() -> String {
    format!("{}---\n{}", service("s", 8080), service("t", 8081))
}

/// The stderr lines about Route `limits/<name>`.
fn lines_of<'a>(stderr: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!("{NS}/{name}");
    stderr
        .lines()
        .filter(|l| l.split_whitespace().any(|w| w.trim_end_matches(':') == key))
        .collect()
}

#[test]
fn both_ends_of_every_range_pass_haproxy_and_nginx() {
    let mut docs = vec![services()];
    let mut names = Vec::new();
    for (i, limit) in NUMERIC_LIMITS.iter().enumerate() {
        for (end, n) in [("min", limit.min), ("max", limit.max)] {
            let name = format!("l{i:02}-{end}");
            docs.push(route(&name, limit, i128::from(n), false));
            names.push((name, limit));
            if limit.syntax == Syntax::Duration {
                let name = format!("l{i:02}-{end}-passthrough");
                docs.push(route(&name, limit, i128::from(n), true));
                names.push((name, limit));
            }
        }
        if limit.syntax == Syntax::Duration {
            for (unit, text) in unit_extremes(limit) {
                let name = format!("l{i:02}-max-{unit}");
                let yaml = route(&name, limit, 1, false)
                    .replace(&format!("\"{}\"", limit.text(1)), &format!("\"{text}\""));
                assert!(yaml.contains(&text), "{yaml}");
                docs.push(yaml);
                names.push((name, limit));
            }
        }
    }
    let stderrs = render_and_check(&docs.join("---\n"));
    for stderr in &stderrs {
        for (name, limit) in &names {
            for line in lines_of(stderr, name) {
                assert!(
                    !line.starts_with("rejected:")
                        && !line.contains("invalid value")
                        && !line.contains("clipped")
                        && !line.contains("ignored"),
                    "{} in range must be taken as written: {line}",
                    limit.setting
                );
            }
        }
    }
}

#[test]
fn one_step_outside_is_refused_at_admission_naming_the_setting() {
    let mut docs = vec![services()];
    let mut cases = Vec::new();
    for (i, limit) in NUMERIC_LIMITS.iter().enumerate() {
        let outside = [
            ("below", i128::from(limit.min) - 1, limit.below),
            ("above", i128::from(limit.max) + 1, limit.above),
        ];
        for (end, n, expected) in outside {
            let name = format!("l{i:02}-{end}");
            docs.push(route(&name, limit, n, false));
            cases.push((name, limit, limit.text(n), expected));
        }
    }
    // What is rendered of them (defaults, clipped values) loads too.
    let stderrs = render_and_check(&docs.join("---\n"));
    for stderr in &stderrs {
        for (name, limit, text, expected) in &cases {
            let lines = lines_of(stderr, name);
            let what = format!("{} = {text}", limit.setting);
            let setting = limit.setting.replace("[]", "[0]");
            let line = lines
                .iter()
                .find(|l| l.contains(&setting))
                .unwrap_or_else(|| panic!("{what}: no message naming {setting}: {lines:?}"));
            match expected {
                OutOfRange::Ignored => assert!(
                    line.starts_with("warning:") && line.contains("invalid value"),
                    "{what}: {line}"
                ),
                OutOfRange::Clipped => assert!(
                    line.starts_with("warning:") && line.contains("clipped to"),
                    "{what}: {line}"
                ),
                OutOfRange::Rejected => assert!(
                    line.starts_with("rejected:") && line.contains("ValidationFailed"),
                    "{what}: {line}"
                ),
            }
        }
    }
}
