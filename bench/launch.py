"""Start one benchmark job in a fresh process and measure its whole process tree from outside.

The job (`bench.jobs`) runs in its own session with its output in `<work>/job.log`; this process samples the
job's tree (`bench.measure.TreeSampler`) while it runs, then turns the job's marked spans into wall and CPU
seconds. A job that fails or overruns its time limit becomes a result with an `error` naming the log.
"""

from __future__ import annotations

import contextlib
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


def repo_environment() -> dict[str, str]:
    """This process's environment with the repository importable (`bench` and the tasks it sends to workers)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def job_environment(job: str, cache: Path) -> dict[str, str]:
    """The job's environment: the repository importable, and for datatrove its asset cache and no hub access."""
    env = repo_environment()
    if job.startswith("datatrove"):
        env["HF_ASSETS_CACHE"] = str(cache / "hf-assets")
        env["HF_HUB_OFFLINE"] = "1"
    return env


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_measured(
    job: str,
    spec: dict[str, Any],
    work: Path,
    cache: Path,
    timeout_s: float,
    copies: int = 1,
    split: bool = False,
) -> dict[str, Any]:
    """Run `job` with `spec` (plus where it works) in a fresh process; return its measured result.

    With `copies` > 1, that many instances of the job run at the same time (in `work/copy-<n>`), each measured
    as its own process tree, and the result is their mean (`mean_of_copies`). `split`: the copies share the
    input between them (copy n gets `share` [n - 1, copies] in its spec) instead of each doing all of it.
    """
    shutil.rmtree(work, ignore_errors=True)
    works = [work] if copies == 1 else [work / f"copy-{n}" for n in range(1, copies + 1)]
    specs = [{**spec, "share": [n, copies]} if split and copies > 1 else spec for n in range(len(works))]
    started = [_start(job, one, where, cache) for one, where in zip(specs, works, strict=True)]
    codes: list[int | str] = []
    with contextlib.ExitStack() as sampling:
        samplers = [sampling.enter_context(TreeSampler(process.pid)) for process, _ in started]
        for process, _ in started:
            try:
                codes.append(process.wait(timeout=timeout_s))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                codes.append(f"killed after the {timeout_s:.0f} s limit")
    results = [
        _collect(job, code, where, sampler)
        for code, where, sampler in zip(codes, works, samplers, strict=True)
    ]
    return results[0] if copies == 1 else mean_of_copies(results)


def _start(job: str, spec: dict[str, Any], work: Path, cache: Path) -> tuple[subprocess.Popen[bytes], Path]:
    work.mkdir(parents=True)
    spec_path = work / "spec.json"
    write_json(spec_path, {**spec, "job": job, "work": str(work), "cache": str(cache)})
    command = [sys.executable, "-m", "bench.jobs", str(spec_path), str(work / "result.json")]
    with open(work / "job.log", "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=job_environment(job, cache),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return process, work


def _collect(job: str, code: int | str, work: Path, sampler: TreeSampler) -> dict[str, Any]:
    result_path, log_path = work / "result.json", work / "job.log"
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


def mean_of_copies(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Copies of one job run side by side, as one result: every CPU and wall figure is the copies' mean.

    Why copies: a bare loop is one process, while an engine's workers run one per core, and on this two-core
    virtual machine two processes at once each take more CPU time for the same work than one alone does
    (trafilatura on 60 pages: 5% more, averaged over alternating runs). Running the bare loops as one copy
    per core puts them under the same contention as the engines' workers, so that the engine overhead is
    what the engine adds. The outputs are identical (the same job on the same input); the first copy's stand
    for all, and each copy's totals are kept under `copies`. A failed copy fails the result.
    """
    failed = [result for result in results if "error" in result]
    if failed:
        return failed[0]
    merged = dict(results[0])
    merged["total"] = {key: _mean(r["total"][key] for r in results) for key in ("cpu_s", "wall_s")}
    spans = set.intersection(*(set(r["costs"]) for r in results))
    merged["costs"] = {
        span: {key: _mean(r["costs"][span][key] for r in results) for key in ("cpu_s", "wall_s")}
        for span in sorted(spans)
    }
    if all("setup_cpu_s" in r for r in results):
        merged["setup_cpu_s"] = _mean(r["setup_cpu_s"] for r in results)
    merged["peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in results)  # of one copy
    merged["copies"] = [{"cpu_s": r["total"]["cpu_s"], "wall_s": r["total"]["wall_s"]} for r in results]
    return merged


def _mean(values: Any) -> float:
    items = list(values)
    return sum(items) / len(items)


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
