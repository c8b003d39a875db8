"""Warnings a part task logs in an engine's worker, carried back with the part's result for the driver to log.

A run's own local Ray instance has no log monitor (`ray_local`), so nothing copies worker output to the
driver's terminal. What a user needs from there are the warnings stages log (an extraction child that timed
out and was restarted, a rule that failed on a document): the worker collects the records of level WARNING and
above while it runs a part, the result carries them (as plain tuples, so results stay JSON-able), and the
driver logs each under its original logger's name, so the user's logging settings apply as they would in one
process. A part that logs a great many keeps the first `MAX_RECORDS` and says how many it left out; all of
them are still in the worker's own log file.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

# The field of a part's result that carries its warnings; the engine removes it before the runner sees it.
WORKER_LOGS = "worker_logs"
MAX_RECORDS = 100


class _Collector(logging.Handler):
    """Keeps (logger name, level, message) of each record, the traceback of an exception appended."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[tuple[str, int, str]] = []
        self.left_out = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) >= MAX_RECORDS:
            self.left_out += 1
            return
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{logging.Formatter().formatException(record.exc_info)}"
        self.records.append((record.name, record.levelno, message))


@contextlib.contextmanager
def collected(enabled: bool) -> Iterator[_Collector | None]:
    """Collect the warnings logged in this process during the block (none when not `enabled`)."""
    if not enabled:
        yield None
        return
    collector = _Collector()
    root = logging.getLogger()
    root.addHandler(collector)
    try:
        yield collector
    finally:
        root.removeHandler(collector)


def attach(collector: _Collector | None) -> dict[str, Any]:
    """The result field holding what `collector` kept (nothing when it kept nothing)."""
    if collector is None or not (collector.records or collector.left_out):
        return {}
    return {WORKER_LOGS: {"pid": os.getpid(), "records": collector.records, "left_out": collector.left_out}}


def emit(result: dict[str, Any]) -> dict[str, Any]:
    """Log a result's worker warnings here, under their loggers' names; the result without them."""
    logs = result.pop(WORKER_LOGS, None)
    if not logs:
        return result
    pid = logs["pid"]
    for name, level, message in logs["records"]:
        logging.getLogger(name).log(level, "[worker pid %s] %s", pid, message)
    if logs["left_out"]:
        logger = logging.getLogger(__name__)
        logger.warning(
            "[worker pid %s] %d more warnings in this part are in the worker's log file",
            pid,
            logs["left_out"],
        )
    return result
