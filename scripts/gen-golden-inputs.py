#!/usr/bin/env python3
"""Write the input side of the golden cases: testdata/<case>/input/*.yaml and
testdata/<case>/args. Certificates come from testdata/certs/ (made once with
the openssl CLI for these tests only; see testdata/certs/README.md).
Expected trees are produced by `UPDATE_GOLDEN=1 cargo test --test golden`.
"""
import os
import shutil
import textwrap

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testdata")
CERTS = os.path.join(ROOT, "certs")


def pem(name):
    return open(os.path.join(CERTS, name)).read().strip()


def lit(text, indent=6):
    return "|\n" + textwrap.indent(text.strip(), " " * indent)


def route(ns, name, host=None, svc=None, created="2026-01-01T00:00:00Z", path=None, tls=None,
          annotations=None, port=None, alternates=None, weight=None, wildcard=None, subdomain=None, uid=None):
    svc = svc or name
    lines = ["apiVersion: route.openshift.io/v1", "kind: Route", "metadata:", f"  name: {name}", f"  namespace: {ns}",
             f'  creationTimestamp: "{created}"']
    if uid:
        lines.append(f"  uid: {uid}")
    if annotations:
        lines.append("  annotations:")
        for k, v in annotations.items():
            lines.append(f"    {k}: {v}")
    lines.append("spec:")
    if host is not None:
        lines.append(f"  host: {host}")
    if subdomain:
        lines.append(f"  subdomain: {subdomain}")
    if path:
        lines.append(f"  path: {path}")
    if wildcard:
        lines.append(f"  wildcardPolicy: {wildcard}")
    lines += ["  to:", "    kind: Service", f"    name: {svc}"]
    if weight is not None:
        lines.append(f"    weight: {weight}")
    if alternates:
        lines.append("  alternateBackends:")
        for a, w in alternates:
            lines += ["  - kind: Service", f"    name: {a}", f"    weight: {w}"]
    if port is not None:
        lines += ["  port:", f"    targetPort: {port}"]
    if tls:
        lines.append("  tls:")
        for k, v in tls.items():
            lines.append(f"    {k}: {v}")
    return "\n".join(lines) + "\n"


def service(ns, name, ports=(("http", 80, 8080),)):
    lines = ["apiVersion: v1", "kind: Service", "metadata:", f"  name: {name}", f"  namespace: {ns}", "spec:", "  ports:"]
    for pname, port, target in ports:
        lines += [f"  - name: {pname}", f"    port: {port}", f"    targetPort: {target}"]
    return "\n".join(lines) + "\n"


def slice_(ns, svc, addrs, ports=(("http", 8080, None),), name=None, family="IPv4", ready=None, pods=True):
    """addrs: list of address strings or (address, ready) tuples."""
    lines = ["apiVersion: discovery.k8s.io/v1", "kind: EndpointSlice", "metadata:", f"  name: {name or svc + '-1'}",
             f"  namespace: {ns}", "  labels:", f"    kubernetes.io/service-name: {svc}", f"addressType: {family}", "ports:"]
    for pname, port, proto in ports:
        lines.append(f"- port: {port}")
        if pname:
            lines.append(f"  name: {pname}")
        if proto:
            lines.append(f"  appProtocol: {proto}")
    lines.append("endpoints:")
    for i, a in enumerate(addrs):
        r = True
        if isinstance(a, tuple):
            a, r = a
        lines.append(f'- addresses: ["{a}"]')
        if r is not None:
            lines += ["  conditions:", f"    ready: {'true' if r else 'false'}"]
        if pods:
            lines += ["  targetRef:", "    kind: Pod", f"    name: {svc}-{i}", f"    namespace: {ns}"]
    return "\n".join(lines) + "\n"


def backend(ns, svc, addrs, **kw):
    return [service(ns, svc), slice_(ns, svc, addrs, **kw)]


CASES = {}


def case(name, docs, args=()):
    CASES[name] = (docs, list(args))


