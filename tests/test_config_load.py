"""Reading a file: types, unknown and duplicate fields (lenient and strict), and files that are no config."""

from __future__ import annotations

import io
from pathlib import Path
from unittest.mock import patch

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from proxyctl.config import default_config, load_config, read_config, validate
from proxyctl.config.schema import KUBE_PROXY_CONFIGURATION
from proxyctl.errors import ConfigError

HEADER = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n"
EXAMPLE = Path(__file__).parent.parent / "examples" / "kube-proxy-config-v1.10.yaml"


def write(tmp_path: Path, text: str, header: str = HEADER) -> str:
    path = tmp_path / "kube-proxy.yaml"
    path.write_text(header + text)
    return str(path)


def errors(path: str, *, strict: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as e:
        load_config(path, strict=strict)
    return e.value.lines()


@pytest.mark.parametrize(("text", "message"), [
    ('iptables: {masqueradeBit: "14"}',
     'iptables.masqueradeBit: expected an integer, got string "14" (remove the quotes)'),
    ("iptables: {masqueradeBit: 4294967296}",
     "iptables.masqueradeBit: expected a 32-bit integer, got 4294967296"),
    ("iptables: {masqueradeBit: true}", "iptables.masqueradeBit: expected an integer, got boolean true"),
    ("iptables: {syncPeriod: 30}",
     'iptables.syncPeriod: expected a duration such as "30s", got integer 30 (add a unit: "30s" is 30 seconds)'),
    ('iptables: {syncPeriod: "30"}', 'iptables.syncPeriod: missing unit in duration "30" ("30s" is 30 seconds)'),
    ("configSyncPeriod: 1d", 'configSyncPeriod: unknown unit "d" in duration "1d" (units: ns, us, ms, s, m, h)'),
    ('iptables: {localhostNodePorts: "true"}',
     'iptables.localhostNodePorts: expected true or false, got string "true" (remove the quotes)'),
    ("hostnameOverride: 123", "hostnameOverride: expected a string, got integer 123 (put it in quotes)"),
    ("nodePortAddresses: 10.0.0.0/8",
     'nodePortAddresses: expected a list of strings, got string "10.0.0.0/8" (write a list: ["10.0.0.0/8"])'),
    ("nodePortAddresses: [10.0.0.0/8, 7]", "nodePortAddresses[1]: expected a string, got integer 7"),
    ('featureGates: ""',
     'featureGates: expected a mapping of names to true or false, got string "" (kube-proxy before v1.11 took '
     'a string such as "A=true,B=false"; write a mapping)'),
    ("featureGates: {SomeGate: maybe}", 'featureGates.SomeGate: expected true or false, got string "maybe"'),
    ("iptables: [masqueradeBit]", "iptables: expected a mapping, got a list"),
    ("clientConnection: {qps: fast}", 'clientConnection.qps: expected a number, got string "fast"'),
    ("logging: {verbosity: -1}", "logging.verbosity: expected a 32-bit whole number (0 or more), got -1"),
    ("logging: {options: {json: {infoBufferSize: lots}}}",
     'logging.options.json.infoBufferSize: "lots" is not a quantity (e.g. "0", "64Ki", "1Mi")'),
    ("logging: {vmodule: [5]}", "logging.vmodule[0]: expected a mapping, got integer 5"),
])
def test_type_errors_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text + "\n")
    assert errors(path) == [f"{path}: {message}"]


def test_type_error_and_validation_error_together(tmp_path: Path) -> None:
    path = write(tmp_path, 'iptables: {masqueradeBit: "x", syncPeriod: -1s}\n')
    assert errors(path) == [
        f'{path}: iptables.masqueradeBit: expected an integer, got string "x"',
        f"{path}: iptables.syncPeriod: -1s must be greater than 0",
    ]


