"""Fitting a document into the annotator's context window: count the prompt in tokens, cut only the document.

A server refuses a prompt that, with the tokens it may generate, exceeds its context; cutting documents to a
number of characters (`--max-chars`) cannot prevent that, because characters per token vary several-fold
between prose, code and non-Latin scripts. So the prompt is counted in tokens, with the tokenizer of the
annotator the project is built around (Qwen2.5, bundled: `corpusmill.shards.tokenizer`) and the ChatML frame
its chat template puts around every message, and the document alone is cut until the whole prompt fits the
budget. Instructions and taxonomy are never cut: a prompt missing its answer format gets worse answers than
one showing less of the document.

Other models' tokenizers count differently; the budget the HTTP backend hands out keeps a safety margin for
that (`HttpBackend.prompt_token_budget`), and the counting here stays exact for Qwen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from corpusmill.classifiers.prompt import Prompt
from corpusmill.shards.tokenizer import normalize, qwen25_encoding

DOCUMENT_OPEN, DOCUMENT_CLOSE = "<document>", "</document>"
# A cut moves back to the last whitespace only if that keeps this share of the characters: a text that is one
# long "word" (a base64 blob, minified code) is cut at the token boundary instead of losing most of itself.
_CLOSE_SHARE = 0.9
# Cutting at a token boundary can change how the text around the cut is tokenized by a token or two; a few
# rounds of cutting a little more always settle it.
_MAX_ROUNDS = 8
_WHITESPACE = re.compile(r"\s")

Message = Mapping[str, str]


def _ordinary_tokens(text: str) -> int:
    return len(qwen25_encoding().encode_ordinary(normalize(text)))


def conversation_tokens(conversation: Sequence[Message]) -> int:
    """Prompt tokens of a chat conversation as a Qwen2.5 server counts them.

    ChatML renders each message as `<|im_start|>ROLE\\nCONTENT<|im_end|>\\n` and ends the prompt with the
    reply's header `<|im_start|>assistant\\n`; the two markers are one special token each.
    """
    count = 1 + _ordinary_tokens("assistant\n")
    for message in conversation:
        count += 2 + _ordinary_tokens(f"{message['role']}\n{message['content']}") + _ordinary_tokens("\n")
    return count


def _cut(text: str, keep_tokens: int) -> str:
    """The longest prefix of `text` within `keep_tokens` tokens, moved back to a whitespace where close."""
    if keep_tokens <= 0:
        return ""
    encoding = qwen25_encoding()
    ids = encoding.encode_ordinary(text)
    if len(ids) <= keep_tokens:
        return text
    # A token can end inside a multi-byte character; only the prefix's last character can be broken.
    head = encoding.decode_bytes(ids[:keep_tokens]).decode("utf-8", errors="ignore")
    cut = max((m.start() for m in _WHITESPACE.finditer(head)), default=-1)
    if cut >= len(head) * _CLOSE_SHARE:
        return head[:cut].rstrip()
    return head


def _fit(render: Callable[[str], Sequence[Message]], text: str, budget_tokens: int) -> str:
    """The longest cut of `text` for which `render(cut)` takes at most `budget_tokens` prompt tokens."""
    total = conversation_tokens(render(text))
    if total <= budget_tokens:
        return text
    frame = conversation_tokens(render(""))
    if frame > budget_tokens:
        raise ValueError(
            f"the prompt without any document already takes {frame} tokens, more than the {budget_tokens} "
            "tokens the context leaves for it: use a larger context, fewer max tokens or a shorter prompt"
        )
    keep = budget_tokens - frame
    for _ in range(_MAX_ROUNDS):
        candidate = _cut(text, keep)
        over = conversation_tokens(render(candidate)) - budget_tokens
        if over <= 0:
            return candidate
        keep -= over
    return ""


def fit_document(prompt: Prompt, text: str, budget_tokens: int) -> str:
    """The text `prompt` should show so that its whole conversation takes at most `budget_tokens` tokens.

    The text is first cut to the prompt's `max_chars` (as `prompt.shown_text` does); a text that then fits is
    returned unchanged. Otherwise it is cut at a token boundary and, where a whitespace is close before it,
    back to that, so the model does not see half a word. Raises ValueError if even an empty document does
    not fit.
    """
    return _fit(prompt.messages, prompt.shown_text(text), budget_tokens)


def _document_span(content: str) -> tuple[int, int] | None:
    """Where the document is in a message: between `<document>` and `</document>`, one newline in from each."""
    start, end = content.find(DOCUMENT_OPEN), content.rfind(DOCUMENT_CLOSE)
    if start < 0 or end < start + len(DOCUMENT_OPEN):
        return None
    start += len(DOCUMENT_OPEN)
    if content.startswith("\n", start):
        start += 1
    if end > start and content[end - 1] == "\n":
        end -= 1
    return start, end


def fit_conversation(
    conversation: Sequence[Message], budget_tokens: int
) -> tuple[list[dict[str, str]], str] | None:
    """Fit an already built conversation: cut the document in its last user message that shows one.

    For a backend that learns the context only when the server refuses a prompt, and holds conversations,
    not documents. Returns the fitted conversation and the document as now shown (unchanged where it fit
    already), or None when no user message holds a `<document>...</document>`. Raises ValueError as
    `fit_document` does.
    """
    messages = [dict(message) for message in conversation]
    for index in reversed(range(len(messages))):
        if messages[index].get("role") != "user":
            continue
        content = messages[index]["content"]
        span = _document_span(content)
        if span is None:
            continue
        before, document, after = content[: span[0]], content[span[0] : span[1]], content[span[1] :]

        def render(shown: str, index: int = index, before: str = before, after: str = after) -> list[dict]:
            return [
                {**message, "content": before + shown + after} if n == index else message
                for n, message in enumerate(messages)
            ]

        shown = _fit(render, document, budget_tokens)
        return render(shown), shown
    return None
