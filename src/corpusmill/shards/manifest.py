"""The manifest that makes a shards directory self-describing and checkable.

A training job (or a person copying shards between clusters) needs to know which tokenizer and dtype the
shards were written with and whether every file arrived intact. The manifest lists each shard's files
relative to the shards directory, with byte sizes, SHA-256 and token/document counts, plus totals that are
checked against the list when the manifest is built or read, so a hand-edited or truncated manifest is
caught early. `verify()` compares the manifest with what is on disk and reports every problem at once.

Each shard belongs to a split: `train`, or `heldout` when `write_shards` held documents out
(`heldout_fraction`). The manifest records how the split was drawn and totals per split, so a trainer can
evaluate on whole documents it never trains on without reading a single shard. Format version 1 had no
splits; its shards read as `train`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from corpusmill.core.atomic import write_json
from corpusmill.core.location import RunPath, run_path
from corpusmill.shards.split import HELDOUT, TRAIN, Split
from corpusmill.shards.tokenizer import EOS_ID, TOKENIZER_NAME, VOCAB_SIZE, vocabulary_sha256

MANIFEST_FORMAT = "megatron-indexed"
MANIFEST_VERSION = 2
_CHUNK = 1 << 20


def sha256_file(path: str | Path | RunPath) -> str:
    """Hash a file in 1 MiB chunks, so multi-gigabyte shards never have to fit in memory.

    An object on object storage (a URI or `UPath`) is streamed the same way, through fsspec's buffered reads.
    """
    digest = hashlib.sha256()
    with run_path(path).open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


if TYPE_CHECKING:
    from corpusmill.shards.megatron import ShardInfo


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerInfo(_Model):
    """Which tokenizer produced the ids; a trainer must use the same one."""

    name: str = TOKENIZER_NAME
    vocab_size: int = Field(default=VOCAB_SIZE, ge=1)
    eos_id: int = Field(default=EOS_ID, ge=0)
    vocab_sha256: str = Field(default_factory=vocabulary_sha256, pattern=r"^[0-9a-f]{64}$")


class ShardEntry(_Model):
    """One `.bin`/`.idx` pair, with file names relative to the shards directory."""

    name: str
    bin_file: str
    idx_file: str
    bin_bytes: int = Field(ge=0)
    idx_bytes: int = Field(ge=0)
    bin_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    idx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    num_tokens: int = Field(ge=0)
    num_documents: int = Field(ge=0)
    split: Split = TRAIN

    @classmethod
    def from_info(cls, info: ShardInfo, shards_dir: Path, split: Split = TRAIN) -> ShardEntry:
        """The entry for a shard the writer just finished, with file names relative to `shards_dir`."""
        return cls(
            name=info.bin_path.stem,
            bin_file=str(info.bin_path.relative_to(shards_dir)),
            idx_file=str(info.idx_path.relative_to(shards_dir)),
            bin_bytes=info.bin_bytes,
            idx_bytes=info.idx_bytes,
            bin_sha256=info.bin_sha256,
            idx_sha256=info.idx_sha256,
            num_tokens=info.num_tokens,
            num_documents=info.num_documents,
            split=split,
        )


class RecipeRef(_Model):
    """The recipe that wrote the shards: its fingerprint keys the run, so shards trace back to their inputs."""

    name: str
    fingerprint: str


class ShuffleInfo(_Model):
    """How documents were ordered across shards, so the order can be reproduced or checked."""

    method: Literal["hash-range", "per-part"]
    seed: int | None = None


class HeldoutInfo(_Model):
    """How documents were held out: those whose `hash64(seed, "heldout", original id)` is below
    `fraction * 2**64`, where a `mix` copy's original id is its id without the `#<copy>` suffix."""

    fraction: float = Field(gt=0, lt=1)
    seed: int


class SplitTotals(_Model):
    """How much of the data one split holds."""

    shards: int = Field(default=0, ge=0)
    documents: int = Field(default=0, ge=0)
    tokens: int = Field(default=0, ge=0)


def _split_totals(shards: list[ShardEntry], split: Split) -> SplitTotals:
    mine = [s for s in shards if s.split == split]
    return SplitTotals(
        shards=len(mine), documents=sum(s.num_documents for s in mine), tokens=sum(s.num_tokens for s in mine)
    )


