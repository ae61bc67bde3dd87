"""Inputs → rulesets, per proxy mode and IP family: the one place that picks a backend."""

from __future__ import annotations

from proxyctl.backends.iptables import compile_ruleset, options_for
from proxyctl.backends.iptables.node_state import after_first_sync
from proxyctl.brain.build import build_views
from proxyctl.errors import InputError
from proxyctl.inputs import Inputs
from proxyctl.rules.iptables.model import Ruleset

FAMILIES = ("IPv4", "IPv6")
IMPLEMENTED_MODES = ("iptables",)
KNOWN_MODES = ("iptables", "ipvs", "nftables", "userspace")


def effective_mode(inputs: Inputs, mode: str | None) -> str:
    chosen = mode if mode is not None else inputs.config.effective_mode
    chosen = chosen or "iptables"
    if chosen not in KNOWN_MODES:
        raise InputError(f"--mode {chosen!r} is not a proxy mode; use one of {', '.join(KNOWN_MODES)}")
    if chosen not in IMPLEMENTED_MODES:
        raise InputError(f"mode {chosen!r} is not implemented in this version of proxyctl yet; "
                         "use --mode iptables")
    return chosen


def compile_iptables(inputs: Inputs, family: str, *, prefix: str | None = None) -> Ruleset:
    """The restore payload of kube-proxy's first full sync for ``family``."""
    prefix = prefix or inputs.chain_prefix
    zone = inputs.node.zone if inputs.node else ""
    views = build_views(inputs.state, family, inputs.facts.name, zone)
    opts = options_for(inputs.config, inputs.facts, family, inputs.node, prefix=prefix)
    return compile_ruleset(views, opts)


def node_tables(inputs: Inputs, family: str, *, prefix: str | None = None) -> Ruleset:
    """What iptables-save shows on an empty node after that sync (jumps and canaries included)."""
    prefix = prefix or inputs.chain_prefix
    from proxyctl.backends.iptables.names import ChainNames

    return after_first_sync(compile_iptables(inputs, family, prefix=prefix), ChainNames(prefix))
