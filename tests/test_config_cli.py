"""``proxyctl config view`` and ``proxyctl config validate``, and the bad-input corpus through the CLI."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from proxyctl.cli.main import main
from proxyctl.config import default_config
from proxyctl.config.yamlfile import dump_yaml

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "kube-proxy-config-v1.10.yaml"
CORPUS = sorted((Path(__file__).parent / "bad_inputs" / "configs").glob("*.yaml"))
HEADER = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_view_without_a_file_prints_the_defaults(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "config", "view")
    assert (code, err) == (0, "")
    assert out == dump_yaml(default_config().data)
    assert yaml.safe_load(out) == default_config().data
    assert '  kubeconfig: ""' in out.splitlines()


def test_view_fills_in_and_normalises(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "kp.yaml"
    path.write_text(HEADER + "mode: nftables\nnftables: {syncPeriod: 90s}\n")
    code, out, err = run(capsys, "config", "view", "--config", str(path))
    assert (code, err) == (0, "")
    data = yaml.safe_load(out)
    assert data["nftables"] == {"masqueradeAll": False, "masqueradeBit": 14, "minSyncPeriod": "1s",
                                "syncPeriod": "1m30s"}
    assert list(data) == sorted(data)


def test_view_reads_stdin(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(HEADER + "mode: ipvs\n"))
    code, out, _ = run(capsys, "config", "view", "--config", "-")
    assert code == 0
    assert yaml.safe_load(out)["mode"] == "ipvs"


def test_view_warns_on_stderr(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "config", "view", "--config", str(EXAMPLE))
    assert code == 0
    assert err.splitlines() == [
        f"warning: {EXAMPLE}: unknown field conntrack.max (ignored; kube-proxy v1.36 no longer has it; "
        "conntrack.maxPerCore and conntrack.min size the table)",
        f"warning: {EXAMPLE}: unknown field resourceContainer (ignored; kube-proxy v1.36 no longer has it)",
    ]
    assert "resourceContainer" not in out


def test_view_strict_rejects_the_old_example(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "config", "view", "--strict", "--config", str(EXAMPLE))
    assert (code, out) == (2, "")
    assert f"error: {EXAMPLE}: resourceContainer: unknown field" in err


def test_validate_the_v1_10_example(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "config", "validate", str(EXAMPLE))
    assert code == 0
    assert out == f"{EXAMPLE}: valid\n"
    assert [line.split(": ")[2] for line in err.splitlines()] == [
        "unknown field conntrack.max (ignored; kube-proxy v1.36 no longer has it; conntrack.maxPerCore and "
        "conntrack.min size the table)",
        "unknown field resourceContainer (ignored; kube-proxy v1.36 no longer has it)",
    ]


def test_validate_the_v1_10_example_strictly(capsys: pytest.CaptureFixture) -> None:
    code, out, err = run(capsys, "config", "validate", "--strict", str(EXAMPLE))
    assert (code, out) == (2, "")
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert [line.split(": ")[2] for line in errors] == ["conntrack.max", "resourceContainer"]


def test_validate_reports_every_problem(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    path = tmp_path / "kp.yaml"
    path.write_text(HEADER + "iptables: {masqueradeBit: 40}\noomScoreAdj: 5000\nfoo: bar\n")
    code, out, err = run(capsys, "config", "validate", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"warning: {path}: unknown field foo (ignored)",
        f"error: {path}: iptables.masqueradeBit: 40 is out of range 0..31",
        f"error: {path}: oomScoreAdj: 5000 is out of range -1000..1000",
    ]


def test_example_is_what_an_operator_wrote() -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    assert data == {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",
        "bindAddress": "0.0.0.0",
        "clientConnection": {"acceptContentTypes": "", "burst": 10,
                             "contentType": "application/vnd.kubernetes.protobuf",
                             "kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf", "qps": 5},
        "clusterCIDR": "", "configSyncPeriod": "15m0s",
        "conntrack": {"max": None, "maxPerCore": 32768, "min": 131072, "tcpCloseWaitTimeout": "1h0m0s",
                      "tcpEstablishedTimeout": "24h0m0s"},
        "enableProfiling": False, "healthzBindAddress": "0.0.0.0:10256", "hostnameOverride": "",
        "iptables": {"masqueradeAll": False, "masqueradeBit": 14, "minSyncPeriod": "0s", "syncPeriod": "30s"},
        "ipvs": {"minSyncPeriod": "0s", "scheduler": "", "syncPeriod": "30s"},
        "metricsBindAddress": "127.0.0.1:10249", "mode": "", "nodePortAddresses": None, "oomScoreAdj": -999,
        "portRange": "", "resourceContainer": "/kube-proxy",
    }


def test_as_a_program() -> None:
    done = subprocess.run([sys.executable, "-m", "proxyctl", "config", "validate", str(EXAMPLE)],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{EXAMPLE}: valid\n"
    assert done.stderr.count("warning: ") == 2


def _corpus_case(path: Path) -> tuple[str, list[str]]:
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    expect = lines[0].removeprefix("# expect: ")
    assert expect != lines[0], f"{path.name}: the first line must be '# expect: <message>'"
    args = lines[1].removeprefix("# args: ").split() if len(lines) > 1 and lines[1].startswith("# args:") else []
    return expect, args


def test_the_corpus_is_there() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_bad_input_corpus(capsys: pytest.CaptureFixture, path: Path) -> None:
    expect, args = _corpus_case(path)
    code, out, err = run(capsys, "config", "validate", str(path), *args)
    assert code == 2, err
    assert out == ""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors, err
    assert all(line.startswith(f"error: {path}: ") for line in errors)
    assert any(expect in line for line in errors), err
