"""The README's walk-through from a laptop to a cluster agrees with the CLI and with the manifests in deploy/.

Every `corpusmill` command in it (those submitted as Ray jobs included) is one the CLI accepts as written;
from the step that moves to a bucket on, every run directory it writes or checks is on object storage, so no
step depends on a shared file system; and the secrets and ConfigMap it creates are exactly the ones the
KubeRay manifests read.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import typer
import yaml

from corpusmill.cli import app

REPO = Path(__file__).resolve().parents[2]
HEADING = "## From a laptop to a cluster"
OBJECT_STORE = ("s3://", "gs://")


def _section() -> str:
    readme = (REPO / "README.md").read_text()
    start = readme.index(HEADING)
    end = readme.find("\n## ", start + len(HEADING))
    return readme[start : end if end != -1 else None]


def _commands(text: str) -> list[list[str]]:
    """Each shell command of the section's bash blocks, as words (continuations joined, `&&` lists split)."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            while "&&" in words:
                cut = words.index("&&")
                commands.append(words[:cut])
                words = words[cut + 1 :]
            if words:
                commands.append(words)
    return commands


def _corpusmill(words: list[str]) -> list[str] | None:
    """The `corpusmill ...` part of a command: the command itself, or the entrypoint of `ray job submit`."""
    if words[0] == "corpusmill":
        return words
    if "submit" in words and "--" in words:
        entrypoint = words[words.index("--") + 1 :]
        return entrypoint if entrypoint[0] == "corpusmill" else None
    return None


def _parse(words: list[str]) -> tuple[str, dict]:
    group = typer.main.get_command(app)
    command = group.get_command(click.Context(group), words[1])
    assert command is not None, words
    context = command.make_context(words[1], words[2:])
    assert context.args == [], f"{shlex.join(words)}: {context.args} not understood"
    return words[1], context.params


def test_every_corpusmill_command_is_accepted_and_every_run_after_step_one_is_on_a_bucket() -> None:
    text = _section()
    laptop, rest = text.split("**2.", 1)
    for words in filter(None, map(_corpusmill, _commands(laptop))):
        _parse(words)
    checked = []
    for words in filter(None, map(_corpusmill, _commands(rest))):
        name, params = _parse(words)
        if name == "run":
            checked.append(params["output"])
        elif name in ("verify", "report"):
            checked.append(params["run_dir"])
    assert len(checked) >= 6, checked
    assert all(str(location).startswith(OBJECT_STORE) for location in checked), checked
    # The same paragraph-level promise for the commands written inline in the prose.
    inline = re.findall(r"`(corpusmill run [^`]*)`", rest.replace("\n", " "))
    assert inline
    for line in inline:
        _, params = _parse(shlex.split(line))
        assert params["output"].startswith(OBJECT_STORE), line


def test_the_kubernetes_objects_it_creates_are_the_ones_the_manifests_read() -> None:
    created: dict[str, set[str]] = {"secret": set(), "configmap": set()}
    keys: dict[str, set[str]] = {}
    for words in _commands(_section()):
        if words[:2] == ["kubectl", "create"]:
            kind = words[2]
            name = words[4] if kind == "secret" else words[3]
            created[kind].add(name)
            keys[name] = {
                arg.split("=", 2)[1] for arg in words if arg.startswith(("--from-literal=", "--from-file="))
            }
    read: dict[str, set[str]] = {"secret": set(), "configmap": set()}
    manifests = [REPO / "deploy" / "kuberay" / "raycluster.yaml", REPO / "deploy" / "kuberay" / "rayjob.yaml"]
    for manifest in manifests:
        text = manifest.read_text()
        for doc in yaml.safe_load_all(text):
            _collect(doc, read)
    assert created == read
    assert keys["corpusmill-tokens"] == {"api-token", "ray-token"}
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= keys["corpusmill-storage"]
    job = yaml.safe_load((REPO / "deploy" / "kuberay" / "rayjob.yaml").read_text())
    (recipe_key,) = keys["corpusmill-recipe"]
    assert shlex.split(job["spec"]["entrypoint"])[4].endswith(f"/{recipe_key}")


def _collect(node: object, read: dict[str, set[str]]) -> None:
    """The names of the secrets and ConfigMaps a manifest refers to, anywhere in it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("secretKeyRef", "secretRef") and isinstance(value, dict):
                read["secret"].add(value["name"])
            elif key == "configMap" and isinstance(value, dict):
                read["configmap"].add(value["name"])
            else:
                _collect(value, read)
    elif isinstance(node, list):
        for item in node:
            _collect(item, read)
