"""The sync schedule, stepped with a fake clock: v1.36's runner semantics."""

from __future__ import annotations

from proxyctl.daemon.runner import Schedule, SyncRunner


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(min_sync=1.0, sync_period=30.0, fail_times=0, canary=True):
    clock = Clock()
    calls: list[tuple[float, bool]] = []
    state = {"fail": fail_times, "canary": canary}

    def sync(full: bool) -> bool:
        calls.append((clock.now, full))
        clock.now += 0.2  # a sync takes time; the next one waits from its end
        if state["fail"]:
            state["fail"] -= 1
            return False
        return True

    r = SyncRunner(sync, lambda: state["canary"], Schedule(min_sync, sync_period), clock=clock)
    return r, clock, calls, state


def test_first_sync_is_full_then_changes_are_partial_and_spaced_from_the_end():
    r, clock, calls, _ = make()
    assert r.step() == "sync-full"
    r.request()
    assert r.step() == "wait"  # 0 s after the end < minSyncPeriod
    clock.now += 0.5
    assert r.step() == "wait"
    clock.now += 0.5
    assert r.step() == "sync-partial"
    assert [c[1] for c in calls] == [True, False]
    assert calls[1][0] - (calls[0][0] + 0.2) >= 1.0


def test_a_burst_of_changes_is_one_sync():
    r, clock, calls, _ = make()
    r.step()
    for _ in range(50):
        r.request()
    clock.now += 1.0
    assert r.step() == "sync-partial"
    assert r.step() == "wait"
    assert len(calls) == 2


def test_failure_retries_after_sync_period_with_a_full_sync():
    r, clock, calls, _ = make(fail_times=1)
    assert r.step() == "sync-full-failed"
    clock.now += 1.0
    assert r.step() == "wait"  # no retry before syncPeriod...
    clock.now += 28.9
    assert r.step() == "wait"
    clock.now += 0.2
    assert r.step() == "sync-full"  # ...then a full one
    assert [c[1] for c in calls] == [True, True]


def test_a_change_after_a_failure_retries_at_once_and_fully():
    r, clock, calls, _ = make(fail_times=1)
    r.step()
    clock.now += 2.0
    r.request()
    assert r.step() == "sync-full"


def test_canary_is_checked_every_sync_period_and_a_missing_one_forces_full():
    r, clock, calls, state = make()
    r.step()
    clock.now += 29.9
    assert r.step() == "wait"
    clock.now += 0.5
    assert r.step() == "canary"
    state["canary"] = False
    clock.now += 30.0
    assert r.step() == "canary-gone"
    assert r.step() == "sync-full"


def test_hourly_full_sync_without_changes():
    r, clock, calls, _ = make()
    r.step()
    for _ in range(200):  # an hour of canary checks
        clock.now += 30.0
        r.step()
        if len(calls) > 1:
            break
    assert calls[-1][1] is True and 3600 <= calls[-1][0] - calls[0][0] < 3700


def test_forced_full_sync_on_topology_change():
    r, clock, calls, _ = make()
    r.step()
    r.force_full()
    clock.now += 1.0
    assert r.step() == "sync-full"
