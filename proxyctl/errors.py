"""The one exception tree of proxyctl.

    ProxyctlError                 anything proxyctl reports to a user (exit 2 unless said otherwise)
    ├── InputError                bad user input: a file, an object, a flag
    │   ├── ConfigError           KubeProxyConfiguration problems (one or more Problem lines)
    │   ├── ManifestError         a file that is not YAML/JSON at all, or a strict-mode object error
    │   ├── NodeFactsError        a node facts file that does not fit the NodeFacts format
    │   └── RulesParseError       iptables-save / iptables-restore text we cannot read (names the line)
    └── KernelError               a command or netlink call failed (exit 1)

Every error carries the text a user sees: it names the problem and, where one exists, the fix.
Library code raises; only ``proxyctl.cli`` prints and exits.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located as precisely as we can."""

    message: str
    source: str = ""  # file name, "-" for stdin, "" when not from a file
    document: int | None = None  # index of the YAML document in the file (0-based)
    obj: str = ""  # e.g. "Service ns1/svc1"
    field: str = ""  # e.g. "spec.ports[0].port"

    def __str__(self) -> str:
        where = []
        if self.source:
            where.append(self.source if self.document is None else f"{self.source}[doc {self.document}]")
        if self.obj:
            where.append(self.obj)
        if self.field:
            where.append(self.field)
        prefix = ": ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ProxyctlError(Exception):
    """Base of everything proxyctl reports; ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str, problems: tuple[Problem, ...] | list[Problem] = ()):
        super().__init__(message)
        self.problems = tuple(problems)

    def lines(self) -> list[str]:
        """One line per problem, or the message alone."""
        if self.problems:
            return [str(p) for p in self.problems]
        return [str(self)]


class InputError(ProxyctlError):
    pass


class ConfigError(InputError):
    pass


class ManifestError(InputError):
    pass


class NodeFactsError(InputError):
    pass


class RulesParseError(InputError):
    """Text that is not valid iptables-save/-restore input; ``line`` is 1-based."""

    def __init__(self, message: str, *, source: str = "", line: int = 0, text: str = ""):
        loc = f"{source or '<rules>'}:{line}" if line else (source or "<rules>")
        super().__init__(f"{loc}: {message}" + (f"\n    {text}" if text else ""))
        self.source = source
        self.line = line
        self.text = text


class KernelError(ProxyctlError):
    """A kernel-facing command failed; carries argv, namespace and stderr."""

    exit_code = 1

    def __init__(self, message: str, *, argv: tuple[str, ...] = (), netns: str | None = None,
                 returncode: int | None = None, stderr: str = ""):
        super().__init__(message)
        self.argv = argv
        self.netns = netns
        self.returncode = returncode
        self.stderr = stderr
