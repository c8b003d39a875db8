"""Imports every built-in stage so that its `@register` runs; the registry resolves recipe names from here."""

from corpusmill.filters import dedup, extract, heuristics, langid  # noqa: F401
from corpusmill.shards import tokenize, writer  # noqa: F401
