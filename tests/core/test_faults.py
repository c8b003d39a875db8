"""An OSError as one line: the file, the errno and its name, what to do; found behind Ray's and Beam's wrappers."""

from __future__ import annotations

import errno
import os

import pytest

from corpusmill.core.faults import describe, find_os_error


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (
            errno.ENOSPC,
            "cannot write runs/x/stages/02-tokenize_v1/part-00003.parquet: [Errno 28] No space left on device "
            "(ENOSPC); free space and run the same command again to resume",
        ),
        (
            errno.EROFS,
            "cannot write runs/x/stages/02-tokenize_v1/part-00003.parquet: [Errno 30] Read-only file system "
            "(EROFS); the file system is read-only; make it writable (or write elsewhere) and run the same command "
            "again to resume",
        ),
        (
            errno.EACCES,
            "cannot access runs/x/stages/02-tokenize_v1/part-00003.parquet: [Errno 13] Permission denied "
            "(EACCES); give this user access to it (or use another path) and run the same command again to resume",
        ),
    ],
)
def test_an_os_error_is_one_line_naming_the_file_the_temporary_stood_for(code: int, expected: str) -> None:
    temporary = "runs/x/stages/02-tokenize_v1/.part-00003.parquet.k2j4h1x0.tmp"
    line = describe(OSError(code, os.strerror(code), temporary))
    assert line == expected
    assert "\n" not in line


def test_a_rename_names_its_destination_and_an_unnamed_error_still_reads() -> None:
    rename = OSError(errno.EISDIR, "Is a directory", "/r/.a.parquet.abcdefgh.tmp", None, "/r/a.parquet")
    assert describe(rename).startswith("cannot write /r/a.parquet: [Errno 21] Is a directory (EISDIR); ")
    assert describe(OSError(errno.ENOSPC, "x")).startswith("cannot write: [Errno 28] No space left on device")
    assert describe(FileNotFoundError("no input files match crawl/*.warc.gz")) == (
        "no input files match crawl/*.warc.gz"
    )


def test_the_os_error_of_a_ray_task_is_its_cause() -> None:
    from ray.exceptions import RayTaskError

    cause = OSError(errno.ENOSPC, "No space left on device", "/runs/x/part.parquet")
    wrapped = RayTaskError("_run_part", "\x1b[36mTraceback ...\x1b[39m", cause).as_instanceof_cause()
    assert isinstance(wrapped, OSError)  # Ray's wrapper is an OSError too, but names nothing
    assert find_os_error(wrapped) is cause


def test_the_os_error_a_beam_worker_reported_as_text_is_rebuilt() -> None:
    reported = RuntimeError(
        "Traceback (most recent call last):\n  File ...\n"
        "OSError: [Errno 27] Error writing bytes to file. Detail: [errno 27] File too large\n\n"
        "The above exception was the direct cause of the following exception:\n\n"
        "OSError: [Errno 27] File too large: '/runs/x/part-00000.parquet' [while running 'Process']"
    )
    found = find_os_error(reported)
    assert found is not None
    assert (found.errno, found.filename) == (errno.EFBIG, "/runs/x/part-00000.parquet")


def test_other_errors_are_not_taken_for_os_errors() -> None:
    assert find_os_error(ValueError("[Errno 28] in a message")) is None
    assert find_os_error(RuntimeError("a bug")) is None
