"""kube-proxy's own expected outputs (shared/fixtures, copied here), compiled through the CLI."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from proxyctl.backends.iptables.compile import probability
from proxyctl.cli.main import main
from tests.conformance.ktsort import normalise_marks, sort_restore

FIXTURES = Path(__file__).parent / "fixtures"
KP = FIXTURES / "kube-proxy"
REAL = FIXTURES / "real-kube-proxy"


def run_cli(capsys, *args: str) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return out


def compile_case(capsys, case: Path, *extra: str) -> str:
    opts = yaml.safe_load((case / "options.yaml").read_text())["options"]
    return run_cli(capsys, "compile", "-f", str(case / "input.yaml"), "--config", str(case / "kube-proxy-config.yaml"),
                   "--node-facts", str(case / "node.yaml"), "--ip-family", opts["ipFamily"], *extra)


def expected_cases() -> list[Path]:
    return sorted(p.parent for p in KP.rglob("expected.iptables"))


@pytest.mark.parametrize("case", expected_cases(), ids=lambda p: p.name)
def test_full_payload_matches_after_kube_proxy_sort(capsys, case):
    got = normalise_marks(sort_restore(compile_case(capsys, case)))
    want = normalise_marks((case / "expected.iptables").read_text())
    assert got == want


def test_masquerade_mark_is_written_as_kube_proxy_writes_it(capsys):
    out = compile_case(capsys, KP / "overall_iptables_rules")
    assert "-A KUBE-MARK-MASQ -j MARK --or-mark 0x00004000" in out
    assert "-A KUBE-POSTROUTING -m mark ! --mark 0x00004000/0x00004000 -j RETURN" in out


def _chain(text: str, chain: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if line.startswith(f"-A {chain} "))


@pytest.mark.parametrize("random_fully", [False, True])
def test_masquerade_rule_cases(capsys, tmp_path, random_fully):
    case = KP / "masquerade_rule"
    spec = yaml.safe_load((case / "options.yaml").read_text())
    (want_case,) = [c for c in spec["cases"] if c["options"]["iptablesHasRandomFully"] == random_fully]
    facts = yaml.safe_load((case / "node.yaml").read_text())
    facts["iptables"]["randomFully"] = random_fully
    (tmp_path / "node.yaml").write_text(yaml.safe_dump(facts))
    out = run_cli(capsys, "compile", "-f", str(case / "input.yaml"), "--config", str(case / "kube-proxy-config.yaml"),
                  "--node-facts", str(tmp_path / "node.yaml"), "--ip-family", "IPv4")
    exp = want_case["expectedChain"]
    assert normalise_marks(_chain(out, exp["chain"])) == normalise_marks(exp["rules"])


def test_compute_probability_table():
    spec = yaml.safe_load((KP / "compute_probability" / "options.yaml").read_text())
    for n, want in spec["expected"].items():
        assert probability(int(n)) == want
    values = [float(probability(n)) for n in range(100000, 1, -1)]
    assert all(a < b for a, b in zip(values, values[1:], strict=False))


# --- what a real kube-proxy v1.36.2 left on a node -------------------------------------------------

UNORDERED = ("KUBE-SERVICES", "KUBE-NODEPORTS")  # written in Go map order, different every run


def _by_chain(save_text: str) -> dict[tuple[str, str], object]:
    """Per (table, chain): its declaration and rules; map-ordered chains as multisets."""
    out: dict[tuple[str, str], object] = {}
    table = ""
    for line in save_text.splitlines():
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            table = line[1:]
            continue
        if line.startswith(":"):
            name = line[1:].split()[0]
            out[(table, name)] = [line]
            continue
        chain = line.split()[1]
        out[(table, chain)].append(line)
    for key, lines in out.items():
        if key[1] in UNORDERED:
            out[key] = Counter(lines)
    return out


@pytest.mark.parametrize("family,dump", [("IPv4", "iptables-save.txt"), ("IPv6", "ip6tables-save.txt")])
def test_save_format_equals_a_real_kube_proxy_node(capsys, family, dump):
    d = REAL / "demo-iptables-nft"
    out = run_cli(capsys, "compile", "-f", str(d / "objects.yaml"), "--config", str(d / "kube-proxy-config.yaml"),
                  "--node-facts", str(d / "node.yaml"), "--ip-family", family, "--format", "save")
    want = (d / dump).read_text()
    assert _by_chain(out) == _by_chain(want)
    # tables in iptables-save's order, chains declared built-ins first then by name
    assert re.findall(r"^\*\w+", out, re.M) == re.findall(r"^\*\w+", want, re.M)
    assert re.findall(r"^:\S+", out, re.M) == re.findall(r"^:\S+", want, re.M)
