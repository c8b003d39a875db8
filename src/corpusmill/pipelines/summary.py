"""The short account of a run that `corpusmill run` prints: what reading skipped, then each stage's drops.

Reading is told apart from the stages. A record the reader passed over (a line of invalid JSON, a WARC
request record, an unreadable file) never was a document, so it is *skipped*, by reason, and never counted
as a document *dropped*; the read row's "in" counts input records, its "out" the documents they became.
Everything here comes from a run's `stats.json`, so a finished run prints the same table again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corpusmill.core.skips import SKIPPED_COUNTER

READ = "read"
STAGES = "stages"

# Skip reasons that count whole input files (which failed to read), not records.
FILE_REASONS = frozenset({"corrupt_file"})
# Skip reasons of records that are not documents by design (a WARC request, metadata or warcinfo record):
# `skipped_record_type.<type>`. Nothing was lost in them, unlike a damaged record or a non-HTML response.
NOT_DOCUMENT_PREFIX = "skipped_record_type."


def not_documents(skipped: dict[str, int]) -> dict[str, int]:
    """The records among `skipped` that never were meant to be documents, by record type (`request`: 10)."""
    return {
        reason.removeprefix(NOT_DOCUMENT_PREFIX): n
        for reason, n in skipped.items()
        if reason.startswith(NOT_DOCUMENT_PREFIX)
    }


@dataclass(frozen=True)
class StageSummary:
    """One stage of the run: documents in and out and drops by reason; for reading, skips by reason instead."""

    label: str
    docs_in: int
    docs_out: int
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    reads_input: bool = False

    @property
    def failed_files(self) -> int:
        """Input files that could not be read to their end (or at all)."""
        return sum(n for reason, n in self.skipped.items() if reason in FILE_REASONS)

    @property
    def skipped_records(self) -> int:
        """Input records that did not become documents (files that failed are counted apart)."""
        return sum(n for reason, n in self.skipped.items() if reason not in FILE_REASONS)


@dataclass(frozen=True)
class SummaryLine:
    """One printed row: a stage, or below the read row one skip reason (with no in and out of its own)."""

    group: str
    label: str
    docs_in: int | None
    docs_out: int | None
    reasons: str


@dataclass(frozen=True)
class RunSummary:
    """Everything the CLI prints after a run."""

    stages: list[StageSummary]
    documents_out: int
    tokens_written: int

    @property
    def read(self) -> StageSummary | None:
        """The read row (the first step's reading of the input), if the run counted one."""
        return next((row for row in self.stages if row.reads_input), None)

    def lines(self) -> list[SummaryLine]:
        """The table's rows in two groups: reading (records in, documents out, skips by reason), then stages."""
        read = self.read
        lines = _read_lines(read) if read is not None else []
        for row in self.stages:
            if row is not read:
                lines.append(SummaryLine(STAGES, row.label, row.docs_in, row.docs_out, _reasons(row.dropped)))
        return lines


def _read_lines(read: StageSummary) -> list[SummaryLine]:
    parts = []
    if read.skipped_records:
        parts.append(f"skipped {_count(read.skipped_records, 'record')}")
    if read.failed_files:
        parts.append(f"{_count(read.failed_files, 'file')} failed to read")
    note = ", ".join(parts) or "nothing skipped"
    lines = [SummaryLine(READ, read.label, read.docs_in, read.docs_out, note)]
    for reason, n in _by_count(read.skipped):
        unit = "file" if reason in FILE_REASONS else "record"
        lines.append(SummaryLine(READ, f"  skipped: {reason}", None, None, _count(n, unit)))
    return lines


def _count(n: int, unit: str) -> str:
    return f"{n:,} {unit}" + ("" if n == 1 else "s")


def _by_count(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _reasons(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason}: {n:,}" for reason, n in _by_count(counts))


def reader_skips(counters: dict[str, int]) -> dict[str, int]:
    """Skipped input per reason: the `skipped.<reason>` counters, one per row of the `skipped/` table."""
    return {
        k.removeprefix(SKIPPED_COUNTER): int(v) for k, v in counters.items() if k.startswith(SKIPPED_COUNTER)
    }


def summarize(stats: dict[str, Any]) -> RunSummary:
    """Build the summary from a run's `stats.json` content."""
    rows = []
    for stage in stats["stages"]:
        counters: dict[str, int] = stage.get("counters", {})
        docs_out = counters.get("docs_out", 0)
        if "docs_in" in counters:
            dropped = {k.removeprefix("dropped."): v for k, v in counters.items() if k.startswith("dropped.")}
            rows.append(StageSummary(stage["label"], counters["docs_in"], docs_out, dropped))
            continue
        # The reader: documents out, every other record skipped for a counted reason.
        skipped = reader_skips(counters)
        records = docs_out + sum(n for reason, n in skipped.items() if reason not in FILE_REASONS)
        rows.append(StageSummary(stage["label"], records, docs_out, skipped=skipped, reads_input=True))
    return RunSummary(rows, int(stats.get("documents_out", 0)), int(stats.get("tokens_written", 0)))
