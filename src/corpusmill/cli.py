"""The `corpusmill` command line: run and validate recipes, verify runs, write the demo corpus.

Only the commands live here; how a command ends on an error (one line, or a traceback under --debug) is
`cli_errors`.
"""

from __future__ import annotations

import json
import logging
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from corpusmill.cli_errors import CommandGroup, err, fail, set_debug
from corpusmill.core.recipe import RecipeError, load_recipe
from corpusmill.pipelines.summary import RunSummary

console = Console(soft_wrap=True)


app = typer.Typer(
    cls=CommandGroup,
    help="Turn raw web crawls into a curated, deduplicated mixture and training-ready token shards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _BarProgress:
    """Draws one bar per phase of a run."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: int | None = None

    def phase(self, description: str, total: int) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[self._task].total)
        self._task = self._progress.add_task(description, total=max(total, 1))
        if total == 0:
            self._progress.update(self._task, completed=1)

    def advance(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)


def _load_or_exit(recipe: str | Path):
    try:
        return load_recipe(recipe)
    except RecipeError as exc:
        fail(exc, 2)


def _print_summary(summary: RunSummary) -> None:
    table = Table(title="documents per stage", show_lines=False)
    table.add_column("stage")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("dropped / skipped (reason: count)")
    lines = summary.lines()
    for line, following in zip(lines, [*lines[1:], None], strict=True):
        table.add_row(
            line.label,
            "" if line.docs_in is None else f"{line.docs_in:,}",
            "" if line.docs_out is None else f"{line.docs_out:,}",
            line.reasons,
            end_section=following is not None and following.group != line.group,
        )
    console.print(table)
    console.print(f"documents kept: {summary.documents_out:,}   tokens written: {summary.tokens_written:,}")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, show the full traceback instead of one line.")
    ] = False,
) -> None:
    set_debug(debug)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    recipe: Annotated[str, typer.Argument(help="Recipe YAML file (a path, or an object-storage URI).")],
    engine: Annotated[
        str, typer.Option(help="Execution engine: ray (default), beam, or local (in-process).")
    ] = "ray",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address; without it a local Ray instance is started.")
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            help="Run directory: a local path or an object-storage URI such as s3://bucket/runs/x "
            "(default: runs/<recipe name>-<recipe hash>)."
        ),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="CPUs for a local Ray instance or Beam's in-process runner.")
    ] = None,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart", help="Discard what an earlier run left in the run directory and start from scratch."
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict", help="Stop at the first input file that cannot be read, instead of skipping it."
        ),
    ] = False,
    base: Annotated[
        str | None,
        typer.Option(
            help="A finished run of this recipe to build on: only input files it did not have go through the "
            "per-document stages; the result equals a full run (default output: runs/<name>-<hash>-<inputs>)."
        ),
    ] = None,
    remove: Annotated[
        Path | None,
        typer.Option(
            help="Takedown list: one document id or URL per line; those documents (every document of a URL) "
            "are removed from the build, on top of the base's takedowns."
        ),
    ] = None,
) -> None:
    """Run a recipe; a finished run is not redone, an interrupted one resumes.

    Either is refused when an input file changed since the run started; --restart starts over instead.
    With --base, a new crawl dump costs what its new files cost.

    With --engine beam, arguments after `--` go to Beam as pipeline options, e.g.
    `-- --runner=FlinkRunner --flink_master=host:8081`.
    """
    from corpusmill.pipelines.part_source import InputFileError
    from corpusmill.pipelines.runner import RunDirError, run_recipe

    parsed = _load_or_exit(recipe)
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    try:
        with Progress(*columns, console=err, transient=False) as bars:
            result = run_recipe(
                parsed,
                engine=engine,
                address=address,
                output=output,
                num_cpus=workers,
                engine_args=list(ctx.args),
                progress=_BarProgress(bars),
                restart=restart,
                strict=strict,
                base=base,
                removals=remove,
            )
    except (RunDirError, InputFileError, OSError, ValueError) as exc:
        fail(exc)
    if result.already_complete:
        console.print("This run is already complete; nothing to do.")
    _print_summary(result.summary)
    console.print(f"run directory: {result.run_dir}")
    _print_increment(result.run_dir)
    if (result.run_dir / "report" / "index.html").exists():
        console.print(f"report: {result.run_dir / 'report' / 'index.html'}")


def _print_increment(run_dir: Path) -> None:
    """For a run built on a base: the base, the new input and how much of the base was taken over."""
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    increment = stats.get("incremental")
    if not increment:
        return
    console.print(
        f"built on {increment['base']}: {len(increment['added_files'])} input files added, "
        f"{len(increment['removed_files'])} removed, {increment['reused_parts']} of {increment['parts']} parts "
        f"taken over, {increment['taken_down']} documents taken down"
    )


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")]) -> None:
    """Check a recipe without running it: fields, stage names, parameters, column flow."""
    parsed = _load_or_exit(recipe)
    console.print(f"{recipe}: valid recipe '{parsed.name}' (fingerprint {parsed.fingerprint()})")
    for index, entry in enumerate(parsed.stages, start=1):
        console.print(f"  {index:02d}. {entry.stage} {entry.params}")


@app.command()
def verify(
    run_dir: Annotated[
        str,
        typer.Argument(
            help="A finished run directory, or a finished run copied to object storage (s3://bucket/runs/x)."
        ),
    ],
) -> None:
    """Check a run: file checksums against the manifest, and shards decoding back to the kept documents."""
    from corpusmill.pipelines.verify import verify_run

    report = verify_run(run_dir)
    for problem in report.problems:
        err.print(f"[red]problem:[/red] {problem}", highlight=False)
    console.print(
        f"checked {report.files_checked} files, {report.documents_checked:,} documents, "
        f"{report.tokens_checked:,} tokens"
    )
    if report.problems:
        raise typer.Exit(1)
    console.print(f"{run_dir}: OK (shards decode back to the kept documents' text)")


shards_app = typer.Typer(help="Inspect token shards.", no_args_is_help=True)
app.add_typer(shards_app, name="shards")


@shards_app.command("inspect")
def shards_inspect(
    shards_dir: Annotated[
        str,
        typer.Argument(
            help="A shards directory (with manifest.json), local or on object storage (s3://...)."
        ),
    ],
    sample: Annotated[int, typer.Option(min=0, help="How many documents to decode and show.")] = 2,
    verify: Annotated[bool, typer.Option(help="Check sizes and sha256 against the manifest.")] = True,
) -> None:
    """Counts per shard, a decoded sample, and checksum verification."""
    from corpusmill.shards.inspect import inspect_shards

    try:
        report = inspect_shards(shards_dir, sample=sample, verify=verify)
    except (FileNotFoundError, ValueError) as exc:
        fail(exc)
    table = Table(title=f"{report.num_shards} shards in {shards_dir}")
    for column in ("shard", "documents", "tokens", "dtype", "bytes", "min doc", "max doc"):
        table.add_column(column, justify="left" if column in ("shard", "dtype") else "right")
    for row in report.shards:
        table.add_row(
            row.name,
            f"{row.num_documents:,}",
            f"{row.num_tokens:,}",
            row.dtype,
            f"{row.bin_bytes:,}",
            f"{row.min_document_tokens:,}",
            f"{row.max_document_tokens:,}",
        )
    console.print(table)
    console.print(f"documents: {report.num_documents:,}   tokens: {report.num_tokens:,}")
    if report.provenance:
        console.print(report.provenance, highlight=False)
    for index, text in enumerate(report.samples):
        console.print(f"[bold]sample {index}:[/bold] {text!r}", highlight=False)
    for problem in report.problems:
        err.print(f"[red]problem:[/red] {problem}", highlight=False)
    if report.problems:
        raise typer.Exit(1)
    if verify:
        console.print("checksums: OK")


@app.command()
def train(
    shards_dir: Annotated[
        str,
        typer.Argument(
            help="A shards directory written by a run (with manifest.json): a local path or a URI (s3://, gs://)."
        ),
    ],
    config: Annotated[str, typer.Option(help="A preset (tiny, qwen2-0.5b) or a YAML config file.")] = "tiny",
    output: Annotated[Path, typer.Option(help="Where checkpoints, metrics.jsonl and loss.png go.")] = Path(
        "runs/train"
    ),
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this step (the schedule still follows the config).")
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Where shards given as a URI are copied, checked against the manifest "
            "[default: ~/.cache/corpusmill/shards/<digest of the URI>]."
        ),
    ] = None,
) -> None:
    """Train a Qwen2-architecture model on token shards; rerunning continues from the last checkpoint.

    Shards on object storage are copied into a local cache first; files already there are not copied again.
    For several GPUs: torchrun --nproc_per_node=N -m corpusmill.cli train SHARDS --config CONFIG.
    """
    from corpusmill.core.location import is_uri
    from corpusmill.training import load_config
    from corpusmill.training import train as run_training

    logging.getLogger("corpusmill.training").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    try:
        parsed = load_config(config)
    except (FileNotFoundError, ValueError) as exc:
        fail(exc, 2)
    try:
        source = shards_dir if is_uri(shards_dir) else Path(shards_dir)
        result = run_training(source, parsed, output, max_steps=max_steps, cache_dir=cache)
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(exc)
    steps = sorted(result.losses)
    if steps:
        head = [result.losses[s] for s in steps[: max(1, len(steps) // 10)]]
        tail = [result.losses[s] for s in steps[-max(1, len(steps) // 10) :]]
        console.print(
            f"trained steps {result.start_step + 1}-{result.final_step}: loss {sum(head) / len(head):.3f} -> "
            f"{sum(tail) / len(tail):.3f} ({result.tokens_seen:,} tokens)"
        )
    held = result.heldout
    console.print(
        f"held out (never trained on): {held.documents:,} documents, {held.tokens:,} tokens in {held.shards} "
        f"shard(s); evaluated on {held.windows_used} of its {held.windows} windows"
    )
    console.print(
        f"metrics: {result.metrics_path}   plot: {result.plot_path}   checkpoint: {result.checkpoint_path}"
    )


class StructuredOutput(StrEnum):
    """How `annotate --structured` asks an endpoint to keep the answer to the JSON shape."""

    auto = "auto"
    json_schema = "json_schema"
    json_object = "json_object"
    off = "off"


@app.command()
def annotate(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory (its documents/ are sampled).")],
    model: Annotated[
        str,
        typer.Option(help="A local model directory or hub id; with --endpoint, the model name it serves."),
    ],
    sample: Annotated[
        int, typer.Option(min=1, help="How many documents to annotate (a seeded sample).")
    ] = 1000,
    endpoint: Annotated[
        str | None, typer.Option(help="An OpenAI-compatible server (vLLM, SGLang), e.g. http://host:8000/v1.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    prompt: Annotated[str, typer.Option(help="A bundled prompt name or a prompt file.")] = "annotate_v1",
    batch_size: Annotated[int, typer.Option(min=1, help="Documents per call to a local model.")] = 8,
    max_chars: Annotated[
        int, typer.Option(min=100, help="Characters of each document shown to the model.")
    ] = 6000,
    timeout: Annotated[
        float,
        typer.Option(
            min=1.0,
            help="--endpoint: seconds one request may take, including the time it waits in the server's queue.",
        ),
    ] = 600.0,
    max_tokens: Annotated[
        int, typer.Option(min=1, help="--endpoint: tokens the model may generate per answer.")
    ] = 256,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="--endpoint: requests in flight at once (default: adaptive, up to --max-concurrency).",
            show_default=False,
        ),
    ] = None,
    max_concurrency: Annotated[
        int, typer.Option(min=1, help="--endpoint: the most requests in flight when adapting.")
    ] = 32,
    context: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="--endpoint: the model's context in tokens; documents are fitted to it "
            "(default: asked from the server).",
            show_default=False,
        ),
    ] = None,
    structured: Annotated[
        StructuredOutput | None,
        typer.Option(
            help="--endpoint: how the answer's JSON is enforced (default: auto, the strictest form the "
            "server takes).",
            show_default=False,
        ),
    ] = None,
    logprobs: Annotated[
        bool, typer.Option(help="--endpoint: ask for token log-probabilities (scores become expectations).")
    ] = True,
    temperature: Annotated[
        float, typer.Option(min=0.0, help="Local model: 0 reads the most likely answer; above 0 samples it.")
    ] = 0.0,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for a local model.")] = None,
    allow_download: Annotated[bool, typer.Option(help="Let a hub id be downloaded.")] = False,
) -> None:
    """Ask a Qwen-Instruct model to rate a sample of a run's documents (cached: reruns ask only what is missing).

    Answers are saved as they arrive. SIGINT or SIGTERM stops asking, waits for the answers in flight, saves
    them and exits 130 or 143; rerunning the same command asks only the documents left. The API key of an
    endpoint is read from CORPUSMILL_LLM_API_KEY.
    """
    from corpusmill.classifiers.annotate import AnnotationInterrupted, annotate_run, make_backend

    options: dict = (
        _endpoint_options(
            timeout,
            max_tokens,
            concurrency,
            max_concurrency,
            context,
            structured and structured.value,
            logprobs,
        )
        if endpoint
        else {"allow_download": allow_download}
    )
    if temperature and not endpoint:
        options["temperature"] = temperature
    if threads and not endpoint:
        import torch

        torch.set_num_threads(threads)
    backend = None
    try:
        backend = make_backend(model, endpoint=endpoint, **options)
        with Progress(
            TextColumn("annotating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as bar:
            task = bar.add_task("annotate", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            result = annotate_run(
                run_dir,
                backend,
                sample=sample,
                seed=seed,
                prompt_version=prompt,
                batch_size=batch_size,
                max_chars=max_chars,
                progress=progress,
            )
    except AnnotationInterrupted as stopped:
        err.print(f"{stopped} ({stopped.signal_name})", highlight=False)
        for hint in stopped.result.hints:
            err.print(f"hint: {hint}", highlight=False)
        console.print(f"annotations: {run_dir / 'annotations'}")
        raise typer.Exit(stopped.exit_code) from None
    except (FileNotFoundError, ValueError, OSError) as exc:
        fail(exc)
    finally:
        close = getattr(backend, "close", None)  # the HTTP backend's connection pool
        if close is not None:
            close()
    console.print(
        f"annotated {result.sampled} sampled documents with {result.model} ({result.prompt_version}): "
        f"{result.cached} cached, {result.asked} asked -> {result.ok} ok, {result.unparseable} unparseable, "
        f"{result.truncated} truncated, {result.off_taxonomy} off the taxonomy, {result.error} errors"
    )
    for hint in result.hints:
        console.print(f"hint: {hint}", highlight=False)
    console.print(f"annotations: {run_dir / 'annotations'}")


def _endpoint_options(
    timeout: float,
    max_tokens: int,
    concurrency: int | None,
    max_concurrency: int,
    context: int | None,
    structured: str | None,
    logprobs: bool,
) -> dict:
    """The HTTP backend's options from `annotate`'s flags; `make_backend` leaves out those that are None, so
    the backend's defaults apply (adaptive concurrency, the context the server reports, auto structure)."""
    if concurrency is not None and concurrency > max_concurrency:
        max_concurrency = concurrency
    options = {
        "timeout": timeout,
        "max_tokens": max_tokens,
        "concurrency": concurrency,
        "max_concurrency": max_concurrency,
        "context": context,
        "structured": structured,
        "logprobs": logprobs,
    }
    return options


@app.command()
def distill(
    annotations: Annotated[
        Path, typer.Argument(help="An annotations directory (or the run directory holding it).")
    ],
    output: Annotated[Path, typer.Option(help="Where the fastText models and model_card.json go.")] = Path(
        "classifiers"
    ),
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    holdout: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="Fraction of annotations held out.")
    ] = 0.2,
    epochs: Annotated[int, typer.Option(min=1, help="fastText epochs.")] = 20,
    dim: Annotated[int, typer.Option(min=2, help="fastText vector size.")] = 64,
    bucket: Annotated[
        int, typer.Option(min=1000, help="fastText n-gram hash buckets (model size ~ bucket x dim).")
    ] = 200_000,
    prompt_version: Annotated[
        str | None,
        typer.Option(
            "--prompt-version",
            "--prompt",
            help="Use only answers to this prompt version (as stored, e.g. annotate_v1-0123456789).",
        ),
    ] = None,
    model: Annotated[str | None, typer.Option(help="Use only answers from this annotator model.")] = None,
    allow_mixed: Annotated[
        bool,
        typer.Option(
            "--allow-mixed",
            help="Train on answers from several (model, prompt version) annotators at once; without it, a mix "
            "is refused and listed.",
        ),
    ] = False,
) -> None:
    """Train fastText quality and domain classifiers on the annotations; report agreement on held-out data.

    The annotations must come from one annotator (model and prompt version): choose one with --model and/or
    --prompt-version, or pass --allow-mixed.
    """
    from corpusmill.classifiers.distill import distill as run_distill

    try:
        result = run_distill(
            annotations,
            output,
            seed=seed,
            holdout=holdout,
            epochs=epochs,
            dim=dim,
            bucket=bucket,
            prompt_version=prompt_version,
            model=model,
            allow_mixed=allow_mixed,
        )
    except (FileNotFoundError, ValueError) as exc:
        fail(exc)
    table = Table(title=f"distilled models in {result.out_dir} (held-out agreement with the annotator)")
    for column in ("model", "train", "held out", "accuracy", "macro F1", "MAE", "Spearman"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, entry in result.card["models"].items():
        metrics = entry["holdout"]
        agreement = metrics.get("agreement", {})

        def fmt(value: object) -> str:
            return f"{value:.3f}" if isinstance(value, float) else "-"

        table.add_row(
            name,
            str(entry["rows"]["train"]),
            str(entry["rows"]["holdout"]),
            fmt(metrics.get("accuracy")),
            fmt(metrics.get("macro_f1")),
            fmt(agreement.get("mean_absolute_error")),
            fmt(agreement.get("spearman")),
        )
    console.print(table)
    for name, why in result.skipped.items():
        console.print(f"skipped {name}: {why}", highlight=False)
    console.print(f"model card: {result.out_dir / 'model_card.json'}")


@app.command("demo-annotator")
def demo_annotator(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the model and tokenizer.")],
    seed: Annotated[int, typer.Option(help="Initialisation seed.")] = 0,
) -> None:
    """Write a tiny random-weight Qwen2 model with the Qwen2.5 chat tokenizer, to run `annotate` offline.

    Its answers carry no judgement: it exercises the annotate -> distill -> score path where no real
    Qwen2.5-Instruct model can be downloaded. Point `annotate --model` at a real one for real labels.
    """
    from corpusmill.classifiers.demo_model import write_demo_annotator

    write_demo_annotator(out_dir, seed=seed)
    console.print(f"wrote a tiny random-weight Qwen2 annotator to {out_dir}")


@app.command("demo-annotator-server")
def demo_annotator_server(
    sample_dir: Annotated[
        Path, typer.Argument(help="A sample crawl written by `demo-corpus` (its WARC files and truth.jsonl).")
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free port).")] = 0,
    url_file: Annotated[
        Path | None, typer.Option(help="Write the base URL (http://HOST:PORT/v1) here once listening.")
    ] = None,
    model: Annotated[
        str, typer.Option(help="The model name served (pass the same to `annotate --model`).")
    ] = "corpusmill-demo-annotator",
    seed: Annotated[int, typer.Option(help="Seed of the per-document scores and the label noise.")] = 0,
    noise: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of domains swapped for a neighbour and of scores moved by 1 (default 0.03).",
        ),
    ] = None,
    delay_s: Annotated[
        float, typer.Option(min=0.0, help="Seconds of simulated generation per request.")
    ] = 0.0,
    capacity: Annotated[
        int | None,
        typer.Option(min=1, help="Requests generated at once; more wait in line (default: no limit)."),
    ] = None,
    delay_per_token_s: Annotated[
        float, typer.Option(min=0.0, help="More seconds of generation per prompt token (long documents).")
    ] = 0.0,
    context: Annotated[
        int | None,
        typer.Option(
            min=1, help="Context window in tokens: a prompt plus max_tokens beyond it is refused (HTTP 400)."
        ),
    ] = None,
    flavour: Annotated[
        str,
        typer.Option(
            help="Which server to imitate where they differ: vllm (max_model_len in /v1/models) or llama.cpp "
            "(GET /props)."
        ),
    ] = "vllm",
    reject_json_schema: Annotated[
        bool, typer.Option(help="Refuse response_format json_schema (HTTP 400), as servers without it do.")
    ] = False,
    penalize_repeats: Annotated[
        bool,
        typer.Option(
            help="Lower score digits already written unless the request sets repeat_penalty 1.0, as "
            "llama.cpp's default penalty did."
        ),
    ] = False,
) -> None:
    """Serve the sample's known labels over the OpenAI chat API, standing in for a real Qwen2.5-Instruct server.

    No model runs: each document of an `annotate --endpoint URL --model NAME` request is matched to the sample
    page it came from and answered from the generator's truth (quality by kind, domain by topic), with a little
    seeded label noise and per-token log-probabilities, so the annotate -> distill path has labels worth
    distilling offline. Serves until SIGTERM or Ctrl-C. Point `annotate` at a real Qwen2.5-Instruct server
    (vLLM, llama.cpp, TGI) for real judgements. --delay-s, --capacity, --context, --flavour,
    --reject-json-schema and --penalize-repeats imitate a real server's limits and defaults, to try a client
    against; GET /stats counts completed, wasted and repeated generations.
    """
    import signal

    from corpusmill.core.atomic import atomic_open
    from corpusmill.demo.annotator_server import AnnotatorServer, serve_until_signalled

    try:
        labels = {} if noise is None else {"noise": noise}
        server = AnnotatorServer.for_sample(
            sample_dir,
            seed=seed,
            **labels,
            host=host,
            port=port,
            model=model,
            delay_s=delay_s,
            capacity=capacity,
            delay_per_token_s=delay_per_token_s,
            context=context,
            flavour=flavour,
            reject_json_schema=reject_json_schema,
            penalize_repeats=penalize_repeats,
        )
    except (FileNotFoundError, ValueError) as exc:
        fail(exc)

    def ready(url: str) -> None:
        if url_file is not None:
            with atomic_open(url_file, "w", encoding="utf-8") as handle:
                handle.write(url + "\n")
        console.print(
            f"demo annotator (a stand-in for Qwen2.5-Instruct) serving {model!r} at {url}", highlight=False
        )
        console.print(f"  corpusmill annotate RUN --endpoint {url} --model {model}", highlight=False)

    try:
        received = serve_until_signalled(server, on_ready=ready)
    except OSError as exc:  # the port is taken, the host is not ours
        fail(exc)
    console.print(f"stopped ({signal.Signals(received).name})", highlight=False)


