"""A long-lived child process that runs a fragile function on one document at a time.

HTML extraction is the one step of the pipeline that can hang (pathological markup makes lxml or the
extractor's heuristics spin), blow up memory or crash in C code. Running it in-process would let a single bad
page stall or kill a whole engine worker, so it runs in a child process instead, and the parent enforces a
per-document deadline:

- the parent sends one payload over a `Pipe` and waits at most `timeout_s` for the answer;
- past the deadline the child is killed and the document reported as `timeout`;
- if the child dies (segfault, OOM killer, `MemoryError`, which the child turns into an exit because the heap
  may be unusable afterwards) the document is reported as `crash`;
- an ordinary exception inside the function is reported as `error` and the child keeps serving;
- a function that finds its input was cut short (raising `Truncated`) has it reported as `truncated`, and the
  child keeps serving.

After a timeout or crash the child is started again on the next document, so the cost of a bad page is one
restart, not a lost worker. The child is a fresh interpreter (`python -c`, connected by a socket pair), never a
fork: the parent may be a multi-threaded engine worker (Ray), and forking a multi-threaded process can
deadlock the child on locks held by other threads. It is not started through multiprocessing's "spawn"
either, because that re-imports the parent's main module in the child: inside a Ray worker that module is
Ray's worker script, which imports all of Ray (0.7 CPU-seconds per child, measured) for a process that only
ever runs the extractor. The function is passed in (a picklable function of an importable module, sent to
the child with the parent's `sys.path`), which is what lets tests exercise the timeout and crash paths with
functions that really sleep or really exit.

Payloads travel as UTF-8 bytes over the pipe (`send_bytes`), not pickled: the stage reads the HTML from
Arrow as bytes, so the parent never builds a Python string of a page only to have pickle encode it again;
the child decodes once and the function gets a `str`, the same one a pickled string would have become.

This module stays free of heavy imports so the child only loads what the function itself needs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import socket
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal

logger = logging.getLogger(__name__)

ExtractFn = Callable[[str, Mapping[str, Any]], str | None]
Status = Literal["ok", "timeout", "crash", "error", "truncated"]

# Exit code the child uses after a MemoryError: distinguishes it from a signal in the crash detail.
MEMORY_ERROR_EXIT = 75
_READY = "ready"
# A child whose pipe reported EOF is normally already exiting: wait this long for its real exit status.
_DYING_GRACE_S = 2.0
# Whether this process's trafilatura has been adjusted (`_prepare_trafilatura`).
_prepared = False


@dataclass(frozen=True)
class Outcome:
    """What became of one payload: the function's result, or why there is none."""

    status: Status
    value: str | None = None
    detail: str | None = None


class Truncated(Exception):
    """Raised by a function whose parser kept only part of its input: a partial page must not pass as whole.

    It is the input's fault, not the function's, so it gets its own outcome (`truncated`, the message as the
    detail) instead of `error`, and the child keeps serving.
    """


def trafilatura_text(html: str, options: Mapping[str, Any]) -> str | None:
    """Default extraction function: a page's main text by trafilatura (here, so the child stays lean).

    Raises `Truncated` for a page nested deeper than the HTML parser can follow (see
    `corpusmill.filters.html_depth`).
    """
    import trafilatura

    if not _prepared:
        _prepare_trafilatura()
    return trafilatura.extract(html, output_format="txt", **options)


def _prepare_trafilatura() -> None:
    """Import and adjust trafilatura for this process, once; the child does it before it reports ready.

    The adjustments change no output: whole-page parsing (which refuses the pages it would cut), a C-level
    element class lookup, and Python equivalents of its costliest XPath expressions (`trafilatura_xpaths`).
    Then the one thing trafilatura builds for itself on first use (`_load_justext_stoplist`).
    """
    global _prepared
    from corpusmill.filters import trafilatura_xpaths
    from corpusmill.filters.html_depth import install_whole_page_parsing

    if _prepared:
        return
    install_whole_page_parsing()
    _install_element_lookup()  # on the parser just installed
    trafilatura_xpaths.install()
    _load_justext_stoplist()
    _prepared = True


