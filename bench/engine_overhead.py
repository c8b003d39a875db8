"""What an engine itself costs, measured with tasks that do (almost) nothing: `python -m bench.engine_overhead`.

The end-to-end bench measures engines on real work, where the engine's own share is a few CPU-seconds inside
a minute of extraction and moves with the machine as much as with the code. Here every engine (local, Ray,
Beam) starts in a fresh process and runs only trivial part tasks, so what is measured is the engine alone:

- start: creating the engine, imports included (a local Ray instance, Beam's worker pool);
- per phase: the mean CPU of `--phases` phases of a task that returns at once, one part per core;
- background: CPU per second of a phase whose parts sleep `--sleep` seconds (less one phase's cost): what the
  engine's processes burn while the stages work;
- stop: closing the engine.

CPU is the whole process tree's, sampled from outside by `bench.measure.TreeSampler`, as in the other
benches. These figures, the run's phase count and wall time, and one stage set-up per further worker are
what an engine adds to a run by construction.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import REPO
from bench.launch import repo_environment
from bench.measure import Clock, TreeSampler, become_subreaper, reap_orphans
from corpusmill.pipelines.parts import PartSpec

ENGINES = ("local", "ray", "beam")


@dataclass
class NoOpTask:
    """A part task that does nothing: a phase of it costs what the engine costs."""

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        return {"part": part.name}


@dataclass
class SleepTask:
    """A part task that sleeps once per part (engines may call a task again for a finished part's result)."""

    seconds: float
    marker_dir: str

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __call__(self, part: PartSpec) -> dict[str, Any]:
        marker = Path(self.marker_dir) / part.name
        if not marker.exists():
            time.sleep(self.seconds)
            marker.write_text("done", encoding="utf-8")
        return {"part": part.name}


def run_child(engine_name: str, cores: int, phases: int, sleep_s: float, out: Path) -> None:
    """The measured process: start the engine, run the phases, stop it, write the marks."""
    from corpusmill.pipelines.engine import make_engine

    become_subreaper()
    clock = Clock()
    clock.mark("begin")
    engine = make_engine(engine_name, num_cpus=cores)
    clock.mark("started")
    parts = [PartSpec(f"part-{n}", (), "none") for n in range(cores)]
    for _ in range(phases):
        list(engine.map_parts(NoOpTask(), parts))
    clock.mark("phases")
    with tempfile.TemporaryDirectory() as markers:
        list(engine.map_parts(SleepTask(sleep_s, markers), parts))
    clock.mark("slept")
    engine.close()
    reap_orphans()
    clock.mark("stopped")
    out.write_text(json.dumps({mark.name: mark.at for mark in clock.marks}), encoding="utf-8")


def measure(
    engine_name: str, cores: int, phases: int, sleep_s: float, timeout_s: float = 600
) -> dict[str, Any]:
    """One engine in a fresh process, its tree sampled from here; the four figures of the module docstring."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "marks.json"
        command = [sys.executable, "-m", "bench.engine_overhead", "--child", engine_name, "--out", str(out)]
        command += ["--cores", str(cores), "--phases", str(phases), "--sleep", str(sleep_s)]
        process = subprocess.Popen(
            command, cwd=REPO, env=repo_environment(), stderr=subprocess.PIPE, start_new_session=True
        )
        with TreeSampler(process.pid) as sampler:
            _, stderr = process.communicate(timeout=timeout_s)
        if process.returncode != 0 or not out.exists():
            tail = stderr.decode("utf-8", errors="replace").strip().splitlines()[-5:]
            return {"engine": engine_name, "error": f"exit {process.returncode}: " + " | ".join(tail)}
        marks = json.loads(out.read_text(encoding="utf-8"))
    phase_cpu = sampler.cpu_between(marks["started"], marks["phases"]) / phases if phases else 0.0
    sleep_wall = marks["slept"] - marks["phases"]
    sleep_cpu = sampler.cpu_between(marks["phases"], marks["slept"])
    return {
        "engine": engine_name,
        "cores": cores,
        "start_cpu_s": sampler.cpu_between(marks["begin"], marks["started"]),
        "start_wall_s": marks["started"] - marks["begin"],
        "phase_cpu_s": phase_cpu,
        "phase_wall_s": (marks["phases"] - marks["started"]) / phases if phases else 0.0,
        "background_cpu_per_s": max(0.0, sleep_cpu - phase_cpu) / sleep_wall if sleep_wall > 0 else 0.0,
        "stop_cpu_s": sampler.cpu_between(marks["slept"], marks["stopped"]),
    }


def format_rows(rows: list[dict[str, Any]]) -> str:
    """The printed table."""
    lines = [
        f"{'engine':8}{'start CPU s':>13}{'start wall s':>14}{'CPU s / phase':>15}{'wall s / phase':>16}"
        f"{'background CPU s/s':>20}{'stop CPU s':>12}"
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"{row['engine']:8}FAILED: {row['error']}")
            continue
        lines.append(
            f"{row['engine']:8}{row['start_cpu_s']:13.2f}{row['start_wall_s']:14.2f}{row['phase_cpu_s']:15.3f}"
            f"{row['phase_wall_s']:16.3f}{row['background_cpu_per_s']:20.4f}{row['stop_cpu_s']:12.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    """Command line: measure the engines (or, with --child, be the measured process)."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.engine_overhead", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated (default: all)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="workers (default: all cores)")
    parser.add_argument("--phases", type=int, default=10, help="trivial phases to average (default 10)")
    parser.add_argument(
        "--sleep", type=float, default=5.0, help="seconds each part of the sleep phase sleeps"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.cores, args.phases, args.sleep, args.out)
        return []
    unknown = [name for name in args.engines.split(",") if name not in ENGINES]
    if unknown:
        parser.error(f"unknown engines {unknown}; allowed: {', '.join(ENGINES)}")
    rows = [measure(name, args.cores, args.phases, args.sleep) for name in args.engines.split(",")]
    print(format_rows(rows))
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return rows


if __name__ == "__main__":
    main()