EDGE_WWW = {"termination": "edge", "certificate": lit(pem("www.crt")), "key": lit(pem("www.key")),
            "caCertificate": lit(pem("ca.crt"))}

case("http-basic", [route("web", "site", "site.example.com"), *backend("web", "site", ["10.0.0.1", "10.0.0.2"])])
case("edge-default-cert", [route("web", "site", "site.example.com", tls={"termination": "edge"}),
                           *backend("web", "site", ["10.0.0.1"])])
case("edge-policy-allow", [route("web", "site", "site.example.com", tls={"termination": "edge", "insecureEdgeTerminationPolicy": "Allow"}),
                           *backend("web", "site", ["10.0.0.1", "10.0.0.2"])])
case("edge-policy-redirect", [route("web", "site", "site.example.com", tls={"termination": "Edge", "insecureEdgeTerminationPolicy": "Redirect"}),
                              *backend("web", "site", ["10.0.0.1"])])
case("edge-policy-none-legacy-disable", [route("web", "site", "site.example.com", tls={"termination": "edge", "insecureEdgeTerminationPolicy": "Disable"}),
                                         *backend("web", "site", ["10.0.0.1"])])
case("edge-unique-cert-h2", [route("shop", "www", "www.example.com", tls=EDGE_WWW), *backend("shop", "www", ["10.0.1.1", "10.0.1.2"])])
case("edge-shared-cert-no-h2", [
    route("shop", "a", "a.example.com", tls={"termination": "edge", "certificate": lit(pem("shared.crt")), "key": lit(pem("shared.key"))}),
    route("shop", "b", "b.example.com", tls={"termination": "edge", "certificate": lit(pem("shared.crt")), "key": lit(pem("shared.key"))}),
    *backend("shop", "a", ["10.0.1.1"]), *backend("shop", "b", ["10.0.1.2"])])
case("edge-cert-equals-default", [
    route("shop", "d", "d.example.com", tls={"termination": "edge", "certificate": lit(pem("default.crt")), "key": lit(pem("default.key"))}),
    *backend("shop", "d", ["10.0.1.1"])])
case("edge-disable-http2", [route("shop", "www", "www.example.com", tls=EDGE_WWW), *backend("shop", "www", ["10.0.1.1"])],
     ["--disable-http2"])
case("reencrypt-destination-ca", [
    route("pay", "api", "secure.example.com", port="https",
          tls={"termination": "reencrypt", "certificate": lit(pem("secure.crt")), "key": lit(pem("secure.key")),
               "destinationCACertificate": lit(pem("destca.crt"))}),
    service("pay", "api", (("https", 443, 8443),)), slice_("pay", "api", ["10.0.2.1", "10.0.2.2"], ports=(("https", 8443, None),))])
case("reencrypt-service-ca", [
    route("pay", "api", "api.example.com", port="https", tls={"termination": "reencrypt"}, alternates=[("api-v2", 50)]),
    service("pay", "api", (("https", 443, 8443),)), slice_("pay", "api", ["10.0.2.1"], ports=(("https", 8443, None),)),
    service("pay", "api-v2", (("https", 443, 8443),)), slice_("pay", "api-v2", ["10.0.2.9"], ports=(("https", 8443, None),))],
     ["--service-ca-file", "testdata/certs/svcca.crt"])
case("reencrypt-no-verification", [
    route("pay", "api", "api.example.com", port="https", tls={"termination": "reencrypt", "insecureEdgeTerminationPolicy": "Allow"}),
    service("pay", "api", (("https", 443, 8443),)), slice_("pay", "api", ["10.0.2.1"], ports=(("https", 8443, None),))])
case("passthrough-none", [route("vault", "vault", "vault.example.com", tls={"termination": "passthrough"}),
                          *backend("vault", "vault", ["10.0.3.1", "10.0.3.2", "10.0.3.3"])])
case("passthrough-redirect", [route("vault", "vault", "vault.example.com", tls={"termination": "passthrough", "insecureEdgeTerminationPolicy": "Redirect"}),
                              *backend("vault", "vault", ["10.0.3.1"])])
