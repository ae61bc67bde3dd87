"""Benchmark: ``proxyctl diff`` of a node programmed for N services × 10 endpoints (issue: diff).

The node's dump is what ``proxyctl compile --format save`` prints for the cluster (with counters,
as ``iptables-save -c`` shows them), so the diff finds nothing; what is timed is all of a diff's
work after reading its inputs: compile the desired side, parse the node's dump, canonicalise both,
compare. Target at 10k services (≈320k rules): under 10 s.

    python bench/diff_bench.py --services 1000 10000
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.workload import bench_config, bench_node_facts, make_cluster  # noqa: E402
from proxyctl.backends.iptables import compile_ruleset, options_for  # noqa: E402
from proxyctl.backends.iptables.names import ChainNames  # noqa: E402
from proxyctl.backends.iptables.node_state import after_first_sync  # noqa: E402
from proxyctl.brain.build import build_views  # noqa: E402
from proxyctl.diff.compare import compare  # noqa: E402
from proxyctl.diff.ownership import Ownership  # noqa: E402
from proxyctl.rules.iptables.parse import parse_rules  # noqa: E402
from proxyctl.rules.iptables.save import render_save  # noqa: E402


def measure(services: int) -> dict:
    state = make_cluster(services, 10)
    facts, config = bench_node_facts(), bench_config()
    node_dump = render_save(after_first_sync(compile_ruleset(build_views(state, "IPv4", facts.name),
                                                             options_for(config, facts, "IPv4"))))
    node_dump = re.sub(r"^-A ", "[12:3456] -A ", node_dump, flags=re.M)  # as iptables-save -c prints rules

    t0 = time.perf_counter()
    views = build_views(state, "IPv4", facts.name)
    desired = after_first_sync(compile_ruleset(views, options_for(config, facts, "IPv4")))
    t1 = time.perf_counter()
    live = parse_rules(node_dump, source="node").ruleset
    t2 = time.perf_counter()
    report = compare(desired, live, Ownership.from_views(ChainNames(), views))
    t3 = time.perf_counter()
    assert not report.differs, report.findings[:3]
    return {"services": services, "rules": live.rule_count(), "compile_s": round(t1 - t0, 2),
            "parse_s": round(t2 - t1, 2), "compare_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
            "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--services", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args()
    print("| services | rules | compile s | parse s | canonicalise+compare s | total s | load |")
    print("|---|---|---|---|---|---|---|")
    for n in args.services:
        r = measure(n)
        print(f"| {r['services']} | {r['rules']} | {r['compile_s']} | {r['parse_s']} | {r['compare_s']} | "
              f"{r['total_s']} | {r['load']:.1f} |")
    print("target at 10k services: total under 10 s")


if __name__ == "__main__":
    main()
