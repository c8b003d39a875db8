"""Connected components by alternating large-star and small-star steps, one node group at a time.

Duplicate decisions need each document's component minimum, but the edges of a web-scale crawl do not fit
in one process. The two star operations (Kiveris et al., "Connected Components in MapReduce and Beyond",
2014) each look only at one node and its neighbours, so an engine can run them over hash buckets of nodes,
with every bucket's rows in a different worker:

- large-star at node u, with m = min(u, neighbours): every neighbour v > u is relinked to m;
- small-star at node u, with m = min(u, neighbours below u): u and every neighbour below it are linked to m.

Alternating them turns every component into a star around its smallest id; the edge set stops changing
within O(log^2 n) rounds, in practice a few. A step reports how many of its nodes changed something, so
the caller knows when the star forest is reached without ever holding it: at that point every node of a
small-star step that has a smaller neighbour has exactly one, the component minimum, and the step's
`decisions` (node -> that neighbour) are final.

Inputs and outputs are adjacency rows `(node, neighbour)` listing each undirected edge in both directions,
so a bucket holds everything its nodes see; rows may repeat and self-loops are ignored.
"""

from __future__ import annotations

from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from corpusmill.core.grouping import DUPLICATE_OF, EDGE_SCHEMA, ID

NODE = "node"
NEIGHBOR = "neighbor"
ADJACENCY_SCHEMA = pa.schema([pa.field(NODE, pa.string()), pa.field(NEIGHBOR, pa.string())])


class StarStep(NamedTuple):
    """What one star operation over a set of nodes produces."""

    edges: pa.Table  # EDGE_SCHEMA: undirected edges `(id, duplicate_of)` of the next graph
    changed: int  # nodes whose edges this step rewired (0 everywhere for both kinds: converged)
    decisions: pa.Table  # EDGE_SCHEMA: node -> its smallest neighbour (final once converged; small-star only)


def adjacency(edges: pa.Table) -> pa.Table:
    """Undirected edges `(id, duplicate_of)` as adjacency rows in both directions."""
    left, right = edges.column(ID), edges.column(DUPLICATE_OF)
    forward = pa.table({NODE: left, NEIGHBOR: right}).cast(ADJACENCY_SCHEMA)
    backward = pa.table({NODE: right, NEIGHBOR: left}).cast(ADJACENCY_SCHEMA)
    return pa.concat_tables([forward, backward])


def _clean(rows: pa.Table) -> pa.Table:
    """Distinct rows without self-loops."""
    rows = rows.select([NODE, NEIGHBOR]).cast(ADJACENCY_SCHEMA)
    rows = rows.filter(pc.not_equal(rows.column(NODE), rows.column(NEIGHBOR)))
    return rows.group_by([NODE, NEIGHBOR], use_threads=False).aggregate([])


def _minimum(rows: pa.Table) -> pa.Array:
    """For each row, min(node, smallest neighbour of that node among `rows`)."""
    smallest = rows.group_by([NODE], use_threads=False).aggregate([(NEIGHBOR, "min")])
    position = pc.index_in(rows.column(NODE), value_set=smallest.column(NODE))
    neighbour_min = pc.take(smallest.column(f"{NEIGHBOR}_min"), position)
    return pc.min_element_wise(neighbour_min, rows.column(NODE))


def _edges(left: pa.Array | pa.ChunkedArray, right: pa.Array | pa.ChunkedArray) -> pa.Table:
    return pa.table({ID: left, DUPLICATE_OF: right}, schema=EDGE_SCHEMA)


def large_star(rows: pa.Table) -> StarStep:
    """Relink every neighbour above a node to the smallest of the node and its neighbours."""
    rows = _clean(rows)
    minimum = _minimum(rows)
    upward = pc.greater(rows.column(NEIGHBOR), rows.column(NODE))
    moved = pc.and_(upward, pc.less(minimum, rows.column(NODE)))
    changed = pc.unique(rows.column(NODE).filter(moved))
    edges = _edges(rows.column(NEIGHBOR).filter(upward), minimum.filter(upward))
    return StarStep(edges, len(changed), EDGE_SCHEMA.empty_table())


def small_star(rows: pa.Table) -> StarStep:
    """Link a node and every neighbour below it to the smallest of them."""
    rows = _clean(rows)
    rows = rows.filter(pc.less(rows.column(NEIGHBOR), rows.column(NODE)))
    minimum = _minimum(rows)
    counts = rows.group_by([NODE], use_threads=False).aggregate([(NEIGHBOR, "count")])
    changed = int(pc.sum(pc.greater(counts.column(f"{NEIGHBOR}_count"), 1).cast(pa.int64())).as_py() or 0)
    # Neighbours other than the minimum move to it; the node itself keeps (or gets) its edge to the minimum.
    others = pc.not_equal(rows.column(NEIGHBOR), minimum)
    relinked = _edges(rows.column(NEIGHBOR).filter(others), minimum.filter(others))
    decisions = pa.table({ID: rows.column(NODE), DUPLICATE_OF: minimum}, schema=EDGE_SCHEMA)
    decisions = decisions.group_by([ID, DUPLICATE_OF], use_threads=False).aggregate([]).cast(EDGE_SCHEMA)
    return StarStep(pa.concat_tables([relinked, decisions]), changed, decisions)
