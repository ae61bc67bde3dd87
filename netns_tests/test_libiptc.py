"""On a legacy-backend node, the tables read structurally through libiptc equal what
iptables-legacy-save prints (both canonicalised)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from proxyctl.cli.main import main
from proxyctl.dataplane.libiptc import read_tables
from proxyctl.rules.iptables.canonical import canonical_rule
from proxyctl.rules.iptables.parse import parse_rules

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"


def _canonical(rs, family):
    return {(t, c.name): [canonical_rule(r, family) for r in c.rules]
            for t, table in rs.tables.items() for c in table.chains.values()}


def test_libiptc_reading_equals_iptables_legacy_save(capsys, netns):
    code = main(["apply", "-f", str(DEMO / "cluster.yaml"), "--config", str(DEMO / "kube-proxy-config.yaml"),
                 "--node-facts", str(DEMO / "node.yaml"), "--netns", netns, "--iptables-backend", "legacy"])
    assert code == 0, capsys.readouterr().err
    # IPv4 only: python-iptables 1.0 cannot load the IPv6 MASQUERADE extension (libxt_MASQUERADE
    # replaced libip6t_MASQUERADE in iptables 1.8), so IPv6 tables are read from ip6tables-save.
    for family, tool in (("IPv4", "iptables-legacy-save"),):
        text = subprocess.run(["ip", "netns", "exec", netns, tool], capture_output=True, text=True,
                              check=True).stdout
        saved = parse_rules(text, family=family).ruleset
        structural = read_tables(family, netns=netns)
        a, b = _canonical(structural, family), _canonical(saved, family)
        assert set(a) == set(b)
        for key in a:
            assert a[key] == b[key], key
