"""``proxyctl cleanup``: remove what kube-proxy (any mode) or proxyctl left on a node."""

from __future__ import annotations

import click

from proxyctl.cli.apply_cmd import check_netns, lock_wait_option, netns_option
from proxyctl.dataplane.backend_detect import detect_backend
from proxyctl.dataplane.cleanup import cleanup_node
from proxyctl.dataplane.iptables import Backend, ShellIptables


@click.command("cleanup")
@netns_option
@click.option("--iptables-backend", type=click.Choice(["all", "auto", "nft", "legacy"]), default="all",
              show_default=True, help="all: both backends (leftovers may be in either); auto: the detected one.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=30.0, show_default=True,
              metavar="SECONDS", help="Deadline of each kernel command (a restore gets --lock-wait more).")
@lock_wait_option
def command(netns, iptables_backend, timeout, lock_wait):
    """Remove kube-proxy's iptables chains and jump rules (both families), its KUBE-* ipsets, the
    nftables tables ip/ip6 kube-proxy and the kube-ipvs0 link with its addresses.

    Never the kubelet's chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) nor
    anything of other software. Idempotent. Exit 0 done (also when there was nothing to do),
    1 a kernel command failed (the other steps still ran).
    """
    check_netns(netns)
    if iptables_backend == "all":
        backends = [Backend.NFT, Backend.LEGACY]
    elif iptables_backend == "auto":
        backends = [detect_backend(netns=netns, timeout=min(timeout, 10.0)).backend]
    else:
        backends = [Backend(iptables_backend)]
    done = cleanup_node([ShellIptables(b, netns=netns, timeout=timeout, lock_wait=lock_wait) for b in backends],
                        netns=netns, timeout=timeout)
    for line in done:
        click.echo(line)
    if not done:
        click.echo("nothing to clean up")
