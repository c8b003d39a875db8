"""`Stage.setup` does its work once per worker and records what that work cost in the stage's stats."""

from __future__ import annotations

import time

from corpusmill.core.stage import SETUP_CPU_SECONDS, MapStage


class SlowToSetUp(MapStage):
    name = "slow_to_set_up_test"

    def __init__(self) -> None:
        super().__init__()
        self.setups = 0

    def _setup(self) -> None:
        self.setups += 1
        started = time.process_time()
        while time.process_time() - started < 0.2:  # a model loading, in CPU time
            pass

    def __call__(self, batch):  # type: ignore[no-untyped-def]
        return batch


def test_setup_is_measured_once_per_setup_and_handed_over_with_the_stats() -> None:
    # Measured from /proc in clock ticks (10 ms), so a 0.2 s set-up may read as a tick less.
    stage = SlowToSetUp()
    stage.setup()
    stage.setup()
    assert stage.setups == 1
    first = stage.take_stats().moments[SETUP_CPU_SECONDS]
    assert first.count == 1 and first.mean >= 0.15
    assert SETUP_CPU_SECONDS not in stage.take_stats().moments  # handed over once
    stage.close()
    stage.setup()  # a worker setting it up again (a new phase) is a second set-up
    again = stage.take_stats().moments[SETUP_CPU_SECONDS]
    assert stage.setups == 2 and again.count == 1 and again.mean >= 0.15
