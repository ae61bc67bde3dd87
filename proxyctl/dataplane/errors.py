"""Errors of the dataplane, under ``KernelError`` (exit 1)::

    KernelError
    ├── RestoreError    iptables-restore rejected a payload: its stderr, the line it named with
    │                   context, and which tables were committed and which kept their rules
    └── CleanupError    some cleanup steps failed; the others ran (what was done is listed)

iptables-restore commits table by table (one transaction per ``*table`` ... ``COMMIT``): when a
table fails, it keeps its previous rules, tables committed before it in the same payload keep
their new ones, and tables after it are never read. Either way the node no longer holds what the
last successful sync wrote plus this change, so the next sync must be a full one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxyctl.errors import KernelError

CONTEXT_LINES = 3

# legacy:   "iptables-restore: line 2 failed", "Error occurred at line: 7"
# nft:      "iptables-nft-restore: line 2 failed: Chain already exists.",
#           "line 3: CHAIN_DEL failed (Device or resource busy): chain FOO", "Error occurred at line: 9"
_LINE = re.compile(r"\bline:? (\d+)\b")


def failing_line(stderr: str) -> int | None:
    """The payload line iptables-restore names in its error text, or None.

    Matching known wordings of iptables 1.8 (legacy and nft) is imperfect by nature; a message
    that names no line gives None and the error then says the tables' state is unknown.
    """
    m = _LINE.search(stderr)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class TableSpan:
    name: str
    first: int  # the ``*table`` line (1-based)
    last: int  # its ``COMMIT`` line; without one, the line after the payload's last (where
    # iptables-restore reports "COMMIT expected")


def table_spans(payload: str) -> list[TableSpan]:
    """Where each ``*table`` section of a restore payload starts and ends."""
    spans: list[TableSpan] = []
    current: tuple[str, int] | None = None
    lines = payload.splitlines()
    for number, text in enumerate(lines, 1):
        s = text.strip()
        if s.startswith("*"):
            if current is not None:
                spans.append(TableSpan(current[0], current[1], number - 1))
            current = (s[1:].strip(), number)
        elif s == "COMMIT" and current is not None:
            spans.append(TableSpan(current[0], current[1], number))
            current = None
    if current is not None:
        spans.append(TableSpan(current[0], current[1], len(lines) + 1))
    return spans


@dataclass(frozen=True)
class TableOutcome:
    """What a failed restore did to each table of its payload."""

    applied: tuple[str, ...]  # committed before the failure: they hold the new rules
    failed: str | None  # the table whose section holds the failing line: it kept its rules
    untouched: tuple[str, ...]  # after the failure: never read, they kept their rules
    unknown: tuple[str, ...] = ()  # no line named: state unknown

    def describe(self) -> str:
        if self.unknown:
            return (f"iptables-restore named no line, so which of {', '.join(self.unknown)} were applied is "
                    "unknown")
        parts = [f"{t} was applied" for t in self.applied]
        kept = ([self.failed] if self.failed else []) + list(self.untouched)
        if kept:
            parts.append(f"{_join(kept)} kept {'its' if len(kept) == 1 else 'their'} previous rules")
        return "; ".join(parts)


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def table_outcome(payload: str, line: int | None) -> TableOutcome:
    spans = table_spans(payload)
    names = tuple(s.name for s in spans)
    if line is None:
        return TableOutcome((), None, (), unknown=names)
    applied = tuple(s.name for s in spans if s.last < line)
    failed = next((s.name for s in spans if s.first <= line <= s.last), None)
    untouched = tuple(s.name for s in spans if s.first > line)
    return TableOutcome(applied, failed, untouched)


def context(payload: str, line: int | None, around: int = CONTEXT_LINES) -> tuple[tuple[int, str], ...]:
    """The payload lines ``line - around`` .. ``line + around`` as (number, text)."""
    if line is None:
        return ()
    lines = payload.splitlines()
    first, last = max(1, line - around), min(len(lines), line + around)
    return tuple((n, lines[n - 1]) for n in range(first, last + 1))


class RestoreError(KernelError):
    """iptables-restore rejected a payload; the next sync must be a full one.

    ``line`` is the 1-based payload line iptables-restore named (None when it named none),
    ``line_text`` that line, ``context`` it and up to three lines either side, ``outcome`` what
    happened to each table (see the module docstring), ``payload`` the whole text sent.
    """

    needs_full_sync = True

    def __init__(self, message: str, *, argv: tuple[str, ...], netns: str | None, returncode: int | None,
                 stderr: str, payload: str, family: str, backend: str):
        super().__init__(message, argv=argv, netns=netns, returncode=returncode, stderr=stderr)
        self.payload = payload
        self.family = family
        self.backend = backend
        self.line = failing_line(stderr)
        lines = payload.splitlines()
        self.line_text = lines[self.line - 1] if self.line is not None and 0 < self.line <= len(lines) else None
        self.context = context(payload, self.line)
        self.outcome = table_outcome(payload, self.line)

    @classmethod
    def from_failure(cls, failure: KernelError, *, tool: str, payload: str, family: str,
                     backend: str) -> RestoreError:
        """Translate the runner's KernelError for ``tool`` into a RestoreError."""
        stderr = failure.stderr or str(failure)
        line = failing_line(stderr)
        where = f" in network namespace {failure.netns}" if failure.netns else ""
        reason = _reason(stderr)
        if line is None:
            message = f"{tool} ({family}{where}) failed: {reason}"
        else:
            outcome = table_outcome(payload, line)
            table = f" (table {outcome.failed})" if outcome.failed else ""
            message = f"{tool} ({family}{where}) rejected line {line} of its input{table}: {reason}"
        return cls(message, argv=failure.argv, netns=failure.netns, returncode=failure.returncode, stderr=stderr,
                   payload=payload, family=family, backend=backend)

    def lines(self) -> list[str]:
        out = [str(self)]
        if self.stderr:
            out.append("iptables-restore said:")
            out.extend(f"    {s}" for s in self.stderr.splitlines() if s.strip())
        if self.context:
            out.append(f"input lines {self.context[0][0]}-{self.context[-1][0]}:")
            for number, text in self.context:
                mark = ">" if number == self.line else " "
                out.append(f"  {mark} {number:>5}  {text}")
        out.append(self.outcome.describe() + ".")
        out.append("The next sync must be a full one.")
        return out


