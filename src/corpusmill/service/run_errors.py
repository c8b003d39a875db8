"""A failed job's log turned into its cause: one plain line first, the traceback kept apart.

Ray colours what it prints (`\\x1b[36mray::_run_part()\\x1b[39m`) and a task's exception reaches the driver
wrapped in a second traceback, so the line that says why (`FileNotFoundError: ...`) sits at the bottom of
a page of frames. People reading a run want that line first, without escape codes; the traceback stays
available beside it for whoever debugs.
"""

from __future__ import annotations

import re

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# An exception line as Python prints it at the end of a traceback, unindented: `FileNotFoundError: ...`,
# `ray.exceptions.RayTaskError(ValueError): ...`, `KeyboardInterrupt`.
EXCEPTION_LINE = re.compile(
    r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure)(?:\([\w.]*\))?(?::\s.*)?$"
)
TRACEBACK = "Traceback (most recent call last):"
CLI_PREFIXES = ("error:", "problem:")  # how `corpusmill` ends on an expected error (cli_errors.py)


def strip_ansi(text: str) -> str:
    """`text` without terminal colour and cursor codes."""
    return ANSI.sub("", text)


def error_cause(text: str) -> str | None:
    """The one line that says why a job failed: whichever comes last of the last exception line and the CLI's
    last `error:` line (the CLI prints a task's error as `error: ray::...` followed by the task's traceback,
    whose last line is the cause); None when the text has neither."""
    lines = [line.rstrip() for line in strip_ansi(text).splitlines()]
    candidates = [
        (index, line.strip())
        for index, line in enumerate(lines)
        if EXCEPTION_LINE.match(line) or line.lstrip().lower().startswith(CLI_PREFIXES)
    ]
    return candidates[-1][1] if candidates else None


def traceback_text(text: str, max_chars: int, tail_lines: int = 20) -> str | None:
    """What to keep beside the cause: the log from its first traceback on (its end, when longer than
    `max_chars`), or the last `tail_lines` lines when there is no traceback; None for an empty log."""
    lines = [line.rstrip() for line in strip_ansi(text).splitlines() if line.strip()]
    if not lines:
        return None
    start = next((i for i, line in enumerate(lines) if line.strip() == TRACEBACK), None)
    kept = "\n".join(lines[start:] if start is not None else lines[-tail_lines:])
    return kept if len(kept) <= max_chars else "…" + kept[-(max_chars - 1) :]