@app.command()
def plan(
    recipe: Annotated[Path, typer.Argument(help="A recipe with a `mix` stage.")],
    run: Annotated[
        str | None,
        typer.Option(
            help="A run whose accounting to plan from (default: the recipe's run directory): a directory, or "
            "a run copied to object storage (s3://bucket/runs/x)."
        ),
    ] = None,
) -> None:
    """Print the mixture plan (rates, expected tokens, warnings) from a run's accounting, without running."""
    from corpusmill.core.location import run_path
    from corpusmill.mixtures.replan import replan
    from corpusmill.mixtures.spec import MixParams
    from corpusmill.pipelines.runner import default_run_dir

    loaded = _load_or_exit(recipe)
    entries = [e for e in loaded.stages if e.stage.startswith("mix_v")]
    if not entries:
        err.print(f"[red]error:[/red] {recipe} has no `mix` stage to plan", highlight=False)
        raise typer.Exit(2)
    params = MixParams.model_validate(entries[0].params)
    run_dir = run_path(run) if run else default_run_dir(loaded)
    try:
        mixture = replan(run_dir, params)
    except FileNotFoundError as exc:
        fail(exc)
    total = mixture.expected_tokens or 1.0
    budget = f"budget {mixture.budget:,} tokens" if mixture.budget else "no budget"
    table = Table(title=f"mixture plan ({mixture.mode}, {budget}, at most {mixture.max_epochs:g} epochs)")
    for column in ("domain", "documents", "unique tokens", "asked", "rate", "expected tokens", "share"):
        table.add_column(column, justify="left" if column == "domain" else "right")
    for row in mixture.domains:
        table.add_row(
            row.domain,
            f"{row.eligible_documents:,}",
            f"{row.eligible_tokens:,}",
            f"{row.requested:g}",
            f"{row.rate:.4f}" + (" (cap)" if row.capped else ""),
            f"{row.expected_tokens:,.0f}",
            f"{row.expected_tokens / total:.1%}",
        )
    console.print(table)
    console.print(f"expected total: {mixture.expected_tokens:,.0f} tokens (accounting from {run_dir})")
    for warning in mixture.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)


