"""The Vagrant lab, as far as it can be checked without booting a VM (there is no nested
virtualisation here; docs/cluster.md says what was and was not run).

The provisioners pass shellcheck; the Vagrantfile passes ``ruby -c`` and is loaded under a stub of
Vagrant's configuration API to check its machines, providers and provisioners; ``vagrant/lib.sh``
is sourced to check what the provisioners take from examples/deploy/. ``scripts/install.sh --dev``
installs shellcheck and ruby.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from proxyctl.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
VAGRANT_DIR = ROOT / "vagrant"
SCRIPTS = sorted(VAGRANT_DIR.glob("*.sh"))
DEPLOY = ROOT / "examples" / "deploy"
TOKEN = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
REQUIRED = re.findall(r'^: "\$\{([A-Z_]+):\?', (VAGRANT_DIR / "lib.sh").read_text(), re.M)

# Records what a Vagrantfile configures, as JSON, instead of bringing anything up.
VAGRANT_STUB = r"""
require "json"
class Settings
  attr_reader :settings
  def initialize; @settings = {}; end
  def method_missing(name, *args)
    return super unless name.to_s.end_with?("=")
    @settings[name.to_s.chomp("=")] = args.first
  end
  def respond_to_missing?(name, include_private = false) = name.to_s.end_with?("=") || super
end
class VM
  attr_accessor :box, :hostname
  def initialize
    @data = { "networks" => [], "provisioners" => [], "synced_folders" => [], "providers" => {}, "machines" => [] }
  end
  def synced_folder(src, dst, **opts) = @data["synced_folders"] << { "src" => src, "dst" => dst, "opts" => opts }
  def network(kind, **opts) = @data["networks"] << { "kind" => kind, "opts" => opts }
  def provision(name, **opts) = @data["provisioners"] << { "name" => name, "opts" => opts }
  def provider(name)
    settings = Settings.new
    yield settings
    @data["providers"][name] = settings.settings
  end
  def define(name, **opts)
    machine = Machine.new
    yield machine
    @data["machines"] << { "name" => name, "opts" => opts, "vm" => machine.vm.to_h }
  end
  def to_h = @data.merge("box" => @box, "hostname" => @hostname)
end
class Machine
  attr_reader :vm
  def initialize; @vm = VM.new; end
end
module Vagrant
  def self.configure(version)
    machine = Machine.new
    yield machine
    $configured = { "version" => version, "vm" => machine.vm.to_h }
  end
