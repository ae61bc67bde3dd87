"""The flows of kube-proxy's shared fixtures as real packets: one small world per iptables backend.

Every ``expected.flows.yaml`` under tests/conformance/fixtures/kube-proxy/ names packets
(``sourceIP, protocol, destIP, destPort``) and where kube-proxy's own test tracer says they end
(``output``: DNAT destinations, ACCEPT/DROP/REJECT, or "" when no rule matches; ``masq``: whether
KUBE-MARK-MASQ was hit). This module builds a world in which those packets can be sent for real:

    node     the fixture's node: ``eth0`` carries node.yaml's eth0 addresses (lo keeps its own),
             bridge ``cbr0`` (gateway POD_GATEWAY, fe80::1) leads to the pods, its ports in hairpin
             mode as the bridge CNI's ``hairpinMode: true`` (this kernel has br_netfilter: a
             Service packet DNATed back to the pod that sent it is bridged back out of the port it
             came in on, which a bridge does only in hairpin mode), forwarding on,
             ``route_localnet`` as kube-proxy sets it; the fixture's rules applied with
             ``proxyctl apply --netns`` (trace_packet_static: its rules.iptables restored as is).
             A who-am-I server on every node address, so a packet delivered to the node itself is
             seen (ACCEPT, or a NodePort that no rule rewrote).
    pods     one namespace per endpoint address (EndpointSlices, rules.iptables DNAT targets) and
             per cluster-CIDR source or destination of a flow: its address alone on eth0, default
             route via the node's cbr0, a who-am-I server (peer = the source it saw, local = the
             address it accepted on, i.e. the DNAT target).
    ext      the sources outside the cluster (203.0.113.2, 2600:5200::1): on the node's network
             segment, every packet via the node's primary address.
    beyond   every flow destination that is neither the node's nor a pod's (Service IPs, an
             externalIP that is not the node's, a LoadBalancer IP): the node routes each to this
             namespace, which owns them and answers. A packet no rule rewrote ends here, at its
             own destination: the kernel's meaning of ``output: ""``. It also makes DROP and
             REJECT honest: without the rule, something would have answered.
    net      the bridge that is the node's network segment (node's eth0, ext, beyond).

Everything lives in namespaces made through the netns conftest's registry (``pxctl-test-``
prefix, unique names, always removed); servers are started and stopped by pid.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import json
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from netns_tests.conftest import NetnsRegistry
from proxyctl.backends.iptables import options_for
from proxyctl.cli.main import main as proxyctl_main
from proxyctl.compiler import effective_mode
from proxyctl.dataplane.iptables import Backend, ShellIptables
from proxyctl.inputs import gather
from proxyctl.lab import servers
from proxyctl.lab.live import LiveReport, Vantage, live_trace
from proxyctl.lab.nsenter import write_sysctl
from proxyctl.lab.probe import DROP, REJECT, addr_text

ROOT = Path(__file__).resolve().parents[1]
KP = ROOT / "tests" / "conformance" / "fixtures" / "kube-proxy"
BACKENDS = ("nft", "legacy")
LOCK_WAIT = "60"  # the legacy backend's xtables lock is one for the whole machine
ALPHA = 1e-4
PHASES = ("afterAdd", "afterEndpointSliceDelete", "afterServiceDelete")
PHASE_KEEP = {"afterEndpointSliceDelete": "Service", "afterServiceDelete": "EndpointSlice"}
POD_GATEWAY = {"IPv4": "192.0.2.1", "IPv6": "fd00:ffff::1"}  # the node's cbr0: what masqueraded pods see
LINK_LOCAL_GATEWAY = "fe80::1"  # the node on cbr0 and on eth0 (IPv6 default route of pods and ext)
SERVED = ("tcp", "udp")  # what this kernel can carry (no SCTP)
PORT_BASE, PORT_SLICE = 16384, 1024  # each flow's probes leave from source ports of their own (World._fresh_ports)

# Fixture flows a lab cannot host honestly, with the reason. The test asserts that exactly these
# are left out: everything else runs as real packets.
LEFT_OUT = {
    "cluster_ip_general:afterAdd:clusterIP with TCP, UDP, and SCTP on same port (SCTP)":
        "SCTP: this kernel has no SCTP (socket(IPPROTO_SCTP) fails with EPROTONOSUPPORT, no modules to load), "
        "so no SCTP packet can be sent or answered; "
        "the static tracer covers it (tests/conformance/test_flows.py)",
}

# Where the kernel (and our static tracer on the live rules) legitimately gives another answer
# than kube-proxy's own test tracer: flow id -> (kernel's output, kernel's masq, why). Each one
# is asserted as a fact, not skipped.
KERNEL_DIFFERS: dict[str, tuple[str, bool, str]] = {}


def family_of(ip: str) -> str:
    return "IPv6" if ":" in ip else "IPv4"


def _ip(text: str) -> str:
    return str(ipaddress.ip_interface(text).ip)


# -- the fixtures' flows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    case: str  # the fixture folder, relative to KP
    phase: str
    name: str
    src: str
    protocol: str  # tcp | udp | sctp
    dst: str
    port: int
    output: str
    masq: bool

    @property
    def id(self) -> str:
        return f"{self.case}:{self.phase}:{self.name}"

    @property
    def family(self) -> str:
        return family_of(self.dst)

    def expected_categories(self, output: str | None = None) -> set[str]:
        """Where real packets must end, as live.py counts them: the DNAT targets; the original
        destination itself when nothing rewrote the packet ("" or ACCEPT: delivered, untouched);
        REJECT (connection refused) or DROP (no answer)."""
        output = self.output if output is None else output
        if output in ("", "ACCEPT"):
            return {addr_text(self.dst, self.port)}
        if output in ("DROP", "REJECT"):
            return {output}
        return {d.strip() for d in output.split(",")}


def cases() -> list[Path]:
    return sorted(p.parent for p in KP.rglob("expected.flows.yaml"))


def load_flows() -> list[Flow]:
    out = []
    for case in cases():
        data = yaml.safe_load((case / "expected.flows.yaml").read_text())
        phases = data if isinstance(data, dict) else {"afterAdd": data}
        for phase, items in phases.items():
            for f in items:
                out.append(Flow(str(case.relative_to(KP)), phase, f["name"], str(ipaddress.ip_address(f["sourceIP"])),
                                f["protocol"].lower(), str(ipaddress.ip_address(f["destIP"])), int(f["destPort"]),
                                f["output"], bool(f["masq"])))
    return out


def why_not_hosted(flow: Flow) -> str | None:
    """The reason a flow cannot run as real packets here, or None."""
    if flow.protocol not in SERVED:
        return LEFT_OUT.get(flow.id, f"{flow.protocol}: this kernel cannot carry it")
    return None


def node_facts() -> dict:
    """node.yaml: the same node in every fixture (one world serves them all)."""
    texts = {yaml.safe_dump(yaml.safe_load((c / "node.yaml").read_text())) for c in cases()}
    assert len(texts) == 1, "the fixtures describe different nodes: one world per node would be needed"
    return yaml.safe_load(texts.pop())


def _slices(case: Path) -> list[dict]:
    path = case / "input.yaml"
    if not path.exists():
        return []
    return [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "EndpointSlice"]


def _endpoints(case: Path) -> tuple[set[str], set[tuple[str, int]]]:
    """Every endpoint address of a case and the (protocol, port) its endpoints serve."""
    addrs: set[str] = set()
    ports: set[tuple[str, int]] = set()
    for s in _slices(case):
        for e in s.get("endpoints") or []:
            addrs.update(str(ipaddress.ip_address(a)) for a in e.get("addresses") or [])
        for p in s.get("ports") or []:
            ports.add(((p.get("protocol") or "TCP").lower(), int(p["port"])))
    rules = case / "rules.iptables"
    if rules.exists():
        for line in rules.read_text().splitlines():
            m = re.search(r"-p (\w+) .*--to-destination \[?([0-9a-fA-F.:]+?)\]?:(\d+)", line)
            if m:
                addrs.add(str(ipaddress.ip_address(m.group(2))))
                ports.add((m.group(1), int(m.group(3))))
    return addrs, ports


def _cluster_cidrs(case: Path) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    cfg = yaml.safe_load((case / "kube-proxy-config.yaml").read_text()) or {}
    return [ipaddress.ip_network(c.strip()) for c in (cfg.get("clusterCIDR") or "").split(",") if c.strip()]


# -- the world ------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Which address lives where, and which ports every server serves (derived from the fixtures)."""

    node_eth0: list[str]  # with prefixes
    node_local: list[str]  # every address of the node (lo and eth0), without prefixes
    node_ip: dict[str, str]  # primary per family
    pods: list[str]
    external: list[str]
    beyond: list[str]
    tcp: list[int]
    udp: list[int]

    def beyond_gateway(self, family: str) -> str:
        """beyond's address on the node's segment: .254 (::fe) of the node's primary subnet."""
        primary = next(a for a in self.node_eth0 if _ip(a) == self.node_ip[family])
        net = ipaddress.ip_interface(primary).network
        return str(net.network_address + 254)

    def is_node(self, ip: str) -> bool:
        return ip in self.node_local or ipaddress.ip_address(ip).is_loopback


