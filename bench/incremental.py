"""An incremental rebuild against a full one: `python -m bench.incremental`.

Builds a crawl of `--files` WARC files of WCXB pages (a tenth of its documents near-duplicates of others in
it), runs the demo pipeline over it (extract, langid, heuristics, dedup_exact, dedup_minhash, tokenize,
write_shards; one part per file), then adds a later dump of about `--new-fraction` as many files, named so
they sort after the first dump's. The new dump holds fresh pages, recrawls of base pages with light edits
(near-duplicates) and unchanged recrawls (exact copies). Over both dumps it runs the incremental run
(`--base` the first run) and a full rebuild, each in a fresh process on the same engine, and prints:

- the CPU of each run after start-up: the process tree's CPU from the runner's first phase to the run's
  return (so the interpreter, imports, engine start, input listing and part planning are left out, on both
  sides), with the start-up and the whole process beside it, and the incremental run's share of the full
  rebuild's (the goal: at most 0.2);
- whether the two runs wrote the same bytes (`manifest.json` "files": path, size and SHA-256 of every file of
  documents/, rejected/, skipped/ and shards/); the exit status is 1 when they differ, 2 when a run failed;
- what the full rebuild's persisted dedup index (`index/`) takes on disk, per million documents read.

CPU is the whole process tree's, sampled from outside (`bench.measure.TreeSampler`), phases timed by the
runner's progress callback (`bench.run_corpusmill.PhaseRecorder`), as in `python -m bench`.

    python -m bench.incremental [--files 20] [--docs-per-file 50] [--engine local] [--repeats 1] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import DEFAULT_DATA, REPO
from bench.launch import repo_environment
from bench.measure import TreeSampler, cost

ENGINES = ("local", "ray", "beam")
GOAL = 0.2  # the incremental run's CPU after start-up, as a share of the full rebuild's
BASE_DUMP, NEW_DUMP = "dump-1", "dump-2"


@dataclass(frozen=True)
class Record:
    """One WARC response record to write: a WCXB page, perhaps edited (a near-duplicate variant)."""

    record_id: str
    url: str
    page_id: str
    edit_seed: str | None = None  # None: the page as it is; else the seed of its variant's edits


@dataclass(frozen=True)
class CorpusPlan:
    """Both dumps: the records of every file, by file name, and what the new dump holds."""

    base: dict[str, list[Record]]
    new: dict[str, list[Record]]
    base_near_duplicates: int
    new_near_duplicates: int
    new_copies: int
    new_pages: int

    def summary(self) -> dict[str, int]:
        """Counts for the table and the JSON."""
        return {
            "base_files": len(self.base),
            "base_documents": sum(map(len, self.base.values())),
            "base_near_duplicates": self.base_near_duplicates,
            "new_files": len(self.new),
            "new_documents": sum(map(len, self.new.values())),
            "new_near_duplicates": self.new_near_duplicates,
            "new_copies": self.new_copies,
            "new_pages": self.new_pages,
        }


def _record_id(seed: int, *key: object) -> str:
    digest = hashlib.blake2b("|".join(map(str, (seed, *key))).encode(), digest_size=16).digest()
    return uuid.UUID(bytes=digest, version=4).urn


def _deal(records: list[Record], dump: str, files: int, per_file: int) -> dict[str, list[Record]]:
    return {f"{dump}-{n:05d}.warc.gz": records[n * per_file : (n + 1) * per_file] for n in range(files)}


def _editable(pages: list[Any], wanted: int, rng: random.Random, data_dir: Path) -> list[str]:
    """Up to `wanted` ids of the pages, in a seeded order, whose main content has words a variant can edit."""
    from bench.variants import split_page

    found = []
    for page in rng.sample(pages, len(pages)):
        if len(found) == wanted:
            break
        if split_page(page.html(data_dir), page.ground_truth).text_indices(main=True):
            found.append(page.page_id)
    return found


def plan_corpus(
    files: int,
    docs_per_file: int,
    new_fraction: float = 0.1,
    near_duplicate_fraction: float = 0.3,
    copy_fraction: float = 0.1,
    base_near_duplicate_fraction: float = 0.1,
    seed: int = 0,
    data_dir: Path = DEFAULT_DATA,
) -> CorpusPlan:
    """Which page (and which edits) every record of both dumps is, in a seeded order.

    The base dump is `files` x `docs_per_file` records: distinct pages, and `base_near_duplicate_fraction` of
    them edited copies of others under another URL. The new dump is `max(1, round(files * new_fraction))`
    files of as many records: `near_duplicate_fraction` recrawls of base pages with edits, `copy_fraction`
    unchanged recrawls of base records (same URL, same HTML, a new record id), the rest pages not in the base.
    """
    from bench.corpus import load_pages

    rng = random.Random(seed)
    pages = load_pages(data_dir)
    rng.shuffle(pages)
    new_files = max(1, round(files * new_fraction))
    base_count, new_count = files * docs_per_file, new_files * docs_per_file
    base_variants = round(base_count * base_near_duplicate_fraction)
    new_dups = round(new_count * near_duplicate_fraction)
    new_copies = round(new_count * copy_fraction)
    fresh = new_count - new_dups - new_copies
    if fresh < 0:
        raise ValueError("the near-duplicate and copy fractions of the new dump add up to more than 1")
    originals = base_count - base_variants
    if originals + fresh > len(pages):
        raise ValueError(
            f"{originals + fresh} distinct pages needed, {len(pages)} in {data_dir}: fewer files or documents per file"
        )
    url_of = {page.page_id: page.url for page in pages}
    base = [Record(_record_id(seed, "base", p.page_id), p.url, p.page_id) for p in pages[:originals]]
    sources = _editable(pages[:originals], base_variants + new_dups, rng, data_dir)
    if len(sources) < new_dups or (base_variants and not sources):
        raise ValueError(f"only {len(sources)} pages with editable main content to make near-duplicates from")
    for n in range(base_variants):  # syndicated copies: another URL, a few words changed
        page_id = rng.choice(sources)
        url = url_of[page_id] + ("&" if "?" in url_of[page_id] else "?") + f"mirror={n}"
        base.append(Record(_record_id(seed, "base-variant", n), url, page_id, f"{seed}|base|{n}"))
    rng.shuffle(base)
    new = [Record(_record_id(seed, "new", p.page_id), p.url, p.page_id) for p in pages[originals:][:fresh]]
    for n, page_id in enumerate(rng.sample(sources, new_dups)):  # the page changed a little since
        new.append(Record(_record_id(seed, "recrawl-edited", n), url_of[page_id], page_id, f"{seed}|new|{n}"))
    for n, record in enumerate(rng.sample(base, new_copies)):  # the page did not change
        new.append(Record(_record_id(seed, "recrawl", n), record.url, record.page_id, record.edit_seed))
    rng.shuffle(new)
    return CorpusPlan(
        base=_deal(base, BASE_DUMP, files, docs_per_file),
        new=_deal(new, NEW_DUMP, new_files, docs_per_file),
        base_near_duplicates=base_variants,
        new_near_duplicates=new_dups,
        new_copies=new_copies,
        new_pages=fresh,
    )


def write_dump(
    files: dict[str, list[Record]], directory: Path, seed: int, data_dir: Path = DEFAULT_DATA
) -> None:
    """Write one dump's WARC files; an edited record's HTML is made again from its seed, so copies match."""
    from bench.corpus import load_pages
    from bench.variants import make_variant, split_page
    from bench.warc_writer import WarcFileWriter
    from corpusmill.core.atomic import atomic_open

    page_of = {page.page_id: page for page in load_pages(data_dir)}
    directory.mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        with atomic_open(directory / name, "wb") as handle:
            writer = WarcFileWriter(handle, name, _record_id(seed, "warcinfo", name))
            for record in records:
                page = page_of[record.page_id]
                html = page.html(data_dir)
                if record.edit_seed is not None:
                    html, _ = make_variant(
                        split_page(html, page.ground_truth), random.Random(record.edit_seed)
                    )
                writer.add(record.record_id, record.url, html.encode("utf-8"))


def recipe_data(input_dir: Path) -> dict[str, Any]:
    """The stages of `recipes/demo.yaml` (shards sized for this corpus) over the input directory, a part per file."""
    return {
        "name": "incremental-bench",
        "seed": 0,
        "input": {"paths": [str(input_dir / "*.warc.gz")], "format": "warc", "part_bytes": 1},
        "stages": [
            {"stage": "extract", "timeout_s": 10},
            {"stage": "langid", "languages": ["en", "de", "fr", "es"], "min_score": 0.5},
            {"stage": "heuristics", "languages": ["en"]},
            {"stage": "dedup_exact"},
            {"stage": "dedup_minhash", "threshold": 0.8},
            {"stage": "tokenize"},
            {"stage": "write_shards", "max_tokens_per_shard": 250_000, "heldout_fraction": 0.05},
        ],
        "output": {"keep_rejected": True, "batch_size": 256},
    }


def run_child(spec: dict[str, Any], out: Path) -> None:
    """The measured process: one `run_recipe`, every phase marked, the marks and spans written to `out`."""
    from bench.measure import Clock, become_subreaper, reap_orphans
    from bench.run_corpusmill import PhaseRecorder
    from corpusmill.core.recipe import parse_recipe
    from corpusmill.pipelines.runner import run_recipe

    become_subreaper()
    clock = Clock()
    recipe = parse_recipe(recipe_data(Path(spec["input_dir"])))
    recorder = PhaseRecorder(clock)
    extra = {"base": Path(spec["base"])} if spec.get("base") else {}
    start = clock.mark("start")
    run_recipe(
        recipe,
        engine=spec["engine"],
        output=Path(spec["run_dir"]),
        num_cpus=spec["cores"],
        progress=recorder,
        **extra,
    )
    end = clock.mark("end")
    recorder.close(start, end)
    reap_orphans()
    clock.mark("reaped")
    first = recorder.first.at if recorder.first is not None else end.at
    marks = {"start": start.at, "first_phase": first, "end": end.at, "reaped": clock.at("reaped")}
    out.write_text(json.dumps({"marks": marks, "spans": clock.spans}), encoding="utf-8")


def measure_run(
    name: str, input_dir: Path, run_dir: Path, engine: str, cores: int, base: Path | None, timeout_s: float
) -> dict[str, Any]:
    """One run in a fresh process whose tree is sampled from here; its CPU, phases and what it wrote."""
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    spec = {"input_dir": str(input_dir), "run_dir": str(run_dir), "engine": engine, "cores": cores}
    spec["base"] = str(base) if base is not None else None
    spec_path, out, log = (
        run_dir.parent / f"{run_dir.name}.{ext}" for ext in ("spec.json", "marks.json", "log")
    )
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    out.unlink(missing_ok=True)
    command = [sys.executable, "-m", "bench.incremental", "--child", str(spec_path), "--out", str(out)]
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=repo_environment(),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with TreeSampler(process.pid) as sampler:
        try:
            code: int | str = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = f"killed after the {timeout_s:.0f} s limit"
    if code != 0 or not out.exists():
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-12:]
        return {"run": name, "error": f"exit {code}; see {log}:\n" + "\n".join(tail)}
    data = json.loads(out.read_text(encoding="utf-8"))
    marks = data["marks"]
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    return {
        "run": name,
        "run_dir": str(run_dir),
        "cpu_s": sampler.cpu_between(marks["first_phase"], marks["end"]),
        "startup_cpu_s": sampler.cpu_between(marks["start"], marks["first_phase"]),
        "process_cpu_s": sampler.cpu[-1] if sampler.cpu else 0.0,
        "wall_s": marks["end"] - marks["start"],
        "phases": {span: cost(sampler, intervals) for span, intervals in data["spans"].items()},
        "peak_rss_bytes": sampler.peak_rss,
        **run_figures(run_dir, stats),
    }


def run_figures(run_dir: Path, stats: dict[str, Any]) -> dict[str, Any]:
    """What a finished run directory says: files, documents read and out, dedup removals, reuse."""
    from corpusmill.pipelines.summary import summarize

    summary = summarize(stats)
    run_json = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    incremental = stats.get("incremental") or None
    return {
        "input_files": len(run_json.get("files", [])),
        "documents_read": summary.read.docs_out if summary.read is not None else 0,
        "documents_out": summary.documents_out,
        "tokens": summary.tokens_written,
        "dedup_removed": sum(sum(row.dropped.values()) for row in summary.stages if "dedup" in row.label),
        "parts": incremental.get("parts") if incremental else None,
        "reused_parts": incremental.get("reused_parts") if incremental else None,
        "added_files": len(incremental.get("added_files", [])) if incremental else None,
    }


def compare_outputs(first: Path, second: Path) -> dict[str, Any]:
    """Whether two runs wrote the same files (their manifests' "files" lists), and which differ."""
    listed = [json.loads((d / "manifest.json").read_text(encoding="utf-8"))["files"] for d in (first, second)]
    by_path = [{entry["path"]: entry for entry in files} for files in listed]
    differ = sorted(
        p for p in by_path[0].keys() | by_path[1].keys() if by_path[0].get(p) != by_path[1].get(p)
    )
    return {"identical": listed[0] == listed[1], "files": len(listed[1]), "differ": differ}


def index_size(run_dir: Path, documents_read: int) -> dict[str, Any]:
    """Bytes of the run's `index/` directory, by what it holds, and per million documents read.

    `kinds` adds up each kind of file over the dedup steps (`<step>/keys`, `side`, `members`) plus the
    document list (`documents`); `steps` has every step's own folders.
    """
    index = run_dir / "index"
    steps: dict[str, int] = {}
    kinds: dict[str, int] = {}
    for path in sorted(index.rglob("*")) if index.is_dir() else []:
        if not path.is_file():
            continue
        size = path.stat().st_size
        parts = path.relative_to(index).parts
        folder = "/".join(parts[:-1]) or "."
        steps[folder] = steps.get(folder, 0) + size
        kind = parts[1] if len(parts) > 2 else parts[0] if len(parts) > 1 else "."
        kinds[kind] = kinds.get(kind, 0) + size
    total = sum(steps.values())
    return {
        "bytes": total,
        "documents_read": documents_read,
        "bytes_per_million_documents": total / documents_read * 1e6 if documents_read else None,
        "kinds": kinds,
        "steps": steps,
    }


def _cheapest(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Of a run's repeats, the one that cost least CPU after start-up (interference only adds time)."""
    kept = dict(min(results, key=lambda r: r["cpu_s"]))
    kept["repeats"] = [{"cpu_s": r["cpu_s"], "wall_s": r["wall_s"]} for r in results]
    return kept


def run_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Build the dumps, run base, incremental and full rebuild; the figures the table shows."""
    plan = plan_corpus(
        args.files,
        args.docs_per_file,
        args.new_fraction,
        args.near_duplicate_fraction,
        args.copy_fraction,
        seed=args.seed,
        data_dir=args.data,
    )
    input_dir, runs = work / "input", work / "runs"
    shutil.rmtree(input_dir, ignore_errors=True)
    write_dump(plan.base, input_dir, args.seed, args.data)
    report: dict[str, Any] = {
        "engine": args.engine,
        "cores": args.cores,
        "corpus": plan.summary(),
        "recipe": recipe_data(input_dir),
    }

    def measured(name: str, run_dir: Path, base: Path | None = None) -> dict[str, Any]:
        print(f"{name} ...", file=sys.stderr, flush=True)
        result = measure_run(name, input_dir, run_dir, args.engine, args.cores, base, args.timeout)
        if "error" in result:
            raise RunFailed(f"the {name} run failed: {result['error']}")
        return result

    base = measured("base", runs / "base")
    write_dump(plan.new, work / NEW_DUMP, args.seed, args.data)
    for name in sorted(plan.new):  # the later dump arrives
        os.replace(work / NEW_DUMP / name, input_dir / name)
    incremental, full = [], []
    for repeat in range(1, args.repeats + 1):
        order = ("incremental", "full") if repeat % 2 else ("full", "incremental")
        for name in order:
            if name == "incremental":
                incremental.append(measured(name, runs / f"incremental-{repeat}", runs / "base"))
            else:
                full.append(measured("full rebuild", runs / f"full-{repeat}"))
    kept_incremental, kept_full = _cheapest(incremental), _cheapest(full)
    comparisons = [
        compare_outputs(Path(i["run_dir"]), Path(f["run_dir"]))
        for i, f in zip(incremental, full, strict=True)
    ]
    report["runs"] = {"base": base, "incremental": kept_incremental, "full": kept_full}
    report["ratio"] = kept_incremental["cpu_s"] / kept_full["cpu_s"] if kept_full["cpu_s"] else None
    report["goal"] = GOAL
    report["outputs"] = {
        "identical": all(c["identical"] for c in comparisons),
        "files": comparisons[0]["files"],
        "differ": sorted({p for c in comparisons for p in c["differ"]}),
    }
    report["index"] = index_size(Path(kept_full["run_dir"]), kept_full["documents_read"])
    return report


class RunFailed(RuntimeError):
    """A measured run exited with an error."""


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def format_report(report: dict[str, Any]) -> str:
    """The printed table."""
    corpus, runs = report["corpus"], report["runs"]
    lines = [
        f"Incremental rebuild on the {report['engine']} engine, {report['cores']} cores",
        f"base dump: {corpus['base_files']} files, {corpus['base_documents']:,} documents "
        f"({corpus['base_near_duplicates']:,} near-duplicates of others among them); new dump: "
        f"{corpus['new_files']} files, {corpus['new_documents']:,} documents ({corpus['new_near_duplicates']:,} "
        f"edited and {corpus['new_copies']:,} unchanged recrawls of base documents, {corpus['new_pages']:,} new pages)",
        "",
        f"{'run':14}{'input files':>12}{'parts reused':>14}{'CPU s after start-up':>22}{'start-up CPU s':>16}"
        f"{'process CPU s':>15}{'wall s':>8}{'documents out':>15}{'dedup removed':>15}",
    ]
    for key in ("base", "incremental", "full"):
        row = runs[key]
        reused = f"{row['reused_parts']}/{row['parts']}" if row.get("parts") is not None else "-"
        lines.append(
            f"{row['run']:14}{row['input_files']:>12}{reused:>14}{row['cpu_s']:>22.2f}{row['startup_cpu_s']:>16.2f}"
            f"{row['process_cpu_s']:>15.2f}{row['wall_s']:>8.1f}{row['documents_out']:>15,}{row['dedup_removed']:>15,}"
        )
    ratio = report["ratio"]
    if ratio is not None:
        verdict = "met" if ratio <= report["goal"] else "NOT met"
        lines.append(
            f"\nincremental / full rebuild, CPU after start-up: {runs['incremental']['cpu_s']:.2f} / "
            f"{runs['full']['cpu_s']:.2f} s = {ratio:.3f} (goal: at most {report['goal']:.2f}, {verdict})"
        )
    outputs = report["outputs"]
    if outputs["identical"]:
        lines.append(f'outputs: identical (manifest.json "files": {outputs["files"]} entries, equal)')
    else:
        shown = ", ".join(outputs["differ"][:5]) + (
            f" and {len(outputs['differ']) - 5} more" if len(outputs["differ"]) > 5 else ""
        )
        lines.append(f"outputs: DIFFER ({len(outputs['differ'])} of {outputs['files']} files: {shown})")
    index = report["index"]
    if index["bytes_per_million_documents"] is not None:
        shares = ", ".join(
            f"{kind} {size / index['bytes']:.0%}"
            for kind, size in sorted(index["kinds"].items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"index/ of the full rebuild: {index['bytes']:,} bytes for {index['documents_read']:,} documents read, "
            f"{_mb(index['bytes_per_million_documents'])} per million documents ({shares})"
        )
    spans = sorted(set(runs["incremental"]["phases"]) | set(runs["full"]["phases"]))
    lines.append(f"\n{'CPU s by phase':22}{'incremental':>12}{'full rebuild':>14}")
    for span in spans:
        cells = [runs[key]["phases"].get(span, {}).get("cpu_s") for key in ("incremental", "full")]
        shown_cells = [f"{c:.2f}" if c is not None else "-" for c in cells]
        lines.append(f"{span:22}{shown_cells[0]:>12}{shown_cells[1]:>14}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.incremental", description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20, help="WARC files of the base dump (default 20)")
    parser.add_argument("--docs-per-file", type=int, default=50, help="records per WARC file (default 50)")
    parser.add_argument(
        "--new-fraction", type=float, default=0.1, help="files of the new dump per base file (default 0.1)"
    )
    parser.add_argument(
        "--near-duplicate-fraction",
        type=float,
        default=0.3,
        help="share of the new dump that are edited recrawls of base pages (default 0.3)",
    )
    parser.add_argument(
        "--copy-fraction",
        type=float,
        default=0.1,
        help="share of the new dump that are unchanged recrawls of base records (default 0.1)",
    )
    parser.add_argument(
        "--engine", default="local", choices=ENGINES, help="the engine of every run (default local)"
    )
    parser.add_argument(
        "--cores", type=int, default=os.cpu_count() or 1, help="engine workers (default: all cores)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="incremental and full runs, alternating; the cheapest of each is kept",
    )
    parser.add_argument("--quick", action="store_true", help="4 base files of 8 records and one new file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the wcxb-dev directory")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the dumps and runs here (default: a temporary directory)",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run (default 1800)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.files, args.docs_per_file = 4, 8
    if args.repeats < 1 or args.files < 1 or args.docs_per_file < 1:
        parser.error("--repeats, --files and --docs-per-file must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the bench (or, with --child, be a measured run); 0 when the outputs are identical."""
    args = parse_args(argv)
    if args.child is not None:
        run_child(json.loads(args.child.read_text(encoding="utf-8")), args.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="corpusmill-incremental-") as scratch:
        work = args.work or Path(scratch)
        try:
            report = run_bench(args, work)
        except RunFailed as exc:
            print(exc, file=sys.stderr)
            return 2
    print(format_report(report))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0 if report["outputs"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
