"""The `mix` stage's accounting rounds on Arrow batches, driven as the runner drives them, without a pipeline.

The threshold fit must stay bounded on the driver (no summary or plan grows with the corpus, no document id
ever leaves a part), still land each domain within one document of its target, and come out the same
whatever the batch split and partitioning, even when draws crowd into one slice or repeat.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from corpusmill.core.hashing import hash64
from corpusmill.mixtures import mix_stage
from corpusmill.mixtures.mix_stage import MixStage
from corpusmill.mixtures.spec import MixParams
from corpusmill.mixtures.threshold import EXACT_DOCUMENTS, KEY_BITS, SLICES, Fit, Window, narrow, start

BOUND = max(SLICES, EXACT_DOCUMENTS)  # entries any one container of a summary or plan may hold
MAX_ROUNDS = 8  # round 1, six refining rounds (64 bits, 10 a round), one exact round
Rows = list[dict[str, Any]]
Parts = list[list[pa.RecordBatch]]


def _rows(sizes: dict[str, tuple[int, Callable[[int], int]]]) -> Rows:
    """`documents` rows per domain, tokens from `tokens(index)`; ids never repeat."""
    return [
        {"id": f"{domain}-{index:06d}", "domain": domain, "token_count": tokens(index)}
        for domain, (documents, tokens) in sorted(sizes.items())
        for index in range(documents)
    ]


def _batch(rows: Rows) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        rows,
        schema=pa.schema([("id", pa.string()), ("domain", pa.string()), ("token_count", pa.int32())]),
    )


def _split(rows: Rows, parts: int, batch_rows: int, seed: int | None) -> Parts:
    """The rows dealt into `parts` parts of batches of at most `batch_rows` (shuffled first unless no seed)."""
    rows = list(rows)
    if seed is not None:
        random.Random(seed).shuffle(rows)
    dealt = [rows[number::parts] for number in range(parts)]
    return [
        [_batch(part[first : first + batch_rows]) for first in range(0, len(part), batch_rows)]
        for part in dealt
    ]


def _drive(stage: MixStage, parts: Parts) -> tuple[list[dict], list[dict], list[dict]]:
    """Accounting rounds as the runner runs them: each part's summary goes through JSON (its marker), the
    driver merges them and plans. Returns every part's and merged summary, the merged ones, and every plan."""
    seen: list[dict] = []
    merged_per_round: list[dict] = []
    plans: list[dict] = []
    plan = None
    for _ in range(MAX_ROUNDS):
        merged = None
        for part in parts:
            summary = None
            for batch in part:
                result = stage.account(batch, plan)
                summary = result if summary is None else stage.merge(summary, result)
            summary = json.loads(json.dumps(summary))
            seen.append(summary)
            merged = summary if merged is None else stage.merge(merged, summary)
        seen.append(merged)
        merged_per_round.append(merged)
        plan, final = stage.plan(merged, plan)
        plan = json.loads(json.dumps(plan))
        plans.append(plan)
        if final:
            return seen, merged_per_round, plans
    raise AssertionError(f"the plan did not settle in {MAX_ROUNDS} accounting rounds")


def _containers(value: Any) -> Iterator[dict | list]:
    if isinstance(value, dict | list):
        yield value
        for item in value.values() if isinstance(value, dict) else value:
            yield from _containers(item)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    for container in _containers(value):
        if isinstance(container, dict):
            yield from container.keys()
        else:
            yield from (item for item in container if isinstance(item, str))


def _kept_tokens(stage: MixStage, parts: Parts, plan: dict) -> dict[str, int]:
    """Tokens per domain of the documents (copies included) the final plan keeps."""
    kept: dict[str, int] = {}
    for batch in (batch for part in parts for batch in part):
        out = stage.apply(batch, plan)
        out = out.filter(pc.is_null(out.column("drop_reason")))
        for row in out.select(["domain", "token_count"]).to_pylist():
            kept[row["domain"]] = kept.get(row["domain"], 0) + row["token_count"]
    return kept


def _assert_bounded(seen: list[dict], plans: list[dict], ids: set[str]) -> None:
    for value in [*seen, *plans]:
        assert max(len(c) for c in _containers(value)) <= BOUND
        assert not ids & set(_strings(value)), "a document id reached the driver"


def _assert_on_target(stage: MixStage, parts: Parts, plan: dict, rows: Rows) -> None:
    """Every domain within one document of its planned tokens, and exactly what the fit said it keeps."""
    kept = _kept_tokens(stage, parts, plan)
    largest = {}
    for row in rows:
        largest[row["domain"]] = max(largest.get(row["domain"], 0), row["token_count"])
    for domain in plan["mixture"]["domains"]:
        name = domain["domain"]
        assert abs(kept.get(name, 0) - domain["expected_tokens"]) <= largest[name], domain
    for name, fitted in plan["fitted_tokens"].items():
        unique = sum(row["token_count"] for row in rows if row["domain"] == name)
        whole_copies = int(plan["rates"][name]) * unique
        assert kept[name] == whole_copies + fitted, name