def _load_justext_stoplist() -> None:
    """Build, once per process, the stop-word list trafilatura's jusText fallback uses for a page without a
    target language.

    trafilatura builds it (every word of jusText's 100 stop lists) the first time a page needs the fallback,
    and jusText turns it into a frozen set, cached, on its first use: 0.11 CPU-seconds together (measured),
    paid in the middle of some page. Built here, it counts as the sandbox's start, like the imports; each
    engine worker's sandbox pays it once either way. The list is the one trafilatura would build.
    """
    from justext.core import define_stoplist
    from trafilatura import external

    define_stoplist(external.JT_STOPLIST or external.jt_stoplist_init())


# Run by the child before it reports ready (see `_serve`).
trafilatura_text.prepare = _prepare_trafilatura  # type: ignore[attr-defined]


def resiliparse_text(html: str, options: Mapping[str, Any]) -> str | None:
    """The other extraction function: a page's text by resiliparse's `extract_plain_text` with `options`.

    It lives here for the same reason as `trafilatura_text`: the child then imports only resiliparse. It runs
    in the sandbox although resiliparse is C and fast, because its main-content heuristics are not linear in
    the page's nesting depth (a page of 9,000 nested elements took 1.3 CPU-seconds, one of 50,000 two
    minutes): the deadline must hold for it too. Its parser has no depth limit, so it never reports
    `Truncated`.
    """
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, **options)


def _prepare_resiliparse() -> None:
    """Import resiliparse's extractor, so that the import counts as the sandbox's start, not as a page's."""
    import resiliparse.extract.html2text  # noqa: F401


resiliparse_text.prepare = _prepare_resiliparse  # type: ignore[attr-defined]


def _install_element_lookup() -> None:
    """Give lxml's HTML parsers an element-class lookup done in C, with the classes their own lookup picks.

    `lxml.html` decides the Python class of every element proxy it hands out (`FormElement` for `<form>`,
    `HtmlElement` for most tags, ...) by calling a Python method, `HtmlElementClassLookup.lookup`, each time;
    trafilatura and its fallbacks walk whole trees many times over, so that call alone is several percent of
    the extraction time. lxml's namespace lookup, keyed by the same lower-case tag names, with a default
    lookup behind it for every other tag, comment, processing instruction and entity, makes the same choices
    without leaving C. (Tag names from the HTML parser are always lower-case, which is all the original
    lookup's `name.lower()` is there for.) It is installed on the two parsers trafilatura and its fallbacks
    parse with, in the process that extracts, which is the sandbox's child.
    """
    import lxml.html
    import trafilatura.utils
    from lxml import etree

    lookup = etree.ElementNamespaceClassLookup(
        etree.ElementDefaultClassLookup(
            element=lxml.html.HtmlElement,
            comment=lxml.html.HtmlComment,
            pi=lxml.html.HtmlProcessingInstruction,
            entity=lxml.html.HtmlEntity,
        )
    )
    tags = lookup.get_namespace(None)
    for tag, element_class in lxml.html.HtmlElementClassLookup._default_element_classes.items():
        tags[tag] = element_class
    for parser in (trafilatura.utils.HTML_PARSER, lxml.html.html_parser):
        parser.set_element_class_lookup(lookup)


def _raise_oom_priority() -> None:
    # Ask the kernel to pick this child first when memory runs out, rather than the engine worker.
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000\n")
    except OSError:
        pass


def serve_child() -> None:
    """Entry point of the child interpreter: take the function from the parent, then serve payloads.

    The first message is the parent's `sys.path`, the second the pickled function and options (a function
    whose module cannot be imported here fails with a traceback on stderr and exit status 1).
    """
    conn = Connection(int(sys.argv[1]))
    sys.path[:] = conn.recv()
    fn, options = pickle.loads(conn.recv_bytes())
    _serve(conn, fn, options)


# Allocations between young-generation collections in the child (Python's default is 700).
YOUNG_COLLECTION_THRESHOLD = 20_000


