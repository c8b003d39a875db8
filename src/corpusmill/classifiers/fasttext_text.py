"""How corpusmill talks to fastText: the one line of text a model sees, training, and label probabilities.

A classifier scores well only on text shaped like what it was trained on, so training (`distill`) and scoring
(`DistilledModels`) both go through `normalise` and `label_probabilities` here and nowhere else. The model card
records `TEXT_FORMAT` and `max_chars`, and the scorer takes both from the card, never from its own defaults.

Normalisation: lowercase; words (`\\w+` runs) and single punctuation marks become space-separated tokens, so
`Price:` and `price` share a feature; every whitespace run (newlines and control characters included) becomes
one space, since fastText reads one example per line and its `predict` refuses newlines; fastText's label
prefix inside a text is defused, so a page cannot smuggle in a label; the result is cut to `max_chars` at a
token boundary, because fastText's cost grows with the input and the character of a page is settled by its
head. Only the first `1.25 * max_chars` raw characters are read: spacing out punctuation lengthens a text
and folding whitespace shortens it, and on every WCXB page this head gives the same line as the whole text
(a page that is mostly whitespace gets a shorter one). Normalising costs more than one model's prediction.

Training runs in a fresh Python subprocess, never in the calling process. The fastText build we depend on
(`fasttext-numpy2-wheel` 0.9.2) leaves most of a new model's input matrix uninitialised (single-threaded, its
random initialisation fills only the first tenth, and the rest is not zeroed), so a model trained in a
process that freed memory before starts from leftover bytes: its results change from run to run, and often
it diverges ("Encountered NaN"). A fresh process told to serve large allocations from new memory maps
(`MALLOC_MMAP_THRESHOLD_`) gets zero-filled pages from the kernel, which is the initialisation upstream
fastText intends; training is then reproducible byte for byte.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TEXT_FORMAT = 1
LABEL_PREFIX = "__label__"
_TOKEN = re.compile(r"\w+|[^\w\s]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# glibc then serves every allocation from 64 KiB up (any real input matrix) from fresh, zero-filled pages.
_MMAP_THRESHOLD = 65536
_TRAIN_SCRIPT = """
import json, sys
import fasttext
job = json.loads(sys.argv[1])
fasttext.train_supervised(input=job["input"], **job["kwargs"]).save_model(job["output"])
"""


def normalise(text: str | None, max_chars: int) -> str:
    """The fastText input line for a document: the same function at training and at scoring time."""
    if not text:
        return ""
    head = _CONTROL.sub(" ", text[: max_chars + max_chars // 4].lower().replace(LABEL_PREFIX, " label "))
    line = " ".join(_TOKEN.findall(head))
    if len(line) <= max_chars:
        return line
    cut = line.rfind(" ", 0, max_chars + 1)
    return line[: cut if cut > 0 else max_chars]


def label_line(label: str, line: str) -> str:
    """One training example in fastText's supervised format."""
    return f"{LABEL_PREFIX}{label} {line}\n"


def train_isolated(train_file: Path, model_path: Path, kwargs: dict[str, Any], *, what: str) -> None:
    """Train a supervised model in a fresh subprocess (see the module docstring for why) and save it."""
    job = json.dumps({"input": str(train_file), "output": str(model_path), "kwargs": kwargs})
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(_MMAP_THRESHOLD)}
    done = subprocess.run(
        [sys.executable, "-c", _TRAIN_SCRIPT, job], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = (
            done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit status {done.returncode}"
        )
        hint = " (training diverged: lower lr)" if "NaN" in tail else ""
        raise RuntimeError(f"fastText failed to train {what} from {train_file}: {tail}{hint}")


def load_model(path: Path) -> Any:
    """Load a fastText model file (prediction only: loading reads every weight, nothing is left uninitialised)."""
    import fasttext

    return fasttext.load_model(str(path))


def label_probabilities(model: Any, lines: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Probabilities (rows sum to 1) over `labels`, in that order, per line; NaN rows for empty lines.

    fastText returns its labels ranked per line and adds a 1e-5 floor to every probability, so the columns are
    reordered to `labels` and each row renormalised. An empty line has no features and fastText answers it
    with a meaningless ranking, so it gets no probabilities at all.
    """
    probs = np.full((len(lines), len(labels)), np.nan, dtype=np.float64)
    todo = [i for i, line in enumerate(lines) if line]
    if not todo:
        return probs
    column = {f"{LABEL_PREFIX}{label}": j for j, label in enumerate(labels)}
    ranked_labels, ranked_probs = model.predict([lines[i] for i in todo], k=-1)
    for i, names, values in zip(todo, ranked_labels, ranked_probs, strict=True):
        row = np.zeros(len(labels), dtype=np.float64)
        for name, value in zip(names, values, strict=True):
            j = column.get(name)
            if j is None:
                raise ValueError(
                    f"fastText model predicted label {name!r}, which its model card does not list"
                )
            row[j] = float(value)
        probs[i] = row / row.sum()
    return probs


def expected_score(probs: np.ndarray, values: Sequence[float]) -> np.ndarray:
    """The probability-weighted mean of the label values: a continuous score from a classifier over 0..5."""
    return probs @ np.asarray(values, dtype=np.float64)