@app.command()
def report(
    run_dir: Annotated[
        str,
        typer.Argument(
            help="A finished run directory, or a finished run copied to object storage (s3://bucket/runs/x)."
        ),
    ],
) -> None:
    """(Re)build a run's report beside the run: mixture.json, index.html and sample documents (works offline).

    The samples are a few seeded documents per domain, quality bucket and drop reason, each with its own page.
    """
    from corpusmill.mixtures.report import build_report

    try:
        out = build_report(run_dir)
    except (FileNotFoundError, ValueError) as exc:
        fail(exc)
    console.print(f"report: {out / 'index.html'}   data: {out / 'mixture.json'}")


@app.command()
def serve(
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="A Ray cluster's dashboard (Jobs API) URL, e.g. http://head:8265; without it a local Ray head "
            "is started and stopped with the service."
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help="Database URL (default: SQLite in --data-dir), e.g. postgresql://user@host/corpusmill."
        ),
    ] = None,
    data_dir: Annotated[
        Path, typer.Option(help="The service's SQLite database and, unless --runs-dir, the run directories.")
    ] = Path("service-data"),
    runs_dir: Annotated[
        str | None,
        typer.Option(
            help="Where run directories go: an object-storage URI such as s3://bucket/runs, or a directory "
            "every Ray node sees at this path."
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding the API token (default: $CORPUSMILL_API_TOKEN).")
    ] = None,
    num_cpus: Annotated[int | None, typer.Option(min=1, help="CPUs of the local Ray head.")] = None,
    ray_nice: Annotated[
        int,
        typer.Option(
            min=0,
            max=19,
            help="Lower CPU priority of the local Ray head than the service's (nice), so pages stay quick "
            "during a rebuild; 0: the same.",
        ),
    ] = 10,
    job_python: Annotated[
        str | None,
        typer.Option(
            help="Python that runs jobs (default: `python` on a cluster, this interpreter locally)."
        ),
    ] = None,
) -> None:
    """Run the service: schedule rebuilds on Ray; browse runs, artifacts and mixture reports at http://HOST:PORT/runs."""
    from corpusmill.service import SettingsError
    from corpusmill.service import serve as run_service

    try:
        run_service(
            ray_address=ray_address,
            db=db,
            data_dir=data_dir,
            runs_dir=runs_dir,
            host=host,
            port=port,
            token_file=token_file,
            num_cpus=num_cpus,
            ray_nice=ray_nice,
            job_python=job_python,
        )
    except SettingsError as exc:
        fail(exc, 2)


