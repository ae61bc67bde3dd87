#!/usr/bin/env python3
"""Benchmark: how long ``proxyctl compile`` takes, how much memory it needs, and how long the kernel
takes to load what it produces.

For each size N (services, each with ``--endpoints`` endpoints, from ``bench/workload.py``):

1. In ``--repeat`` fresh Python processes (best reported): build the synthetic ClusterState, then
   time build_views, options_for + compile_ruleset, and render_restore: everything ``proxyctl
   compile`` does once its inputs are loaded, cold as the CLI always runs it, with its CPU time and
   the time spent in the garbage collector. Peak memory is ru_maxrss after that compile: the
   kernel's high-water mark is reset (``/proc/self/clear_refs``) just before it, so it is the
   compile's peak; "compile MB" is that peak minus the RSS after imports and the ClusterState (the
   baseline), "peak MB" the absolute peak of the process.
2. The payload is loaded into a fresh network namespace per measurement (``pxctl-bench-<random>``,
   always deleted, Ctrl-C included), after creating the nfacct objects it names:
   ``iptables-legacy-restore --noflush --counters -w`` and ``iptables-nft-restore -w`` (without
   --noflush: with it the nft backend is quadratic; ``--nft-noflush`` adds that measurement for
   N <= 1000 only). Afterwards ``iptables-*-save`` checks the rule count (and is timed).

Nothing here touches the root network namespace. Run as root for the restore part (``--no-restore``
skips it). ``--profile`` runs cProfile over the compile instead and prints the top functions.

    python bench/compile_bench.py --services 1000 10000 30000
    python bench/compile_bench.py --services 10000 --json
    python bench/compile_bench.py --services 10000 --profile
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmark the working tree, not an installed copy

NETNS_PREFIX = "pxctl-bench-"
NFACCT_COUNTERS = ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts")
# Targets from the issue, at 10k services x 10 endpoints (about 320k rules).
TARGET = {"services": 10000, "endpoints": 10, "compile_s": 3.0, "peak_mb": 400.0}
REFERENCE = "a bare string generator: 1.2 s and 142 MB on the reference machine"
NFT_NOFLUSH_MAX = 1000
MB = 1024 * 1024


# --------------------------------------------------------------------------- the compile (subprocess)

def _rss_now() -> int:
    """Current resident set size in bytes (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes


def _reset_peak() -> bool:
    """Reset the high-water RSS that ru_maxrss reports to the current RSS (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class GcTimer:
    """Time spent in the cyclic garbage collector, per generation (gc.callbacks): wall and CPU."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.cpu = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._t = self._c = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t, self._c = time.perf_counter(), time.process_time()
        else:
            gen = info["generation"]
            self.seconds[gen] += time.perf_counter() - self._t
            self.cpu[gen] += time.process_time() - self._c
            self.count[gen] += 1

    def __enter__(self) -> GcTimer:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self)


