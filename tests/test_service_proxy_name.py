"""--service-proxy-name: only labelled Services, under our own chain prefix, beside kube-proxy."""

from __future__ import annotations

from pathlib import Path

import yaml

from proxyctl.cli.main import main
from proxyctl.config import default_config
from proxyctl.daemon.app import serving_addresses

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"


def labelled(tmp_path: Path) -> Path:
    docs = [d for d in yaml.safe_load_all((DEMO / "cluster.yaml").read_text()) if d]
    for d in docs:
        if d["metadata"]["name"] in ("web", "web-1"):
            d["metadata"].setdefault("labels", {})["service.kubernetes.io/service-proxy-name"] = "proxyctl"
    out = tmp_path / "cluster.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    return out


def compile_(capsys, manifest: Path, *extra: str) -> str:
    code = main(["compile", "-f", str(manifest), "--config", str(DEMO / "kube-proxy-config.yaml"), "--node-facts",
                 str(DEMO / "node.yaml"), "--ip-family", "IPv4", "--format", "save", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_named_proxy_gets_only_its_services_under_its_prefix(capsys, tmp_path):
    ours = compile_(capsys, labelled(tmp_path), "--service-proxy-name", "proxyctl")
    assert "demo/web:http" in ours and "demo/sticky" not in ours
    chains = {line.split()[0][1:] for line in ours.splitlines() if line.startswith(":") and "ACCEPT" not in line}
    assert chains and all(c.startswith("PXCTL-") for c in chains)
    assert "KUBE-FIREWALL" not in ours  # kubelet's chain is kube-proxy's business
    assert "-j PXCTL-SERVICES" in ours


def test_kube_proxy_side_skips_the_labelled_services(capsys, tmp_path):
    theirs = compile_(capsys, labelled(tmp_path))
    assert "demo/web:http" not in theirs and "demo/sticky:http" in theirs


def test_ports_move_beside_kube_proxy():
    cfg = default_config()
    assert serving_addresses(cfg, None) == ("0.0.0.0:10256", "127.0.0.1:10249")
    assert serving_addresses(cfg, "proxyctl") == ("0.0.0.0:10356", "127.0.0.1:10349")
