"""Remove what kube-proxy (any mode) or proxyctl left on a node, and nothing else.

What is kube-proxy's (KUBE-PROXY.md §1.1, §3, §4, §5):

- iptables chains, in any table, of every mode: iptables (``KUBE-SERVICES`` ... and the
  per-service ``KUBE-SVC-``/``SVL-``/``EXT-``/``FW-``/``SEP-`` chains, ``KUBE-XLB-`` of releases
  before 1.24), ipvs (``KUBE-NODE-PORT``, ``KUBE-LOAD-BALANCER``, ...) and userspace
  (``KUBE-PORTALS-*``, ``KUBE-NODEPORT-*``); plus the rules in built-in chains that jump to them;
- ipsets named ``KUBE-*`` (ipvs mode; IPv6 sets are ``KUBE-6-*``);
- the nftables tables ``ip kube-proxy`` and ``ip6 kube-proxy`` (nftables mode);
- the ``kube-ipvs0`` link and the service addresses on it (ipvs mode).

Never touched: the kubelet's ``KUBE-FIREWALL``, ``KUBE-KUBELET-CANARY``, ``KUBE-IPTABLES-HINT``
(and the jumps to them), and every chain, rule, set or table of other software. A kube-proxy
chain that another program's chain jumps to is kept (with what it jumps to), and reported,
because deleting it would fail or break that program. Running it twice does nothing the second
time. Steps run in dependency order (iptables rules before the ipsets they name); a failing step
does not stop the others, and ``CleanupError`` lists every failure and what was done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from proxyctl.dataplane.errors import CleanupError
from proxyctl.dataplane.iptables import Iptables
from proxyctl.dataplane.runner import DEFAULT_RUNNER, Runner
from proxyctl.errors import KernelError, RulesParseError
from proxyctl.node.netns import call_with_deadline, netns_path
from proxyctl.rules.iptables.model import BUILTIN_CHAINS, Table
from proxyctl.rules.iptables.parse import parse_rules

OWNED_CHAINS = frozenset({
    # iptables mode
    "KUBE-SERVICES", "KUBE-EXTERNAL-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ",
    "KUBE-FORWARD", "KUBE-PROXY-FIREWALL", "KUBE-PROXY-CANARY",
    # ipvs mode
    "KUBE-NODE-PORT", "KUBE-LOAD-BALANCER", "KUBE-SOURCE-RANGES-FIREWALL", "KUBE-IPVS-FILTER",
    "KUBE-IPVS-OUT-FILTER",
    # userspace mode (removed from kube-proxy in 1.26; proxyctl writes it)
    "KUBE-PORTALS-CONTAINER", "KUBE-PORTALS-HOST", "KUBE-NODEPORT-CONTAINER", "KUBE-NODEPORT-HOST",
    "KUBE-NODEPORT-NON-LOCAL",
})
OWNED_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-", "KUBE-XLB-",
                  "PXCTL-")  # every chain of proxyctl beside kube-proxy (--service-proxy-name)
KUBELET_CHAINS = frozenset({"KUBE-FIREWALL", "KUBE-KUBELET-CANARY", "KUBE-IPTABLES-HINT"})
IPSET_PREFIX = "KUBE-"
NFT_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))
IPVS_LINK = "kube-ipvs0"


def is_owned(chain: str) -> bool:
    """Whether kube-proxy (of any mode) or proxyctl made ``chain``."""
    if chain in KUBELET_CHAINS:
        return False
    return chain in OWNED_CHAINS or chain.startswith(OWNED_PREFIXES)


@dataclass(frozen=True)
class TablePlan:
    table: str
    remove: tuple[str, ...]  # chains to flush and delete
    jumps: tuple[str, ...]  # ``-D`` lines: rules in built-in chains that jump to them
    kept: tuple[tuple[str, str], ...]  # (our chain, a chain that stays and jumps to it)

    def lines(self) -> list[str]:
        if not self.remove and not self.jumps:
            return []
        return ([f"*{self.table}"] + [f":{c} - [0:0]" for c in self.remove] + list(self.jumps)
                + [f"-X {c}" for c in self.remove] + ["COMMIT"])


def plan_table(table: Table) -> TablePlan:
    builtins = set(BUILTIN_CHAINS.get(table.name, ()))
    owned = [c for c in table.chains if is_owned(c)]
    owned_set = set(owned)
    kept: dict[str, str] = {}  # our chain -> a chain that jumps to it and stays
    for chain in table.chains.values():
        if chain.name in builtins or chain.name in owned_set:
            continue
        for rule in chain.rules:
            if rule.target in owned_set and rule.target not in kept:
                kept[rule.target] = chain.name
    queue = list(kept)
    while queue:  # what a kept chain jumps to stays too
        parent = queue.pop()
        for rule in table.chains[parent].rules:
            if rule.target in owned_set and rule.target not in kept:
                kept[rule.target] = parent
                queue.append(rule.target)
    remove = tuple(c for c in owned if c not in kept)
    jumps = tuple(rule.render(b).replace(f"-A {b}", f"-D {b}", 1)
                  for b in BUILTIN_CHAINS.get(table.name, ()) if b in table.chains
                  for rule in table.chains[b].rules if rule.target in remove)
    return TablePlan(table.name, remove, jumps, tuple(kept.items()))


def cleanup_iptables(ipt: Iptables, family: str) -> list[str]:
    """Remove kube-proxy's chains and jumps from every table of one backend and family."""
    text = ipt.save(family)
    try:
        tables = parse_rules(text, source=f"iptables-save ({family})", family=family).ruleset.tables
    except RulesParseError as e:
        raise KernelError(f"cannot read the {family} tables of the {ipt.backend} backend: {e}",
                          netns=ipt.netns) from e
    plans = [plan_table(t) for t in tables.values()]
    payload = [line for p in plans for line in p.lines()]
    done = []
    if payload:
        ipt.restore(family, "\n".join(payload) + "\n", noflush=True, counters=False)
    where = f"{ipt.backend} {family}"
    for p in plans:
        if p.remove or p.jumps:
            done.append(f"{where} {p.table}: deleted {len(p.jumps)} jump rule(s) and {len(p.remove)} chain(s)")
        for chain, by in p.kept:
            done.append(f"{where} {p.table}: kept {chain}: {by}, which is not removed, jumps to it")
    return done


