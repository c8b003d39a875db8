"""The short account of a run that `corpusmill run` prints: documents in and out per stage, drops, tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StageSummary:
    """One line of the summary table."""

    label: str
    docs_in: int
    docs_out: int
    dropped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunSummary:
    """Everything the CLI prints after a run."""

    stages: list[StageSummary]
    documents_out: int
    tokens_written: int


# Reader counters that describe documents rather than skip them.
_READER_INFO = {
    "documents",
    "records",
    "invalid_utf8",
    "invalid_charset_bytes",
    "resynced",
    "payload_truncated_by_crawler",
}


def summarize(stats: dict[str, Any]) -> RunSummary:
    """Build the summary from a run's `stats.json` content."""
    rows = []
    for stage in stats["stages"]:
        counters: dict[str, int] = stage.get("counters", {})
        docs_out = counters.get("docs_out", 0)
        if "docs_in" in counters:
            dropped = {k.removeprefix("dropped."): v for k, v in counters.items() if k.startswith("dropped.")}
            docs_in = counters["docs_in"]
        else:  # the reader: documents out, every other record skipped for a counted reason
            reader = {k.removeprefix("reader."): v for k, v in counters.items() if k.startswith("reader.")}
            dropped = {k: v for k, v in reader.items() if k not in _READER_INFO}
            docs_in = docs_out + sum(dropped.values())
        rows.append(StageSummary(stage["label"], docs_in, docs_out, dropped))
    return RunSummary(rows, int(stats.get("documents_out", 0)), int(stats.get("tokens_written", 0)))
