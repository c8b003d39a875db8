"""Atomic writes: temporaries are recognisable by name alone, and a failed write names the file it was writing."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from corpusmill.core.atomic import (
    atomic_open,
    atomic_path,
    find_temporaries,
    is_temporary,
    naming_errors,
    remove_temporaries,
    target_of,
    temporary_file,
)
from corpusmill.pipelines.part_writer import PartWriter
from corpusmill.shards.megatron import MegatronWriter


def test_a_temporary_is_recognised_and_maps_back_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "stages" / "part-00000.parquet"
    target.parent.mkdir()
    tmp = temporary_file(target)
    assert tmp.parent == target.parent and tmp.exists()
    assert is_temporary(tmp)
    assert target_of(tmp) == target
    assert target_of(target) == target
    assert not is_temporary(target)


@pytest.mark.parametrize(
    "name",
    [
        "notes.tmp",
        ".notes.tmp",
        "part-00000.parquet.tmp",
        ".part.parquet.abc.tmp",
        ".part.ABCDEFGH.tmp",
        "x.tmp~",
    ],
)
def test_files_of_a_user_are_not_taken_for_temporaries(name: str) -> None:
    assert not is_temporary(name)


def test_remove_temporaries_deletes_only_temporaries_at_any_depth(tmp_path: Path) -> None:
    deep = tmp_path / "stages" / "01-x" / "keys"
    deep.mkdir(parents=True)
    left = [temporary_file(tmp_path / "stats.json"), temporary_file(deep / "part-00001.arrow")]
    kept = [tmp_path / "notes.tmp", tmp_path / ".notes.tmp", deep / "part-00000.arrow"]
    for path in kept:
        path.write_text("mine")
    assert find_temporaries(tmp_path) == sorted(left)
    assert remove_temporaries(tmp_path) == sorted(left)
    assert not any(path.exists() for path in left)
    assert all(path.read_text() == "mine" for path in kept)
    assert remove_temporaries(tmp_path / "missing") == []


def test_a_full_disk_met_by_a_write_names_the_target_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out" / "stats.json"
    with pytest.raises(OSError) as caught, atomic_open(target) as handle:
        handle.write("{")
        raise OSError(errno.ENOSPC, "No space left on device")  # what write() raises: no file name
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target)
    assert list(target.parent.iterdir()) == []


def test_errors_that_name_a_file_or_are_no_write_errors_pass_unchanged(tmp_path: Path) -> None:
    named = OSError(errno.ENOSPC, "No space left on device", "/elsewhere")
    read_error = OSError(errno.EIO, "Input/output error")
    for error in (named, read_error):
        with pytest.raises(OSError) as caught, naming_errors(tmp_path / "x"):
            raise error
        assert caught.value is error
    with pytest.raises(ValueError), atomic_path(tmp_path / "y"):
        raise ValueError("not an OS error")


class _FullDisk:
    """A stand-in for an open file or Arrow writer on a full disk (every call fails as `write()` would)."""

    def __init__(self, schema: pa.Schema | None = None) -> None:
        self.schema = schema

    def __getattr__(self, name: str) -> object:
        def fail(*args: object, **kwargs: object) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        return fail


def test_part_writer_temporaries_and_errors_follow_the_rule(tmp_path: Path) -> None:
    target = tmp_path / "step" / "part-00000.parquet"
    writer = PartWriter(target)
    writer.write(pa.record_batch({"id": ["a"]}))
    (tmp,) = [path for path in target.parent.iterdir()]
    assert is_temporary(tmp) and target_of(tmp) == target
    writer._writer = _FullDisk(writer._writer.schema)  # type: ignore[union-attr, assignment]
    with pytest.raises(OSError) as caught:
        writer.write(pa.record_batch({"id": ["b"]}))
    assert caught.value.filename == str(target)
    writer._writer = None
    writer.abort()


def test_shard_writer_temporaries_and_errors_follow_the_rule(tmp_path: Path) -> None:
    writer = MegatronWriter(tmp_path / "shard-00000")
    (tmp,) = list(tmp_path.iterdir())
    assert is_temporary(tmp) and target_of(tmp) == writer.data_path
    writer._bin = _FullDisk()  # type: ignore[assignment]
    with pytest.raises(OSError) as caught:
        writer.add_document(np.array([1, 2, 3], dtype=np.int32))
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(writer.data_path)
    writer._bin = None
    writer.abort()
    assert list(tmp_path.iterdir()) == []
