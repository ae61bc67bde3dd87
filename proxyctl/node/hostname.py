"""The node name the way kube-proxy derives it from a host name or an override.

kube-proxy (component-helpers ``GetHostname``) trims surrounding whitespace and lowercases; a
name that is empty after trimming is an error, not a fallback to the next source.
"""

from __future__ import annotations

import socket

from proxyctl.errors import InputError, KernelError


def normalize_node_name(text: str, *, source: str, error: type[InputError] = InputError) -> str:
    """Trimmed and lowercased ``text``; ``error`` naming ``source`` when nothing is left."""
    name = text.strip()
    if not name:
        raise error(f"{source}: an empty host name is invalid")
    return name.lower()


def host_name() -> str:
    """This machine's host name as kube-proxy would use it for the node name; KernelError if empty."""
    name = socket.gethostname().strip()
    if not name:
        raise KernelError("the host name is empty; set one, or give --hostname-override")
    return name.lower()
