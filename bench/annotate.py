"""How the annotate client copes with a slow server that answers one request at a time: `python -m bench.annotate`.

`corpusmill annotate --endpoint` talks to whatever serves the model, often llama.cpp with a single slot: it
generates one answer at a time and queues the rest, and it keeps generating for a client that has given up.
A client that sends more requests than the server can generate within its timeout then loses twice: the
requests at the back of the queue time out, and the server spends its only slot on answers nobody reads
while the client's retries wait behind them.

This bench writes the demo sample crawl, takes `--docs` distinct documents from it (trafilatura's main text
of its pages, as `extract` writes it, cut as the annotation prompt cuts it) and, per setting, starts a fresh
stand-in annotator server (`corpusmill.demo.annotator_server`) with `--delay-s` seconds of generation per
answer and `--capacity` answers generated at once, then labels the documents through the real client path
(`make_backend(..., endpoint=URL)`, then its `annotate_stream` where it has one, else `annotate`). It prints
per setting: the documents answered and failed, the seconds and documents per second, the answers that failed
on a timeout, the generations the server wasted (its client had gone) and repeated (a document generated
again), the most it generated at once, and the concurrency the client settled on (`concurrency_now`, where
the client adapts).

Settings (`--concurrency`, comma-separated): `N` requests in flight at most, `auto` (`concurrency=None`: the
client finds its own), `N@T` with a timeout of T seconds for that row instead of `--timeout`, and `old`: the
client as it used to be set (8 in flight, with a timeout shorter than the queue it builds: `--old-timeout`,
by default 0.45 x 8 x delay / capacity, as 120 s was against eight 30-second generations of a long document).

The defaults (20 documents, 0.25 s per answer, one slot, every row) take under a minute; `--delay-s 1.0`
gives the same picture at four times the time, with the client's own overhead a smaller share.

    python -m bench.annotate [--docs 20] [--delay-s 0.25] [--capacity 1] [--concurrency 1,2,4,8,auto,old]
                             [--timeout 120] [--old-timeout S] [--json PATH]
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpusmill.classifiers.backends import BackendAnswer, Conversation
from corpusmill.classifiers.prompt import load_prompt
from corpusmill.core.stats import Stats
from corpusmill.demo.annotator_server import DEFAULT_MODEL, AnnotatorServer
from corpusmill.demo.oracle import PageOracle

OLD_CONCURRENCY = 8  # what `annotate --endpoint` sent before it adapted
OLD_TIMEOUT_SHARE = 0.45  # the old timeout against the time the server needs for a full round of requests
AUTO, OLD = "auto", "old"
DEFAULT_SETTINGS = f"1,2,4,8,{AUTO},{OLD}"
DRAIN_TIMEOUT_S = 600.0  # how long to let the server finish what abandoned clients left in its queue
_TIMEOUT = re.compile(r"time[d ]?\s*out", re.IGNORECASE)
COLUMNS = (
    "setting",
    "timeout_s",
    "documents",
    "failed",
    "seconds",
    "documents_per_s",
    "timeouts",
    "generations",
    "wasted",
    "repeated",
    "peak_running",
    "settled",
)


@dataclass(frozen=True)
class Setting:
    """One row of the table: at most `concurrency` requests in flight (None: adaptive), each given `timeout`."""

    label: str
    concurrency: int | None
    timeout: float


def parse_settings(spec: str, timeout: float, old_timeout: float) -> list[Setting]:
    """`1,2,auto,8@3.5,old` -> settings, in order."""
    settings = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        if item == AUTO:
            settings.append(Setting(AUTO, None, timeout))
        elif item == OLD:
            settings.append(Setting(f"{OLD_CONCURRENCY} (old)", OLD_CONCURRENCY, old_timeout))
        else:
            count, at, own_timeout = item.partition("@")
            try:
                seconds = float(own_timeout) if at else timeout
            except ValueError:
                seconds = 0.0
            if not count.isdigit() or int(count) < 1 or seconds <= 0:
                raise ValueError(f"a setting is N, N@SECONDS, {AUTO} or {OLD}; got {item!r}")
            settings.append(Setting(item, int(count), seconds))
    if not settings:
        raise ValueError("no settings given")
    return settings


def sample_texts(sample_dir: Path, docs: int) -> list[str]:
    """`docs` distinct documents of the sample as the annotation prompt shows them (main text, cut)."""
    from corpusmill.filters.extract import ExtractParams
    from corpusmill.filters.sandbox import trafilatura_text
    from corpusmill.io.warc import read_warc

    params = ExtractParams()
    options = {
        "favor_precision": params.favor_precision,
        "include_tables": params.include_tables,
        "include_comments": params.include_comments,
        "deduplicate": params.deduplicate,
    }
    prompt = load_prompt()
    texts: dict[str, None] = {}  # distinct, in crawl order: a copy asked twice would count as a repeat
    for path in sorted(sample_dir.glob("*.warc.gz")):
        for batch in read_warc(str(path), batch_size=64, stats=Stats()):
            for doc in batch.to_pylist():
                text = unicodedata.normalize("NFC", trafilatura_text(doc["html"], options) or "").strip()
                if text:
                    texts.setdefault(prompt.shown_text(text))
                if len(texts) == docs:
                    return list(texts)
    raise ValueError(f"the sample holds only {len(texts)} distinct documents, fewer than --docs {docs}")


def backend_options(concurrency: int | None, timeout: float) -> dict[str, Any]:
    """The client's own keywords for a concurrency (None: adaptive) and a timeout."""
    from corpusmill.classifiers.backends.http import HttpBackend

    accepted = inspect.signature(HttpBackend).parameters
    if "concurrency" in accepted:
        return {"concurrency": concurrency, "timeout": timeout}
    if concurrency is None:
        raise NotImplementedError("this client has no adaptive concurrency (no `concurrency` option)")
    return {"max_concurrency": concurrency, "timeout": timeout}


