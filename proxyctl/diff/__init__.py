"""What a node should have against what it has, per Service (``proxyctl diff``)."""
