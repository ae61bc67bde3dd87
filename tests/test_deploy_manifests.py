"""examples/deploy/ and the Containerfile: what can be checked without a cluster or an image builder.

Every manifest passes the Kubernetes OpenAPI schema (``kubernetes-validate``, strict: unknown
fields are errors) of an older and a recent release; both DaemonSets are shaped like kubeadm's
kube-proxy; their ConfigMaps hold a KubeProxyConfiguration that ``proxyctl config validate
--strict`` accepts and a kubeconfig that ``proxyctl run``'s loader can use; their command lines
parse as ``proxyctl run`` flags, and the liveness probe asks the port those make proxyctl serve.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from proxyctl.cli.main import main
from proxyctl.cli.run_cmd import command as run_command
from proxyctl.cluster.kubeconfig import load_api_client
from proxyctl.config import load_config
from proxyctl.daemon.app import serving_addresses

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "examples" / "deploy"
VARIANTS = {"replace-kube-proxy": None, "beside-kube-proxy": "proxyctl"}  # dir -> --service-proxy-name
KUBERNETES_VERSIONS = ("1.30", "1.36")
SERVICE_PROXY_LABEL = "service.kubernetes.io/service-proxy-name"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_files() -> list[Path]:
    return sorted(DEPLOY.rglob("*.yaml"))


def objects(variant: str) -> dict[str, dict]:
    """kind -> the one object of that kind in a variant's directory."""
    out: dict[str, dict] = {}
    for path in sorted((DEPLOY / variant).glob("*.yaml")):
        for doc in documents(path):
            assert doc["kind"] not in out, f"{variant}: two {doc['kind']}s"
            out[doc["kind"]] = doc
    return out


def container(variant: str) -> dict:
    (c,) = objects(variant)["DaemonSet"]["spec"]["template"]["spec"]["containers"]
    return c


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_manifest_passes_the_kubernetes_schema(path, version):
    docs = documents(path)
    assert docs
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path)
            pytest.fail(f"{path.name}: {doc['kind']} {doc['metadata']['name']}: {where}: {e.message}")


