"""The recipe: one pydantic model for what a run reads, which stages it applies, and where it writes.

A recipe is YAML. Every model forbids unknown fields, and every error names the file, the field and what is
allowed, so a typo fails before any work starts instead of being silently ignored. Stage entries are
`{stage: NAME, ...params}`; the stage's own parameter model validates the params, and the whole recipe is
then checked for column flow (here) and for what cannot be right together (`recipe_checks`). A validated
recipe is normalised (stage names resolved to their versions, defaults filled in) and hashed: the hash keys
the run directory, so changing anything that changes output gives a new run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corpusmill.core import schema
from corpusmill.core.recipe_checks import check_recipe
from corpusmill.core.stage import Stage, StageParams, available_stages, resolve_stage

# The rule document ids are made by (`corpusmill.io.batching.document_id`); part of every run's fingerprint.
DOCUMENT_ID_RULE = "relative-name:place/2"

InputFormat = Literal["auto", "warc", "wet", "html", "jsonl", "parquet"]

# What each reader fills in; `text` is null for HTML sources until `extract` runs. `lang` is filled by WET
# files (their identified-language header) and by JSONL/Parquet only when the input names a `lang_field`;
# HTML pages and WARC responses carry none, so a stage that needs it must come after `langid`.
_READER_COLUMNS: dict[str, set[str]] = {
    "warc": {schema.ID, schema.URL, schema.SOURCE, schema.HTML},
    "html": {schema.ID, schema.URL, schema.SOURCE, schema.HTML},
    "wet": {schema.ID, schema.TEXT, schema.URL, schema.SOURCE, schema.LANG},
    "jsonl": {schema.ID, schema.TEXT, schema.URL, schema.SOURCE},
    "parquet": {schema.ID, schema.TEXT, schema.URL, schema.SOURCE},
}


class RecipeError(ValueError):
    """A recipe that cannot run; the message lists every problem, each with file and field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: invalid recipe\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """What to read: paths or fsspec URIs (globs allowed; relative paths are relative to the recipe file).

    Small files are bundled into parts of about `part_bytes` (the unit of parallel work and of resumption);
    a file at least that big is a part of its own. Document ids are built from each file's path relative to
    `root` (default: the deepest directory common to all `paths`), so they do not depend on the mount.
    """

    paths: list[str] = Field(min_length=1)
    root: str | None = None
    format: InputFormat = "auto"
    text_field: str = "text"
    id_field: str | None = "id"
    url_field: str | None = "url"
    lang_field: str | None = None
    html_field: str | None = None
    max_document_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    # Largest share of a document's characters that may be U+FFFD put in by decoding (0: none at all).
    max_replacement_share: float = Field(default=0.0, ge=0.0, le=1.0)
    part_bytes: int = Field(default=32 * 1024 * 1024, gt=0)


class OutputSpec(_Strict):
    """How a run writes: rejected documents kept for inspection or not, and the batch size of every stage."""

    keep_rejected: bool = True
    batch_size: int = Field(default=1000, gt=0, le=1_000_000)


class BeamSpec(_Strict):
    """Beam pipeline options used whenever the recipe runs with `--engine beam` (CLI options come after them)."""

    options: list[str] = Field(default_factory=list)

    @field_validator("options")
    @classmethod
    def _look_like_options(cls, options: list[str]) -> list[str]:
        for option in options:
            if not option.startswith("--"):
                raise ValueError(f"{option!r} is not a pipeline option; write it as --name=value")
        return options


class StageEntry(_Strict):
    """One resolved stage of a recipe: its versioned name and validated parameters."""

    stage: str
    params: dict[str, Any] = Field(default_factory=dict)

    def stage_class(self) -> type[Stage]:
        """The registered class behind the versioned name."""
        return resolve_stage(self.stage)

    def build(self) -> Stage:
        """A fresh stage instance (not yet set up)."""
        cls = self.stage_class()
        return cls(cls.Params.model_validate(self.params))


