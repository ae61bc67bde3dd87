"""Every file in tests/bad_inputs/manifests gives exactly the problems its comments announce."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyctl.cluster.manifests import load_manifests
from proxyctl.errors import ManifestError

CORPUS = Path(__file__).parent / "bad_inputs" / "manifests"
CASES = sorted(p for p in CORPUS.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def announced(path: Path) -> tuple[list[str], list[str], int | None]:
    """(problem lines, fatal lines, valid object count) from the file's comments or its .expect."""
    sidecar = path.with_name(path.name + ".expect")
    text = sidecar.read_text() if sidecar.exists() else path.read_text(errors="replace")
    problems, fatal, valid = [], [], None
    for line in text.splitlines():
        if line.startswith("# expect: "):
            rest = line[len("# expect: "):].replace("{path}", str(path))
            problems.append(f"{path}{rest}" if rest.startswith("[") else f"{path}: {rest}")
        elif line.startswith("# expect-fatal: "):
            fatal.append(f"{path}: {line[len('# expect-fatal: '):]}")
        elif line.startswith("# valid: "):
            valid = int(line[len("# valid: "):])
    return problems, fatal, valid


def test_corpus_covers_the_required_cases():
    names = {p.stem for p in CASES}
    for required in ("not_yaml", "not_json", "bad_cluster_ip", "port_out_of_range", "unknown_protocol",
                     "missing_name", "name_with_quote", "name_with_newline", "name_with_space",
                     "bad_source_range", "wrong_type"):
        assert required in names
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_bad_input(path: Path):
    problems, fatal, valid = announced(path)
    assert problems or fatal, f"{path.name} announces nothing"
    if fatal:
        with pytest.raises(ManifestError) as info:
            load_manifests([str(path)])
        assert [str(info.value)] == fatal
        assert info.value.exit_code == 2
        return
    result = load_manifests([str(path)])
    assert [str(p) for p in result.problems] == problems
    for problem in result.problems:
        assert problem.source == str(path) and problem.document is not None
        assert problem.obj or problem.field == "kind"  # an object without kind may have no name either
        assert problem.field or problem.message.startswith("replaced by a later definition")
    if valid is not None:
        state = result.state
        assert len(state.services) + len(state.endpoint_slices) + len(state.nodes) == valid


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_bad_input_in_strict_mode(path: Path):
    problems, fatal, _ = announced(path)
    with pytest.raises(ManifestError) as info:
        load_manifests([str(path)], strict=True)
    assert info.value.lines() == (fatal or problems)


def test_problem_lines_are_single_lines():
    for path in CASES:
        problems, fatal, _ = announced(path)
        for line in problems + fatal:
            assert "\n" not in line and "\r" not in line
