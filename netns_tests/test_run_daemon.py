"""``proxyctl run`` for real: the official client against the test API server, rules in a namespace.

The API server listens on 127.0.0.1 in the test's own namespace (the daemon's client runs there);
everything the daemon programs goes into the test namespace named with --netns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from proxyctl.cli.main import main
from tests.apiserver.server import ApiServer

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"


def demo_objects() -> list[dict]:
    docs = [d for d in yaml.safe_load_all((DEMO / "cluster.yaml").read_text()) if d]
    return [d for d in docs if d["kind"] in ("Service", "EndpointSlice")] + [
        {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "anchor-node", "labels": {}},
         "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.10"}]}}]


@pytest.fixture
def apiserver(tmp_path):
    server = ApiServer(bookmark_interval=0.5).start()
    for obj in demo_objects():
        server.create(obj)
    kubeconfig = server.write_kubeconfig(str(tmp_path / "kubeconfig"))
    yield server, kubeconfig
    server.stop()


def config_file(tmp_path: Path, *, min_sync: str = "1s", sync: str = "30s") -> Path:
    p = tmp_path / "kp.yaml"
    p.write_text("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: iptables\n"
                 "hostnameOverride: anchor-node\nclusterCIDR: 10.244.0.0/16\n"
                 "healthzBindAddress: 127.0.0.1:10256\nmetricsBindAddress: 127.0.0.1:10249\n"
                 f"iptables: {{minSyncPeriod: {min_sync}, syncPeriod: {sync}}}\n"
                 "conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}\n")
    return p


def node_ns(netns: str) -> None:
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "add", "anchor0", "type", "veth", "peer", "name",
                    "anchor1"], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "addr", "add", "192.0.2.10/24", "dev", "anchor0"], check=True)
    for link in ("anchor0", "anchor1"):
        subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", link, "up"], check=True)


def run_once(netns: str, kubeconfig: str, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "proxyctl", "run", "--once", "--config", str(config_file(tmp_path)),
                        "--kubeconfig", kubeconfig, "--netns", netns, "--iptables-backend", "nft"],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr


def diff_exit(capsys, netns: str, manifests: Path) -> int:
    code = main(["diff", "-f", str(manifests), "--config", str(DEMO / "kube-proxy-config.yaml"),
                 "--node-facts", str(DEMO / "node.yaml"), "--netns", netns, "--no-conntrack"])
    out, err = capsys.readouterr()
    print(out, err)  # shown when the test fails
    return code


def test_once_syncs_what_compile_says(capsys, netns, apiserver, tmp_path):
    server, kubeconfig = apiserver
    node_ns(netns)
    run_once(netns, kubeconfig, tmp_path)
    objs = tmp_path / "objects.yaml"
    objs.write_text(yaml.safe_dump_all(demo_objects()))
    assert diff_exit(capsys, netns, objs) == 0


def _save(netns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", netns, "iptables-nft-save", "-t", "nat"], capture_output=True,
                          text=True, check=True).stdout


def _healthz(netns: str) -> tuple[int, dict]:
    code = ("import json,urllib.request,urllib.error\n"
            "try:\n r=urllib.request.urlopen('http://127.0.0.1:10256/healthz',timeout=5); print(r.status); "
            "print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n print(e.code); print(e.read().decode())\n")
    out = subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=30).stdout.splitlines()
    return int(out[0]), json.loads(out[1])


def _get(netns: str, url: str) -> str:
    code = f"import urllib.request\nprint(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True).stdout


def _start_daemon(netns: str, kubeconfig: str, tmp_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "proxyctl", "run", "--config", str(config_file(tmp_path)),
                             "--kubeconfig", kubeconfig, "--netns", netns, "--iptables-backend", "nft"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_rules(netns: str, proc: subprocess.Popen, marker: str) -> float:
    """Wait (up to 60 s) until the node's rules mention ``marker``; returns that deadline."""
    deadline = time.monotonic() + 60
    while marker not in _save(netns):
        assert time.monotonic() < deadline and proc.poll() is None, f"the first sync never wrote {marker!r}"
        time.sleep(0.2)
    return deadline


