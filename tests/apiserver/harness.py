"""A test API server, an official client pointed at it, and ClusterWatches recording what they report."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from proxyctl.cluster.changes import ChangeEvent
from proxyctl.cluster.informer import WatchSettings
from proxyctl.cluster.kubeconfig import load_api_client
from proxyctl.cluster.objects import ClusterState
from proxyctl.cluster.watch import ClusterWatch
from tests.apiserver.server import ApiServer

NODE = "node-a"

# Timeouts and backoff short enough that every fault heals within a second.
FAST = WatchSettings(connect_timeout=1.0, list_timeout=2.0, watch_timeout=30.0, watch_read_timeout=1.0,
                     min_watch_duration=0.2, backoff_initial=0.02, backoff_max=0.2, page_size=500)


class Recorder:
    """on_change and on_invalid, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[ChangeEvent] = []
        self.invalid: list[tuple[str, str, str]] = []

    def on_change(self, event: ChangeEvent) -> None:
        with self.lock:
            self.events.append(event)

    def on_invalid(self, kind: str, key: str, error) -> None:
        with self.lock:
            self.invalid.append((kind, key, str(error)))

    def changes(self, *, relist: bool | None = None) -> list[tuple[str, str, str]]:
        with self.lock:
            return [(e.action, e.kind, e.key) for e in self.events if relist is None or e.relist == relist]


class Harness:
    def __init__(self, tmp_path: Path, **server_options):
        self.server = ApiServer(bookmark_interval=0.2, **server_options).start()
        self.kubeconfig = self.server.write_kubeconfig(str(tmp_path / "kubeconfig"))
        self.client = load_api_client(self.kubeconfig, qps=0, burst=0)
        self.watches: list[ClusterWatch] = []

    def watch(self, *, start: bool = True, settings: WatchSettings = FAST, recorder: Recorder | None = None,
              **options) -> tuple[ClusterWatch, Recorder]:
        recorder = recorder or Recorder()
        options.setdefault("node_name", NODE)
        watch = ClusterWatch(self.client, on_change=recorder.on_change, on_invalid=recorder.on_invalid,
                             settings=settings, **options)
        self.watches.append(watch)
        if start:
            watch.start()
        return watch, recorder

    def close(self) -> None:
        for watch in self.watches:
            watch.stop()
        self.server.stop()
        self.client.close()


def keys(state: ClusterState) -> tuple[list[str], list[str], list[str]]:
    """Service keys, EndpointSlice keys, node names."""
    return ([s.key for s in state.services], [f"{s.namespace}/{s.name}" for s in state.endpoint_slices],
            [n.name for n in state.nodes])


def eventually(predicate: Callable[[], object], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    assert predicate(), f"not within {timeout}s: {what or predicate}"
