"""The `extract` stage's extractors side by side on WCXB dev pages: word F1 against ground truth, and CPU cost.

So that a recipe's `extractor` can be chosen with numbers: for each extractor this prints the pages scored, the
mean word-level precision, recall and F1 against WCXB's human-marked main text (`bench.quality`'s scoring, the
same as `python -m bench`'s extraction row), pages per core-second and the pages that gave no text.

Each extractor is the very function the stage's sandbox runs (`trafilatura_text` with the stage's default
switches, `resiliparse_text` with the stage's resiliparse settings), called here in one process with the
same options, so the figures hold the extractor and nothing of the sandbox's pipe. The CPU time counted is
that of the extraction calls alone: the pages are decompressed and decoded before, the texts normalised and
scored after, and each extractor's one-time set-up (imports, trafilatura's parser adjustments) is done before
its clock starts. resiliparse on the whole page (`main_content` off) is the floor: every visible word, what
main-content extraction has to improve on.

    python -m bench.extractors [--pages N] [--repeats R] [--data DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.corpus import load_pages
from bench.quality import extraction_quality
from corpusmill.filters.extract import RESILIPARSE_OPTIONS, ExtractParams
from corpusmill.filters.sandbox import ExtractFn, resiliparse_text

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wcxb-dev"


@dataclass(frozen=True)
class Extractor:
    """One row of the table: a name, the sandbox function and the options the stage would give it."""

    name: str
    fn: ExtractFn
    options: dict[str, Any]


def extractors() -> list[Extractor]:
    """The stage's two extractors with its settings (read from the stage, so they cannot drift), and the floor."""
    rows = []
    for name in ("trafilatura", "resiliparse"):
        fn, options = ExtractParams(extractor=name).extraction()
        rows.append(Extractor(name, fn, options))
    rows.append(
        Extractor("resiliparse, whole page", resiliparse_text, {**RESILIPARSE_OPTIONS, "main_content": False})
    )
    return rows


def spread(items: Sequence[Any], count: int | None) -> list[Any]:
    """`count` items spread evenly over the sequence (all of them when None or too many), so every page type
    of the id-ordered set is represented in a small sample."""
    if count is None or count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def run_extractor(extractor: Extractor, htmls: Sequence[str]) -> tuple[list[str | None], float, int]:
    """Extract every page: the texts (NFC, stripped, None when empty or failed), CPU seconds, failures.

    Only the calls are timed. A call that raises (trafilatura's `Truncated` for a page nested deeper than its
    parser follows, or any error) yields no text, as the stage drops it.
    """
    prepare = getattr(extractor.fn, "prepare", None)
    if callable(prepare):
        prepare()
    raw: list[str | None] = []
    failures = 0
    cpu = 0.0
    for html in htmls:
        start = time.process_time()
        try:
            value = extractor.fn(html, extractor.options)
        except Exception:
            value = None
            failures += 1
        cpu += time.process_time() - start
        raw.append(value)
    texts = [unicodedata.normalize("NFC", v).strip() or None if v else None for v in raw]
    return texts, cpu, failures


def measure(data_dir: Path, pages: int | None = None, repeats: int = 1) -> dict[str, Any]:
    """Scores and cost of every extractor on the WCXB pages with ground truth (`pages` of them, spread)."""
    chosen = spread(load_pages(data_dir), pages)
    htmls = [page.html(data_dir) for page in chosen]
    truths = {page.page_id: page.ground_truth for page in chosen}
    logging.getLogger("trafilatura").setLevel(logging.ERROR)  # per-page warnings, as in the sandbox's child
    rows = []
    for extractor in extractors():
        texts, cpu, failures = run_extractor(extractor, htmls)
        for _ in range(repeats - 1):  # other load only ever adds CPU time: the least pass is the estimate
            cpu = min(cpu, run_extractor(extractor, htmls)[1])
        quality = extraction_quality(
            {page.page_id: text for page, text in zip(chosen, texts, strict=True)}, truths
        )
        rows.append(
            {
                "extractor": extractor.name,
                "options": dict(extractor.options),
                "pages": quality["pages"],
                "precision": quality["precision"],
                "recall": quality["recall"],
                "f1": quality["f1"],
                "cpu_seconds": cpu,
                "pages_per_core_second": len(htmls) / cpu if cpu > 0 else None,
                "no_text": quality["no_text"],
                "failures": failures,
            }
        )
    return {
        "data": str(data_dir),
        "pages": len(chosen),
        "html_megabytes": sum(len(h.encode("utf-8")) for h in htmls) / 1e6,
        "repeats": repeats,
        "extractors": rows,
    }


def format_table(result: dict[str, Any]) -> str:
    """The measured rows as a Markdown table (what bench/README.md shows)."""
    lines = [
        "| extractor | pages | precision | recall | F1 | pages per core-second | no text |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["extractors"]:
        rate = row["pages_per_core_second"]
        lines.append(
            f"| {row['extractor']} | {row['pages']} | {row['precision']:.3f} | {row['recall']:.3f} "
            f"| {row['f1']:.3f} | {rate:,.0f} | {row['no_text']} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.extractors", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the wcxb-dev folder")
    parser.add_argument(
        "--pages", type=int, default=None, help="pages to use, spread over the set (default: all)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="timed passes per extractor; the least is kept"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if (args.pages is not None and args.pages < 1) or args.repeats < 1:
        parser.error("--pages and --repeats must be at least 1")
    result = measure(args.data, args.pages, args.repeats)
    print(
        f"{result['pages']} WCXB dev pages with ground truth ({result['html_megabytes']:.0f} MB of HTML), "
        "CPU time of the extraction calls in one process"
    )
    print(format_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
