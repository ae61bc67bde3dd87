"""Entry point of ``proxyctl`` (and ``kubectl-proxyctl``)."""

from __future__ import annotations

import importlib
import os
import sys

import click

from proxyctl import __version__
from proxyctl.errors import ProxyctlError

INTERNAL_ERROR = 70  # EX_SOFTWARE: never confused with "differences" (1) or "bad input" (2)

# Each command lives in its own module exposing ``command`` (a click command or group).
COMMAND_MODULES = (
    "proxyctl.cli.compile_cmd",
    "proxyctl.cli.config_cmd",
    "proxyctl.cli.trace_cmd",
    "proxyctl.cli.diff_cmd",
    "proxyctl.cli.run_cmd",
    "proxyctl.cli.apply_cmd",
    "proxyctl.cli.cleanup_cmd",
    "proxyctl.cli.lab_cmd",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="proxyctl")
def cli() -> None:
    """Compile Kubernetes Services into kube-proxy's rules, and debug a node's dataplane."""


def _register() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # not written yet
                continue
            raise
        cli.add_command(module.command)


_register()


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; every ProxyctlError becomes its lines on stderr and its exit code."""
    try:
        rv = cli.main(args=argv, prog_name="proxyctl", standalone_mode=False)
    except ProxyctlError as e:
        for line in e.lines():
            click.echo(f"error: {line}", err=True)
        return e.exit_code
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.ClickException as e:
        e.show()
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except Exception as e:  # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("PROXYCTL_DEBUG"):
            raise
        click.echo(f"error: internal error in proxyctl ({type(e).__name__}: {e}); this is a bug: run again with "
                   "PROXYCTL_DEBUG=1 for the traceback and report it", err=True)
        return INTERNAL_ERROR
    # Without standalone mode, click hands a command's ctx.exit(code) back as the return value.
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":
    sys.exit(main())
