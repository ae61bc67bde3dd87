"""``proxyctl config``: show and check a KubeProxyConfiguration file."""

from __future__ import annotations

import click

from proxyctl.config import read_config
from proxyctl.config.kubeproxy import ConfigLoad
from proxyctl.config.yamlfile import dump_yaml
from proxyctl.errors import ConfigError

_STRICT_HELP = "Reject unknown and duplicate fields, as kube-proxy's strict decoding does (default: warn)."


@click.group(name="config")
def command() -> None:
    """Show and check kube-proxy's configuration file (KubeProxyConfiguration v1alpha1)."""


@command.command("view")
@click.option("--config", "path", metavar="FILE", help="The file to read; '-' for stdin. Default: none.")
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
def view(path: str | None, strict: bool) -> None:
    """Print the configuration with kube-proxy v1.36's defaults filled in, as YAML."""
    result = _checked(read_config(path, strict=strict), path)
    click.echo(dump_yaml(result.config.data), nl=False)


@command.command("validate")
@click.argument("path", metavar="FILE")
@click.option("--strict", is_flag=True, help=_STRICT_HELP)
def validate(path: str, strict: bool) -> None:
    """Check FILE as kube-proxy v1.36 would; exit 0 if it would start with it, 2 if not."""
    _checked(read_config(path, strict=strict), path)
    click.echo(f"{path}: valid")


def _checked(result: ConfigLoad, path: str | None) -> ConfigLoad:
    """Print the warnings; raise the problems as one ConfigError."""
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    if result.problems or result.config is None:
        raise ConfigError(f"{path}: invalid KubeProxyConfiguration", problems=result.problems)
    return result
