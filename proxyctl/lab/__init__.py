"""Network-namespace labs: real kernels, real packets, kube-proxy's rules applied for real.

    topology.py   the description (nodes, pods, external hosts, the network) and building it from
                  cluster objects: one pod per endpoint address, nodes from the endpoints' nodeName
    build.py      namespaces, veths, bridges, addresses, routes and sysctls, with pyroute2
    registry.py   the lab records under /run/proxyctl-lab/ and the marker on each namespace's lo
    servers.py    the pods' servers (TCP who-am-I, HTTP, UDP echo), started and stopped by pid
    lab.py        a lab's life: up (build, kubelet's hint, apply, servers), attach, down, down --all
    nsenter.py    Python work on threads that entered a namespace (probes, sysctls)
    probe.py      live probes: full TCP connections and UDP datagrams through sockets, crafted
                  SYN/UDP packets with scapy; conntrack read in the node's namespace
    compare.py    observed distribution against the static tracer's prediction (chi-square)
    live.py       ``trace --live``: where the probes go, what conntrack and the pods saw, what the
                  static tracer predicts for the node's live rules, and where they disagree

Nothing here touches the namespace it runs in: every link is created inside a lab namespace.
"""
