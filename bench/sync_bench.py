"""Benchmark: the daemon's syncs against a real kernel, in a throwaway network namespace (issue: run).

For each backend and size (services × 10 endpoints, bench/workload.py's mix), with the proxier
``proxyctl run`` uses (``daemon.proxier.IptablesProxier`` over ``dataplane``; no API server):
  - first sync on an empty node (full),
  - full sync after a restart with the rules present (a new process, nothing applied by it yet),
  - one EndpointSlice change → rules in the kernel (a partial sync: compile, delta, restore),
  - the delta's restore alone (what the kernel is asked to do), and its size,
  - peak RSS (ru_maxrss) of each daemon process: the first start and the restart are two
    processes, as they are for a real daemon (one process doing both would hold the first
    proxier's freed memory in its allocator and report a peak no daemon has).
Namespaces are named pxctl-bench-* and removed on exit.

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


def _phase(ns: str, backend: str, services: int, phase: str) -> dict:
    """One daemon process's work: ``first`` (a first sync on an empty node) or ``restart`` (a new
    process finding its rules present: full sync, then one EndpointSlice change)."""
    import logging

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from bench.workload import bench_config, bench_node_facts, churn, make_cluster
    from proxyctl.daemon.proxier import IptablesProxier
    from proxyctl.dataplane.iptables import ShellIptables
    from proxyctl.dataplane.nfacct import ensure_counters
    from proxyctl.dataplane.nft_fast import FastNftIptables

    state = make_cluster(services, 10)
    facts, config = bench_node_facts(), bench_config()
    box = {"state": state}
    ipt = FastNftIptables(ShellIptables(backend, netns=ns, timeout=1800, lock_wait=600))  # the lock is machine-wide
    if phase == "first":
        ensure_counters(netns=ns)
    p = IptablesProxier(config=config, facts=facts, ipt=ipt, families=("IPv4",), snapshot=lambda: box["state"])
    t0 = time.perf_counter()
    assert p.sync(full=True)
    out = {"sync_s": time.perf_counter() - t0}
    if phase == "restart":
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
        out["change_s"] = time.perf_counter() - t0
        out["delta_restore_s"] = restores[0][0] if restores else None
        out["delta_lines"] = restores[0][1] if restores else 0
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def _one(backend: str, services: int) -> dict:
    """Both processes against one namespace: a daemon's first start, then its restart."""
    ns = f"pxctl-bench-{secrets.token_hex(4)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        runs = {}
        for phase in ("first", "restart"):
            out = subprocess.run([sys.executable, __file__, "--phase", ns, backend, str(services), phase],
                                 capture_output=True, text=True, check=True).stdout
            runs[phase] = json.loads(out.strip().splitlines()[-1])
        rules = int(subprocess.run(["ip", "netns", "exec", ns, f"iptables-{backend}-save"], capture_output=True,
                                   text=True, check=True).stdout.count("\n-A "))
        first, restart = runs["first"], runs["restart"]
        return {"backend": backend, "services": services, "rules": rules, "first_sync_s": round(first["sync_s"], 2),
                "restart_full_sync_s": round(restart["sync_s"], 2), "endpoint_change_s": round(restart["change_s"], 3),
                "delta_restore_s": None if restart["delta_restore_s"] is None else round(restart["delta_restore_s"], 3),
                "delta_lines": restart["delta_lines"],
                "peak_rss_mb": max(first["peak_rss_mb"], restart["peak_rss_mb"]),
                "peak_rss_first_mb": first["peak_rss_mb"], "peak_rss_restart_mb": restart["peak_rss_mb"],
                "load": round(os.getloadavg()[0], 1)}
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", nargs="+", default=["nft", "legacy"], choices=["nft", "legacy"])
    ap.add_argument("--services", type=int, nargs="+", default=[1000, 5000])
    ap.add_argument("--phase", nargs=4, metavar=("NETNS", "BACKEND", "SERVICES", "PHASE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        ns, backend, services, phase = args.phase
        print(json.dumps(_phase(ns, backend, int(services), phase)))
        return
    print("| backend | services | rules | first sync s | full sync after restart s | one endpoint change s "
          "(delta restore s, lines) | peak RSS MB (first / restart process) | load |")
    print("|---|---|---|---|---|---|---|---|")
    for backend in args.backend:
        for n in args.services:
            r = _one(backend, n)
            print(f"| {r['backend']} | {r['services']} | {r['rules']} | {r['first_sync_s']} | "
                  f"{r['restart_full_sync_s']} | {r['endpoint_change_s']} ({r['delta_restore_s']}, "
                  f"{r['delta_lines']}) | {r['peak_rss_mb']} ({r['peak_rss_first_mb']} / "
                  f"{r['peak_rss_restart_mb']}) | {r['load']} |", flush=True)


if __name__ == "__main__":
    main()
