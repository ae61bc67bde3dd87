"""RestoreError: the line iptables-restore names, its context, and what each table kept.

The stderr texts are verbatim from iptables 1.8.9 (legacy and nft) on this machine's kernel.
"""

from __future__ import annotations

import pytest

from proxyctl.dataplane.errors import (
    CleanupError,
    RestoreError,
    TableOutcome,
    context,
    failing_line,
    table_outcome,
    table_spans,
)
from proxyctl.errors import KernelError

LEGACY_TARGET = ("iptables-restore v1.8.9 (legacy): Couldn't load target `NOPE':No such file or directory\n\n"
                 "Error occurred at line: 7\nTry `iptables-restore -h' or 'iptables-restore --help' for more "
                 "information.\n")
LEGACY_BARE = "iptables-restore: line 8 failed\n"
NFT_EXISTS = "iptables-nft-restore: line 2 failed: Chain already exists.\n"
NFT_CHAIN_DEL = ("iptables-nft-restore v1.8.9 (nf_tables): \n"
                 "line 3: CHAIN_DEL failed (Device or resource busy): chain FOO\n")
NFT_COMMIT = ("# Warning: iptables-legacy tables present, use iptables-legacy-save to see them\n"
              "iptables-nft-restore v1.8.9 (nf_tables): Chain 'NOPE' does not exist\nError occurred at line: 9\n"
              "Try `iptables-nft-restore -h' or 'iptables-nft-restore --help' for more information.\n")

PAYLOAD = """*filter
:FOO - [0:0]
-A FOO -j ACCEPT
COMMIT
*nat
:BAR - [0:0]
-A BAR -j NOPE
-A BAR -j RETURN
COMMIT
"""


@pytest.mark.parametrize("stderr, line", [
    (LEGACY_TARGET, 7), (LEGACY_BARE, 8), (NFT_EXISTS, 2), (NFT_CHAIN_DEL, 3), (NFT_COMMIT, 9),
    ("iptables-restore: unable to initialize table 'nat'\n", None), ("", None),
])
def test_failing_line_in_every_known_wording(stderr, line):
    assert failing_line(stderr) == line


def test_table_spans():
    assert [(s.name, s.first, s.last) for s in table_spans(PAYLOAD)] == [("filter", 1, 4), ("nat", 5, 9)]


@pytest.mark.parametrize("line, applied, failed, untouched", [
    (2, (), "filter", ("nat",)),
    (4, (), "filter", ("nat",)),  # the COMMIT line belongs to its table (nft reports commit errors there)
    (7, ("filter",), "nat", ()),
    (9, ("filter",), "nat", ()),
])
def test_table_outcome_follows_per_table_commits(line, applied, failed, untouched):
    assert table_outcome(PAYLOAD, line) == TableOutcome(applied, failed, untouched)


def test_outcome_descriptions():
    assert table_outcome(PAYLOAD, 7).describe() == "filter was applied; nat kept its previous rules"
    assert table_outcome(PAYLOAD, 2).describe() == "filter and nat kept their previous rules"
    assert table_outcome(PAYLOAD, None).describe() == (
        "iptables-restore named no line, so which of filter, nat were applied is unknown")


def test_context_is_three_lines_either_side_clipped_at_the_ends():
    assert [n for n, _ in context(PAYLOAD, 7)] == [4, 5, 6, 7, 8, 9]
    assert [n for n, _ in context(PAYLOAD, 1)] == [1, 2, 3, 4]
    assert context(PAYLOAD, None) == ()


def _error(stderr: str) -> RestoreError:
    failure = KernelError("failed", argv=("ip", "netns", "exec", "n1", "iptables-nft-restore"), netns="n1",
                          returncode=1, stderr=stderr)
    return RestoreError.from_failure(failure, tool="iptables-nft-restore", payload=PAYLOAD, family="IPv4",
                                     backend="nft")


def test_restore_error_carries_everything_and_prints_it():
    e = _error(NFT_COMMIT)
    assert (e.line, e.line_text, e.outcome.failed, e.outcome.applied) == (9, "COMMIT", "nat", ("filter",))
    assert (e.argv, e.netns, e.returncode, e.stderr, e.exit_code) == (
        ("ip", "netns", "exec", "n1", "iptables-nft-restore"), "n1", 1, NFT_COMMIT, 1)
    assert e.needs_full_sync
    assert e.lines() == [
        "iptables-nft-restore (IPv4 in network namespace n1) rejected line 9 of its input (table nat): "
        "Chain 'NOPE' does not exist",
        "iptables-restore said:",
        "    # Warning: iptables-legacy tables present, use iptables-legacy-save to see them",
        "    iptables-nft-restore v1.8.9 (nf_tables): Chain 'NOPE' does not exist",
        "    Error occurred at line: 9",
        "    Try `iptables-nft-restore -h' or 'iptables-nft-restore --help' for more information.",
        "input lines 6-9:",
        "        6  :BAR - [0:0]",
        "        7  -A BAR -j NOPE",
        "        8  -A BAR -j RETURN",
        "  >     9  COMMIT",
        "filter was applied; nat kept its previous rules.",
        "The next sync must be a full one.",
    ]


@pytest.mark.parametrize("stderr, reason", [
    (LEGACY_TARGET, "Couldn't load target `NOPE':No such file or directory"),
    (LEGACY_BARE, "iptables-restore: line 8 failed"),
    (NFT_EXISTS, "Chain already exists."),
    (NFT_CHAIN_DEL, "CHAIN_DEL failed (Device or resource busy): chain FOO"),
])
def test_message_keeps_the_telling_part_of_stderr(stderr, reason):
    assert str(_error(stderr)).endswith(": " + reason)


def test_no_line_named_means_unknown_state():
    e = _error("iptables-nft-restore: no answer within 5s")
    assert e.line is None and e.context == ()
    assert e.lines()[-2:] == ["iptables-restore named no line, so which of filter, nat were applied is unknown.",
                              "The next sync must be a full one."]


def test_cleanup_error_lists_every_failure_and_what_was_done():
    e = CleanupError([KernelError("ipset destroy KUBE-X failed"), KernelError("nft delete failed")],
                     ["nft IPv4 nat: deleted 1 jump rule(s) and 2 chain(s)"])
    assert e.exit_code == 1
    assert e.lines() == ["cleanup failed: ipset destroy KUBE-X failed", "cleanup failed: nft delete failed",
                         "done anyway: nft IPv4 nat: deleted 1 jump rule(s) and 2 chain(s)"]
