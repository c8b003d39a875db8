"""Processes that a killed run's local Ray instance leaves behind, stopped when the next run starts one.

When a run's driver dies without shutting Ray down (SIGKILL, the OOM killer), its local instance's GCS, raylet
and workers go with it, but Ray's two per-node agents (the dashboard agent and the runtime-env agent, about
210 MB together) wait a minute or more on the health checks of a raylet that is gone. A run that starts its
own instance in the meantime would share the machine with them.

Their command lines are rewritten (`ray::DashboardAgent`), so they are recognised by what the run gave its
instance. Before starting one, the run registers itself (`register_owner`): a file named after its pid, in a
directory of this user's, holding its owner token `<pid>:<start time>` (a reused pid cannot match it). Every
process of the instance inherits the same token as `CORPUSMILL_RAY_OWNER` in its environment, and holds files
of the instance's session directory open (an agent keeps its logs open), whose name ends with the pid of the
process that started it. A process is a leftover when the token in its environment, or the registered token of
the session it holds open, names a process that no longer runs. Both ways are needed: an agent's new title can
overwrite part of its environment. Nothing else is touched: not a live run's instance, not a cluster joined
with `--address`, not a Ray instance that corpusmill did not start.

Processes are read from `/proc`, so this works on Linux and does nothing elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import tempfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

OWNER_VARIABLE = "CORPUSMILL_RAY_OWNER"
_PROC = Path("/proc")
# A file of a Ray session: `<temp dir>/session_<date>_<time>_<microseconds>_<pid of its starter>/...`.
_SESSION_FILE = re.compile(r"^/.*/session_[^/]*_(?P<pid>\d+)/")


def registry() -> Path:
    """Where runs that started a local instance register (one directory per user)."""
    user = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"corpusmill-ray-owners-{user}"


def owner_token(pid: int | None = None) -> str | None:
    """`<pid>:<start time>` of a process (this one by default), which a reused pid cannot match; None if gone."""
    pid = os.getpid() if pid is None else pid
    started = _start_time(pid)
    return None if started is None else f"{pid}:{started}"


def register_owner() -> str | None:
    """Record that this process starts a local instance; returns its token for the instance's environment."""
    token = owner_token()
    if token is not None:
        registry().mkdir(mode=0o700, exist_ok=True)
        (registry() / str(os.getpid())).write_text(token)
    return token


def unregister_owner() -> None:
    """Forget this process's registration (its instance was shut down)."""
    (registry() / str(os.getpid())).unlink(missing_ok=True)


def find_leftovers() -> list[int]:
    """Pids of processes started for a local instance whose owning run no longer runs."""
    if not _PROC.is_dir():
        return []
    registered: dict[str, str | None] = {}
    found = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        owner = _owner_in_environment(pid) or _owner_of_open_session(pid, registered)
        if owner is not None and not _alive(owner):
            found.append(pid)
    return sorted(found)


def stop_leftovers(grace_s: float = 2.0, wait_s: float = 10.0) -> list[int]:
    """Stop every leftover (SIGTERM, then SIGKILL after `grace_s`), wait until they are gone, and forget the
    registrations of runs that no longer run."""
    pids = {pid: _start_time(pid) for pid in find_leftovers()}
    if pids:
        logger.info(
            "stopping %d processes left by a killed run's local Ray instance: %s", len(pids), sorted(pids)
        )
        _signal_all(pids, signal.SIGTERM)
        if not _wait_gone(pids, grace_s):
            _signal_all(pids, signal.SIGKILL)
            if not _wait_gone(pids, wait_s):
                logger.warning("processes of a killed run's Ray instance are still running: %s", sorted(pids))
    _forget_dead_owners()
    return sorted(pids)


def _owner_in_environment(pid: int) -> str | None:
    """The owner token in a process's environment, if it has one we may read."""
    try:
        environ = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's
        return None
    prefix = f"{OWNER_VARIABLE}=".encode()
    for entry in environ.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode(errors="replace")
    return None


def _owner_of_open_session(pid: int, registered: dict[str, str | None]) -> str | None:
    """The registered owner of the Ray session a process holds files of (`registered` caches the lookups)."""
    fd_dir = _PROC / str(pid) / "fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return None
    for fd in fds:
        try:
            found = _SESSION_FILE.match(os.readlink(fd_dir / fd))
        except OSError:
            continue
        if found is None:
            continue
        starter = found["pid"]
        if starter not in registered:
            try:
                registered[starter] = (registry() / starter).read_text().strip() or None
            except OSError:  # not started by a corpusmill run
                registered[starter] = None
        if registered[starter] is not None:
            return registered[starter]
    return None


def _forget_dead_owners() -> None:
    with contextlib.suppress(OSError):
        for path in registry().iterdir():
            with contextlib.suppress(OSError):
                if not _alive(path.read_text().strip()):
                    path.unlink()


def _alive(token: str) -> bool:
    pid, _, started = token.partition(":")
    return pid.isdigit() and started != "" and owner_token(int(pid)) == token


def _start_time(pid: int) -> str | None:
    """When a running (not zombie) process started, in clock ticks since boot."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()  # after the command name, which may hold spaces
    if not fields or fields[0] == "Z":
        return None
    return fields[19]


def _signal_all(pids: dict[int, str | None], sig: signal.Signals) -> None:
    for pid, started in pids.items():
        if started is not None and _start_time(pid) == started:  # still that process, not a reused pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _wait_gone(pids: dict[int, str | None], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        if all(started is None or _start_time(pid) != started for pid, started in pids.items()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