def _settle_heap() -> None:
    """Set the child's garbage collector for a life of one function over many documents.

    What the child has loaded by now (the extractor's modules) lives as long as the child: frozen
    (`gc.freeze`), full collections no longer traverse it. Extraction allocates many short-lived objects
    per page, and a young collection every 700 allocations traverses them over and over; every
    `YOUNG_COLLECTION_THRESHOLD` does it far less often. Measured over 300 WCXB pages with trafilatura,
    alternating runs: the child's CPU time 2.8% lower, its peak memory unchanged (113 MB); with no
    collector at all it would be 3.8% lower, which is what garbage collection cost there in all.
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)


def _serve(conn: Connection, fn: ExtractFn, options: Mapping[str, Any]) -> None:
    """Child main loop: answer payloads until the parent closes its end of the pipe.

    A function may carry a `prepare()` attribute (as `trafilatura_text` does) that the child calls before it
    reports ready: heavy imports then happen while the sandbox starts, so they count as the stage's set-up
    rather than as the first document's extraction, and one that fails (a missing package) fails the start,
    with its traceback on stderr, instead of every document.
    """
    _raise_oom_priority()
    # Per-page warnings of the extractor would flood the worker's stderr; real failures come back as outcomes.
    logging.getLogger("trafilatura").setLevel(logging.ERROR)
    prepare = getattr(fn, "prepare", None)
    if callable(prepare):
        prepare()
    _settle_heap()
    conn.send((_READY, None))
    while True:
        try:
            payload = conn.recv_bytes().decode("utf-8", errors="surrogatepass")
        except (EOFError, OSError):
            return
        try:
            result = fn(payload, options)
        except MemoryError:
            os._exit(MEMORY_ERROR_EXIT)
        except Truncated as exc:
            conn.send(("truncated", str(exc)))
            continue
        except Exception as exc:
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
            continue
        if result is not None and not isinstance(result, str):
            conn.send(
                ("error", f"extraction function returned {type(result).__name__}, expected str or None")
            )
            continue
        conn.send(("ok", result))


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "worker died (exit status unknown)"
    if exitcode == MEMORY_ERROR_EXIT:
        return "worker ran out of memory (MemoryError)"
    if exitcode < 0:
        return f"worker killed by signal {-exitcode}"
    return f"worker exited with status {exitcode}"


_CHILD_COMMAND = "from corpusmill.filters.sandbox import serve_child; serve_child()"


class _Child:
    """One running child process and the parent's end of its socket."""

    def __init__(self, fn: ExtractFn, options: Mapping[str, Any]) -> None:
        # Pickled before anything starts: an unpicklable function fails here, with no process to clean up.
        job = pickle.dumps((fn, dict(options)))
        parent_sock, child_sock = socket.socketpair()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _CHILD_COMMAND, str(child_sock.fileno())],
                pass_fds=[child_sock.fileno()],
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            parent_sock.close()
            child_sock.close()
            raise
        # Close our copy of the child's end so that the child's death shows up as EOF on ours.
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        with contextlib.suppress(OSError):  # a child that died at once is reported by the ready check
            self.conn.send(list(sys.path))
            self.conn.send_bytes(job)

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = 0.0) -> int | None:
        """Kill the child if still running (after `grace_s` to exit by itself); return its exit code."""
        with contextlib.suppress(OSError):
            self.conn.close()
        if grace_s > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=grace_s)
        if self.is_alive():
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        return self.process.returncode


def _stop_child(holder: list[_Child | None]) -> None:
    # Finalizer: must not reference the Sandbox itself, or the Sandbox would never be collected.
    child = holder[0]
    holder[0] = None
    if child is not None:
        child.stop()


