"""Stable 64-bit hashes of document ids: the one source of randomness for shuffling, sampling and mixing.

Decisions that must come out the same on every engine, worker count and partitioning (which shard a document
lands in, whether it is sampled, how many copies a mixture keeps) are functions of the document id and a seed
only. Python's `hash()` is salted per process, so it cannot serve; BLAKE2b is fast, in the standard library
and stable across platforms and releases.

Composite keys are encoded without ambiguity: every part is written with its type and its length before its
bytes, so `("doc:1",)` and `("doc", 1)`, or `"1"` and `1`, never hash alike (a plain separator join made
`hash64(0, "doc:1") == hash64(0, "doc", 1)`, and ids may contain any separator).
"""

from __future__ import annotations

import hashlib


def encode_key(*parts: str | int) -> bytes:
    """The unambiguous byte encoding of a composite key: per part, a type tag, the length, the bytes."""
    out = bytearray()
    for part in parts:
        if isinstance(part, bool) or not isinstance(part, str | int):
            raise TypeError(f"hash key parts are str or int, got {type(part).__name__}: {part!r}")
        if isinstance(part, str):
            data, tag = part.encode("utf-8"), b"s"
        else:
            data, tag = str(part).encode("ascii"), b"i"
        out += tag + len(data).to_bytes(8, "little") + data
    return bytes(out)


def hash64(seed: int, *parts: str | int) -> int:
    """An unsigned 64-bit hash of `seed` and `parts` (e.g. a document id and a copy number)."""
    digest = hashlib.blake2b(encode_key(seed, *parts), digest_size=8).digest()
    return int.from_bytes(digest, "big")
