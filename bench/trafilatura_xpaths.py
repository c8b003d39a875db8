"""trafilatura with its costliest XPath expressions evaluated in Python: same output, and what it saves.

The `extract` stage's sandbox replaces trafilatura's boilerplate and main-content expressions with Python
equivalents (`corpusmill.filters.trafilatura_xpaths`). This checks and measures that on real pages, all the
WCXB dev pages and the multilingual pages by default:

- selection: every replaced expression and its equivalent on every page's raw, cleaned and tag-converted tree
  (the trees they meet during extraction), counting any page where the two select different elements or the
  same ones in another order;
- extraction: `trafilatura.extract` on every page with the stock expressions and with the equivalents, for the
  stage's default switches, datatrove's (`favor_precision`, `deduplicate`, each pass with its own cache),
  and recall with comments; pages whose text differs are counted, and the CPU seconds of each variant's calls
  (one process, pages decoded before the clock starts, the two variants taking turns page by page so that
  the machine's drifting speed weighs on both alike).

The exit status is 1 when anything differs.

    python -m bench.trafilatura_xpaths [--pages N] [--data DIR] [--json PATH]
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.extractors import spread

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Option sets of `trafilatura.extract`, by name: the stage's defaults, datatrove's `Trafilatura` step's, recall.
OPTION_SETS: dict[str, dict[str, Any]] = {
    "stage defaults": {"include_tables": True, "include_comments": False},
    "datatrove's": {"favor_precision": True, "include_comments": False, "deduplicate": True},
    "recall, comments": {"favor_recall": True, "include_comments": True},
}


def load(data: Path, pages: int | None) -> list[str]:
    """The pages' HTML as text (decoded before any clock starts), WCXB's then the multilingual set's."""
    paths = sorted((data / "wcxb-dev" / "html").glob("*.html.gz")) + sorted(
        (data / "multilingual" / "html").glob("*.html.gz")
    )
    if not paths:
        raise SystemExit(f"no pages under {data}")
    return [gzip.decompress(path.read_bytes()).decode("utf-8", "replace") for path in spread(paths, pages)]


def selection_differences(htmls: Sequence[str]) -> tuple[int, int]:
    """Trees checked, and (tree, expression) pairs where an equivalent selects other elements than its XPath."""
    from trafilatura.htmlprocessing import convert_tags, tree_cleaning
    from trafilatura.settings import Extractor
    from trafilatura.utils import load_html

    from corpusmill.filters import trafilatura_xpaths

    trafilatura_xpaths.uninstall()
    trafilatura_xpaths.install()
    pairs = [(equivalent.original, equivalent) for equivalent in trafilatura_xpaths.installed()]
    options = Extractor(output_format="txt")
    trees = differences = 0
    for html in htmls:
        raw = load_html(html)
        if raw is None:
            continue
        cleaned = tree_cleaning(copy.copy(raw), options)
        for tree in (raw, cleaned, convert_tags(copy.copy(cleaned), options)):
            trees += 1
            differences += sum(1 for xpath, equivalent in pairs if list(xpath(tree)) != equivalent(tree))
    return trees, differences


def extraction_passes(htmls: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
    """Every page extracted with the stock expressions and with the equivalents, page by page in alternating
    order (so that the machine's speed drifting during the passes weighs on both alike): each variant's texts
    and the CPU seconds of its calls. Each variant keeps its own equivalents' memos and, when deduplicating,
    its own cache, as one extraction process would."""
    import trafilatura
    from trafilatura.deduplication import LRUCache
    from trafilatura.settings import LRU_SIZE

    from corpusmill.filters import trafilatura_xpaths

    trafilatura_xpaths.uninstall()
    trafilatura_xpaths.install()
    equivalents = trafilatura_xpaths.installed()

    def use(variant: str) -> None:
        for equivalent in equivalents:
            trafilatura_xpaths.put(equivalent, variant == "equivalents")

    variants = ("stock", "equivalents")
    calls = {
        variant: {**options, "deduplicate": LRUCache(maxsize=LRU_SIZE)}
        if options.get("deduplicate")
        else options
        for variant in variants
    }
    texts: dict[str, list[str | None]] = {variant: [] for variant in variants}
    cpu = dict.fromkeys(variants, 0.0)
    for number, html in enumerate(htmls):
        for variant in variants if number % 2 else reversed(variants):
            use(variant)
            start = time.process_time()
            texts[variant].append(trafilatura.extract(html, output_format="txt", **calls[variant]))
            cpu[variant] += time.process_time() - start
    use("equivalents")
    return {"texts": texts, "cpu": cpu}


def measure(data: Path, pages: int | None = None) -> dict[str, Any]:
    """Selection and extraction checks, and the CPU of each option set with and without the equivalents."""
    from corpusmill.filters.sandbox import trafilatura_text

    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    trafilatura_text.prepare()  # the sandbox child's adjustments (parser, element lookup, equivalents)
    htmls = load(data, pages)
    trees, selection = selection_differences(htmls)
    rows = []
    for name, options in OPTION_SETS.items():
        result = extraction_passes(htmls, options)
        stock, fast = result["texts"]["stock"], result["texts"]["equivalents"]
        stock_cpu, fast_cpu = result["cpu"]["stock"], result["cpu"]["equivalents"]
        rows.append(
            {
                "options": name,
                "pages": len(htmls),
                "with_text": sum(1 for text in fast if text),
                "differing": sum(1 for a, b in zip(stock, fast, strict=True) if a != b),
                "stock_cpu_seconds": stock_cpu,
                "equivalents_cpu_seconds": fast_cpu,
                "saved": 1 - fast_cpu / stock_cpu,
            }
        )
    return {"pages": len(htmls), "trees": trees, "selection_differences": selection, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    """The rows as a Markdown table (what bench/README.md shows)."""
    lines = [
        "| options | pages | with text | texts differing | CPU s stock | CPU s equivalents | saved |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['options']} | {row['pages']} | {row['with_text']} | {row['differing']} "
            f"| {row['stock_cpu_seconds']:.1f} | {row['equivalents_cpu_seconds']:.1f} | {row['saved']:.0%} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.trafilatura_xpaths", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--pages", type=int, default=None, help="pages to use, spread (default: all)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if args.pages is not None and args.pages < 1:
        parser.error("--pages must be at least 1")
    result = measure(args.data, args.pages)
    print(
        f"{result['pages']} pages, {result['trees']} trees: "
        f"{result['selection_differences']} selections differ from trafilatura's XPath"
    )
    print(format_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    differs = result["selection_differences"] or any(row["differing"] for row in result["rows"])
    return 1 if differs else 0


if __name__ == "__main__":
    sys.exit(main())