end
load ARGV.fetch(0)
puts JSON.generate($configured)
"""


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: scripts/install.sh --dev installs it (apt-get install {name})"
    return path


def test_the_provisioners_pass_shellcheck():
    assert {s.name for s in SCRIPTS} >= {"lib.sh", "common.sh", "control-plane.sh", "worker.sh", "smoke.sh"}
    result = subprocess.run([tool("shellcheck"), "--external-sources", *[str(s) for s in SCRIPTS]],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_vagrantfile_is_valid_ruby():
    result = subprocess.run([tool("ruby"), "-c", "Vagrantfile"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "Syntax OK" in result.stdout, result.stdout + result.stderr


def load_vagrantfile(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """The Vagrantfile loaded under the stub, from a copy (it keeps its tokens beside itself)."""
    shutil.copy(ROOT / "Vagrantfile", tmp_path / "Vagrantfile")
    (tmp_path / "stub.rb").write_text(VAGRANT_STUB)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PROXYCTL_LAB_")}
    return subprocess.run([tool("ruby"), str(tmp_path / "stub.rb"), str(tmp_path / "Vagrantfile")],
                          capture_output=True, text=True, cwd=tmp_path, env={**clean, **env})


def configured(tmp_path: Path, **env: str) -> dict:
    result = load_vagrantfile(tmp_path, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_one_control_plane_and_two_workers_on_both_providers(tmp_path):
    config = configured(tmp_path)
    vm = config["vm"]
    assert config["version"] == "2"
    assert re.fullmatch(r"(debian|ubuntu|generic|bento)/.+", vm["box"]) and re.search(r"debian|ubuntu", vm["box"])
    assert {"virtualbox", "libvirt"} <= set(vm["providers"])
    for provider in ("virtualbox", "libvirt"):
        assert vm["providers"][provider]["cpus"] >= 2  # kubeadm's preflight wants two on the control plane
        assert vm["providers"][provider]["memory"] >= 2048
    (folder,) = vm["synced_folders"]
    assert folder["dst"] == "/vagrant" and folder["opts"]["type"] == "rsync"
    assert ".git/" in folder["opts"]["rsync__exclude"] and ".vagrant/" in folder["opts"]["rsync__exclude"]

    machines = vm["machines"]
    assert [m["name"] for m in machines] == ["cp", "worker-1", "worker-2"]
    assert machines[0]["opts"].get("primary") is True
    ips = []
    for m in machines:
        assert m["vm"]["hostname"] == m["name"]
        (net,) = m["vm"]["networks"]
        assert net["kind"] == "private_network"
        ips.append(net["opts"]["ip"])
    assert ips == ["192.168.56.10", "192.168.56.11", "192.168.56.12"]


def test_the_provisioners_run_in_order_with_everything_lib_sh_requires(tmp_path):
    machines = configured(tmp_path)["vm"]["machines"]
    assert len(REQUIRED) >= 8
    expected_roles = [["common", "control-plane"], ["common", "worker"], ["common", "worker", "smoke"]]
    tokens = set()
    for machine, roles in zip(machines, expected_roles, strict=True):
        provisioners = machine["vm"]["provisioners"]
        assert [p["name"] for p in provisioners] == roles
        ip = machine["vm"]["networks"][0]["opts"]["ip"]
        for p in provisioners:
            opts = p["opts"]
            assert opts["type"] == "shell"
            script = re.fullmatch(r"bash /vagrant/(vagrant/[a-z-]+\.sh)", opts["inline"]).group(1)
            assert (ROOT / script).is_file()
            env = opts["env"]
            assert not set(REQUIRED) - set(env), f"{machine['name']}/{p['name']} lacks {set(REQUIRED) - set(env)}"
            assert env["NODE_IP"] == ip
            assert env["CONTROL_PLANE_IP"] == "192.168.56.10"
            assert env["NODE_COUNT"] == "3"
            assert env["PROXYCTL_LAB_VARIANT"] == "replace"
            assert env["KUBERNETES_MINOR"] == "v1.36"
            assert env["POD_CIDR"] == "10.244.0.0/16"
            assert TOKEN.fullmatch(env["JOIN_TOKEN"]) and TOKEN.fullmatch(env["ADMIN_TOKEN"])
            assert env["JOIN_TOKEN"] != env["ADMIN_TOKEN"]
            tokens.add((env["JOIN_TOKEN"], env["ADMIN_TOKEN"]))
    assert len(tokens) == 1  # one pair for the whole lab
    # ... kept for the next `vagrant up`, not drawn again.
    again = configured(tmp_path)["vm"]["machines"][0]["vm"]["provisioners"][0]["opts"]["env"]
    assert {(again["JOIN_TOKEN"], again["ADMIN_TOKEN"])} == tokens
    assert (tmp_path / ".vagrant" / "proxyctl-lab-tokens.yaml").is_file()


def test_the_lab_settings_come_from_the_environment(tmp_path):
    config = configured(tmp_path, PROXYCTL_LAB_VARIANT="beside", PROXYCTL_LAB_NETWORK="192.168.57",
                        PROXYCTL_LAB_MEMORY="3072")
    env = config["vm"]["machines"][2]["vm"]["provisioners"][0]["opts"]["env"]
    assert env["PROXYCTL_LAB_VARIANT"] == "beside"
    assert env["CONTROL_PLANE_IP"] == "192.168.57.10" and env["NODE_IP"] == "192.168.57.12"
    assert config["vm"]["providers"]["libvirt"]["memory"] == 3072
    bad = load_vagrantfile(tmp_path, PROXYCTL_LAB_VARIANT="both")
    assert bad.returncode != 0 and "PROXYCTL_LAB_VARIANT must be replace or beside" in bad.stderr


def test_kubeadm_skips_kube_proxy_only_when_proxyctl_replaces_it():
    script = (VAGRANT_DIR / "control-plane.sh").read_text()
    assert re.search(r'if \[ "\$PROXYCTL_LAB_VARIANT" = replace \]; then\s+skip=\(--skip-phases=addon/kube-proxy\)',
                     script)
    assert '--pod-network-cidr="$POD_CIDR"' in script
    # proxyctl before the pod network: flannel reaches the API server through the kubernetes Service.
    assert script.index('kubectl apply -f -\ndone') < script.index("kube-flannel.yml")


def source_lib(variant: str, *commands: str, network: str = "192.168.56", **env: str) -> subprocess.CompletedProcess:
    settings = {"PROXYCTL_LAB_REPO": str(ROOT), "PROXYCTL_LAB_VARIANT": variant,
                "CONTROL_PLANE_IP": f"{network}.10", "NODE_IP": f"{network}.11", "POD_CIDR": "10.244.0.0/16",
                "KUBERNETES_MINOR": "v1.36", "JOIN_TOKEN": "abcdef.0123456789abcdef",
                "ADMIN_TOKEN": "ghijkl.0123456789abcdef", "NODE_COUNT": "3", **env}
    script = "source vagrant/lib.sh\n" + "\n".join(commands)
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": os.environ["PATH"], **settings})


@pytest.mark.parametrize("variant", ["replace", "beside"])
def test_lib_sh_reads_the_deploy_manifests(variant):
    result = source_lib(variant, 'printf "%s\\n" "$IMAGE" "$DAEMONSET" "$PROXY_NAME_FLAG" "$MANIFESTS"')
    assert result.returncode == 0, result.stderr
    image, daemonset, flag, manifests = result.stdout.splitlines()
    assert Path(manifests) == DEPLOY / f"{variant}-kube-proxy"
    (ds,) = yaml.safe_load_all((Path(manifests) / "daemonset.yaml").read_text())
    (container,) = ds["spec"]["template"]["spec"]["containers"]
    assert image == container["image"]
    assert daemonset == ds["metadata"]["name"] == ds["spec"]["selector"]["matchLabels"]["k8s-app"]
    assert ([flag] if flag else []) == container["command"][4:]


def test_lib_sh_writes_another_lab_network_and_pod_cidr_into_the_manifests():
    result = source_lib("replace", 'lab_manifest "$MANIFESTS/configmap.yaml"', network="192.168.60",
                        POD_CIDR="10.42.0.0/16")
    assert result.returncode == 0, result.stderr
    (cm,) = yaml.safe_load_all(result.stdout)
    kubernetes_validate.validate(cm, "1.36", strict=True)
    assert "server: https://192.168.60.10:6443" in cm["data"]["kubeconfig.conf"]
    assert "clusterCIDR: 10.42.0.0/16" in cm["data"]["config.conf"]


def test_lib_sh_refuses_to_run_without_its_settings():
    result = source_lib("replace", "echo unreachable", NODE_COUNT="")
    assert result.returncode != 0 and "unreachable" not in result.stdout
    assert "NODE_COUNT" in result.stderr
    assert source_lib("sideways", "true").returncode == 2


def test_the_smoke_check_uses_the_shipped_services_and_real_proxyctl_flags():
    script = (VAGRANT_DIR / "smoke.sh").read_text()
    assert '"$DEPLOY/smoke/web.yaml"' in script
    services = {d["metadata"]["name"] for d in yaml.safe_load_all((DEPLOY / "smoke" / "web.yaml").read_text())
                if d and d["kind"] == "Service"}
    assert set(re.findall(r"services(?:\+)?=\((web[a-z-]*)\)", script)) == services
    (line,) = re.findall(r"exec proxyctl diff ([^']*)", script)
    options = {o for p in cli.commands["diff"].params for o in getattr(p, "opts", [])}
    flags = {w.split("=")[0] for w in line.split() if w.startswith("--")}
    assert flags and flags <= options
