#!/usr/bin/env python3
"""Generate the benchmark fleet: N Routes with Services and EndpointSlices.

Usage: scripts/gen-fleet.py N [SEED] > fleet.yaml

Kept for old instructions; the generator is `routegen-bench gen` (library:
src/fleet.rs, mix and caching documented there and in BENCHMARKS.md). This
wrapper runs it with cargo.
"""
import os
import subprocess
import sys


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.strip().splitlines()[2])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cmd = ["cargo", "run", "--quiet", "--release", "--bin", "routegen-bench", "--",
           "gen", sys.argv[1], "--seed", sys.argv[2] if len(sys.argv) > 2 else "1"]
    sys.exit(subprocess.call(cmd, cwd=root))


if __name__ == "__main__":
    main()
