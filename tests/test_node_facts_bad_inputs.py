"""Every file in tests/bad_inputs/node_facts is rejected with exactly its `# expect:` lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxyctl.errors import NodeFactsError
from proxyctl.node.load import load_node_facts

CORPUS = Path(__file__).parent / "bad_inputs" / "node_facts"
CASES = sorted(CORPUS.glob("*.yaml"))


def expected_lines(path: Path) -> list[str]:
    prefix = "# expect: "
    return [f"{path}: {line[len(prefix):]}" for line in path.read_text().splitlines() if line.startswith(prefix)]


def test_corpus_is_not_empty():
    assert len(CASES) >= 20


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_bad_input_is_rejected_with_its_expected_lines(path: Path):
    expected = expected_lines(path)
    assert expected, f"{path.name} has no '# expect:' line"
    with pytest.raises(NodeFactsError) as info:
        load_node_facts(str(path))
    assert info.value.lines() == expected
    assert str(info.value) == "\n".join(expected)
