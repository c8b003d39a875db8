"""The annotation record: what the LLM said about one document, in one Arrow schema for the cache and distill.

An annotation is keyed by (document id, prompt version, model): the same document asked again with the same
prompt of the same model is answered from the cache, while a new prompt version or model asks afresh and
keeps both answers side by side. The text the model was shown travels with the answer, so `distill` trains
on exactly what was labelled and needs nothing but the annotation files. An answer that cannot be read is
stored with status `unparseable` and its raw text, never guessed into a score; transport failures that
survive the retries are stored as `error` and asked again by the next run.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, OVERALL

STATUS_OK: Final = "ok"
STATUS_UNPARSEABLE: Final = "unparseable"
STATUS_ERROR: Final = "error"
STATUSES: Final = (STATUS_OK, STATUS_UNPARSEABLE, STATUS_ERROR)

KEY_COLUMNS: Final = ("id", "prompt_version", "model")


def dimension_column(dimension: str) -> str:
    """`dim__<name>`: one quality dimension's 0-5 score in an annotation (`dim__overall` for the overall score)."""
    return f"dim__{dimension}"


ANNOTATION_SCHEMA: Final = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("prompt_version", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        # The document as shown to the model (possibly truncated), and the model's raw answer for audit.
        pa.field("text", pa.large_string()),
        pa.field("answer", pa.large_string()),
        # Scores in [0, 5]: probability-weighted over the score tokens when the backend gave logits, else the
        # integer the model wrote. Null when the answer was unparseable or lacked the dimension.
        *[pa.field(dimension_column(name), pa.float64()) for name in (*DIMENSION_NAMES, OVERALL)],
        pa.field("domain", pa.string()),
        # Probability of the chosen domain where the backend exposes it, else null.
        pa.field("domain_confidence", pa.float64()),
        pa.field("error", pa.string()),
    ]
)