class Sandbox:
    """Runs `fn(payload, options)` in a restartable child process with a per-payload deadline."""

    def __init__(
        self,
        fn: ExtractFn = trafilatura_text,
        options: Mapping[str, Any] | None = None,
        timeout_s: float = 10.0,
        start_timeout_s: float = 60.0,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.fn = fn
        self.options = dict(options or {})
        self.timeout_s = timeout_s
        self.start_timeout_s = start_timeout_s
        self.starts = 0
        self._lock = threading.Lock()
        # A one-slot list shared with the finalizer, so the child is reaped at garbage collection or exit.
        self._holder: list[_Child | None] = [None]
        self._finalizer = weakref.finalize(self, _stop_child, self._holder)

    @property
    def pid(self) -> int | None:
        """Process id of the running child, if any (tests and diagnostics)."""
        child = self._holder[0]
        return child.pid if child is not None else None

    @property
    def alive(self) -> bool:
        """Whether a child is running now."""
        child = self._holder[0]
        return child is not None and child.is_alive()

    def start(self) -> None:
        """Start the child if none is running; fail loudly if it cannot even start."""
        with self._lock:
            self._ensure_child()

    def run(self, payload: str | bytes) -> Outcome:
        """Send one payload (text, or text as UTF-8 bytes) and wait for its outcome; never raises."""
        data = payload if isinstance(payload, bytes) else payload.encode("utf-8", errors="surrogatepass")
        with self._lock:
            child = self._ensure_child()
            try:
                child.conn.send_bytes(data)
            except (OSError, EOFError):
                return self._crashed(child)
            if not child.conn.poll(self.timeout_s):
                if not child.is_alive():
                    return self._crashed(child)
                self._discard()
                logger.warning("extraction worker pid %s timed out; it will be restarted", child.pid)
                return Outcome("timeout", detail=f"no result within {self.timeout_s:g} s")
            try:
                status, value = child.conn.recv()
            except (EOFError, OSError):
                return self._crashed(child)
            if status == "ok":
                return Outcome("ok", value=value)
            return Outcome("truncated" if status == "truncated" else "error", detail=value)

    def stop(self) -> None:
        """Stop the child (if any); a later `run` starts a new one."""
        with self._lock:
            self._discard()

    def close(self) -> None:
        """Stop the child for good (same as `stop`; named for use with contextlib.closing)."""
        self.stop()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _ensure_child(self) -> _Child:
        child = self._holder[0]
        if child is not None and child.is_alive():
            return child
        if child is not None:
            self._discard()
        child = _Child(self.fn, self.options)
        self._holder[0] = child
        self.starts += 1
        ready = False
        try:
            if child.conn.poll(self.start_timeout_s):
                message = child.conn.recv()
                ready = isinstance(message, tuple) and message[0] == _READY
        except (EOFError, OSError):
            ready = False
        if not ready:
            exitcode = self._discard(grace_s=_DYING_GRACE_S)
            raise RuntimeError(
                f"the extraction worker ({getattr(self.fn, '__qualname__', self.fn)!r}) did not start within "
                f"{self.start_timeout_s:g} s ({_describe_exit(exitcode)}); its traceback is on stderr. Check "
                "that the function is defined at the top level of a module that imports cleanly in a fresh "
                "interpreter (not in the main script)"
            )
        logger.debug("extraction worker started, pid %s", child.pid)
        return child

    def _crashed(self, child: _Child) -> Outcome:
        exitcode = self._discard(grace_s=_DYING_GRACE_S)
        detail = _describe_exit(exitcode)
        logger.warning("extraction worker pid %s died: %s; it will be restarted", child.pid, detail)
        return Outcome("crash", detail=detail)

    def _discard(self, grace_s: float = 0.0) -> int | None:
        child = self._holder[0]
        self._holder[0] = None
        return child.stop(grace_s) if child is not None else None


class SandboxedStage:
    """The life of a stage whose work runs in a `Sandbox` child (`self._sandbox`), as a mixin before MapStage.

    The child is stopped when the stage closes and when it is collected, and never travels: engines ship stages
    to workers by pickling, and a running process cannot be pickled, so a shipped copy sets itself up again.
    """

    _sandbox: Sandbox | None = None

    def close(self) -> None:
        """Stop the worker process; `setup()` starts a new one."""
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        super().close()  # type: ignore[misc]  # the stage class this is mixed into

    def __del__(self) -> None:
        # The sandbox's own finalizer also reaps the child; this only makes the intent explicit.
        with contextlib.suppress(Exception):  # at interpreter shutdown modules may already be gone
            self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_sandbox"] = None
        state["_ready"] = False  # MapStage's set-up flag: the copy sets up again where it lands
        return state
