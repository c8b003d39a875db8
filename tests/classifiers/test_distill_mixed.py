"""distill trains on one annotator: a mix of models or prompt versions is refused until a choice is made.

The annotations are real WCXB page texts labelled by simple rules, stored as three annotators would have
answered: a real model under two prompt versions and a random-weight demo model whose labels are noise, all
over the same documents. Trained together, the noise would be averaged into the classifiers without a trace.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from corpusmill.classifiers.annotations import ANNOTATION_SCHEMA
from corpusmill.classifiers.distill import MixedAnnotators, distill, read_annotations
from corpusmill.classifiers.taxonomy import DOMAIN_NAMES
from corpusmill.cli import app

QWEN, DEMO = "Qwen/Qwen2.5-7B-Instruct", "/models/demo-annotator"
V1, V2 = "annotate_v1-1111111111", "annotate_v1-2222222222"
FAST = {"epochs": 5, "dim": 8, "bucket": 5_000, "max_chars": 800}
runner = CliRunner()


def _pages(shared_data: Path, count: int = 120) -> list[tuple[str, str, str]]:
    """(id, text, domain) of real pages: running prose (many "the") is 'reference', the rest 'other'."""
    pages = []
    for path in sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        text = (doc["ground_truth"].get("main_content") or "")[:1500]
        if text.strip():
            domain = "reference" if text.lower().count(" the ") > 10 else "other"
            pages.append((f"wcxb-{path.stem}", text, domain))
        if len(pages) == count:
            break
    return pages


def _rows(
    pages: list[tuple[str, str, str]], model: str, prompt_version: str, noise: bool = False
) -> list[dict]:
    rng = random.Random(f"{model}/{prompt_version}")
    rows = []
    for doc_id, text, domain in pages:
        words = re.findall(r"[a-z]+", text.lower())
        score = min(5.0, len(set(words)) / 40)
        rows.append(
            {
                "id": doc_id,
                "prompt_version": prompt_version,
                "model": model,
                "status": "ok",
                "text": text,
                "dim__overall": rng.uniform(0, 5) if noise else score,
                "domain": rng.choice(DOMAIN_NAMES) if noise else domain,
            }
        )
    return rows


@pytest.fixture(scope="module")
def annotations(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Qwen under V1 (120 pages) and V2 (the first 80), the random demo model under V1 (120), one file each."""
    pages = _pages(shared_data)
    directory = tmp_path_factory.mktemp("mixed") / "annotations"
    directory.mkdir()
    for name, rows in (
        ("0001-qwen-v1.parquet", _rows(pages, QWEN, V1)),
        ("0002-demo-v1.parquet", _rows(pages, DEMO, V1, noise=True)),
        ("0003-qwen-v2.parquet", _rows(pages[:80], QWEN, V2)),
    ):
        pq.write_table(pa.Table.from_pylist(rows, schema=ANNOTATION_SCHEMA), directory / name)
    return directory


def test_a_mix_is_refused_with_every_annotator_and_the_flags_to_choose(
    annotations: Path, tmp_path: Path
) -> None:
    with pytest.raises(MixedAnnotators) as refused:
        distill(annotations, tmp_path / "out", **FAST)
    message = str(refused.value)
    assert "3 annotators" in message
    for model, version, rows in ((QWEN, V1, 120), (DEMO, V1, 120), (QWEN, V2, 80)):
        line = next(line for line in message.splitlines() if model in line and version in line)
        assert f"({rows} 'ok' annotations)" in line
    assert "--model" in message and "--prompt-version" in message and "--allow-mixed" in message
    assert not (tmp_path / "out").exists()

    # One filter that still leaves two annotators (Qwen under two prompt versions) is refused too.
    with pytest.raises(MixedAnnotators, match="2 annotators"):
        distill(annotations, tmp_path / "out", model=QWEN, **FAST)
    assert read_annotations(annotations).summary["annotators"] == [
        {"model": DEMO, "prompt_version": V1, "rows": 120},
        {"model": QWEN, "prompt_version": V1, "rows": 120},
        {"model": QWEN, "prompt_version": V2, "rows": 80},
    ]


def test_filters_that_leave_one_annotator_train_and_the_card_records_them(
    annotations: Path, tmp_path: Path
) -> None:
    chosen = distill(annotations, tmp_path / "qwen-v1", model=QWEN, prompt_version=V1, **FAST)
    used = chosen.card["annotations"]
    assert used["filter"] == {"prompt_version": V1, "model": QWEN, "allow_mixed": False}
    assert used["annotators"] == [{"model": QWEN, "prompt_version": V1, "rows": 120}]
    assert used["rows_used"] == 120 and used["excluded_by_filter"] == 200

    # A prompt version only one model answered narrows it to one annotator on its own.
    by_prompt = distill(annotations, tmp_path / "v2", prompt_version=V2, **FAST)
    assert by_prompt.card["annotations"]["annotators"] == [{"model": QWEN, "prompt_version": V2, "rows": 80}]


def test_allow_mixed_trains_on_all_of_them_and_says_so(annotations: Path, tmp_path: Path) -> None:
    mixed = distill(annotations, tmp_path / "mixed", allow_mixed=True, **FAST)
    used = mixed.card["annotations"]
    assert used["filter"] == {"prompt_version": None, "model": None, "allow_mixed": True}
    assert len(used["annotators"]) == 3 and used["rows_used"] == 320


def test_the_cli_refuses_a_mix_and_takes_the_flags(annotations: Path, tmp_path: Path) -> None:
    common = ["distill", str(annotations), "--bucket", "5000", "--dim", "8", "--epochs", "5"]
    refused = runner.invoke(app, [*common, "--output", str(tmp_path / "refused")])
    assert refused.exit_code == 1
    assert "3 annotators" in refused.output and f"--model {DEMO}" in refused.output

    chosen = runner.invoke(
        app, [*common, "--output", str(tmp_path / "chosen"), "--model", QWEN, "--prompt", V1]
    )  # --prompt: the old name of --prompt-version
    assert chosen.exit_code == 0, chosen.output
    card = json.loads((tmp_path / "chosen" / "model_card.json").read_text())
    assert card["annotations"]["filter"] == {"prompt_version": V1, "model": QWEN, "allow_mixed": False}

    allowed = runner.invoke(app, [*common, "--output", str(tmp_path / "allowed"), "--allow-mixed"])
    assert allowed.exit_code == 0, allowed.output
    card = json.loads((tmp_path / "allowed" / "model_card.json").read_text())
    assert card["annotations"]["filter"]["allow_mixed"] is True
