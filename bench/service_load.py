"""The service under load on loopback: `python -m bench.service_load`.

A team watches rebuilds in the service's pages while Ray works, so the figure that matters is how fast the
pages and the API answer while a run is in flight, with many people looking. This bench starts
`corpusmill serve` for real (a fresh state directory in a temporary directory, the API token set, its own
local Ray head, as a user starts it), registers two recipes over generated input (a few JSONL files that
finish in seconds, and demo crawls through the demo recipe's stages, one crawl more per 15 s of load, so that
one run outlasts the window), runs the first to the end (its report and artifacts are browsed) and starts the
second, keeping a run of it in flight for the whole window (another is started if one ends). Then
`--clients` concurrent clients, each with its own keep-alive connection (opened before the window starts),
request what users browse, round-robin from a different place each, for `--seconds`:

    runs page, a run's page, GET /api/runs, GET /api/runs/{id}, the finished run's report page, one of its
    artifacts, GET /api/schedules, the recipes page

(a run's page and its API record alternate between the finished run and the one in flight). Every request's
latency is measured from send to the last byte of the body; a status other than 2xx/3xx, a timeout or a
broken connection is an error. Clients send the next request as soon as the last one is answered (no think
time unless `--think-ms`), so the service is kept as busy as N people clicking without pause keep it.

The exit status is 1 when any request failed or the p99 latency of all requests exceeds `--p99-goal-ms`,
so the bench doubles as a check; 2 when the service or the runs could not be prepared. Everything it started
(the service, its Ray head and the Ray processes, the temporary directory) is removed on the way out, also
on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml

from bench import REPO
from corpusmill.demo.corpus import write_demo_corpus

DEFAULT_CLIENTS, DEFAULT_SECONDS = 50, 30.0
QUICK_CLIENTS, QUICK_SECONDS = 5, 3.0
P99_GOAL_MS = 500.0
TOKEN = "service-load-bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ACTIVE = ("QUEUED", "PENDING", "RUNNING")
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED")
KINDS = (
    "runs page",
    "run page",
    "api runs",
    "api run",
    "report page",
    "artifact",
    "api schedules",
    "recipes page",
)
START_TIMEOUT_S = 240.0
RUN_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 30.0
SAMPLE_S = 0.25


class BenchError(RuntimeError):
    """The service or its runs could not be prepared; the message says what happened."""


class Interrupted(BaseException):
    """SIGTERM, turned into an exception so that the cleanup in `finally` runs as on Ctrl-C."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Service:
    """`corpusmill serve` in a session of its own; `stop()` ends it and every process it started."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.url = ""
        self.log = work / "service.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        """Start the service (and so its local Ray head) and wait until it answers /healthz."""
        port = _free_port()
        command = [str(Path(sys.executable).with_name("corpusmill")), "serve"]
        command += ["--data-dir", str(self.work / "service-data"), "--port", str(port)]
        env = {**os.environ, "CORPUSMILL_API_TOKEN": TOKEN}
        env.pop("RAY_ADDRESS", None)
        with open(self.log, "wb") as log:
            self._process = subprocess.Popen(
                command, cwd=self.work, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BenchError(f"the service exited with {self._process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            time.sleep(0.25)
        raise BenchError(f"the service did not answer within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The end of the service's log, for error messages."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, grace_s: float = 90.0) -> None:
        """SIGTERM (the service stops its Ray head on the way out), then kill whatever of its tree is left.

        The Ray head runs in a session of its own, so the tree is taken from psutil before the signal, and Ray's
        temporary directory (named on its command line) is removed if a kill left it behind.
        """
        process, self._process = self._process, None
        if process is None:
            return
        tree = _descendants(process.pid)
        ray_temp = _ray_temp_dirs(tree)
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        for child in tree:  # psutil checks each process's identity: a reused pid is never hit
            with contextlib.suppress(psutil.Error):
                child.kill()
        for path in ray_temp:
            shutil.rmtree(path, ignore_errors=True)


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _ray_temp_dirs(processes: list[psutil.Process]) -> set[str]:
    found = set()
    for process in processes:
        with contextlib.suppress(psutil.Error):
            for arg in process.cmdline():
                if arg.startswith("--temp-dir="):
                    found.add(arg.split("=", 1)[1])
    return found


def crawls_for(seconds: float) -> int:
    """Demo crawls (488 pages each, about half a minute of the demo recipe on two loaded cores) for the long
    run: enough that one run outlasts the window, so that the keeper need not start another in the middle."""
    return 1 + math.ceil(seconds / 15)


def write_inputs(work: Path, crawls: int) -> tuple[str, str]:
    """The two recipes' YAML: a few JSONL files that finish in seconds, and `crawls` demo crawls of different
    seeds (the long one)."""
    jsonl = work / "jsonl"
    jsonl.mkdir()
    for lang in ("en", "de"):
        lines = [
            json.dumps(
                {"text": f"{lang} document {i}: a few words about {lang}, number {i}. " * 6, "lang": lang}
            )
            for i in range(40)
        ]
        (jsonl / f"{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    finished = {
        "name": "load-finished",
        "input": {
            "paths": [str(jsonl / "*.jsonl")],
            "format": "jsonl",
            "lang_field": "lang",
            "part_bytes": 4096,
        },
        "stages": [
            {"stage": "dedup_exact"},
            {"stage": "tokenize"},
            {"stage": "mix", "domain_column": "lang", "multipliers": {"en": 1.0}, "default_multiplier": 2.0},
            {"stage": "write_shards"},
        ],
    }
    crawl = work / "crawl"
    for seed in range(crawls):
        write_demo_corpus(crawl / f"seed-{seed}", seed=seed, num_files=4)
    in_flight = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text(encoding="utf-8"))
    in_flight["name"] = "load-in-flight"
    in_flight["input"]["paths"] = [str(crawl / "*" / "*.warc.gz")]
    return yaml.safe_dump(finished, sort_keys=False), yaml.safe_dump(in_flight, sort_keys=False)


@dataclass
class Targets:
    """What the clients request: the finished run, the run in flight, and the artifact to download."""

    finished_id: int
    in_flight_id: int
    artifact: str
    artifact_bytes: int

    def path(self, kind: str, turn: int) -> str:
        """The URL path of one request of a kind; a run's page alternates between the two runs."""
        run_id = self.finished_id if turn % 2 == 0 else self.in_flight_id
        return {
            "runs page": "/runs",
            "run page": f"/runs/{run_id}",
            "api runs": "/api/runs",
            "api run": f"/api/runs/{run_id}",
            "report page": f"/runs/{self.finished_id}/report/",
            "artifact": f"/api/runs/{self.finished_id}/artifacts/{self.artifact}",
            "api schedules": "/api/schedules",
            "recipes page": "/recipes",
        }[kind]


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    response = client.request(method, path, **kwargs)
    if response.status_code >= 400:
        raise BenchError(f"{method} {path}: {response.status_code} {response.text[:500]}")
    return response.json() if response.content else None


