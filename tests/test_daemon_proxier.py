"""The proxier on the in-memory iptables: partial syncs land where a full sync lands."""

from __future__ import annotations

from proxyctl.cluster.objects import ClusterState
from proxyctl.config import default_config
from proxyctl.daemon.proxier import IptablesProxier
from proxyctl.dataplane.fake_iptables import FakeIptables
from tests.builders import NODE_FACTS, make_endpoint, make_service, make_slice


class Cluster:
    def __init__(self) -> None:
        self.state = ClusterState()

    def __call__(self) -> ClusterState:
        return self.state


def state(n: int, extra_ep: bool = False) -> ClusterState:
    svcs = tuple(make_service("ns", f"s{i}", f"172.30.0.{i + 1}", type="NodePort", node_port=30000 + i)
                 for i in range(n))
    slices = tuple(make_slice("ns", f"s{i}", [make_endpoint(f"10.1.{i}.1", "test-node")]
                              + ([make_endpoint(f"10.1.{i}.2", "n2")] if extra_ep and i == 3 else []))
                   for i in range(n))
    return ClusterState(svcs, slices)


def proxier(fake, cluster):
    return IptablesProxier(config=default_config(), facts=NODE_FACTS, ipt=fake, families=("IPv4",),
                           snapshot=cluster)


def test_partial_sync_equals_full_sync():
    cluster = Cluster()
    cluster.state = state(10)
    fake = FakeIptables()
    p = proxier(fake, cluster)
    assert p.sync(full=True)
    cluster.state = state(9, extra_ep=True)  # one endpoint added, one service gone
    restores = len(fake.restores)
    assert p.sync(full=False)
    assert len(fake.restores) == restores + 1
    partial = fake.restores[-1].payload
    assert ":KUBE-SERVICES" not in partial and "-D KUBE-SERVICES" in partial  # edited, not rewritten
    full = FakeIptables()
    assert proxier(full, cluster).sync(full=True)
    assert fake.save("IPv4") == full.save("IPv4")


def test_canary_and_failure_force_a_full_sync():
    cluster = Cluster()
    cluster.state = state(2)
    fake = FakeIptables()
    p = proxier(fake, cluster)
    assert p.sync(full=True) and p.canary_ok()
    fake.restore("IPv4", "*mangle\n-X KUBE-PROXY-CANARY\nCOMMIT\n", noflush=True)
    assert not p.canary_ok()
