"""What a worker process still loads when a part first turns Python values into Arrow, and what it froze."""

from __future__ import annotations

import gc
import sys


def arrow_loads() -> list[str]:
    """Modules that a first `pa.array` call loads in this process (pandas, where it was not loaded yet)."""
    import pyarrow as pa

    before = set(sys.modules)
    pa.array(["x", None], pa.string())
    return sorted(name for name in set(sys.modules) - before if "." not in name)


def frozen_objects() -> int:
    """Objects this process moved out of the cyclic collector's reach (`gc.freeze`)."""
    return gc.get_freeze_count()
