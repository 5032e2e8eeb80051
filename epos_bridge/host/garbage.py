"""The cyclic garbage collector, tuned for a process that serves.

An answer is built from many short-lived objects (a page of 100 whole orders is some 50,000
models, dicts and lists) that reference counting frees at once; but the collector counts their
allocation and, at Python's default of one young collection per 700, ran dozens of collections
per page and now and then a full one that walks every object the process holds: on the
1,000,000-order venue that was most of the p99 (docs/performance.md). So, once started:

* everything alive after start-up (modules, pydantic's validators, the bridge's parts) is moved
  out of the collector's sight (``gc.freeze``): it lives as long as the process anyway;
* a young collection runs once per :data:`YOUNG_THRESHOLD` allocations; the older generations
  keep Python's ratios. Real cycles (tracebacks, futures) are still collected, a little later.

The tray app's GUI-thread collector (ui/garbage.py) reads these thresholds when it starts.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000


def tune_for_serving() -> tuple[int, int, int]:
    """Freeze what start-up left and raise the young threshold; returns the old thresholds."""
    before: tuple[int, int, int] = gc.get_threshold()
    gc.freeze()  # no collection first: it would cost start-up time to free a few objects
    young, middle, old = before
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
    return before


def untune(before: tuple[int, int, int]) -> None:
    """Undo :func:`tune_for_serving` (for a benchmark or test that tuned its own process)."""
    gc.set_threshold(*before)
    gc.unfreeze()
