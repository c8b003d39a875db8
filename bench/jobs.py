"""One measured benchmark run, in a process of its own: `python -m bench.jobs SPEC.json RESULT.json`.

Every run starts in a fresh interpreter so that no run inherits another's warm caches, loaded models or
engine processes, and so that the whole process tree under it belongs to that run alone. The job makes
itself a child subreaper, marks the moments around every stage (`bench.measure.Clock`), collects orphaned
descendants when the run is done, and writes the spans, the ids deduplication saw and removed, and the path
of the extracted texts as JSON. CPU time and memory are sampled by the parent, from outside the tree
(`bench.measure.TreeSampler`), and matched to the marks.
"""

from __future__ import annotations

import gzip
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import Clock, become_subreaper, reap_orphans
from corpusmill.core.atomic import atomic_open, write_json

JOBS = (
    "corpusmill-bare",
    "corpusmill-local",
    "corpusmill-ray",
    "corpusmill-beam",
    "datatrove-bare",
    "datatrove",
)


def run_job(spec: dict[str, Any]) -> dict[str, Any]:
    """Run the job the spec names and return its measurements."""
    job = spec["job"]
    warc_dir, work, cache = Path(spec["warc_dir"]), Path(spec["work"]), Path(spec["cache"])
    threshold, cores = float(spec["threshold"]), int(spec["cores"])
    extractor = str(spec.get("extractor", "trafilatura"))
    subreaper = become_subreaper()
    clock = Clock()
    if job == "corpusmill-bare":
        from bench.run_corpusmill import run_bare

        share = spec.get("share")
        result = run_bare(warc_dir, work, clock, threshold, extractor, tuple(share) if share else None)
    elif job.startswith("corpusmill-"):
        from bench.run_corpusmill import run_engine

        result = run_engine(
            job.removeprefix("corpusmill-"), warc_dir, work, clock, threshold, cores, extractor
        )
    elif job.startswith("datatrove"):
        from bench import run_datatrove

        run_datatrove.install_lid_model()
        tokenizer_json = run_datatrove.tokenizer_file(cache)
        if job == "datatrove-bare":
            result = run_datatrove.run_bare(warc_dir, work, tokenizer_json, clock, threshold, extractor)
        else:
            result = run_datatrove.run_executor(
                warc_dir, work, tokenizer_json, clock, threshold, cores, extractor
            )
    else:
        raise ValueError(f"unknown job {job!r}; allowed: {', '.join(JOBS)}")
    reap_orphans()
    clock.mark("reaped")
    result["marks"] = {name: clock.at(name) for name in ("start", "end", "reaped")}
    result["spans"] = clock.spans
    result["subreaper"] = subreaper
    extracted = result.pop("extracted", None)
    if extracted is not None:
        path = work / "extracted.jsonl.gz"
        with atomic_open(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as handle:
            for doc_id, text in extracted:
                handle.write(json.dumps({"id": doc_id, "text": text}) + "\n")
        result["extracted_path"] = str(path)
    return result


def main(argv: list[str] | None = None) -> None:
    """Command line: read the spec, run, write the result."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m bench.jobs SPEC.json RESULT.json")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    started = time.time()
    result = run_job(spec)
    result["job"] = spec["job"]
    result["started_at"] = started
    write_json(args[1], result)


if __name__ == "__main__":
    main()
