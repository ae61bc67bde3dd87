"""``proxyctl run``: a replacement kube-proxy (iptables mode) for lab clusters."""

from __future__ import annotations

import json
import logging
import sys

import click


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"ts": record.created, "level": record.levelname.lower(), "logger": record.name,
                           "msg": record.getMessage()})


def _logging(fmt: str, verbosity: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:  # klog-like: level letter, time, logger, then key=value text
        handler.setFormatter(logging.Formatter("%(levelname).1s%(asctime)s %(name)s] %(message)s",
                                               "%m%d %H:%M:%S"))
    logging.basicConfig(level=logging.DEBUG if verbosity > 2 else logging.INFO, handlers=[handler], force=True)


@click.command("run")
@click.option("--config", "config_path", metavar="FILE", help="The KubeProxyConfiguration file.")
@click.option("--kubeconfig", metavar="FILE", help="Kubeconfig (default: clientConnection.kubeconfig, KUBECONFIG, "
              "~/.kube/config, in-cluster).")
@click.option("--hostname-override", metavar="NAME")
@click.option("--node-ip", "node_ips", multiple=True, metavar="IP")
@click.option("--netns", metavar="NAME", help="Run the dataplane (and the healthz/metrics servers) in this netns.")
@click.option("--iptables-backend", type=click.Choice(["auto", "nft", "legacy"]), default="auto", show_default=True)
@click.option("--service-proxy-name", metavar="NAME", help="Serve only Services labelled with this proxy name.")
@click.option("--once", is_flag=True, help="Wait for the initial lists, sync once, exit (0 synced, 1 failed).")
@click.option("--cleanup", is_flag=True, help="Remove every mode's rules and exit (same as proxyctl cleanup).")
@click.option("--mode-fallback", is_flag=True, help="Fall back to another mode when the kernel cannot do this one.")
@click.option("--logging-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-v", "--v", "verbosity", type=int, default=2, show_default=True)
def command(config_path, kubeconfig, hostname_override, node_ips, netns, iptables_backend, service_proxy_name, once,
            cleanup, mode_fallback, logging_format, verbosity):
    """Watch the API server and keep this node's rules as kube-proxy would (iptables mode)."""
    if cleanup:
        from proxyctl.cli.cleanup_cmd import command as cleanup_command

        ctx = click.get_current_context()
        args = ["--netns", netns] if netns else []
        return ctx.invoke(cleanup_command, **cleanup_command.make_context("cleanup", args).params)
    _logging(logging_format, verbosity)
    from proxyctl.daemon.app import RunOptions, run

    code = run(RunOptions(config_path, kubeconfig, hostname_override, tuple(node_ips), netns, iptables_backend,
                          service_proxy_name, once, mode_fallback))
    raise click.exceptions.Exit(code)
