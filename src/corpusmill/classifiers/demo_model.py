"""A tiny random-weight Qwen2 model with the real Qwen2.5 chat tokenizer, for running `annotate` offline.

The demo and the tests cannot download Qwen2.5-Instruct, but they should still drive the real loading and
scoring code (`AutoModelForCausalLM.from_pretrained` on a directory, the chat template, guided scoring). This
writes such a directory: the architecture and tokenizer are Qwen2.5's, the weights are random, so its
labels are noise and say nothing about the documents.
"""

from __future__ import annotations

from pathlib import Path

from corpusmill.core.atomic import write_json


def write_demo_annotator(
    out_dir: str | Path, *, seed: int = 0, hidden_size: int = 64, layers: int = 2
) -> Path:
    """Save the tiny model and tokenizer to `out_dir` (loadable with `from_pretrained`) and return it."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from corpusmill.classifiers.hf_chat import qwen25_chat_tokenizer
    from corpusmill.shards.tokenizer import VOCAB_SIZE

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = Qwen2Config(
        vocab_size=VOCAB_SIZE,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    )
    Qwen2ForCausalLM(config).save_pretrained(out)
    qwen25_chat_tokenizer().save_pretrained(out)
    write_json(out / "corpusmill-demo.json", {"random_weights": True, "seed": seed})
    return out