def plan(flows: list[Flow]) -> Plan:
    facts = node_facts()
    lo = facts["addresses"].get("lo", [])
    assert sorted(_ip(a) for a in lo) == ["127.0.0.1", "::1"], "lo is expected to hold only what a namespace's lo has"
    eth0 = list(facts["addresses"]["eth0"])
    local = [_ip(a) for a in lo] + [_ip(a) for a in eth0]
    pods: set[str] = set()
    ports: set[tuple[str, int]] = set()
    cidrs = []
    for case in cases():
        addrs, served = _endpoints(case)
        pods |= addrs
        ports |= served
        cidrs += _cluster_cidrs(case)
    hosted = [f for f in flows if why_not_hosted(f) is None]
    node_ip = {fam: str(ipaddress.ip_address(ip)) for fam, ip in facts["nodeIPs"].items()}
    p = Plan(eth0, local, node_ip, [], [], [], [], [])
    for f in hosted:
        ports.add((f.protocol, f.port))
        for ip in (f.src, f.dst):
            if not p.is_node(ip) and any(ipaddress.ip_address(ip) in c for c in cidrs):
                pods.add(ip)
    p.pods = sorted(pods, key=_sort_key)
    p.external = sorted({f.src for f in hosted if not p.is_node(f.src) and f.src not in pods}, key=_sort_key)
    p.beyond = sorted({f.dst for f in hosted if not p.is_node(f.dst) and f.dst not in pods}, key=_sort_key)
    p.tcp = sorted(port for proto, port in ports if proto == "tcp")
    p.udp = sorted(port for proto, port in ports if proto == "udp")
    return p