def worker(args: argparse.Namespace) -> int:
    """One size, in this (fresh) process: JSON on stdout, the payload written to ``args.payload``.

    The first run is cold, as ``proxyctl compile`` always is (module-level caches such as the
    rendered-option cache start empty); ``--warm`` more runs in the same process show what a
    long-running proxy's later syncs would take.
    """
    from bench.workload import bench_config, bench_node, bench_node_facts, make_cluster
    from proxyctl.backends.iptables import compile_ruleset, options_for
    from proxyctl.brain.build import build_views
    from proxyctl.rules.iptables.render import render_restore

    family = args.family
    families = ("IPv4", "IPv6") if args.dual_stack else (family,)
    t = time.perf_counter()
    state = make_cluster(args.worker_services, args.endpoints, seed=args.seed, families=families)
    config = bench_config(families)
    facts = bench_node_facts(families=families)
    node = bench_node(state, facts.name)
    zone = node.zone if node else ""
    build_s = time.perf_counter() - t
    gc.collect()
    if args.gc == "freeze":
        gc.freeze()  # what a long-running proxy could do once its inputs are loaded
    baseline = _rss_now()
    peak_before = _maxrss()
    peak_reset = _reset_peak()

    def once():
        if args.gc == "off":
            gc.disable()
        try:
            with GcTimer() as gct:
                c0, t0 = _cpu(), time.perf_counter()
                views = build_views(state, family, facts.name, zone)
                t1 = time.perf_counter()
                opts = options_for(config, facts, family, node)
                ruleset = compile_ruleset(views, opts)
                t2 = time.perf_counter()
                payload = render_restore(ruleset)
                t3 = time.perf_counter()
                cpu = _cpu() - c0
        finally:
            gc.enable()
        times = {"views_s": t1 - t0, "compile_s": t2 - t1, "render_s": t3 - t2, "total_s": t3 - t0,
                 "cpu_s": cpu, "gc_s": sum(gct.seconds), "gc_cpu_s": sum(gct.cpu), "gc_collections": gct.count}
        return times, views, ruleset, payload

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile(time.process_time) if args.profile_clock == "cpu" else cProfile.Profile()
        prof.enable()
        times, views, ruleset, payload = once()
        prof.disable()
        if args.profile_out:
            prof.dump_stats(args.profile_out)
        print(f"# cProfile of the compile: {args.worker_services} services x {args.endpoints} endpoints, "
              f"{ruleset.rule_count()} rules, {times['total_s']:.2f} s wall, {times['cpu_s']:.2f} s CPU under the "
              f"profiler (views {times['views_s']:.2f} / compile {times['compile_s']:.2f} / render "
              f"{times['render_s']:.2f} wall), of which {times['gc_cpu_s']:.2f} s CPU in the garbage collector, "
              f"{times['gc_collections']} collections (gen 0/1/2), attributed by cProfile to whatever allocated "
              f"when it ran; clock: {args.profile_clock}", file=sys.stderr)
        stats = pstats.Stats(prof, stream=sys.stderr)
        stats.sort_stats("tottime").print_stats(args.profile_top)
        stats.sort_stats("cumulative").print_stats(args.profile_top)
        return 0

    cold, views, ruleset, payload = once()
    peak = _maxrss()
    rules = ruleset.rule_count()
    chains = sum(len(t.chains) for t in ruleset.tables.values())
    with open(args.payload, "w") as f:
        f.write(payload)
    result = {
        "services": args.worker_services,
        "endpoints_per_service": args.endpoints,
        "family": family,
        "service_ports": len(views),
        "rules": rules,
        "chains": chains,
        "payload_bytes": len(payload.encode()),
        "payload_lines": payload.count("\n"),
        "cluster_build_s": build_s,
        "baseline_rss_mb": baseline / MB,
        "peak_rss_mb": peak / MB,
        "compile_rss_mb": (peak - baseline) / MB,
        "peak_reset": peak_reset,  # False: the peak may be the ClusterState build's, not the compile's
        "peak_before_compile_mb": peak_before / MB,
        "gc": args.gc,
        "cold": cold,
    }
    del views, ruleset, payload
    warm = []
    for _ in range(args.warm):
        gc.collect()
        times, *_ = once()
        warm.append(times)
    result["warm"] = warm
    json.dump(result, sys.stdout)
    return 0


# --------------------------------------------------------------------------- the kernel (network namespaces)

class Netns:
    """A fresh network namespace ``pxctl-bench-<random>``, deleted on exit however the block ends."""

    def __init__(self) -> None:
        self.name = f"{NETNS_PREFIX}{secrets.token_hex(4)}"

    def __enter__(self) -> str:
        try:
            _run(["ip", "netns", "add", self.name])
        except BaseException:
            self._delete()
            raise
        return self.name

    def __exit__(self, *exc) -> None:
        self._delete()

    def _delete(self) -> None:
        if os.path.exists(f"/run/netns/{self.name}"):
            subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)
        if os.path.exists(f"/run/netns/{self.name}"):
            print(f"warning: could not delete network namespace {self.name}", file=sys.stderr)


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()[:500]}")
    return proc


