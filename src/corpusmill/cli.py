"""The `corpusmill` command line: run and validate recipes, verify runs, write the demo corpus."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from corpusmill.core.recipe import RecipeError, load_recipe
from corpusmill.pipelines.summary import RunSummary

app = typer.Typer(
    help="Turn raw web crawls into a curated, deduplicated mixture and training-ready token shards.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


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


def _load_or_exit(recipe: Path):
    try:
        return load_recipe(recipe)
    except RecipeError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _print_summary(summary: RunSummary) -> None:
    table = Table(title="documents per stage", show_lines=False)
    table.add_column("stage")
    table.add_column("in", justify="right")
    table.add_column("out", justify="right")
    table.add_column("dropped / skipped (reason: count)")
    for row in summary.stages:
        reasons = ", ".join(
            f"{reason}: {n}" for reason, n in sorted(row.dropped.items(), key=lambda kv: -kv[1])
        )
        table.add_row(row.label, f"{row.docs_in:,}", f"{row.docs_out:,}", reasons)
    console.print(table)
    console.print(f"documents kept: {summary.documents_out:,}   tokens written: {summary.tokens_written:,}")


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def run(
    ctx: typer.Context,
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    engine: Annotated[
        str, typer.Option(help="Execution engine: ray (default), beam, or local (in-process).")
    ] = "ray",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address; without it a local Ray instance is started.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Run directory (default: runs/<recipe name>-<recipe hash>).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="CPUs for a local Ray instance or Beam's in-process runner.")
    ] = None,
) -> None:
    """Run a recipe; a finished run is not redone, an interrupted one resumes.

    With --engine beam, arguments after `--` go to Beam as pipeline options, e.g.
    `-- --runner=FlinkRunner --flink_master=host:8081`.
    """
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
            )
    except (RunDirError, FileNotFoundError, ValueError, ConnectionError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if result.already_complete:
        console.print("This run is already complete; nothing to do.")
    _print_summary(result.summary)
    console.print(f"run directory: {result.run_dir}")


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")]) -> None:
    """Check a recipe without running it: fields, stage names, parameters, column flow."""
    parsed = _load_or_exit(recipe)
    console.print(f"{recipe}: valid recipe '{parsed.name}' (fingerprint {parsed.fingerprint()})")
    for index, entry in enumerate(parsed.stages, start=1):
        console.print(f"  {index:02d}. {entry.stage} {entry.params}")


@app.command()
def verify(run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")]) -> None:
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
    shards_dir: Annotated[Path, typer.Argument(help="A shards directory (with manifest.json).")],
    sample: Annotated[int, typer.Option(min=0, help="How many documents to decode and show.")] = 2,
    verify: Annotated[bool, typer.Option(help="Check sizes and sha256 against the manifest.")] = True,
) -> None:
    """Counts per shard, a decoded sample, and checksum verification."""
    from corpusmill.shards.inspect import inspect_shards

    try:
        report = inspect_shards(shards_dir, sample=sample, verify=verify)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
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
        Path, typer.Argument(help="A shards directory written by a run (with manifest.json).")
    ],
    config: Annotated[str, typer.Option(help="A preset (tiny, qwen2-0.5b) or a YAML config file.")] = "tiny",
    output: Annotated[Path, typer.Option(help="Where checkpoints, metrics.jsonl and loss.png go.")] = Path(
        "runs/train"
    ),
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Stop after this step (the schedule still follows the config).")
    ] = None,
) -> None:
    """Train a Qwen2-architecture model on token shards; rerunning continues from the last checkpoint.

    For several GPUs: torchrun --nproc_per_node=N -m corpusmill.cli train SHARDS --config CONFIG.
    """
    from corpusmill.training import load_config
    from corpusmill.training import train as run_training

    logging.getLogger("corpusmill.training").setLevel(logging.INFO)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
    try:
        parsed = load_config(config)
    except (FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    result = run_training(shards_dir, parsed, output, max_steps=max_steps)
    steps = sorted(result.losses)
    if steps:
        head = [result.losses[s] for s in steps[: max(1, len(steps) // 10)]]
        tail = [result.losses[s] for s in steps[-max(1, len(steps) // 10) :]]
        console.print(
            f"trained steps {result.start_step + 1}-{result.final_step}: loss {sum(head) / len(head):.3f} -> "
            f"{sum(tail) / len(tail):.3f} ({result.tokens_seen:,} tokens)"
        )
    console.print(
        f"metrics: {result.metrics_path}   plot: {result.plot_path}   checkpoint: {result.checkpoint_path}"
    )


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