class ShardManifest(_Model):
    """Everything a consumer needs to trust and load a shards directory."""

    format: Literal["megatron-indexed", "datatrove-tokenized"] = MANIFEST_FORMAT
    format_version: Literal[1, 2] = MANIFEST_VERSION
    tokenizer: TokenizerInfo = TokenizerInfo()
    dtype: str = "int32"
    recipe: RecipeRef | None = None
    shuffle: ShuffleInfo | None = None
    shards: list[ShardEntry] = Field(default_factory=list)
    total_tokens: int = Field(default=0, ge=0)
    total_documents: int = Field(default=0, ge=0)
    heldout: HeldoutInfo | None = None  # None: nothing was held out
    splits: dict[Split, SplitTotals] = Field(default_factory=dict)  # empty in format version 1

    @classmethod
    def from_shards(
        cls,
        shards: list[ShardEntry],
        *,
        dtype: str = "int32",
        heldout: HeldoutInfo | None = None,
        **kwargs: object,
    ) -> ShardManifest:
        """Build a manifest with shards sorted by file name and totals summed from them, overall and per split.

        `train` is always listed; `heldout` whenever documents were held out, even if none fell in it, so a
        reader can tell an empty held-out split from a run that never asked for one.
        """
        ordered = sorted(shards, key=lambda s: s.bin_file)
        listed = [TRAIN] + (
            [HELDOUT] if heldout is not None or any(s.split == HELDOUT for s in ordered) else []
        )
        return cls(
            dtype=dtype,
            shards=ordered,
            total_tokens=sum(s.num_tokens for s in ordered),
            total_documents=sum(s.num_documents for s in ordered),
            heldout=heldout,
            splits={split: _split_totals(ordered, split) for split in listed},
            **kwargs,
        )

    def split_shards(self, split: Split) -> list[ShardEntry]:
        """The shards of one split, in manifest (file name) order."""
        return [s for s in self.shards if s.split == split]

    def split_totals(self, split: Split) -> SplitTotals:
        """Shards, documents and tokens of one split, counted from the shard list (any format version)."""
        return _split_totals(self.shards, split)

    def has_split(self, split: Split) -> bool:
        """Whether the writer made this split (listed in `splits`, or holding shards)."""
        return split in self.splits or any(s.split == split for s in self.shards)

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        tokens = sum(s.num_tokens for s in self.shards)
        documents = sum(s.num_documents for s in self.shards)
        if (tokens, documents) != (self.total_tokens, self.total_documents):
            raise ValueError(
                f"manifest totals ({self.total_tokens} tokens, {self.total_documents} documents) "
                f"do not match its shards ({tokens} tokens, {documents} documents)"
            )
        for split, totals in self.splits.items():
            if totals != _split_totals(self.shards, split):
                raise ValueError(f"manifest totals of split {split!r} ({totals}) do not match its shards")
        unlisted = {s.split for s in self.shards} - set(self.splits)
        if self.splits and unlisted:
            raise ValueError(f"manifest has shards of split(s) {sorted(unlisted)} missing from its splits")
        names = [s.bin_file for s in self.shards] + [s.idx_file for s in self.shards]
        if len(set(names)) != len(names):
            raise ValueError("manifest lists the same shard file more than once")
        for entry in self.shards:
            for file_name in (entry.bin_file, entry.idx_file):
                if Path(file_name).is_absolute() or ".." in Path(file_name).parts:
                    raise ValueError(f"shard file {file_name!r} must be relative to the shards directory")
        return self

    def write(self, path: str | Path) -> None:
        """Write atomically, so a reader never sees half a manifest."""
        write_json(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls, path: str | Path | RunPath) -> ShardManifest:
        """Load and validate a manifest (a local file or an object); errors name the file."""
        path = run_path(path)
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path}: not a valid shard manifest: {exc}") from exc

    def verify(self, shards_dir: str | Path | RunPath, *, check_hashes: bool = True) -> list[str]:
        """Compare the manifest with the files on disk (or on object storage); returns every problem found
        (empty: all good)."""
        shards_dir = run_path(shards_dir)
        problems: list[str] = []
        for entry in self.shards:
            for file_name, size, sha in (
                (entry.bin_file, entry.bin_bytes, entry.bin_sha256),
                (entry.idx_file, entry.idx_bytes, entry.idx_sha256),
            ):
                path = shards_dir / file_name
                if not path.is_file():
                    problems.append(f"{path}: missing")
                    continue
                actual_size = path.stat().st_size
                if actual_size != size:
                    problems.append(f"{path}: size {actual_size} bytes, manifest says {size}")
                    continue
                if check_hashes and (actual_sha := sha256_file(path)) != sha:
                    problems.append(f"{path}: sha256 {actual_sha}, manifest says {sha}")
        return problems
