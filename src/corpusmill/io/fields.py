"""Which source fields hold the text, id, URL, language and HTML of a record-shaped input (JSONL, Parquet).

A field name may be a dotted path into nested objects (`metadata.url`, as in Dolma files); a key or column
that literally contains the dot is preferred when it exists. Missing optional fields are normal and give
nulls (or a derived id); only the text field is required, unless an HTML field is named instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FieldMap:
    """Where each reader column comes from; None means the source has no such field."""

    text_field: str | None = "text"
    id_field: str | None = "id"
    url_field: str | None = "url"
    lang_field: str | None = None
    html_field: str | None = None

    def __post_init__(self) -> None:
        if not self.text_field and not self.html_field:
            raise ValueError("a record reader needs text_field or html_field to know where documents are")


def lookup(record: dict[str, Any], field: str | None) -> Any:
    """The value at `field` (a key or dotted path) in a decoded JSON object, or None."""
    if not field:
        return None
    if field in record:
        return record[field]
    value: Any = record
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def as_text(value: Any) -> str | None:
    """A string value as is; anything else (numbers, lists, null) as None."""
    return value if isinstance(value, str) else None


def as_id(value: Any) -> str | None:
    """An id from a string or integer value; None when absent, empty or of another type."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
