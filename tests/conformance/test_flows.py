"""Every expected.flows.yaml of kube-proxy's tests, traced through ``proxyctl trace -o json`` on rules
compiled by ``proxyctl`` (or, for trace_packet_static, on kube-proxy's own test ruleset)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from proxyctl.cli.main import main

KP = Path(__file__).parent / "fixtures" / "kube-proxy"
PHASE_KEEP = {"afterAdd": None, "afterEndpointSliceDelete": "Service", "afterServiceDelete": "EndpointSlice"}


def flow_output(data: dict) -> tuple[str, bool]:
    """The fixtures' mapping from the JSON: ACCEPTed destinations in order, else a sole rule verdict."""
    outcomes = data["outcomes"]
    dests = []
    for o in outcomes:
        d = o["destination"]
        if o["verdict"] == "ACCEPT" and d is not None:
            dests.append(f"[{d['ip']}]:{d['port']}" if ":" in d["ip"] else f"{d['ip']}:{d['port']}")
    if dests:
        out = ", ".join(dests)
    elif outcomes and all(o["decidedBy"] == "rule" for o in outcomes) and len({o["verdict"] for o in outcomes}) == 1:
        out = outcomes[0]["verdict"]
    else:
        out = ""
    return out, any(o["masquerade"] for o in outcomes)


def cases():
    for flows in sorted(KP.rglob("expected.flows.yaml")):
        case = flows.parent
        data = yaml.safe_load(flows.read_text())
        phases = data if isinstance(data, dict) else {"afterAdd": data}
        for phase, items in phases.items():
            for f in items:
                yield pytest.param(case, phase, f, id=f"{case.relative_to(KP)}:{phase}:{f['name']}")


def _phase_input(case: Path, phase: str, tmp_path: Path) -> Path:
    keep = PHASE_KEEP[phase]
    if keep is None:
        return case / "input.yaml"
    docs = [d for d in yaml.safe_load_all((case / "input.yaml").read_text()) if d and d["kind"] == keep]
    out = tmp_path / "input.yaml"
    out.write_text(yaml.safe_dump_all(docs) if docs else "")
    return out


@pytest.mark.parametrize("case,phase,flow", list(cases()))
def test_flow(capsys, tmp_path, case, phase, flow):
    dest = f"[{flow['destIP']}]:{flow['destPort']}" if ":" in flow["destIP"] else f"{flow['destIP']}:{flow['destPort']}"
    common = [dest, "--src", flow["sourceIP"], "--proto", flow["protocol"].lower(), "-o", "json",
              "--node-facts", str(case / "node.yaml")]
    if (case / "rules.iptables").exists():
        args = ["trace", *common, "--rules", str(case / "rules.iptables")]
    else:
        args = ["trace", *common, "-f", str(_phase_input(case, phase, tmp_path)),
                "--config", str(case / "kube-proxy-config.yaml")]
    code = main(args)
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert abs(sum(o["probability"] for o in data["outcomes"]) - 1.0) < 1e-9
    assert data["unevaluated"] == []
    assert flow_output(data) == (flow["output"], flow["masq"])
