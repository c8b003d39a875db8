"""What a run costs before it has any documents to work on, measured on a skeleton of the corpus.

A whole run's CPU time is a cost per document plus costs that do not grow with the corpus: starting the
engine (a local Ray instance with its workers ready, about 4 CPU-seconds), every worker's set-up of every
stage (loading trafilatura, spaCy, the language model, the tokenizer), each phase's fixed cost, stopping. On
datatrove's side the same: its executors' process pools and each task's set-up of its steps. On the bench's
few hundred documents these are a fifth of a corpusmill run on Ray; on a crawl they are nothing. So the
bench also runs each system on the corpus's skeleton: the same WARC files, each holding only its first
record (the `warcinfo` record and the first `response`), which gives the same parts, tasks, phases and
set-ups with next to no documents. The run less its skeleton run is what the documents cost:

    per document = (records - skeleton records) / (run CPU - skeleton run CPU)

for each system, measured the same way (the cheapest of the repeats, in fresh processes).
"""

from __future__ import annotations

import zlib
from pathlib import Path

from corpusmill.core.atomic import atomic_open

# Records kept from the start of each file: the warcinfo record and one response.
SKELETON_RECORDS_PER_FILE = 2


def first_members(data: bytes, count: int) -> bytes:
    """The first `count` gzip members of a multi-member gzip file (one WARC record each), as they are."""
    end = 0
    for _ in range(count):
        if end >= len(data):
            break
        member = zlib.decompressobj(wbits=31)
        member.decompress(data[end:])
        if not member.eof:
            raise ValueError(f"gzip member at byte {end} does not end before the file does")
        end = len(data) - len(member.unused_data)
    return data[:end]


def write_skeleton(warc_dir: Path, skeleton_dir: Path) -> int:
    """Write the skeleton of every WARC file in `warc_dir` to `skeleton_dir`; return the response records kept.

    Files that are already there are left as they are (the skeleton of a cached corpus never changes).
    """
    kept = 0
    for path in sorted(warc_dir.glob("*.warc.gz")):
        target = skeleton_dir / path.name
        if not target.exists():
            skeleton_dir.mkdir(parents=True, exist_ok=True)
            with atomic_open(target, "wb") as handle:
                handle.write(first_members(path.read_bytes(), SKELETON_RECORDS_PER_FILE))
        kept += _responses(target)
    return kept


def _responses(path: Path) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    with open(path, "rb") as handle:
        return sum(1 for _ in ArchiveIterator(handle, record_types=WarcRecordType.response))


def per_document_rate(
    docs: int, skeleton_docs: int, cpu_s: float | None, skeleton_cpu_s: float | None
) -> float | None:
    """Documents per CPU-second once the skeleton run's cost is set apart; None where it cannot be told."""
    if cpu_s is None or skeleton_cpu_s is None or cpu_s <= skeleton_cpu_s or docs <= skeleton_docs:
        return None
    return (docs - skeleton_docs) / (cpu_s - skeleton_cpu_s)
