"""Follow a packet through an iptables ruleset the way the kernel would, branch by branch."""
