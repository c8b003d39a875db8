"""What a worker process still loads when a part first turns Python values into Arrow."""

from __future__ import annotations

import sys


def arrow_loads() -> list[str]:
    """Modules that a first `pa.array` call loads in this process (pandas, where it was not loaded yet)."""
    import pyarrow as pa

    before = set(sys.modules)
    pa.array(["x", None], pa.string())
    return sorted(name for name in set(sys.modules) - before if "." not in name)
