"""``proxyctl run``: a replacement kube-proxy that watches the API server and keeps a node's rules in sync.

Modules (one concept each; the daemon wires them together):

    health          the proxy's health state: QueuedUpdate/Updated per IP family, healthTimeout,
                    node eligibility; an injected clock
    healthz_server  /healthz and /livez on healthzBindAddress, and the HTTP plumbing the servers
                    share (bind addresses, sockets opened inside a network namespace, clean stop)
    service_health  per-Service health-check node ports for externalTrafficPolicy=Local LoadBalancers
    metrics         the kubeproxy_* (and proxyctl_*) Prometheus metrics, registered per proxy mode
    metrics_server  /metrics, /proxyMode, /configz (and /debug/pprof) on metricsBindAddress
"""