def client_description() -> str:
    """Which client is measured: the HTTP backend, and whether it can adapt its concurrency."""
    from corpusmill.classifiers.backends.http import HttpBackend

    accepted = inspect.signature(HttpBackend).parameters
    adaptive = "concurrency" in accepted
    stream = hasattr(HttpBackend, "annotate_stream")
    return (
        f"HttpBackend ({'adaptive concurrency' if adaptive else 'fixed concurrency only'}, "
        f"{'annotate_stream' if stream else 'annotate'})"
    )


def ask(backend: Any, conversations: Sequence[Conversation]) -> list[BackendAnswer]:
    """Every conversation's answer, as `annotate` asks: streamed in completion order where the backend can."""
    stream = getattr(backend, "annotate_stream", None)
    if stream is None:
        return list(backend.annotate(conversations))
    answers: list[BackendAnswer | None] = [None] * len(conversations)
    for index, answer in stream(conversations):
        answers[index] = answer
    missing = [n for n, answer in enumerate(answers) if answer is None]
    if missing:
        raise RuntimeError(f"the stream ended without answers for {len(missing)} conversations")
    return [answer for answer in answers if answer is not None]


def run_setting(
    setting: Setting,
    oracle: PageOracle,
    conversations: Sequence[Conversation],
    *,
    delay_s: float,
    capacity: int | None,
) -> dict[str, Any]:
    """Label every conversation through the real client against a fresh server; the row's figures."""
    from corpusmill.classifiers.annotate import make_backend

    row: dict[str, Any] = {"setting": setting.label, "timeout_s": setting.timeout}
    try:
        options = backend_options(setting.concurrency, setting.timeout)
    except NotImplementedError as exc:
        return {**row, "skipped": str(exc)}
    server = AnnotatorServer(oracle, delay_s=delay_s, capacity=capacity)
    with server as url:
        backend = make_backend(DEFAULT_MODEL, endpoint=url, **options)
        try:
            started = time.perf_counter()
            answers = ask(backend, conversations)
            seconds = time.perf_counter() - started
            settled = getattr(backend, "concurrency_now", None)
        finally:
            backend.close()
        # Abandoned requests are still queued or generating: let the server finish them to count the waste.
        drained = server.wait_idle(DRAIN_TIMEOUT_S)
        stats = server.stats.snapshot()
    errors = [answer.error for answer in answers if answer.error is not None]
    return {
        **row,
        "documents": len(answers) - len(errors),
        "failed": len(errors),
        "seconds": seconds,
        "documents_per_s": (len(answers) - len(errors)) / seconds if seconds else None,
        "timeouts": sum(bool(_TIMEOUT.search(error)) for error in errors),
        "generations": stats["generations_finished"],
        "wasted": stats["wasted"],
        "repeated": stats["repeated"],
        "peak_running": stats["peak_running"],
        "settled": settled,
        "drained": drained,
        "first_error": errors[0] if errors else None,
    }


