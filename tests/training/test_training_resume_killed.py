"""A `corpusmill train` process killed with SIGKILL mid-run resumes to the same losses as an unbroken run.

The in-process resume test stops cleanly at `max_steps`; this one runs the real command line in a child
process, kills it without warning after a checkpoint and some later steps, and runs the same command again.
The two runs are separate interpreters, so this also checks that nothing a step depends on (data order,
initial weights, RNG states, the schedule) leaks from process state rather than the checkpoint.

The children run on the CPU with one OpenMP thread. One thread is for speed, not determinism: the tiny
model's small matrices gain nothing from a second thread, and on a busy shared CI machine an oversubscribed
second thread makes every step several times slower (one and two threads gave bit-identical losses at this
size in a 20-step check). The GPU is hidden because CUDA's embedding backward accumulates with atomics, so
two GPU runs need not agree to the last bit, and because GPU steps would be too fast to kill reliably
between checkpoints.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from corpusmill.shards.manifest import HeldoutInfo, ShardEntry, ShardManifest
from corpusmill.shards.megatron import MegatronWriter
from corpusmill.shards.tokenizer import encode_documents

MAX_STEPS = 12
CHECKPOINT_EVERY = 4
# Kill once this step is logged: past the first checkpoint and before the run can end.
KILL_AT_LOGGED_STEP = CHECKPOINT_EVERY + 2
CONFIG = f"""\
preset: tiny
seq_len: 32
micro_batch_size: 2
max_steps: {MAX_STEPS}
warmup_steps: 2
log_every: 1
eval_every: 3
heldout_windows: 4
checkpoint_every: {CHECKPOINT_EVERY}
seed: 99
"""
TIMEOUT_S = 180
# Wall-clock throughput differs between any two runs; every other field must match exactly.
TIMING_FIELDS = {"tokens_per_s"}


@pytest.fixture(scope="module")
def shards_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training and a held-out shard of real article text, marked by split in the manifest."""
    files = sorted((shared_data / "wcxb-dev" / "ground-truth").glob("*.json"))[:40]
    texts = [json.loads(p.read_text(encoding="utf-8"))["ground_truth"]["main_content"] for p in files]
    docs = encode_documents([t for t in texts if t and t.strip()])
    out = tmp_path_factory.mktemp("resume-shards")
    entries = []
    for name, split, chunk in (("shard-00000", "train", docs[:32]), ("heldout-00000", "heldout", docs[32:])):
        writer = MegatronWriter(out / name)
        for doc in chunk:
            writer.add_document(np.asarray(doc, dtype=np.int32))
        entries.append(ShardEntry.from_info(writer.finalize(), out, split))
    manifest = ShardManifest.from_shards(entries, heldout=HeldoutInfo(fraction=0.2, seed=0))
    manifest.write(out / "manifest.json")
    return out


def _command(shards: Path, config: Path, out: Path) -> list[str]:
    cli = [sys.executable, "-m", "corpusmill.cli", "train"]
    return [*cli, str(shards), "--config", str(config), "--output", str(out)]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    return {**env, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}


def _records(path: Path) -> list[dict]:
    """Complete lines of a metrics log (a line being written when we look is left for later)."""
    if not path.is_file():
        return []
    text = path.read_text(encoding="utf-8")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]


def _without_timing(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in TIMING_FIELDS}


def _run_to_end(command: list[str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=TIMEOUT_S)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _run_and_kill(command: list[str], out: Path, log: Path) -> int:
    """Start training and SIGKILL it once a checkpoint exists and a later step is logged; return that step."""
    with open(log, "w", encoding="utf-8") as sink:
        proc = subprocess.Popen(command, env=_env(), stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    pytest.fail(
                        f"training exited ({proc.returncode}) before it could be killed:\n{log.read_text()}"
                    )
                steps = [r["step"] for r in _records(out / "metrics.jsonl")]
                if (out / "checkpoint.pt").is_file() and steps and steps[-1] >= KILL_AT_LOGGED_STEP:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.02)
            else:
                pytest.fail(
                    f"no checkpoint and step {KILL_AT_LOGGED_STEP} within {TIMEOUT_S} s:\n{log.read_text()}"
                )
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return max(r["step"] for r in _records(out / "metrics.jsonl"))


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_sigkilled_training_resumes_to_the_uninterrupted_losses(shards_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    whole_dir, split_dir = tmp_path / "whole", tmp_path / "split"

    # The unbroken run goes on beside the one that is killed (each has one thread; the machine has two cores).
    unbroken = subprocess.Popen(
        _command(shards_dir, config, whole_dir),
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        last_logged = _run_and_kill(
            _command(shards_dir, config, split_dir), split_dir, tmp_path / "killed.log"
        )
        out, err = unbroken.communicate(timeout=TIMEOUT_S)
    finally:
        if unbroken.poll() is None:
            unbroken.kill()
            unbroken.wait()
    assert unbroken.returncode == 0, f"the unbroken run failed:\n{out}\n{err}"
    whole = _records(whole_dir / "metrics.jsonl")
    assert [r["step"] for r in whole] == list(range(1, MAX_STEPS + 1))
    assert all("loss" in r for r in whole)

    assert KILL_AT_LOGGED_STEP <= last_logged < MAX_STEPS, "the kill must land mid-run, not after the end"
    killed = _records(split_dir / "metrics.jsonl")
    resume_from = int(_checkpoint(split_dir / "checkpoint.pt")["step"])
    assert resume_from % CHECKPOINT_EVERY == 0 and 0 < resume_from < last_logged, (
        f"checkpoint at step {resume_from}, last logged step {last_logged}: the killed run should have "
        "logged steps past its last checkpoint, which the resumed run must redo"
    )
    # Before resuming, the killed log is a clean prefix of the uninterrupted one (no torn or doubled lines).
    assert [r["step"] for r in killed] == list(range(1, last_logged + 1))

    resumed = _run_to_end(_command(shards_dir, config, split_dir))
    assert f"from step {resume_from} " in resumed.stderr, resumed.stderr
    assert f"trained steps {resume_from + 1}-{MAX_STEPS}:" in resumed.stdout, resumed.stdout
    final = _records(split_dir / "metrics.jsonl")

    # Every step appears once, in order: the steps the killed run logged after its checkpoint were dropped
    # and logged again, not appended a second time.
    assert [r["step"] for r in final] == list(range(1, MAX_STEPS + 1))
    # Step for step the same numbers as the unbroken run: loss, eval loss, lr, grad norm, tokens.
    assert [_without_timing(r) for r in final] == [_without_timing(r) for r in whole]
    # Lines up to the checkpoint are the killed run's own, untouched (throughput included); the redone steps
    # after it reproduce what the killed run had logged for them.
    assert final[:resume_from] == killed[:resume_from]
    redone = slice(resume_from, last_logged)
    assert [_without_timing(r) for r in final[redone]] == [_without_timing(r) for r in killed[redone]]

    # The end states agree bit for bit too, so training could continue identically from either.
    ours, theirs = _checkpoint(split_dir / "checkpoint.pt"), _checkpoint(whole_dir / "checkpoint.pt")
    assert (
        (ours["step"], ours["samples"]) == (theirs["step"], theirs["samples"]) == (MAX_STEPS, MAX_STEPS * 2)
    )
    assert ours["model"].keys() == theirs["model"].keys()
    for name, tensor in ours["model"].items():
        assert torch.equal(tensor, theirs["model"][name]), name
    assert (split_dir / "loss.png").is_file()
