"""SpacyWords: datatrove's words, sentences and spans for real pages and awkward strings, at a lower cost."""

from __future__ import annotations

import gzip
import importlib.util
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import trafilatura
from datatrove.utils.word_tokenizers import WordTokenizer, load_tokenizer_assignments
from spacy.symbols import IDS

from corpusmill.filters.spacy_words import SpacyWords, _hidden

AWKWARD = [
    "",
    " ",
    "\n\n  \t",
    "Don't stop: it's 5 p.m. in the U.S.A., isn't it?!",
    "Mr. O'Neill paid $3.50 (incl. VAT) for 2x e-mails :) <3 -- ok...",
    "non\u00a0breaking\u2003spaces\u3000and\u200bzero width",
    "emoji 😀👍🏽 and café naïve façade Ærø",
    "see http://example.com/a?b=c&d=e, www.example.org. or mail a.b@example.com;",
    "C++ and C# > Java; f(x) = x^2 + 1 — 50% off!!!",
    "• bullet one\n- bullet two\n… ellipsis…\n\n\nnew paragraph",
    "a\rb\r\nc\x0bd\x0ce",
    "1,000,000.00 3/4 12:30 2024-05-01 #hashtag @user",
]


def _fresh(code: str = "eng_Latn") -> WordTokenizer:
    # A datatrove tokenizer of our own, not the process-wide cached one, so histories do not mix.
    return load_tokenizer_assignments()[code]()


