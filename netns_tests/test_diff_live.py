"""``proxyctl diff`` against real kernels: rules applied by proxyctl diff clean, and each drift someone
inflicts on a node is caught and attributed to its Service (both iptables backends)."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import yaml

from proxyctl.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
FLAGS = ["--config", str(DEMO / "kube-proxy-config.yaml"), "--node-facts", str(DEMO / "node.yaml")]


def sh(ns: str, *argv: str, input: str | None = None) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, text=True,
                          input=input, timeout=60).stdout


def apply(capsys, ns: str, backend: str, manifest: Path) -> None:
    code = main(["apply", "-f", str(manifest), *FLAGS, "--netns", ns, "--iptables-backend", backend])
    _, err = capsys.readouterr()
    assert code == 0, err


def diff(capsys, ns: str, backend: str, manifest: Path = DEMO / "cluster.yaml", *extra: str):
    code = main(["diff", "-f", str(manifest), *FLAGS, "--netns", ns, "--iptables-backend", backend, "-o", "json",
                 *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


@pytest.fixture(params=["nft", "legacy"])
def node(request, netns, capsys):
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
    apply(capsys, netns, request.param, DEMO / "cluster.yaml")
    return netns, request.param


def ipt(backend: str) -> str:
    return f"iptables-{backend}"


def test_applied_rules_diff_clean(capsys, node):
    ns, backend = node
    code, data = diff(capsys, ns, backend)
    assert code == 0, data["services"]


def _rule_line(ns, backend, needle: str) -> str:
    return next(x for x in sh(ns, f"{ipt(backend)}-save", "-t", "nat").splitlines() if needle in x)


def test_deleted_sep_rule(capsys, node):
    ns, backend = node
    line = _rule_line(ns, backend, '"demo/web:http" -m tcp -j DNAT --to-destination 10.244.0.11:8080')
    sh(ns, ipt(backend), "-t", "nat", "-D", *line.split()[1:2], *_args(line))
    code, data = diff(capsys, ns, backend)
    assert code == 1 and list(data["services"]) == ["demo/web:http"]
    assert {f["kind"] for f in data["services"]["demo/web:http"]} >= {"missing-rule"}


def _args(line: str) -> list[str]:
    import shlex

    return shlex.split(line)[2:]


def test_extra_endpoint_chain(capsys, node):
    ns, backend = node
    chain = "KUBE-SEP-AAAAAAAAAAAAAAAA"
    sh(ns, ipt(backend), "-t", "nat", "-N", chain)
    sh(ns, ipt(backend), "-t", "nat", "-A", chain, "-p", "tcp", "-m", "comment", "--comment", "demo/web:http",
       "-j", "DNAT", "--to-destination", "10.244.9.9:8080")
    code, data = diff(capsys, ns, backend)
    assert code == 1
    assert [f["kind"] for f in data["services"]["demo/web:http"]] == ["extra-chain"]


def test_changed_probability(capsys, node):
    ns, backend = node
    line = _rule_line(ns, backend, '"demo/sticky:http -> 10.244.0.41:80" -m statistic')
    args = _args(line)
    chain = line.split()[1]
    sh(ns, ipt(backend), "-t", "nat", "-R", chain, "4", *[a if not a.startswith("0.3333") else "0.25" for a in args])
    code, data = diff(capsys, ns, backend)
    assert code == 1
    (f,) = data["services"]["demo/sticky:http"]
    assert f["kind"] == "changed-rule" and "0.25000000000" in f["live"]


def test_flushed_kube_services(capsys, node):
    ns, backend = node
    sh(ns, ipt(backend), "-t", "nat", "-F", "KUBE-SERVICES")
    code, data = diff(capsys, ns, backend)
    assert code == 1
    assert "missing-rule" in {f["kind"] for f in data["services"]["demo/web:http"]}
    assert any("last rule" in f.get("text", "") for f in data["services"]["node-wide"])


def test_missing_jump_from_prerouting(capsys, node):
    ns, backend = node
    sh(ns, ipt(backend), "-t", "nat", "-D", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals",
       "-j", "KUBE-SERVICES")
    code, data = diff(capsys, ns, backend)
    assert code == 1
    assert [(f["kind"], f["chain"]) for f in data["services"]["node-wide"]] == [("missing-jump", "PREROUTING")]


def test_stale_chain_of_a_deleted_service(capsys, node, tmp_path):
    ns, backend = node
    docs = [d for d in yaml.safe_load_all((DEMO / "cluster.yaml").read_text())
            if d and d["metadata"]["name"] not in ("sticky", "sticky-1")]
    without = tmp_path / "without-sticky.yaml"
    without.write_text(yaml.safe_dump_all(docs))
    code, data = diff(capsys, ns, backend, without)
    assert code == 1 and list(data["services"]) == ["demo/sticky:http"]
    # its chains are stale; its KUBE-SERVICES rule and the endpoints it still reaches are extra
    assert {f["kind"] for f in data["services"]["demo/sticky:http"]} == {"stale-chain", "extra-rule",
                                                                         "endpoint-extra"}


def test_stale_udp_conntrack_entry(capsys, netns, tmp_path):
    """A UDP flow DNATed to an endpoint that the cluster no longer has is reported as stale."""
    ns = netns
    sh(ns, "ip", "link", "set", "lo", "up")
    sh(ns, "ip", "link", "add", "ep0", "type", "veth", "peer", "name", "ep1")
    sh(ns, "ip", "addr", "add", "10.244.0.21/24", "dev", "ep0")
    for link in ("ep0", "ep1"):
        sh(ns, "ip", "link", "set", link, "up")
    sh(ns, "ip", "route", "add", "default", "dev", "ep0")
    apply(capsys, ns, "nft", DEMO / "cluster.yaml")
    code = subprocess.run(["ip", "netns", "exec", ns, "python3", "-c",
                           "import socket\nfor _ in range(30):\n"
                           "    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'q', ('10.96.10.20', 53))"],
                          timeout=30).returncode  # 30 flows: each picks 10.244.0.21 with p=1/2
    assert code == 0
    docs = list(yaml.safe_load_all((DEMO / "cluster.yaml").read_text()))
    for d in docs:
        if d and d.get("kind") == "EndpointSlice" and d["metadata"]["name"] == "dns-np-1":
            d["endpoints"] = [e for e in d["endpoints"] if e["addresses"] != ["10.244.0.21"]]
    moved = tmp_path / "moved.yaml"
    moved.write_text(yaml.safe_dump_all(docs))
    code, data = diff(capsys, ns, "nft", moved, "--ip-family", "IPv4")
    assert code == 1
    found = [f for f in data["services"].get("demo/dns-np:dns-udp", []) if f["kind"] == "stale-conntrack"]
    assert found and "10.244.0.21:5353" in found[0]["text"]
    assert socket  # the client above used a real socket in the namespace
