"""Live probes from a client's namespace, and conntrack read in the node's namespace.

Two kinds of probe:

- ``connect``: plain sockets. TCP makes a full connection, sends ``WHO`` and reads the pod
  server's who-am-I line; UDP sends one datagram and reads the answer. Each probe uses a new
  socket, so a new source port and a new conntrack entry. Refused (an RST or ICMP
  port-unreachable) and unreachable count as REJECT; silence until the timeout as DROP.
- ``raw``: packets crafted with scapy and sent on a raw socket: a TCP SYN (the answer is a
  SYN-ACK, an RST or an ICMP error; which pod took it is read from conntrack) or a UDP datagram
  (the pod's answer names it). Nothing of the client's TCP stack is involved, so the kernel of
  the client answers a SYN-ACK with an RST: the connection never opens.

Probes run on threads that entered the client's namespace (nsenter.pool); the first probe runs
alone before the others, so that what it leaves behind (a session-affinity entry) is there for
all the later ones, as for a real client's first and next connections.

Conntrack is dumped over ctnetlink (pyroute2) in the node's namespace: for each probe, the entry
whose original tuple is the probe's own says where the node sent it (the reply's source is the
DNAT target) and whether it was source-NATed (the reply's destination is not the client).
"""

from __future__ import annotations

import contextlib
import errno
import random
import select
import socket
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from proxyctl.errors import KernelError
from proxyctl.lab.nsenter import pool, run_in
from proxyctl.lab.servers import parse_who
from proxyctl.node.netns import call_with_deadline

ANSWERED, REFUSED, UNREACHABLE, TIMEOUT, ERROR = "answered", "refused", "unreachable", "timeout", "error"
REJECT, DROP = "REJECT", "DROP"
PROBE_KINDS = ("connect", "raw")
_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}


def addr_text(ip: str, port: int | None) -> str:
    if port is None:
        return ip
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def split_addr(text: str) -> tuple[str, int]:
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return host, int(port)
    host, _, port = text.rpartition(":")
    return host, int(port)


@dataclass(frozen=True)
class Answer:
    """What a lab pod's server said: who it is, whom it saw, where it accepted."""

    pod: str
    peer: str  # ip:port
    local: str  # ip:port

    @property
    def peer_ip(self) -> str:
        return split_addr(self.peer)[0]


@dataclass(frozen=True)
class ProbeResult:
    index: int
    protocol: str
    result: str  # answered | refused | unreachable | timeout | error
    client: tuple[str, int] | None = None  # source address and port the probe left with
    answer: Answer | None = None
    elapsed: float = 0.0
    detail: str = ""  # the error, or for raw probes what came back (syn-ack, rst, icmp ...)

    @property
    def category(self) -> str:
        """Where it ended, as compare.py counts: the pod's accepting address, REJECT, DROP, ERROR."""
        if self.answer is not None:
            return self.answer.local
        if self.result in (REFUSED, UNREACHABLE):
            return REJECT
        if self.result == TIMEOUT:
            return DROP
        if self.result == ANSWERED:
            return "ANSWERED"  # a raw SYN answered; conntrack names the pod (see live.py)
        return "ERROR"


# -- connect probes -------------------------------------------------------------------------------


def _family(ip: str) -> int:
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def _connect_probe(index: int, dst: str, port: int, protocol: str, timeout: float) -> ProbeResult:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    t0 = time.monotonic()
    client = None
    with socket.socket(_family(dst), kind) as s:
        s.settimeout(timeout)
        try:
            s.connect((dst, port))
            client = s.getsockname()[:2]
            if protocol == "tcp":
                s.sendall(b"WHO\n")
                data = b""
                while b"\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            else:
                s.send(b"WHO\n")
                data = s.recv(4096)
        except ConnectionRefusedError:
            return ProbeResult(index, protocol, REFUSED, client, None, time.monotonic() - t0, "connection refused")
        except TimeoutError:
            what = "no answer" if client is None or protocol == "udp" else "connected, but no who-am-I line"
            result = TIMEOUT if client is None or protocol == "udp" else ERROR
            return ProbeResult(index, protocol, result, client, None, time.monotonic() - t0, what)
        except OSError as e:
            result = UNREACHABLE if e.errno in _UNREACHABLE_ERRNOS else ERROR
            return ProbeResult(index, protocol, result, client, None, time.monotonic() - t0,
                               e.strerror or str(e))
    who = parse_who(data.decode(errors="replace"))
    if not who:
        return ProbeResult(index, protocol, ERROR, client, None, time.monotonic() - t0,
                           f"not a lab server's answer: {data[:80]!r}")
    return ProbeResult(index, protocol, ANSWERED, client, Answer(who["pod"], who["peer"], who["local"]),
                       time.monotonic() - t0)


