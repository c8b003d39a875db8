"""Turning shared keys into duplicate decisions, keyed by document id.

Deduplication is map -> group by key -> map. A `GroupStage` maps documents to `(key, id)` rows; the rows of
one key meet in one bucket task (`pipelines.group_tasks`), which calls `star_edges` to link every member of a
key group to its smallest id. Connected components over those edges then name, for every document but one
per component, the document it duplicates; the survivor is the smallest id, so the result depends only on
ids: not on partitioning, ordering or engine. Runs resolve components in bucketed star steps
(`core.components`); `duplicate_decisions` is the same answer computed in one process, for small inputs
held in memory (the benchmark's bare stage loop, tests).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

KEY = "key"
ID = "id"
DUPLICATE_OF = "duplicate_of"

KEY_SCHEMA = pa.schema([pa.field(KEY, pa.binary()), pa.field(ID, pa.string())])
EDGE_SCHEMA = pa.schema([pa.field(ID, pa.string()), pa.field(DUPLICATE_OF, pa.string())])


def star_edges(rows: pa.Table) -> pa.Table:
    """Link every id to the smallest id sharing its key; rows may hold one key group or many."""
    if rows.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    rows = rows.select([KEY, ID]).sort_by([(KEY, "ascending"), (ID, "ascending")])
    keys = rows.column(KEY).combine_chunks()
    ids = rows.column(ID).combine_chunks()
    # A row starts a new group when its key differs from the previous row's key.
    starts = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    is_start = pa.concat_arrays([pa.array([True]), starts.cast(pa.bool_())])
    group_index = pc.subtract(pc.cumulative_sum(is_start.cast(pa.int64())), 1)
    start_positions = pc.indices_nonzero(is_start)
    roots = pc.take(ids, pc.take(start_positions, group_index))
    linked = pc.and_(pc.invert(is_start), pc.not_equal(ids, roots))
    return pa.table({ID: pc.filter(ids, linked), DUPLICATE_OF: pc.filter(roots, linked)}, schema=EDGE_SCHEMA)


def unique_edges(edges: pa.Table) -> pa.Table:
    """Each linked pair once (a pair sharing many LSH bands arrives once per band), in a fixed order."""
    if edges.num_rows == 0:
        return EDGE_SCHEMA.empty_table()
    pairs = edges.group_by([ID, DUPLICATE_OF], use_threads=False).aggregate([])
    return (
        pairs.select([ID, DUPLICATE_OF])
        .sort_by([(ID, "ascending"), (DUPLICATE_OF, "ascending")])
        .cast(EDGE_SCHEMA)
    )


def duplicate_decisions(edges: pa.Table) -> pa.Table:
    """Connected components over undirected edges; every member but the smallest id maps to that id."""
    parent: dict[str, str] = {}

    def find(node: str) -> str:
        root = node
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(node, node) != root:  # path compression
            parent[node], node = root, parent[node]
        return root

    for left, right in zip(edges.column(ID).to_pylist(), edges.column(DUPLICATE_OF).to_pylist(), strict=True):
        root_left, root_right = find(left), find(right)
        if root_left != root_right:
            # The smaller id always becomes the root, so roots are component minima.
            low, high = sorted((root_left, root_right))
            parent[high] = low
        parent.setdefault(left, left)
        parent.setdefault(right, right)
    members = sorted(node for node in parent if find(node) != node)
    return pa.table({ID: members, DUPLICATE_OF: [find(node) for node in members]}, schema=EDGE_SCHEMA)
