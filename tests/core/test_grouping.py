"""Duplicate decisions depend only on ids, never on order or partitioning."""

from __future__ import annotations

import random

import pyarrow as pa

from corpusmill.core.grouping import EDGE_SCHEMA, KEY_SCHEMA, duplicate_decisions, star_edges, unique_edges


def _keys(rows: list[tuple[bytes, str]]) -> pa.Table:
    return pa.table({"key": [k for k, _ in rows], "id": [i for _, i in rows]}, schema=KEY_SCHEMA)


def test_star_edges_link_each_group_to_its_smallest_id() -> None:
    table = _keys([(b"k1", "c"), (b"k2", "x"), (b"k1", "a"), (b"k1", "b"), (b"k3", "q"), (b"k3", "p")])
    edges = sorted(zip(*star_edges(table).to_pydict().values(), strict=True))
    assert edges == [("b", "a"), ("c", "a"), ("q", "p")]


def test_a_document_listed_twice_under_one_key_is_not_linked_to_itself() -> None:
    # Ids are unique within a run (file name and place), so one id twice under a key is one document; documents
    # whose inputs share an id get different ids and do meet (tests/pipelines/test_document_identity.py).
    edges = star_edges(_keys([(b"k", "f.jsonl:1"), (b"k", "f.jsonl:1"), (b"k", "g.jsonl:1")]))
    assert list(zip(*edges.to_pydict().values(), strict=True)) == [("g.jsonl:1", "f.jsonl:1")]


def test_components_are_transitive_and_rooted_at_the_smallest_id() -> None:
    edges = pa.table({"id": ["d", "c", "z", "b"], "duplicate_of": ["c", "b", "y", "e"]}, schema=EDGE_SCHEMA)
    decisions = dict(zip(*duplicate_decisions(edges).to_pydict().values(), strict=True))
    assert decisions == {"c": "b", "d": "b", "e": "b", "z": "y"}


def test_decisions_do_not_depend_on_edge_order() -> None:
    rng = random.Random(3)
    pairs = [(f"doc{rng.randrange(60):02d}", f"doc{rng.randrange(60):02d}") for _ in range(80)]
    reference = None
    for _ in range(5):
        rng.shuffle(pairs)
        flipped = [(b, a) if rng.random() < 0.5 else (a, b) for a, b in pairs]
        table = pa.table(
            {"id": [a for a, _ in flipped], "duplicate_of": [b for _, b in flipped]}, schema=EDGE_SCHEMA
        )
        result = duplicate_decisions(table).to_pydict()
        reference = reference or result
        assert result == reference
    # Every kept root is the minimum of its component.
    for member, root in zip(reference["id"], reference["duplicate_of"], strict=True):
        assert root < member


def test_unique_edges_collapse_pairs_seen_under_many_keys() -> None:
    table = _keys(
        [(b"band1", "b"), (b"band1", "a"), (b"band2", "a"), (b"band2", "b"), (b"band3", "c"), (b"band3", "a")]
    )
    edges = unique_edges(star_edges(table)).to_pydict()
    assert list(zip(edges["id"], edges["duplicate_of"], strict=True)) == [("b", "a"), ("c", "a")]
