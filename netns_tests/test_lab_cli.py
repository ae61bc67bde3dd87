"""``proxyctl lab up/down`` and ``trace --live`` as a user runs them, and the lab's cleanup promises:
nothing is left after a failure, a Ctrl-C or a SIGTERM while building, and ``lab down --all``
finds a crashed run's leftovers by their marker (never by name) and leaves other namespaces alone.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest

from netns_tests.lab_fixtures import ALPHA, BACKENDS, CLUSTER, CONFIG, LAB_PREFIX, ROOT, lab_name, run_cli
from proxyctl.errors import KernelError
from proxyctl.lab import registry
from proxyctl.lab.lab import Lab, destroy
from proxyctl.lab.servers import is_our_server

pytest_plugins = ["netns_tests.conftest_lab"]

DOCS_ANSWER = re.compile(r"^pod=(web-\d) peer=10\.244\.1\.254:\d+ local=(10\.244\.\d+\.\d+):8080$")


def lab_namespaces(name: str) -> list[str]:
    """Namespaces carrying lab ``name``'s marker."""
    return sorted(ns for ns, owner in registry.marked_namespaces().items() if owner == name)


def live_report(*args: str) -> dict:
    """``proxyctl trace --live ARGS -o json``'s report, checked to agree.

    The CLI's verdict is at its fixed alpha (1e-3): a correct build fails its chi-square test
    about once in a thousand runs (exit 3). Held to the lab tests' level instead (ALPHA², as
    observe() with its resample): any other disagreement fails, the chi-square one only when
    p <= ALPHA²."""
    done = run_cli(*args, check=False)
    assert done.returncode in (0, 3), f"proxyctl {' '.join(args)} exited {done.returncode}:\n{done.stderr}"
    report = json.loads(done.stdout)
    assert done.returncode == (0 if report["agrees"] else 3), "exit 3 exactly when the report disagrees"
    if not report["agrees"]:
        chi2_only = all(d.startswith("the observed distribution differs") for d in report["disagreements"])
        assert chi2_only and report["disagreements"], report["disagreements"]
        assert report["chiSquare"]["pValue"] > ALPHA ** 2, report["disagreements"]
    return report


def assert_gone(name: str, pids: list[int]) -> None:
    assert lab_namespaces(name) == []
    assert not [ns for ns in os.listdir(registry.NETNS_DIR) if f"-{name}-" in ns], "no namespace of the lab is left"
    assert registry.read(name) is None, "the lab's record is gone"
    assert not [pid for pid in pids if is_our_server(pid, name)], "every server ended"


