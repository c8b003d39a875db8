"""Environment variables changed for the duration of a block, then put back as they were.

Child processes read their settings from the environment they inherit (a local Ray instance's processes, an
object-store client's credentials): the variables are set while those start, and nothing of it stays in this
process afterwards.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping


@contextlib.contextmanager
def patched_environment(
    forced: Mapping[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    cleared: Iterable[str] = (),
) -> Iterator[None]:
    """`cleared` unset, `defaults` set where not set already, `forced` set whatever was; restored after."""
    forced, defaults, cleared = dict(forced or {}), dict(defaults or {}), tuple(cleared)
    saved = {key: os.environ.get(key) for key in [*cleared, *defaults, *forced]}
    for key in cleared:
        os.environ.pop(key, None)
    os.environ.update({key: value for key, value in defaults.items() if os.environ.get(key) is None})
    os.environ.update(forced)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