_TOOL_PREFIX = re.compile(r"^ip6?tables[\w-]*(?: v[\d.]+ \([^)]*\))?:\s*")
_LINE_PREFIX = re.compile(r"^line \d+(?: failed)?:?\s*")
_NOISE = ("#", "Try `", "Ignoring deprecated", "Error occurred at line")


def _reason(stderr: str) -> str:
    """The most telling line of iptables-restore's error text, without the tool and line prefixes."""
    lines = [s.strip() for s in stderr.splitlines() if s.strip() and not s.strip().startswith(_NOISE)]
    for s in lines:
        text = _LINE_PREFIX.sub("", _TOOL_PREFIX.sub("", s))
        if text:
            return text
    return lines[0] if lines else "no error text"


class CleanupError(KernelError):
    """Some cleanup steps failed; ``done`` lists what the others did, ``failures`` each failure."""

    def __init__(self, failures: list[KernelError], done: list[str]):
        first = failures[0]
        super().__init__(f"cleanup: {len(failures)} step(s) failed: {first}", argv=first.argv, netns=first.netns,
                         returncode=first.returncode, stderr=first.stderr)
        self.failures = tuple(failures)
        self.done = tuple(done)

    def lines(self) -> list[str]:
        return [f"cleanup failed: {f}" for f in self.failures] + [f"done anyway: {d}" for d in self.done]
