"""How dataplane code runs a kernel tool: one callable, so tests can script it.

The real runner is ``proxyctl.node.netns.run_tool`` (``ip netns exec`` when a namespace is
named, a deadline, KernelError with argv, namespace, exit status and stderr on failure).
``fake_runner.ScriptedRunner`` stands in for it in tests and checks argv and stdin.
"""

from __future__ import annotations

from typing import Protocol

from proxyctl.node.netns import run_tool


class Runner(Protocol):
    def __call__(self, argv: tuple[str, ...], *, netns: str | None, timeout: float,
                 input: str | None = None) -> str:
        """Run ``argv`` in ``netns`` with ``input`` on stdin; its stdout, or KernelError."""
        ...


DEFAULT_RUNNER: Runner = run_tool
