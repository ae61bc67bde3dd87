"""pytest plugin of the lab tests (loaded with ``pytest_plugins`` by each test_lab_* module).

Brings the lab fixtures in and, at the end of the run, reports which case ran on which iptables
backend and with what result, how long the lab tests took, and what this kernel cannot run.
A case is a test's docstring's first line; the backend is its ``lab`` fixture's parameter (or
its ``backend`` parameter).
"""

from __future__ import annotations

import pytest

from netns_tests.lab_fixtures import BACKENDS, lab  # noqa: F401  (a fixture, offered to the test modules)

_CASES: dict[str, dict[str, str]] = {}
_DURATION = [0.0]


def _case(item) -> str:
    doc = (item.obj.__doc__ or "").strip().splitlines()
    return doc[0].rstrip(".") if doc else item.originalname


def _backend(item) -> str:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return str(params.get("lab") or params.get("backend") or "-")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if not item.module.__name__.rpartition(".")[2].startswith("test_lab_"):
        return
    _DURATION[0] += rep.duration
    results = _CASES.setdefault(_case(item), {})
    backend = _backend(item)
    if rep.when == "call" or rep.outcome != "passed":
        previous = results.get(backend)
        if previous in (None, "passed") or rep.outcome != "passed":
            results[backend] = "error" if rep.when != "call" and rep.failed else rep.outcome


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _CASES:
        return
    tr = terminalreporter
    tr.section("proxyctl lab: kube-proxy iptables mode on a real kernel")
    columns = [*BACKENDS, "-"]
    used = [c for c in columns if any(c in r for r in _CASES.values())]
    width = max(len(c) for c in _CASES) + 2
    tr.write_line("case".ljust(width) + "".join(("(no lab)" if c == "-" else c).ljust(10) for c in used))
    for case, results in _CASES.items():
        tr.write_line(case.ljust(width) + "".join(results.get(c, "").ljust(10) for c in used))
    tr.write_line("")
    ran = [b for b in BACKENDS if any(r.get(b) == "passed" for r in _CASES.values())]
    if ran:
        tr.write_line(f"IPv4 and IPv6, TCP and UDP ran for real on the {' and '.join(ran)} iptables "
                      f"backend{'s' if len(ran) > 1 else ''}.")
    tr.write_line("SCTP and IPVS cannot run on this kernel (no SCTP, no IP_VS, no loadable modules): they are "
                  "covered by the static tracer only.")
    tr.write_line(f"lab tests took {_DURATION[0]:.1f} s (setup, calls and teardown).")