@app.command("demo-corpus")
def demo_corpus(
    out_dir: Annotated[Path, typer.Argument(help="Where to write the sample WARC files.")],
    seed: Annotated[int, typer.Option(help="Generator seed (same seed, same bytes).")] = 0,
    files: Annotated[int, typer.Option(min=1, help="Number of WARC files.")] = 4,
) -> None:
    """Write the bundled sample crawl (generated, with known spam and duplicates) as WARC files."""
    from corpusmill.demo.corpus import write_demo_corpus

    corpus = write_demo_corpus(out_dir, seed=seed, num_files=files)
    console.print(f"wrote {len(corpus.warc_paths)} WARC files to {out_dir} (truth: {corpus.truth_path})")


@app.command()
def stages() -> None:
    """List the available stages with their parameters."""
    from corpusmill.core.stage import available_stages, resolve_stage

    for name in available_stages():
        cls = resolve_stage(name)
        fields = ", ".join(
            f"{field}={info.default!r}" if not info.is_required() else field
            for field, info in cls.Params.model_fields.items()
        )
        console.print(f"[bold]{name}[/bold] ({cls.__mro__[1].__name__}): {fields}")
        doc = (cls.__doc__ or "").strip().splitlines()
        if doc:
            console.print(f"    {doc[0]}")


if __name__ == "__main__":
    app()
