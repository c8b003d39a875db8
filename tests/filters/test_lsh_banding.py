"""The banding search: datasketch's choice, found without importing datasketch or SciPy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from datasketch.lsh import _optimal_param

from corpusmill.filters.lsh_banding import optimal_banding


@pytest.mark.parametrize("num_perm", [16, 64, 128, 256])
@pytest.mark.parametrize("recall_weight", [0.5, 0.9])
def test_the_split_is_the_one_datasketch_chooses(num_perm: int, recall_weight: float) -> None:
    thresholds = [round(0.05 * i, 2) for i in range(1, 20)]
    ours = [optimal_banding(t, num_perm, recall_weight) for t in thresholds]
    theirs = [_optimal_param(t, num_perm, 1.0 - recall_weight, recall_weight) for t in thresholds]
    assert ours == theirs
    assert len(set(ours)) > 3  # the grid spans many different splits, not one answer everywhere


@pytest.mark.parametrize(("threshold", "num_perm"), [(0.0, 128), (1.0, 128), (0.8, 0)])
def test_settings_outside_the_search_are_refused(threshold: float, num_perm: int) -> None:
    with pytest.raises(ValueError):
        optimal_banding(threshold, num_perm, 0.9)


def test_setting_up_the_minhash_stage_loads_neither_datasketch_nor_scipy() -> None:
    program = (
        "import sys, json\n"
        "from corpusmill.core.stage import resolve_stage\n"
        "cls = resolve_stage('dedup_minhash')\n"
        "stage = cls(cls.Params(threshold=0.7))\n"
        "stage.setup()\n"
        "print(json.dumps([stage.params.banding(), sorted(m for m in ('scipy', 'datasketch') if m in sys.modules)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=120
    )
    banding, loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert tuple(banding) == _optimal_param(0.7, 128, 0.1, 0.9) and loaded == []
