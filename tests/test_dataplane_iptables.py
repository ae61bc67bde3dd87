"""The real implementations (ShellIptables, detect_backend, ensure_counters) against a scripted runner:
the exact argv and stdin they produce, and how they read answers and failures.
"""

from __future__ import annotations

import pytest

from proxyctl.dataplane.backend_detect import detect_backend
from proxyctl.dataplane.errors import RestoreError
from proxyctl.dataplane.fake_runner import Expect, ScriptedRunner
from proxyctl.dataplane.iptables import Backend, ShellIptables, tool
from proxyctl.dataplane.nfacct import NfacctState, ensure_counters
from proxyctl.errors import KernelError

NS = "node-a"
MANGLE_EMPTY = "*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\nCOMMIT\n"
MANGLE_HINT = "*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n"
MANGLE_CANARY = "*mangle\n:PREROUTING ACCEPT [0:0]\n:KUBE-KUBELET-CANARY - [0:0]\nCOMMIT\n"
FILTER_2_RULES = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 1.2.3.4/32 -j DROP\n-A INPUT -j ACCEPT\nCOMMIT\n"
NFACCT_BOTH = ("{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = ct_state_invalid_dropped_pkts;\n"
               "{ pkts = 00000000000000000000, bytes = 00000000000000000000 } = localhost_nps_accepted_pkts;\n")


@pytest.mark.parametrize("backend, family, verb, name", [
    ("nft", "IPv4", "save", "iptables-nft-save"), ("legacy", "IPv6", "restore", "ip6tables-legacy-restore"),
])
def test_tool_names(backend, family, verb, name):
    assert tool(backend, family, verb) == name


def test_save_with_and_without_table():
    runner = ScriptedRunner([Expect(("iptables-legacy-save", "-t", "nat"), stdout="*nat\nCOMMIT\n"),
                             Expect(("ip6tables-legacy-save",), stdout="")], netns=NS)
    ipt = ShellIptables("legacy", netns=NS, runner=runner)
    assert ipt.save("IPv4", "nat") == "*nat\nCOMMIT\n"
    assert ipt.save("IPv6") == ""
    runner.assert_done()


def test_restore_argv_and_stdin():
    payload = "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"
    runner = ScriptedRunner([
        Expect(("iptables-nft-restore", "--noflush", "--counters", "-w", "5"), stdin=payload),
        Expect(("ip6tables-nft-restore", "--noflush", "-w", "5"), stdin=payload),
        Expect(("iptables-nft-restore", "-w", "5"), stdin=payload),
        Expect(("iptables-legacy-restore", "--noflush", "-w", "60"), stdin=payload),
    ], netns=NS)
    ipt = ShellIptables(Backend.NFT, netns=NS, runner=runner)
    ipt.restore("IPv4", payload, noflush=True, counters=True)
    ipt.restore("IPv6", payload, noflush=True, counters=False)
    ipt.restore("IPv4", payload, noflush=False)
    ShellIptables("legacy", netns=NS, lock_wait=60, runner=runner).restore("IPv4", payload)
    runner.assert_done()


def test_a_rejected_restore_is_a_restore_error_with_the_named_line():
    payload = "*filter\n:KUBE-FORWARD - [0:0]\nCOMMIT\n*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j NOPE\nCOMMIT\n"
    stderr = "iptables-nft-restore v1.8.9 (nf_tables): Chain 'NOPE' does not exist\nError occurred at line: 7\n"
    runner = ScriptedRunner([Expect(("iptables-nft-restore", "--noflush", "--counters", "-w", "5"), stdin=payload,
                                    returncode=4, stderr=stderr)], netns=NS)
    with pytest.raises(RestoreError) as caught:
        ShellIptables("nft", netns=NS, runner=runner).restore("IPv4", payload, counters=True)
    e = caught.value
    assert (e.line, e.line_text, e.returncode, e.netns, e.family, e.backend) == (7, "COMMIT", 4, NS, "IPv4", "nft")
    assert e.outcome.describe() == "filter was applied; nat kept its previous rules"
    assert isinstance(e.__cause__, KernelError)


def test_scripted_runner_fails_on_unexpected_commands_and_stdin():
    runner = ScriptedRunner([Expect(("iptables-nft-restore", "-w", "5"), stdin="*nat\nCOMMIT\n")], netns=NS)
    with pytest.raises(AssertionError, match="stdin of"):
        runner(("iptables-nft-restore", "-w", "5"), netns=NS, timeout=1, input="*filter\nCOMMIT\n")
    with pytest.raises(AssertionError, match="no more commands"):
        runner(("iptables-nft-save",), netns=NS, timeout=1)


# -- backend detection (kubernetes-sigs/iptables-wrappers) -----------------------------------------