class Recipe(_Strict):
    """A whole run: input, ordered stages, output options."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)
    description: str = ""
    seed: int = 0
    input: InputSpec
    stages: list[StageEntry] = Field(min_length=1)
    output: OutputSpec = OutputSpec()
    beam: BeamSpec = BeamSpec()

    def normalized(self) -> dict[str, Any]:
        """The canonical form that keys a run; what cannot change the output (description, engine options) is left out.

        The rule that makes document ids is part of it, so runs made under an earlier rule are never resumed.
        """
        data = self.model_dump(mode="json")
        data.pop("description", None)
        data.pop("beam", None)
        data["document_ids"] = DOCUMENT_ID_RULE
        return data

    def fingerprint(self) -> str:
        """A short hash of the normalised recipe."""
        canonical = json.dumps(self.normalized(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def to_yaml(self) -> str:
        """The normalised recipe as YAML, in the same `{stage: NAME, ...params}` form users write."""
        data = self.model_dump(mode="json")
        data["stages"] = [{"stage": s["stage"], **s["params"]} for s in data["stages"]]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def load_recipe(path: str | Path) -> Recipe:
    """Read, validate and normalise a recipe file (a local path or an object-storage URI, such as the recipe
    the service puts into a run directory on a bucket); RecipeError lists every problem found.

    Relative input paths are relative to a local recipe's folder; a recipe on object storage must name its
    inputs by absolute paths or URIs, since no node has its folder.
    """
    from corpusmill.core.location import run_path

    location = run_path(path)
    try:
        text = location.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise RecipeError(str(location), [f"cannot read the file: {reason}"]) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RecipeError(str(location), [f"not valid YAML: {exc}"]) from exc
    base_dir = location.parent if isinstance(location, Path) else None
    return parse_recipe(data, source=str(location), base_dir=base_dir)


def parse_recipe(data: Any, *, source: str = "<recipe>", base_dir: Path | None = None) -> Recipe:
    """Validate recipe data already parsed from YAML (or built in code)."""
    if not isinstance(data, dict):
        raise RecipeError(source, [f"the top level must be a mapping with keys {_allowed(Recipe)}"])
    problems: list[str] = []
    raw_stages = data.get("stages")
    entries: list[dict[str, Any]] = []
    if isinstance(raw_stages, list):
        for index, raw in enumerate(raw_stages):
            entry = _resolve_stage_entry(raw, index, problems)
            if entry is not None:
                entries.append(entry)
    data = {**data, "stages": entries if isinstance(raw_stages, list) else raw_stages}
    if isinstance(raw_stages, list) and not raw_stages:
        data["stages"] = []
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as exc:
        problems.extend(_format_errors(exc, Recipe))
        raise RecipeError(source, problems) from None
    if problems:
        raise RecipeError(source, problems)
    recipe = _resolve_paths(recipe, base_dir)
    problems.extend(check_columns(recipe))
    problems.extend(check_recipe(recipe))
    if problems:
        raise RecipeError(source, problems)
    return recipe


def _resolve_stage_entry(raw: Any, index: int, problems: list[str]) -> dict[str, Any] | None:
    where = f"stages[{index}]"
    if isinstance(raw, str):
        raw = {"stage": raw}
    if not isinstance(raw, dict) or "stage" not in raw:
        problems.append(f"{where}: each stage is a mapping with a 'stage' key, e.g. '- stage: langid'")
        return None
    name = raw["stage"]
    try:
        cls = resolve_stage(str(name))
    except KeyError as exc:
        problems.append(f"{where}.stage: {exc.args[0]}")
        return None
    params = {k: v for k, v in raw.items() if k != "stage"}
    try:
        validated: StageParams = cls.Params.model_validate(params)
    except ValidationError as exc:
        label = f"{where} ({cls.versioned_name()})"
        problems.extend(f"{label}.{line}" for line in _format_errors(exc, cls.Params))
        return None
    return {"stage": cls.versioned_name(), "params": validated.model_dump(mode="json")}


def _format_errors(exc: ValidationError, model: type[BaseModel]) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            parent = _model_at(model, error["loc"][:-1])
            allowed = _allowed(parent) if parent is not None else "see the documentation"
            message = f"unknown field; allowed: {allowed}"
        elif error["type"] == "missing":
            message = "required field is missing"
        lines.append(f"{loc}: {message}")
    return lines


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(part) if hasattr(current, "model_fields") else None
        if field is None:
            return None
        current = field.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _allowed(model: type[BaseModel]) -> str:
    return ", ".join(model.model_fields)


def _resolve_paths(recipe: Recipe, base_dir: Path | None) -> Recipe:
    if base_dir is None:
        return recipe

    def resolve(p: str) -> str:
        return p if "://" in p or Path(p).is_absolute() else str((base_dir / p).resolve())

    update: dict[str, Any] = {"paths": [resolve(p) for p in recipe.input.paths]}
    if recipe.input.root is not None:
        update["root"] = resolve(recipe.input.root)
    return recipe.model_copy(update={"input": recipe.input.model_copy(update=update)})


def reader_columns(recipe: Recipe) -> set[str] | None:
    """Columns the recipe's reader fills, or None when the format cannot be told from the paths."""
    fmt = recipe.input.format
    if fmt == "auto":
        from corpusmill.io import detect_format

        formats = set()
        for path in recipe.input.paths:
            try:
                formats.add(detect_format(path))
            except ValueError:
                return None
        if len(formats) != 1:
            return None
        fmt = formats.pop()
    columns = set(_READER_COLUMNS[fmt])
    if fmt in ("jsonl", "parquet") and recipe.input.lang_field:
        columns.add(schema.LANG)
    return columns


def _column_producers() -> dict[str, str]:
    """Which registered stage adds each column, to suggest the stage a recipe is missing."""
    producers: dict[str, str] = {}
    for name in available_stages():
        cls = resolve_stage(name)
        try:
            stage = cls()
        except ValidationError:
            continue  # a stage without defaults for every parameter cannot be asked
        for field in stage.output_fields():
            producers.setdefault(field.name, cls.name)
    return producers


def check_columns(recipe: Recipe) -> list[str]:
    """Every stage must find the columns it requires, given the reader and the stages before it."""
    available = reader_columns(recipe)
    if available is None:
        return []
    producers = _column_producers()
    problems = []
    for index, entry in enumerate(recipe.stages):
        stage = entry.build()
        missing = [col for col in stage.requires if col not in available]
        for col in missing:
            hint = f"; add '{producers[col]}' before it" if col in producers else ""
            problems.append(
                f"stages[{index}] ({entry.stage}): needs column '{col}', which neither the reader nor an earlier "
                f"stage provides{hint}"
            )
        available -= set(stage.removes)
        available |= {field.name for field in stage.output_fields()}
    return problems