def test_daemon_follows_changes_within_min_sync_period(netns, apiserver, tmp_path):
    server, kubeconfig = apiserver
    node_ns(netns)
    proc = _start_daemon(netns, kubeconfig, tmp_path)
    try:
        deadline = _wait_for_rules(netns, proc, "demo/web:http cluster IP")
        # The IPv4 rules are in before the sync ends: the IPv6 ones come next, and only then are
        # the sync's metrics and health recorded. Wait for the end of the first sync.
        synced = 'kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}'
        while synced not in (metrics := _get(netns, "http://127.0.0.1:10249/metrics")):
            assert time.monotonic() < deadline and proc.poll() is None, "the first sync's metrics never came"
            time.sleep(0.2)
        status, body = _healthz(netns)
        assert status == 200 and body["healthy"] is True and body["nodeEligible"] is True
        assert "kubeproxy_iptables_ct_state_invalid_dropped_packets_total" in metrics
        assert "kubeproxy_conntrack_reconciler_sync_duration_seconds" in metrics
        assert _get(netns, "http://127.0.0.1:10249/proxyMode").strip() == "iptables"

        sl = server.get("EndpointSlice", "web-1", "demo")
        sl["endpoints"].append({"addresses": ["10.244.9.99"], "conditions": {"ready": True},
                                "nodeName": "other-node"})
        server.update(sl)
        changed = time.monotonic()
        while "10.244.9.99:8080" not in _save(netns):
            # minSyncPeriod is 1 s; 10 s leaves a slow machine room and is still far below the
            # syncPeriod (30 s) at which a daemon that missed the change would resync
            assert time.monotonic() - changed < 10.0, "change not programmed long before syncPeriod"
            time.sleep(0.05)

        server.delete("Service", "no-endpoints", "demo")
        changed = time.monotonic()
        while "demo/no-endpoints" in subprocess.run(["ip", "netns", "exec", netns, "iptables-nft-save"],
                                                    capture_output=True, text=True).stdout:
            assert time.monotonic() - changed < 10.0, "deletion not programmed long before syncPeriod"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
    assert "10.244.9.99:8080" in _save(netns)  # rules stay in place after SIGTERM


def test_diff_from_the_cluster_after_run_once(capsys, netns, apiserver, tmp_path):
    server, kubeconfig = apiserver
    node_ns(netns)
    run_once(netns, kubeconfig, tmp_path)
    args = ["diff", "--kubeconfig", kubeconfig, "--config", str(config_file(tmp_path)), "--node-facts",
            str(DEMO / "node.yaml"), "--hostname-override", "anchor-node", "--netns", netns, "--no-conntrack"]
    assert main(args) == 0, capsys.readouterr()
    server.delete("Service", "sticky", "demo")  # the node now holds a deleted Service's rules
    assert main(args) == 1
    assert "demo/sticky:http" in capsys.readouterr().out


def _udp_send(netns: str, count: int) -> None:
    code = (f"import socket\nfor _ in range({count}):\n"
            "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('10.96.10.20', 53))\n")
    subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code], check=True, timeout=30)


def test_stale_udp_conntrack_entries_are_removed_after_an_endpoint_goes(netns, apiserver, tmp_path):
    """A UDP client keeps working across an endpoint change: entries still pointing at the removed
    endpoint are deleted after the sync, so the next datagram picks a current endpoint."""
    from proxyctl.dataplane.conntrack import list_entries

    server, kubeconfig = apiserver
    node_ns(netns)
    for ip in ("10.244.0.21", "10.244.2.22"):  # both endpoints of demo/dns-np answer locally
        subprocess.run(["ip", "netns", "exec", netns, "ip", "addr", "add", f"{ip}/32", "dev", "anchor0"], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "route", "add", "default", "dev", "anchor0"], check=True)
    proc = _start_daemon(netns, kubeconfig, tmp_path)
    try:
        _wait_for_rules(netns, proc, "demo/dns-np:dns-udp")
        _udp_send(netns, 30)  # 30 flows: each picks 10.244.0.21 with p=1/2

        def to_gone():
            return [e for e in list_entries(netns=netns, protocol="udp") if e.dnat_target == "10.244.0.21:5353"]

        assert to_gone()
        sl = server.get("EndpointSlice", "dns-np-1", "demo")
        sl["endpoints"] = [e for e in sl["endpoints"] if e["addresses"] != ["10.244.0.21"]]
        server.update(sl)
        # a sync after minSyncPeriod (1 s), then the clean-up; well inside the 30 s after which
        # the kernel would forget these unreplied UDP entries by itself
        deadline = time.monotonic() + 15.0
        while to_gone():
            assert time.monotonic() < deadline, "stale conntrack entries were not removed"
            time.sleep(0.1)
        _udp_send(netns, 5)
        targets = {e.dnat_target for e in list_entries(netns=netns, protocol="udp") if e.orig_dport == 53}
        assert targets == {"10.244.2.22:5353"}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
