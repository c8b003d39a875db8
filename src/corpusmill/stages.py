"""Imports every built-in stage so that its `@register` runs; the registry resolves recipe names from here."""

from corpusmill.classifiers import score_stages  # noqa: F401
from corpusmill.filters import dedup, extract, heuristics, lang_prefilter, langid, url_filter  # noqa: F401
from corpusmill.mixtures import mix_stage  # noqa: F401
from corpusmill.shards import tokenize, writer  # noqa: F401
