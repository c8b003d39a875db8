"""A local `transformers` model as the annotator, scored from its logits rather than from what it writes.

Small or weak instruct models often break JSON, and even good ones write a single digit where they hesitate
between two. Guided scoring (the default) sidesteps both: the assistant turn is the fixed answer skeleton
`{"educational_value": _, ..., "overall": _, "domain": "_"}`. At each score slot the next-token distribution
over the six digit tokens is read (renormalised; its expectation is the score) and its most likely digit is
written into the sequence before the next slot, so later scores are conditioned on earlier ones exactly as in
free generation. For the domain, the likelihood of every complete label (all its tokens, plus the closing
`"}`) is computed; a softmax over the labels gives `domain_confidence`. Every document of a batch shares the
skeleton, so the batch stays aligned; a KV cache means the prompt is encoded once and every later step feeds
only a few tokens. This path cannot produce an unparseable answer.

`mode="generate"` instead lets the model write freely (greedy, our own decoding loop so that no generation
config of the checkpoint, such as a repetition penalty, alters the distribution) and parses the text strictly,
with the top log-probabilities of every generated token so scores are still digit expectations.

Document text is tokenized with special-token strings split into ordinary text: a page that quotes
`<|im_end|>` cannot end its own turn and inject instructions.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import transformers
from packaging.version import Version
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from corpusmill.classifiers.annotations import STATUS_OK
from corpusmill.classifiers.answers import (
    DIGITS,
    DOMAIN_KEY,
    SCORE_KEYS,
    ParsedAnswer,
    TokenLogprobs,
    parse_answer,
)
from corpusmill.classifiers.backends import BackendAnswer, Conversation
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES, OVERALL

logger = logging.getLogger(__name__)

Mode = Literal["guided", "generate"]
_SLOT = re.compile("\ue000(\\d+)\ue001")


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    resolved = getattr(torch, dtype, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use auto, bfloat16, float16 or float32")
    return resolved


class LocalBackend:
    """Annotate with a causal LM loaded from a local directory (or the hub, when downloads are allowed)."""

    def __init__(
        self,
        model: str,
        *,
        mode: Mode = "guided",
        allow_download: bool = False,
        device: str = "auto",
        dtype: str = "auto",
        max_new_tokens: int = 256,
        top_logprobs: int = 10,
        name: str | None = None,
        temperature: float = 0.0,
    ) -> None:
        if mode not in ("guided", "generate"):
            raise ValueError(f"mode must be 'guided' or 'generate', got {mode!r}")
        if temperature < 0 or (temperature > 0 and mode != "guided"):
            raise ValueError("temperature must be 0 or more, and sampling is offered in guided mode only")
        self.mode = mode
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.top_logprobs = top_logprobs
        self.device = _device(device)
        base = name or (str(Path(model).resolve()) if Path(model).is_dir() else model)
        self.name = base if mode == "guided" else f"{base}#generate"
        if temperature > 0:
            self.name = f"{self.name}#t{temperature:g}"
        self.tokenizer, self.model = self._load(model, allow_download, _dtype(dtype, self.device))
        # Newer transformers name the KV cache argument `cache` and the logits slice `logits_to_keep`.
        forward_parameters = inspect.signature(self.model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in forward_parameters else "past_key_values"
        self._keep_kwarg = (
            "logits_to_keep" if "logits_to_keep" in forward_parameters else "num_logits_to_keep"
        )
        self._pad_id = self.tokenizer.pad_token_id
        self._eos_ids = self._stop_ids()
        if mode == "guided":
            self._prepare_skeleton()

    # -- loading -----------------------------------------------------------------------------------------

    def _load(self, model: str, allow_download: bool, dtype: torch.dtype) -> tuple[Any, Any]:
        try:
            tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=not allow_download)
            # `torch_dtype` was renamed `dtype` in transformers 4.56.
            dtype_kwarg = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
            lm = AutoModelForCausalLM.from_pretrained(
                model, local_files_only=not allow_download, **{dtype_kwarg: dtype}
            )
        except OSError as exc:
            hint = "" if allow_download else " (downloads are off: pass a local directory or allow downloads)"
            raise OSError(f"cannot load annotator model {model!r}{hint}: {exc}") from exc
        if not tokenizer.chat_template:
            raise ValueError(
                f"the tokenizer of {model!r} has no chat template; the annotator needs an instruct model"
            )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        lm.to(self.device)
        lm.eval()
        logger.info("loaded annotator %s on %s (%s, mode %s)", model, self.device, dtype, self.mode)
        return tokenizer, lm

    def _stop_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
        return {i for i in ids if i is not None}

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)

    def _prepare_skeleton(self) -> None:
        """Token ids of the fixed answer parts, the six digits and the domain labels (checked once)."""
        keys = list(SCORE_KEYS)
        self._segments = [self._ids("{" + json.dumps(keys[0]) + ": ")]
        self._segments += [self._ids(", " + json.dumps(key) + ": ") for key in keys[1:]]
        self._segments.append(self._ids(", " + json.dumps(DOMAIN_KEY) + ': "'))
        digit_ids = []
        for digit in DIGITS:
            ids = self._ids(digit)
            if len(ids) != 1:
                raise ValueError(
                    f"guided scoring needs every digit to be one token; {digit!r} is {ids} here: use mode='generate'"
                )
            digit_ids.append(ids[0])
        self._digit_ids = torch.tensor(digit_ids, device=self.device)
        self._digit_values = torch.arange(len(DIGITS), dtype=torch.float32, device=self.device)
        prefix = self._segments[-1]
        self._labels: list[list[int]] = []
        for label in DOMAIN_NAMES:
            full = self._ids(", " + json.dumps(DOMAIN_KEY) + ': "' + label + '"}')
            # Tokenized in context where the prefix is stable, so the label gets its natural tokens.
            self._labels.append(
                full[len(prefix) :] if full[: len(prefix)] == prefix else self._ids(label + '"}')
            )

    # -- encoding ----------------------------------------------------------------------------------------

    def encode_prompt(self, conversation: Conversation) -> list[int]:
        """Prompt ids: the chat template's own tokens as specials, message contents as plain text."""
        slots = [dict(message, content=f"\ue000{i}\ue001") for i, message in enumerate(conversation)]
        rendered = self.tokenizer.apply_chat_template(slots, add_generation_prompt=True, tokenize=False)
        found = [int(m.group(1)) for m in _SLOT.finditer(rendered)]
        if sorted(found) != list(range(len(conversation))):
            logger.debug("chat template rewrites message contents; tokenizing the rendered prompt as a whole")
            full = self.tokenizer.apply_chat_template(
                conversation, add_generation_prompt=True, tokenize=False
            )
            return self._ids(full)
        ids: list[int] = []
        for i, piece in enumerate(_SLOT.split(rendered)):
            if i % 2 == 0:
                ids += self._ids(piece) if piece else []
            else:
                content = conversation[int(piece)]["content"]
                ids += self.tokenizer(content, add_special_tokens=False, split_special_tokens=True).input_ids
        return ids

    def _left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
        return ids.to(self.device), mask.to(self.device)

    # -- decoding state ----------------------------------------------------------------------------------

    def _new_cache(self) -> Any:
        try:
            return DynamicCache(config=self.model.config)
        except TypeError:
            return DynamicCache()

    def annotate(self, messages_batch: Sequence[Conversation]) -> list[BackendAnswer]:
        """Answer a batch of conversations in one padded forward pass (guided or generated)."""
        if not messages_batch:
            return []
        prompts = [self.encode_prompt(conversation) for conversation in messages_batch]
        with torch.inference_mode():
            state = _Decoder(self, prompts)
            return self._guided(state) if self.mode == "guided" else self._generate(state)

    def _choose(self, probs: torch.Tensor, generators: list[torch.Generator] | None) -> torch.Tensor:
        """The most likely option per row, or with a temperature a draw from the tempered distribution."""
        if generators is None:
            return probs.argmax(-1)
        tempered = torch.softmax(torch.log(probs.clamp_min(1e-30)) / self.temperature, dim=-1).cpu()
        return torch.stack(
            [torch.multinomial(tempered[row], 1, generator=g)[0] for row, g in enumerate(generators)]
        ).to(probs.device)

    def _generators(self, prompts: list[list[int]]) -> list[torch.Generator] | None:
        """One generator per document, seeded by its prompt, so sampled answers are reproducible."""
        if self.temperature <= 0:
            return None
        seeds = [
            int.from_bytes(hashlib.blake2b(repr(ids).encode(), digest_size=8).digest(), "big") >> 1
            for ids in prompts
        ]
        return [torch.Generator().manual_seed(seed) for seed in seeds]

    def _guided(self, state: _Decoder) -> list[BackendAnswer]:
        batch = state.batch
        generators = self._generators(state.prompts)
        logits = state.feed(self._segments[0])[:, -1]
        expectations, written = [], []
        for segment in self._segments[1:]:
            digit_logits = logits[:, self._digit_ids].float()
            probs = torch.softmax(digit_logits, dim=-1)
            chosen = self._choose(probs, generators)
            # Sampling reports the drawn digit: a sample of the model's judgement, not its mean.
            expectations.append(
                (probs * self._digit_values).sum(-1) if generators is None else chosen.float()
            )
            written.append(chosen)
            step = torch.cat([self._digit_ids[chosen][:, None], state.repeat(segment)], dim=1)
            logits = state.feed(step)[:, -1]
        first = torch.log_softmax(logits.float(), dim=-1)
        label_scores = torch.empty((batch, len(self._labels)), dtype=torch.float32, device=self.device)
        for index, label in enumerate(self._labels):
            total = first[:, label[0]]
            if len(label) > 1:
                tail = torch.log_softmax(state.feed(label[:-1], keep=len(label) - 1, rewind=True).float(), -1)
                targets = torch.tensor(label[1:], device=self.device).expand(batch, -1)
                total = total + tail.gather(-1, targets[..., None]).squeeze(-1).sum(-1)
            label_scores[:, index] = total
        confidence = torch.softmax(label_scores, dim=-1)
        best = self._choose(confidence, generators)
        answers = []
        for row in range(batch):
            scores = {key: float(expectations[k][row]) for k, key in enumerate(SCORE_KEYS)}
            digits = {key: int(written[k][row]) for k, key in enumerate(SCORE_KEYS)}
            domain = DOMAIN_NAMES[int(best[row])]
            parsed = ParsedAnswer(
                status=STATUS_OK,
                scores={name: scores[name] for name in DIMENSION_NAMES},
                overall=scores[OVERALL],
                domain=domain,
                domain_confidence=float(confidence[row, best[row]]),
            )
            answers.append(BackendAnswer(text=json.dumps({**digits, DOMAIN_KEY: domain}), parsed=parsed))
        return answers

    def _generate(self, state: _Decoder) -> list[BackendAnswer]:
        logits = state.logits
        generated: list[list[int]] = [[] for _ in range(state.batch)]
        top: list[list[tuple[list[int], list[float], float]]] = [[] for _ in range(state.batch)]
        done = torch.zeros(state.batch, dtype=torch.bool, device=self.device)
        stops = torch.tensor(sorted(self._eos_ids), device=self.device)
        for _ in range(self.max_new_tokens):
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            chosen = logprobs.argmax(-1)
            best_lp, best_ids = logprobs.topk(self.top_logprobs, dim=-1)
            for row in torch.nonzero(~done).flatten().tolist():
                token = int(chosen[row])
                if token in self._eos_ids:
                    continue
                generated[row].append(token)
                top[row].append((best_ids[row].tolist(), best_lp[row].tolist(), float(logprobs[row, token])))
            done |= torch.isin(chosen, stops)
            if bool(done.all()):
                break
            next_ids = torch.where(done, torch.full_like(chosen, self._pad_id), chosen)
            logits = state.feed(next_ids[:, None])[:, -1]
        return [self._answer(ids, positions) for ids, positions in zip(generated, top, strict=True)]

    def _answer(self, ids: list[int], positions: list[tuple[list[int], list[float], float]]) -> BackendAnswer:
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        tokens = []
        for token, (alt_ids, alt_lps, own_lp) in zip(ids, positions, strict=True):
            alternatives = tuple(
                (self.tokenizer.decode([alt]), lp) for alt, lp in zip(alt_ids, alt_lps, strict=True)
            )
            tokens.append(TokenLogprobs(self.tokenizer.decode([token]), own_lp, alternatives))
        logprobs = tuple(tokens)
        return BackendAnswer(text=text, token_logprobs=logprobs, parsed=parse_answer(text, logprobs))