def run_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Write the sample, take its documents and measure every setting on a fresh server."""
    from corpusmill.demo.corpus import write_demo_corpus

    settings = parse_settings(args.concurrency, args.timeout, args.old_timeout)
    write_demo_corpus(work, num_files=1)
    texts = sample_texts(work, args.docs)
    prompt = load_prompt()
    conversations = [prompt.messages(text) for text in texts]
    oracle = PageOracle.from_sample(work)
    rows = []
    for setting in settings:
        print(f"{setting.label} ...", file=sys.stderr, flush=True)
        rows.append(run_setting(setting, oracle, conversations, delay_s=args.delay_s, capacity=args.capacity))
    return {
        "client": client_description(),
        "docs": len(texts),
        "delay_s": args.delay_s,
        "capacity": args.capacity,
        "rows": rows,
    }


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def format_report(report: dict[str, Any]) -> str:
    """The printed table."""
    capacity = report["capacity"] if report["capacity"] is not None else "unlimited"
    lines = [
        f"annotate against a server generating {capacity} at a time, {report['delay_s']} s per answer, "
        f"{report['docs']} documents; client: {report['client']}",
        "",
        f"{'setting':14}{'timeout s':>10}{'documents':>10}{'failed':>8}{'seconds':>9}{'docs/s':>8}"
        f"{'timeouts':>10}{'generations':>13}{'wasted':>8}{'repeated':>10}{'peak running':>14}{'settled':>9}",
    ]
    for row in report["rows"]:
        if "skipped" in row:
            lines.append(f"{row['setting']:14}{_cell(row['timeout_s']):>10}  skipped: {row['skipped']}")
            continue
        lines.append(
            f"{row['setting']:14}{_cell(row['timeout_s']):>10}{row['documents']:>10}{row['failed']:>8}"
            f"{_cell(row['seconds']):>9}{_cell(row['documents_per_s'], 2):>8}{row['timeouts']:>10}"
            f"{row['generations']:>13}{row['wasted']:>8}{row['repeated']:>10}{row['peak_running']:>14}"
            f"{_cell(row['settled']):>9}"
        )
    for row in report["rows"]:
        if row.get("first_error"):
            lines.append(f"\n{row['setting']}: first error: {row['first_error'][:200]}")
        if row.get("drained") is False:
            lines.append(
                f"\n{row['setting']}: the server was still busy {DRAIN_TIMEOUT_S:.0f} s after the client"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.annotate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=20, help="distinct documents to label (default 20)")
    parser.add_argument(
        "--delay-s", type=float, default=0.25, help="seconds the server takes per answer (default 0.25)"
    )
    parser.add_argument(
        "--capacity", type=int, default=1, help="answers the server generates at once (default 1)"
    )
    parser.add_argument(
        "--concurrency",
        default=DEFAULT_SETTINGS,
        help=f"rows: N, N@TIMEOUT_S, {AUTO} or {OLD}, comma-separated (default {DEFAULT_SETTINGS})",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="the client's timeout per request (default 120)"
    )
    parser.add_argument(
        "--old-timeout",
        type=float,
        default=None,
        help=f"the {OLD} row's timeout (default {OLD_TIMEOUT_SHARE} x {OLD_CONCURRENCY} x delay / capacity)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.docs < 1 or args.capacity < 1 or args.delay_s < 0:
        parser.error("--docs and --capacity must be at least 1, --delay-s not negative")
    if args.old_timeout is None:
        args.old_timeout = round(OLD_TIMEOUT_SHARE * OLD_CONCURRENCY * args.delay_s / args.capacity, 3)
    try:
        parse_settings(args.concurrency, args.timeout, args.old_timeout)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the bench and print its table (and write its JSON)."""
    args = parse_args(argv)
    # The client warns at every retry; the table counts them. The level is put back for whoever runs next.
    client_log = logging.getLogger("corpusmill.classifiers.backends")
    level = client_log.level
    client_log.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory(prefix="corpusmill-bench-annotate-") as scratch:
            report = run_bench(args, Path(scratch))
    finally:
        client_log.setLevel(level)
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
