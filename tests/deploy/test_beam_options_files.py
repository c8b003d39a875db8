"""The runner option files in deploy/beam are options Beam itself recognises, each naming its runner."""

from __future__ import annotations

from pathlib import Path

import pytest
from apache_beam.options.pipeline_options import PipelineOptions

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "beam"


@pytest.mark.parametrize(
    ("name", "runner"), [("flink", "FlinkRunner"), ("spark", "SparkRunner"), ("dataflow", "DataflowRunner")]
)
def test_options_file_parses_completely(name: str, runner: str) -> None:
    args = (DEPLOY / f"{name}.options").read_text().split()
    parsed = PipelineOptions(args).get_all_options(drop_default=True)
    given = {arg.removeprefix("--").split("=", 1)[0] for arg in args}
    assert given <= set(parsed), f"Beam does not know {sorted(given - set(parsed))}"
    assert parsed["runner"] == runner


def test_worker_image_matches_the_installed_beam_version() -> None:
    import apache_beam

    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"apache/beam_python3.11_sdk:{apache_beam.__version__}" in dockerfile
