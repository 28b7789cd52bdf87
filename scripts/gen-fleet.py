#!/usr/bin/env python3
"""Generate a deterministic fleet of Routes with Services and EndpointSlices.

Usage: scripts/gen-fleet.py N [SEED] > fleet.yaml

Mix: 60% edge, 15% plain HTTP, 15% reencrypt, 10% passthrough; 20% of the
Routes are path Routes sharing a host; 5% weighted with an alternate
backend; 3 endpoints per service; one custom certificate per 10 TLS Routes
(generated with the openssl CLI into a temp dir, never committed).
Full benchmarks (issue "Benchmarks and speed at scale") replace this with a
Rust generator; this one exists to measure `check` at scale.
"""
import os
import random
import subprocess
import sys
import tempfile


def make_cert(tmp, host):
    key = os.path.join(tmp, host + ".key")
    crt = os.path.join(tmp, host + ".crt")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-out", crt, "-days", "3650", "-subj", "/CN=" + host,
         "-addext", "subjectAltName=DNS:" + host],
        check=True, capture_output=True)
    return open(crt).read(), open(key).read()


def block(text, indent):
    return "\n".join(" " * indent + line for line in text.strip().splitlines())


def main():
    n = int(sys.argv[1])
    rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
    tmp = tempfile.mkdtemp()
    out = sys.stdout
    certs = {}
    tls_count = 0
    for i in range(n):
        ns = "ns%d" % (i % 200)
        name = "r%d" % i
        svc = "svc%d" % i
        roll = rng.random()
        term = "edge" if roll < 0.60 else "http" if roll < 0.75 else "reencrypt" if roll < 0.90 else "passthrough"
        path = None
        host = "%s.%s.apps.example.com" % (name, ns)
        if term != "passthrough" and rng.random() < 0.20:
            host = "shared%d.%s.apps.example.com" % (i // 4, ns)
            path = "/p%d/api" % i
        spec = ["  host: " + host]
        if path:
            spec.append("  path: " + path)
        spec += ["  to:", "    kind: Service", "    name: " + svc, "    weight: 100"]
        if rng.random() < 0.05:
            spec += ["  alternateBackends:", "  - kind: Service", "    name: %s-b" % svc, "    weight: 20"]
        spec += ["  port:", "    targetPort: http"]
        if term != "http":
            spec += ["  tls:", "    termination: " + term, "    insecureEdgeTerminationPolicy: Redirect"]
            if term in ("edge", "reencrypt"):
                tls_count += 1
                if tls_count % 10 == 0 and not path:
                    crt, key = make_cert(tmp, host)
                    spec += ["    certificate: |", block(crt, 6), "    key: |", block(key, 6)]
        out.write("---\napiVersion: route.openshift.io/v1\nkind: Route\nmetadata:\n  name: %s\n  namespace: %s\n"
                  "  creationTimestamp: \"2026-01-01T00:%02d:%02dZ\"\nspec:\n%s\n" % (name, ns, (i // 60) % 60, i % 60, "\n".join(spec)))
        for s in [svc] + (["%s-b" % svc] if "alternateBackends" in "\n".join(spec) else []):
            out.write("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n" % (s, ns))
            eps = "".join("- addresses: [\"10.%d.%d.%d\"]\n  conditions:\n    ready: true\n  targetRef:\n    kind: Pod\n    name: %s-%d\n"
                          % (1 + (i >> 16) % 200, (i >> 8) % 256, (i * 3 + k) % 250 + 1, s, k) for k in range(3))
            out.write("---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-x\n  namespace: %s\n  labels:\n    kubernetes.io/service-name: %s\naddressType: IPv4\nports:\n- name: http\n  port: 8080\nendpoints:\n%s" % (s, ns, s, eps))


if __name__ == "__main__":
    main()
