"""Warnings logged while a part runs in a worker reach the driver's logging, bounded, with tracebacks."""

from __future__ import annotations

import json
import logging

import pytest

from corpusmill.pipelines import part_logs


def test_warnings_travel_with_the_result_and_are_logged_under_their_loggers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stage_logger = logging.getLogger("corpusmill.filters.heuristics")
    with part_logs.collected(True) as collector:
        stage_logger.info("not a warning")
        stage_logger.warning("rule %s failed", "gopher")
        try:
            raise ValueError("bad document")
        except ValueError:
            stage_logger.exception("rule crashed")
    result = json.loads(json.dumps({"docs": 3, **part_logs.attach(collector)}))  # results are JSON-able
    assert part_logs.WORKER_LOGS in result
    caplog.clear()  # what the worker side logged itself
    with caplog.at_level("WARNING"):
        assert part_logs.emit(result) == {"docs": 3}
    messages = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    assert [m[:2] for m in messages] == [
        ("corpusmill.filters.heuristics", "WARNING"),
        ("corpusmill.filters.heuristics", "ERROR"),
    ]
    assert messages[0][2].endswith("rule gopher failed") and messages[0][2].startswith("[worker pid ")
    assert "ValueError: bad document" in messages[1][2]


def test_a_part_with_many_warnings_keeps_the_first_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with part_logs.collected(True) as collector:
        for i in range(part_logs.MAX_RECORDS + 7):
            logging.getLogger("corpusmill.test").warning("warning %d", i)
    caplog.clear()
    with caplog.at_level("WARNING"):
        part_logs.emit(part_logs.attach(collector))
    assert len(caplog.records) == part_logs.MAX_RECORDS + 1
    assert (
        caplog.records[-1].getMessage().endswith("7 more warnings in this part are in the worker's log file")
    )


def test_nothing_is_collected_or_attached_when_not_asked() -> None:
    root_handlers = list(logging.getLogger().handlers)
    with part_logs.collected(False) as collector:
        logging.getLogger("corpusmill.test").warning("stays where the worker logs it")
    assert collector is None and part_logs.attach(collector) == {}
    assert logging.getLogger().handlers == root_handlers
    assert part_logs.emit({"docs": 1}) == {"docs": 1}
