"""datatrove's spaCy word lists, produced without redoing per document what spaCy can keep between documents.

The Gopher, FineWeb and repetition rules count words with datatrove's per-language word tokenizer, for most
languages a blank spaCy pipeline. datatrove's `SpaCyTokenizer.word_tokenize` runs that whole pipeline (the
tokenizer, then a sentencizer whose sentences it ignores) inside a spaCy *memory zone*, so that a long run
does not grow the vocabulary without bound. The zone is what makes it slow: when it closes, every lexeme
the document added is freed, so the next document builds them again, and building a lexeme runs a dozen
Python-level attribute functions (shape, number-like, URL-like, ...), about 40 microseconds per word. On web
pages that is over half of the tokenizer's cost, and the tokenizer is most of the rules' cost.

`SpacyWords` returns the same words (and sentences, and sentence spans) for every text:

- for words it calls the pipeline's tokenizer alone: the sentencizer only marks sentence starts and changes
  no token; for sentences it runs the whole pipeline, as datatrove does;
- it keeps lexemes from one document to the next. Token boundaries are a function of the text and the
  tokenizer's rules (prefix, suffix and infix patterns, special cases), never of which lexemes the vocabulary
  already holds, so reusing them changes only the time. Memory stays bounded the way the zone bounded it,
  more coarsely: once the vocabulary holds `max_lexemes` entries, the pipeline is rebuilt empty;
- a new lexeme gets only the one attribute anything here reads (whether it is punctuation, which the
  sentencizer checks); the dozen others (lower case, norm, shape, number-like, URL-like, ...) are what makes
  building one cost tens of microseconds, and neither the tokenizer nor the word lists look at them;
- it reads the words as slices of the text at the tokens' offsets instead of building a Python `Token` per
  word (a token's text is always exactly that slice), and strips them as datatrove does;
- it remembers the words of every whitespace-separated chunk it has tokenized (`spacy_chunks.ChunkWords`),
  since spaCy's own chunk cache stops filling for the rest of a text at its first special case; chunks that
  a special case's match could join across a space are tokenized together. On the side-by-side bench's 496
  pages this took the Gopher rules from 3.8 to 2.0 CPU-seconds.

Some texts and languages keep datatrove's own tokenizer. Texts containing `IS_ALPHA`: that string names
spaCy's attribute number 1, and inside memory zones it tokenizes normally the first time in a process and
raises every time after, which datatrove answers by deleting the string and trying again; only datatrove's
own (shared) tokenizer, given the same texts in the same order, reproduces that history. And tokenizers that
are not spaCy's rule-based one (Chinese with jieba, Thai, ...), and Japanese, which datatrove first cuts
into byte-bounded chunks.

spaCy's import chain (through thinc) imports PyTorch when it is installed, although a blank tokenizer never
uses it: that is over a CPU-second and a few hundred MB in every worker process. `import_spacy` therefore
imports spaCy the first time with `torch` hidden from the importing thread only; thinc then records that it
has no PyTorch, which matters only to thinc's PyTorch model wrappers, and anything that imports `torch`
afterwards gets it as usual. spaCy's package also imports its command line (`spacy.info` comes from
`spacy.cli.info`), and with it typer, weasel, httpx and the Hugging Face hub client: a quarter of its import,
0.15 CPU-seconds in every worker process. `import_spacy` lets spaCy import a placeholder for it, then takes
the placeholder away: `spacy.info` imports the real command line when called, and `import spacy.cli` gets it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

from datatrove.utils.word_tokenizers import SpaCyTokenizer, WhitespaceTokenizer, WordTokenizer

from corpusmill.filters.spacy_chunks import ChunkWords

# The lexeme count at which the pipeline is rebuilt: about 50 MB of lexemes and strings.
DEFAULT_MAX_LEXEMES = 100_000
# spaCy symbol that its memory zones mishandle; datatrove works around it (see the module docstring).
_ZONE_QUIRK = "IS_ALPHA"


class _HideModule(importlib.abc.MetaPathFinder):
    """Makes one top-level module (and its submodules) unimportable, for one thread only."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if threading.get_ident() == self.thread and fullname.split(".", 1)[0] == self.name:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


@contextlib.contextmanager
def _hidden(name: str) -> Iterator[None]:
    if name in sys.modules:  # already imported: nothing to save, and nothing may break
        yield
        return
    finder = _HideModule(name)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


