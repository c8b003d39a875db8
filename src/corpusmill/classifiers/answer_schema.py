"""The answer's JSON Schema, built from the taxonomy, for servers that constrain generation to a schema.

With `response_format: json_schema`, vLLM and llama.cpp only let the model write tokens that keep the answer
valid: every score an integer 0-5, a domain from the taxonomy, no key missing or extra. Answers then parse
instead of coming back `unparseable` or `off_taxonomy`. The schema is derived from the same lists as the
prompt's `answer_format` and the parser, so the three cannot drift apart, and its properties come in the order
the prompt shows: grammar-constrained decoders write keys in schema order, and an answer in the order the
model was asked for reads like the one it would have written unconstrained.
"""

from __future__ import annotations

from typing import Any

from corpusmill.classifiers.answers import DOMAIN_KEY, SCORE_KEYS
from corpusmill.classifiers.taxonomy import DOMAIN_NAMES, SCORE_MAX, SCORE_MIN

SCHEMA_NAME = "annotation"


def answer_schema() -> dict[str, Any]:
    """The JSON Schema of one answer: every score an integer in 0..5, the domain one of the taxonomy's."""
    properties: dict[str, Any] = {
        key: {"type": "integer", "minimum": SCORE_MIN, "maximum": SCORE_MAX} for key in SCORE_KEYS
    }
    properties[DOMAIN_KEY] = {"type": "string", "enum": list(DOMAIN_NAMES)}
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def json_schema_response_format() -> dict[str, Any]:
    """The OpenAI-style `response_format` asking for an answer that satisfies `answer_schema` exactly."""
    return {
        "type": "json_schema",
        "json_schema": {"name": SCHEMA_NAME, "strict": True, "schema": answer_schema()},
    }