def test_fifty_thousand_documents_reach_the_driver_as_bounded_counts_never_as_ids() -> None:
    rows = _rows({"news": (50_000, lambda i: 1), "science": (3_000, lambda i: 1 + i * 7919 % 500)})
    stage = MixStage(MixParams(multipliers={"news": 0.37, "science": 1.45}))
    parts = _split(rows, parts=4, batch_rows=5_000, seed=None)
    seen, _, plans = _drive(stage, parts)
    _assert_bounded(seen, plans, {row["id"] for row in rows})
    assert len(plans) == 3  # rates; one refining round; one exact round
    assert set(plans[-1]["thresholds"]) == {"news", "science"} and "windows" not in plans[-1]
    _assert_on_target(stage, parts, plans[-1], rows)


def test_thresholds_are_the_same_whatever_the_split() -> None:
    rows = _rows(
        {
            "news": (9_000, lambda i: 1 + i % 13),
            "shop": (4_000, lambda i: 1 + i * 31 % 400),
            "science": (700, lambda i: 50 + i % 7),
        }
    )
    stage = MixStage(MixParams(budget=40_000, multipliers={"news": 0.3, "shop": 1.0, "science": 2.5}))
    splits = [
        _split(rows, parts=1, batch_rows=len(rows), seed=None),
        _split(rows, parts=7, batch_rows=333, seed=1),
        _split(rows, parts=3, batch_rows=1_000, seed=2),
    ]
    runs = [_drive(stage, parts) for parts in splits]
    reference = runs[0]
    for _, merged, plans in runs[1:]:
        assert merged == reference[1]  # the driver sees the same counts, so it cannot plan otherwise
        assert plans == reference[2]
    assert set(reference[2][-1]["thresholds"]) == {"news", "shop", "science"}
    _assert_on_target(stage, splits[1], reference[2][-1], rows)


def _fake_draws(monkeypatch: pytest.MonkeyPatch, draw: Callable[[str], int]) -> None:
    """Draws from `draw(id)` instead of the hash, to place documents where an adversary would."""
    monkeypatch.setattr(mix_stage, "hash64", lambda seed, doc_id, copy: draw(doc_id))


def test_draws_crowded_into_one_slice_are_narrowed_down_not_gathered(monkeypatch: pytest.MonkeyPatch) -> None:
    # 5,000 documents in a band 2^40 wide: one 1/1024 slice of the range holds them all.
    band = 0x5A << (KEY_BITS - 8)
    _fake_draws(monkeypatch, lambda doc_id: band + (hash64(0, doc_id) >> (KEY_BITS - 40)))
    rows = _rows({"news": (5_000, lambda i: 1 + i % 9)})
    stage = MixStage(MixParams(multipliers={"news": 0.6}))
    parts = _split(rows, parts=3, batch_rows=700, seed=5)
    seen, _, plans = _drive(stage, parts)
    _assert_bounded(seen, plans, {row["id"] for row in rows})
    assert len(plans) == 5  # three refining rounds to get under 1,024 documents, then the exact one
    _assert_on_target(stage, parts, plans[-1], rows)


def test_equal_draws_are_one_unit_and_the_rounds_still_end(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3,000 documents share six draws (500 each, as repeated ids would): no cut can split a group.
    _fake_draws(monkeypatch, lambda doc_id: (0x77 << (KEY_BITS - 8)) + (int(doc_id[-6:]) % 6 << 30))
    rows = _rows({"news": (3_000, lambda i: 1 + i % 5)})
    stage = MixStage(MixParams(multipliers={"news": 0.5}))
    splits = [_split(rows, parts=2, batch_rows=400, seed=seed) for seed in (3, 4)]
    runs = [_drive(stage, parts) for parts in splits]
    assert runs[0][2] == runs[1][2]
    seen, _, plans = runs[0]
    _assert_bounded(seen, plans, {row["id"] for row in rows})
    kept = _kept_tokens(stage, splits[0], plans[-1])["news"]
    assert kept == plans[-1]["fitted_tokens"]["news"]
    groups = sorted({sum(r["token_count"] for r in rows if int(r["id"][-6:]) % 6 == k) for k in range(6)})
    assert abs(kept - plans[-1]["targets"]["news"]) <= max(groups) / 2


def test_a_window_of_one_document_is_settled_without_another_round() -> None:
    assert start(1, 10, 6.0) == Fit(1 << KEY_BITS, 10)  # 10 is nearer 6 than 0 is: keep it
    assert start(1, 10, 4.0) == Fit(0, 0)
    window = Window(low=0, bits=KEY_BITS, before=0, documents=5_000, tokens=5_000)
    counts = {"3": [2_000, 2_000], "8": [1, 40], "9": [2_999, 2_960]}
    # The cumulative tokens cross the target in slice 8, which holds one document: no exact round for it.
    slice_8 = 8 << (KEY_BITS - 10)
    assert narrow(window, counts, target=2_010) == Fit(slice_8, 2_000)  # 2,040 is further from 2,010
    assert narrow(window, counts, target=2_030) == Fit(slice_8 + (1 << (KEY_BITS - 10)), 2_040)


def test_the_exact_round_keeps_draws_while_that_nears_the_target() -> None:
    window = Window(low=1 << 40, bits=20, before=10, documents=4, tokens=17)
    counts = {"7": [1, 4], "0": [1, 5], "3": [2, 8]}  # any order: the driver sorts by draw
    assert narrow(window, counts, target=20) == Fit((1 << 40) + 7, 23)  # 10 + 5 + 8; 27 would be further
    assert narrow(window, counts, target=30) == Fit((1 << 40) + (1 << 20), 27)  # past the window: all kept
