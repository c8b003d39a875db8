"""An operating-system error, wherever in a run it happened, as the one line a user can act on.

A full disk, a read-only file system or a missing permission is not a bug: its traceback (40 to 80 lines, and
more when it comes from a Ray or Beam worker) hides the two things that matter, which file and which error. So
the CLI prints `describe(error)` instead: the file (the one a temporary stood for, not the temporary), the
errno with its symbolic name, and what to do, which for a run is always to fix the cause and run the same
command again, since a run resumes where it stopped.

Engines hand errors back in their own wrappers. Ray raises a `RayTaskError` that is also an instance of the
original class, with the original as `.cause` and the worker's traceback (with terminal colour codes) as its
message; Beam's runner raises a `RuntimeError` whose message is the worker's traceback as text. `find_os_error`
sees through both: the Ray wrapper to its cause, Beam's text to the last `[Errno N]` line it holds. The Beam engine
goes further with `reported_error`, which rebuilds the exception a worker raised from that text, so that an error
the CLI reports as one line (a strict run's unreadable input, a stage's ValueError) is one line on Beam too.
"""

from __future__ import annotations

import errno
import os
import re
import sys

from corpusmill.core.atomic import target_of

_RESUME = "run the same command again to resume"

# errno -> (what could not be done to the file, what to do about it)
_ADVICE: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("cannot write", f"free space and {_RESUME}"),
    errno.EDQUOT: ("cannot write", f"free space or raise the disk quota, then {_RESUME}"),
    errno.EFBIG: (
        "cannot write",
        f"the file is larger than this process may write (ulimit -f) or the file system allows; "
        f"lift the limit and {_RESUME}",
    ),
    errno.EROFS: (
        "cannot write",
        f"the file system is read-only; make it writable (or write elsewhere) and {_RESUME}",
    ),
    errno.EACCES: ("cannot access", f"give this user access to it (or use another path) and {_RESUME}"),
    errno.EPERM: ("cannot access", f"give this user access to it (or use another path) and {_RESUME}"),
    errno.ENOTDIR: (
        "cannot use",
        f"a part of the path is a file, not a directory; move it aside and {_RESUME}",
    ),
    errno.EISDIR: ("cannot write", f"a directory is in the way; move it aside and {_RESUME}"),
    errno.EEXIST: ("cannot create", f"a file is in the way; move it aside and {_RESUME}"),
    errno.ENOENT: ("cannot find", "check the path and run the command again"),
    errno.EMFILE: ("cannot open", f"too many open files; raise the limit (ulimit -n) and {_RESUME}"),
    errno.ENFILE: ("cannot open", f"the system has too many open files; close some and {_RESUME}"),
    errno.EIO: ("cannot read or write", f"the device reported an I/O error; check it, then {_RESUME}"),
}
_DEFAULT_ADVICE = ("cannot access", f"fix the cause and {_RESUME}")

# The line that ends a Python traceback of an OSError, as text inside another error's message (Beam), with the
# runner's `[while running 'Step']` suffix: `OSError: [Errno 28] No space left on device: '/runs/x/part.parquet'`.
_ERRNO_LINE = re.compile(
    r"^\s*(?:[\w.]+\.)?\w+: \[Errno (?P<errno>\d+)\] (?P<rest>.*?)(?: \[while running .*\])?$", re.M
)
_FILENAMES = re.compile(r": '(?P<first>[^']*)'(?: -> '(?P<second>[^']*)')?$")

# A traceback as text: its frames are indented, and the exception's own `Type: message` lines follow them.
_TRACEBACK = "Traceback (most recent call last):\n"
# Beam tags what a step raised with the step's name: `Type: message [while running 'Process']`.
_STEP_TAG = re.compile(r" \[while running '[^\n]*'\]\Z")
_EXCEPTION = re.compile(r"(?P<type>[A-Za-z_][\w.]*)(?:: (?P<message>.*))?\Z", re.S)


