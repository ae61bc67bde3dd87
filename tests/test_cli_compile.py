"""``proxyctl compile`` as a user meets it: exit codes, messages, formats."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from proxyctl.cli.main import main
from proxyctl.rules.iptables.jsonform import ruleset_from_dict
from proxyctl.rules.iptables.render import render_restore

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
DEMO_ARGS = ["-f", str(DEMO / "cluster.yaml"), "--config", str(DEMO / "kube-proxy-config.yaml"),
             "--node-facts", str(DEMO / "node.yaml")]


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_both_families_each_with_a_header(capsys):
    code, out, _ = run(capsys, "compile", *DEMO_ARGS)
    assert code == 0
    assert out.startswith("# proxyctl: family=IPv4\n*filter\n")
    assert "\n# proxyctl: family=IPv6\n*filter\n" in out


def test_json_round_trips_to_the_same_payload(capsys):
    code, text, _ = run(capsys, "compile", *DEMO_ARGS, "--ip-family", "IPv4")
    code, js, _ = run(capsys, "compile", *DEMO_ARGS, "--ip-family", "IPv4", "-o", "json")
    assert code == 0
    assert render_restore(ruleset_from_dict(json.loads(js))) == text


def test_save_format_has_jump_rules_and_canaries(capsys):
    code, out, _ = run(capsys, "compile", *DEMO_ARGS, "--ip-family", "IPv4", "--format", "save")
    assert code == 0
    assert out.startswith("*mangle\n:PREROUTING ACCEPT [0:0]")
    assert out.count(":KUBE-PROXY-CANARY - [0:0]") == 3
    assert '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in out


def test_stdin_input(capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO((DEMO / "cluster.yaml").read_text()))
    code, out, _ = run(capsys, "compile", "-f", "-", "--config", str(DEMO / "kube-proxy-config.yaml"),
                       "--node-facts", str(DEMO / "node.yaml"), "--ip-family", "IPv4")
    assert code == 0 and "demo/web:http cluster IP" in out


def test_unimplemented_mode_is_a_clear_error(capsys):
    code, out, err = run(capsys, "compile", *DEMO_ARGS, "--mode", "ipvs")
    assert code == 2 and out == ""
    assert "mode 'ipvs' is not implemented" in err and "--mode iptables" in err


def test_missing_objects_is_usage_error(capsys):
    code, _, err = run(capsys, "compile")
    assert code == 2 and "-f FILE" in err


@pytest.mark.parametrize("what,args,needle", [
    ("config", ["--config", "/nonexistent/kp.yaml"], "/nonexistent/kp.yaml"),
    ("node facts", ["--node-facts", "/nonexistent/node.yaml"], "/nonexistent/node.yaml"),
    ("manifest", ["-f", "/nonexistent/svc.yaml"], "/nonexistent/svc.yaml"),
])
def test_missing_files_exit_2_naming_them(capsys, what, args, needle):
    base = {"--config": str(DEMO / "kube-proxy-config.yaml"), "--node-facts": str(DEMO / "node.yaml"),
            "-f": str(DEMO / "cluster.yaml")}
    base[args[0]] = args[1]
    flat = [x for kv in base.items() for x in kv]
    code, out, err = run(capsys, "compile", *flat)
    assert code == 2 and out == ""
    assert needle in err and err.startswith("error: ")


def test_invalid_object_is_skipped_with_a_warning_and_strict_fails(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((DEMO / "cluster.yaml").read_text() + "\n---\napiVersion: v1\nkind: Service\n"
                   "metadata: {name: broken, namespace: demo}\nspec: {clusterIP: 10.96.0.300, ports: [{port: 80}]}\n")
    args = ["compile", "-f", str(bad), "--config", str(DEMO / "kube-proxy-config.yaml"),
            "--node-facts", str(DEMO / "node.yaml"), "--ip-family", "IPv4"]
    code, out, err = run(capsys, *args)
    assert code == 0 and "demo/web:http" in out and "broken" not in out
    assert "Service demo/broken" in err and "10.96.0.300" in err
    code, out, err = run(capsys, *args, "--strict")
    assert code == 2 and out == "" and "Service demo/broken" in err


def test_console_script_runs_as_a_process():
    r = subprocess.run([sys.executable, "-m", "proxyctl", "compile", *DEMO_ARGS, "--ip-family", "IPv6"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE" in r.stdout
