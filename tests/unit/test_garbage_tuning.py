"""host/garbage.py: the collector tuned for serving, and put back as it was."""

from __future__ import annotations

import gc

from epos_bridge.host.garbage import YOUNG_THRESHOLD, tune_for_serving, untune


def test_serving_freezes_start_up_and_collects_the_young_less_often_and_it_can_be_undone() -> None:
    original = gc.get_threshold()
    before = tune_for_serving()
    try:
        assert before == original
        young, middle, old = gc.get_threshold()
        assert young >= YOUNG_THRESHOLD
        assert (middle, old) == original[1:]
        assert gc.get_freeze_count() > 0
    finally:
        untune(before)
    assert gc.get_threshold() == original
    assert gc.get_freeze_count() == 0
