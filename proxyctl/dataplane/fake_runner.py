"""A scripted stand-in for ``run_tool``: the commands a test expects, in order, with their answers.

Like knftables' ``fakeExec``: every call must match the next expected argv (and stdin, when the
expectation gives one), or the test fails with both side by side; an expectation may answer
with stdout or fail like the tool would (exit status and stderr, as a KernelError).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from proxyctl.errors import KernelError


@dataclass(frozen=True)
class Expect:
    """One expected command: ``argv`` (without ``ip netns exec``), and what it answers."""

    argv: tuple[str, ...]
    stdout: str = ""
    stdin: str | None = None  # None: not checked
    returncode: int = 0
    stderr: str = ""


@dataclass
class ScriptedRunner:
    expected: list[Expect]
    netns: str | None = None
    calls: list[tuple[tuple[str, ...], str | None]] = field(default_factory=list)

    def __call__(self, argv: tuple[str, ...], *, netns: str | None, timeout: float,
                 input: str | None = None) -> str:
        self.calls.append((tuple(argv), input))
        if not self.expected:
            raise AssertionError(f"unexpected command {' '.join(argv)!r}: no more commands were expected")
        want = self.expected.pop(0)
        if tuple(argv) != want.argv:
            raise AssertionError(f"expected command {' '.join(want.argv)!r}, got {' '.join(argv)!r}")
        if netns != self.netns:
            raise AssertionError(f"{' '.join(argv)!r} ran in namespace {netns!r}, expected {self.netns!r}")
        if timeout <= 0:
            raise AssertionError(f"{' '.join(argv)!r} ran without a deadline")
        if want.stdin is not None and input != want.stdin:
            raise AssertionError(f"stdin of {' '.join(argv)!r} differs:\n--- expected\n{want.stdin}"
                                 f"--- got\n{input}")
        if want.returncode != 0:
            raise KernelError(f"{' '.join(argv)} failed (exit {want.returncode}): {want.stderr}", argv=tuple(argv),
                              netns=netns, returncode=want.returncode, stderr=want.stderr)
        return want.stdout

    def assert_done(self) -> None:
        if self.expected:
            raise AssertionError("expected commands that never ran: "
                                 + "; ".join(" ".join(e.argv) for e in self.expected))
