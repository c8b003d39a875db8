"""The Qwen2.5 tokenizer gives the published ids, keeps special-token text ordinary, and round-trips."""

from __future__ import annotations

import unicodedata

import pytest

from corpusmill.shards.tokenizer import (
    EOS_ID,
    SPECIAL_TOKENS,
    VOCAB_SIZE,
    decode,
    encode_documents,
    qwen25_encoding,
)


def _encode(text: str, **kwargs: object) -> list[int]:
    return encode_documents([text], add_eos=False, **kwargs)[0]


def test_known_ids_from_the_reference_tokenizer() -> None:
    assert _encode("Hello, world!") == [9707, 11, 1879, 0]
    assert _encode("<|im_start|>user\n", allow_special=True) == [151644, 872, 198]


def test_special_token_text_in_documents_is_ordinary_by_default() -> None:
    ids = _encode("<|im_start|>user\n")
    assert 151644 not in ids
    assert all(i < 151643 for i in ids)
    assert decode(ids) == "<|im_start|>user\n"


def test_special_tokens_sit_at_their_fixed_ids() -> None:
    encoding = qwen25_encoding()
    assert len(SPECIAL_TOKENS) == 22
    assert encoding.n_vocab == VOCAB_SIZE == 151_665
    assert EOS_ID == 151_643
    # Pin the first, a middle and the last id independently of the table's order in the module.
    assert encoding.encode_single_token("<|endoftext|>") == 151643
    assert encoding.encode_single_token("<tool_call>") == 151657
    assert encoding.encode_single_token("<|fim_prefix|>") == 151659
    assert encoding.encode_single_token("<|file_sep|>") == 151664
    for offset, token in enumerate(SPECIAL_TOKENS):
        assert _encode(token, allow_special=True) == [151643 + offset]


def test_eos_is_appended_once_per_document() -> None:
    docs = encode_documents(["one", "two words", ""])
    assert [doc[-1] for doc in docs] == [EOS_ID] * 3
    assert docs[2] == [EOS_ID]
    assert all(doc.count(EOS_ID) == 1 for doc in docs)
    assert encode_documents(["one"], add_eos=False)[0][-1] != EOS_ID


@pytest.mark.parametrize(
    "text",
    [
        "Grüße aus Köln — ça va? Ñandú.",
        "日本語のテキストと中文混合，还有한국어 문장。",
        "Привет, мир! Γειά σου Κόσμε. مرحبا بالعالم",
        "emoji 👩‍👩‍👧 and tabs\t\tand\r\nnewlines\n\n\n  indented  ",
        "numbers 1234567890 and 3.14159e-10",
    ],
)
def test_multilingual_round_trip(text: str) -> None:
    ids = _encode(text)
    assert decode(ids) == unicodedata.normalize("NFC", text)


def test_decomposed_input_encodes_like_its_composed_form() -> None:
    composed = "café naïve Ångström Phở"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert _encode(decomposed) == _encode(composed)


def test_digits_are_split_one_by_one() -> None:
    # Qwen2's pre-tokenizer uses \p{N} (a single digit), unlike cl100k's runs of up to three digits.
    ids = _encode("2024")
    assert len(ids) == 4
    assert [decode([i]) for i in ids] == ["2", "0", "2", "4"]


def test_threaded_batch_matches_single_thread() -> None:
    texts = [f"document {i}: the quick brown fox jumps over the lazy dog" for i in range(50)]
    assert encode_documents(texts, num_threads=2) == encode_documents(texts, num_threads=1)


def test_invalid_thread_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="num_threads"):
        encode_documents(["x"], num_threads=0)


def test_vocabulary_fingerprint_is_recorded_in_manifests() -> None:
    from corpusmill.shards.manifest import ShardManifest
    from corpusmill.shards.tokenizer import vocabulary_sha256

    fingerprint = vocabulary_sha256()
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert ShardManifest.from_shards([]).tokenizer.vocab_sha256 == fingerprint