def _trigger(client: httpx.Client, recipe: str) -> int:
    return int(_call(client, "POST", f"/api/recipes/{recipe}/runs", json={}, headers=AUTH)["id"])


def _wait_for(client: httpx.Client, run_id: int, statuses: tuple[str, ...]) -> dict[str, Any]:
    """Poll a run until its status is one of `statuses` (or it ended); BenchError after RUN_TIMEOUT_S."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        run = _call(client, "GET", f"/api/runs/{run_id}")
        if run["status"] in statuses or run["status"] in TERMINAL:
            return run
        time.sleep(0.3)
    raise BenchError(f"run {run_id} did not reach {'/'.join(statuses)} within {RUN_TIMEOUT_S:.0f} s")


def prepare(service: Service, recipes: tuple[str, str]) -> Targets:
    """Register both recipes and a schedule, finish a run of the first, get a run of the second RUNNING."""
    with httpx.Client(base_url=service.url, timeout=60) as client:
        names = [
            _call(
                client,
                "POST",
                "/api/recipes",
                content=text,
                headers={**AUTH, "content-type": "application/yaml"},
            )["name"]
            for text in recipes
        ]
        # A schedule far in the future, so that /api/schedules lists something and never fires during the bench.
        _call(client, "POST", "/api/schedules", json={"recipe": names[0], "cron": "0 0 1 1 *"}, headers=AUTH)
        finished = _wait_for(client, _trigger(client, names[0]), ("SUCCEEDED",))
        if finished["status"] != "SUCCEEDED":
            raise BenchError(f"the short run ended {finished['status']}: {finished.get('error')}")
        artifacts = _call(client, "GET", f"/api/runs/{finished['id']}/artifacts")
        biggest = max(artifacts, key=lambda a: a["bytes"])
        in_flight = _wait_for(client, _trigger(client, names[1]), ("RUNNING",))
        if in_flight["status"] != "RUNNING":
            raise BenchError(
                f"the long run ended {in_flight['status']} before the load: {in_flight.get('error')}"
            )
    return Targets(finished["id"], in_flight["id"], biggest["path"], biggest["bytes"])


@dataclass
class InFlight:
    """What the keeper saw: one sample per SAMPLE_S of whether a run was running, and the runs it started."""

    recipe: str
    run_id: int
    samples: list[str] = field(default_factory=list)
    started: list[int] = field(default_factory=list)
    ended: dict[int, str] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """How often a run was running, and in flight at all (queued, pending or running), over the samples."""
        running = sum(status == "RUNNING" for status in self.samples)
        active = sum(status in ACTIVE for status in self.samples)
        count = len(self.samples)
        return {
            "recipe": self.recipe,
            "samples": count,
            "running_fraction": running / count if count else 0.0,
            "active_fraction": active / count if count else 0.0,
            "whole_window": bool(count) and active == count,
            "runs_started_during_window": self.started,
            "runs_ended_during_window": {str(run_id): status for run_id, status in self.ended.items()},
        }


async def keep_in_flight(client: httpx.AsyncClient, state: InFlight, stop: asyncio.Event) -> None:
    """Sample the run's status; when it ends, start another, so that a run is in flight until `stop`."""
    while not stop.is_set():
        status = "UNKNOWN"
        with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
            status = (await client.get(f"/api/runs/{state.run_id}")).json()["status"]
            if status in TERMINAL:
                state.ended[state.run_id] = status
                started = await client.post(f"/api/recipes/{state.recipe}/runs", json={}, headers=AUTH)
                state.run_id = int(started.json()["id"])
                state.started.append(state.run_id)
        state.samples.append(status)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


