"""``proxyctl diff`` on dumps: a real kube-proxy node diffs clean, and each drift is caught and
attributed to the right Service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from proxyctl.cli.main import main

REAL = Path(__file__).parent / "conformance" / "fixtures" / "real-kube-proxy" / "demo-iptables-nft"
ARGS = ["-f", str(REAL / "objects.yaml"), "--config", str(REAL / "kube-proxy-config.yaml"),
        "--node-facts", str(REAL / "node.yaml")]
V4 = (REAL / "iptables-save.txt").read_text()
V6 = (REAL / "ip6tables-save.txt").read_text()


def diff(capsys, tmp_path, v4: str, v6: str = V6, *extra: str):
    f = tmp_path / "live.txt"
    f.write_text(v4 + v6)
    code = main(["diff", *ARGS, "--live-rules", str(f), "-o", "json", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out) if out.strip() else None


def kinds(data, service):
    return sorted(f["kind"] for f in data["services"].get(service, []))


def test_real_kube_proxy_node_diffs_clean(capsys, tmp_path):
    code, data = diff(capsys, tmp_path, V4)
    assert code == 0 and data["differs"] is False


def test_clean_also_with_kube_services_in_another_map_order(capsys, tmp_path):
    lines = V4.splitlines()
    svc = [i for i, x in enumerate(lines) if x.startswith("-A KUBE-SERVICES ") and "last rule" not in x
           and "--comment" in x and "cluster IP" in x]
    block = [lines[i] for i in svc]
    for i, x in zip(svc, reversed(block), strict=True):
        lines[i] = x
    code, data = diff(capsys, tmp_path, "\n".join(lines) + "\n")
    assert code == 0, data


def test_deleted_sep_rule(capsys, tmp_path):
    line = next(x for x in V4.splitlines() if x.startswith("-A KUBE-SEP-") and "DNAT" in x and "demo/web:http" in x)
    code, data = diff(capsys, tmp_path, V4.replace(line + "\n", ""))
    assert code == 1
    assert "missing-rule" in kinds(data, "demo/web:http")
    assert list(data["services"]) == ["demo/web:http"]


def test_changed_probability_is_a_changed_rule(capsys, tmp_path):
    line = next(x for x in V4.splitlines() if "demo/sticky:http -> " in x and "--probability 0.33333333349" in x)
    code, data = diff(capsys, tmp_path, V4.replace(line, line.replace("0.33333333349", "0.25000000000")))
    assert code == 1
    (f,) = data["services"]["demo/sticky:http"]
    assert f["kind"] == "changed-rule" and "0.25000000000" in f["live"] and f["diff"]


def add_nat(v4: str, chain: str, rules: list[str]) -> str:
    """The dump with a chain declared and rules appended in its nat table."""
    v4 = v4.replace(":KUBE-MARK-MASQ - [0:0]\n", f":KUBE-MARK-MASQ - [0:0]\n:{chain} - [0:0]\n", 1)
    at = v4.rindex("COMMIT")
    return v4[:at] + "".join(r + "\n" for r in rules) + v4[at:]


def test_extra_endpoint_chain_and_reachable_endpoint(capsys, tmp_path):
    chain = "KUBE-SEP-ZZZZZZZZZZZZZZZZ"
    v4 = add_nat(V4, chain, [f'-A {chain} -p tcp -m comment --comment "demo/web:http" -m tcp -j DNAT '
                             "--to-destination 10.244.9.9:8080"])
    svc_rule = next(x for x in v4.splitlines() if x.startswith("-A KUBE-SVC-XRY76EGRC3BSCIIJ") and "statistic" in x)
    v4 = v4.replace(svc_rule, svc_rule + "\n" + f'-A KUBE-SVC-XRY76EGRC3BSCIIJ -m comment --comment '
                    f'"demo/web:http -> 10.244.9.9:8080" -j {chain}')
    code, data = diff(capsys, tmp_path, v4)
    assert code == 1
    k = kinds(data, "demo/web:http")
    assert "extra-chain" in k and "endpoint-extra" in k and "extra-rule" in k


def test_flushed_kube_services(capsys, tmp_path):
    v4 = "\n".join(x for x in V4.splitlines() if not (x.startswith("-A KUBE-SERVICES ") and "cluster IP" in x)) + "\n"
    code, data = diff(capsys, tmp_path, v4)
    assert code == 1
    assert "missing-rule" in kinds(data, "demo/web:http") and "missing-rule" in kinds(data, "demo/lb:https")


def test_missing_jump_from_prerouting(capsys, tmp_path):
    line = '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'
    code, data = diff(capsys, tmp_path, V4.replace(line, ""))
    assert code == 1
    (f,) = data["services"]["node-wide"]
    assert f["kind"] == "missing-jump" and f["chain"] == "PREROUTING"


def test_stale_chain_of_a_deleted_service_with_counters(capsys, tmp_path):
    v4 = add_nat(V4, "KUBE-SVC-GONEGONEGONEGONE", [
        '[7:420] -A KUBE-SVC-GONEGONEGONEGONE -m comment --comment "old/gone:http -> 10.244.7.7:80" -j KUBE-MARK-MASQ'])
    code, data = diff(capsys, tmp_path, v4)
    assert code == 1
    (f,) = data["services"]["old/gone:http"]
    assert f["kind"] == "stale-chain" and f["counters"] == {"packets": 7, "bytes": 420}


def test_foreign_rules_are_ignored_unless_asked(capsys, tmp_path):
    v4 = add_nat(V4, "CNI-HOSTPORT", []).replace(
        "-A PREROUTING -m comment", "-A PREROUTING -s 1.2.3.4 -j DROP\n-A PREROUTING -m comment", 1)
    code, data = diff(capsys, tmp_path, v4)
    assert code == 0
    code, data = diff(capsys, tmp_path, v4, V6, "--all-chains")
    assert code == 0 and any(f["kind"] == "foreign-chain" for f in data["services"]["node-wide"])


def test_text_report_and_exit_code(capsys, tmp_path):
    f = tmp_path / "live.txt"
    f.write_text(V4.replace('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n', "")
                 + V6)
    code = main(["diff", *ARGS, "--live-rules", str(f)])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "missing jump nat PREROUTING (IPv4)" in out
    assert re.search(r"^differences in 0 Service\(s\): 1 missing jump$", out, re.M)


@pytest.mark.parametrize("args,needle", [
    (["--live-rules", "/nonexistent"], "/nonexistent"),
])
def test_errors_exit_2(capsys, args, needle):
    code = main(["diff", *ARGS, *args])
    _, err = capsys.readouterr()
    assert code == 2 and needle in err


def test_a_failure_is_exit_2_never_1(capsys):
    code = main(["diff", *ARGS, "--netns", "pxctl-no-such-namespace"])
    _, err = capsys.readouterr()
    assert code == 2 and "does not exist" in err
