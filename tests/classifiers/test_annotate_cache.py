"""The annotation cache: append-only files, final answers beat errors, the latest answer of a kind wins."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpusmill.classifiers.annotations import ANNOTATION_SCHEMA, dimension_column
from corpusmill.classifiers.cache import (
    annotation_files,
    load_annotations,
    missing_ids,
    read_all_annotations,
    write_annotations,
)


def rows(*specs: tuple[str, str, float | None], prompt: str = "p1", model: str = "m1") -> pa.Table:
    """Annotation rows from (id, status, overall score) triples."""
    return pa.Table.from_pylist(
        [
            {
                "id": doc_id,
                "prompt_version": prompt,
                "model": model,
                "status": status,
                "text": f"text of {doc_id}",
                dimension_column("overall"): overall,
                "error": "boom" if status == "error" else None,
            }
            for doc_id, status, overall in specs
        ],
        schema=ANNOTATION_SCHEMA,
    )


def by_id(table: pa.Table) -> dict[str, dict]:
    return {row["id"]: row for row in table.to_pylist()}


def test_each_write_appends_a_new_file_and_nothing_is_rewritten(tmp_path: Path) -> None:
    first = write_annotations(tmp_path, rows(("a", "ok", 3.0)))
    before = first.read_bytes()
    second = write_annotations(tmp_path, rows(("a", "ok", 4.0)))
    assert first != second and first.read_bytes() == before
    assert annotation_files(tmp_path) == [first, second]
    assert not [p for p in (tmp_path / "annotations").iterdir() if p.suffix != ".parquet"]
    assert read_all_annotations(tmp_path).num_rows == 2


def test_latest_final_answer_wins_and_final_beats_error(tmp_path: Path) -> None:
    write_annotations(
        tmp_path, rows(("a", "ok", 1.0), ("b", "error", None), ("c", "ok", 2.0), ("d", "error", None))
    )
    write_annotations(tmp_path, rows(("a", "ok", 5.0), ("b", "ok", 3.0), ("c", "error", None)))
    write_annotations(tmp_path, rows(("d", "error", None), ("e", "unparseable", None)))
    latest = by_id(load_annotations(tmp_path / "annotations"))
    assert latest["a"]["status"] == "ok" and latest["a"][dimension_column("overall")] == 5.0
    assert latest["b"]["status"] == "ok" and latest["b"][dimension_column("overall")] == 3.0
    # An error after a final answer does not erase it.
    assert latest["c"]["status"] == "ok" and latest["c"][dimension_column("overall")] == 2.0
    assert latest["d"]["status"] == "error"
    assert latest["e"]["status"] == "unparseable"
    assert len(latest) == 5


def test_missing_ids_are_unknown_or_errored_for_this_prompt_and_model(tmp_path: Path) -> None:
    write_annotations(tmp_path, rows(("a", "ok", 1.0), ("b", "error", None), ("c", "unparseable", None)))
    write_annotations(tmp_path, rows(("d", "ok", 1.0), prompt="p2"))
    write_annotations(tmp_path, rows(("e", "ok", 1.0), model="m2"))
    table = load_annotations(tmp_path)
    wanted = ["e", "d", "c", "b", "a", "f"]
    assert missing_ids(table, wanted, "p1", "m1") == ["e", "d", "b", "f"]
    assert missing_ids(table, wanted, "p2", "m1") == ["e", "c", "b", "a", "f"]
    assert missing_ids(table, wanted, "p1", "m2") == ["d", "c", "b", "a", "f"]


def test_empty_or_absent_cache_loads_as_empty_table(tmp_path: Path) -> None:
    table = load_annotations(tmp_path / "nowhere")
    assert table.num_rows == 0 and table.schema.equals(ANNOTATION_SCHEMA)
    assert missing_ids(table, ["x"], "p", "m") == ["x"]


def test_files_missing_newer_columns_load_with_nulls(tmp_path: Path) -> None:
    old = rows(("a", "ok", 2.0)).drop_columns([dimension_column("safety"), "domain_confidence"])
    folder = tmp_path / "annotations"
    folder.mkdir()
    pq.write_table(old, folder / "0001-old.parquet")
    loaded = load_annotations(tmp_path)
    assert loaded.schema.equals(ANNOTATION_SCHEMA)
    assert by_id(loaded)["a"][dimension_column("safety")] is None
    assert by_id(loaded)["a"][dimension_column("overall")] == 2.0
    pq.write_table(pa.table({"id": ["z"]}), folder / "0002-foreign.parquet")
    with pytest.raises(ValueError, match=r"0002-foreign\.parquet"):
        load_annotations(tmp_path)
