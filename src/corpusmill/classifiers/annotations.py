"""The annotation record: what the LLM said about one document, in one Arrow schema for the cache and distill.

An annotation is keyed by (document id, prompt version, model): the same document asked again with the same
prompt of the same model is answered from the cache, while a new prompt version or model asks afresh and
keeps both answers side by side. The text the model was shown travels with the answer, so `distill` trains
on exactly what was labelled and needs nothing but the annotation files.

Every answer ends with one status. `ok` answers carry scores and a domain. The other final statuses keep the
raw answer for audit and are not asked again, since asking again would get the same answer: `unparseable`
(not the JSON asked for, never guessed into a score), `truncated` (the model was still writing when it hit its
token limit, even after one retry with twice the limit) and `off_taxonomy` (a well-formed answer whose domain
is not one of ours: the scores are kept, the domain is not, the name the model wrote is in `error`). Only
`error`, a transport failure that survived the retries, is asked again by the next run.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, OVERALL

STATUS_OK: Final = "ok"
STATUS_UNPARSEABLE: Final = "unparseable"
STATUS_TRUNCATED: Final = "truncated"
STATUS_OFF_TAXONOMY: Final = "off_taxonomy"
STATUS_ERROR: Final = "error"
STATUSES: Final = (STATUS_OK, STATUS_UNPARSEABLE, STATUS_TRUNCATED, STATUS_OFF_TAXONOMY, STATUS_ERROR)

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
        # integer the model wrote. Null when the answer was unparseable, truncated or lacked the dimension.
        *[pa.field(dimension_column(name), pa.float64()) for name in (*DIMENSION_NAMES, OVERALL)],
        pa.field("domain", pa.string()),
        # Probability of the chosen domain where the backend exposes it, else null.
        pa.field("domain_confidence", pa.float64()),
        pa.field("error", pa.string()),
    ]
)
