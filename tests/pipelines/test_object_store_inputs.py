"""Inputs on object storage: a real S3 server (moto's, on loopback, over HTTP through s3fs), every engine.

The recipe names `s3://` URIs only; the environment (`AWS_ENDPOINT_URL_S3` and credentials, set by the
`s3_bucket` fixture) sends them to the server, in the driver and in the Ray and Beam workers that read the
parts. Document ids are names relative to the input root, so a run over the bucket must equal, file for
file, a run over a local copy of the same objects. A replaced object (same size, new content: a new ETag) is
refused on rerun, as a replaced local file is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import s3fs

from corpusmill.core.recipe import Recipe, load_recipe, parse_recipe
from corpusmill.demo.corpus import write_demo_corpus
from corpusmill.pipelines.runner import RunDirError, RunResult, run_recipe
from s3kit import Bucket

REPO = Path(__file__).resolve().parents[2]
# The local engine over the bucket is checked against a run over a local copy in the replaced-object test.
ENGINES = [
    pytest.param("ray", marks=pytest.mark.ray),
    pytest.param("beam", marks=pytest.mark.beam),
]


def _demo_recipe(paths: list[str]) -> Recipe:
    data = load_recipe(REPO / "recipes" / "demo.yaml").model_dump(mode="json")
    data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
    for stage in data["stages"]:
        if stage["stage"].startswith("extract"):
            stage["timeout_s"] = 120  # a slow page on a busy machine must not make the runs differ
    data["input"]["paths"] = paths
    return parse_recipe(data)


def _files(run_dir: Path) -> list[dict]:
    """Path, size and sha256 of every document, rejected, skipped and shard file of a finished run."""
    return json.loads((run_dir / "manifest.json").read_text())["files"]


def _assert_same_outputs(run: RunResult, reference: RunResult) -> None:
    """Every output file byte for byte, but for the recipe's fingerprint in the shard manifest.

    The fingerprint covers the recipe's input paths, which differ; the data files do not.
    """
    shard_manifests = []
    for result in (run, reference):
        manifest = json.loads((result.run_dir / "shards" / "manifest.json").read_text())
        assert (
            manifest["recipe"].pop("fingerprint")
            == json.loads((result.run_dir / "manifest.json").read_text())["fingerprint"]
        )
        shard_manifests.append(manifest)
    assert shard_manifests[0] == shard_manifests[1]
    files = [[f for f in _files(r.run_dir) if f["path"] != "shards/manifest.json"] for r in (run, reference)]
    assert any(f["path"].startswith("shards/") for f in files[0])
    assert files[0] == files[1]


@pytest.fixture(scope="module")
def demo(s3_bucket: Bucket, tmp_path_factory: pytest.TempPathFactory) -> tuple[Recipe, RunResult]:
    """The demo recipe over the sample crawl in the bucket, and the reference run over a local copy."""
    sample = tmp_path_factory.mktemp("sample")
    write_demo_corpus(sample, num_files=2)
    uploaded = s3_bucket.upload(sample, "crawl/sample")
    assert sum(uri.endswith(".warc.gz") for uri in uploaded) == 2
    local = _demo_recipe([str(sample / "*.warc.gz")])
    reference = run_recipe(local, engine="local", output=tmp_path_factory.mktemp("local-copy"))
    assert reference.summary.documents_out > 0
    return _demo_recipe([s3_bucket.uri("crawl/sample/*.warc.gz")]), reference


@pytest.mark.parametrize("engine", ENGINES)
def test_a_run_over_s3_equals_the_run_over_a_local_copy(engine: str, demo, tmp_path: Path) -> None:
    recipe, reference = demo
    run = run_recipe(recipe, engine=engine, output=tmp_path / engine, num_cpus=2)
    started = json.loads((run.run_dir / "run.json").read_text())
    assert started["root"] == "s3://corpusmill-test/crawl/sample"
    assert [name for name, _, _ in started["files"]] == ["demo-0000.warc.gz", "demo-0001.warc.gz"]
    assert all(version.startswith("ETag:") for _, _, version in started["files"])
    assert run.summary == reference.summary
    _assert_same_outputs(run, reference)


def test_a_replaced_object_is_refused_on_rerun(s3_bucket: Bucket, tmp_path: Path) -> None:
    corpus = tmp_path / "in"
    corpus.mkdir()
    for index in range(3):
        rows = [
            {"text": f"Document {n} of file {index}: a short page about rivers, bridges and mills."}
            for n in range(6)
        ]
        (corpus / f"f{index}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    s3_bucket.upload(corpus, "resume")
    recipe = parse_recipe(
        {
            "name": "object-resume",
            "input": {"paths": [s3_bucket.uri("resume/*.jsonl")], "part_bytes": 1},
            "stages": [{"stage": "dedup_exact"}, {"stage": "tokenize"}, {"stage": "write_shards"}],
            "output": {"batch_size": 16},
        }
    )
    run_dir = tmp_path / "run"
    run_recipe(recipe, engine="local", output=run_dir)
    assert run_recipe(recipe, engine="local", output=run_dir).already_complete

    # Another writer (its own client, not the filesystem instance the runs use) replaces f1.jsonl by an object
    # of the same size: only its ETag tells.
    data = (corpus / "f1.jsonl").read_bytes()
    changed = data.replace(b"Document 1 ", b"Document X ")
    assert len(changed) == len(data) and changed != data
    writer = s3fs.S3FileSystem(skip_instance_cache=True)
    writer.pipe_file(f"{s3_bucket.name}/resume/f1.jsonl", changed)
    with pytest.raises(RunDirError, match=r"f1\.jsonl: changed \(ETag:") as refused:
        run_recipe(recipe, engine="local", output=run_dir)
    assert "--restart" in str(refused.value)

    # Restarted, the run equals a run over a local copy of the bucket as it is now.
    (corpus / "f1.jsonl").write_bytes(changed)
    restarted = run_recipe(recipe, engine="local", output=run_dir, restart=True)
    assert not restarted.already_complete
    local = recipe.model_dump(mode="json")
    local["stages"] = [{"stage": s["stage"], **s["params"]} for s in local["stages"]]
    local["input"]["paths"] = [str(corpus / "*.jsonl")]
    fresh = run_recipe(parse_recipe(local), engine="local", output=tmp_path / "fresh")
    _assert_same_outputs(restarted, fresh)
