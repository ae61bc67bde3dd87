"""The fields of kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration as kube-proxy v1.36 has them.

Each field has a kind (what its Go type reads from YAML), whether it is a Go pointer (null and
missing stay "unset", so defaulting can tell them from a zero) and whether it is left out of the
output when empty (Go's ``omitempty``). Fields older releases had, and that v1.36 ignores, are
listed with a note the loader adds to its warning.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

API_VERSION = "kubeproxy.config.k8s.io/v1alpha1"
KIND = "KubeProxyConfiguration"


class Kind(enum.Enum):
    STRING = "string"
    BOOL = "bool"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT = "float"  # float32 in Go; an integer is fine
    DURATION = "duration"  # metav1.Duration: a Go duration string
    DURATION_OR_NS = "duration or nanoseconds"  # logging's TimeOrMetaDuration: a string or a number of ns
    QUANTITY = "quantity"  # resource.Quantity: "0", "1Mi", or a number
    STRINGS = "list of strings"
    BOOL_MAP = "map of bools"
    OBJECT = "object"
    OBJECT_LIST = "list of objects"


@dataclass(frozen=True)
class Field:
    kind: Kind
    pointer: bool = False
    omitempty: bool = False
    fields: Mapping[str, Field] = field(default_factory=dict)


def _object(fields: Mapping[str, Field]) -> Field:
    # Go's omitempty never leaves out a struct, so an object is always written out.
    return Field(Kind.OBJECT, fields=fields)


STRING = Field(Kind.STRING)
BOOL = Field(Kind.BOOL)
INT32 = Field(Kind.INT32)
INT32_PTR = Field(Kind.INT32, pointer=True)
DURATION = Field(Kind.DURATION)
DURATION_PTR = Field(Kind.DURATION, pointer=True)
STRINGS = Field(Kind.STRINGS)

_OUTPUT_ROUTING = {
    "splitStream": Field(Kind.BOOL, omitempty=True),
    "infoBufferSize": Field(Kind.QUANTITY),
}

LOGGING = _object({
    "format": Field(Kind.STRING, omitempty=True),
    "flushFrequency": Field(Kind.DURATION_OR_NS),
    "verbosity": Field(Kind.UINT32),
    "vmodule": Field(Kind.OBJECT_LIST, omitempty=True, fields={
        "filePattern": STRING,
        "verbosity": Field(Kind.UINT32),
    }),
    "options": _object({
        "text": _object(_OUTPUT_ROUTING),
        "json": _object(_OUTPUT_ROUTING),
    }),
})

KUBE_PROXY_CONFIGURATION: Mapping[str, Field] = {
    "apiVersion": STRING,
    "kind": STRING,
    "featureGates": Field(Kind.BOOL_MAP, omitempty=True),
    "clientConnection": _object({
        "kubeconfig": STRING,
        "acceptContentTypes": STRING,
        "contentType": STRING,
        "qps": Field(Kind.FLOAT),
        "burst": INT32,
    }),
    "logging": LOGGING,
    "hostnameOverride": STRING,
    "bindAddress": STRING,
    "healthzBindAddress": STRING,
    "metricsBindAddress": STRING,
    "bindAddressHardFail": BOOL,
    "enableProfiling": BOOL,
    "showHiddenMetricsForVersion": STRING,
    "mode": STRING,
    "iptables": _object({
        "masqueradeBit": INT32_PTR,
        "masqueradeAll": BOOL,
        "localhostNodePorts": Field(Kind.BOOL, pointer=True),
        "syncPeriod": DURATION,
        "minSyncPeriod": DURATION,
    }),
    "ipvs": _object({
        "syncPeriod": DURATION,
        "minSyncPeriod": DURATION,
        "scheduler": STRING,
        "excludeCIDRs": STRINGS,
        "strictARP": BOOL,
        "tcpTimeout": DURATION,
        "tcpFinTimeout": DURATION,
        "udpTimeout": DURATION,
    }),
    "nftables": _object({
        "masqueradeBit": INT32_PTR,
        "masqueradeAll": BOOL,
        "syncPeriod": DURATION,
        "minSyncPeriod": DURATION,
    }),
    "winkernel": _object({
        "networkName": STRING,
        "sourceVip": STRING,
        "enableDSR": BOOL,
        "rootHnsEndpointName": STRING,
        "forwardHealthCheckVip": BOOL,
    }),
    "detectLocalMode": STRING,
    "detectLocal": _object({
        "bridgeInterface": STRING,
        "interfaceNamePrefix": STRING,
    }),
    "clusterCIDR": STRING,
    "nodePortAddresses": STRINGS,
    "oomScoreAdj": INT32_PTR,
    "conntrack": _object({
        "maxPerCore": INT32_PTR,
        "min": INT32_PTR,
        "tcpEstablishedTimeout": DURATION_PTR,
        "tcpCloseWaitTimeout": DURATION_PTR,
        "tcpBeLiberal": BOOL,
        "udpTimeout": DURATION,
        "udpStreamTimeout": DURATION,
    }),
    "configSyncPeriod": DURATION,
    "portRange": STRING,
    "windowsRunAsService": Field(Kind.BOOL, omitempty=True),
}

# Fields earlier releases read and v1.36 ignores (strict decoding rejects them): dotted path -> note.
REMOVED_FIELDS: Mapping[str, str] = {
    "resourceContainer": "kube-proxy v1.36 no longer has it",
    "udpIdleTimeout": "a userspace-mode setting; kube-proxy v1.36 no longer has it",
    "conntrack.max": "kube-proxy v1.36 no longer has it; conntrack.maxPerCore and conntrack.min size the table",
}
