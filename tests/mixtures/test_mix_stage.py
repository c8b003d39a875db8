"""The `mix` stage through the runner: planned against achieved per domain, copies, determinism, splits."""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpusmill.core.hashing import hash64
from corpusmill.core.recipe import parse_recipe
from corpusmill.pipelines.runner import run_recipe
from corpusmill.pipelines.verify import verify_run

WORDS = [
    "river",
    "garden",
    "market",
    "winter",
    "school",
    "bridge",
    "forest",
    "music",
    "letter",
    "island",
    "village",
    "doctor",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 documents of three domains (150/100/50) and varied lengths, in three files."""
    rng = random.Random(7)
    out = tmp_path_factory.mktemp("mix-input")
    rows = []
    for index, domain in enumerate(["news"] * 150 + ["shop"] * 100 + ["science"] * 50):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 300)))
        rows.append({"id": f"doc-{index:04d}", "text": f"{domain} {index}: {words}.", "domain": domain})
    rng.shuffle(rows)
    for number in range(3):
        (out / f"part{number}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[number::3]))
    return out


def _recipe_data(corpus: Path, mix: dict, part_bytes: int = 1) -> dict:
    return {
        "name": "mix-test",
        "input": {"paths": [str(corpus / "*.jsonl")], "lang_field": "domain", "part_bytes": part_bytes},
        "stages": [
            {"stage": "tokenize"},
            {"stage": "mix", "domain_column": "lang", **mix},
            {"stage": "write_shards", "max_tokens_per_shard": 20_000},
        ],
    }


def _recipe(corpus: Path, mix: dict, part_bytes: int = 1) -> object:
    return parse_recipe(_recipe_data(corpus, mix, part_bytes))


def _achieved(run_dir: Path) -> tuple[dict[str, int], dict[str, int], list[dict]]:
    rows = pq.read_table(run_dir / "documents", columns=["id", "lang", "token_count", "mix_copy"]).to_pylist()
    tokens: dict[str, int] = defaultdict(int)
    largest: dict[str, int] = defaultdict(int)
    for row in rows:
        tokens[row["lang"]] += row["token_count"]
        largest[row["lang"]] = max(largest[row["lang"]], row["token_count"])
    return dict(tokens), dict(largest), rows


def _plan(run_dir: Path) -> dict:
    stats = json.loads((run_dir / "stats.json").read_text())
    (plan,) = stats["plans"].values()
    return plan


def test_each_domain_lands_within_one_document_of_plan(corpus: Path, tmp_path: Path) -> None:
    mix = {"budget": 60_000, "weights": {"news": 0.2, "shop": 0.3, "science": 0.5}}
    result = run_recipe(_recipe(corpus, mix), engine="local", output=tmp_path / "run")
    tokens, largest, rows = _achieved(result.run_dir)
    plan = _plan(result.run_dir)
    planned = {d["domain"]: d["expected_tokens"] for d in plan["mixture"]["domains"]}
    for domain, expected in planned.items():
        assert abs(tokens[domain] - expected) <= largest[domain], (domain, tokens[domain], expected)
    rates = plan["rates"]
    assert rates["news"] < 1 < rates["shop"] < 4 and rates["science"] > 1
    # Copies: distinct ids, `<id>#<copy>`, each original repeated floor(rate) or floor(rate)+1 times.
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))
    per_original = Counter(i.split("#")[0] for i in ids)
    for row in rows:
        if row["mix_copy"]:
            assert row["id"] == f"{row['id'].split('#')[0]}#{row['mix_copy']}"
    shop = [n for i, n in per_original.items() if i in {r["id"] for r in rows if r["lang"] == "shop"}]
    assert set(shop) <= {int(rates["shop"]), int(rates["shop"]) + 1}
    assert verify_run(result.run_dir).problems == []


def test_copies_and_drops_follow_the_hash_rule(corpus: Path, tmp_path: Path) -> None:
    mix = {"multipliers": {"news": 0.5, "shop": 1.5, "science": 1.0}, "seed": 3}
    result = run_recipe(_recipe(corpus, mix), engine="local", output=tmp_path / "run")
    plan = _plan(result.run_dir)
    rows = pq.read_table(result.run_dir / "documents", columns=["id", "lang", "mix_copy"]).to_pylist()
    rejected = pq.read_table(result.run_dir / "rejected", columns=["id", "lang", "drop_reason"]).to_pylist()
    assert {r["drop_reason"] for r in rejected} == {"mix_downsampled"}
    threshold = plan["thresholds"]["news"]
    news = [r for r in rows if r["lang"] == "news"]  # one copy exactly when u < threshold
    assert all(r["mix_copy"] == 0 and hash64(3, r["id"], 0) < threshold for r in news)
    assert all(r["lang"] == "news" and hash64(3, r["id"], 0) >= threshold for r in rejected)
    assert len(news) + len(rejected) == 150
    science = [r for r in rows if r["lang"] == "science"]
    assert len(science) == 50 and all(r["mix_copy"] == 0 for r in science)  # rate 1.0: each exactly once


def test_the_mixture_does_not_depend_on_how_the_input_was_split(corpus: Path, tmp_path: Path) -> None:
    mix = {"budget": "50K", "multipliers": {"shop": 0.3, "science": 2.0}}
    three = run_recipe(_recipe(corpus, mix), engine="local", output=tmp_path / "three")
    one = run_recipe(_recipe(corpus, mix, part_bytes=1 << 30), engine="local", output=tmp_path / "one")
    ids = [
        sorted(pq.read_table(r.run_dir / "documents", columns=["id"]).column("id").to_pylist())
        for r in (three, one)
    ]
    assert ids[0] == ids[1]
    shards = [
        json.loads((r.run_dir / "shards" / "manifest.json").read_text())["shards"] for r in (three, one)
    ]
    assert [s["bin_sha256"] for s in shards[0]] == [s["bin_sha256"] for s in shards[1]]


def test_an_infeasible_target_is_capped_and_warned(corpus: Path, tmp_path: Path) -> None:
    mix = {"budget": 200_000, "weights": {"news": 0.1, "shop": 0.1, "science": 0.8}, "max_epochs": 2}
    result = run_recipe(_recipe(corpus, mix), engine="local", output=tmp_path / "run")
    plan = _plan(result.run_dir)
    assert plan["rates"]["science"] == 2.0
    assert any(w.startswith("science: target") for w in plan["mixture"]["warnings"])
    tokens, _, rows = _achieved(result.run_dir)
    science_unique = sum(r["token_count"] for r in rows if r["lang"] == "science" and "#" not in r["id"])
    assert tokens["science"] == 2 * science_unique


def test_a_missing_domain_column_is_a_clear_error(corpus: Path, tmp_path: Path) -> None:
    recipe = parse_recipe(
        {
            "name": "mix-missing",
            "input": {"paths": [str(corpus / "*.jsonl")]},
            "stages": [
                {"stage": "tokenize"},
                {"stage": "mix", "multipliers": {"a": 1}, "domain_column": "topic"},
            ],
        }
    )
    with pytest.raises(KeyError, match="no `topic` column"):
        run_recipe(recipe, engine="local", output=tmp_path / "run")


def test_plan_command_replans_from_a_runs_accounting(corpus: Path, tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from corpusmill.cli import app

    mix = {"budget": 30_000, "weights": {"news": 0.5, "shop": 0.5}}
    run_dir = run_recipe(_recipe(corpus, mix), engine="local", output=tmp_path / "run").run_dir
    changed = _recipe_data(corpus, {"budget": "45K", "weights": {"news": 1, "science": 1}})
    recipe_path = tmp_path / "changed.yaml"
    recipe_path.write_text(yaml.safe_dump(changed))
    shown = CliRunner().invoke(app, ["plan", str(recipe_path), "--run", str(run_dir)])
    assert shown.exit_code == 0, shown.output
    assert "expected total: 45,000 tokens" in shown.output
    assert "weights sum to 2" in shown.output
    missing = CliRunner().invoke(app, ["plan", str(recipe_path), "--run", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "no mixture accounting" in missing.output