case("weights-worked-example", [
    route("ab", "app", "ab.example.com", svc="a", weight=20, alternates=[("b", 10)]),
    *backend("ab", "a", ["10.1.0.1", "10.1.0.2"]), *backend("ab", "b", ["10.1.1.1", "10.1.1.2", "10.1.1.3", "10.1.1.4"])])
case("weights-one-active-service", [
    route("ab", "app", "ab.example.com", svc="a", weight=50, alternates=[("b", 0)]),
    *backend("ab", "a", ["10.1.0.1", "10.1.0.2", "10.1.0.3"]), *backend("ab", "b", ["10.1.1.1"])])
case("weights-all-zero", [
    route("ab", "app", "ab.example.com", svc="a", weight=0, alternates=[("b", 0)]),
    route("ab", "tcp", "tcp.example.com", svc="a", weight=0, tls={"termination": "passthrough"}),
    *backend("ab", "a", ["10.1.0.1"]), *backend("ab", "b", ["10.1.1.1"])])
case("weights-zero-dropped-for-tcp", [
    route("ab", "tcp", "tcp.example.com", svc="a", weight=100, alternates=[("b", 0), ("c", 50)], tls={"termination": "passthrough"}),
    route("ab", "http", "http.example.com", svc="a", weight=100, alternates=[("b", 0), ("c", 50)]),
    *backend("ab", "a", ["10.1.0.1"]), *backend("ab", "b", ["10.1.1.1"]), *backend("ab", "c", ["10.1.2.1", "10.1.2.2"])])
case("alternate-backends-three", [
    route("ab", "app", "ab.example.com", svc="a", weight=10, alternates=[("b", 20), ("c", 30), ("d", 256)]),
    *backend("ab", "a", ["10.1.0.1"]), *backend("ab", "b", ["10.1.1.1"]), *backend("ab", "c", ["10.1.2.1"]),
    *backend("ab", "d", ["10.1.3.1", "10.1.3.2"])])
MULTI = (("http", 8080, None), ("metrics", 9090, None), (None, 7000, None))
case("target-port-named-numeric-none", [
    route("tp", "named", "named.example.com", svc="multi", port="metrics"),
    route("tp", "numeric", "numeric.example.com", svc="multi", port=8080),
    route("tp", "all", "all.example.com", svc="multi"),
    route("tp", "nomatch", "nomatch.example.com", svc="multi", port="grpc"),
    service("tp", "multi", (("http", 80, 8080), ("metrics", 9090, 9090), ("", 7000, 7000))),
    slice_("tp", "multi", ["10.2.0.1", "10.2.0.2"], ports=MULTI)])
case("path-precedence", [
    route("p", "root", "p.example.com", created="2026-01-01T00:00:01Z"),
    route("p", "api", "p.example.com", path="/api", created="2026-01-01T00:00:02Z"),
    route("p", "api-v1", "p.example.com", path="/api/v1", created="2026-01-01T00:00:03Z"),
    route("p", "api-slash", "p.example.com", path="/api/", created="2026-01-01T00:00:04Z"),
    route("p", "apix", "p.example.com", path="/apix", created="2026-01-01T00:00:05Z"),
    route("p", "deep", "p.example.com", path="/a/b/c/d", created="2026-01-01T00:00:06Z"),
    route("p", "other-root-slash", "q.example.com", path="/", created="2026-01-01T00:00:07Z"),
    *[d for s in ["root", "api", "api-v1", "api-slash", "apix", "deep", "other-root-slash"] for d in backend("p", s, ["10.3.0.%d" % (1 + len(s))])]])
case("wildcard-and-exact", [
    route("w", "wild", "www.wild.example.com", wildcard="Subdomain", tls={"termination": "edge", "certificate": lit(pem("wild.crt")), "key": lit(pem("wild.key"))}),
    route("w", "exact", "exact.wild.example.com"),
    route("w", "wild-api", "www.wild.example.com", wildcard="Subdomain", path="/api"),
    *backend("w", "wild", ["10.4.0.1"]), *backend("w", "exact", ["10.4.0.2"]), *backend("w", "wild-api", ["10.4.0.3"])],
     ["--allow-wildcard-routes"])
