"""How labs are found again: a registry file per lab, and a marker inside each of its namespaces.

The registry (``/run/proxyctl-lab/<lab>.json``) says what a lab is: its topology, backend,
namespaces and server pids. It is written before anything is created and updated as things are,
so a run that dies half-way still names what it made. ``/run`` is a tmpfs, like ``/run/netns``
where the namespaces are pinned, so both vanish together at reboot.

The marker is the authority for deleting: every lab namespace carries ``proxyctl-lab <lab>`` as
the alias of its ``lo`` interface (netlink state inside the namespace itself), set right after
the namespace is created. A namespace is removed only when it carries that marker, never because
of its name: other software's namespaces live on the same machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from pyroute2 import IPRoute

from proxyctl.errors import InputError

REGISTRY_DIR = "/run/proxyctl-lab"
NETNS_DIR = "/var/run/netns"
MARKER = "proxyctl-lab"
LAB_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


@dataclass
class ServerRecord:
    pid: int
    pod: str
    netns: str


@dataclass
class LabRecord:
    lab: str
    backend: str
    namespaces: dict[str, str] = field(default_factory=dict)  # lab name (node, pod, host, "net") → netns
    servers: list[ServerRecord] = field(default_factory=list)
    topology: dict[str, Any] = field(default_factory=dict)
    manifests: list[str] = field(default_factory=list)
    config: str | None = None
    state: str = "building"  # building | up
    owner_pid: int = field(default_factory=os.getpid)
    created: float = field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LabRecord:
        data = json.loads(text)
        data["servers"] = [ServerRecord(**s) for s in data.get("servers", ())]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def check_lab_name(name: str) -> str:
    if not LAB_NAME.match(name):
        raise InputError(f"lab name {name!r}: use 1-40 lowercase letters, digits and '-' (not at either end)")
    return name


def record_path(lab: str) -> str:
    return os.path.join(REGISTRY_DIR, f"{check_lab_name(lab)}.json")


def write(record: LabRecord) -> None:
    """Write the record atomically (a reader never sees half of it)."""
    os.makedirs(REGISTRY_DIR, mode=0o700, exist_ok=True)
    path = record_path(record.lab)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(record.to_json())
    os.replace(tmp, path)


def read(lab: str) -> LabRecord | None:
    try:
        with open(record_path(lab), encoding="utf-8") as f:
            return LabRecord.from_json(f.read())
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        raise InputError(f"{record_path(lab)}: not a lab record ({e}); remove it with `proxyctl lab down --all`") from e


def remove(lab: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record_path(lab))


def records() -> list[LabRecord]:
    """Every readable record, oldest first; unreadable files are skipped (``lab down --all`` removes them)."""
    out = []
    for name in sorted(_record_files()):
        try:
            rec = read(name)
        except InputError:
            continue
        if rec is not None:
            out.append(rec)
    return sorted(out, key=lambda r: r.created)


def record_names() -> list[str]:
    return sorted(_record_files())


def _record_files() -> list[str]:
    try:
        entries = os.listdir(REGISTRY_DIR)
    except FileNotFoundError:
        return []
    return [e[:-5] for e in entries if e.endswith(".json") and LAB_NAME.match(e[:-5])]


# -- the marker inside each namespace ----------------------------------------------------------------


def marker_text(lab: str) -> str:
    return f"{MARKER} {lab}"


def mark(ipr: IPRoute, lab: str) -> None:
    """Bring ``lo`` up and label it with the lab's marker (``ipr`` is open in the new namespace)."""
    lo = ipr.link_lookup(ifname="lo")[0]
    ipr.link("set", index=lo, state="up", ifalias=marker_text(lab))


def marker_of(netns: str) -> str | None:
    """The lab a namespace belongs to, from its marker; None when it carries none (or is gone)."""
    try:
        with IPRoute(netns=netns, flags=0) as ipr:  # flags=0: never create a namespace that is not there
            lo = ipr.link_lookup(ifname="lo")
            if not lo:
                return None
            alias = ipr.link("get", index=lo[0])[0].get_attr("IFLA_IFALIAS") or ""
    except (OSError, ValueError):
        return None
    prefix = f"{MARKER} "
    lab = alias[len(prefix):] if alias.startswith(prefix) else ""
    return lab if LAB_NAME.match(lab) else None


def marked_namespaces() -> dict[str, str]:
    """Every named namespace that carries a lab marker: netns → lab."""
    out = {}
    try:
        names = sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return {}
    for name in names:
        lab = marker_of(name)
        if lab is not None:
            out[name] = lab
    return out


def netns_exists(netns: str) -> bool:
    return "/" not in netns and os.path.exists(os.path.join(NETNS_DIR, netns))
