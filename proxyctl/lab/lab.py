"""A lab's life: up (build, play kubelet, apply kube-proxy's rules, start the pods' servers), down.

``Lab.up`` records the lab in the registry before creating anything and tears everything down
again if any step fails or is interrupted (Ctrl-C included), then re-raises. A lab that is up
stays up until ``down`` (``lab down``, or the ``with`` block of a test ends); ``Lab.attach``
finds it again from its record. ``destroy`` and ``destroy_all`` remove what the registry and the
namespace markers say, ending only processes that are this lab's servers.
"""

from __future__ import annotations

import contextlib
import functools
import os
import secrets
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from proxyctl.backends.iptables import options_for
from proxyctl.compiler import effective_mode
from proxyctl.dataplane.apply import ApplyResult, apply_full_sync
from proxyctl.dataplane.iptables import Backend, ShellIptables
from proxyctl.dataplane.nfacct import ensure_counters
from proxyctl.errors import InputError, KernelError
from proxyctl.inputs import Inputs, gather
from proxyctl.lab import registry, servers
from proxyctl.lab.build import ROUTER, build_network, netns_names, remove_namespace
from proxyctl.lab.nsenter import write_sysctl
from proxyctl.lab.topology import Node, Topology, from_cluster, topology_from_dict, topology_to_dict
from proxyctl.node.discover import discover_node_facts

DEFAULT_PREFIX = "pxlab-"
LOCK_WAIT = 60  # seconds
KUBELET_HINT = "*mangle\n:KUBE-IPTABLES-HINT - [0:0]\nCOMMIT\n"
FAMILIES = ("IPv4", "IPv6")


@dataclass
class TeardownReport:
    lab: str
    namespaces: list[str] = field(default_factory=list)  # removed
    servers: list[int] = field(default_factory=list)  # pids ended
    kept: list[str] = field(default_factory=list)  # listed but not removed, and why


