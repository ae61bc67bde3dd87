"""Pausing Python's cyclic garbage collector while hundreds of thousands of small objects are built.

Rules, options and endpoints are tuples without reference cycles; the collector would still walk
the growing heap again and again while a 10k-service ruleset is built or parsed, which made those
steps superlinear (10x the services took 20x the time). Reference counting frees everything as
usual; the collector runs again when the block ends, with what the block built in its oldest
generation (a full collection reaches it later, as for any long-lived data).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def bulk_allocation() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # Hand what the block built to the oldest generation at once (freeze and unfreeze only
            # splice lists). Enabling the collector with a young generation of a million objects
            # would make its next allocation walk them all, ~10% of a 10k-service diff.
            gc.freeze()
            gc.unfreeze()
            gc.enable()
