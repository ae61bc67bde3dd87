"""The packet a trace follows, and how users name it on the command line."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from proxyctl.errors import InputError

PROTOCOLS = ("tcp", "udp", "sctp", "icmp", "icmpv6")


@dataclass(frozen=True)
class Packet:
    """The first packet of a connection (conntrack state NEW)."""

    src: str
    dst: str
    protocol: str = "tcp"
    sport: int = 40000
    dport: int | None = None
    in_interface: str | None = None  # unknown unless the user says: rules matching -i are then unevaluated
    mark: int = 0

    @property
    def family(self) -> str:
        return "IPv6" if ":" in self.dst else "IPv4"


def parse_destination(text: str) -> tuple[str, int | None]:
    """``10.96.0.10``, ``10.96.0.10:53``, ``fd00::1``, ``[fd00::1]:53`` → (ip, port or None)."""
    text = text.strip()
    ip, port = text, None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise InputError(f"{text!r} is not an address: write IPv6 with a port as [addr]:port")
        ip, port = host, (rest[1:] or None)
    elif text.count(":") == 1:
        ip, port = text.split(":")
    try:
        ip = str(ipaddress.ip_address(ip))
    except ValueError:
        raise InputError(f"{text!r} is not an IP address (want IP, IP:PORT or [IPv6]:PORT)") from None
    if port is None:
        return ip, None
    if not str(port).isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"{text!r}: port {port!r} is not a number in 1..65535")
    return ip, int(port)
