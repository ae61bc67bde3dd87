"""``proxyctl apply``: one kube-proxy full sync of a node (or a network namespace), without the daemon."""

from __future__ import annotations

import functools
import os

import click

from proxyctl.cli.common import input_options
from proxyctl.compiler import effective_mode
from proxyctl.dataplane.apply import apply_full_sync
from proxyctl.dataplane.backend_detect import detect_backend
from proxyctl.dataplane.iptables import DEFAULT_TIMEOUT, LOCK_WAIT_SECONDS, Backend, ShellIptables
from proxyctl.dataplane.nfacct import NfacctState, ensure_counters
from proxyctl.dataplane.nft_fast import FastNftIptables
from proxyctl.dataplane.sync import SyncResult
from proxyctl.inputs import Inputs, gather
from proxyctl.node.discover import discover_node_facts
from proxyctl.node.netns import NETNS_RUN_DIR


def netns_option(f):
    return click.option("--netns", metavar="NAME",
                        help="A named network namespace (ip netns) to work in; default: this one.")(f)


def lock_wait_option(f):
    return click.option("--lock-wait", type=click.IntRange(min=0), default=LOCK_WAIT_SECONDS, show_default=True,
                        metavar="SECONDS",
                        help="How long iptables-restore waits for the xtables lock (-w), as kube-proxy's 5 s.")(f)


def check_netns(netns: str | None) -> None:
    if netns is not None and ("/" in netns or not os.path.exists(os.path.join(NETNS_RUN_DIR, netns))):
        raise click.BadParameter(f"network namespace {netns!r} does not exist (see `ip netns list`)",
                                 param_hint="--netns")


@click.command("apply")
@input_options
@netns_option
@click.option("--iptables-backend", type=click.Choice(["auto", "nft", "legacy"]), default="auto", show_default=True,
              help="auto: the backend the node already uses, detected as kube-proxy's iptables wrapper does.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=DEFAULT_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Deadline of each kernel command (a restore gets --lock-wait more).")
@lock_wait_option
def command(manifests, config_path, node_facts_path, strict, hostname_override, node_ips, service_proxy_name,
            netns, iptables_backend, timeout, lock_wait):
    """Program the rules for a set of objects, as one kube-proxy full sync (iptables mode).

    Ensures the canary chains and the jump rules from the built-in chains, creates kube-proxy's
    nfacct counters when the kernel has nfacct, then restores the rules of IPv4 and IPv6 with
    `iptables-restore --noflush --counters`, deleting stale per-service chains. Node facts are
    discovered inside --netns unless --node-facts is given. Exit 0 done, 1 a kernel command
    failed (the next sync must then be a full one), 2 bad usage or input.
    """
    if not manifests:
        raise click.UsageError("give the objects to apply with -f FILE (a file, a directory, or - for stdin)")
    check_netns(netns)
    inputs = _gather(manifests, config_path, node_facts_path, strict, hostname_override, node_ips,
                     service_proxy_name, netns)
    effective_mode(inputs, None)
    if iptables_backend == "auto":
        detection = detect_backend(netns=netns, timeout=min(timeout, 10.0))
        backend, why = detection.backend, detection.reason
    else:
        backend, why = Backend(iptables_backend), "chosen with --iptables-backend"
    click.echo(f"iptables backend: {backend.value} ({why})")
    nfacct = ensure_counters(netns=netns, timeout=min(timeout, 10.0))
    click.echo(_describe_nfacct(nfacct))
    ipt = FastNftIptables(ShellIptables(backend, netns=netns, timeout=timeout, lock_wait=lock_wait))
    apply_full_sync(inputs, ipt, nfacct, prefix=inputs.chain_prefix, on_synced=lambda r: click.echo(describe_sync(r)))


def _gather(manifests, config_path, node_facts_path, strict, hostname_override, node_ips, service_proxy_name,
            netns) -> Inputs:
    inputs = gather(manifests, config_path=config_path, node_facts_path=node_facts_path, strict=strict,
                    hostname_override=hostname_override, node_ips=node_ips,
                    service_proxy_name=service_proxy_name, discover=functools.partial(discover_node_facts, netns))
    for w in inputs.warnings:
        click.echo(f"warning: {w}", err=True)
    for p in inputs.problems:
        click.echo(f"warning: skipped: {p}", err=True)
    return inputs


def _describe_nfacct(state: NfacctState) -> str:
    if not state.supported:
        return f"nfacct: not available ({state.reason.strip() or 'nfacct list failed'}); no rule counts with it"
    made = f"created {', '.join(state.created)}" if state.created else "nothing to create"
    return f"nfacct: {made}; counters present: {', '.join(state.existing) or 'none'}"


def describe_sync(r: SyncResult) -> str:
    tables = ", ".join(f"{t} {r.rules[t]} rules in {r.chains[t]} chains" for t in r.rules)
    ensured = (f"created {len(r.created_chains)} chains, prepended {len(r.added_jumps)} jump rules"
               if r.created_chains or r.added_jumps else "canaries and jump rules already there")
    return f"{r.family}: {tables}; {ensured}; deleted {len(r.stale_chains)} stale chains"