def cleanup_ipsets(*, netns: str | None, timeout: float, runner: Runner = DEFAULT_RUNNER) -> list[str]:
    names = runner(("ipset", "list", "-n"), netns=netns, timeout=timeout).split()
    done = []
    for name in names:
        if name.startswith(IPSET_PREFIX):
            runner(("ipset", "destroy", name), netns=netns, timeout=timeout)
            done.append(f"ipset: destroyed {name}")
    return done


def cleanup_nftables(*, netns: str | None, timeout: float, runner: Runner = DEFAULT_RUNNER) -> list[str]:
    listed = {tuple(line.split()[1:3]) for line in runner(("nft", "list", "tables"), netns=netns,
                                                          timeout=timeout).splitlines()
              if line.startswith("table ")}
    done = []
    for family, name in NFT_TABLES:
        if (family, name) in listed:
            runner(("nft", "delete", "table", family, name), netns=netns, timeout=timeout)
            done.append(f"nftables: deleted table {family} {name}")
    return done


def cleanup_ipvs_link(*, netns: str | None, timeout: float) -> list[str]:
    """Delete ``kube-ipvs0`` (its addresses go with it), reporting the addresses it held."""
    if netns is not None:
        netns_path(netns)

    def remove() -> list[str]:
        kwargs = {} if netns is None else {"netns": netns, "flags": 0}
        with IPRoute(**kwargs) as ipr:
            found = ipr.link_lookup(ifname=IPVS_LINK)
            if not found:
                return []
            addresses = [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(index=found[0])]
            ipr.link("del", index=found[0])
        held = f" and its addresses {', '.join(addresses)}" if addresses else ""
        return [f"link: deleted {IPVS_LINK}{held}"]

    argv = ("rtnetlink", "link", "del", IPVS_LINK)
    try:
        return call_with_deadline(remove, timeout=timeout, what=f"deleting {IPVS_LINK}")
    except KernelError as e:
        raise KernelError(str(e), argv=argv, netns=netns) from e
    except (NetlinkError, OSError) as e:
        raise KernelError(f"deleting {IPVS_LINK} failed: {e}", argv=argv, netns=netns, stderr=str(e)) from e


def cleanup_node(iptables: Sequence[Iptables], *, netns: str | None, timeout: float = 30.0,
                 runner: Runner = DEFAULT_RUNNER,
                 ipvs_link: Callable[..., list[str]] = cleanup_ipvs_link) -> list[str]:
    """Every step, for each of ``iptables`` (backends) and both families; what was done.

    Raises CleanupError after running every step when any failed.
    """
    steps: list[Callable[[], list[str]]] = [
        *(_iptables_step(ipt, family) for ipt in iptables for family in ("IPv4", "IPv6")),
        lambda: cleanup_ipsets(netns=netns, timeout=timeout, runner=runner),
        lambda: cleanup_nftables(netns=netns, timeout=timeout, runner=runner),
        lambda: ipvs_link(netns=netns, timeout=timeout),
    ]
    done: list[str] = []
    failures: list[KernelError] = []
    for step in steps:
        try:
            done.extend(step())
        except KernelError as e:
            failures.append(e)
    if failures:
        raise CleanupError(failures, done)
    return done


def _iptables_step(ipt: Iptables, family: str) -> Callable[[], list[str]]:
    return lambda: cleanup_iptables(ipt, family)
