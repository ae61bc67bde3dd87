"""KubeProxyConfiguration: kube-proxy's configuration file, read, defaulted and validated as v1.36 does.

kube-proxy v1.36 decodes its file strictly first and, when that fails only for unknown or
duplicate fields, decodes it again leniently and logs. ``load_config`` does the same: those fields
become warnings, or errors with ``strict=True``. A value of the wrong type, a file that is not YAML
or not a v1alpha1 KubeProxyConfiguration, and anything validation rejects are always errors.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from proxyctl.config.codec import Decoded, decode, describe, encode
from proxyctl.config.defaults import apply_defaults
from proxyctl.config.duration import parse_duration
from proxyctl.config.schema import API_VERSION, KIND, KUBE_PROXY_CONFIGURATION
from proxyctl.config.validation import effective_mode, sync_section, validate_data
from proxyctl.config.yamlfile import load_yaml
from proxyctl.errors import ConfigError, Problem

# apiVersions kube-proxy once read, and what became of them.
_OLD_API_VERSIONS = {
    "componentconfig/v1alpha1": "the group's old name; change it to kubeproxy.config.k8s.io/v1alpha1",
    "kubeproxy.config.k8s.io/v1alpha2": "kube-proxy v1.36 reads only v1alpha1",
}


@dataclass(frozen=True)
class KubeProxyConfiguration:
    """A fully defaulted configuration. ``data`` is the v1alpha1 form (camelCase keys, durations as
    Go strings) that ``proxyctl config view`` prints; the properties read it the way kube-proxy does."""

    data: dict
    source: str = field(default="", compare=False)  # the file it came from, for messages

    @property
    def mode(self) -> str:
        """As written: "", "iptables", "ipvs", "nftables" or "userspace"."""
        return self.data["mode"]

    @property
    def effective_mode(self) -> str:
        return effective_mode(self.mode)

    def _masquerade_section(self) -> dict:
        return self.data["nftables" if self.mode == "nftables" else "iptables"]

    @property
    def masquerade_bit(self) -> int:
        return self._masquerade_section()["masqueradeBit"]

    @property
    def masquerade_all(self) -> bool:
        return self._masquerade_section()["masqueradeAll"]

    @property
    def localhost_node_ports(self) -> bool:
        return self.data["iptables"]["localhostNodePorts"]

    @property
    def sync_period(self) -> float:
        return parse_duration(self.data[sync_section(self.effective_mode)]["syncPeriod"])

    @property
    def min_sync_period(self) -> float:
        return parse_duration(self.data[sync_section(self.effective_mode)]["minSyncPeriod"])

    @property
    def cluster_cidrs(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.data["clusterCIDR"].split(",") if part.strip())

    @property
    def detect_local_mode(self) -> str:
        return self.data["detectLocalMode"] or "ClusterCIDR"

    @property
    def bridge_interface(self) -> str:
        return self.data["detectLocal"]["bridgeInterface"]

    @property
    def interface_name_prefix(self) -> str:
        return self.data["detectLocal"]["interfaceNamePrefix"]

    @property
    def node_port_addresses(self) -> tuple[str, ...] | None:
        """None when unset; kube-proxy treats an empty list the same way, so that is None too."""
        addresses = self.data["nodePortAddresses"]
        return tuple(addresses) if addresses else None

    @property
    def hostname_override(self) -> str:
        return self.data["hostnameOverride"]

    @property
    def bind_address(self) -> str:
        return self.data["bindAddress"]

    @property
    def healthz_bind_address(self) -> str:
        return self.data["healthzBindAddress"]

    @property
    def metrics_bind_address(self) -> str:
        return self.data["metricsBindAddress"]

    @property
    def ipvs_scheduler(self) -> str:
        return self.data["ipvs"]["scheduler"]

    @property
    def conntrack(self) -> dict:
        """The conntrack section with its durations in seconds (None where unset)."""
        section = dict(self.data["conntrack"])
        for name in ("tcpEstablishedTimeout", "tcpCloseWaitTimeout", "udpTimeout", "udpStreamTimeout"):
            if section[name] is not None:
                section[name] = parse_duration(section[name])
        return section


@dataclass(frozen=True)
class ConfigLoad:
    """What reading a file gave: the configuration (None if it could not be read at all), the
    warnings to show, and the problems that make it unusable."""

    config: KubeProxyConfiguration | None
    warnings: list[str]
    problems: list[Problem]


def default_config() -> KubeProxyConfiguration:
    """kube-proxy's configuration when its file is empty but for apiVersion and kind."""
    return _build(decode({"apiVersion": API_VERSION, "kind": KIND}, KUBE_PROXY_CONFIGURATION), "")


