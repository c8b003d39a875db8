"""Worker preparation: a process loads what part tasks need once, at start, not inside its first part."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE = Path(__file__).parent


def _in_fresh_interpreter(code: str, probe: str = "arrow_loads") -> Any:
    """Run `code` in a new interpreter, then report what `worker_probe`'s `probe` finds there."""
    program = f"{code}\nfrom worker_probe import {probe}\nimport json\nprint(json.dumps({probe}()))"
    path = os.pathsep.join([str(PROBE), *filter(None, [os.environ.get("PYTHONPATH")])])
    out = subprocess.run(
        [sys.executable, "-c", program],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_unprepared_process_loads_pandas_in_its_first_arrow_conversion() -> None:
    pytest.importorskip("pandas")
    assert "pandas" in _in_fresh_interpreter("import corpusmill.pipelines.group_tasks")


@pytest.mark.parametrize(
    "code",
    [
        "from corpusmill.pipelines.engine import prepare_worker_process; prepare_worker_process()",
        "from corpusmill.pipelines.engine import make_engine; make_engine('local')",
    ],
    ids=["prepared", "local engine"],
)
def test_a_prepared_process_loads_nothing_more(code: str) -> None:
    assert _in_fresh_interpreter(code) == []


def test_only_a_dedicated_worker_process_freezes_what_it_holds() -> None:
    prepare = "from corpusmill.pipelines.engine import prepare_worker_process; prepare_worker_process"
    assert _in_fresh_interpreter(f"{prepare}(dedicated=True)", "frozen_objects") > 10_000
    assert _in_fresh_interpreter(f"{prepare}()", "frozen_objects") == 0
    local = "from corpusmill.pipelines.engine import make_engine; make_engine('local')"
    assert _in_fresh_interpreter(local, "frozen_objects") == 0