def test_the_schema_check_catches_a_misspelt_field():
    ds = json.loads(json.dumps(objects("replace-kube-proxy")["DaemonSet"]))
    ds["spec"]["template"]["spec"]["tolerations"] = [{"opertor": "Exists"}]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(ds, KUBERNETES_VERSIONS[-1], strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_daemonset_is_shaped_like_kubeadms_kube_proxy(variant):
    ds = objects(variant)["DaemonSet"]
    assert ds["metadata"]["namespace"] == "kube-system"
    pod = ds["spec"]["template"]["spec"]
    assert ds["spec"]["selector"]["matchLabels"].items() <= ds["spec"]["template"]["metadata"]["labels"].items()
    assert pod["hostNetwork"] is True
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    c = container(variant)
    assert c["securityContext"] == {"privileged": True}
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in c["env"]

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    lock = volumes[mounts["/run/xtables.lock"]["name"]]
    assert lock["hostPath"] == {"path": "/run/xtables.lock", "type": "FileOrCreate"}
    assert not mounts["/run/xtables.lock"].get("readOnly", False)
    modules = volumes[mounts["/lib/modules"]["name"]]
    assert modules["hostPath"]["path"] == "/lib/modules"
    assert mounts["/lib/modules"]["readOnly"] is True
    config = volumes[mounts["/var/lib/proxyctl"]["name"]]
    assert config["configMap"]["name"] == objects(variant)["ConfigMap"]["metadata"]["name"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_command_is_kubeadms_and_parses_as_proxyctl_run(variant):
    command = container(variant)["command"]
    name = VARIANTS[variant]
    assert command[:4] == ["proxyctl", "run", "--config=/var/lib/proxyctl/config.conf",
                           "--hostname-override=$(NODE_NAME)"]
    assert command[4:] == ([f"--service-proxy-name={name}"] if name else [])
    # $(NODE_NAME) is the kubelet's to expand; what proxyctl then sees must be its own flags.
    args = [a.replace("$(NODE_NAME)", "node-1") for a in command[2:]]
    params = run_command.make_context("run", args).params
    assert params["config_path"] == "/var/lib/proxyctl/config.conf"
    assert params["hostname_override"] == "node-1"
    assert params["service_proxy_name"] == name


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_liveness_probe_asks_livez_where_proxyctl_serves_it(variant, tmp_path):
    probe = container(variant)["livenessProbe"]["httpGet"]
    assert probe["path"] == "/livez"  # not /healthz: 503 on nodes being deleted
    config, _ = load_config(str(write_config(variant, tmp_path)))
    healthz, metrics = serving_addresses(config, VARIANTS[variant])
    assert probe["port"] == int(healthz.rpartition(":")[2])
    # Beside kube-proxy, away from its 10256 and 10249.
    expected = ("10356", "10349") if VARIANTS[variant] else ("10256", "10249")
    assert (healthz.rpartition(":")[2], metrics.rpartition(":")[2]) == expected


def write_config(variant: str, tmp_path: Path) -> Path:
    path = tmp_path / f"{variant}.conf"
    path.write_text(objects(variant)["ConfigMap"]["data"]["config.conf"])
    return path


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_configmap_holds_a_strictly_valid_kube_proxy_configuration(variant, tmp_path, capsys):
    path = write_config(variant, tmp_path)
    code = main(["config", "validate", str(path), "--strict"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, ""), err
    assert out == f"{path}: valid\n"
    config, _ = load_config(str(path))
    assert config.mode in ("", "iptables")
    assert config.data["clusterCIDR"] == "10.244.0.0/16"  # the lab's pod network (docs/cluster.md)


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_kubeconfig_reaches_the_api_server_directly_with_the_pods_token(variant, tmp_path):
    cm = objects(variant)["ConfigMap"]
    config, _ = load_config(str(write_config(variant, tmp_path)))
    assert config.data["clientConnection"]["kubeconfig"] == "/var/lib/proxyctl/kubeconfig.conf"
    kubeconfig = yaml.safe_load(cm["data"]["kubeconfig.conf"])
    (cluster,) = kubeconfig["clusters"]
    server = cluster["cluster"]["server"]
    # Never the kubernetes Service's ClusterIP: with kube-proxy gone only proxyctl could answer there.
    assert re.fullmatch(r"https://192\.168\.56\.10:6443", server)
    # The loader `proxyctl run` uses, with the service account's files where the pod has them.
    (tmp_path / "token").write_text("the-token")  # the kubelet writes it without a newline
    (tmp_path / "ca.crt").write_text("not read until a connection is made\n")
    local = cm["data"]["kubeconfig.conf"].replace(SA_DIR, str(tmp_path))
    assert local != cm["data"]["kubeconfig.conf"]
    (tmp_path / "kubeconfig.conf").write_text(local)
    api = load_api_client(None, str(tmp_path / "kubeconfig.conf"))
    assert api.configuration.host == server
    assert api.configuration.auth_settings()["BearerToken"]["value"] == "Bearer the-token"
    assert api.configuration.ssl_ca_cert == str(tmp_path / "ca.crt")


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_service_account_is_bound_to_system_node_proxier(variant):
    o = objects(variant)
    sa, crb = o["ServiceAccount"], o["ClusterRoleBinding"]
    pod = o["DaemonSet"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "system:node-proxier"}
    assert {"kind": "ServiceAccount", "name": sa["metadata"]["name"],
            "namespace": sa["metadata"]["namespace"]} in crb["subjects"]


def test_the_variants_differ_only_where_they_must():
    replace, beside = objects("replace-kube-proxy"), objects("beside-kube-proxy")
    assert replace["ServiceAccount"] == beside["ServiceAccount"]
    assert replace["ClusterRoleBinding"] == beside["ClusterRoleBinding"]
    # Both can be applied to one cluster without one overwriting the other.
    assert replace["DaemonSet"]["metadata"]["name"] != beside["DaemonSet"]["metadata"]["name"]
    assert replace["ConfigMap"]["metadata"]["name"] != beside["ConfigMap"]["metadata"]["name"]
    assert (replace["DaemonSet"]["spec"]["selector"] != beside["DaemonSet"]["spec"]["selector"])
    assert replace["ConfigMap"]["data"]["kubeconfig.conf"] == beside["ConfigMap"]["data"]["kubeconfig.conf"]
    assert container("replace-kube-proxy")["image"] == container("beside-kube-proxy")["image"]


def test_the_image_is_this_version_of_proxyctl():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for variant in VARIANTS:
        c = container(variant)
        assert c["image"] == f"localhost/proxyctl:{version}"
        assert c["imagePullPolicy"] == "IfNotPresent"  # built on the node, not pulled


def test_the_smoke_services_one_for_each_proxy():
    services = {d["metadata"]["name"]: d for d in documents(DEPLOY / "smoke" / "web.yaml") if d["kind"] == "Service"}
    assert SERVICE_PROXY_LABEL not in services["web"]["metadata"].get("labels", {})
    assert services["web-proxyctl"]["metadata"]["labels"][SERVICE_PROXY_LABEL] == VARIANTS["beside-kube-proxy"]


# -- Containerfile --------------------------------------------------------------------------------

def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Containerfile ends inside a continued line"
    return out


CONTAINERFILE = instructions(ROOT / "Containerfile")


def test_containerfile_base_packages_and_entrypoint():
    froms = [args for word, args in CONTAINERFILE if word == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"(docker\.io/library/)?python:3\.11-slim(-bookworm)?", froms[0])
    runs = " ".join(args for word, args in CONTAINERFILE if word == "RUN")
    install = re.search(r"apt-get install ([^&]*)", runs)
    assert install, "no apt-get install"
    packages = set(install.group(1).split())
    assert {"iptables", "ipset", "nftables", "conntrack", "nfacct", "iproute2"} <= packages
    for backend in ("iptables-nft", "iptables-legacy"):  # both come with Debian's iptables: checked at build
        assert backend in runs
    assert re.search(r"pip install (--no-cache-dir )?\.( |$)", runs)
    (entrypoint,) = [args for word, args in CONTAINERFILE if word == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["proxyctl", "run"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["proxyctl"] == "proxyctl.cli.main:main"


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps ``path`` out of the build context: the last matching pattern
    wins, and a pattern matches a path or any directory above it (moby's patternmatcher)."""
    from fnmatch import fnmatchcase

    parts = path.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            hit = any(fnmatchcase(c.split("/")[-1], pattern[3:]) for c in candidates)
        else:
            hit = any(fnmatchcase(c, pattern) and c.count("/") == pattern.count("/") for c in candidates)
        if hit:
            result = not negate
    return result


def test_the_build_context_holds_what_pip_install_needs_and_nothing_else():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    copied = [p for args in (a for w, a in CONTAINERFILE if w == "COPY") for p in args.split()[:-1]]
    assert set(copied) == {"pyproject.toml", "README.md", "proxyctl"}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["readme"] in copied
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["proxyctl"]
    sources = [p.relative_to(ROOT).as_posix() for p in (ROOT / "proxyctl").rglob("*.py")]
    assert sources and not [s for s in sources if ignored(s, patterns)]
    assert not ignored("pyproject.toml", patterns) and not ignored("README.md", patterns)
    for elsewhere in ("tests/test_deploy_manifests.py", ".git/config", "examples/demo/cluster.yaml",
                      ".venv/bin/python", "proxyctl/__pycache__/main.cpython-311.pyc", "Vagrantfile"):
        assert ignored(elsewhere, patterns), elsewhere
