"""proxyctl beside kube-proxy on one node: kube-proxy's rules for the unlabelled Services and ours
(PXCTL-) for the labelled ones, each side re-synced without disturbing the other (both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from proxyctl.cli.main import main

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
FLAGS = ["--config", str(DEMO / "kube-proxy-config.yaml"), "--node-facts", str(DEMO / "node.yaml")]


def labelled(tmp_path: Path) -> Path:
    docs = [d for d in yaml.safe_load_all((DEMO / "cluster.yaml").read_text()) if d]
    for d in docs:
        if d["metadata"]["name"] in ("web", "web-1", "sticky", "sticky-1"):
            d["metadata"].setdefault("labels", {})["service.kubernetes.io/service-proxy-name"] = "proxyctl"
    out = tmp_path / "cluster.yaml"
    out.write_text(yaml.safe_dump_all(docs))
    return out


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_each_side_syncs_without_disturbing_the_other(capsys, netns, tmp_path, backend):
    objects = labelled(tmp_path)
    kube = ["-f", str(objects), *FLAGS, "--netns", netns, "--iptables-backend", backend]
    ours = [*kube, "--service-proxy-name", "proxyctl"]
    for args in (kube, ours, kube, ours):  # each side's full sync runs after the other's, twice
        assert main(["apply", *args]) == 0, capsys.readouterr().err
    capsys.readouterr()
    for args in (kube, ours):
        code = main(["diff", *args, "--no-conntrack"])
        out = capsys.readouterr().out
        assert code == 0, out
    code = main(["trace", "--node", "--netns", netns, "--iptables-backend", backend, "10.96.10.10:80", "--src",
                 "10.244.0.5", "--node-facts", str(DEMO / "node.yaml"), "-o", "json"])
    out = capsys.readouterr().out
    assert code == 0 and '"chain": "PXCTL-SERVICES"' in out and "KUBE-SVC-" not in out
    code = main(["trace", "--node", "--netns", netns, "--iptables-backend", backend, "10.96.10.20:53", "--proto",
                 "udp", "--src", "10.244.0.5", "--node-facts", str(DEMO / "node.yaml"), "-o", "json"])
    out = capsys.readouterr().out
    assert code == 0 and '"chain": "KUBE-SERVICES"' in out and "PXCTL-SVC-" not in out
    assert main(["cleanup", "--netns", netns]) == 0
    capsys.readouterr()