@contextlib.contextmanager
def _command_line_deferred() -> Iterator[None]:
    """spaCy's package imports `spacy.cli.info` for one name; give it a placeholder while spaCy imports."""
    names = ("spacy.cli", "spacy.cli.info")
    if any(name in sys.modules for name in names):
        yield
        return
    placeholder = types.ModuleType("spacy.cli.info")
    placeholder.info = _info  # type: ignore[attr-defined]
    command_line = types.ModuleType("spacy.cli")
    command_line.info = placeholder  # type: ignore[attr-defined]
    sys.modules.update(zip(names, (command_line, placeholder), strict=True))
    try:
        yield
    finally:
        for name, module in zip(names, (command_line, placeholder), strict=True):
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _info(*args: Any, **kwargs: Any) -> Any:
    """`spacy.info`, importing spaCy's command line on first use."""
    from spacy.cli.info import info

    return info(*args, **kwargs)


def import_spacy() -> None:
    """Import spaCy (once per process) without letting its import chain pull in PyTorch or its command line."""
    if "spacy" in sys.modules:
        return
    with _hidden("torch"), _command_line_deferred():
        import spacy  # noqa: F401


class SpacyWords(WordTokenizer):
    """A datatrove word tokenizer whose words equal `reference`'s, with spaCy's state kept between texts."""

    def __init__(self, reference: WordTokenizer, max_lexemes: int = DEFAULT_MAX_LEXEMES) -> None:
        super().__init__(reference.language)
        self.reference = reference
        self.max_lexemes = max_lexemes
        self.rebuilds = 0
        self._nlp: Any = None
        self._chunks: ChunkWords | None = None
        if isinstance(reference, SpaCyTokenizer | WhitespaceTokenizer):
            import_spacy()  # before datatrove's own first use imports it, with PyTorch in tow
        self.fast = isinstance(reference, SpaCyTokenizer) and reference.language != "ja"
        if self.fast:
            self._nlp = self._build()
            # Language-specific segmenters (jieba for Chinese, ...) have their own state and rules.
            from spacy.tokenizer import Tokenizer

            self.fast = isinstance(self._nlp.tokenizer, Tokenizer)
            if not self.fast:
                self._nlp = None

    def _build(self) -> Any:
        import_spacy()
        from spacy.attrs import IS_PUNCT

        # A fresh datatrove tokenizer builds the pipeline exactly as datatrove does (language, config).
        nlp = SpaCyTokenizer(
            self.reference.language, config=getattr(self.reference, "config", None)
        ).tokenizer
        # New lexemes get only the attribute something here reads: IS_PUNCT, for the sentencizer.
        getters = nlp.vocab.lex_attr_getters or {}
        nlp.vocab.lex_attr_getters = {IS_PUNCT: getters[IS_PUNCT]} if IS_PUNCT in getters else {}
        from spacy.tokenizer import Tokenizer

        if isinstance(nlp.tokenizer, Tokenizer):
            self._chunks = ChunkWords(nlp.tokenizer, max_chunks=2 * self.max_lexemes)
        return nlp

    @property
    def lexemes(self) -> int:
        """Lexemes the kept vocabulary holds now (0 when datatrove's tokenizer does the work)."""
        return len(self._nlp.vocab) if self._nlp is not None else 0

    def word_tokenize(self, text: str) -> list[str]:
        """The words of `text`, exactly as datatrove's tokenizer for this language returns them."""
        if not self.fast or _ZONE_QUIRK in text:
            return self.reference.word_tokenize(text)
        assert self._chunks is not None
        words = self._chunks.words(text)
        self._bound_vocabulary()
        return words

    def sent_tokenize(self, text: str) -> list[str]:
        """The sentences of `text`, stripped, exactly as datatrove's tokenizer returns them."""
        if not self.fast or _ZONE_QUIRK in text:
            return self.reference.sent_tokenize(text)
        sentences = [sentence.text.strip() for sentence in self._sentences(text)]
        self._bound_vocabulary()
        return [sentence for sentence in sentences if sentence]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the sentences of `text`, exactly as datatrove's tokenizer returns them."""
        if not self.fast or _ZONE_QUIRK in text:
            return self.reference.span_tokenize(text)
        spans = [(sentence.start_char, sentence.end_char) for sentence in self._sentences(text)]
        self._bound_vocabulary()
        return spans

    def _sentences(self, text: str) -> Any:
        # The whole pipeline this time: its sentencizer is what marks the sentence starts.
        self._nlp.max_length = len(text) + 10
        return self._nlp(text).sents

    def _bound_vocabulary(self) -> None:
        if len(self._nlp.vocab) > self.max_lexemes:
            self._nlp = self._build()
            self.rebuilds += 1
