"""Flags shared by every command that compiles (compile, trace, diff, apply, lab, run)."""

from __future__ import annotations

import click

from proxyctl.inputs import Inputs, gather


def input_options(f):
    """-f, --config, --node-facts, --strict, --hostname-override, --node-ip, --service-proxy-name."""
    for deco in reversed([
        click.option("-f", "--filename", "manifests", multiple=True, metavar="FILE",
                     help="Services, EndpointSlices, Endpoints, Nodes: files, directories or - for stdin."),
        click.option("--config", "config_path", metavar="FILE", help="A KubeProxyConfiguration file."),
        click.option("--node-facts", "node_facts_path", metavar="FILE", help="A NodeFacts file (else discovered)."),
        click.option("--strict", is_flag=True, help="Unknown config fields and invalid objects are errors."),
        click.option("--hostname-override", metavar="NAME", help="The node's name (beats the configuration)."),
        click.option("--node-ip", "node_ips", multiple=True, metavar="IP", help="The node's IP (one per family)."),
        click.option("--service-proxy-name", metavar="NAME",
                     help="Handle only Services labelled service.kubernetes.io/service-proxy-name=NAME."),
    ]):
        f = deco(f)
    return f


def gather_from_flags(manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
                      service_proxy_name) -> Inputs:
    """Gather inputs, printing warnings and skipped-object problems to stderr."""
    from proxyctl.node.discover import discover_node_facts

    inputs = gather(manifests, config_path=config_path, node_facts_path=node_facts_path, strict=strict,
                    hostname_override=hostname_override, node_ips=node_ips,
                    service_proxy_name=service_proxy_name, discover=discover_node_facts)
    for w in inputs.warnings:
        click.echo(f"warning: {w}", err=True)
    for p in inputs.problems:
        click.echo(f"warning: skipped: {p}", err=True)
    return inputs
