"""The same Qwen2.5 tokenizer as a Hugging Face `tokenizers.Tokenizer`, built offline from the bundled ranks.

Shards are written with tiktoken (`shards.tokenizer`), but trainers and users load Hugging Face tokenizers. This
builder turns the very same `qwen.tiktoken` ranks into a byte-level BPE so the two can be compared id for id
without downloading anything.

tiktoken merges, at every step, the adjacent pair whose concatenation has the lowest rank; a Hugging Face BPE
merges the pair listed first among its merges. Listing every split `(left, right)` of every token whose halves
are both in the vocabulary, ordered by the rank of the whole token, makes the two procedures pick the same
merge at every step. `ignore_merges` mirrors tiktoken's shortcut of emitting a whole pre-token that is itself in
the vocabulary. Pre-tokenizer regex, NFC normaliser and the 22 special tokens come from `shards.tokenizer`.

`tokenizers` ships with `transformers` (the `train` extra); it is not needed to write shards.
"""

from __future__ import annotations

import functools
import logging

from corpusmill.shards.tokenizer import (
    NUM_MERGEABLE_RANKS,
    PRE_TOKENIZER_PATTERN,
    SPECIAL_TOKEN_IDS,
    SPECIAL_TOKENS,
    load_mergeable_ranks,
)

try:
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "corpusmill.shards.hf_tokenizer needs the `tokenizers` package; "
        "install it with `pip install 'corpusmill[train]'` (or `pip install tokenizers`)"
    ) from exc

logger = logging.getLogger(__name__)


@functools.cache
def _byte_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte, the alphabet Hugging Face byte-level BPE vocabularies use."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _as_symbols(token: bytes) -> str:
    table = _byte_to_unicode()
    return "".join(table[b] for b in token)


def _vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary in byte-level symbols plus every merge that builds a token, ordered by that token's rank."""
    vocab = {_as_symbols(token): rank for token, rank in ranks.items()}
    ranked: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            left_rank, right_rank = ranks.get(left), ranks.get(right)
            if left_rank is not None and right_rank is not None:
                ranked.append((rank, left_rank, right_rank, left, right))
    ranked.sort()
    merges = [(_as_symbols(left), _as_symbols(right)) for _, _, _, left, right in ranked]
    return vocab, merges


def build_hf_tokenizer() -> Tokenizer:
    """A Hugging Face tokenizer with the exact ids of `shards.tokenizer`, for parity checks and for users."""
    ranks = load_mergeable_ranks()
    vocab, merges = _vocab_and_merges(ranks)
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, ignore_merges=True))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRE_TOKENIZER_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(
        [AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS]
    )
    for token, expected in SPECIAL_TOKEN_IDS.items():
        actual = tokenizer.token_to_id(token)
        if actual != expected:
            raise RuntimeError(
                f"special token {token} got id {actual} in the Hugging Face tokenizer, expected {expected}; "
                f"the vocabulary must hold exactly {NUM_MERGEABLE_RANKS} ranks"
            )
    logger.debug("built Hugging Face tokenizer: %d merges, %d ids", len(merges), tokenizer.get_vocab_size())
    return tokenizer
