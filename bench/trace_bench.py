"""Benchmark: parse a node's iptables-save dump and trace packets through it (issue: trace).

For each size (services × 10 endpoints, the mix of bench/workload.py), the dump is what
``proxyctl compile --format save`` prints for that cluster (so it has kube-proxy's jump rules):
  - parse seconds and rules (``parse_rules`` of the whole text),
  - one trace: median milliseconds over 200 packets to distinct cluster IPs (tracer reused),
  - ``--all``: seconds for every service port from a pod, the node and outside, and how many traces.
Targets at 10k services: parse < 3 s, one trace < 20 ms, --all < 60 s.

    python bench/trace_bench.py --services 1000 10000 [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.workload import bench_config, bench_node_facts, make_cluster  # noqa: E402
from proxyctl.backends.iptables import compile_ruleset, options_for  # noqa: E402
from proxyctl.backends.iptables.node_state import after_first_sync  # noqa: E402
from proxyctl.brain.build import build_views  # noqa: E402
from proxyctl.cli.trace_all import rows  # noqa: E402
from proxyctl.rules.iptables.parse import parse_rules  # noqa: E402
from proxyctl.rules.iptables.save import render_save  # noqa: E402
from proxyctl.trace.packet import Packet  # noqa: E402
from proxyctl.trace.session import TraceSession  # noqa: E402


def measure(services: int) -> dict:
    state = make_cluster(services, 10)
    facts, config = bench_node_facts(), bench_config()
    views = build_views(state, "IPv4", facts.name)
    text = render_save(after_first_sync(compile_ruleset(views, options_for(config, facts, "IPv4"))))

    t0 = time.perf_counter()
    parsed = parse_rules(text, source="bench")
    parse_s = time.perf_counter() - t0

    session = TraceSession(facts, {"IPv4": parsed}, {"IPv4": views})
    pod = "10.244.0.2" if config.cluster_cidrs else "10.9.9.9"
    targets = [v for v in views][:200]
    times = []
    for v in targets:
        t0 = time.perf_counter()
        session.trace(Packet(pod, v.cluster_ip, v.protocol.lower(), 40000, v.port))
        times.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    table = rows(session, config)
    all_s = time.perf_counter() - t0
    traces = sum(sum(1 for k in ("pod", "node", "external") if k in r) for r in table)
    return {"services": services, "rules": parsed.ruleset.rule_count(), "dump_mb": round(len(text) / 1e6, 1),
            "parse_s": round(parse_s, 2), "trace_ms_median": round(statistics.median(times) * 1000, 2),
            "trace_ms_max": round(max(times) * 1000, 2), "all_s": round(all_s, 1), "all_traces": traces,
            "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    results = [measure(n) for n in args.services]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print("| services | rules | dump MB | parse s | trace ms (median/max) | --all s (traces) | load |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['services']} | {r['rules']} | {r['dump_mb']} | {r['parse_s']} | "
              f"{r['trace_ms_median']}/{r['trace_ms_max']} | {r['all_s']} ({r['all_traces']}) | {r['load']:.1f} |")
    print("targets at 10k services: parse < 3 s, one trace < 20 ms, --all < 60 s")


if __name__ == "__main__":
    main()