# -- raw probes (scapy) ---------------------------------------------------------------------------


def _raw_ports(count: int) -> range:
    """Source ports for ``count`` raw probes: consecutive from a random start, outside the client's
    ephemeral range, so that no probe reuses the tuple of a socket connection still in TIME_WAIT
    (the pod would answer that SYN with an ACK of the old connection, not a SYN-ACK). Runs on a
    thread inside the client's namespace."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        lo, hi = 32768, 60999
    gaps = [(1024, lo - 1), (hi + 1, 65535)]
    start, end = max(gaps, key=lambda g: g[1] - g[0])
    if end - start + 1 < count:
        raise KernelError(f"no room for {count} raw probes outside the ephemeral port range {lo}-{hi}")
    first = random.randint(start, end - count + 1)
    return range(first, first + count)


def _raw_probe(index: int, src: str, dst: str, port: int, protocol: str, timeout: float, sport: int) -> ProbeResult:
    from scapy.layers.inet import ICMP, IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    v6 = ":" in dst
    fam = socket.AF_INET6 if v6 else socket.AF_INET
    proto = socket.IPPROTO_TCP if protocol == "tcp" else socket.IPPROTO_UDP
    l3 = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    l4 = TCP(sport=sport, dport=port, flags="S", seq=random.getrandbits(32)) if protocol == "tcp" else (
        UDP(sport=sport, dport=port) / b"WHO\n")
    pkt = l3 / l4
    segment = bytes(pkt[TCP if protocol == "tcp" else UDP])  # checksum over the pseudo-header of l3
    icmp_proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    t0 = time.monotonic()
    with socket.socket(fam, socket.SOCK_RAW, proto) as s, socket.socket(fam, socket.SOCK_RAW, icmp_proto) as ic:
        s.bind((src, 0))
        s.sendto(segment, (dst, 0))
        deadline = t0 + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return ProbeResult(index, protocol, TIMEOUT, (src, sport), None, time.monotonic() - t0, "no answer")
            ready, _, _ = select.select([s, ic], [], [], left)
            for sock in ready:
                data = sock.recv(65535)
                if sock is ic:
                    hit = _icmp_error_for(data, v6, sport, port, ICMP)
                    if hit:
                        return ProbeResult(index, protocol, UNREACHABLE if "port" not in hit else REFUSED,
                                           (src, sport), None, time.monotonic() - t0, hit)
                    continue
                l4r = (TCP(data) if protocol == "tcp" else UDP(data)) if v6 else IP(data).payload
                if getattr(l4r, "dport", None) != sport or getattr(l4r, "sport", None) != port:
                    continue
                if protocol == "tcp":
                    flags = str(l4r.flags)
                    if "R" in flags:
                        return ProbeResult(index, protocol, REFUSED, (src, sport), None, time.monotonic() - t0, "rst")
                    if "S" in flags and "A" in flags:
                        return ProbeResult(index, protocol, ANSWERED, (src, sport), None, time.monotonic() - t0,
                                           "syn-ack")
                    continue
                who = parse_who(bytes(l4r.payload).decode(errors="replace"))
                answer = Answer(who["pod"], who["peer"], who["local"]) if who else None
                return ProbeResult(index, protocol, ANSWERED if answer else ERROR, (src, sport), answer,
                                   time.monotonic() - t0, "" if answer else "not a lab server's answer")


def _icmp_error_for(data: bytes, v6: bool, sport: int, dport: int, icmp_cls) -> str:
    """A description when ``data`` is an ICMP error quoting our probe (matched by ports), else ""."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import ICMPv6DestUnreach

    try:
        if v6:
            msg = ICMPv6DestUnreach(data)
            if msg.type != 1:
                return ""
            inner = msg.payload
            quoted = inner.payload
            kind = "port" if msg.code == 4 else f"code {msg.code}"
        else:
            msg = IP(data).payload
            if not isinstance(msg, icmp_cls) or msg.type != 3:
                return ""
            quoted = msg.payload.payload
            kind = "port" if msg.code == 3 else f"code {msg.code}"
        if getattr(quoted, "sport", None) == sport and getattr(quoted, "dport", None) == dport:
            return f"icmp unreachable ({kind})"
    except Exception:  # a packet scapy cannot dissect is not ours
        return ""
    return ""


# -- running many ---------------------------------------------------------------------------------


