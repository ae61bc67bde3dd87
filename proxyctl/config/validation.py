"""kube-proxy v1.36's validation of a defaulted KubeProxyConfiguration, plus the userspace mode.

Works on the v1alpha1 form (``KubeProxyConfiguration.data``) after kube-proxy's start-up defaults:
a blank mode is iptables and a blank detectLocalMode is ClusterCIDR. As in kube-proxy, only the
active mode's section is checked for its sync periods (and the ipvs and nftables sections only
in their modes); iptables.masqueradeBit is always checked. Each problem names the field and the
value, and says what is allowed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping

from proxyctl.config.addresses import parse_cidr, parse_ip, parse_port, split_host_port
from proxyctl.config.duration import format_duration_ns, parse_duration_ns
from proxyctl.errors import Problem

MODES = ("iptables", "ipvs", "nftables", "userspace")
DETECT_LOCAL_MODES = ("ClusterCIDR", "NodeCIDR", "BridgeInterface", "InterfaceNamePrefix")
IPVS_SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "sh", "dh", "sed", "nq")
LOG_FORMATS = ("text", "json")
# ShowHiddenMetricsForVersion takes only the minor version before the running one.
PREVIOUS_MINOR_VERSION = "1.35"

_DUAL_STACK_EXAMPLE = "e.g. 10.100.0.0/16,fde4:8dba:82e1::/48"


def effective_mode(mode: str) -> str:
    return mode or "iptables"


def sync_section(mode: str) -> str:
    """The section whose syncPeriod and minSyncPeriod the mode uses (v1alpha1 conversion's choice)."""
    return {"ipvs": "ipvs", "nftables": "nftables"}.get(mode, "iptables")


def validate_data(data: Mapping, source: str = "") -> list[Problem]:
    """Every problem in a defaulted v1alpha1 configuration, in field order."""
    return [Problem(message, source=source, field=where) for where, message in _problems(data)]


def _q(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _problems(d: Mapping) -> Iterator[tuple[str, str]]:
    mode = d["mode"]
    if mode and mode not in MODES:
        windows = " (kernelspace is kube-proxy's Windows mode)" if mode == "kernelspace" else ""
        yield "mode", (f"{_q(mode)} is not a proxy mode; use iptables, ipvs, nftables or userspace "
                       f"(blank means iptables){windows}")
    yield from _masquerade_bit("iptables", d["iptables"])
    section = sync_section(effective_mode(mode))
    yield from _sync_periods(section, d[section])
    if mode == "nftables":
        yield from _masquerade_bit("nftables", d["nftables"])
    if mode == "ipvs":
        yield from _ipvs(d["ipvs"])
    yield from _conntrack(d["conntrack"])
    if not -1000 <= d["oomScoreAdj"] <= 1000:
        yield "oomScoreAdj", f"{d['oomScoreAdj']} is out of range -1000..1000"
    if d["clientConnection"]["burst"] < 0:
        yield "clientConnection.burst", f"{d['clientConnection']['burst']} must not be negative"
    yield from _positive("configSyncPeriod", d["configSyncPeriod"])
    yield from _addresses(d)
    yield from _port_range(d["portRange"])
    yield from _node_port_addresses(d["nodePortAddresses"])
    version = d["showHiddenMetricsForVersion"]
    if version and version != PREVIOUS_MINOR_VERSION:
        yield "showHiddenMetricsForVersion", (f"{_q(version)} is not allowed; leave it empty or give the "
                                              f"previous minor version, {_q(PREVIOUS_MINOR_VERSION)}")
    yield from _detect_local(d)
    log_format = d["logging"]["format"]
    if log_format not in LOG_FORMATS:
        yield "logging.format", f"{_q(log_format)} is not a log format; use text or json"


def _masquerade_bit(section: str, s: Mapping) -> Iterator[tuple[str, str]]:
    bit = s["masqueradeBit"]
    if bit is not None and not 0 <= bit <= 31:
        yield f"{section}.masqueradeBit", f"{bit} is out of range 0..31"


def _sync_periods(section: str, s: Mapping) -> Iterator[tuple[str, str]]:
    sync = parse_duration_ns(s["syncPeriod"])
    minimum = parse_duration_ns(s["minSyncPeriod"])
    yield from _positive(f"{section}.syncPeriod", s["syncPeriod"])
    yield from _not_negative(f"{section}.minSyncPeriod", s["minSyncPeriod"])
    if minimum > sync > 0:
        yield f"{section}.minSyncPeriod", (f"{format_duration_ns(minimum)} is longer than {section}.syncPeriod "
                                           f"({format_duration_ns(sync)}); it must be at most that")


def _ipvs(s: Mapping) -> Iterator[tuple[str, str]]:
    for name in ("tcpTimeout", "tcpFinTimeout", "udpTimeout"):
        yield from _not_negative(f"ipvs.{name}", s[name])
    for i, cidr in enumerate(s["excludeCIDRs"] or ()):
        yield from _cidr(f"ipvs.excludeCIDRs[{i}]", cidr)
    if s["scheduler"] and s["scheduler"] not in IPVS_SCHEDULERS:
        yield "ipvs.scheduler", (f"{_q(s['scheduler'])} is not an IPVS scheduler; use one of "
                                 f"{', '.join(IPVS_SCHEDULERS)} (blank means rr)")


def _conntrack(s: Mapping) -> Iterator[tuple[str, str]]:
    for name in ("maxPerCore", "min"):
        if s[name] is not None and s[name] < 0:
            yield f"conntrack.{name}", f"{s[name]} must not be negative"
    for name in ("tcpEstablishedTimeout", "tcpCloseWaitTimeout", "udpTimeout", "udpStreamTimeout"):
        if s[name] is not None:
            yield from _not_negative(f"conntrack.{name}", s[name])


def _positive(where: str, duration: str) -> Iterator[tuple[str, str]]:
    if parse_duration_ns(duration) <= 0:
        yield where, f"{duration} must be greater than 0"


def _not_negative(where: str, duration: str) -> Iterator[tuple[str, str]]:
    if parse_duration_ns(duration) < 0:
        yield where, f"{duration} must not be negative"


def _addresses(d: Mapping) -> Iterator[tuple[str, str]]:
    try:
        parse_ip(d["bindAddress"])
    except ValueError:
        yield "bindAddress", f"{_q(d['bindAddress'])} is not an IP address"
    if d["healthzBindAddress"]:
        yield from _host_port("healthzBindAddress", d["healthzBindAddress"])
    yield from _host_port("metricsBindAddress", d["metricsBindAddress"])


def _host_port(where: str, address: str) -> Iterator[tuple[str, str]]:
    try:
        host, port = split_host_port(address)
    except ValueError as e:
        yield where, f"{_q(address)} is not IP:port ({e}); e.g. 0.0.0.0:10256 or [::]:10256"
        return
    try:
        parse_ip(host)
    except ValueError:
        yield where, f"{_q(address)}: {_q(host)} is not an IP address"
    try:
        parse_port(port)
    except ValueError:
        yield where, f"{_q(address)}: port {_q(port)} is not a port number (1..65535)"


def _port_range(text: str) -> Iterator[tuple[str, str]]:
    """apimachinery's ParsePortRange: "", "N", "N-M" or "N+M", ports up to 65535."""
    value = text.strip()
    if not value:
        return
    usage = "use N, N-M or N+M, e.g. 30000-32767"
    match = re.fullmatch(r"([0-9]+)(?:([-+])([0-9]+))?", value)
    if not match:
        yield "portRange", f"{_q(text)} is not a port range; {usage}"
        return
    low = int(match[1])
    high = low if not match[2] else int(match[3]) if match[2] == "-" else low + int(match[3])
    if low > 65535 or high > 65535:
        yield "portRange", f"{_q(text)} goes beyond port 65535"
    elif high < low:
        yield "portRange", f"{_q(text)} ends before it starts; {usage}"


def _node_port_addresses(addresses: list[str] | None) -> Iterator[tuple[str, str]]:
    for i, address in enumerate(addresses or ()):
        if address == "primary":
            if len(addresses) != 1:
                yield f"nodePortAddresses[{i}]", ('"primary" cannot be combined with CIDRs; '
                                                 'give either ["primary"] or a list of CIDRs')
            break
        yield from _cidr(f"nodePortAddresses[{i}]", address, ' or exactly ["primary"]')


def _cidr(where: str, text: str, alternative: str = "") -> Iterator[tuple[str, str]]:
    try:
        parse_cidr(text)
    except ValueError:
        yield where, f"{_q(text)} is not a CIDR (e.g. 10.0.0.0/8 or fd00::/64){alternative}"


def _detect_local(d: Mapping) -> Iterator[tuple[str, str]]:
    mode = d["detectLocalMode"]
    if mode and mode not in DETECT_LOCAL_MODES:
        yield "detectLocalMode", (f"{_q(mode)} is not a detect-local mode; use {', '.join(DETECT_LOCAL_MODES)} "
                                  "(blank means ClusterCIDR)")
        return
    needs = {"BridgeInterface": "bridgeInterface", "InterfaceNamePrefix": "interfaceNamePrefix"}
    if mode in needs and not d["detectLocal"][needs[mode]]:
        yield f"detectLocal.{needs[mode]}", f'is empty; detectLocalMode {mode} needs it set'
    if (mode or "ClusterCIDR") == "ClusterCIDR" and d["clusterCIDR"]:
        yield from _cluster_cidr(d["clusterCIDR"])


def _cluster_cidr(text: str) -> Iterator[tuple[str, str]]:
    cidrs = text.split(",")
    if len(cidrs) > 2:
        yield "clusterCIDR", (f"{_q(text)} has {len(cidrs)} CIDRs; give one CIDR or a dual-stack pair "
                              f"({_DUAL_STACK_EXAMPLE})")
        return
    networks = []
    for cidr in cidrs:
        try:
            networks.append(parse_cidr(cidr))
        except ValueError:
            yield "clusterCIDR", f"{_q(text)}: {_q(cidr)} is not a CIDR ({_DUAL_STACK_EXAMPLE})"
    if len(networks) == 2 and networks[0].version == networks[1].version:
        yield "clusterCIDR", (f"{_q(text)} is two IPv{networks[0].version} CIDRs; a dual-stack pair is one "
                              f"IPv4 and one IPv6 CIDR ({_DUAL_STACK_EXAMPLE})")
