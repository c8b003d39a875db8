"""Star steps against an independent union-find: the same component minimum for every node."""

from __future__ import annotations

import random

import pyarrow as pa

from corpusmill.core.components import adjacency, large_star, small_star
from corpusmill.core.grouping import EDGE_SCHEMA


def _union_find_minimum(edges: list[tuple[str, str]]) -> dict[str, str]:
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        parent.setdefault(node, node)
        while parent[node] != node:
            node = parent[node]
        return node

    for left, right in edges:
        a, b = find(left), find(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {node: find(node) for node in parent if find(node) != node}


def _converge(edges: pa.Table) -> tuple[dict[str, str], int]:
    steps = 0
    while True:
        large = large_star(adjacency(edges))
        small = small_star(adjacency(large.edges))
        steps += 2
        edges = small.edges
        if large.changed == 0 and small.changed == 0:
            return dict(zip(*small.decisions.to_pydict().values(), strict=True)), steps
        assert steps < 100


def test_random_graphs_resolve_to_their_component_minimum() -> None:
    for trial in range(60):
        rnd = random.Random(trial)
        ids = [f"doc-{rnd.randrange(10**6):06d}" for _ in range(rnd.randint(2, 50))]
        pairs = [(rnd.choice(ids), rnd.choice(ids)) for _ in range(rnd.randint(1, 70))]
        table = pa.table(
            {"id": [a for a, _ in pairs], "duplicate_of": [b for _, b in pairs]}, schema=EDGE_SCHEMA
        )
        decisions, _ = _converge(table)
        assert decisions == _union_find_minimum([(a, b) for a, b in pairs if a != b]), trial


def test_a_long_chain_needs_several_rounds_and_still_converges() -> None:
    nodes = [f"n{i:04d}" for i in range(200)]
    order = nodes[:]
    random.Random(3).shuffle(order)  # a path visiting the ids in random order
    table = pa.table({"id": order[1:], "duplicate_of": order[:-1]}, schema=EDGE_SCHEMA)
    decisions, steps = _converge(table)
    assert decisions == {node: "n0000" for node in nodes[1:]}
    assert steps > 2


def test_a_converged_star_reports_no_change() -> None:
    star = pa.table({"id": ["b", "c", "d"], "duplicate_of": ["a", "a", "a"]}, schema=EDGE_SCHEMA)
    assert large_star(adjacency(star)).changed == 0
    assert small_star(adjacency(star)).changed == 0
