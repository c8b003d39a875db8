"""Opaque cursors for paging the runs list, newest first.

A cursor names the last run of a page by its id; the next page is the runs with smaller ids. Ids only grow,
so runs created while a client pages through never shift a page or appear twice. The cursor is base64 so
clients treat it as a token rather than build one; a cursor that does not decode is the client's error.
"""

from __future__ import annotations

import base64
import binascii
import re

_FORM = re.compile(r"^run:([1-9][0-9]{0,17})$")


class BadCursor(ValueError):
    """The cursor was not made by this service."""


def encode_cursor(last_id: int) -> str:
    """The cursor of the page after the run `last_id`."""
    return base64.urlsafe_b64encode(f"run:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The run id a cursor names; BadCursor if it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor(cursor) from None
    match = _FORM.match(text)
    if match is None:
        raise BadCursor(cursor)
    return int(match.group(1))
