"""``proxyctl trace`` as a user meets it."""

from __future__ import annotations

import json
from pathlib import Path

from proxyctl.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
DEMO_ARGS = ["-f", str(DEMO / "cluster.yaml"), "--config", str(DEMO / "kube-proxy-config.yaml"),
             "--node-facts", str(DEMO / "node.yaml")]
REAL = ROOT / "tests" / "conformance" / "fixtures" / "real-kube-proxy" / "demo-iptables-nft"


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_json_shape(capsys):
    code, out, _ = run(capsys, "trace", "10.96.10.10:80", *DEMO_ARGS, "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert data["packet"] == {"src": "10.244.0.2", "dst": "10.96.10.10", "protocol": "tcp", "sport": 40000,
                              "dport": 80}
    assert [o["destination"] for o in data["outcomes"]] == [{"ip": "10.244.0.11", "port": 8080},
                                                             {"ip": "10.244.1.12", "port": 8080}]
    o = data["outcomes"][0]
    assert o["probability"] == 0.5 and o["verdict"] == "ACCEPT" and o["masquerade"] is False and o["snat"] is None
    step = next(s for s in o["path"] if s["chain"] == "KUBE-SERVICES")
    assert step["table"] == "nat" and step["text"].startswith("-A KUBE-SERVICES") and step["rule"] >= 1
    assert any("10.244.1.13:8080" in w and "not ready" in w for w in data["why"])


def test_service_name_as_destination_and_why_for_reject(capsys):
    code, out, _ = run(capsys, "trace", "demo/no-endpoints:http", *DEMO_ARGS)
    assert code == 0
    assert "REJECT by rule" in out and "no endpoints at all" in out


def test_trace_a_real_node_dump_with_line_numbers(capsys):
    code, out, err = run(capsys, "trace", "10.96.10.40:80", "--src", "10.244.0.5", "--rules",
                         str(REAL / "iptables-save.txt"), "--node-facts", str(REAL / "node.yaml"), "-o", "json")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["outcomes"]) == 3
    assert all(abs(o["probability"] - 1 / 3) < 1e-6 for o in data["outcomes"])
    sep = [s for s in data["outcomes"][0]["path"] if s["chain"].startswith("KUBE-SEP-")][-1]
    lines = (REAL / "iptables-save.txt").read_text().splitlines()
    assert lines[sep["line"] - 1] == sep["text"]


def test_returning_client_with_affinity(capsys):
    dump = (REAL / "iptables-save.txt").read_text()
    marker = 'demo/sticky:http -> 10.244.4.42:80" -m recent --rcheck --seconds 600 --reap --name '
    sep = dump.split(marker)[1].split()[0]
    code, out, _ = run(capsys, "trace", "10.96.10.40:80", "--src", "10.244.0.5", "--rules",
                       str(REAL / "iptables-save.txt"), "--node-facts", str(REAL / "node.yaml"), "--affinity", sep,
                       "-o", "json")
    (o,) = json.loads(out)["outcomes"]
    assert o["destination"] == {"ip": "10.244.4.42", "port": 80} and o["probability"] == 1.0


def test_rules_without_kube_jumps_warn(capsys, tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\nCOMMIT\n")
    (tmp_path / "n.yaml").write_text("kind: NodeFacts\nname: n\naddresses: {eth0: [192.0.2.1/24]}\n")
    code, out, err = run(capsys, "trace", "10.0.0.1:80", "--src", "10.1.1.1", "--rules", str(f),
                         "--node-facts", str(tmp_path / "n.yaml"))
    assert code == 0 and "traced as given" in err


def test_usage_errors(capsys):
    assert run(capsys, "trace", "10.0.0.1:80")[0] == 2
    code, _, err = run(capsys, "trace", "10.0.0.1:99999", *DEMO_ARGS)
    assert code == 2 and "port" in err
    code, _, err = run(capsys, "trace", "demo/nope", *DEMO_ARGS)
    assert code == 2 and "no service port" in err


def test_all_table_and_graph(capsys, tmp_path):
    code, out, _ = run(capsys, "trace", "--all", *DEMO_ARGS, "-o", "json")
    rows = json.loads(out)
    byname = {(r["service"], r["kind"]): r for r in rows}
    assert byname[("demo/no-endpoints:http", "cluster IP")]["pod"] == "REJECT"
    assert byname[("demo/etp-local-none:http", "node port")]["external"] == "DROP"
    assert byname[("demo/etp-local:http", "node port")]["external"] == "10.244.0.51:8080"
    code, _, err = run(capsys, "trace", "10.96.10.10:80", *DEMO_ARGS, "--graph", str(tmp_path / "g"))
    assert code == 0
    dot = (tmp_path / "g.dot").read_text()
    assert dot.startswith("digraph trace {") and '"nat:KUBE-SERVICES"' in dot
    page = (tmp_path / "g.html").read_text()
    assert "<svg" in page and "10.244.0.11:8080" in page and "<script" not in page


def test_graph_to_an_unwritable_place_is_a_clear_error(capsys):
    code, _, err = run(capsys, "trace", "10.96.10.10:80", *DEMO_ARGS, "--graph", "/nonexistent/dir/g")
    assert code == 2 and "cannot write" in err


def test_all_over_a_real_node_dump_with_its_objects(capsys):
    code, out, _ = run(capsys, "trace", "--all", "--rules", str(REAL / "iptables-save.txt"), "-f",
                       str(REAL / "objects.yaml"), "--config", str(REAL / "kube-proxy-config.yaml"),
                       "--node-facts", str(REAL / "node.yaml"), "-o", "json")
    rows = {(r["service"], r["kind"]): r for r in json.loads(out)}
    assert code == 0 and rows[("demo/no-endpoints:http", "cluster IP")]["pod"] == "REJECT"
    assert rows[("demo/web:http", "cluster IP")]["pod"] == "2 endpoints"
    code, _, err = run(capsys, "trace", "--all", "--rules", str(REAL / "iptables-save.txt"), "--node-facts",
                       str(REAL / "node.yaml"))
    assert code == 2 and "needs the cluster's objects" in err