case("wildcard-refused-by-default", [route("w", "wild", "www.wild.example.com", wildcard="Subdomain"), *backend("w", "wild", ["10.4.0.1"])])
case("ownership-namespaces", [
    route("first", "owner", "shared.example.com", created="2026-01-01T00:00:00Z"),
    route("second", "intruder", "shared.example.com", path="/x", created="2026-01-02T00:00:00Z"),
    route("first", "sibling", "shared.example.com", path="/y", created="2026-01-03T00:00:00Z"),
    *backend("first", "owner", ["10.5.0.1"]), *backend("second", "intruder", ["10.5.0.2"]), *backend("first", "sibling", ["10.5.0.3"])])
case("ownership-disabled", [
    route("first", "owner", "shared.example.com", created="2026-01-01T00:00:00Z"),
    route("second", "other", "shared.example.com", path="/x", created="2026-01-02T00:00:00Z"),
    route("third", "same-path", "shared.example.com", path="/x", created="2026-01-03T00:00:00Z"),
    *backend("first", "owner", ["10.5.0.1"]), *backend("second", "other", ["10.5.0.2"]), *backend("third", "same-path", ["10.5.0.3"])],
     ["--disable-namespace-ownership-check"])
case("ownership-same-path-uid-tiebreak", [
    route("a", "first-by-name", "h.example.com", created="2026-01-01T00:00:00Z", uid="bbbb"),
    route("a", "second-by-name", "h.example.com", created="2026-01-01T00:00:00Z", uid="aaaa"),
    *backend("a", "first-by-name", ["10.5.0.1"]), *backend("a", "second-by-name", ["10.5.0.2"])])
case("ownership-passthrough-exclusive", [
    route("a", "edge", "h.example.com", path="/app", tls={"termination": "edge"}, created="2026-01-01T00:00:00Z"),
    route("a", "pt", "h.example.com", tls={"termination": "passthrough"}, created="2026-01-02T00:00:00Z"),
    route("a", "pt2", "p.example.com", tls={"termination": "passthrough"}, created="2026-01-01T00:00:00Z"),
    route("a", "plain", "p.example.com", path="/plain", created="2026-01-02T00:00:00Z"),
    *backend("a", "edge", ["10.5.0.1"]), *backend("a", "pt", ["10.5.0.2"]), *backend("a", "pt2", ["10.5.0.3"]), *backend("a", "plain", ["10.5.0.4"])])
case("ownership-wildcard-vs-plain", [
    route("a", "wild", "w.d.example.com", wildcard="Subdomain", created="2026-01-01T00:00:00Z"),
    route("b", "plain", "x.d.example.com", created="2026-01-02T00:00:00Z"),
    route("b", "deeper", "x.y.d.example.com", created="2026-01-02T00:00:00Z"),
    *backend("a", "wild", ["10.5.0.1"]), *backend("b", "plain", ["10.5.0.2"]), *backend("b", "deeper", ["10.5.0.3"])],
     ["--allow-wildcard-routes"])
