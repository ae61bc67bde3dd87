"""The only code that touches a kernel's packet path: iptables, nfacct, ipsets, nftables, links.

    runner.py          how a tool is run (``run_tool``: ``ip netns exec``, deadline, KernelError)
    fake_runner.py     a scripted runner for tests: expected argv and stdin, canned answers
    iptables.py        the Iptables seam (save/restore of one backend, one namespace) and the real one
    fake_iptables.py   an in-memory Iptables that applies restore input table by table like the kernel
    backend_detect.py  nft or legacy, decided as kubernetes-sigs/iptables-wrappers does
    nfacct.py          kube-proxy's nfacct counters
    sync.py            kube-proxy's full sync of one family: canaries, jump rules, payload, stale chains
    apply.py           compile and fully sync every family (``proxyctl apply``, the lab)
    cleanup.py         remove what kube-proxy (any mode) or proxyctl left, and nothing else
    errors.py          RestoreError (the rejected line, with context and per-table outcome), CleanupError

Every entry point takes the network namespace to work in (None: the caller's) and a deadline.
"""
