"""resiliparse as a datatrove extractor, with the `extract` stage's resiliparse settings.

datatrove ships Trafilatura and ReadabilityInscriptis; its extractors are `BaseExtractor` subclasses that
implement `extract(html) -> text`, and the base class runs them in its own sandbox process with a
per-document timeout. This is that subclass for resiliparse's `extract_plain_text` with the very options
corpusmill's `extract` stage passes (`RESILIPARSE_OPTIONS`), so `python -m bench --extractor resiliparse`
compares both pipelines with the same extractor and settings, as the default run does with trafilatura.
"""

from __future__ import annotations

from typing import Any, ClassVar

from datatrove.pipeline.extractors.base import BaseExtractor


class Resiliparse(BaseExtractor):
    """resiliparse main-content extraction in datatrove's extractor sandbox."""

    name = "⛏ Resiliparse"
    _requires_dependencies: ClassVar[list[str]] = ["resiliparse"]

    def __init__(self, timeout: float = 1, **options: Any) -> None:
        super().__init__(timeout)
        from corpusmill.filters.extract import RESILIPARSE_OPTIONS

        self.options = {**RESILIPARSE_OPTIONS, **options}

    def extract(self, text: str) -> str:
        """The page's main text, as resiliparse gives it."""
        from resiliparse.extract.html2text import extract_plain_text

        return extract_plain_text(text, **self.options)
