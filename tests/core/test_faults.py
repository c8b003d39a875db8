"""An OSError as one line: the file, the errno and its name, what to do; found behind Ray's and Beam's wrappers."""

from __future__ import annotations

import errno
import os

import pytest

from corpusmill.core.faults import describe, find_os_error, reported_error


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


def _beam_text(*blocks: str) -> RuntimeError:
    """What Beam's runner raises for a worker's error: its traceback, chained exceptions and all, as text."""
    frames = 'Traceback (most recent call last):\n  File "stage.py", line 3, in process\n    raise it\n'
    glue = "\n\nDuring handling of the above exception, another exception occurred:\n\n"
    return RuntimeError(glue.join(frames + block for block in blocks) + "\n")


def test_the_error_a_beam_worker_raised_is_rebuilt_from_its_traceback() -> None:
    from corpusmill.pipelines.part_source import InputFileError

    message = "input file /in/a.parquet could not be read (ValueError: no column 'text'); repair it"
    rebuilt = reported_error(
        _beam_text(
            f"corpusmill.pipelines.part_source.InputFileError: {message}",
            f"corpusmill.pipelines.part_source.InputFileError: {message} [while running 'Process']",
        )
    )
    assert type(rebuilt) is InputFileError and str(rebuilt) == message
    stage = reported_error(_beam_text("ValueError: a line\nand another [while running 'Process']"))
    assert type(stage) is ValueError and str(stage) == "a line\nand another"
    # Where Beam could not build the type again it names it in a RuntimeError; an OSError gets its errno back.
    os_error = reported_error(
        _beam_text(
            "RuntimeError: OSError: [Errno 27] File too large: '/runs/x/p.parquet' [while running 'P']"
        )
    )
    assert isinstance(os_error, OSError)
    assert (os_error.errno, os_error.filename) == (errno.EFBIG, "/runs/x/p.parquet")


def test_what_cannot_be_rebuilt_stays_beams_error() -> None:
    assert reported_error(ValueError("Traceback (most recent call last):\nValueError: x")) is None
    assert reported_error(RuntimeError("a bug")) is None
    assert reported_error(_beam_text("not_imported_module.Error: x [while running 'P']")) is None
    assert (
        reported_error(_beam_text("KeyError: 'x' [while running 'P']")) is None
    )  # its message does not round-trip
