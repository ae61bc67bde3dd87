"""``proxyctl apply`` and ``proxyctl cleanup`` as a user meets them, with the kernel replaced by fakes:
what they print and their exit codes (0 done, 1 a kernel command failed, 2 bad usage or input).
The same commands run for real in netns_tests/test_apply.py and test_cleanup.py.
"""

from __future__ import annotations

import pytest

from proxyctl.cli import apply_cmd, cleanup_cmd
from proxyctl.cli.main import main
from proxyctl.dataplane import apply as apply_mod
from proxyctl.dataplane.fake_iptables import FakeIptables
from proxyctl.dataplane.nfacct import NfacctState
from proxyctl.rules.iptables.model import Opt, Rule
from tests.test_cli_compile import DEMO_ARGS


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


@pytest.fixture
def fake_node(monkeypatch):
    """apply and cleanup against one FakeIptables per backend, nfacct with both counters, no namespace check."""
    node = {"nft": FakeIptables("nft"), "legacy": FakeIptables("legacy")}
    monkeypatch.setattr(apply_cmd, "check_netns", lambda netns: None)
    monkeypatch.setattr(cleanup_cmd, "check_netns", lambda netns: None)
    monkeypatch.setattr(apply_cmd, "ShellIptables", lambda backend, **kw: node[backend.value])
    monkeypatch.setattr(cleanup_cmd, "ShellIptables", lambda backend, **kw: node[backend.value])
    monkeypatch.setattr(apply_cmd, "ensure_counters", lambda **kw: NfacctState(
        True, ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"), ("localhost_nps_accepted_pkts",)))
    monkeypatch.setattr(cleanup_cmd, "cleanup_node", _cleanup_iptables_only)
    return node


def _cleanup_iptables_only(iptables, **kw):
    from proxyctl.dataplane.cleanup import cleanup_iptables

    return [line for ipt in iptables for family in ("IPv4", "IPv6") for line in cleanup_iptables(ipt, family)]


def test_apply_prints_what_it_did(capsys, fake_node):
    code, out, err = run(capsys, "apply", *DEMO_ARGS, "--netns", "n1", "--iptables-backend", "legacy")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "iptables backend: legacy (chosen with --iptables-backend)",
        "nfacct: created localhost_nps_accepted_pkts; counters present: ct_state_invalid_dropped_pkts, "
        "localhost_nps_accepted_pkts",
        "IPv4: filter 7 rules in 6 chains, nat 99 rules in 35 chains; created 11 chains, prepended 14 jump rules; "
        "deleted 0 stale chains",
        "IPv6: filter 3 rules in 5 chains, nat 5 rules in 4 chains; created 11 chains, prepended 14 jump rules; "
        "deleted 0 stale chains",
    ]
    assert fake_node["nft"].restores == []
    code, out, _ = run(capsys, "apply", *DEMO_ARGS, "--netns", "n1", "--iptables-backend", "legacy")
    assert "canaries and jump rules already there" in out.splitlines()[2]


def test_apply_failure_exits_1_with_the_rejected_line(capsys, fake_node, monkeypatch):
    compile_good = apply_mod.compile_iptables

    def compile_bad(inputs, family, prefix="KUBE-"):
        rs = compile_good(inputs, family, prefix=prefix)
        rs.tables["nat"].append("KUBE-SERVICES", Rule((Opt("-d", "192.0.2.9"),), "KUBE-SVC-MISSING"))
        return rs

    monkeypatch.setattr(apply_mod, "compile_iptables", compile_bad)
    code, out, err = run(capsys, "apply", *DEMO_ARGS, "--iptables-backend", "nft")
    assert code == 1
    assert "IPv4:" not in out, "no family was synced"
    lines = err.splitlines()
    assert lines[0].startswith("error: iptables-nft-restore (IPv4) rejected line ")
    assert lines[0].endswith(" (table nat): Chain 'KUBE-SVC-MISSING' does not exist")
    assert any(line.startswith("error:   > ") and "-j KUBE-SVC-MISSING" in line for line in lines)
    assert lines[-2:] == ["error: filter was applied; nat kept its previous rules.",
                          "error: The next sync must be a full one."]


@pytest.mark.parametrize("args, message", [
    (["apply"], "give the objects to apply with -f FILE"),
    (["apply", *DEMO_ARGS, "--iptables-backend", "iptables"], "Invalid value for '--iptables-backend'"),
    (["apply", *DEMO_ARGS, "--netns", "pxctl-no-such-namespace"],
     "network namespace 'pxctl-no-such-namespace' does not exist"),
    (["apply", *DEMO_ARGS, "--netns", "../etc"], "network namespace '../etc' does not exist"),
    (["apply", "-f", "/no/such/file.yaml", "--node-facts", DEMO_ARGS[-1]], "/no/such/file.yaml"),
    (["cleanup", "--netns", "pxctl-no-such-namespace"], "network namespace 'pxctl-no-such-namespace' does not exist"),
    (["cleanup", "--iptables-backend", "both"], "Invalid value for '--iptables-backend'"),
])
def test_bad_usage_exits_2_before_touching_anything(capsys, args, message):
    code, out, err = run(capsys, *args)
    assert code == 2 and message in err and out == ""


def test_apply_of_an_unimplemented_mode_is_bad_input(capsys, tmp_path, fake_node):
    config = tmp_path / "ipvs.yaml"
    config.write_text("apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: ipvs\n")
    code, _, err = run(capsys, "apply", *DEMO_ARGS[:2], "--config", str(config), "--node-facts", DEMO_ARGS[-1])
    assert code == 2 and "not implemented" in err
    assert fake_node["nft"].restores == fake_node["legacy"].restores == []


def test_cleanup_after_apply_then_nothing_to_do(capsys, fake_node):
    assert run(capsys, "apply", *DEMO_ARGS, "--iptables-backend", "nft")[0] == 0
    code, out, _ = run(capsys, "cleanup")
    assert code == 0
    assert out.splitlines()[:3] == ["nft IPv4 mangle: deleted 0 jump rule(s) and 1 chain(s)",
                                    "nft IPv4 nat: deleted 3 jump rule(s) and 36 chain(s)",
                                    "nft IPv4 filter: deleted 9 jump rule(s) and 6 chain(s)"]
    assert run(capsys, "cleanup") == (0, "nothing to clean up\n", "")
