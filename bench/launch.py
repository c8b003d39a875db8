"""Start one benchmark job in a fresh process and measure its whole process tree from outside.

The job (`bench.jobs`) runs in its own session with its output in `<work>/job.log`; this process samples the
job's tree (`bench.measure.TreeSampler`) while it runs, then turns the job's marked spans into wall and CPU
seconds. A job that fails or overruns its time limit becomes a result with an `error` naming the log.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import REPO
from bench.measure import TreeSampler, cost
from corpusmill.core.atomic import write_json


def job_environment(job: str, cache: Path) -> dict[str, str]:
    """The job's environment: the repository importable, and for datatrove its asset cache and no hub access."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    if job.startswith("datatrove"):
        env["HF_ASSETS_CACHE"] = str(cache / "hf-assets")
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_measured(job: str, spec: dict[str, Any], work: Path, cache: Path, timeout_s: float) -> dict[str, Any]:
    """Run `job` with `spec` (plus where it works) in a fresh process; return its measured result."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec_path, result_path, log_path = work / "spec.json", work / "result.json", work / "job.log"
    write_json(spec_path, {**spec, "job": job, "work": str(work), "cache": str(cache)})
    command = [sys.executable, "-m", "bench.jobs", str(spec_path), str(result_path)]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=job_environment(job, cache),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with TreeSampler(process.pid) as sampler:
            try:
                code: int | str = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                code = f"killed after the {timeout_s:.0f} s limit"
    if code != 0 or not result_path.exists():
        return {"job": job, "error": f"exit {code}; see {log_path}:\n{_tail(log_path)}"}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    marks = result.pop("marks")
    result["total"] = {
        "wall_s": marks["end"] - marks["start"],
        "cpu_s": sampler.cpu_between(marks["start"], marks["reaped"]),
    }
    result["costs"] = {name: cost(sampler, intervals) for name, intervals in result.pop("spans").items()}
    result["peak_rss_bytes"] = sampler.peak_rss
    result["peak_processes"] = sampler.peak_processes
    result["cpu_samples"] = len(sampler.times)
    result["log"] = str(log_path)
    return result


def cheapest(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """Of one job's repeats, the one that cost least CPU time, with every repeat's totals under `repeats`.

    Repeats differ by more than the engine overheads the bench is after: on a shared two-core virtual machine
    the same work measured 3.5 to 4.9 CPU-seconds in consecutive runs. Interference only ever adds time, so
    the least of several runs is the closest to what the work itself costs (as `timeit` reports). A failed
    repeat is kept in `repeats`; the job fails only when every repeat failed.
    """
    succeeded = [result for result in attempts if "error" not in result]
    kept = dict(min(succeeded, key=lambda r: r["total"]["cpu_s"]) if succeeded else attempts[0])
    kept["repeats"] = [
        {"error": r["error"]}
        if "error" in r
        else {"cpu_s": r["total"]["cpu_s"], "wall_s": r["total"]["wall_s"]}
        for r in attempts
    ]
    return kept