def find_os_error(exc: BaseException) -> OSError | None:
    """The OSError behind `exc` (itself, a Ray task's cause, or one a Beam worker reported as text), if any."""
    exc = _unwrap_ray(exc)
    if isinstance(exc, OSError):
        return exc
    if isinstance(exc, RuntimeError):
        return _parse_reported(str(exc))
    return None


def reported_error(exc: BaseException) -> Exception | None:
    """The exception a Beam worker raised, rebuilt from the traceback text of Beam's `RuntimeError`, if it can be.

    The last exception in the text is what the worker raised, tagged with the step (`Type: message [while running
    'Step']`, or `RuntimeError: Type: message [...]` where Beam could not build the type again). Rebuilt is a class
    this process has imported whose message survives the round trip; an OSError gets its errno and files back.
    """
    if type(exc) is not RuntimeError:
        return None
    text = str(exc)
    start = text.rfind(_TRACEBACK)
    if start < 0:
        return None
    lines = text[start + len(_TRACEBACK) :].rstrip().splitlines()
    while lines and lines[0].startswith(" "):  # the frames
        lines.pop(0)
    found = _EXCEPTION.match(_STEP_TAG.sub("", "\n".join(lines)))
    if found is None:
        return None
    name, message = found["type"], found["message"] or ""
    inner = _EXCEPTION.match(message)
    if name == "RuntimeError" and inner is not None and _exception_class(inner["type"]) is not None:
        name, message = inner["type"], inner["message"] or ""
    cls = _exception_class(name)
    if cls is None:
        return None
    if issubclass(cls, OSError) and (os_error := _parse_reported(f"{cls.__name__}: {message}")) is not None:
        return os_error
    try:
        rebuilt = cls(message) if message else cls()
    except Exception:  # a class whose constructor takes something else: Beam's text stays the error
        return None
    return rebuilt if str(rebuilt) == message else None


def describe(exc: OSError) -> str:
    """One line: what could not be done to which file, the errno and its name, and what to do."""
    if exc.errno is None:  # raised by corpusmill with a message of its own, which already says it all
        return str(exc)
    verb, advice = _ADVICE.get(exc.errno, _DEFAULT_ADVICE)
    name = errno.errorcode.get(exc.errno, "")
    detail = f"[Errno {exc.errno}] {os.strerror(exc.errno)}" + (f" ({name})" if name else "")
    path = _path_of(exc)
    return f"{verb} {path}: {detail}; {advice}" if path else f"{verb}: {detail}; {advice}"


def _unwrap_ray(exc: BaseException) -> BaseException:
    """The original error of a Ray task (Ray's wrapper keeps it as `.cause`); anything else unchanged."""
    ray_exceptions = sys.modules.get("ray.exceptions")  # imported if Ray ran; a CLI without it pays nothing
    if ray_exceptions is None:
        return exc
    for _ in range(10):  # a task's error raised again by a task that awaited it nests one level per task
        cause = getattr(exc, "cause", None)
        if not isinstance(exc, ray_exceptions.RayTaskError) or not isinstance(cause, BaseException):
            break
        exc = cause
    return exc


def _parse_reported(text: str) -> OSError | None:
    """An OSError rebuilt from the last `SomeError: [Errno N] ...` line of a traceback given as text."""
    found = list(_ERRNO_LINE.finditer(text))
    if not found:
        return None
    code, rest = int(found[-1]["errno"]), found[-1]["rest"]
    names = _FILENAMES.search(rest)
    if names is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), names["first"], None, names["second"])


def _exception_class(name: str) -> type[Exception] | None:
    """An exception class by the name a traceback gives it (`ValueError`, `package.module.Error`), if imported."""
    module, _, qualname = name.rpartition(".")
    found = getattr(sys.modules.get(module or "builtins"), qualname, None)
    return found if isinstance(found, type) and issubclass(found, Exception) else None


def _path_of(exc: OSError) -> str | None:
    """The file an error is about: the destination of a two-path call (a rename), a temporary's target."""
    path = exc.filename2 if exc.filename2 is not None else exc.filename
    if path is None:
        return None
    path = os.fsdecode(path) if isinstance(path, bytes | os.PathLike) else str(path)
    return str(target_of(path))