def _sort_key(ip: str) -> tuple[int, int]:
    a = ipaddress.ip_address(ip)
    return a.version, int(a)


def _ip_batch(ns: str, commands: list[str]) -> None:
    done = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(commands) + "\n", capture_output=True,
                          text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip -batch in {ns} failed: {done.stderr.strip()}")


def _cmd_ns(ns: str, *argv: str, timeout: float = 30.0, stdin: str | None = None) -> str:
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], input=stdin, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {ns} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def _v6_flags(ip: str) -> str:
    return " nodad" if family_of(ip) == "IPv6" else ""


def _host_prefix(ip: str) -> str:
    return f"{ip}/{128 if family_of(ip) == 'IPv6' else 32}"


@dataclass
class World:
    backend: str
    plan: Plan
    ns: dict[str, str]  # role ("node", "net", "ext", "beyond", or a pod address) -> namespace
    tag: str  # the servers' lab tag (servers.stop checks it before ending a pid)
    tmp: Path
    pids: list[int] = field(default_factory=list)
    applied: tuple[str, str] | None = None  # (case, phase) whose rules the node holds
    port_slices: dict[str, int] = field(default_factory=dict)  # client namespace -> port slices used
    log: list[str] = field(default_factory=list)  # what was applied, in order

    @property
    def node(self) -> str:
        return self.ns["node"]

    def pod_names(self) -> dict[str, str]:
        return {ip: f"pod-{ip}" for ip in self.plan.pods} | {ip: "beyond" for ip in self.plan.beyond} | {
            ip: "node" for ip in self.plan.node_local}

    # -- the fixture's rules on the node -----------------------------------------------------------
    def ensure(self, case: str, phase: str) -> None:
        """The node holds ``case``'s rules as they are after ``phase`` (the sync history replayed:
        the objects added, then the deletion the phase names, each one ``proxyctl apply``)."""
        if self.applied == (case, phase):
            return
        if self.applied is None or self.applied[0] != case or PHASES.index(phase) < PHASES.index(self.applied[1]):
            self._fresh_node()
            self._apply(case, "afterAdd")
        if phase != "afterAdd":
            self._apply(case, phase)

    def ensure_no_rules(self) -> None:
        """The node without any rules (the next ``ensure`` starts over)."""
        self._fresh_node()
        self.log.append("no rules")

    def _fresh_node(self) -> None:
        """No rules, no conntrack entries: the node as before kube-proxy's first sync."""
        ipt = ShellIptables(self.backend, netns=self.node, timeout=60.0, lock_wait=int(LOCK_WAIT))
        for family in ("IPv4", "IPv6"):
            ipt.restore(family, "*filter\nCOMMIT\n*nat\nCOMMIT\n*mangle\nCOMMIT\n", noflush=False)
        _cmd_ns(self.node, "conntrack", "-F")
        _cmd_ns(self.node, "conntrack", "-F", "-f", "ipv6")
        self.applied = None

    def _apply(self, case: str, phase: str) -> None:
        d = KP / case
        if (d / "rules.iptables").exists():  # kube-proxy's test ruleset, loaded as its test loads it
            ipt = ShellIptables(self.backend, netns=self.node, timeout=60.0, lock_wait=int(LOCK_WAIT))
            ipt.restore("IPv4", (d / "rules.iptables").read_text(), noflush=True)
            self.log.append(f"{case}: rules.iptables restored")
        else:
            manifest = self._phase_input(d, phase)
            config = str(d / "kube-proxy-config.yaml")
            facts = str(d / "node.yaml")
            inputs = gather([manifest], config_path=config, node_facts_path=facts, discover=None)
            effective_mode(inputs, None)
            localnet = options_for(inputs.config, inputs.facts, "IPv4", inputs.node).localhost_node_ports
            write_sysctl(self.node, "net.ipv4.conf.all.route_localnet", 1 if localnet else 0)  # as kube-proxy does
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = proxyctl_main(["apply", "-f", manifest, "--config", config, "--node-facts", facts,
                                      "--netns", self.node, "--iptables-backend", self.backend,
                                      "--lock-wait", LOCK_WAIT])
            if code != 0:
                raise RuntimeError(f"proxyctl apply of {case} ({phase}) failed ({code}): {err.getvalue()}")
            self.log.append(f"{case} {phase}: proxyctl apply, {out.getvalue().strip().splitlines()[-1]}")
        self.applied = (case, phase)

    def _phase_input(self, case: Path, phase: str) -> str:
        keep = PHASE_KEEP.get(phase)
        if keep is None:
            return str(case / "input.yaml")
        docs = [d for d in yaml.safe_load_all((case / "input.yaml").read_text()) if d and d["kind"] == keep]
        out = self.tmp / f"{case.name}-{phase}.yaml"
        out.write_text(yaml.safe_dump_all(docs) if docs else "")
        return str(out)

    # -- sending the packets -------------------------------------------------------------------------
    def vantage(self, flow: Flow) -> tuple[Vantage, str]:
        """Who sends ``flow``'s packets, and how (``connect``, or ``raw`` when the kernel would pick
        another source address than the flow's for a connection)."""
        if self.plan.is_node(flow.src):
            ns, iface = self.node, None
        elif flow.src in self.plan.pods:
            ns, iface = self.ns[flow.src], "cbr0"
        else:
            ns, iface = self.ns["ext"], "eth0"
        # a connection picks its source address from the route: it must be the flow's own
        kind = "connect" if self.kernel_source(ns, flow.dst) == flow.src else "raw"
        if kind == "raw" and flow.protocol != "tcp":
            raise AssertionError(f"{flow.id}: the kernel would not send from {flow.src}; raw probes cover only TCP")
        v = Vantage(f"{flow.src}", ns, flow.src, "node", self.node, iface, Backend(self.backend), self.pod_names())
        return v, kind

    def _fresh_ports(self, ns: str) -> None:
        """Give the client a source-port range no earlier flow of this world used, so every probe is
        a connection never seen before (as the fixture's packet is), by the node and by the pod.
        Without it a port reused from an earlier flow to another destination meets that flow's
        conntrack entry still in TIME_WAIT: the node's NAT then remaps the source port to keep the
        reply tuples apart (live.py counts that as masquerade), or, in a fresh conntrack table,
        the SYN meets the pod's TIME_WAIT socket for the same four-tuple."""
        k = self.port_slices.get(ns, 0)
        first = PORT_BASE + k * PORT_SLICE
        assert first + PORT_SLICE <= 65536, f"no fresh source ports left in {ns}"
        write_sysctl(ns, "net.ipv4.ip_local_port_range", f"{first} {first + PORT_SLICE - 1}")
        self.port_slices[ns] = k + 1

    @staticmethod
    def kernel_source(ns: str, dst: str) -> str | None:
        routes = json.loads(_cmd_ns(ns, "ip", "-j", "route", "get", dst) or "[]")
        src = routes[0].get("prefsrc") if routes else None
        return str(ipaddress.ip_address(src)) if src else None

    def probe(self, flow: Flow, count: int, timeout: float) -> tuple[LiveReport, str]:
        """``trace --live`` for the flow: real probes, conntrack in the node, and the static tracer on
        the node's live rules. One fresh resample when only the chi-square test disagreed (a false
        failure then has probability about ALPHA²)."""
        vantage, kind = self.vantage(flow)
        self._fresh_ports(vantage.client_netns)
        report = live_trace(vantage, flow.dst, flow.port, flow.protocol, count, kind=kind, timeout=timeout,
                            alpha=ALPHA)
        only_chi2 = not report.agrees and not report.comparison.unexpected and all(
            d.startswith("the observed distribution differs") for d in report.disagreements)
        if only_chi2:
            report = live_trace(vantage, flow.dst, flow.port, flow.protocol, count, kind=kind, timeout=timeout,
                                alpha=ALPHA)
        return report, kind


