"""Benchmark: the daemon's syncs against a real kernel, in a throwaway network namespace (issue: run).

For each backend and size (services × 10 endpoints, bench/workload.py's mix), with the proxier
``proxyctl run`` uses (``daemon.proxier.IptablesProxier`` over ``dataplane``; no API server):
  - first sync on an empty node (full),
  - full sync after a restart with the rules present (a new proxier, nothing applied yet),
  - one EndpointSlice change → rules in the kernel (a partial sync: compile, delta, restore),
  - the delta's restore alone (what the kernel is asked to do), and its size,
  - peak RSS of the process (ru_maxrss) after the syncs.
Each size runs in its own subprocess so RSS is per size. Namespaces are named pxctl-bench-* and
removed on exit.

    python bench/sync_bench.py --backend nft legacy --services 1000 5000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _one(backend: str, services: int) -> dict:
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from bench.workload import bench_config, bench_node_facts, churn, make_cluster
    from proxyctl.daemon.proxier import IptablesProxier
    from proxyctl.dataplane.iptables import ShellIptables
    from proxyctl.dataplane.nfacct import ensure_counters
    from proxyctl.dataplane.nft_fast import FastNftIptables

    ns = f"pxctl-bench-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        ensure_counters(netns=ns)
        state = make_cluster(services, 10)
        facts, config = bench_node_facts(), bench_config()
        box = {"state": state}
        ipt = FastNftIptables(ShellIptables(backend, netns=ns, timeout=1800, lock_wait=600))  # the lock is machine-wide

        def proxier() -> IptablesProxier:
            return IptablesProxier(config=config, facts=facts, ipt=ipt, families=("IPv4",),
                                   snapshot=lambda: box["state"])

        p = proxier()
        t0 = time.perf_counter()
        assert p.sync(full=True)
        first = time.perf_counter() - t0
        p = proxier()  # a restart: rules present, nothing known
        t0 = time.perf_counter()
        assert p.sync(full=True)
        restart = time.perf_counter() - t0
        box["state"] = churn(state, 1)
        restores = []
        inner_restore = ipt.restore

        def timed_restore(family, payload, **kw):
            t = time.perf_counter()
            inner_restore(family, payload, **kw)
            restores.append((time.perf_counter() - t, payload.count("\n")))
        ipt.restore = timed_restore
        t0 = time.perf_counter()
        assert p.sync(full=False)
        change = time.perf_counter() - t0
        rules = int(subprocess.run(["ip", "netns", "exec", ns, f"iptables-{backend}-save"], capture_output=True,
                                   text=True, check=True).stdout.count("\n-A "))
        return {"backend": backend, "services": services, "rules": rules, "first_sync_s": round(first, 2),
                "restart_full_sync_s": round(restart, 2), "endpoint_change_s": round(change, 3),
                "delta_restore_s": round(restores[0][0], 3) if restores else None,
                "delta_lines": restores[0][1] if restores else 0,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                "load": round(os.getloadavg()[0], 1)}
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", nargs="+", default=["nft", "legacy"], choices=["nft", "legacy"])
    ap.add_argument("--services", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--one", nargs=2, metavar=("BACKEND", "SERVICES"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], int(args.one[1]))))
        return
    print("| backend | services | rules | first sync s | full sync after restart s | one endpoint change s "
          "(delta restore s, lines) | peak RSS MB | load |")
    print("|---|---|---|---|---|---|---|---|")
    for backend in args.backend:
        for n in args.services:
            out = subprocess.run([sys.executable, __file__, "--one", backend, str(n)], capture_output=True,
                                 text=True, check=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {r['backend']} | {r['services']} | {r['rules']} | {r['first_sync_s']} | "
                  f"{r['restart_full_sync_s']} | {r['endpoint_change_s']} ({r['delta_restore_s']}, "
                  f"{r['delta_lines']}) | {r['peak_rss_mb']} | {r['load']} |", flush=True)


if __name__ == "__main__":
    main()