@dataclass
class Lab:
    name: str
    topology: Topology
    backend: Backend
    namespaces: dict[str, str]
    manifests: list[str]
    config_path: str | None = None
    server_pids: dict[str, int] = field(default_factory=dict)

    # -- getting one -------------------------------------------------------------------------------
    @classmethod
    def up(cls, manifests: Sequence[str], *, config_path: str | None = None, backend: str = "nft",
           name: str | None = None, prefix: str = DEFAULT_PREFIX,
           progress: Callable[[str], None] = lambda msg: None,
           cancelled: Callable[[], bool] = lambda: False) -> Lab:
        """Build the lab ``manifests`` describe, apply the rules on every node, start the servers.

        ``cancelled()`` is asked between steps; when it says yes, the build stops there, everything
        made is removed and KeyboardInterrupt is raised (the CLI turns Ctrl-C and SIGTERM into that,
        so no signal ever lands in the middle of a netlink exchange)."""
        manifests = [os.path.abspath(m) if m != "-" else m for m in manifests]
        if "-" in manifests:
            raise InputError("lab up reads the objects again for each node: give files, not stdin")
        config_path = os.path.abspath(config_path) if config_path else None
        inputs = gather(manifests, config_path=config_path, discover=None)  # offline: no node yet
        effective_mode(inputs, None)
        for w in inputs.warnings:
            progress(f"warning: {w}")
        for p in inputs.problems:
            progress(f"warning: skipped: {p}")
        topo = from_cluster(inputs.state, inputs.config.cluster_cidrs)
        lab_name = registry.check_lab_name(name or f"lab-{secrets.token_hex(3)}")
        if registry.read(lab_name) is not None:
            raise InputError(f"a lab called {lab_name} exists already (proxyctl lab down {lab_name})")
        names = netns_names(lab_name, topo, prefix)
        lab = cls(lab_name, topo, Backend(backend), names, list(manifests), config_path)
        record = registry.LabRecord(lab_name, lab.backend.value, dict(names), [], topology_to_dict(topo),
                                    list(manifests), config_path)
        registry.write(record)
        owner = os.getpid()

        def checkpoint() -> None:
            if cancelled():
                raise KeyboardInterrupt

        try:
            progress(f"creating {len(names)} network namespaces")
            build_network(lab_name, topo, names, checkpoint)
            for node in topo.nodes:
                checkpoint()
                progress(f"node {node.name}: kubelet's KUBE-IPTABLES-HINT, then kube-proxy's rules ({backend})")
                lab.play_kubelet(node)
                lab.apply_node(node)
            checkpoint()
            progress(f"starting servers in {sum(1 for p in topo.pods if p.ports)} pods")
            lab.start_servers()
            checkpoint()
            record.servers = [registry.ServerRecord(pid, pod, names[pod]) for pod, pid in lab.server_pids.items()]
            record.state = "up"
            registry.write(record)
        except BaseException:
            if os.getpid() != owner:
                # a process forked while building (pyroute2 forks to create namespaces) that got the
                # signal too: it must not tear down, nor unwind any further into our caller
                os._exit(1)
            with contextlib.suppress(Exception):
                destroy(lab_name)
            raise
        return lab

    @classmethod
    def attach(cls, name: str | None = None) -> Lab:
        """The running lab ``name`` (or the only one there is), from its record."""
        if name is None:
            running = [r for r in registry.records() if r.state == "up"]
            if not running:
                raise InputError("no lab is up: start one with `proxyctl lab up -f FILE`")
            if len(running) > 1:
                raise InputError(f"{len(running)} labs are up ({', '.join(r.lab for r in running)}): say which "
                                 "with --lab NAME")
            record = running[0]
        else:
            record = registry.read(name)
            if record is None:
                raise InputError(f"no lab called {name!r} (see `proxyctl lab list`)")
        return cls(record.lab, topology_from_dict(record.topology), Backend(record.backend), dict(record.namespaces),
                   list(record.manifests), record.config, {s.pod: s.pid for s in record.servers})

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.down()

    def down(self) -> TeardownReport:
        return destroy(self.name)

    # -- what it is made of ------------------------------------------------------------------------
    def netns(self, name: str) -> str:
        """The namespace of a node, pod or host (``net`` for the router)."""
        if name not in self.namespaces:
            self.topology.find(name)  # raises with the known names
        return self.namespaces[name]

    @property
    def router_netns(self) -> str:
        return self.namespaces[ROUTER]

    def iptables(self, node: str) -> ShellIptables:
        # the legacy backend's xtables lock is one for the whole machine: wait for it generously
        return ShellIptables(self.backend, netns=self.netns(node), timeout=60.0, lock_wait=LOCK_WAIT)

    # -- what a kubelet and kube-proxy do --------------------------------------------------------------
    def play_kubelet(self, node: Node) -> None:
        """Create mangle KUBE-IPTABLES-HINT in the backend under test, as the kubelet does, so that
        kube-proxy's backend detection picks that backend on this node."""
        ipt = self.iptables(node.name)
        for family in FAMILIES:
            ipt.restore(family, KUBELET_HINT, noflush=True)

    def node_inputs(self, node: Node, *, manifests: Sequence[str] | None = None,
                    config_path: str | None = None) -> Inputs:
        ns = self.netns(node.name)
        return gather(list(manifests or self.manifests), config_path=config_path or self.config_path,
                      hostname_override=node.name, discover=functools.partial(discover_node_facts, ns))

    def apply_node(self, node: Node, *, manifests: Sequence[str] | None = None,
                   config_path: str | None = None) -> ApplyResult:
        """One kube-proxy full sync on ``node`` (node facts discovered in its namespace)."""
        ns = self.netns(node.name)
        inputs = self.node_inputs(node, manifests=manifests, config_path=config_path)
        effective_mode(inputs, None)
        if options_for(inputs.config, inputs.facts, "IPv4", inputs.node).localhost_node_ports:
            write_sysctl(ns, "net.ipv4.conf.all.route_localnet", 1)  # as kube-proxy does for localhost NodePorts
        nfacct = ensure_counters(netns=ns)
        return apply_full_sync(inputs, self.iptables(node.name), nfacct)

    def apply(self, *, manifests: Sequence[str] | None = None, config_path: str | None = None) -> None:
        """A full sync on every node (for example with another configuration)."""
        for node in self.topology.nodes:
            self.apply_node(node, manifests=manifests, config_path=config_path)

    def start_servers(self) -> None:
        procs: list[subprocess.Popen] = []
        pods = [p for p in self.topology.pods if p.ports]
        try:
            for pod in pods:
                argv = servers.command(self.name, self.namespaces[pod.name], pod.name, list(pod.ips),
                                       sorted({p.port for p in pod.ports if p.protocol == "TCP"}),
                                       sorted({p.port for p in pod.ports if p.protocol == "UDP"}))
                proc = servers.start(argv)
                procs.append(proc)
                self.server_pids[pod.name] = proc.pid
                _record_server(self.name, pod.name, self.namespaces[pod.name], proc.pid)
            servers.wait_ready(procs)
        except servers.ServerError as e:
            raise KernelError(str(e)) from e


