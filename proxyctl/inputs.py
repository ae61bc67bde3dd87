"""Gathering what every command compiles from: configuration, cluster objects, node facts.

compile, trace, diff, apply and run all start here, so a flag means the same in each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from proxyctl.backends.iptables.names import prefix_for
from proxyctl.cluster.manifests import load_manifests
from proxyctl.cluster.objects import ClusterState, Node
from proxyctl.cluster.selection import select_for_proxy
from proxyctl.config import KubeProxyConfiguration, load_config
from proxyctl.errors import Problem
from proxyctl.node.facts import NodeFacts
from proxyctl.node.load import load_node_facts
from proxyctl.node.resolve import resolve_node_facts


@dataclass(frozen=True)
class Inputs:
    config: KubeProxyConfiguration
    state: ClusterState
    facts: NodeFacts
    node: Node | None = None
    warnings: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = field(default=())
    chain_prefix: str = "KUBE-"  # PXCTL- when serving a service proxy name beside kube-proxy


def gather(manifests: Sequence[str], *, config_path: str | None = None, node_facts_path: str | None = None,
           strict: bool = False, hostname_override: str | None = None, node_ips: Sequence[str] = (),
           service_proxy_name: str | None = None, discover=None, cluster: ClusterState | None = None) -> Inputs:
    """Load and resolve every input; raises the InputError of the first input that is unusable.

    ``discover`` (a callable returning NodeFacts) is used only for what no file or flag says.
    ``cluster`` (a live list, already selected by the watch) replaces the manifests.
    """
    config, warnings = load_config(config_path, strict=strict)
    loaded = load_manifests(manifests, strict=strict) if cluster is None else None
    state = select_for_proxy(loaded.state if loaded else cluster, service_proxy_name)
    facts_file = load_node_facts(node_facts_path) if node_facts_path else None
    name_hint = hostname_override or config.hostname_override or (facts_file.name if facts_file else "")
    node = _node_named(state, name_hint)
    facts = resolve_node_facts(
        hostname_override_flag=hostname_override, node_ip_flags=node_ips,
        config_hostname_override=config.hostname_override, config_bind_address=config.bind_address,
        facts_file=facts_file, node_object=node, discover=discover)
    if node is None:
        node = _node_named(state, facts.name)
    return Inputs(config, state, facts, node, tuple(warnings), tuple(loaded.problems) if loaded else (),
                  prefix_for(service_proxy_name))


def _node_named(state: ClusterState, name: str) -> Node | None:
    if not name:
        return None
    for n in state.nodes:
        if n.name == name:
            return n
    return None