@dataclass
class Sample:
    """One request: its kind, its latency in seconds, the error (status code or exception) if it failed, and
    when it was sent (time.monotonic), so that a stall shows up as the second in which it happened."""

    kind: str
    latency_s: float
    error: str | None
    sent_at: float = 0.0


async def connected_client(url: str, stack: contextlib.AsyncExitStack) -> httpx.AsyncClient:
    """A client with its one keep-alive connection open. Made before the window: building an httpx client
    loads a TLS context (tens of milliseconds of the bench's own CPU, even for plain HTTP), and fifty of them
    built inside the window would stall the bench's event loop and be measured as the service's latency."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    client = await stack.enter_async_context(
        httpx.AsyncClient(base_url=url, limits=limits, timeout=REQUEST_TIMEOUT_S)
    )
    (await client.get("/healthz")).raise_for_status()
    return client


async def one_client(
    number: int,
    client: httpx.AsyncClient,
    targets: Targets,
    deadline: float,
    think_s: float,
    out: list[Sample],
) -> None:
    """One browsing user on its own keep-alive connection, round-robin over the kinds from its own offset."""
    turn = 0
    while time.monotonic() < deadline:
        kind = KINDS[(number + turn) % len(KINDS)]
        path = targets.path(kind, number + turn // len(KINDS))
        sent_at, started = time.monotonic(), time.perf_counter()
        error = None
        try:
            response = await client.get(path)
            if response.status_code >= 400:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = type(exc).__name__
        out.append(Sample(kind, time.perf_counter() - started, error, sent_at))
        turn += 1
        if think_s:
            await asyncio.sleep(think_s)


def percentile(sorted_values: list[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of sorted values: a latency some request actually had."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-len(sorted_values) * q // 100))
    return sorted_values[int(rank) - 1]


def stats(samples: list[Sample], window_s: float) -> dict[str, Any]:
    """Requests, errors, error rate, latency percentiles and maximum in ms, requests per second."""
    latencies = sorted(s.latency_s * 1000 for s in samples)
    errors = Counter(s.error for s in samples if s.error)
    count = len(samples)
    return {
        "requests": count,
        "errors": sum(errors.values()),
        "error_rate": sum(errors.values()) / count if count else 0.0,
        "errors_by_cause": dict(errors),
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "max_ms": latencies[-1] if latencies else 0.0,
        "requests_per_s": count / window_s if window_s > 0 else 0.0,
    }


def timeline(samples: list[Sample], started: float) -> list[dict[str, Any]]:
    """Per second of the window (by when requests were sent): requests, errors, p50, p99 and max in ms. A
    maximum far above the p99 is one stall; the timeline says whether it hit every client at once."""
    seconds: dict[int, list[Sample]] = {}
    for sample in samples:
        seconds.setdefault(int(sample.sent_at - started), []).append(sample)
    rows = []
    for second in sorted(seconds):
        row = stats(seconds[second], 1.0)
        rows.append(
            {"second": second, **{k: row[k] for k in ("requests", "errors", "p50_ms", "p99_ms", "max_ms")}}
        )
    return rows


async def load(
    url: str, targets: Targets, state: InFlight, clients: int, seconds: float, think_s: float
) -> dict[str, Any]:
    """Run the clients for `seconds` with the keeper beside them; the figures and the machine's load."""
    samples: list[Sample] = []
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        users = [await connected_client(url, stack) for _ in range(clients)]
        keeper_client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S)
        )
        psutil.cpu_percent()  # starts the machine-wide CPU interval
        cpu_before = time.process_time()
        keeper = asyncio.create_task(keep_in_flight(keeper_client, state, stop))
        started = time.monotonic()
        deadline = started + seconds
        await asyncio.gather(
            *(one_client(n, user, targets, deadline, think_s, samples) for n, user in enumerate(users))
        )
        window_s = time.monotonic() - started
        stop.set()
        await keeper
    machine = {
        "cores": os.cpu_count(),
        "cpu_busy_percent": psutil.cpu_percent(),
        "load_avg_1m": os.getloadavg()[0],
        "client_cpu_s": time.process_time() - cpu_before,
    }
    return {
        "window_s": window_s,
        "endpoints": {kind: stats([s for s in samples if s.kind == kind], window_s) for kind in KINDS},
        "overall": stats(samples, window_s),
        "timeline": timeline(samples, started),
        "machine": machine,
    }