def build_world(backend: str, tmp: Path, flows: list[Flow]) -> Iterator[World]:
    """A generator for a fixture: the world up, yielded, and always torn down (servers, namespaces)."""
    p = plan(flows)
    registry = NetnsRegistry()
    world = World(backend, p, {}, f"fixture-flows-{secrets.token_hex(4)}", tmp)
    try:
        world.ns["net"] = registry.create("ff-net")
        world.ns["node"] = registry.create("ff-node")
        world.ns["ext"] = registry.create("ff-ext")
        world.ns["beyond"] = registry.create("ff-beyond")
        for ip in p.pods:
            world.ns[ip] = registry.create("ff-pod")
        _wire(world)
        _start_servers(world)
        yield world
    finally:
        try:
            servers.stop(world.pids, world.tag)
        finally:
            registry.cleanup()


def _wire(w: World) -> None:
    p, ns = w.plan, w.ns
    for name in ns.values():
        write_sysctl(name, "net.ipv6.conf.all.accept_dad", 0)
        write_sysctl(name, "net.ipv6.conf.default.accept_dad", 0)
    node = ns["node"]
    for key in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"):
        write_sysctl(node, key, 1)

    # the node's segment: a bridge in "net" with the node's eth0, ext and beyond on it
    net_cmds = ["link add br0 type bridge", "link set br0 up"]
    for port, role in (("s-node", "node"), ("s-ext", "ext"), ("s-beyond", "beyond")):
        net_cmds += [f"link add {port} type veth peer name eth0 netns {ns[role]}", f"link set {port} master br0 up"]
    _ip_batch(ns["net"], net_cmds)

    node_cmds = ["link set lo up", "link set eth0 up", f"addr add {LINK_LOCAL_GATEWAY}/64 dev eth0 nodad"]
    node_cmds += [f"addr add {a} dev eth0{_v6_flags(_ip(a))}" for a in p.node_eth0]
    node_cmds += ["link add cbr0 type bridge", "link set cbr0 up", f"addr add {LINK_LOCAL_GATEWAY}/64 dev cbr0 nodad"]
    node_cmds += [f"addr add {_host_prefix(gw)} dev cbr0{_v6_flags(gw)}" for gw in POD_GATEWAY.values()]
    for i, ip in enumerate(p.pods):
        node_cmds += [f"link add p{i} type veth peer name eth0 netns {ns[ip]}", f"link set p{i} master cbr0 up",
                      f"link set p{i} type bridge_slave hairpin on", f"route add {_host_prefix(ip)} dev cbr0"]
    node_cmds += [f"route add {_host_prefix(ip)} dev eth0" for ip in p.external]
    node_cmds += [f"route add {_host_prefix(ip)} via {p.beyond_gateway(family_of(ip))} dev eth0" for ip in p.beyond]
    _ip_batch(node, node_cmds)

    for ip in p.pods:
        cmds = ["link set lo up", "link set eth0 up", f"addr add {_host_prefix(ip)} dev eth0{_v6_flags(ip)}"]
        if family_of(ip) == "IPv6":
            cmds.append(f"route add default via {LINK_LOCAL_GATEWAY} dev eth0")
        else:
            cmds.append(f"route add default via {POD_GATEWAY['IPv4']} dev eth0 onlink")
        _ip_batch(ns[ip], cmds)

    ext = ["link set lo up", "link set eth0 up"]
    for ip in p.external:
        ext.append(f"addr add {_host_prefix(ip)} dev eth0{_v6_flags(ip)}")
    ext += [f"route add default via {p.node_ip['IPv4']} dev eth0 onlink",
            f"route add default via {LINK_LOCAL_GATEWAY} dev eth0"]
    _ip_batch(ns["ext"], ext)

    beyond = ["link set lo up", "link set eth0 up"]
    for family in ("IPv4", "IPv6"):
        net = ipaddress.ip_interface(next(a for a in p.node_eth0 if _ip(a) == p.node_ip[family])).network
        beyond.append(f"addr add {p.beyond_gateway(family)}/{net.prefixlen} dev eth0{' nodad' * (family == 'IPv6')}")
        beyond.append(f"route add default via {p.node_ip[family]} dev eth0")
    beyond += [f"addr add {_host_prefix(ip)} dev lo{_v6_flags(ip)}" for ip in p.beyond]
    _ip_batch(ns["beyond"], beyond)


