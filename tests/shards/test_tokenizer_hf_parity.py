"""Our tiktoken Qwen2.5 path and a Hugging Face tokenizer built from the same ranks give identical ids."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from corpusmill.shards.hf_tokenizer import build_hf_tokenizer
from corpusmill.shards.tokenizer import SPECIAL_TOKEN_IDS, VOCAB_SIZE, decode, encode_documents

NUM_PAGES = 200

TRICKY = [
    "Order 66 cost $1,234,567.89 in 2024; pi≈3.14159",
    "١٢٣ ٤٥٦ and ½ ² ³ Ⅻ",
    "Emoji: 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️ 🤖",
    "中文分词测试：你好，世界！日本語のテキスト。한국어 문장입니다.",
    "tabs\tand  double  spaces\n\n\n  indented\r\nCRLF\u00a0nbsp\u2003em-space \u3000ideographic",
    "trailing spaces   \n   \n",
    "   leading spaces",
    "<|im_start|>user\nhello<|im_end|>\n<|endoftext|>",
    "e\u0301 versus \u00e9, Å versus A\u030a",
    "don't WE'LL they'Re I'M y'all's",
    "def f(x):\n    return x**2  # comment\n",
    "",
]


@pytest.fixture(scope="module")
def hf() -> Tokenizer:
    return build_hf_tokenizer()


@pytest.fixture(scope="module")
def wcxb_texts(shared_data: Path) -> dict[str, str]:
    """Ground-truth main content of the first NUM_PAGES non-empty WCXB dev pages."""
    texts: dict[str, str] = {}
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json")):
        content = json.loads(path.read_text(encoding="utf-8"))["ground_truth"].get("main_content")
        if content and content.strip():
            texts[path.name] = content
        if len(texts) == NUM_PAGES:
            break
    assert len(texts) == NUM_PAGES
    return texts


def _ours(texts: list[str], **kwargs: object) -> list[list[int]]:
    return encode_documents(texts, add_eos=False, **kwargs)


def _theirs(hf: Tokenizer, texts: list[str], *, specials_as_text: bool) -> list[list[int]]:
    hf.encode_special_tokens = specials_as_text
    try:
        return [enc.ids for enc in hf.encode_batch(texts, add_special_tokens=False)]
    finally:
        hf.encode_special_tokens = False


def test_vocabulary_and_special_token_ids_match(hf: Tokenizer) -> None:
    assert hf.get_vocab_size() == VOCAB_SIZE
    for token, token_id in SPECIAL_TOKEN_IDS.items():
        assert hf.token_to_id(token) == token_id


def test_ids_identical_on_wcxb_ground_truth(hf: Tokenizer, wcxb_texts: dict[str, str]) -> None:
    names, texts = list(wcxb_texts), list(wcxb_texts.values())
    ours = _ours(texts)
    theirs = _theirs(hf, texts, specials_as_text=True)
    mismatched = [name for name, a, b in zip(names, ours, theirs, strict=True) if a != b]
    assert mismatched == [], f"ids differ on {len(mismatched)} pages: {mismatched[:10]}"
    assert sum(map(len, ours)) > 50_000  # a real amount of text was compared


@pytest.mark.parametrize("text", TRICKY)
def test_ids_identical_on_tricky_strings(hf: Tokenizer, text: str) -> None:
    ours = _ours([text])[0]
    assert _theirs(hf, [text], specials_as_text=True)[0] == ours
    assert hf.decode(ours, skip_special_tokens=False) == decode(ours)


def test_special_token_text_is_ordinary_in_both_by_default_and_special_when_allowed(hf: Tokenizer) -> None:
    text = "<|im_start|>user\nhi<|im_end|>"
    as_text = _ours([text])[0]
    assert SPECIAL_TOKEN_IDS["<|im_start|>"] not in as_text
    assert _theirs(hf, [text], specials_as_text=True)[0] == as_text
    as_special = _ours([text], allow_special=True)[0]
    assert as_special[0] == SPECIAL_TOKEN_IDS["<|im_start|>"]
    assert as_special[-1] == SPECIAL_TOKEN_IDS["<|im_end|>"]
    assert _theirs(hf, [text], specials_as_text=False)[0] == as_special
