"""Fixtures for tests that use a real kernel, confined to network namespaces they create.

Ground rule: nothing here changes the namespace the tests run in. Every namespace is created
under a unique name carrying ``NETNS_PREFIX`` (``pxctl-test-<label>-<random>``) and removed at
teardown even when the test fails; interfaces live inside those namespaces and die with them.

Fixtures:
    netns          one fresh namespace (its name)
    netns_factory  ``make(label="ns") -> name``: as many as a test needs, all removed afterwards
    netns_exec     ``run(name, *argv) -> stdout``: a command inside a namespace (ip netns exec)

Tests here need root; without it they fail (they never skip themselves into green): CI runs them as root.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator

import pytest
from pyroute2 import netns as pyroute2_netns

NETNS_PREFIX = "pxctl-test-"


def unique_netns_name(label: str = "ns") -> str:
    label = re.sub(r"[^a-z0-9-]+", "-", label.lower()).strip("-")[:20] or "ns"
    return f"{NETNS_PREFIX}{label}-{secrets.token_hex(4)}"


class NetnsRegistry:
    """The namespaces one test created; ``cleanup`` removes them all and reports what it could not."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self, label: str = "ns") -> str:
        name = unique_netns_name(label)
        self.names.append(name)  # registered first: a half-made namespace is still removed
        pyroute2_netns.create(name)
        return name

    def cleanup(self) -> None:
        failures = []
        for name in reversed(self.names):
            try:
                pyroute2_netns.remove(name)
            except FileNotFoundError:
                pass
            except OSError as e:
                failures.append(f"{name}: {e}")
            if name in pyroute2_netns.listnetns():
                failures.append(f"{name}: still listed after removal")
        self.names.clear()
        if failures:
            raise RuntimeError("could not remove test namespaces: " + "; ".join(failures))


@pytest.fixture(autouse=True)
def _requires_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("network namespace tests need root: run the suite with sudo (scripts/test.sh)", pytrace=False)


@pytest.fixture
def netns_factory() -> Iterator[Callable[..., str]]:
    registry = NetnsRegistry()
    try:
        yield registry.create
    finally:
        registry.cleanup()


@pytest.fixture
def netns(netns_factory: Callable[..., str]) -> str:
    return netns_factory("ns")


def _run_in_netns(name: str, *argv: str, timeout: float = 30.0) -> str:
    if not name.startswith(NETNS_PREFIX):
        raise ValueError(f"refusing to run in {name!r}: not a test namespace")
    done = subprocess.run(("ip", "netns", "exec", name, *argv), capture_output=True, text=True,
                          timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} in {name} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


@pytest.fixture
def netns_exec() -> Callable[..., str]:
    return _run_in_netns
