"""The `tokenize` stage: Qwen2.5 token ids for every kept document, ready for the shard writer.

Tokens travel as an Arrow `list<int32>` column so the writer can hand each document to the Megatron
writer as a zero-copy slice of one flat buffer. Only rows still alive are tokenised: rows an earlier stage
dropped keep null tokens, which saves the most expensive per-token work on text that will never be
written. Blank text cannot make a training document, so it is marked `empty_text` instead of raising.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from corpusmill.core import schema
from corpusmill.core.stage import MapStage, StageParams, register
from corpusmill.shards.tokenizer import encode_documents, qwen25_encoding

TOKENS_FIELD = pa.field("tokens", pa.list_(pa.int32()))
TOKEN_COUNT_FIELD = pa.field("token_count", pa.int64())


class TokenizeParams(StageParams):
    """How documents are tokenised."""

    allow_special: bool = False
    add_eos: bool = True
    num_threads: int = Field(default=1, ge=1)


@register
class TokenizeStage(MapStage):
    """Adds `tokens` (Qwen2.5 ids, EOS-terminated) and `token_count` to each kept document."""

    name = "tokenize"
    Params = TokenizeParams
    requires = ("text",)

    def output_fields(self) -> list[pa.Field]:
        """The two columns this stage adds."""
        return [TOKENS_FIELD, TOKEN_COUNT_FIELD]

    def _setup(self) -> None:
        qwen25_encoding()  # load the vocabulary once per worker, not inside the first batch

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Tokenise the batch's kept, non-blank documents; mark blank ones `empty_text`."""
        self.setup()
        params: TokenizeParams = self.params  # type: ignore[assignment]
        if schema.TEXT not in batch.schema.names:
            raise KeyError(f"tokenize needs a `{schema.TEXT}` column; the batch has {batch.schema.names}")
        texts = batch.column(schema.TEXT).to_pylist()
        already_dropped = (
            batch.column(schema.DROP_REASON).is_valid().to_pylist()
            if schema.DROP_REASON in batch.schema.names
            else [False] * batch.num_rows
        )
        reasons: list[str | None] = [None] * batch.num_rows
        details: list[str | None] = [None] * batch.num_rows
        todo: list[int] = []
        for row, (text, dropped) in enumerate(zip(texts, already_dropped, strict=True)):
            if dropped:
                continue
            if text is None or not text.strip():
                reasons[row] = "empty_text"
                details[row] = "text is null" if text is None else "text is blank"
                self.stats.incr("empty_text")
                continue
            todo.append(row)

        encoded = encode_documents(
            [texts[row] for row in todo],
            allow_special=params.allow_special,
            add_eos=params.add_eos,
            num_threads=params.num_threads,
        )
        tokens, counts = _to_arrow(batch.num_rows, todo, encoded)
        for ids in encoded:
            self.stats.observe("token_count", len(ids))
        self.stats.incr("tokens", sum(len(ids) for ids in encoded))
        self.stats.incr("documents", len(encoded))

        batch = schema.set_column(batch, TOKENS_FIELD, tokens)
        batch = schema.set_column(batch, TOKEN_COUNT_FIELD, counts)
        if any(reason is not None for reason in reasons):
            batch = schema.mark_drops(batch, reasons, details)
        return batch


def _to_arrow(num_rows: int, rows: list[int], encoded: list[list[int]]) -> tuple[pa.Array, pa.Array]:
    """Pack per-row id lists into one list<int32> array (null where a row was not tokenised)."""
    lengths = np.zeros(num_rows, dtype=np.int64)
    valid = np.zeros(num_rows, dtype=bool)
    for row, ids in zip(rows, encoded, strict=True):
        lengths[row] = len(ids)
        valid[row] = True
    offsets = np.zeros(num_rows + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(
            f"a batch of {offsets[-1]} tokens exceeds Arrow's list<int32> limit; use smaller batches"
        )
    pieces = [np.asarray(ids, dtype=np.int32) for ids in encoded]
    flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    tokens = pa.ListArray.from_arrays(
        pa.array(offsets.astype(np.int32)), pa.array(flat, type=pa.int32()), mask=pa.array(~valid)
    )
    counts = pa.array(lengths, type=pa.int64(), mask=~valid)
    return tokens, counts