def _start_servers(w: World) -> None:
    p = w.plan
    wanted = [("node", w.node, p.node_local), ("beyond", w.ns["beyond"], p.beyond)]
    wanted += [(f"pod-{ip}", w.ns[ip], [ip]) for ip in p.pods]
    procs = []
    for name, ns, addrs in wanted:
        proc = servers.start(servers.command(w.tag, ns, name, list(addrs), p.tcp, p.udp))
        procs.append(proc)
        w.pids.append(proc.pid)
    servers.wait_ready(procs, timeout=30.0)


def explain(flow: Flow, report: LiveReport, kind: str) -> str:
    """What a failing assertion shows."""
    lines = [f"{flow.id}: {flow.src} -> {addr_text(flow.dst, flow.port)}/{flow.protocol} ({kind} probes, "
             f"{report.backend.value}); fixture: output={flow.output!r} masq={flow.masq}; static tracer on the live "
             f"rules: output={report.first.flow_output()!r} masq={report.first.masquerade}"]
    lines += [f"  {c.category}: predicted {c.predicted:.3f} masq={c.predicted_masquerade}, observed {c.observed}, "
              f"masqueraded {c.masqueraded}, peers {', '.join(c.peers)}" for c in report.categories]
    lines += [f"  x {d}" for d in report.disagreements]
    lines += [f"  warning: {x}" for x in report.warnings]
    lines += [f"  probe {p.index}: {p.result} {p.detail} after {p.elapsed:.2f}s" for p in report.probes
              if p.category in (REJECT, DROP, "ERROR")][:5]
    return "\n".join(lines)