def validate(cfg: KubeProxyConfiguration) -> list[Problem]:
    """Every problem kube-proxy v1.36 (plus the userspace mode) finds in ``cfg``; empty if it is valid."""
    return validate_data(cfg.data, cfg.source)


def load_config(path: str | None, *, strict: bool = False) -> tuple[KubeProxyConfiguration, list[str]]:
    """Read, default and validate a configuration file: ``(config, warnings)``.

    ``None`` gives the defaults and "-" reads stdin. Raises ConfigError with one Problem per error.
    """
    result = read_config(path, strict=strict)
    if result.problems or result.config is None:
        count = len(result.problems)
        raise ConfigError(f"{path}: {count} problem{'s' if count != 1 else ''} in the KubeProxyConfiguration",
                          problems=result.problems)
    return result.config, result.warnings


def read_config(path: str | None, *, strict: bool = False) -> ConfigLoad:
    """Like ``load_config``, but returns the warnings and problems instead of raising."""
    if path is None:
        return ConfigLoad(default_config(), [], [])
    try:
        text = sys.stdin.read() if path == "-" else _read_file(path)
        raw = load_yaml(text)
    except (OSError, ValueError) as e:
        return ConfigLoad(None, [], [Problem(str(e), source=path)])
    header = list(_header_problems(raw, path))
    if header:
        return ConfigLoad(None, [], header)
    decoded = decode(raw, KUBE_PROXY_CONFIGURATION)
    warnings, problems = _field_issues(decoded, path, strict)
    problems += [Problem(message, source=path, field=where) for where, message in decoded.type_errors]
    config = _build(decoded, path)
    bad_fields = {p.field for p in problems}
    problems += [p for p in validate(config) if p.field not in bad_fields]
    return ConfigLoad(config, warnings, problems)


def _read_file(path: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OSError(f"cannot read the file: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"not UTF-8 text: byte 0x{data[e.start]:02x} on line {line}") from None


def _header_problems(raw: object, source: str) -> Iterator[Problem]:
    if raw is None:
        yield Problem(f"the file is empty; a KubeProxyConfiguration needs at least apiVersion: {API_VERSION} "
                      f"and kind: {KIND}", source=source)
        return
    if not isinstance(raw, Mapping):
        yield Problem(f"expected a mapping (a KubeProxyConfiguration), got {describe(raw)}", source=source)
        return
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    if api_version is None:
        yield Problem(f"missing; set it to {API_VERSION}", source=source, field="apiVersion")
    elif api_version != API_VERSION:
        note = _OLD_API_VERSIONS.get(api_version, "") if isinstance(api_version, str) else ""
        yield Problem(f"{describe(api_version)} is not {API_VERSION}" + (f" ({note})" if note else ""),
                      source=source, field="apiVersion")
    if kind is None:
        yield Problem(f"missing; set it to {KIND}", source=source, field="kind")
    elif kind != KIND:
        yield Problem(f"{describe(kind)} is not {KIND}", source=source, field="kind")


def _field_issues(decoded: Decoded, source: str, strict: bool) -> tuple[list[str], list[Problem]]:
    """Unknown and duplicate fields: warnings as kube-proxy's lenient decoding has them, or errors."""
    warnings, problems = [], []
    for issue in decoded.issues:
        if strict:
            note = f" ({issue.note})" if issue.note else ""
            problems.append(Problem(f"{issue.what}{note}; strict decoding rejects it", source=source,
                                    field=issue.field))
        elif issue.what == "unknown field":
            note = f"; {issue.note}" if issue.note else ""
            warnings.append(f"{source}: unknown field {issue.field} (ignored{note})")
        else:
            warnings.append(f"{source}: {issue.what} {issue.field} ({issue.note})")
    return warnings, problems


def _build(decoded: Decoded, source: str) -> KubeProxyConfiguration:
    values = decoded.values
    apply_defaults(values)
    values["apiVersion"], values["kind"] = API_VERSION, KIND
    return KubeProxyConfiguration(encode(values, KUBE_PROXY_CONFIGURATION), source)
