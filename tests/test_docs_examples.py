"""The examples in docs/*.md are run, and the rest of the docs is held to the CLI.

In a ```console block, ``$ proxyctl ...`` is a command (a trailing backslash continues it on the
next line), an optional ``# exit N`` after it is the exit status it must have (0 when absent), and
the lines below it, up to the next command, must appear in what it printed, stdout and stderr
together (``...`` stands for lines left out). Such commands run from the repository's root through
``proxyctl.cli.main.main``, so they must need neither root nor a kernel. Commands in other blocks
(```sh) are not run, but every ``proxyctl`` command line in any block may only use options its
command has.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from proxyctl.cli.main import cli, main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
COMMAND_PAGES = ("compile", "trace", "diff", "apply", "cleanup", "run", "config", "lab")
EXIT = re.compile(r"\s+#\s*exit\s+(\d+)\s*$")
FENCE = re.compile(r"^\s*```(\S*)\s*$")
# What a runnable example may not do: touch a kernel, need root or an API server.
NEEDS_A_NODE = {"apply", "cleanup", "run", "lab"}
NEEDS_A_NODE_FLAGS = {"--node", "--netns", "--live", "--from-cluster", "--kubeconfig"}


@dataclass
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    lines: list[str] = field(default_factory=list)


@dataclass
class Example:
    page: Path
    line: int
    argv: list[str]
    exit_code: int
    expected: list[str]

    def __str__(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    out: list[Block] = []
    current: Block | None = None
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        fence = FENCE.match(line)
        if current is None:
            if fence:
                current = Block(page, number, fence.group(1))
        elif fence and not fence.group(1):
            out.append(current)
            current = None
        else:
            current.lines.append(line)
    assert current is None, f"{page.name}:{current.line}: code block never closed"
    return out


def examples(block: Block) -> list[Example]:
    """The ``$ proxyctl`` commands of a console block, with their exit codes and expected lines."""
    out: list[Example] = []
    lines = iter(enumerate(block.lines, block.line + 1))
    for number, line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines)[1].strip()
            exit_code = 0
            if m := EXIT.search(command):
                exit_code, command = int(m.group(1)), command[:m.start()]
            argv = shlex.split(command)
            assert argv[0] == "proxyctl", f"{block.page.name}:{number}: a console example runs proxyctl, not {argv[0]}"
            out.append(Example(block.page, number, argv[1:], exit_code, []))
        elif line.strip() and line.strip() != "...":
            assert out, f"{block.page.name}:{number}: output before any command"
            out[-1].expected.append(line.rstrip())
    return out


ALL_BLOCKS = [b for page in PAGES for b in blocks(page)]
EXAMPLES = [e for b in ALL_BLOCKS if b.lang == "console" for e in examples(b)]


def test_there_is_a_page_per_command_and_on_clusters_and_kube_proxy():
    names = {p.stem for p in PAGES}
    missing = set(COMMAND_PAGES) - names
    assert not missing, f"docs/ has no page for {sorted(missing)}"
    assert {"cluster", "kube-proxy", "README"} <= names
    index = (DOCS / "README.md").read_text()
    for page in PAGES:
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"


def test_every_command_page_has_examples_and_the_pure_ones_run():
    ran = {e.argv[0] for e in EXAMPLES}
    assert {"compile", "trace", "diff", "config"} <= ran
    assert len(EXAMPLES) >= 15


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_example(example: Example, capsys, monkeypatch):
    assert example.argv[0] not in NEEDS_A_NODE, f"{example}: {example.argv[0]} needs a node: use a ```sh block"
    assert not NEEDS_A_NODE_FLAGS & {a.split("=")[0] for a in example.argv}, f"{example}: needs a node or a cluster"
    monkeypatch.chdir(ROOT)
    code = main(list(example.argv))
    out, err = capsys.readouterr()
    printed = {line.rstrip() for line in (out + err).splitlines()}
    assert code == example.exit_code, f"{example}: exit {code}, the doc says {example.exit_code}\n{err}"
    missing = [line for line in example.expected if line not in printed]
    assert not missing, f"{example}: not printed:\n" + "\n".join(missing) + f"\n--- printed ---\n{out}{err}"


def _command(path: list[str]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group) and name in command.commands, f"no command proxyctl {' '.join(path)}"
        command = command.commands[name]
    return command


def _options(command: click.Command) -> set[str]:
    return {o for p in command.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts} | {
        "-h", "--help"}


def command_lines() -> list[tuple[str, list[str]]]:
    """(where, words) of every ``proxyctl`` invocation in a code block of the docs."""
    found = []
    for block in ALL_BLOCKS:
        text = "\n".join(block.lines).replace("\\\n", " ")
        for number, line in enumerate(text.splitlines(), block.line + 1):
            for m in re.finditer(r"(?:^|[\s$|;&('\"])(?:sudo\s+)?(?:\S*/)?proxyctl\s+([a-z].*)", line):
                rest = re.split(r"\s(?:\||;|&&|>|<|#)\s?|'", " " + m.group(1))[0]
                words = rest.replace("[", " ").replace("]", " ").split()
                found.append((f"{block.page.name}:{number}", words))
    return found


def test_doc_command_lines_use_only_options_their_command_has():
    checked = 0
    for where, words in command_lines():
        path = [words[0]]
        if isinstance(_command(path), click.Group) and len(words) > 1 and not words[1].startswith("-"):
            path.append(words[1])
        command = _command(path)
        options = _options(command)
        for word in words[len(path):]:
            flag = word.split("=")[0]
            if re.fullmatch(r"--?[a-z][a-z0-9-]*", flag):
                assert flag in options, f"{where}: proxyctl {' '.join(path)} has no option {flag}"
        checked += 1
    assert checked >= 40


def test_relative_links_point_at_files_that_exist():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
