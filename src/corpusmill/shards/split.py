"""Which documents are held out of training: a seeded hash of each document's original id.

A held-out set only measures generalisation if no document in it, nor any copy of one, was trained on. The
`mix` stage repeats documents as copies with ids `<id>#<c>` and `mix_copy = c`, so the split is decided on the
original id, never on the copy's: every copy of a document lands in the same split as the document itself.
Like the shuffle, the decision is a function of (seed, original id) only, so it is the same on every engine
and partitioning, and `corpusmill verify` can recompute it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from corpusmill.core.hashing import hash64

Split = Literal["train", "heldout"]
TRAIN: Split = "train"
HELDOUT: Split = "heldout"
SPLITS: tuple[Split, ...] = (TRAIN, HELDOUT)
MIX_COPY = "mix_copy"  # the `mix` stage's column: 0 for an original, c for its copy `<id>#<c>`
_KEY_SPACE = 1 << 64


def heldout_threshold(fraction: float) -> int:
    """Hashes below this go to held-out: `fraction` of the 64-bit hash space."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"heldout_fraction must be in [0, 1), got {fraction}")
    return int(fraction * _KEY_SPACE)


def original_id(doc_id: str, copy: int) -> str:
    """The id of the document a `mix` copy repeats (`<id>#<c>` with copy c > 0 -> `<id>`)."""
    if copy <= 0:
        return doc_id
    suffix = f"#{copy}"
    if not doc_id.endswith(suffix):
        raise ValueError(
            f"document {doc_id!r} has {MIX_COPY} {copy} but its id does not end with {suffix!r}; "
            "copies written by the mix stage are named <id>#<copy>, so this row's origin cannot be found"
        )
    return doc_id[: -len(suffix)]


def is_heldout(seed: int, original: str, threshold: int) -> bool:
    """Whether the document with this original id (and so every copy of it) is held out."""
    return threshold > 0 and hash64(seed, "heldout", original) < threshold


def heldout_mask(seed: int, ids: Sequence[str], copies: Sequence[int] | None, threshold: int) -> np.ndarray:
    """Per row, whether it is held out; `copies` is the `mix_copy` column (None: every row an original)."""
    if threshold <= 0:
        return np.zeros(len(ids), dtype=bool)
    if copies is None:
        return np.fromiter((is_heldout(seed, i, threshold) for i in ids), dtype=bool, count=len(ids))
    return np.fromiter(
        (is_heldout(seed, original_id(i, int(c or 0)), threshold) for i, c in zip(ids, copies, strict=True)),
        dtype=bool,
        count=len(ids),
    )
