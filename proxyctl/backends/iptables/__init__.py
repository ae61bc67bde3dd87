"""kube-proxy's iptables mode.

Layout of what a full sync writes (KUBE-PROXY.md §1):

    nat PREROUTING/OUTPUT ─► KUBE-SERVICES ─┬─ cluster IP ─► KUBE-SVC-/KUBE-SVL- ─► KUBE-SEP- (DNAT)
                                            ├─ external IP, LB IP ─► [KUBE-FW-] ─► KUBE-EXT- ─► KUBE-SVC-/SVL-
                                            └─ last rule: local dst ─► KUBE-NODEPORTS ─► KUBE-EXT-
    nat POSTROUTING ─► KUBE-POSTROUTING (MASQUERADE what KUBE-MARK-MASQ marked)
    filter INPUT/FORWARD/OUTPUT ─► KUBE-SERVICES, KUBE-EXTERNAL-SERVICES (REJECT/DROP without
        endpoints), KUBE-NODEPORTS (health checks), KUBE-FORWARD, KUBE-PROXY-FIREWALL (source ranges)
"""

from proxyctl.backends.iptables.compile import compile_ruleset
from proxyctl.backends.iptables.options import IptablesOptions, options_for

__all__ = ["IptablesOptions", "compile_ruleset", "options_for"]
