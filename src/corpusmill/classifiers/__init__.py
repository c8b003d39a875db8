"""Qwen-based quality and domain classification: an LLM labels a sample, fastText models distilled from it score all."""