def format_table(result: dict[str, Any]) -> str:
    """The printed table: one row per endpoint kind and one for all requests, then the load and the verdict."""
    lines = [
        f"{'endpoint':15}{'requests':>10}{'errors':>8}{'error %':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'req/s':>9}"
    ]
    rows = [*result["endpoints"].items(), ("all", result["overall"])]
    for kind, row in rows:
        lines.append(
            f"{kind:15}{row['requests']:10d}{row['errors']:8d}{row['error_rate'] * 100:9.2f}{row['p50_ms']:9.1f}"
            f"{row['p90_ms']:9.1f}{row['p99_ms']:9.1f}{row['max_ms']:9.1f}{row['requests_per_s']:9.1f}"
        )
    for kind, row in rows:
        if row["errors_by_cause"]:
            lines.append(f"errors ({kind}): {row['errors_by_cause']}")
    machine, in_flight = result["machine"], result["in_flight"]
    lines.append(
        f"{result['clients']} clients for {result['window_s']:.1f} s; machine: {machine['cores']} cores, "
        f"{machine['cpu_busy_percent']:.0f}% busy, load average {machine['load_avg_1m']:.2f}, "
        f"clients' own CPU {machine['client_cpu_s']:.1f} s"
    )
    if result["timeline"]:
        worst = max(result["timeline"], key=lambda row: row["max_ms"])
        lines.append(
            f"slowest second: {worst['second']}-{worst['second'] + 1} s into the window, {worst['requests']} "
            f"requests sent, p50 {worst['p50_ms']:.1f} ms, max {worst['max_ms']:.1f} ms"
        )
    lines.append(
        f"run in flight: {'the whole window' if in_flight['whole_window'] else 'NOT the whole window'} "
        f"(running {in_flight['running_fraction']:.0%} of samples, active {in_flight['active_fraction']:.0%}; "
        f"runs started during the window: {len(in_flight['runs_started_during_window'])})"
    )
    ended = in_flight["runs_ended_during_window"]
    if ended:
        lines.append("runs that ended during the window: " + ", ".join(f"#{i} {s}" for i, s in ended.items()))
    verdict = "met" if result["goal_met"] else "NOT met"
    lines.append(
        f"goal: no error and p99 <= {result['p99_goal_ms']:.0f} ms: {verdict} "
        f"({result['overall']['errors']} errors, p99 {result['overall']['p99_ms']:.1f} ms)"
    )
    return "\n".join(lines)


