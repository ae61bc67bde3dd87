"""Big ``--noflush`` restores on the nft backend without the quadratic cost.

iptables-nft-restore (1.8.9, also 1.8.11) inserts every chain a command names into a sorted
singly linked list by a linear walk (``nft-cache.c``, ``cache_chain_list_insert``): for a 5k
service payload that is ~316·N² string compares and ~500 s. A command that names no chain makes
that table's cache "all chains" and skips the list; ``-S`` (list the table) is such a command, and
it changes nothing. So a large block gets a ``-S`` right after its ``*table`` line: the same rules
land (foreign chains, rules and counters untouched: nothing is flushed) in seconds. Listing reads
the whole existing table, so small blocks (a partial sync's few lines) are left as they are.
(KUBE-PROXY.md §10 measured the same trade.) The listing goes to the restore's stdout, unused.
"""

from __future__ import annotations

from proxyctl.dataplane.iptables import Backend, Iptables

LIST_THRESHOLD = 200  # chains named in one block before listing the table pays for itself


def with_table_listing(payload: str, threshold: int = LIST_THRESHOLD) -> str:
    """``payload`` with ``-S`` after each ``*table`` line whose block declares many chains."""
    out: list[str] = []
    block: list[str] = []
    declared = 0
    for line in payload.splitlines():
        if line.startswith("*"):
            block, declared = [line], 0
            continue
        if block:
            block.append(line)
            if line.startswith(":"):
                declared += 1
            if line == "COMMIT":
                out.append(block[0])
                if declared >= threshold:
                    out.append("-S")
                out.extend(block[1:])
                block = []
            continue
        out.append(line)
    out.extend(block)
    return "\n".join(out) + "\n"


class FastNftIptables:
    """An Iptables whose ``--noflush`` restores on the nft backend list big tables first."""

    def __init__(self, inner: Iptables, threshold: int = LIST_THRESHOLD):
        self.inner = inner
        self.threshold = threshold
        self.backend = inner.backend
        self.netns = inner.netns

    def save(self, family: str, table: str | None = None) -> str:
        return self.inner.save(family, table)

    def restore(self, family: str, payload: str, *, noflush: bool = True, counters: bool = False) -> None:
        if noflush and Backend(self.backend) == Backend.NFT:
            payload = with_table_listing(payload, self.threshold)
        self.inner.restore(family, payload, noflush=noflush, counters=counters)