class _Decoder:
    """Incremental decoding of a left-padded batch: attention mask, positions and KV cache kept in step."""

    def __init__(self, backend: LocalBackend, prompts: list[list[int]]) -> None:
        self.backend = backend
        self.batch = len(prompts)
        self.prompts = prompts
        ids, self.mask = backend._left_pad(prompts)
        self.cache = backend._new_cache()
        self.next_position = self.mask.sum(-1)
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.logits = self._forward(ids, positions, keep=1)[:, -1]

    def repeat(self, ids: Sequence[int]) -> torch.Tensor:
        """The same token ids for every row of the batch."""
        return torch.tensor(list(ids), dtype=torch.long, device=self.backend.device).expand(self.batch, -1)

    def _forward(self, ids: torch.Tensor, positions: torch.Tensor, keep: int) -> torch.Tensor:
        kwargs = {self.backend._cache_kwarg: self.cache, self.backend._keep_kwarg: keep}
        out = self.backend.model(
            input_ids=ids, attention_mask=self.mask, position_ids=positions, use_cache=True, **kwargs
        )
        return out.logits

    def feed(self, ids: torch.Tensor | Sequence[int], *, keep: int = 1, rewind: bool = False) -> torch.Tensor:
        """Append tokens to every row; returns the logits of the last `keep` positions, (batch, keep, vocab).

        With `rewind`, the tokens are only looked at: the cache, mask and positions are restored afterwards.
        """
        if not isinstance(ids, torch.Tensor):
            ids = self.repeat(ids)
        width = ids.shape[1]
        before = self.cache.get_seq_length()
        positions = self.next_position[:, None] + torch.arange(width, device=ids.device)
        saved_mask = self.mask
        self.mask = torch.cat([self.mask, torch.ones_like(ids)], dim=1)
        logits = self._forward(ids, positions, keep=keep)
        if rewind:
            self.cache.crop(-width)  # negative: remove this many tokens (both the old and new Cache APIs)
            if self.cache.get_seq_length() != before:
                raise RuntimeError("this model's KV cache cannot be rewound; use mode='generate'")
            self.mask = saved_mask
        else:
            self.next_position = self.next_position + width
            self.logits = logits[:, -1]
        return logits
