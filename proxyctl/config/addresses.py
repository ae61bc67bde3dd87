"""Addresses in a KubeProxyConfiguration, read with the Go functions kube-proxy uses.

``split_host_port`` is Go's net.SplitHostPort; ``parse_ip`` and ``parse_cidr`` are netutils'
ParseIPSloppy and ParseCIDRSloppy (IPv4 octets may have leading zeros), which, unlike
``proxyctl.cluster.ipaddr``, do not forgive surrounding spaces; ``parse_port`` is strconv.Atoi
with the 1..65535 check kube-proxy adds.
"""

from __future__ import annotations

import re

from proxyctl.cluster.ipaddr import IPAddress, IPNetwork, parse_cidr_sloppy, parse_ip_sloppy


def parse_ip(text: str) -> IPAddress:
    """An IP address as Go's ParseIPSloppy reads it. Raises ValueError."""
    if text != text.strip():
        raise ValueError(f"{text!r} has spaces around it")
    return parse_ip_sloppy(text)


def parse_cidr(text: str) -> IPNetwork:
    """A CIDR as Go's ParseCIDRSloppy reads it. Raises ValueError."""
    if text != text.strip():
        raise ValueError(f"{text!r} has spaces around it")
    return parse_cidr_sloppy(text)


def is_ipv4(text: str) -> bool:
    """True for IPv4 text and IPv4-mapped IPv6, as Go's ``ParseIP(s).To4() != nil``."""
    try:
        ip = parse_ip(text)
    except ValueError:
        return False
    return ip.version == 4 or ip.ipv4_mapped is not None


def split_host_port(address: str) -> tuple[str, str]:
    """Go's net.SplitHostPort: "host:port" or "[host]:port" to (host, port). Raises ValueError."""
    colon = address.rfind(":")
    if colon < 0:
        raise ValueError("missing port in address")
    start, end_search = 0, 0
    if address.startswith("["):
        close = address.find("]")
        if close < 0:
            raise ValueError("missing ']' in address")
        if close + 1 == len(address):
            raise ValueError("missing port in address")
        if close + 1 != colon:
            raise ValueError("too many colons in address" if address[close + 1] == ":" else
                             "missing port in address")
        host = address[1:close]
        start, end_search = 1, close + 1
    else:
        host = address[:colon]
        if ":" in host:
            raise ValueError("too many colons in address")
    if "[" in address[start:]:
        raise ValueError("unexpected '[' in address")
    if "]" in address[end_search:]:
        raise ValueError("unexpected ']' in address")
    return host, address[colon + 1:]


def parse_port(text: str) -> int:
    """A port number 1..65535 (Go's strconv.Atoi, so a leading sign is allowed). Raises ValueError."""
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise ValueError(f"{text!r} is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"{port} is not in 1..65535")
    return port
