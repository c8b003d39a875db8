"""How many annotation requests may be in flight: fixed, or found by doubling while the latency holds.

A server generates a few answers at once and queues the rest; a request waiting in that queue counts against
its timeout, and a client that gives up leaves the server generating for nobody. The HTTP backend therefore
asks this pacer before each request, and reports each answer's latency back.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading

logger = logging.getLogger(__name__)

# Adaptive concurrency: a level is kept while its median latency is within this factor of the latency of one
# request at a time (plus a little slack, so that millisecond timer noise on a fast server does not count).
LATENCY_TOLERANCE = 1.5
LATENCY_SLACK_S = 0.02
# Requests a round needs at least: three at level 1, so that a slow first request (the server's cold caches)
# or one unusually short document does not set the yardstick for every later level.
MIN_ROUND = 3


class AdaptiveConcurrency:
    """How many requests may be in flight: fixed, or found by doubling while the latency holds.

    A server that generates N answers at once answers N concurrent requests about as fast as one; beyond N
    the extra requests wait in its queue and every latency grows. So, starting at one request in flight, each
    level is tried for a round of level + 1 requests submitted at it (at least `MIN_ROUND`), of which the
    first half-level to answer are not counted, as they may have run before the new level's queue built up:
    a median latency within `tolerance` times the median at level 1 doubles the level (up to `maximum`), a
    longer one goes back to the last level that held and stays there.
    Requests in flight when the level changes are not counted for the new level. A request that met 429 or
    5xx on the way makes its round fail: the server said it was overloaded. The level is kept across calls,
    so a run finds it once.

    Thread-safe; `epoch` tags a request when it is submitted, `record` reports it back.
    """

    def __init__(self, fixed: int | None, maximum: int, tolerance: float = LATENCY_TOLERANCE) -> None:
        if fixed is not None and fixed < 1:
            raise ValueError(f"concurrency must be at least 1 (or None: adaptive), got {fixed}")
        if maximum < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {maximum}")
        self.adaptive = fixed is None
        self.maximum = maximum
        self.tolerance = tolerance
        self._level = fixed if fixed is not None else 1
        self._settled = not self.adaptive or maximum == 1
        self._epoch = 0
        self._latencies: list[float] = []
        self._reported = 0
        self._overloaded = False
        self._baseline: float | None = None
        self._last_good = 1
        self._lock = threading.Lock()

    @property
    def level(self) -> int:
        """Requests allowed in flight now."""
        return self._level

    @property
    def settled(self) -> bool:
        """Whether the level is final (fixed, at the maximum, or found)."""
        return self._settled

    @property
    def epoch(self) -> int:
        """The current level's tag: a request reports back with the tag it was submitted under."""
        return self._epoch

    def record(self, epoch: int, latency: float | None, overloaded: bool = False) -> None:
        """One request submitted under `epoch` came back after `latency` seconds (None: no usable timing)."""
        with self._lock:
            if self._settled or epoch != self._epoch:
                return
            self._reported += 1
            if latency is not None:
                self._latencies.append(latency)
            self._overloaded = self._overloaded or overloaded
            if self._overloaded or self._reported >= max(self._level + 1, MIN_ROUND):
                self._decide()

    def _next_round(self) -> None:
        self._latencies, self._reported, self._overloaded = [], 0, False
        self._epoch += 1

    def _decide(self) -> None:
        level, overloaded = self._level, self._overloaded
        if not self._latencies and not overloaded:  # nothing answered (errors only): this round tells nothing
            self._next_round()
            return
        # The first answers of a round may have been generated before the queue of the new level built up.
        settled_in = self._latencies[level // 2 :] or self._latencies
        median = statistics.median(settled_in) if settled_in else math.inf
        if level == 1 and not overloaded:
            self._baseline = median
        baseline = self._baseline if self._baseline is not None else 0.0
        good = not overloaded and median <= baseline * self.tolerance + LATENCY_SLACK_S
        self._next_round()
        if good and level < self.maximum:
            self._last_good = level
            self._level = min(self.maximum, level * 2)
            logger.info(
                "annotator concurrency %d -> %d (median latency %.2f s at %d; %.2f s one at a time)",
                level, self._level, median, level, baseline,
            )  # fmt: skip
            return
        self._settled = True
        if good:
            logger.info("annotator concurrency stays at %d, the maximum", level)
            return
        self._level = self._last_good
        why = (
            f"the server answered 429/5xx at {level}"
            if overloaded
            else f"the median latency at {level} was {median:.2f} s, over {self.tolerance:g}x the "
            f"{baseline:.2f} s of one request at a time"
        )
        logger.info("annotator concurrency settles at %d: %s", self._level, why)