def _timed(argv: list[str], *, stdin=None, timeout: float) -> tuple[float, tuple[float, float], str]:
    """Run ``argv`` (ours: killed if we are interrupted); (wall s, child (user, system) CPU s, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: {err.strip()[:500]}")
    return wall, cpu, out


def measure_restore(payload: str, backend: str, flags: list[str], expected_rules: int, *, timeout: float,
                    verify: bool) -> dict:
    """Load ``payload`` into a fresh namespace with iptables-<backend>-restore; time it (and the save)."""
    with Netns() as ns, open(payload) as f:
        for counter in NFACCT_COUNTERS:
            _run(["ip", "netns", "exec", ns, "nfacct", "add", counter])
        argv = ["ip", "netns", "exec", ns, f"iptables-{backend}-restore", *flags]
        wall, cpu, _ = _timed(argv, stdin=f, timeout=timeout)
        out = {"argv": " ".join(argv[4:]), "restore_s": wall, "restore_cpu_s": sum(cpu),
               "restore_user_s": cpu[0], "restore_sys_s": cpu[1]}
        if verify:
            save_wall, _, text = _timed(["ip", "netns", "exec", ns, f"iptables-{backend}-save"], timeout=timeout)
            loaded = sum(1 for line in text.splitlines() if line.startswith("-A "))
            out.update(save_s=save_wall, rules_loaded=loaded)
            if loaded != expected_rules:
                raise RuntimeError(f"{backend}: {loaded} rules in the namespace after restore, "
                                   f"payload has {expected_rules}")
        return out


# --------------------------------------------------------------------------- the driver

def _loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _worker_argv(n: int, args: argparse.Namespace, *extra: str) -> list[str]:
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker-services", str(n), "--endpoints",
            str(args.endpoints), "--seed", str(args.seed), "--family", args.family, "--gc", args.gc, *extra]
    return argv + (["--dual-stack"] if args.dual_stack else [])


def run_size(n: int, args: argparse.Namespace, workdir: str) -> dict:
    """Compile ``n`` services in ``--repeat`` fresh processes (best cold run reported, largest peak
    RSS), then time loading the payload into fresh namespaces."""
    payload = os.path.join(workdir, f"payload-{n}.txt")
    runs = []
    for i in range(args.repeat):
        if args.wait_idle:
            _wait_idle(args.busy_load, args.wait_idle)
        load_before = _loadavg()
        print(f"[{n} services] compile {i + 1}/{args.repeat} (load {load_before[0]})...", file=sys.stderr,
              flush=True)
        _, _, out = _timed(_worker_argv(n, args, "--payload", payload, "--warm", str(args.warm)),
                           timeout=args.timeout)
        run = json.loads(out)
        run["load_before"] = load_before
        runs.append(run)
        print(f"[{n} services] {run['rules']} rules, compile {run['cold']['total_s']:.2f} s "
              f"(cpu {run['cold']['cpu_s']:.2f}, gc {run['cold']['gc_s']:.2f}), peak {run['peak_rss_mb']:.0f} MB",
              file=sys.stderr, flush=True)
    best = min(runs, key=lambda r: r["cold"]["total_s"])
    result = {k: v for k, v in best.items() if k not in ("cold", "warm")}
    result.update({k: best["cold"][k] for k in ("views_s", "compile_s", "render_s", "total_s", "cpu_s", "gc_s",
                                                  "gc_cpu_s", "gc_collections")})
    for key in ("peak_rss_mb", "compile_rss_mb"):
        result[key] = max(r[key] for r in runs)
    result["peak_reset"] = all(r["peak_reset"] for r in runs)
    warm = [w for r in runs for w in r["warm"]]
    result["warm_total_s"] = min((w["total_s"] for w in warm), default=None)
    result["runs"] = [{"cold": r["cold"], "warm": r["warm"], "peak_rss_mb": r["peak_rss_mb"],
                       "compile_rss_mb": r["compile_rss_mb"], "load_before": r["load_before"]} for r in runs]
    if args.restore:
        measurements = [("legacy", "legacy", ["--noflush", "--counters", "-w"]), ("nft", "nft", ["-w"])]
        if args.nft_noflush:
            if n <= NFT_NOFLUSH_MAX:
                measurements.append(("nft_noflush", "nft", ["--noflush", "-w"]))
            else:
                print(f"[{n} services] not measuring nft --noflush above {NFT_NOFLUSH_MAX} services "
                      "(quadratic: minutes to hours)", file=sys.stderr)
        for label, backend, flags in measurements:
            tries = []
            for _ in range(args.restore_repeat):
                print(f"[{n} services] {label} restore...", file=sys.stderr, flush=True)
                load = _loadavg()
                m = measure_restore(payload, backend, flags, result["rules"], timeout=args.timeout,
                                    verify=args.verify)
                m["load_before"] = load
                tries.append(m)
                print(f"[{n} services] {label} restore {m['restore_s']:.2f} s (user {m['restore_user_s']:.2f}, "
                      f"sys {m['restore_sys_s']:.2f})",
                      file=sys.stderr, flush=True)
            result[label] = min(tries, key=lambda m: m["restore_s"]) | {"tries": [m["restore_s"] for m in tries]}
    if args.keep_payloads:
        os.makedirs(args.keep_payloads, exist_ok=True)
        os.replace(payload, os.path.join(args.keep_payloads, os.path.basename(payload)))
    else:
        os.unlink(payload)
    result["load_after"] = _loadavg()
    # Our own restores raise the load too, so judge by the load before the compile and by whether the
    # compile got a CPU to itself (CPU time close to wall time).
    result["busy"] = result["load_before"][0] > args.busy_load or result["cpu_s"] < 0.85 * result["total_s"]
    return result


def _wait_idle(threshold: float, limit: float) -> None:
    """Wait (at most ``limit`` seconds) until the 1-minute load average is below ``threshold``."""
    deadline = time.monotonic() + limit
    if os.getloadavg()[0] > threshold:
        print(f"waiting for the 1-minute load ({os.getloadavg()[0]:.2f}) to fall below {threshold}...",
              file=sys.stderr, flush=True)
    while os.getloadavg()[0] > threshold and time.monotonic() < deadline:
        time.sleep(5)


def _fmt_s(m: dict | None) -> str:
    return "-" if not m else f"{m['restore_s']:.2f}"


def _source_state() -> dict:
    """Which proxyctl was measured: the commit, and whether proxyctl/ had uncommitted changes."""
    def git(*argv: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True)
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    dirty = [line[3:] for line in git("status", "--porcelain", "--", "proxyctl").splitlines()]
    describe = f"proxyctl at {commit or 'unknown commit'}" + (f" + uncommitted {', '.join(dirty)}" if dirty else "")
    return {"commit": commit, "dirty": dirty, "describe": describe}


def markdown(results: list[dict], args: argparse.Namespace, source: dict) -> str:
    cores = os.cpu_count() or 1
    gc_note = "" if args.gc == "default" else f", gc {args.gc}"
    lines = [
        f"proxyctl compile benchmark: {args.endpoints} endpoints per service, {args.family}, seed {args.seed}, "
        f"best of {args.repeat} fresh processes{gc_note}; {cores} CPUs; Python {sys.version.split()[0]}; "
        f"{source['describe']}",
        "",
        "| services | rules | compile s (views / compile / render) | cpu s (gc) | compile MB | peak MB "
        "| legacy restore s | nft restore s | load 1m before |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        flag = " (busy)" if r["busy"] else ""
        lines.append(
            f"| {r['services']} | {r['rules']} | {r['total_s']:.2f} ({r['views_s']:.2f} / {r['compile_s']:.2f} / "
            f"{r['render_s']:.2f}) | {r['cpu_s']:.2f} ({r['gc_cpu_s']:.2f}) | {r['compile_rss_mb']:.0f} | "
            f"{r['peak_rss_mb']:.0f} | "
            f"{_fmt_s(r.get('legacy'))} | {_fmt_s(r.get('nft'))} | "
            f"{r['load_before'][0]:.2f}{flag} |")
    notes = []
    for r in results:
        if r.get("nft_noflush"):
            notes.append(f"- nft restore WITH --noflush at {r['services']} services (quadratic; measured at "
                         f"<= {NFT_NOFLUSH_MAX} only): {r['nft_noflush']['restore_s']:.2f} s")
        if not r["peak_reset"]:
            notes.append(f"- {r['services']}: peak RSS could not be reset before the compile; "
                         "the peak may be the cluster build's")
    lines += [""] + notes if notes else []
    lines += ["", "compile s = build_views + options_for/compile_ruleset + render_restore (wall, best run); "
              "cpu s = its CPU time (well below compile s: it waited for a CPU, the machine was busy), "
              "(gc) = the CPU time of it spent in the garbage collector; "
              "compile MB = peak RSS of the compile minus the RSS after imports and building the ClusterState; "
              "peak MB = absolute peak RSS of the process."]
    target = [r for r in results if r["services"] == TARGET["services"] and r["endpoints_per_service"]
              == TARGET["endpoints"]]
    lines.append("")
    lines.append(f"Target at {TARGET['services']} x {TARGET['endpoints']} (~320k rules): compile <= "
                 f"{TARGET['compile_s']:.0f} s and <= {TARGET['peak_mb']:.0f} MB ({REFERENCE}).")
    for r in target:
        ok_t = r["total_s"] <= TARGET["compile_s"]
        ok_m = r["peak_rss_mb"] <= TARGET["peak_mb"]
        ok_c = r["cpu_s"] <= TARGET["compile_s"]
        lines.append(f"  measured: {r['total_s']:.2f} s wall {'OK' if ok_t else 'OVER'} ({r['cpu_s']:.2f} s CPU "
                     f"{'OK' if ok_c else 'OVER'}), peak {r['peak_rss_mb']:.0f} MB "
                     f"{'OK' if ok_m else 'OVER'} (of which the compile {r['compile_rss_mb']:.0f} MB, "
                     f"the ClusterState and imports {r['baseline_rss_mb']:.0f} MB), {r['rules']} rules")
    if any(r["busy"] for r in results):
        lines.append(f"\n(busy) = 1-minute load above {args.busy_load} before the compile, or its CPU time under 85% "
                     "of its wall time: other work was competing for the CPUs; rerun for clean figures "
                     "(--wait-idle helps).")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, nargs="+", default=[1000, 10000, 30000], metavar="N",
                   help="cluster sizes to measure (default: 1000 10000 30000)")
    p.add_argument("--endpoints", type=int, default=10, help="endpoints per service (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="workload seed (default: 0)")
    p.add_argument("--family", choices=("IPv4", "IPv6"), default="IPv4", help="family compiled (default: IPv4)")
    p.add_argument("--dual-stack", action="store_true", help="dual-stack services (the IPv4 view is compiled)")
    p.add_argument("--repeat", type=int, default=3,
                   help="compiles per size, each in a fresh process; the best is reported (default: 3)")
    p.add_argument("--warm", type=int, default=1,
                   help="extra compiles in the same process after the cold one (JSON warm_total_s; default: 1)")
    p.add_argument("--restore-repeat", type=int, default=1,
                   help="restores per size and backend, each into a fresh namespace; best reported (default: 1)")
    p.add_argument("--no-restore", dest="restore", action="store_false",
                   help="skip the iptables-restore measurements (no root needed)")
    p.add_argument("--no-verify", dest="verify", action="store_false",
                   help="do not iptables-save afterwards to check the rule count")
    p.add_argument("--nft-noflush", action="store_true",
                   help=f"also time iptables-nft-restore --noflush (only for N <= {NFT_NOFLUSH_MAX})")
    p.add_argument("--gc", choices=("default", "freeze", "off"), default="default",
                   help="garbage collector during the compile: as is (default, what proxyctl does), "
                        "gc.freeze() the loaded inputs first, or gc.disable() around the compile")
    p.add_argument("--keep-payloads", metavar="DIR", help="keep the restore payloads in DIR")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    p.add_argument("--json-out", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--busy-load", type=float, default=1.0,
                   help="1-minute load average above which a measurement is flagged busy (default: 1.0)")
    p.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                   help="before each size, wait up to SECONDS for the load to fall below --busy-load")
    p.add_argument("--timeout", type=float, default=3600, help="seconds per subprocess (default: 3600)")
    p.add_argument("--profile", action="store_true",
                   help="cProfile the compile of each size instead (to stderr); no restore")
    p.add_argument("--profile-top", type=int, default=25, help="functions listed by --profile (default: 25)")
    p.add_argument("--profile-clock", choices=("wall", "cpu"), default="wall",
                   help="what --profile measures: wall time (default) or process CPU time (immune to other load, "
                        "but each clock read is a system call: small functions look about 3x dearer)")
    p.add_argument("--profile-out", metavar="FILE", help="with --profile: also write the pstats data to FILE")
    # Internal: one size in a fresh process.
    p.add_argument("--worker-services", type=int, help=argparse.SUPPRESS)
    p.add_argument("--payload", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1 or args.restore_repeat < 1 or args.warm < 0:
        p.error("--repeat and --restore-repeat must be at least 1, --warm at least 0")
    return args


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker_services is not None:
        return worker(args)
    if args.profile:
        for n in args.services:
            argv = _worker_argv(n, args, "--profile", "--profile-top", str(args.profile_top),
                                "--profile-clock", args.profile_clock)
            if args.profile_out:
                argv += ["--profile-out", args.profile_out]
            print(f"load average before: {_loadavg()}; {_source_state()['describe']}", file=sys.stderr)
            subprocess.run(argv, check=True)
        return 0
    if args.restore and os.geteuid() != 0:
        print("the restore measurements need root (network namespaces); use --no-restore to skip them",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)  # so the namespaces are deleted on kill too
    signal.signal(signal.SIGHUP, _raise_interrupt)
    source = _source_state()
    results = []
    with tempfile.TemporaryDirectory(prefix="pxctl-bench-") as workdir:
        try:
            for n in args.services:
                results.append(run_size(n, args, workdir))
        except KeyboardInterrupt:
            print("interrupted; network namespaces deleted", file=sys.stderr)
            if not results:
                return 130
    doc = json.dumps({"endpoints_per_service": args.endpoints, "family": args.family, "seed": args.seed,
                      "repeat": args.repeat, "gc": args.gc, "busy_load": args.busy_load, "cpus": os.cpu_count(),
                      "python": sys.version.split()[0], "source": source, "target": TARGET,
                      "results": results}, indent=2)
    if args.json_out:
        with open(args.json_out, "w") as f:
            f.write(doc + "\n")
    if args.json:
        print(doc)
    else:
        print(markdown(results, args, source))
    return 0


if __name__ == "__main__":
    sys.exit(main())
