"""Where the API client configuration comes from, and what qps/burst/contentType become."""

from __future__ import annotations

import logging
import time

import pytest
from kubernetes.client import CoreV1Api

from proxyctl.cluster.kubeconfig import load_api_client
from proxyctl.errors import InputError
from tests.apiserver import ApiServer


@pytest.fixture
def server():
    with ApiServer() as s:
        yield s


def kubeconfig(tmp_path, name: str, server_url: str) -> str:
    path = tmp_path / name
    path.write_text(f"""
apiVersion: v1
kind: Config
current-context: c
clusters: [{{name: c, cluster: {{server: "{server_url}"}}}}]
users: [{{name: u, user: {{token: tok-{name}}}}}]
contexts: [{{name: c, context: {{cluster: c, user: u}}}}]
""")
    return str(path)


def load(flag=None, config="", *, env=None, home, sa_dir, **kwargs):
    return load_api_client(flag, config, environ=env or {}, home=str(home), service_account_dir=str(sa_dir), **kwargs)


@pytest.fixture
def places(tmp_path):
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    sa_dir = tmp_path / "sa"
    sa_dir.mkdir()
    return home, sa_dir


def test_precedence(tmp_path, places):
    home, sa = places
    flag = kubeconfig(tmp_path, "flag", "http://flag.example:1")
    conf = kubeconfig(tmp_path, "conf", "http://conf.example:2")
    env1 = kubeconfig(tmp_path, "env1", "http://env.example:3")
    default = kubeconfig(home / ".kube", "config", "http://home.example:4")
    env = {"KUBECONFIG": f"{tmp_path}/missing:{env1}"}
    assert load(flag, conf, env=env, home=home, sa_dir=sa).configuration.host == "http://flag.example:1"
    assert load(None, conf, env=env, home=home, sa_dir=sa).configuration.host == "http://conf.example:2"
    client = load(None, "", env=env, home=home, sa_dir=sa)
    assert client.configuration.host == "http://env.example:3" and client.source.startswith("KUBECONFIG=")
    assert load(None, "", env={"KUBECONFIG": f"{tmp_path}/missing"}, home=home,
                sa_dir=sa).configuration.host == "http://home.example:4"
    assert load(None, "", home=home, sa_dir=sa).source == default


def test_in_cluster_service_account(tmp_path, places):
    home, sa = places
    (sa / "token").write_text("sa-token")
    (sa / "ca.crt").write_text("not really a certificate")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    client = load(None, "", env=env, home=home, sa_dir=sa)
    assert client.source == "in-cluster service account"
    assert client.configuration.host == "https://10.96.0.1:443"


def test_nothing_found_names_every_source_tried(tmp_path, places):
    home, sa = places
    with pytest.raises(InputError) as e:
        load(None, "", env={"KUBECONFIG": f"{tmp_path}/nope"}, home=home, sa_dir=sa)
    message = str(e.value)
    assert f"KUBECONFIG={tmp_path}/nope" in message and str(home / ".kube" / "config") in message
    assert "in-cluster" in message and "--kubeconfig" in message


def test_explicit_files_must_work(tmp_path, places):
    home, sa = places
    with pytest.raises(InputError, match=r"--kubeconfig .*/absent: no such file"):
        load(str(tmp_path / "absent"), "", home=home, sa_dir=sa)
    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nkind: Config\ncontexts: []\n")
    with pytest.raises(InputError, match=r"clientConnection.kubeconfig .*/broken: cannot use this kubeconfig"):
        load(None, str(broken), home=home, sa_dir=sa)


def test_requests_carry_the_token_and_no_retries(tmp_path, places, server):
    home, sa = places
    client = load(kubeconfig(tmp_path, "real", server.url), home=home, sa_dir=sa)
    assert client.configuration.retries is False
    CoreV1Api(client).list_node()
    assert server.requests[-1].headers["authorization"] == "Bearer tok-real"
    assert server.requests[-1].headers["user-agent"] == "proxyctl"


def test_qps_and_burst_throttle_every_request(tmp_path, places, server):
    home, sa = places
    client = load(kubeconfig(tmp_path, "real", server.url), home=home, sa_dir=sa, qps=20, burst=2)
    api = CoreV1Api(client)
    started = time.monotonic()
    for _ in range(6):
        api.list_service_for_all_namespaces()
    assert time.monotonic() - started >= 4 / 20 - 0.01  # 2 at once, then 4 at 20 per second


def test_protobuf_is_replaced_by_json(tmp_path, places, caplog):
    home, sa = places
    with caplog.at_level(logging.INFO, logger="proxyctl.cluster.kubeconfig"):
        load(kubeconfig(tmp_path, "k", "http://x.example:1"), home=home, sa_dir=sa,
             content_type="application/vnd.kubernetes.protobuf")
    assert "JSON only" in caplog.text
