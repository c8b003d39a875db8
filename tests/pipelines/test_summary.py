"""The printed summary: reading first, its skips by reason (never drops), then each stage's drops."""

from __future__ import annotations

from typing import Any

from corpusmill.pipelines.summary import READ, STAGES, SummaryLine, summarize


def warc_stats() -> dict[str, Any]:
    """A WARC crawl of 1,500 records: 480 HTML pages, request and metadata records, one damaged file."""
    return {
        "documents_out": 470,
        "tokens_written": 0,
        "stages": [
            {
                "label": "00-read",
                "counters": {
                    "docs_out": 480,
                    "reader.records": 1500,
                    "reader.documents": 480,
                    "reader.documents_with_replacements": 2,
                    "reader.invalid_utf8": 3,
                    "reader.skipped_record_type.request": 500,
                    "skipped.skipped_record_type.request": 500,
                    "reader.skipped_record_type.metadata": 500,
                    "skipped.skipped_record_type.metadata": 500,
                    "reader.skipped_non_html": 20,
                    "skipped.skipped_non_html": 20,
                    "reader.corrupt_file": 1,
                    "skipped.corrupt_file": 1,
                },
            },
            {
                "label": "01-heuristics_v1",
                "counters": {"docs_in": 480, "docs_out": 470, "dropped.c4:lorem_ipsum": 10},
            },
        ],
    }


def test_reading_skips_records_by_reason_and_drops_nothing() -> None:
    read = summarize(warc_stats()).read
    assert read is not None and read.label == "00-read"
    assert (read.docs_in, read.docs_out, read.dropped) == (1500, 480, {})
    assert read.skipped == {
        "skipped_record_type.request": 500,
        "skipped_record_type.metadata": 500,
        "skipped_non_html": 20,
        "corrupt_file": 1,
    }
    assert (read.skipped_records, read.failed_files) == (1020, 1)


def test_the_table_starts_with_the_read_group() -> None:
    assert summarize(warc_stats()).lines() == [
        SummaryLine(READ, "00-read", 1500, 480, "skipped 1,020 records, 1 file failed to read"),
        SummaryLine(READ, "  skipped: skipped_record_type.metadata", None, None, "500 records"),
        SummaryLine(READ, "  skipped: skipped_record_type.request", None, None, "500 records"),
        SummaryLine(READ, "  skipped: skipped_non_html", None, None, "20 records"),
        SummaryLine(READ, "  skipped: corrupt_file", None, None, "1 file"),
        SummaryLine(STAGES, "01-heuristics_v1", 480, 470, "c4:lorem_ipsum: 10"),
    ]


def test_a_clean_read_says_so() -> None:
    stats = {"stages": [{"label": "00-read", "counters": {"docs_out": 5, "reader.documents": 5}}]}
    assert summarize(stats).lines() == [SummaryLine(READ, "00-read", 5, 5, "nothing skipped")]
