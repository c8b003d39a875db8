"""Checkpoints that make a resumed run bit-identical to an uninterrupted one.

Besides model, optimizer and scheduler state, a checkpoint holds the step, the count of training samples
consumed (the data position: window order is a function of it) and every RNG state (Python, NumPy, torch
CPU and CUDA). It is written atomically, so a crash mid-save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from corpusmill.core.atomic import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1


def rng_states() -> dict[str, Any]:
    """Snapshot every random generator a training step might draw from."""
    states: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict[str, Any]) -> None:
    """Put every random generator back where a checkpoint left it."""
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically (temporary file, then rename)."""
    with atomic_path(path) as tmp:
        torch.save({"version": CHECKPOINT_VERSION, **state}, tmp)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint`, naming the file if it is not one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read training checkpoint ({exc}); delete it to start over") from exc
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: not a corpusmill training checkpoint (version {CHECKPOINT_VERSION})")
    return state