def run_probes(client_netns: str, dst: str, port: int, protocol: str = "tcp", count: int = 100, *,
               timeout: float = 1.0, workers: int = 8, kind: str = "connect",
               source: str | None = None) -> list[ProbeResult]:
    """``count`` probes to ``dst``:``port`` from ``client_netns``: the first alone, the rest
    ``workers`` at a time. ``source`` (raw probes only) is the address packets leave with."""
    protocol = protocol.lower()
    if protocol not in ("tcp", "udp"):
        raise KernelError(f"live probes speak tcp and udp, not {protocol} (this kernel has no SCTP)")
    if kind not in PROBE_KINDS:
        raise KernelError(f"probe kind {kind!r}: use one of {', '.join(PROBE_KINDS)}")
    if kind == "raw" and not source:
        raise KernelError("raw probes need the client's source address")

    if count <= 0:
        return []
    sports = run_in(client_netns, lambda: _raw_ports(count), what="choosing source ports") if kind == "raw" else ()

    def one(i: int) -> ProbeResult:
        if kind == "raw":
            return _raw_probe(i, source, dst, port, protocol, timeout, sports[i])
        return _connect_probe(i, dst, port, protocol, timeout)

    results = [run_in(client_netns, lambda: one(0), timeout=timeout + 10, what=f"probing {dst} from {client_netns}")]
    if count > 1:
        with pool(client_netns, max(1, min(workers, count - 1))) as ex:
            results += list(ex.map(one, range(1, count), timeout=(count * (timeout + 1)) + 30))
    return results


# -- conntrack -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConntrackEntry:
    protocol: str
    orig_src: str
    orig_sport: int
    orig_dst: str
    orig_dport: int
    reply_src: str
    reply_sport: int
    reply_dst: str
    reply_dport: int

    @property
    def dnat_target(self) -> str:
        return addr_text(self.reply_src, self.reply_sport)

    @property
    def snat(self) -> bool:
        return (self.reply_dst, self.reply_dport) != (self.orig_src, self.orig_sport)

    @property
    def snat_address(self) -> str | None:
        return self.reply_dst if self.snat else None


PROTO_NAMES = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "icmpv6"}


def conntrack_entries(node_netns: str, family: str, *, timeout: float = 10.0) -> list[ConntrackEntry]:
    """Every conntrack entry of ``family`` in ``node_netns`` (ctnetlink dump through pyroute2)."""
    from pyroute2 import NFCTSocket

    nfgen = socket.AF_INET6 if family == "IPv6" else socket.AF_INET

    def dump() -> list[ConntrackEntry]:
        out = []
        with NFCTSocket(nfgen_family=nfgen, netns=node_netns, flags=0) as ct:
            for msg in ct.dump():
                entry = _entry(msg)
                if entry is not None:
                    out.append(entry)
        return out

    try:
        return call_with_deadline(dump, timeout=timeout, what=f"reading conntrack in {node_netns}")
    except OSError as e:
        raise KernelError(f"reading conntrack in {node_netns} failed: {e}", netns=node_netns) from e


def _tuple(nla) -> tuple[str, int, int] | None:
    if nla is None:
        return None
    ip = nla.get_attr("CTA_TUPLE_IP")
    pr = nla.get_attr("CTA_TUPLE_PROTO")
    if ip is None or pr is None:
        return None
    src = ip.get_attr("CTA_IP_V4_SRC") or ip.get_attr("CTA_IP_V6_SRC")
    dst = ip.get_attr("CTA_IP_V4_DST") or ip.get_attr("CTA_IP_V6_DST")
    return (src, dst, pr.get_attr("CTA_PROTO_NUM"), pr.get_attr("CTA_PROTO_SRC_PORT") or 0,
            pr.get_attr("CTA_PROTO_DST_PORT") or 0)


def _entry(msg) -> ConntrackEntry | None:
    orig = _tuple(msg.get_attr("CTA_TUPLE_ORIG"))
    reply = _tuple(msg.get_attr("CTA_TUPLE_REPLY"))
    if orig is None or reply is None:
        return None
    proto = PROTO_NAMES.get(orig[2], str(orig[2]))
    return ConntrackEntry(proto, _canon(orig[0]), orig[3], _canon(orig[1]), orig[4], _canon(reply[0]), reply[3],
                          _canon(reply[1]), reply[4])


def _canon(ip: str) -> str:
    import ipaddress

    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(ip))
    return ip


def match_conntrack(results: Iterable[ProbeResult], entries: Iterable[ConntrackEntry], dst: str,
                    port: int) -> dict[int, ConntrackEntry]:
    """Probe index → the conntrack entry its packets created (matched by the original tuple).

    A probe whose source port another probe reused is left out: a new SYN on a tuple in TIME_WAIT
    replaces the entry (with a fresh NAT decision), so the dump shows only the last one's."""
    by_tuple = {(e.protocol, e.orig_src, e.orig_sport, e.orig_dst, e.orig_dport): e for e in entries}
    dst = _canon(dst)
    keys = {r.index: (r.protocol, _canon(r.client[0]), r.client[1], dst, port) for r in results if r.client}
    uses = Counter(keys.values())
    return {i: by_tuple[k] for i, k in keys.items() if uses[k] == 1 and k in by_tuple}
