"""Stable 64-bit hashes of document ids: the one source of randomness for shuffling, sampling and mixing.

Decisions that must come out the same on every engine, worker count and partitioning (which shard a document
lands in, whether it is sampled, how many copies a mixture keeps) are functions of the document id and a seed
only. Python's `hash()` is salted per process, so it cannot serve; BLAKE2b is fast, in the standard library
and stable across platforms and releases.
"""

from __future__ import annotations

import hashlib


def hash64(seed: int, *parts: str | int) -> int:
    """An unsigned 64-bit hash of `seed` and `parts` (e.g. a document id and a copy number)."""
    text = ":".join(str(part) for part in (seed, *parts))
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")
