"""IP parsing the way Kubernetes does it for legacy objects.

The API server accepted IPv4 literals with leading zeros for years ("010.000.0.1"); kube-proxy
reads them with netutils.ParseIPSloppy, as decimal, and writes them back canonically. CIDRs are
read the same way ("203.0.113.000/025" is 203.0.113.0/25), host bits cleared.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _sloppy_v4(text: str) -> str:
    parts = text.split(".")
    if len(parts) == 4 and all(p.isascii() and p.isdigit() and 0 < len(p) <= 3 for p in parts):
        return ".".join(str(int(p)) for p in parts)
    return text


def parse_ip_sloppy(text: str) -> IPAddress:
    """Parse an IP address, accepting IPv4 octets with leading zeros. Raises ValueError."""
    text = text.strip()
    if "%" in text:
        raise ValueError(f"{text!r} is not a valid IP address (zones are not allowed)")
    if ":" not in text:
        text = _sloppy_v4(text)
    return ipaddress.ip_address(text)


def parse_cidr_sloppy(text: str) -> IPNetwork:
    """Parse a CIDR, leading zeros allowed in IPv4 octets and prefix; host bits are cleared."""
    text = text.strip()
    addr, sep, prefix = text.partition("/")
    if not sep or not prefix.isdigit():
        raise ValueError(f"{text!r} is not a valid CIDR (want address/prefix)")
    ip = parse_ip_sloppy(addr)
    return ipaddress.ip_network(f"{ip}/{int(prefix)}", strict=False)


def family_of(ip: str) -> str:
    """"IPv4" or "IPv6" for an address or CIDR text."""
    return "IPv6" if ":" in ip else "IPv4"
