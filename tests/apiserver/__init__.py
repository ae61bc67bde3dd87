"""A Kubernetes API server for tests (see :mod:`tests.apiserver.server`)."""

from tests.apiserver.server import ApiServer, Fault, Request

__all__ = ["ApiServer", "Fault", "Request"]