def test_unknown_fields_warn_at_any_depth(tmp_path: Path) -> None:
    path = write(tmp_path, "resourceContainer: /kube-proxy\nfoo: 1\niptables: {masqueradebit: 3, bar: {x: 1}}\n"
                           "logging: {options: {text: {colour: true}}}\n")
    config, warnings = load_config(path)
    assert warnings == [
        f"{path}: unknown field resourceContainer (ignored; kube-proxy v1.36 no longer has it)",
        f"{path}: unknown field foo (ignored)",
        f"{path}: unknown field iptables.masqueradebit (ignored; did you mean masqueradeBit?)",
        f"{path}: unknown field iptables.bar (ignored)",
        f"{path}: unknown field logging.options.text.colour (ignored)",
    ]
    assert config.masquerade_bit == 14


def test_unknown_fields_are_errors_when_strict(tmp_path: Path) -> None:
    path = write(tmp_path, "udpIdleTimeout: 250ms\nconntrack: {max: 0}\n")
    assert errors(path, strict=True) == [
        f"{path}: udpIdleTimeout: unknown field (a userspace-mode setting; kube-proxy v1.36 no longer has it); "
        "strict decoding rejects it",
        f"{path}: conntrack.max: unknown field (kube-proxy v1.36 no longer has it; conntrack.maxPerCore and "
        "conntrack.min size the table); strict decoding rejects it",
    ]


def test_duplicate_fields(tmp_path: Path) -> None:
    path = write(tmp_path, "mode: ipvs\nmode: iptables\n")
    config, warnings = load_config(path)
    assert config.mode == "iptables"
    assert warnings == [f"{path}: duplicate field mode (the last value is used)"]
    assert errors(path, strict=True) == [
        f"{path}: mode: duplicate field (the last value is used); strict decoding rejects it"]


def test_the_v1_10_example_loads_with_warnings() -> None:
    config, warnings = load_config(str(EXAMPLE))
    assert warnings == [
        f"{EXAMPLE}: unknown field conntrack.max (ignored; kube-proxy v1.36 no longer has it; "
        "conntrack.maxPerCore and conntrack.min size the table)",
        f"{EXAMPLE}: unknown field resourceContainer (ignored; kube-proxy v1.36 no longer has it)",
    ]
    assert config.data["clientConnection"]["kubeconfig"] == "/var/lib/kube-proxy/kubeconfig.conf"
    # minSyncPeriod: 0s is "unset" to v1.36's defaulting, which now gives 1s.
    assert config.data["iptables"]["minSyncPeriod"] == "1s"
    assert config.min_sync_period == 1.0
    with pytest.raises(ConfigError):
        load_config(str(EXAMPLE), strict=True)