def bench(clients: int, seconds: float, think_s: float, p99_goal_ms: float) -> dict[str, Any]:
    """Start the service, prepare the runs, load it, stop it: the whole result."""
    with tempfile.TemporaryDirectory(prefix="corpusmill-service-load-") as scratch:
        work = Path(scratch)
        recipes = write_inputs(work, crawls_for(seconds))
        service = Service(work)
        try:
            service.start()
            targets = prepare(service, recipes)
            state = InFlight("load-in-flight", targets.in_flight_id)
            result = asyncio.run(load(service.url, targets, state, clients, seconds, think_s))
        finally:
            service.stop()
    overall = result["overall"]
    result.update(
        clients=clients,
        seconds=seconds,
        think_ms=think_s * 1000,
        p99_goal_ms=p99_goal_ms,
        goal_met=overall["errors"] == 0 and overall["p99_ms"] <= p99_goal_ms,
        in_flight={**state.summary(), "crawls": crawls_for(seconds)},
        targets={
            "finished_run": targets.finished_id,
            "artifact": targets.artifact,
            "artifact_bytes": targets.artifact_bytes,
        },
    )
    return result


@contextlib.contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """SIGTERM raises Interrupted, so that `finally` blocks stop the service as on Ctrl-C."""

    def handler(signum: int, frame: object) -> None:
        raise Interrupted(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    """Command line: 0 when the goal was met, 1 when not, 2 when the service or the runs could not be prepared,
    130 when interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.service_load", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--clients", type=int, default=None, help=f"concurrent clients (default {DEFAULT_CLIENTS})"
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help=f"length of the load (default {DEFAULT_SECONDS:.0f})"
    )
    parser.add_argument(
        "--think-ms", type=float, default=0.0, help="pause of a client between requests (default 0)"
    )
    parser.add_argument("--p99-goal-ms", type=float, default=P99_GOAL_MS, help=f"default {P99_GOAL_MS:.0f}")
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_CLIENTS} clients for {QUICK_SECONDS:.0f} s"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    clients = args.clients or (QUICK_CLIENTS if args.quick else DEFAULT_CLIENTS)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else DEFAULT_SECONDS)
    if clients < 1 or seconds <= 0:
        parser.error("--clients and --seconds must be positive")
    try:
        with sigterm_as_exception():
            result = bench(clients, seconds, args.think_ms / 1000, args.p99_goal_ms)
    except BenchError as exc:
        print(f"service_load: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted):
        print("service_load: interrupted; the service and its Ray head were stopped", file=sys.stderr)
        return 130
    print(format_table(result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
