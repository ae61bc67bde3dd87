"""Facts about the node the rules are for: addresses, capabilities."""
