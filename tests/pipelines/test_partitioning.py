"""Parts: small files bundled by size, big files alone, batches regrouped across file boundaries."""

from __future__ import annotations

import pyarrow as pa

from corpusmill.io.inputs import InputFile
from corpusmill.pipelines.partitioning import plan_input_parts
from corpusmill.pipelines.parts import PartSpec, rebatch


def test_small_files_are_bundled_and_big_ones_stand_alone() -> None:
    sizes = [
        ("a.html", "html", 40),
        ("b.html", "html", 40),
        ("c.html", "html", 40),
        ("big.warc.gz", "warc", 500),
    ]
    sizes += [("d.html", "html", 10)]
    inputs = [(InputFile(f"/mnt/x/{name}", name, size, "v1"), fmt) for name, fmt, size in sizes]
    parts = plan_input_parts(inputs, part_bytes=100)
    assert [(p.name, p.names, p.fmt) for p in parts] == [
        ("part-00000", ("a.html", "b.html"), "html"),
        ("part-00001", ("c.html",), "html"),
        ("part-00002", ("big.warc.gz",), "warc"),
        ("part-00003", ("d.html",), "html"),
    ]
    assert parts[0].uris == ("/mnt/x/a.html", "/mnt/x/b.html")


def test_part_identity_follows_the_files_not_the_mount() -> None:
    def part(root: str, size: int = 40, version: str = "v1") -> PartSpec:
        files = [(InputFile(f"{root}/{n}", n, size, version), "html") for n in ("a.html", "b.html")]
        (only,) = plan_input_parts(files, part_bytes=1000)
        return only

    assert part("/laptop").identity == part("s3://bucket").identity
    assert part("/laptop").identity != part("/laptop", size=41).identity
    assert part("/laptop").identity != part("/laptop", version="v2").identity


def test_part_spec_round_trips_through_json() -> None:
    part = PartSpec("part-00007", ("/d/x.jsonl", "/d/y.jsonl"), "jsonl", ("x.jsonl", "y.jsonl"), "abc")
    assert PartSpec.from_json(part.to_json()) == part


def test_rebatch_regroups_rows_in_order() -> None:
    pieces = [
        pa.record_batch({"n": list(range(start, start + size))})
        for start, size in ((0, 1), (1, 0), (1, 4), (5, 7))
    ]
    out = list(rebatch(pieces, 5))
    assert [b.num_rows for b in out] == [5, 5, 2]
    assert [v for b in out for v in b.column("n").to_pylist()] == list(range(12))