ALL_ANN = {
    "haproxy.router.openshift.io/balance": "leastconn",
    "haproxy.router.openshift.io/timeout": "45s",
    "haproxy.router.openshift.io/timeout-tunnel": "2h",
    "haproxy.router.openshift.io/ip_allowlist": '"192.168.1.0/24 10.0.0.1 2001:db8::/32"',
    "haproxy.router.openshift.io/hsts_header": '"max-age=31536000;includeSubDomains;preload"',
    "haproxy.router.openshift.io/rewrite-target": "/v2/",
    "haproxy.router.openshift.io/rate-limit-connections": '"true"',
    "haproxy.router.openshift.io/rate-limit-connections.concurrent-tcp": '"100"',
    "haproxy.router.openshift.io/rate-limit-connections.rate-tcp": '"200"',
    "haproxy.router.openshift.io/rate-limit-connections.rate-http": '"300"',
    "haproxy.router.openshift.io/pod-concurrent-connections": '"50"',
    "haproxy.router.openshift.io/set-forwarded-headers": "replace",
    "router.openshift.io/cookie_name": "my_session",
    "router.openshift.io/cookie-same-site": "Strict",
    "router.openshift.io/haproxy.health.check.interval": "2500ms",
}
case("annotations-valid", [
    route("ann", "all", "ann.example.com", path="/api", tls={"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect"}, annotations=ALL_ANN),
    route("ann", "nocookie", "nocookie.example.com", annotations={"haproxy.router.openshift.io/disable_cookies": '"true"',
                                                                "haproxy.router.openshift.io/set-forwarded-headers": "never"}),
    route("ann", "tcp", "tcp.example.com", tls={"termination": "passthrough"},
          annotations={"haproxy.router.openshift.io/timeout": "10m", "haproxy.router.openshift.io/balance": "roundrobin",
                       "haproxy.router.openshift.io/ip_whitelist": "203.0.113.7"}),
    *backend("ann", "all", ["10.6.0.1", "10.6.0.2"]), *backend("ann", "nocookie", ["10.6.0.3"]), *backend("ann", "tcp", ["10.6.0.4", "10.6.0.5"])])
BAD_ANN = {
    "haproxy.router.openshift.io/balance": "leastconn; bind :1",
    "haproxy.router.openshift.io/timeout": '"5x"',
    "haproxy.router.openshift.io/timeout-tunnel": '"-1s"',
    "haproxy.router.openshift.io/ip_allowlist": '"not-an-ip"',
    "haproxy.router.openshift.io/hsts_header": '"max-age=abc"',
    "haproxy.router.openshift.io/rewrite-target": '"/x\\ny"',
    "haproxy.router.openshift.io/rate-limit-connections": '"maybe"',
    "haproxy.router.openshift.io/pod-concurrent-connections": '"-5"',
    "haproxy.router.openshift.io/set-forwarded-headers": '"sometimes"',
    "router.openshift.io/cookie_name": '"bad name;"',
    "router.openshift.io/cookie-same-site": '"Sideways"',
    "router.openshift.io/haproxy.health.check.interval": '"soon"',
    "haproxy.router.openshift.io/disable_cookies": '"perhaps"',
}
case("annotations-invalid", [route("ann", "bad", "bad.example.com", tls={"termination": "edge"}, annotations=BAD_ANN),
                             *backend("ann", "bad", ["10.6.0.1", "10.6.0.2"])])
case("ipv6-endpoints", [route("v6", "app", "v6.example.com"),
                        service("v6", "app"), slice_("v6", "app", ["fd00:10::1", "fd00:10::2"], family="IPv6")])
case("endpoint-filtering", [
    route("ep", "app", "ep.example.com"), service("ep", "app"),
    slice_("ep", "app", ["10.7.0.1", ("10.7.0.2", False), ("10.7.0.3", None), "127.0.0.1", "169.254.169.254", "0.0.0.0",
                         "224.0.0.1", "168.63.129.16", "10.7.0.1"]),
    slice_("ep", "app", ["fe80::1", "::1", "fd00:ec2::254", "::ffff:127.0.0.1", "fd00:20::5"], family="IPv6", name="app-v6"),
    "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: app-fqdn\n  namespace: ep\n  labels:\n    kubernetes.io/service-name: app\n"
    "addressType: FQDN\nports:\n- name: http\n  port: 8080\nendpoints:\n- addresses: [\"backend.example.com\"]\n",
    slice_("ep", "app", ["10.7.0.9"], pods=False, name="app-nopod")])
case("endpoints-loopback-allowed", [route("ep", "app", "ep.example.com"), *backend("ep", "app", ["127.0.0.1", "127.0.0.2"])],
     ["--allow-loopback-endpoints"])