@pytest.mark.parametrize("backend", BACKENDS)
def test_lab_up_curl_trace_live_and_down_all(backend):
    """`lab up` then the curl docs/lab.md shows, `trace --live`, a disagreement, `lab down --all`"""
    name = lab_name(f"cli{backend}")
    up = run_cli("lab", "up", "-f", "examples/lab/cluster.yaml", "--config", "examples/lab/kube-proxy-config.yaml",
                 "--backend", backend, "--name", name)
    try:
        assert f"lab {name} is up: iptables mode on the {backend} backend" in up.stdout
        curl = next(line.strip() for line in up.stdout.splitlines() if line.strip().startswith("ip netns exec")
                    and " curl " in line)
        assert curl.endswith("curl -s http://10.96.0.10:80/"), curl
        seen = set()
        for _ in range(20):  # all on one of the three pods: 3**-19 (12 curls: 3**-11, 6e-6 a backend)
            done = subprocess.run(shlex.split(curl), capture_output=True, text=True, timeout=10, check=False)
            assert done.returncode == 0, done.stderr
            m = DOCS_ANSWER.match(done.stdout.strip())
            assert m, f"not the answer docs/lab.md shows: {done.stdout!r}"
            seen.add(m.group(1))
        assert len(seen) >= 2, "a ClusterIP spreads connections over its endpoints"

        trace = next(line.strip() for line in up.stdout.splitlines() if line.strip().startswith("proxyctl trace"))
        args = shlex.split(trace)[1:] + ["-n", "90", "-o", "json"]
        report = live_report(*args)
        assert report["live"]["backend"] == backend and report["live"]["node"] == "node-a"
        assert {c["pod"] for c in report["categories"]} == {"web-0", "web-1", "web-2"}
        assert all(p["conntrackDNAT"] == p["destination"] for p in report["probeResults"])

        # the same through two namespaces named by hand (no lab needed)
        namespaces = registry.read(name).namespaces
        report = live_report("trace", "--live", "10.96.0.10:80", "--client-netns", namespaces["client-node-a"],
                             "--node-netns", namespaces["node-a"], "-n", "30", "-o", "json")
        assert report["live"]["clientIP"] == "10.244.1.254"
        assert report["live"]["backend"] == backend, "detected as kube-proxy's wrapper does"

        # a pod whose server is gone: the kernel still sends it a third of the connections, the
        # prediction says it answers; the pod refuses them: a disagreement, printed, exit 3
        record = registry.read(name)
        web2 = next(s for s in record.servers if s.pod == "web-2")
        os.kill(web2.pid, signal.SIGTERM)  # a process this test's lab started
        deadline = time.monotonic() + 30  # gone before probing: a server still answering means no disagreement
        while is_our_server(web2.pid, name):
            assert time.monotonic() < deadline, "web-2's server did not end after SIGTERM"
            time.sleep(0.02)
        bad = run_cli("trace", "--live", "10.96.0.10:80", "--from", "client-node-a", "--lab", name, "-n", "60",
                      check=False)
        assert bad.returncode == 3, bad.stdout + bad.stderr
        assert "DISAGREEMENT" in bad.stdout and "REJECT" in bad.stdout
        assert "probes went where the prediction never goes: REJECT" in bad.stdout
    finally:
        pids = [s.pid for s in (registry.read(name) or registry.LabRecord(name, backend)).servers]
        down = run_cli("lab", "down", "--all")
    assert f"lab {name}: removed 22 namespaces" in down.stdout
    assert_gone(name, pids)
    assert "no labs" in run_cli("lab", "list").stdout or name not in run_cli("lab", "list").stdout


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupted_build_leaves_nothing(how):
    """Ctrl-C or SIGTERM while `lab up` builds: everything made so far is removed"""
    name = lab_name(f"int{how[:4]}")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "proxyctl", "lab", "up", "-f", CLUSTER, "--config", CONFIG,
                             "--name", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len([n for n in os.listdir(registry.NETNS_DIR) if f"-{name}-" in n]) < 4:
            time.sleep(0.01)
        assert proc.poll() is None, "still building when interrupted"
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole foreground group we started
        else:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    assert "Traceback" not in err, err
    assert_gone(name, [])


def test_failure_while_building_leaves_nothing(monkeypatch):
    """A step that fails while building (here: the pods' servers) removes the half-built lab"""
    name = lab_name("fail")

    def broken(self):
        raise KernelError("servers would not start (injected)")

    monkeypatch.setattr(Lab, "start_servers", broken)
    with pytest.raises(KernelError, match="injected"):
        Lab.up([CLUSTER], config_path=CONFIG, name=name, prefix=LAB_PREFIX)
    assert_gone(name, [])


def test_down_all_finds_leftovers_by_marker_only(netns_factory):
    """`lab down --all` finds a crashed run's namespaces and servers by marker, and spares others"""
    decoy = netns_factory("lab-decoy")  # a namespace like a lab's, without the marker
    name = lab_name("crash")
    lab = Lab.up([CLUSTER], config_path=CONFIG, name=name, prefix=LAB_PREFIX)
    pids = list(lab.server_pids.values())
    namespaces = list(lab.namespaces.values())
    registry.remove(name)  # the run died and its record is lost: only the markers are left
    try:
        assert lab_namespaces(name) == sorted(namespaces)
        down = run_cli("lab", "down", "--all")
        assert f"lab {name}: removed {len(namespaces)} namespaces, stopped {len(pids)} servers" in down.stdout
    finally:
        destroy(name)  # idempotent: a no-op when `down --all` did its job
    assert_gone(name, pids)
    assert decoy in os.listdir(registry.NETNS_DIR), "a namespace without the marker is never removed"


def test_usage_errors_touch_nothing():
    """Bad usage: exit 2 with a message, nothing created"""
    before = (registry.marked_namespaces(), registry.record_names())  # others' namespaces come and go meanwhile
    missing = run_cli("lab", "up", "-f", "examples/lab/no-such-file.yaml", check=False)
    assert missing.returncode == 2 and "error:" in missing.stderr
    no_from = run_cli("trace", "--live", "10.96.0.10:80", check=False)
    assert no_from.returncode == 2 and "--from" in no_from.stderr
    both = run_cli("lab", "down", check=False)
    assert both.returncode == 2
    assert (registry.marked_namespaces(), registry.record_names()) == before
