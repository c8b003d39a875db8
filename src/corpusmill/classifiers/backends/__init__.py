"""Where the annotator's answers come from: a protocol small enough for a local model or a remote server.

`annotate` only needs two things from a backend: the model id it stores in the cache (`name`) and a way to
turn a batch of chat conversations into answers. A backend returns one `BackendAnswer` per conversation, in
order: the answer text and, where it has them, the top log-probabilities of every generated token (so scores
become digit expectations), or an error for a conversation that failed after the backend's own retries. A
backend that reads scores straight from the logits (guided scoring in `local`) hands back the finished
`ParsedAnswer` as well.

Some outcomes are only known to the backend, so an answer can say more than its text: `finish_reason` is why
generation ended (`stop`, or `length` for an answer cut at the token limit), `status` a final status the caller
stores as it is instead of parsing the text (`truncated`), `hint` what the user can change when an error will
not go away by itself (a CLI flag, an environment variable), and `shown_text` the document as the model saw it
when the backend had to cut it further than the caller did (a context learned from the server's refusal).

The concrete backends import heavy dependencies (torch, httpx), so they are imported from their modules:
`backends.local.LocalBackend`, `backends.http.HttpBackend`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from corpusmill.classifiers.answers import ParsedAnswer, TokenLogprobs

Message = dict[str, str]
Conversation = list[Message]


@dataclass(frozen=True)
class BackendAnswer:
    """One conversation's outcome: the answer text (+ per-token log-probabilities), or why there is none."""

    text: str | None = None
    token_logprobs: tuple[TokenLogprobs, ...] | None = None
    error: str | None = None
    parsed: ParsedAnswer | None = None
    finish_reason: str | None = None
    status: str | None = None
    hint: str | None = None
    shown_text: str | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.error is None):
            raise ValueError("a BackendAnswer carries either an answer text or an error, not both or neither")


@runtime_checkable
class AnnotatorBackend(Protocol):
    """Anything that answers chat conversations in batches, named by the model id stored with the answers."""

    name: str

    def annotate(self, messages_batch: Sequence[Conversation]) -> list[BackendAnswer]:
        """One answer per conversation, in order; failures come back as answers with `error` set."""
        ...


__all__ = ["AnnotatorBackend", "BackendAnswer", "Conversation", "Message"]
