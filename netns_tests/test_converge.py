"""The daemon's read-then-write full sync leaves exactly what kube-proxy's full sync leaves, whatever
drift the node had (both backends)."""

from __future__ import annotations

import subprocess

import pytest

from proxyctl.backends.iptables import compile_ruleset
from proxyctl.backends.iptables.names import ChainNames
from proxyctl.dataplane.converge import converge
from proxyctl.dataplane.iptables import ShellIptables
from proxyctl.dataplane.nfacct import ensure_counters
from proxyctl.dataplane.sync import full_sync
from proxyctl.rules.iptables.parse import parse_rules
from proxyctl.rules.iptables.save import render_save
from tests.builders import NODE_FACTS, make_endpoint, make_service, make_slice, options, views


def payload():
    svcs = [make_service("ns", f"s{i}", f"172.30.0.{i + 1}", type="NodePort", node_port=30000 + i,
                         session_affinity="ClientIP" if i == 2 else "") for i in range(6)]
    slices = [make_slice("ns", f"s{i}", [make_endpoint(f"10.1.{i}.{j}", "test-node") for j in (1, 2, 3)])
              for i in range(6)]
    return compile_ruleset(views(svcs, slices), options(nfacct=frozenset(NODE_FACTS.nfacct)))


def saved(ns: str, backend: str) -> str:
    text = subprocess.run(["ip", "netns", "exec", ns, f"iptables-{backend}-save"], capture_output=True, text=True,
                          check=True).stdout
    return render_save(parse_rules(text).ruleset)


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_converge_repairs_drift_to_the_full_sync_state(netns_factory, backend):
    want_ns, drift_ns = netns_factory(f"want-{backend}"), netns_factory(f"drift-{backend}")
    rs = payload()
    for ns in (want_ns, drift_ns):
        ensure_counters(netns=ns)
        full_sync(ShellIptables(backend, netns=ns), rs, names=ChainNames())
    run = ["ip", "netns", "exec", drift_ns, f"iptables-{backend}", "-t", "nat"]
    svc = next(line.split()[1] for line in saved(drift_ns, backend).splitlines() if line.startswith("-A KUBE-SVC-"))
    subprocess.run([*run, "-D", svc, "1"], check=True)  # a lost rule
    subprocess.run([*run, "-N", "KUBE-SEP-STALESTALESTALE"], check=True)  # a stale chain
    subprocess.run([*run, "-I", "KUBE-SERVICES", "1", "-d", "10.9.9.9", "-j", "RETURN"], check=True)  # an extra rule
    subprocess.run([*run, "-F", "KUBE-MARK-MASQ"], check=True)  # a flushed chain
    assert saved(drift_ns, backend) != saved(want_ns, backend)
    written = converge(ShellIptables(backend, netns=drift_ns), rs, names=ChainNames())
    assert 0 < written < 20  # only the damage is rewritten
    assert saved(drift_ns, backend) == saved(want_ns, backend)
    assert converge(ShellIptables(backend, netns=drift_ns), rs, names=ChainNames()) == 0  # nothing left to do