@pytest.mark.parametrize(("header", "text", "message"), [
    ("", "", "the file is empty; a KubeProxyConfiguration needs at least apiVersion: "
             "kubeproxy.config.k8s.io/v1alpha1 and kind: KubeProxyConfiguration"),
    ("", "- a\n- b\n", "expected a mapping (a KubeProxyConfiguration), got a list"),
    ("", "just text\n", 'expected a mapping (a KubeProxyConfiguration), got string "just text"'),
    ("", "kind: KubeProxyConfiguration\n", "apiVersion: missing; set it to kubeproxy.config.k8s.io/v1alpha1"),
    ("", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n", "kind: missing; set it to KubeProxyConfiguration"),
    ("", "apiVersion: componentconfig/v1alpha1\nkind: KubeProxyConfiguration\n",
     'apiVersion: string "componentconfig/v1alpha1" is not kubeproxy.config.k8s.io/v1alpha1 '
     "(the group's old name; change it to kubeproxy.config.k8s.io/v1alpha1)"),
    ("", "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeletConfiguration\n",
     'kind: string "KubeletConfiguration" is not KubeProxyConfiguration'),
    ("", "mode: [unclosed\n", "not valid YAML: expected ',' or ']', but got '<stream end>' at line 2, column 1"),
    ("", "a: 1\n---\nb: 2\n", "holds 2 YAML documents; a configuration file holds one"),
    (HEADER, "mode: iptables\n\tbad: tab\n", "not valid YAML: found character '\\t' that cannot start any "
                                           "token at line 4, column 1"),
])
def test_files_that_are_not_a_configuration(tmp_path: Path, header: str, text: str, message: str) -> None:
    path = write(tmp_path, text, header=header)
    assert errors(path) == [f"{path}: {message}"]


def test_missing_file(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.yaml")
    assert errors(path) == [f"{path}: cannot read the file: No such file or directory"]


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "kp.yaml"
    path.write_bytes(b"mode: iptables\nhostnameOverride: \xff\xfe\n")
    assert errors(str(path)) == [f"{path}: not UTF-8 text: byte 0xff on line 2"]


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(HEADER + "mode: nftables\n"))
    config, warnings = load_config("-")
    assert (config.mode, config.masquerade_bit, warnings) == ("nftables", 14, [])


def test_json_is_yaml_too(tmp_path: Path) -> None:
    path = write(tmp_path, '{"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration",'
                           ' "mode": "ipvs"}', header="")
    assert load_config(path)[0].mode == "ipvs"


def test_yaml_1_1_booleans_and_dates(tmp_path: Path) -> None:
    # yes/no are booleans in Go's yaml.v2 as in PyYAML; a date-like hostname stays a string.
    # Base-60 numbers are not read either: 30:40 stays the string it looks like.
    path = write(tmp_path, "enableProfiling: yes\nhostnameOverride: 2024-01-01\nportRange: 30:40\n")
    data = read_config(path).config.data
    assert (data["enableProfiling"], data["hostnameOverride"], data["portRange"]) == (True, "2024-01-01", "30:40")


def test_read_config_returns_problems_without_raising(tmp_path: Path) -> None:
    path = write(tmp_path, "oomScoreAdj: 5000\nfoo: 1\n")
    result = read_config(path)
    assert [str(p) for p in result.problems] == [f"{path}: oomScoreAdj: 5000 is out of range -1000..1000"]
    assert result.warnings == [f"{path}: unknown field foo (ignored)"]
    assert read_config(None).config == default_config()


def _field_names(fields) -> set[str]:
    names = set()
    for name, f in fields.items():
        names.add(name)
        names |= _field_names(f.fields)
    return names


_NAMES = sorted(_field_names(KUBE_PROXY_CONFIGURATION))
_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats()
            | st.sampled_from(["", "0", "30s", "-1s", "primary", "10.0.0.0/8", "::1", "0.0.0.0:10256", "1Mi"])
            | st.text(max_size=12))
_VALUES = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(_NAMES) | st.text(max_size=6), inner, max_size=4), max_leaves=12)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.sampled_from(_NAMES) | st.text(max_size=6), _VALUES, max_size=6), st.booleans())
def test_any_mapping_gives_problems_not_a_crash(fields: dict, strict: bool) -> None:
    document = {"apiVersion": "kubeproxy.config.k8s.io/v1alpha1", "kind": "KubeProxyConfiguration", **fields}
    text = yaml.safe_dump(document)
    with patch("sys.stdin", io.StringIO(text)):
        result = read_config("-", strict=strict)
    assert result.config is not None or result.problems
    for problem in result.problems:
        assert problem.source == "-" and problem.message
    if not result.problems:
        assert validate(result.config) == []


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab: -[]{}\n\t'\"&*!%#?|>,.0\x00\u00e9")), max_size=40))
def test_any_text_gives_problems_not_a_crash(text: str) -> None:
    with patch("sys.stdin", io.StringIO(text)):
        result = read_config("-")
    assert result.problems, "no text of these characters is a KubeProxyConfiguration"
    assert all("\n" not in str(p) for p in result.problems)


def test_deep_nesting_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "[" * 600 + "]" * 600, header="")
    assert errors(path) == [f"{path}: not a configuration: nested too deeply"]
