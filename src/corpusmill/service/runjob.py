"""The entrypoint of a run job whose run directory is on object storage: fetch the recipe, then `corpusmill run`.

`python -m corpusmill.service.runjob RECIPE_URI [corpusmill run options...]`. The service puts the submitted
recipe into the run directory as one object (`s3://bucket/runs/demo/run-000001/submitted-recipe.yaml`), and
`corpusmill run` reads a recipe from a local file; the job can land on any node of the cluster, so this copies
the recipe into a temporary directory on that node and runs the ordinary CLI on it, with the other arguments
unchanged. The exit status is the CLI's; a recipe that cannot be read fails the job with an `error:` line.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from corpusmill.core.location import run_path


def main(argv: list[str] | None = None) -> int:
    """Run `corpusmill run` on a local copy of the recipe named by the first argument."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(
            "usage: python -m corpusmill.service.runjob RECIPE_URI [corpusmill run options...]",
            file=sys.stderr,
        )
        return 2
    source, rest = args[0], args[1:]
    try:
        text = run_path(source).read_bytes()
    except OSError as exc:
        print(f"error: cannot read the recipe {source}: {exc}", file=sys.stderr)
        return 1
    from corpusmill.cli import app

    with tempfile.TemporaryDirectory(prefix="corpusmill-recipe-") as scratch:
        local = Path(scratch) / "recipe.yaml"
        local.write_bytes(text)
        try:
            app(args=["run", str(local), *rest], prog_name="corpusmill")
        except SystemExit as exc:  # how the CLI ends, with its status
            return exc.code if isinstance(exc.code, int) else int(bool(exc.code))
    return 0


if __name__ == "__main__":
    sys.exit(main())
