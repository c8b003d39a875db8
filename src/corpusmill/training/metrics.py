"""Training metrics on disk: an append-only JSON-lines log and a loss plot drawn from it.

The log is the source of truth and the plot is derived from it, so a resumed run's plot shows the whole
curve. On resume the log is cut back to the checkpoint's step, dropping lines a crashed run wrote after
its last checkpoint (those steps are about to be run again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from corpusmill.core.atomic import atomic_open, atomic_path

METRICS_NAME = "metrics.jsonl"
PLOT_NAME = "loss.png"


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """All records of a metrics log (empty when it does not exist yet)."""
    if not path.is_file():
        return []
    records = []
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines.pop()  # a line cut short by a crash mid-write; its step is run again after resume
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"{path}:{number}: not a JSON line ({exc}); delete the file to start over"
                ) from None
    return records


def truncate_metrics(path: Path, last_step: int) -> None:
    """Keep only records up to `last_step`, so re-run steps are not logged twice."""
    records = [r for r in read_metrics(path) if r.get("step", 0) <= last_step]
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, sort_keys=True) + "\n")


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    """Append one record as a JSON line (flushed at once, so a crash loses at most the current line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")


def plot_losses(metrics_path: Path, plot_path: Path) -> None:
    """Draw train and eval loss against step into a PNG, for a quick look at a run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval_loss"]) for r in records if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if evals:
        ax.plot(*zip(*evals, strict=True), marker="o", label="held-out loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend()
    fig.tight_layout()
    with atomic_path(plot_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