case("h2c-app-protocol", [route("grpc", "api", "grpc.example.com", tls={"termination": "edge"}), service("grpc", "api"),
                          slice_("grpc", "api", ["10.8.0.1", "10.8.0.2"], ports=(("http", 8080, "kubernetes.io/h2c"),))])
case("no-endpoints", [route("empty", "app", "empty.example.com"), route("empty", "nosvc", "nosvc.example.com", svc="missing"),
                      service("empty", "app")])
case("cookie-name-flag-and-same-site", [
    route("ck", "edge", "edge.example.com", tls={"termination": "edge"}, annotations={"router.openshift.io/cookie-same-site": "Lax"}),
    route("ck", "allow", "allow.example.com", tls={"termination": "edge", "insecureEdgeTerminationPolicy": "Allow"}),
    route("ck", "plain", "plain.example.com"),
    *backend("ck", "edge", ["10.9.0.1"]), *backend("ck", "allow", ["10.9.0.2"]), *backend("ck", "plain", ["10.9.0.3"])],
     ["--cookie-name", "ROUTEGEN_ID"])
case("host-derivation", [
    route("apps", "sub", None, subdomain="shop"), route("apps", "templated", None), route("apps", "upper", "UPPER.Example.COM"),
    *backend("apps", "sub", ["10.10.0.1"]), *backend("apps", "templated", ["10.10.0.2"]), *backend("apps", "upper", ["10.10.0.3"])],
     ["--router-domain", "apps.example.com", "--hostname-template", "${name}-${namespace}.tmpl.example.com"])
case("domain-lists", [route("d", "ok", "ok.example.com"), route("d", "denied", "x.internal.example.com"), route("d", "outside", "other.org"),
                      *backend("d", "ok", ["10.11.0.1"])],
     ["--allowed-domains", "example.com", "--denied-domains", "internal.example.com"])
LONG = "a" * 63
case("hostile-values", [
    route("evil", "crlf-annotation", "crlf.example.com",
          annotations={"haproxy.router.openshift.io/timeout": '"5s\\n  server evil 6.6.6.6:80"',
                       "haproxy.router.openshift.io/balance": '"roundrobin\\r\\nbackend x"',
                       "router.openshift.io/cookie_name": '"a\\"b"',
                       "haproxy.router.openshift.io/hsts_header": '"max-age=1 %[src]"',
                       "haproxy.router.openshift.io/rewrite-target": '"/#comment"',
                       "haproxy.router.openshift.io/ip_allowlist": '"{{ .Evil }}"'}),
    route("evil", "space-path", "space.example.com", path='"/a b"'),
    route("evil", "quote-path", "quote.example.com", path="'/a\"b'"),
    route("evil", "percent-path", "pct.example.com", path='"/%[src]"'),
    route("evil", "hash-path", "hash.example.com", path='"/a#b"'),
    route("evil", "long-host", ".".join([LONG] * 16)),
    route("evil", "nul-host", '"a\\0b.example.com"'),
    route("evil", "unicode-host", '"bücher.example.com"'),
    route("evil", "braces-path", "braces.example.com", path='"/{{x}}"'),
    route("evil", "ok-path", "fine.example.com", path="/a%20b/c~d"),
    *backend("evil", "crlf-annotation", ["10.12.0.1"]), *backend("evil", "ok-path", ["10.12.0.2"])])


def main():
    for name, (docs, args) in sorted(CASES.items()):
        d = os.path.join(ROOT, name)
        shutil.rmtree(os.path.join(d, "input"), ignore_errors=True)
        os.makedirs(os.path.join(d, "input"), exist_ok=True)
        with open(os.path.join(d, "input", "manifests.yaml"), "w") as f:
            f.write("---\n".join(docs))
        with open(os.path.join(d, "args"), "w") as f:
            f.write("".join(a + "\n" for a in args))
    print(len(CASES), "cases")


if __name__ == "__main__":
    main()