# -- a summary at the end of the run (this module is also the test module's pytest plugin) -------------

_RESULTS: dict[str, dict[str, str]] = {}


def pytest_runtest_makereport(item, call):
    if item.originalname != "test_fixture_flow" or call.when != "call":
        return
    params = getattr(getattr(item, "callspec", None), "params", {})
    flow = params.get("flow")
    if isinstance(flow, Flow):
        outcome = "passed" if call.excinfo is None else "failed"
        _RESULTS.setdefault(flow.id, {})[str(params.get("world", "-"))] = outcome


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _RESULTS:
        return
    tr = terminalreporter
    tr.section("kube-proxy fixture flows as real packets")
    by_case: dict[str, dict[str, int]] = {}
    for fid, results in _RESULTS.items():
        case = fid.split(":")[0]
        for backend, outcome in results.items():
            if outcome == "passed":
                by_case.setdefault(case, {}).setdefault(backend, 0)
                by_case[case][backend] += 1
    for case in sorted({fid.split(":")[0] for fid in _RESULTS}):
        counts = by_case.get(case, {})
        tr.write_line(f"{case}: " + ", ".join(f"{counts.get(b, 0)} passed on {b}" for b in BACKENDS))
    for fid, why in LEFT_OUT.items():
        tr.write_line(f"left out: {fid}: {why}")
    for fid, (out, masq, why) in KERNEL_DIFFERS.items():
        tr.write_line(f"kernel differs from kube-proxy's tracer: {fid}: output={out!r} masq={masq}: {why}")
    if not KERNEL_DIFFERS:
        tr.write_line("no flow where the kernel differs from kube-proxy's test tracer (KERNEL_DIFFERS is empty)")
