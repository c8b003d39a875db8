"""What the fault tests share: a small corpus and recipe, the CLI command, a run's outputs as bytes, and the
processes a run started."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import yaml

WORDS = [f"w{n}" for n in range(3000)]
# What a progress bar prints when stderr is not a terminal: `02-tokenize_v1   ━━━━   3/4 0:00:01`.
PROGRESS_LINE = re.compile(r"\d+/\d+\s+\d+:\d\d:\d\d$")


def write_recipe(root: Path, files: int = 4, rows: int = 40, words: int = 80) -> Path:
    """A JSONL corpus (random words: its parquet parts do not compress away) and a recipe writing shards."""
    rng = random.Random(4)
    corpus = root / "in"
    corpus.mkdir(parents=True)
    for index in range(files):
        lines = [
            {
                "id": line,
                "text": f"Report {index}-{line} says " + " ".join(rng.choice(WORDS) for _ in range(words)),
            }
            for line in range(rows)
        ]
        (corpus / f"f{index}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in lines))
    recipe = {
        "name": "faults",
        "input": {"paths": [str(corpus / "*.jsonl")], "part_bytes": 1},
        "stages": [
            {"stage": "dedup_exact"},
            {"stage": "tokenize"},
            {"stage": "write_shards", "max_tokens_per_shard": 4000},
        ],
    }
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_command(recipe: Path, engine: str, output: Path, *extra: str) -> list[str]:
    """`corpusmill run` as a user types it, in a fresh interpreter."""
    return [
        sys.executable,
        "-m",
        "corpusmill.cli",
        *extra,
        "run",
        str(recipe),
        "--engine",
        engine,
        "--output",
        str(output),
        "--workers",
        "2",
    ]


def outputs(run_dir: Path) -> dict[str, bytes]:
    """Every file of documents/, rejected/ and shards/, by relative path."""
    found = {}
    for folder in ("documents", "rejected", "shards"):
        for path in sorted((run_dir / folder).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(run_dir))] = path.read_bytes()
    return found


def reference_outputs(recipe: Path, run_dir: Path) -> dict[str, bytes]:
    """The outputs of an uninterrupted run (in process, on the local engine: every engine writes the same)."""
    from corpusmill.core.recipe import load_recipe
    from corpusmill.pipelines.runner import run_recipe

    run_recipe(load_recipe(recipe), engine="local", output=run_dir)
    return outputs(run_dir)


def messages(stderr: str) -> list[str]:
    """The lines of stderr that are not progress bars."""
    return [line for line in stderr.splitlines() if line.strip() and not PROGRESS_LINE.search(line)]


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid`, with its command line."""
    table = subprocess.run(["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True).stdout
    children: dict[int, list[tuple[int, str]]] = {}
    for row in table.splitlines():
        child, parent, args = [*row.split(None, 2), ""][:3]
        children.setdefault(int(parent), []).append((int(child), args))
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        for child, args in children.get(pending.pop(), []):
            found[child] = args
            pending.append(child)
    return found