def _record_server(lab: str, pod: str, ns: str, pid: int) -> None:
    record = registry.read(lab)
    if record is not None:
        record.servers.append(registry.ServerRecord(pid, pod, ns))
        registry.write(record)


# -- tearing down -------------------------------------------------------------------------------------


def destroy(lab: str) -> TeardownReport:
    """Remove lab ``lab``: end its servers, remove its namespaces (only those carrying its marker),
    forget its record. Idempotent."""
    report = TeardownReport(lab)
    record = registry.read(lab)
    listed = dict(record.namespaces) if record else {}
    report.servers += servers.stop([s.pid for s in record.servers] if record else [], lab)
    marked = [ns for ns, owner in registry.marked_namespaces().items() if owner == lab]
    namespaces = list(dict.fromkeys([*listed.values(), *marked]))
    lingering = [pid for ns in namespaces
                 for pid in servers.servers_in_netns(os.path.join(registry.NETNS_DIR, ns), lab)]
    report.servers += servers.stop(lingering, lab)
    for ns in namespaces:
        try:
            if remove_namespace(ns, lab, listed=ns in listed.values()):
                report.namespaces.append(ns)
            elif registry.netns_exists(ns):
                report.kept.append(f"{ns}: does not carry the marker of lab {lab}")
        except OSError as e:
            report.kept.append(f"{ns}: {e}")
    if not report.kept:
        registry.remove(lab)
    return report


def destroy_all() -> list[TeardownReport]:
    """Every lab the registry names or whose marker a namespace carries."""
    labs = list(dict.fromkeys([*registry.record_names(), *registry.marked_namespaces().values()]))
    return [destroy(lab) for lab in labs]


# -- what the lab's objects offer ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceAccess:
    """One service port as a lab user reaches it."""

    name: str  # namespace/name
    port_name: str
    protocol: str  # tcp | udp | sctp
    cluster_ip: str
    port: int
    cluster: str  # ip:port
    node_port: int
    load_balancer_ips: tuple[str, ...]
    external_ips: tuple[str, ...]
    endpoints: int


def services_of(lab: Lab) -> list[ServiceAccess]:
    """Every service port of the lab's objects, per family, as the entry node sees them."""
    from proxyctl.brain.build import build_views
    from proxyctl.lab.probe import addr_text

    inputs = gather(lab.manifests, config_path=lab.config_path, discover=None)
    order = {svc.key: i for i, svc in enumerate(inputs.state.services)}
    out = []
    views = [v for family in FAMILIES for v in build_views(inputs.state, family, lab.topology.entry_node.name)]
    for v in sorted(views, key=lambda v: order.get(v.name.service_key, len(order))):
        if v.cluster_ip:
            out.append(ServiceAccess(v.name.service_key, v.name.port, v.protocol.lower(), v.cluster_ip, v.port,
                                     addr_text(v.cluster_ip, v.port), v.node_port, tuple(v.load_balancer_vips),
                                     tuple(v.external_ips), len(v.endpoints)))
    return out
