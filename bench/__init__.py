"""Benchmarks: corpusmill measured against itself on every engine and against datatrove, on real pages.

`python -m bench` builds (or reuses) a WARC corpus from the WCXB pages with near-duplicate variants of known
similarity, runs the same pipeline as a bare stage loop, on the local, Ray and Beam engines and in
datatrove, each in a fresh process whose whole process tree is measured, and prints one table. The
single-purpose scripts beside this package (`tokenizer_throughput.py`, ...) stay runnable on their own.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "wcxb-dev"


def cache_root(override: str | os.PathLike[str] | None = None) -> Path:
    """Where built corpora, run directories and results go: the argument, $CORPUSMILL_BENCH_CACHE or ~/.cache."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get("CORPUSMILL_BENCH_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "corpusmill" / "bench"
