"""Megatron-LM's own reader opens the shards our writer produces, with identical documents."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from megatron.core.datasets.indexed_dataset import IndexedDataset

from corpusmill.shards.megatron import MegatronWriter
from corpusmill.shards.tokenizer import EOS_ID, encode_documents


def test_megatron_core_indexed_dataset_reads_our_shard(tmp_path: Path) -> None:
    texts = ["Hello, world!", "Grüße aus Köln.", "数据管道", "A longer document " * 50]
    documents = encode_documents(texts)
    prefix = tmp_path / "shard"
    with MegatronWriter(prefix) as writer:
        for tokens in documents:
            writer.add_document(tokens)
    dataset = IndexedDataset(str(prefix))
    assert len(dataset) == len(documents)
    assert list(dataset.document_indices) == list(range(len(documents) + 1))
    assert dataset.index.dtype == np.int32
    for index, tokens in enumerate(documents):
        assert dataset[index].tolist() == tokens
        assert tokens[-1] == EOS_ID
    # Partial reads, as Megatron's GPT dataset does when it packs sequences.
    assert dataset.get(3, offset=2, length=5).tolist() == documents[3][2:7]
