"""The LSH banding that weighs missed duplicates against false candidates best, without SciPy.

For a Jaccard threshold t and `num_perm` permutations split into b bands of r rows, two documents of
similarity s share a band with probability 1 - (1 - s^r)^b. datasketch's optimiser (`datasketch.lsh.
_optimal_param`) integrates that curve below t (false candidates) and the rest of it above t (missed
duplicates) with SciPy's `quad` for every split with b * r <= num_perm, and keeps the split with the least
weighted sum, first found on ties. Importing datasketch for it costs about 0.5 CPU-seconds in every worker
process (its package imports SciPy's integrators), several times more than the search itself.

Here the same search integrates with Gauss-Legendre quadrature from NumPy: the integrands are polynomials in
s of degree b * r <= num_perm, which `num_perm // 2 + 1` nodes integrate exactly (up to rounding), so the
sums are those `quad` computes, and the search visits the splits in datasketch's order with its strict
comparison. The tests check that both choose the same split over a grid of thresholds, permutation counts
and weights.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.lru_cache(maxsize=64)
def optimal_banding(threshold: float, num_perm: int, recall_weight: float) -> tuple[int, int]:
    """(bands, rows) with the least `(1 - recall_weight) * false candidates + recall_weight * missed`."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    if num_perm < 1:
        raise ValueError(f"num_perm must be positive, got {num_perm}")
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)
    unit = (nodes + 1.0) / 2.0  # the nodes on [0, 1], with weights summing to 1
    below, below_weights = unit * threshold, weights / 2.0 * threshold
    above, above_weights = threshold + unit * (1.0 - threshold), weights / 2.0 * (1.0 - threshold)
    false_positive_weight, false_negative_weight = 1.0 - recall_weight, recall_weight
    best, chosen = float("inf"), (0, 0)
    for bands in range(1, num_perm + 1):
        rows = np.arange(1, num_perm // bands + 1, dtype=np.float64)[:, None]
        # Probability that a pair shares no band, at every node, for every row count of this band count.
        miss_below = (1.0 - below[None, :] ** rows) ** bands
        miss_above = (1.0 - above[None, :] ** rows) ** bands
        false_positive = (1.0 - miss_below) @ below_weights
        false_negative = miss_above @ above_weights
        errors = false_positive * false_positive_weight + false_negative * false_negative_weight
        index = int(np.argmin(errors))  # the first of equal errors, as the sequential search keeps
        if errors[index] < best:
            best, chosen = float(errors[index]), (bands, index + 1)
    return chosen
