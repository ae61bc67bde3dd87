"""The sysctls kube-proxy sets on its node, written inside the namespace the proxy runs in.

``route_localnet=1`` when localhost NodePorts are enabled (IPv4); conntrack's TCP timeouts when
configured (0 leaves them as they are). The table size (``nf_conntrack_max``, ``hashsize``) is
host-global: it is set only when proxyctl runs in the host's namespace, never under ``--netns``.
"""

from __future__ import annotations

import logging
import os

from proxyctl.config.duration import parse_duration
from proxyctl.errors import KernelError
from proxyctl.node.netns import call_with_deadline, enter_netns_in_this_thread

log = logging.getLogger("proxyctl.node-settings")


def planned(config, *, in_netns: bool, cpus: int | None = None) -> dict[str, str]:
    """/proc/sys paths → values to write, from the configuration."""
    out: dict[str, str] = {}
    if config.localhost_node_ports:
        out["/proc/sys/net/ipv4/conf/all/route_localnet"] = "1"
    ct = config.data.get("conntrack", {})
    for key, path in (("tcpEstablishedTimeout", "nf_conntrack_tcp_timeout_established"),
                      ("tcpCloseWaitTimeout", "nf_conntrack_tcp_timeout_close_wait"),
                      ("udpTimeout", "nf_conntrack_udp_timeout"),
                      ("udpStreamTimeout", "nf_conntrack_udp_timeout_stream")):
        seconds = int(parse_duration(str(ct.get(key) or "0s")))
        if seconds > 0:
            out[f"/proc/sys/net/netfilter/{path}"] = str(seconds)
    if ct.get("tcpBeLiberal"):
        out["/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal"] = "1"
    if not in_netns:
        per_core, minimum = int(ct.get("maxPerCore") or 0), int(ct.get("min") or 0)
        if per_core > 0:
            out["/proc/sys/net/netfilter/nf_conntrack_max"] = str(max(per_core * (cpus or os.cpu_count() or 1),
                                                                      minimum))
    return out


def apply(settings: dict[str, str], *, netns: str | None, timeout: float = 5.0) -> list[str]:
    """Write them (inside ``netns`` when given); returns what was written. KernelError on failure."""
    def write() -> list[str]:
        if netns is not None:
            enter_netns_in_this_thread(netns)
        done = []
        for path, value in settings.items():
            try:
                with open(path, encoding="ascii") as f:
                    if f.read().strip() == value:
                        continue
                with open(path, "w", encoding="ascii") as f:
                    f.write(value)
                done.append(f"{path}={value}")
            except FileNotFoundError:
                log.warning("sysctl missing, not set path=%s", path)
            except OSError as e:
                raise KernelError(f"cannot set {path} to {value}: {e.strerror}", argv=("sysctl", path),
                                  netns=netns, stderr=str(e)) from e
        return done

    return call_with_deadline(write, timeout=timeout, what="writing sysctls")
