"""Fixtures and helpers for the lab tests (real kernel, real packets; root needed).

    lab            module-scoped: the lab of examples/lab/ up on one iptables backend (params nft
                   and legacy), torn down when the module is done, even when a test failed
    observe(...)   ``trace --live`` through the library: probes, conntrack, the static tracer on
                   the node's live rules; one fresh resample when only the chi-square test failed
    run_cli(...)   ``python -m proxyctl ...`` in a subprocess (what a user types)

Lab namespaces carry the conftest prefix (``pxctl-test-lab-...``) and each lab's marker; the lab
removes them itself (Lab.down), the conftest's registry never sees them.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from netns_tests.conftest import NETNS_PREFIX
from proxyctl.lab.lab import Lab
from proxyctl.lab.live import LiveReport, lab_vantage, live_trace

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lab"
CLUSTER = str(EXAMPLE / "cluster.yaml")
CONFIG = str(EXAMPLE / "kube-proxy-config.yaml")
MASQUERADE_ALL = str(EXAMPLE / "masquerade-all.yaml")
BACKENDS = ("nft", "legacy")
LAB_PREFIX = f"{NETNS_PREFIX}lab-"
ALPHA = 1e-4


def lab_name(label: str) -> str:
    return f"{label}-{secrets.token_hex(3)}"


@pytest.fixture(scope="module", params=BACKENDS)
def lab(request) -> Iterator[Lab]:
    with Lab.up([CLUSTER], config_path=CONFIG, backend=request.param, name=lab_name(f"t{request.param}"),
                prefix=LAB_PREFIX) as built:
        yield built


def observe(lab: Lab, sender: str, dst: str, port: int, protocol: str = "tcp", count: int = 60, *,
            kind: str = "connect", timeout: float = 1.0, resample: bool = True) -> LiveReport:
    """Probe and compare. A correct build fails the chi-square test at level ALPHA; one fresh
    resample when that is the only disagreement makes a false failure about ALPHA² (never)."""
    report = live_trace(lab_vantage(lab, sender, dst), dst, port, protocol, count, kind=kind, timeout=timeout,
                        alpha=ALPHA)
    only_chi2 = not report.agrees and not report.comparison.unexpected and all(
        d.startswith("the observed distribution differs") for d in report.disagreements)
    if resample and only_chi2:
        report = live_trace(lab_vantage(lab, sender, dst), dst, port, protocol, count, kind=kind, timeout=timeout,
                            alpha=ALPHA)
    return report


def explain(report: LiveReport) -> str:
    """What a failing assertion shows: the table and every disagreement."""
    lines = [f"{report.vantage.client} → {report.dst}:{report.port}/{report.protocol} on {report.vantage.node} "
             f"({report.backend.value}), p={report.comparison.p_value:.3g}"]
    lines += [f"  {c.category} ({c.pod}): predicted {c.predicted:.3f} masq={c.predicted_masquerade}, observed "
              f"{c.observed}, masqueraded {c.masqueraded}, peers {', '.join(c.peers)}" for c in report.categories]
    lines += [f"  ✗ {d}" for d in report.disagreements]
    lines += [f"  warning: {w}" for w in report.warnings]
    return "\n".join(lines)


def observed(report: LiveReport) -> dict[str, int]:
    return dict(report.observed())


def pods_seen(report: LiveReport) -> set[str]:
    return {p.answer.pod for p in report.probes if p.answer}


def run_cli(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess:
    """``proxyctl ARGS`` as a user runs it (this checkout first on the path)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run([sys.executable, "-m", "proxyctl", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(ROOT), check=False)
    assert "Traceback" not in done.stderr, done.stderr
    if check:
        assert done.returncode == 0, f"proxyctl {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    return done