@pytest.fixture(scope="module")
def page_texts(shared_data: Path) -> list[str]:
    """Main text of 8 real pages spread over the WCXB dev set."""
    paths = sorted((shared_data / "wcxb-dev" / "html").glob("*.html.gz"))
    texts = []
    for path in paths[:: len(paths) // 8][:8]:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            text = trafilatura.extract(handle.read())
        if text:
            texts.append(text)
    assert len(texts) >= 6
    return texts


def _assert_same(reference: WordTokenizer, fast: SpacyWords, texts: list[str]) -> None:
    for text in texts:
        assert fast.word_tokenize(text) == reference.word_tokenize(text), text[:60]
        assert fast.span_tokenize(text) == reference.span_tokenize(text), text[:60]
        assert fast.sent_tokenize(text) == reference.sent_tokenize(text), text[:60]


def test_same_words_sentences_and_spans_as_datatrove(page_texts: list[str]) -> None:
    reference, fast = _fresh(), SpacyWords(_fresh())
    assert fast.fast
    lines = [line for text in page_texts for line in text.splitlines()]
    symbols = [f"a {name} b" for name in IDS if name and name != "IS_ALPHA"]
    # twice over, so the second round meets lexemes kept from the first
    _assert_same(reference, fast, page_texts + AWKWARD + lines + symbols)
    _assert_same(reference, fast, page_texts[::-1])
    assert fast.rebuilds == 0 and fast.lexemes > 1000  # the vocabulary was kept, not rebuilt per text


def test_vocabulary_is_rebuilt_past_its_bound(page_texts: list[str]) -> None:
    reference, fast = _fresh(), SpacyWords(_fresh(), max_lexemes=1500)
    _assert_same(reference, fast, page_texts[:4])
    assert fast.rebuilds >= 1
    assert fast.lexemes <= 1500 + max(len(reference.word_tokenize(text)) for text in page_texts[:4])


def test_is_alpha_texts_follow_datatrove_history() -> None:
    # datatrove keeps IS_ALPHA the first time a process tokenizes it and deletes it ever after; texts with
    # the string go to the wrapped datatrove tokenizer, so the same sequence gives the same words.
    texts = ["a IS_ALPHA b", "plain text", "IS_ALPHA again and IS_ALPHA", "c IS_ALPHA d"]
    reference, fast = _fresh(), SpacyWords(_fresh())
    expected = [reference.word_tokenize(text) for text in texts]
    assert [fast.word_tokenize(text) for text in texts] == expected
    assert expected[0] == ["a", "IS_ALPHA", "b"] and expected[3] == ["c", "d"]


class _Letters(WordTokenizer):
    """A tokenizer that is not spaCy's: one word per character."""

    def word_tokenize(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(0, len(text))]


def test_other_tokenizers_are_used_as_they_are() -> None:
    words = SpacyWords(_Letters("xx"))
    assert not words.fast and words.lexemes == 0
    assert words.word_tokenize("ab c") == ["a", "b", "c"]
    assert words.span_tokenize("ab c") == [(0, 4)] and words.sent_tokenize("ab c") == ["ab c"]
    japanese = SpacyWords(_fresh("jpn_Jpan")) if importlib.util.find_spec("sudachipy") else None
    assert japanese is None or not japanese.fast


def test_hidden_module_is_hidden_from_this_thread_only() -> None:
    name = "colorsys"
    saved = sys.modules.pop(name, None)
    try:
        seen_elsewhere: list[bool] = []
        with _hidden(name):
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module(name)
            other = threading.Thread(
                target=lambda: seen_elsewhere.append(bool(importlib.import_module(name)))
            )
            other.start()
            other.join()
        assert seen_elsewhere == [True]
        assert importlib.import_module(name)
    finally:
        if saved is not None:
            sys.modules[name] = saved


def _run_in_fresh_process(script: str) -> None:
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_spacy_is_imported_without_torch_which_still_imports_later() -> None:
    script = (
        "import sys\n"
        "from corpusmill.filters.spacy_words import import_spacy\n"
        "import_spacy()\n"
        "import spacy\n"
        "assert 'torch' not in sys.modules\n"
        "assert [t.text for t in spacy.blank('en').tokenizer(\"don't\")] == ['do', \"n't\"]\n"
        "import torch\n"
        "assert int(torch.ones(3).sum()) == 3\n"
    )
    _run_in_fresh_process(script)


def test_spacy_is_imported_without_its_command_line_which_still_works_later() -> None:
    script = (
        "import sys\n"
        "from corpusmill.filters.spacy_words import import_spacy\n"
        "import_spacy()\n"
        "import spacy\n"
        "assert not {'spacy.cli', 'spacy.cli.info', 'typer', 'weasel'} & set(sys.modules), 'imported'\n"
        "assert [t.text for t in spacy.blank('en').tokenizer('a b!')] == ['a', 'b', '!']\n"
        "assert spacy.info()['spacy_version'] == spacy.__version__\n"
        "import spacy.cli\n"
        "from spacy.cli.info import info\n"
        "assert callable(spacy.cli.setup_cli) and info()['spacy_version'] == spacy.__version__\n"
    )
    _run_in_fresh_process(script)


# Texts where a special case's match runs across a single space: `x:) )` is `x : ) )` as a whole (the
# cross-space match of `:))` displaces the `:)` inside `x:)`), `x :) )` chunk by chunk.
ACROSS_A_SPACE = ["x:) )", "foo:))) )", ": )", "(: :)", "x:-) )", "10 a.m.", "it 's", "do n't", ":) :) :)"]


def test_chunks_a_match_may_cross_are_tokenized_together() -> None:
    reference, fast = _fresh(), SpacyWords(_fresh())
    tokenizer = fast._nlp.tokenizer
    alone = [word.strip() for chunk in ["x:)", ")"] for word in map(str, tokenizer(chunk)) if word.strip()]
    assert alone != reference.word_tokenize("x:) )")  # so the join is needed, not a formality
    for text in ACROSS_A_SPACE:
        assert fast.word_tokenize(text) == reference.word_tokenize(text), text
    assert fast._chunks is not None and fast._chunks.joined >= 1


def test_same_words_as_datatrove_on_random_texts_of_special_cases() -> None:
    # Special cases, their pieces and punctuation glued by every kind of separator: the cases where a chunk's
    # words alone could differ from the whole text's.
    reference, fast = _fresh(), SpacyWords(_fresh())
    assert fast._nlp is not None
    atoms = [*sorted(fast._nlp.tokenizer.rules), "x", "it", "s", "'", ")", "(", ":", ".", "-", "a.m", "10"]
    atoms += ["do", "n't", "This", "'s", "D", "p", "hello", "U.S.", "e.g", "!!", "?", ";"]
    separators = [" ", " ", " ", "", "", "\n", "  ", "\t", "\u00a0"]
    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice(atoms) + rng.choice(separators) for _ in range(rng.randint(1, 8)))
        if "IS_ALPHA" not in text:
            assert fast.word_tokenize(text) == reference.word_tokenize(text), repr(text)


def test_chunk_table_is_bounded_and_refilled(page_texts: list[str]) -> None:
    reference = _fresh()
    fast = SpacyWords(_fresh(), max_lexemes=200)  # the chunk table holds twice as many
    for text in page_texts[:3] + page_texts[:3]:
        assert fast.word_tokenize(text) == reference.word_tokenize(text)
        assert fast._chunks is not None and len(fast._chunks) <= 400 + len(set(text.split()))