def _detect(nft_mangle=("", ""), legacy=("", ""), nft_all=("", ""), fail=(), reads="all"):
    """Detection with a scripted node; ``reads``: how far the wrapper's steps get ("nft-mangle",
    "legacy" or "all")."""
    script = [Expect(("iptables-nft-save", "-t", "mangle"), stdout=nft_mangle[0]),
              Expect(("ip6tables-nft-save", "-t", "mangle"), stdout=nft_mangle[1])]
    if reads != "nft-mangle":
        script += [Expect(("iptables-legacy-save",), stdout=legacy[0]),
                   Expect(("ip6tables-legacy-save",), stdout=legacy[1])]
    if reads == "all":
        script += [Expect(("iptables-nft-save",), stdout=nft_all[0]),
                   Expect(("ip6tables-nft-save",), stdout=nft_all[1])]
    script = [Expect(e.argv, returncode=1, stderr="boom") if e.argv in fail else e for e in script]
    runner = ScriptedRunner(script, netns=NS)
    d = detect_backend(netns=NS, runner=runner)
    runner.assert_done()
    return d.backend, d.reason


@pytest.mark.parametrize("case, kwargs, backend", [
    ("kubelet hint in nft mangle", {"nft_mangle": (MANGLE_HINT, ""), "reads": "nft-mangle"}, Backend.NFT),
    ("kubelet canary in ip6tables-nft mangle", {"nft_mangle": ("", MANGLE_CANARY), "reads": "nft-mangle"},
     Backend.NFT),
    ("kubelet hint in legacy mangle", {"legacy": (MANGLE_HINT, ""), "reads": "legacy"}, Backend.LEGACY),
    ("hint in legacy beats more nft rules", {"legacy": ("", MANGLE_CANARY), "reads": "legacy"}, Backend.LEGACY),
    ("no hint: legacy has more rules", {"legacy": (FILTER_2_RULES, "")}, Backend.LEGACY),
    ("no hint: nft has more rules", {"nft_all": (FILTER_2_RULES, "")}, Backend.NFT),
    ("no hint: a tie goes to nft", {"legacy": (FILTER_2_RULES, ""), "nft_all": ("", FILTER_2_RULES)},
     Backend.NFT),
    ("empty node: nft", {}, Backend.NFT),
    ("a hint chain outside mangle does not count",
     {"legacy": (FILTER_2_RULES.replace(":INPUT", ":KUBE-IPTABLES-HINT - [0:0]\n:INPUT"), "")}, Backend.LEGACY),
    ("a failing tool counts as empty", {"legacy": (FILTER_2_RULES, ""), "fail": (("iptables-legacy-save",),)},
     Backend.NFT),
])
def test_detect_backend(case, kwargs, backend):
    assert _detect(**kwargs)[0] is backend, case


def test_detection_reasons():
    assert _detect(nft_mangle=(MANGLE_HINT, ""), reads="nft-mangle")[1] == (
        "the kubelet's KUBE-IPTABLES-HINT is in the nft mangle table")
    assert _detect()[1] == "no kubelet hint and no rules in either backend: nft"
    assert _detect(legacy=(FILTER_2_RULES, ""))[1] == "no kubelet hint; legacy has more rules (2 > 0)"


# -- nfacct --------------------------------------------------------------------------------------

def test_nfacct_creates_the_missing_counters_and_lists_them_again():
    runner = ScriptedRunner([
        Expect(("nfacct", "list"), stdout=NFACCT_BOTH.splitlines(keepends=True)[0]),
        Expect(("nfacct", "add", "localhost_nps_accepted_pkts")),
        Expect(("nfacct", "list"), stdout=NFACCT_BOTH),
    ], netns=NS)
    state = ensure_counters(netns=NS, runner=runner)
    runner.assert_done()
    assert state == NfacctState(True, ("ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"),
                                ("localhost_nps_accepted_pkts",))


def test_nfacct_with_both_counters_present_adds_nothing():
    runner = ScriptedRunner([Expect(("nfacct", "list"), stdout=NFACCT_BOTH)], netns=NS)
    state = ensure_counters(netns=NS, runner=runner)
    runner.assert_done()
    assert state.created == () and state.supported


def test_nfacct_unsupported_gives_no_counters():
    runner = ScriptedRunner([Expect(("nfacct", "list"), returncode=1,
                                    stderr="nfacct v1.0.2: error: Protocol not supported")], netns=NS)
    state = ensure_counters(netns=NS, runner=runner)
    assert state == NfacctState(False, (), (), "nfacct v1.0.2: error: Protocol not supported")


def test_nfacct_add_failure_is_a_kernel_error():
    runner = ScriptedRunner([Expect(("nfacct", "list")),
                             Expect(("nfacct", "add", "ct_state_invalid_dropped_pkts"), returncode=1,
                                    stderr="nfacct v1.0.2: error: Operation not permitted")], netns=NS)
    with pytest.raises(KernelError) as caught:
        ensure_counters(netns=NS, runner=runner)
    assert caught.value.stderr == "nfacct v1.0.2: error: Operation not permitted"
