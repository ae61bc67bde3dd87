"""The API client configuration of ``proxyctl run``: where it comes from, and what it can honour.

Sources, first match wins:

1. ``--kubeconfig`` (must load: a broken explicit file is an error, not a reason to look further);
2. ``clientConnection.kubeconfig`` of the KubeProxyConfiguration (same rule);
3. ``$KUBECONFIG``: a list of files separated by ``:``, merged as kubectl merges them; skipped
   when none of the files exists;
4. ``~/.kube/config``, when it exists;
5. the in-cluster service account (``KUBERNETES_SERVICE_HOST``/``_PORT`` and the token and CA
   files under ``/var/run/secrets/kubernetes.io/serviceaccount``).

When nothing works, :class:`~proxyctl.errors.InputError` names every source tried and why it
failed.

What ``clientConnection`` settings become with the official Python client:

- ``qps`` and ``burst``: honoured. The Python client has no client-side rate limiter, so
  :class:`ThrottledApiClient` puts client-go's token bucket in front of every request (a watch
  counts as one request, when it starts). ``qps <= 0`` disables the limit.
- ``contentType``: the Python client decodes JSON only; it cannot speak protobuf
  (``application/vnd.kubernetes.protobuf``, kube-proxy's default). Any content type other than
  JSON is logged and replaced by ``application/json``.
- ``acceptContentTypes``: not used, for the same reason (every request accepts JSON).

urllib3's own retries are turned off: the watch retries with its own backoff, and a hidden
retry would multiply every read timeout by four.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from kubernetes.client import ApiClient, Configuration
from kubernetes.config.incluster_config import InClusterConfigLoader
from kubernetes.config.kube_config import load_kube_config

from proxyctl.cluster.ratelimit import TokenBucket
from proxyctl.errors import InputError

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
USER_AGENT = "proxyctl"

_log = logging.getLogger(__name__)


class ThrottledApiClient(ApiClient):
    """An ApiClient whose every request first takes a token from ``limiter``; ``source`` says where
    its configuration came from (e.g. ``--kubeconfig /etc/kp.conf``)."""

    def __init__(self, configuration: Configuration, *, limiter: TokenBucket, source: str = ""):
        super().__init__(configuration)
        self.limiter = limiter
        self.source = source
        self.user_agent = USER_AGENT

    def call_api(self, *args, **kwargs):
        self.limiter.acquire()
        return super().call_api(*args, **kwargs)


def load_api_client(kubeconfig_flag: str | None, config_kubeconfig: str = "", *, qps: float = 5.0,
                    burst: int = 10, content_type: str = JSON, environ: Mapping[str, str] | None = None,
                    home: str | None = None, service_account_dir: str = SERVICE_ACCOUNT_DIR,
                    logger: logging.Logger | None = None) -> ThrottledApiClient:
    """An API client from the first source that applies (see the module docstring).

    ``environ``, ``home`` and ``service_account_dir`` default to the real ones; tests pass their own.
    """
    env = os.environ if environ is None else environ
    log = logger or _log
    tried: list[str] = []

    def finish(configuration: Configuration, source: str) -> ThrottledApiClient:
        configuration.retries = False
        if content_type and content_type.split(";")[0].strip() != JSON:
            log.info("the Python Kubernetes client speaks JSON only: using %s instead of contentType %s",
                     JSON, content_type)
        log.info("API client configuration from %s: server %s", source, configuration.host)
        return ThrottledApiClient(configuration, limiter=TokenBucket(qps, burst), source=source)

    for flag, path in (("--kubeconfig", kubeconfig_flag), ("clientConnection.kubeconfig", config_kubeconfig)):
        if path:
            configuration = _from_kubeconfig(path, f"{flag} {path}", must_exist=True)
            return finish(configuration, f"{flag} {path}")

    env_paths = env.get("KUBECONFIG", "")
    if env_paths:
        existing = [p for p in env_paths.split(":") if p and os.path.exists(os.path.expanduser(p))]
        if existing:
            source = f"KUBECONFIG={env_paths}"
            return finish(_from_kubeconfig(":".join(existing), source, must_exist=False), source)
        tried.append(f"KUBECONFIG={env_paths}: none of its files exists")
    else:
        tried.append("KUBECONFIG: not set")

    default = os.path.join(home if home is not None else os.path.expanduser("~"), ".kube", "config")
    if os.path.exists(default):
        return finish(_from_kubeconfig(default, default, must_exist=True), default)
    tried.append(f"{default}: does not exist")

    configuration = Configuration()
    try:
        InClusterConfigLoader(token_filename=os.path.join(service_account_dir, "token"),
                              cert_filename=os.path.join(service_account_dir, "ca.crt"),
                              environ=env).load_and_set(configuration)
    except Exception as e:  # the loader raises ConfigException, OSError, ...
        tried.append(f"in-cluster service account ({service_account_dir}): {e}")
    else:
        return finish(configuration, "in-cluster service account")

    raise InputError("no API server configuration found; give --kubeconfig or clientConnection.kubeconfig. "
                     "Tried: " + "; ".join(tried))


def _from_kubeconfig(path: str, source: str, *, must_exist: bool) -> Configuration:
    if must_exist and not os.path.exists(os.path.expanduser(path)):
        raise InputError(f"{source}: no such file")
    configuration = Configuration()
    try:
        load_kube_config(config_file=path, client_configuration=configuration, persist_config=False)
    except Exception as e:  # ConfigException, YAML errors, unreadable files, bad certificates
        raise InputError(f"{source}: cannot use this kubeconfig: {e}") from e
    return configuration
