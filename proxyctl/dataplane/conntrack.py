"""Conntrack entries of a namespace, read and deleted with pyroute2 (netlink), no shelling out."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from proxyctl.errors import KernelError
from proxyctl.node.netns import call_with_deadline, enter_netns_in_this_thread

PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "icmpv6"}


@dataclass(frozen=True)
class CtEntry:
    """One connection: where the client sent it (original) and who answers (reply)."""

    protocol: str
    family: str
    orig_src: str
    orig_dst: str
    orig_sport: int | None
    orig_dport: int | None
    reply_src: str  # the DNAT target's address when the connection was DNATed
    reply_sport: int | None

    @property
    def dnat_target(self) -> str:
        if self.reply_sport is None:
            return self.reply_src
        host = f"[{self.reply_src}]" if ":" in self.reply_src else self.reply_src
        return f"{host}:{self.reply_sport}"


def _convert(e, family: str) -> CtEntry | None:
    o, r = e.tuple_orig, e.tuple_reply
    if o is None or r is None:
        return None
    return CtEntry(PROTOCOLS.get(o.proto, str(o.proto)), family, o.saddr, o.daddr, o.sport, o.dport,
                   r.saddr, r.sport)


def list_entries(*, netns: str | None, timeout: float = 10.0, protocol: str | None = None) -> list[CtEntry]:
    """Every conntrack entry of ``netns`` (both families), optionally one protocol."""
    from pyroute2 import Conntrack

    def dump() -> list[CtEntry]:
        if netns is not None:
            enter_netns_in_this_thread(netns)
        out = []
        for fam in (socket.AF_INET, socket.AF_INET6):
            ct = Conntrack(nfgen_family=fam)  # a dump lists one family: the request's
            try:
                for e in ct.dump_entries():
                    c = _convert(e, "IPv6" if fam == socket.AF_INET6 else "IPv4")
                    if c is not None and (protocol is None or c.protocol == protocol):
                        out.append(c)
            finally:
                ct.close()
        return out

    return _netlink(dump, "listing", ("conntrack", "-L"), netns=netns, timeout=timeout)


def delete_entries(entries: list[CtEntry], *, netns: str | None, timeout: float = 10.0) -> int:
    """Delete these connections; returns how many were still there to delete."""
    from pyroute2 import Conntrack
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    def delete() -> int:
        if netns is not None:
            enter_netns_in_this_thread(netns)
        done = 0
        numbers = {v: k for k, v in PROTOCOLS.items()}
        for family, fam in (("IPv4", socket.AF_INET), ("IPv6", socket.AF_INET6)):
            mine = [c for c in entries if c.family == family]
            if not mine:
                continue
            ct = Conntrack(nfgen_family=fam)
            try:
                for c in mine:
                    t = NFCTAttrTuple(family=fam, saddr=c.orig_src, daddr=c.orig_dst, sport=c.orig_sport,
                                      dport=c.orig_dport, proto=numbers.get(c.protocol, 17))
                    try:
                        ct.entry("del", tuple_orig=t)
                        done += 1
                    except NetlinkError as e:
                        if e.code != errno.ENOENT:  # an entry that expired meanwhile is gone: fine
                            raise
            finally:
                ct.close()
        return done

    return _netlink(delete, "deleting", ("conntrack", "-D"), netns=netns, timeout=timeout)


def _netlink(fn, doing: str, argv: tuple[str, ...], *, netns: str | None, timeout: float):
    """Run a netlink conversation with a deadline; socket errors become a KernelError."""
    try:
        return call_with_deadline(fn, timeout=timeout, what=f"{doing} conntrack entries")
    except KernelError:
        raise
    except OSError as e:
        raise KernelError(f"{doing} conntrack entries failed: {e.strerror or e}", argv=argv, netns=netns,
                          stderr=str(e)) from e
