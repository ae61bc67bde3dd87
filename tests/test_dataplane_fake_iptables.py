"""The fake iptables is a test oracle, so it is tested: it must reject what the kernel rejects and
commit table by table as iptables-restore does (each case below was checked against iptables 1.8.9,
legacy and nft, in a network namespace: same outcome, nft's wording).
"""

from __future__ import annotations

import textwrap

import pytest

from proxyctl.dataplane.errors import RestoreError
from proxyctl.dataplane.fake_iptables import FakeIptables

BASE = """\
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:A - [0:0]
:FOO - [0:0]
-A INPUT -s 1.2.3.4/32 -j DROP
-A A -j FOO
-A FOO -j ACCEPT
COMMIT
"""


def fake() -> FakeIptables:
    f = FakeIptables()
    f.load("IPv4", BASE)
    return f


def restore(f: FakeIptables, text: str, **kw) -> None:
    f.restore("IPv4", textwrap.dedent(text), **kw)


def rejected(f: FakeIptables, text: str) -> RestoreError:
    before = f.dump("IPv4")
    with pytest.raises(RestoreError) as caught:
        restore(f, text)
    assert f.dump("IPv4") == before, "a rejected single-table restore must change nothing"
    return caught.value


def test_load_then_dump_is_iptables_save_text():
    assert fake().dump("IPv4") == BASE


@pytest.mark.parametrize("case, text, line, reason", [
    ("-N of an existing chain", "*filter\n-N FOO\nCOMMIT\n", 2, "Chain already exists."),
    ("-X of a referenced chain", "*filter\n-X FOO\nCOMMIT\n", 2,
     "CHAIN_DEL failed (Device or resource busy): chain FOO"),
    ("-X of a chain with rules", "*filter\n-F A\n-X FOO\nCOMMIT\n", 3,
     "CHAIN_DEL failed (Device or resource busy): chain FOO"),
    ("-X of a missing chain", "*filter\n-X NOPE\nCOMMIT\n", 2, "No chain/target/match by that name."),
    ("-X of a built-in chain", "*filter\n-X INPUT\nCOMMIT\n", 2,
     "CHAIN_DEL failed (Device or resource busy): chain INPUT"),
    ("a jump to a missing chain", "*filter\n:B - [0:0]\n-A B -j NOPE\nCOMMIT\n", 3, "Chain 'NOPE' does not exist"),
    ("a flushed-and-deleted chain still jumped to", "*filter\n:FOO - [0:0]\n-X FOO\nCOMMIT\n", 3,
     "CHAIN_DEL failed (Device or resource busy): chain FOO"),
    ("-A to a missing chain", "*filter\n-A NOPE -j ACCEPT\nCOMMIT\n", 2, None),
    ("an unknown table", "*bogus\nCOMMIT\n", 1, "table name 'bogus' invalid"),
    ("no COMMIT", "*filter\n:B - [0:0]\n", 3, "COMMIT expected at line 3"),
])
def test_rejects_what_the_kernel_rejects(case, text, line, reason):
    e = rejected(fake(), text)
    assert e.line == line, case
    assert e.outcome.applied == (), case
    if reason is not None:
        assert str(e).endswith(": " + reason), case


def test_commits_table_by_table():
    f = fake()
    with pytest.raises(RestoreError) as caught:
        restore(f, """\
            *filter
            :NEW - [0:0]
            -A NEW -j ACCEPT
            COMMIT
            *nat
            :BAR - [0:0]
            -A BAR -j NOPE
            COMMIT
            *mangle
            :M - [0:0]
            COMMIT
            """)
    assert caught.value.outcome.describe() == "filter was applied; nat and mangle kept their previous rules"
    assert ":NEW - [0:0]" in f.dump("IPv4", "filter")
    assert list(f.state["IPv4"].tables) == ["filter"]  # nat and mangle were never created


def test_noflush_keeps_what_the_payload_does_not_declare():
    f = fake()
    restore(f, """\
        *filter
        :A - [0:0]
        -A A -j RETURN
        -I INPUT 1 -j A
        COMMIT
        """)
    assert f.dump("IPv4").splitlines()[6:10] == [
        "-A INPUT -j A", "-A INPUT -s 1.2.3.4/32 -j DROP", "-A A -j RETURN", "-A FOO -j ACCEPT"]


def test_without_noflush_the_table_is_replaced():
    f = fake()
    restore(f, "*filter\n:INPUT DROP [0:0]\n:B - [0:0]\nCOMMIT\n", noflush=False)
    assert f.dump("IPv4") == ("*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                              ":B - [0:0]\nCOMMIT\n")


def test_families_are_separate_and_calls_are_recorded():
    f = fake()
    restore(f, "*nat\n:X - [0:0]\nCOMMIT\n", counters=True)
    assert f.dump("IPv6") == ""
    assert [(c.family, c.noflush, c.counters) for c in f.restores] == [("IPv4", True, True)]


def test_save_of_a_missing_table_lists_built_ins_and_legacy_loads_it():
    nft, legacy = FakeIptables("nft"), FakeIptables("legacy")
    assert nft.save("IPv4", "nat").splitlines()[1:] == [
        "*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]", "COMMIT"]
    legacy.save("IPv4", "nat")
    assert (list(nft.state["IPv4"].tables), list(legacy.state["IPv4"].tables)) == ([], ["nat"])
