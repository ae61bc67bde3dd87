"""``proxyctl apply`` into fresh network namespaces, on the nft and the legacy iptables backend.

The oracle is ``proxyctl compile --format save`` for the same inputs: what ``iptables-save`` shows
after the apply, parsed and rendered back with render_save, must equal it table by table (jump
rules, canaries and the nfacct-counting rules included).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxyctl.cli.main import main
from proxyctl.compiler import compile_iptables
from proxyctl.dataplane.errors import RestoreError, failing_line
from proxyctl.dataplane.iptables import ShellIptables
from proxyctl.dataplane.sync import full_sync
from proxyctl.inputs import gather
from proxyctl.node.capabilities import parse_nfacct_list
from proxyctl.rules.iptables.model import Opt, Rule
from proxyctl.rules.iptables.parse import parse_dumps, parse_rules
from proxyctl.rules.iptables.save import save_table_lines

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
CLUSTER, CONFIG, FACTS = str(DEMO / "cluster.yaml"), str(DEMO / "kube-proxy-config.yaml"), str(DEMO / "node.yaml")
BACKENDS = ["nft", "legacy"]
FAMILIES = (("IPv4", "iptables"), ("IPv6", "ip6tables"))
COUNTERS = ["ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"]
# The legacy backend's xtables lock is one file for the whole machine: a long legacy restore in any
# other namespace (another test run, a benchmark) holds it, so the tests wait longer than kube-proxy.
LOCK_WAIT = "60"


def iptables(netns_exec, ns: str, binary: str, *args: str) -> str:
    """An iptables command in ``ns`` that waits for the machine-wide xtables lock."""
    return netns_exec(ns, binary, "-w", LOCK_WAIT, *args, timeout=int(LOCK_WAIT) + 30)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def apply(capsys, ns: str, backend: str, cluster: str = CLUSTER, *extra: str) -> str:
    code, out, err = run(capsys, "apply", "-f", cluster, "--config", CONFIG, "--node-facts", FACTS, "--netns", ns,
                         "--iptables-backend", backend, "--lock-wait", LOCK_WAIT, *extra)
    assert code == 0, err
    return out


def by_table(text: str, family: str) -> dict[str, list[str]]:
    """iptables-save text as {table: render_save lines}; tables holding nothing but empty built-ins are left out."""
    rs = parse_rules(text, family=family).ruleset
    return {name: list(save_table_lines(t, family)) for name, t in rs.tables.items()
            if any(c.rules or not c.builtin for c in t.chains.values())}


def kernel(netns_exec, ns: str, backend: str) -> dict[str, dict[str, list[str]]]:
    return {family: by_table(netns_exec(ns, f"{binary}-{backend}-save"), family) for family, binary in FAMILIES}


def compiled(capsys, cluster: str = CLUSTER) -> dict[str, dict[str, list[str]]]:
    code, out, err = run(capsys, "compile", "-f", cluster, "--config", CONFIG, "--node-facts", FACTS,
                         "--format", "save")
    assert code == 0, err
    dumps = parse_dumps(out)
    return {p.ruleset.family: {n: list(save_table_lines(t, p.ruleset.family)) for n, t in p.ruleset.tables.items()}
            for p in dumps}


def without(tmp_path: Path, service: str) -> str:
    """The demo cluster without one Service and its EndpointSlices, as a file."""
    docs = [d for d in yaml.safe_load_all(Path(CLUSTER).read_text()) if d
            and d.get("metadata", {}).get("name") != service
            and d.get("metadata", {}).get("labels", {}).get("kubernetes.io/service-name") != service]
    path = tmp_path / f"cluster-without-{service}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_apply_gives_what_compile_save_shows(capsys, netns, netns_exec, backend):
    out = apply(capsys, netns, backend)
    assert out.splitlines()[0] == f"iptables backend: {backend} (chosen with --iptables-backend)"
    assert kernel(netns_exec, netns, backend) == compiled(capsys)
    assert list(parse_nfacct_list(netns_exec(netns, "nfacct", "list"))) == COUNTERS
    other = "legacy" if backend == "nft" else "nft"
    assert kernel(netns_exec, netns, other) == {"IPv4": {}, "IPv6": {}}, "the other backend is left alone"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_apply_changes_nothing(capsys, netns, netns_exec, backend):
    apply(capsys, netns, backend)
    first = kernel(netns_exec, netns, backend)
    out = apply(capsys, netns, backend)
    assert kernel(netns_exec, netns, backend) == first
    assert all("canaries and jump rules already there" in line for line in out.splitlines()[2:4])
    jumps = [line for line in first["IPv4"]["filter"] if line.startswith("-A INPUT")]
    assert len(jumps) == len(set(jumps)) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_removed_services_chains_are_deleted_on_the_next_apply(capsys, tmp_path, netns, netns_exec, backend):
    apply(capsys, netns, backend)
    before = set(parse_rules(netns_exec(netns, f"iptables-{backend}-save", "-t", "nat")).ruleset.tables["nat"].chains)
    smaller = without(tmp_path, "sticky")
    out = apply(capsys, netns, backend, smaller)
    assert "deleted 4 stale chains" in out.splitlines()[2]  # KUBE-SVC- and three KUBE-SEP- of demo/sticky
    after = kernel(netns_exec, netns, backend)
    assert after == compiled(capsys, smaller)
    assert len(before - set(parse_rules("\n".join(after["IPv4"]["nat"]) + "\n").ruleset.tables["nat"].chains)) == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_foreign_rules_and_chains_survive_apply(capsys, netns, netns_exec, backend):
    binary = f"iptables-{backend}"
    iptables(netns_exec, netns, binary, "-A", "INPUT", "-s", "1.2.3.4", "-j", "DROP")
    iptables(netns_exec, netns, binary, "-t", "nat", "-N", "CNI-FOO")
    iptables(netns_exec, netns, binary, "-t", "nat", "-A", "CNI-FOO", "-s", "10.88.0.0/16", "-j", "MASQUERADE")
    apply(capsys, netns, backend)
    apply(capsys, netns, backend)
    tables = kernel(netns_exec, netns, backend)["IPv4"]
    assert [line for line in tables["filter"] if line.startswith("-A INPUT")][-1] == "-A INPUT -s 1.2.3.4/32 -j DROP"
    assert ":CNI-FOO - [0:0]" in tables["nat"] and "-A CNI-FOO -s 10.88.0.0/16 -j MASQUERADE" in tables["nat"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_rejected_nat_table_is_left_as_it_was_and_the_next_apply_converges(capsys, tmp_path, netns, netns_exec,
                                                                             backend):
    apply(capsys, netns, backend)
    save_nat = (f"iptables-{backend}-save", "-t", "nat")
    nat_before = netns_exec(netns, *save_nat)
    # A payload that also deletes a stale service, changes filter, and names a counter that does not exist.
    inputs = gather([without(tmp_path, "sticky")], config_path=CONFIG, node_facts_path=FACTS)
    payload = compile_iptables(inputs, "IPv4")
    payload.tables["filter"].append("KUBE-FORWARD", Rule((Opt("-s", "192.0.2.1"),), "DROP"))
    payload.tables["nat"].append("KUBE-SERVICES", Rule(
        (Opt("-d", "192.0.2.2"), Opt("-m", "nfacct"), Opt("--nfacct-name", "pxctl_no_such_counter")), "RETURN"))
    with pytest.raises(RestoreError) as caught:
        full_sync(ShellIptables(backend, netns=netns, timeout=30, lock_wait=int(LOCK_WAIT)), payload)
    e = caught.value
    assert _drop_comments(netns_exec(netns, *save_nat)) == _drop_comments(nat_before)
    assert "-A KUBE-FORWARD -s 192.0.2.1/32 -j DROP" in netns_exec(netns, f"iptables-{backend}-save", "-t", "filter")
    assert e.line == failing_line(e.stderr) and f"line {e.line}" in e.stderr.replace("line: ", "line ")
    assert e.line_text == e.payload.splitlines()[e.line - 1]
    # nft names the rule, legacy the nat COMMIT line; both are in the nat section.
    assert e.line_text in ("-A KUBE-SERVICES -d 192.0.2.2 -m nfacct --nfacct-name pxctl_no_such_counter -j RETURN",
                           "COMMIT")
    assert (e.outcome.applied, e.outcome.failed) == (("filter",), "nat")
    assert "filter was applied; nat kept its previous rules." in e.lines()
    apply(capsys, netns, backend)
    assert kernel(netns_exec, netns, backend) == compiled(capsys)


def _drop_comments(save_text: str) -> list[str]:
    return [line for line in save_text.splitlines() if not line.startswith("#")]


@pytest.mark.parametrize("hint_backend, expected", [(None, "nft"), ("legacy", "legacy"), ("nft", "nft")])
def test_auto_uses_the_backend_the_kubelet_uses(capsys, netns, netns_exec, hint_backend, expected):
    if hint_backend is not None:
        iptables(netns_exec, netns, f"iptables-{hint_backend}", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT")
    out = apply(capsys, netns, "auto")
    assert out.splitlines()[0].startswith(f"iptables backend: {expected} (")
    assert kernel(netns_exec, netns, expected)["IPv4"]["nat"]
    assert "nat" not in kernel(netns_exec, netns, "legacy" if expected == "nft" else "nft")["IPv4"]


def test_node_facts_are_discovered_inside_the_namespace(capsys, tmp_path, netns, netns_exec):
    netns_exec(netns, "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
    netns_exec(netns, "ip", "addr", "add", "192.0.2.77/24", "dev", "eth0")
    netns_exec(netns, "ip", "link", "set", "eth0", "up")
    config = tmp_path / "config.yaml"
    config.write_text(Path(CONFIG).read_text() + 'nodePortAddresses: ["192.0.2.0/24"]\n')
    code, out, err = run(capsys, "apply", "-f", CLUSTER, "--config", str(config), "--netns", netns,
                         "--iptables-backend", "nft", "--lock-wait", LOCK_WAIT)
    assert code == 0, err
    nat = netns_exec(netns, "iptables-nft-save", "-t", "nat").splitlines()
    tail = [line for line in nat if line.startswith("-A KUBE-SERVICES") and line.endswith("-j KUBE-NODEPORTS")]
    assert tail == ['-A KUBE-SERVICES -d 192.0.2.77/32 -m comment --comment "kubernetes service nodeports; NOTE: '
                    'this must be the last rule in this chain" -j KUBE-NODEPORTS']
