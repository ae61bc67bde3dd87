"""iptables rulesets: tables → chains → rules (typed options and a target)."""

from proxyctl.rules.iptables.model import Chain, Opt, Rule, Ruleset, Table

__all__ = ["Chain", "Opt", "Rule", "Ruleset", "Table"]
