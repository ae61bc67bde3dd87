"""``proxyctl compile``: print the rules kube-proxy would program for a set of objects."""

from __future__ import annotations

import json

import click

from proxyctl.cli.common import gather_from_flags, input_options
from proxyctl.compiler import FAMILIES, compile_iptables, effective_mode, node_tables
from proxyctl.rules.iptables.jsonform import ruleset_to_dict
from proxyctl.rules.iptables.render import render_restore
from proxyctl.rules.iptables.save import render_save


@click.command("compile")
@input_options
@click.option("--mode", type=click.Choice(["iptables", "ipvs", "nftables", "userspace"]),
              help="Proxy mode (default: the configuration's; '' there means iptables).")
@click.option("--ip-family", type=click.Choice(["IPv4", "IPv6"]), help="One family only (default: both).")
@click.option("--format", "fmt", type=click.Choice(["restore", "save"]), default="restore", show_default=True,
              help="restore: the iptables-restore payload of a full sync; save: what iptables-save shows after it.")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def command(manifests, config_path, node_facts_path, strict, hostname_override, node_ips, service_proxy_name,
            mode, ip_family, fmt, output):
    """Compile Services and EndpointSlices into the rules kube-proxy writes."""
    if not manifests:
        raise click.UsageError("give the objects to compile with -f FILE (a file, a directory, or - for stdin)")
    inputs = gather_from_flags(manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
                               service_proxy_name)
    effective_mode(inputs, mode)
    families = (ip_family,) if ip_family else FAMILIES
    rulesets = [node_tables(inputs, fam) if fmt == "save" else compile_iptables(inputs, fam) for fam in families]
    if output == "json":
        click.echo(json.dumps([ruleset_to_dict(rs) for rs in rulesets] if len(rulesets) > 1
                              else ruleset_to_dict(rulesets[0]), indent=2))
        return
    render = render_save if fmt == "save" else render_restore
    for rs in rulesets:
        if not ip_family:
            click.echo(f"# proxyctl: family={rs.family}")
        click.echo(render(rs), nl=False)
