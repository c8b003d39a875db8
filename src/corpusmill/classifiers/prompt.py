"""Annotator prompts as versioned files: the text lives in `prompts/<name>.md`, the version in the cache.

A cached annotation is only reusable if the model was asked the very same question. The prompt version is
therefore the file's name plus a short hash of everything that shapes the question but the document: the
file's bytes and the taxonomy rendered into it. Editing the file, or a definition in `taxonomy`, yields a new
version and a fresh round of answers instead of silently mixing old and new labels.

The file is Markdown-ish text: a free note for maintainers, then one `<!-- role: NAME -->` marker per chat
message. Placeholders `{{dimensions}}`, `{{domains}}`, `{{answer_format}}` and `{{document}}` are replaced in a
single pass over the template, so a document that happens to contain `{{domains}}` is shown verbatim.

Documents are cut to `max_chars` at a whitespace boundary before they are shown; the cut text is what the
annotation stores, so the distilled classifiers train on exactly what was labelled.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
from dataclasses import dataclass
from pathlib import Path

from corpusmill.classifiers.answers import DOMAIN_KEY, SCORE_KEYS
from corpusmill.classifiers.taxonomy import DOMAINS, QUALITY_DIMENSIONS, SCORE_MAX, SCORE_MIN

DEFAULT_VERSION = "annotate_v1"
DEFAULT_MAX_CHARS = 6000
PROMPT_PACKAGE = "corpusmill.classifiers.prompts"

_ROLE_MARKER = re.compile(r"^<!--\s*role:\s*(system|user|assistant)\s*-->\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_WHITESPACE = re.compile(r"\s")
DOCUMENT = "document"

# A cut is made at the last whitespace only if it keeps at least this share of `max_chars`; a text with one
# enormous "word" (a minified script, a base64 blob) is cut hard instead of being reduced to nothing.
_MIN_KEPT_SHARE = 0.5


def answer_format() -> str:
    """The JSON shape shown to the model, built from the taxonomy so the prompt and the parser cannot drift."""
    parts = [f"{json.dumps(key)}: <integer {SCORE_MIN}-{SCORE_MAX}>" for key in SCORE_KEYS]
    parts.append(f'{json.dumps(DOMAIN_KEY)}: "<one domain name>"')
    return "{" + ", ".join(parts) + "}"


def _taxonomy_fields() -> dict[str, str]:
    return {
        "dimensions": "\n".join(f"- {label.name}: {label.definition}" for label in QUALITY_DIMENSIONS),
        "domains": "\n".join(f"- {label.name}: {label.definition}" for label in DOMAINS),
        "answer_format": answer_format(),
    }


def truncate(text: str, max_chars: int) -> str:
    """Cut `text` to at most `max_chars` at a whitespace boundary, so the model never sees half a word."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    if len(text) <= max_chars:
        return text
    head = text[
        : max_chars + 1
    ]  # the character just past the limit tells whether the cut falls between words
    cut = max((m.start() for m in _WHITESPACE.finditer(head)), default=-1)
    if cut < max_chars * _MIN_KEPT_SHARE:
        return text[:max_chars]
    return text[:cut].rstrip()


@dataclass(frozen=True)
class Prompt:
    """A loaded prompt: its version string and the chat messages it makes for one document."""

    name: str
    version: str
    templates: tuple[tuple[str, str], ...]
    max_chars: int = DEFAULT_MAX_CHARS

    def shown_text(self, text: str) -> str:
        """The document as the model will see it (and as the annotation stores it)."""
        return truncate(text, self.max_chars)

    def messages(self, text: str) -> list[dict[str, str]]:
        """Chat messages asking about one document (truncated to `max_chars` first)."""
        fields = {**_taxonomy_fields(), DOCUMENT: self.shown_text(text)}
        return [
            {"role": role, "content": _PLACEHOLDER.sub(lambda m: fields[m.group(1)], template)}
            for role, template in self.templates
        ]


def _read_source(version: str) -> tuple[str, str, str]:
    """(name, where, text) of a bundled prompt name or of a path to a prompt file."""
    if version.endswith(".md") or "/" in version or "\\" in version:
        path = Path(version)
        if not path.is_file():
            raise FileNotFoundError(f"prompt file {path} does not exist")
        return path.stem, str(path), path.read_text(encoding="utf-8")
    resource = importlib.resources.files(PROMPT_PACKAGE).joinpath(f"{version}.md")
    if not resource.is_file():
        available = sorted(
            p.name[:-3] for p in importlib.resources.files(PROMPT_PACKAGE).iterdir() if p.name.endswith(".md")
        )
        raise FileNotFoundError(
            f"no bundled prompt {version!r}; available: {', '.join(available)} (or pass a path to a .md file)"
        )
    return version, f"{PROMPT_PACKAGE}/{version}.md", resource.read_text(encoding="utf-8")


def _split_roles(where: str, text: str) -> tuple[tuple[str, str], ...]:
    markers = list(_ROLE_MARKER.finditer(text))
    if not markers:
        raise ValueError(f"prompt {where} has no `<!-- role: system|user -->` marker")
    templates = []
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        templates.append((marker.group(1), text[marker.end() : end].strip("\n")))
    fields = {*_taxonomy_fields(), DOCUMENT}
    for _, template in templates:
        unknown = {m.group(1) for m in _PLACEHOLDER.finditer(template)} - fields
        if unknown:
            raise ValueError(
                f"prompt {where} uses unknown placeholders {sorted(unknown)}; known: {sorted(fields)}"
            )
    uses = sum(1 for _, t in templates for m in _PLACEHOLDER.finditer(t) if m.group(1) == DOCUMENT)
    if uses != 1:
        raise ValueError(f"prompt {where} must contain {{{{document}}}} exactly once, found {uses}")
    return tuple(templates)


def load_prompt(version: str = DEFAULT_VERSION, *, max_chars: int = DEFAULT_MAX_CHARS) -> Prompt:
    """Load a bundled prompt by name (`annotate_v1`) or a prompt file by path, with its content-hashed version."""
    name, where, text = _read_source(version)
    templates = _split_roles(where, text)
    digest = hashlib.sha256(text.encode("utf-8"))
    digest.update(json.dumps(_taxonomy_fields(), sort_keys=True).encode("utf-8"))
    return Prompt(
        name=name, version=f"{name}-{digest.hexdigest()[:10]}", templates=templates, max_chars=max_chars
    )
