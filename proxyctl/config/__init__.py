"""kube-proxy's configuration: KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1), defaulted and
validated as kube-proxy v1.36 does, and the Go durations it is written in."""

from proxyctl.config.duration import format_duration, parse_duration
from proxyctl.config.kubeproxy import (
    ConfigLoad,
    KubeProxyConfiguration,
    default_config,
    load_config,
    read_config,
    validate,
)

__all__ = [
    "ConfigLoad",
    "KubeProxyConfiguration",
    "default_config",
    "format_duration",
    "load_config",
    "parse_duration",
    "read_config",
    "validate",
]
