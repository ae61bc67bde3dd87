"""proxyctl: compile Kubernetes Services into the rules kube-proxy programs, and debug them."""

__version__ = "0.1.0"
