"""Prompt files are versioned by content and truncate documents sanely; the sample is a pure function of ids."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from corpusmill.classifiers.prompt import load_prompt, truncate
from corpusmill.classifiers.sampling import sample_documents
from corpusmill.classifiers.taxonomy import DIMENSION_NAMES, DOMAIN_NAMES

RunMaker = Callable[..., Path]
BUNDLED = importlib.resources.files("corpusmill.classifiers.prompts").joinpath("annotate_v1.md")


def test_bundled_prompt_version_is_name_plus_content_hash() -> None:
    prompt = load_prompt()
    assert re.fullmatch(r"annotate_v1-[0-9a-f]{10}", prompt.version)
    assert load_prompt("annotate_v1").version == prompt.version


def test_same_content_same_version_and_any_edit_a_new_one(tmp_path: Path) -> None:
    text = BUNDLED.read_text(encoding="utf-8")
    copy = tmp_path / "annotate_v1.md"
    copy.write_text(text, encoding="utf-8")
    assert load_prompt(str(copy)).version == load_prompt().version
    edited = tmp_path / "sub" / "annotate_v1.md"
    edited.parent.mkdir()
    edited.write_text(text.replace("Rate the document below.", "Rate the document below carefully."), "utf-8")
    assert load_prompt(str(edited)).version.startswith("annotate_v1-")
    assert load_prompt(str(edited)).version != load_prompt().version


def test_messages_show_taxonomy_and_document_once() -> None:
    prompt = load_prompt()
    document = "Mitochondria produce ATP. {{domains}} stays literal here."
    messages = prompt.messages(document)
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert user.count(document) == 1
    assert "{{" not in messages[0]["content"]
    assert user.count("{{domains}}") == 1  # only the one inside the document
    for name in (*DIMENSION_NAMES, *DOMAIN_NAMES):
        assert name in user
    # The answer format asks for every key the parser requires.
    assert all(f'"{key}"' in user for key in (*DIMENSION_NAMES, "overall", "domain"))
    # The maintainers' note above the first role marker is not sent.
    assert "note for maintainers" not in user + messages[0]["content"]


def test_prompt_without_document_placeholder_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.md"
    broken.write_text("<!-- role: user -->\nRate this.\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"\{\{document\}\} exactly once"):
        load_prompt(str(broken))
    unknown = tmp_path / "unknown.md"
    unknown.write_text("<!-- role: user -->\n{{document}} {{colour}}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="colour"):
        load_prompt(str(unknown))
    with pytest.raises(FileNotFoundError, match="annotate_v1"):
        load_prompt("annotate_v99")


def test_truncation_cuts_at_whitespace_and_keeps_short_texts(annotate_pages: list[tuple[str, str]]) -> None:
    text = max((t for _, t in annotate_pages), key=len)
    assert len(text) > 2000
    cut = truncate(text, 1000)
    assert len(cut) <= 1000 and len(cut) > 900
    assert text.startswith(cut)
    # The cut falls between words: the next character of the original is whitespace.
    assert text[len(cut)].isspace() and not cut[-1].isspace()
    assert truncate("short text", 1000) == "short text"
    assert truncate("abc def", 7) == "abc def"
    assert truncate("abc def", 6) == "abc"
    # One enormous word is cut hard rather than dropped.
    assert truncate("x" * 50, 10) == "x" * 10
    prompt = load_prompt(max_chars=1000)
    assert prompt.shown_text(text) == cut
    assert cut in prompt.messages(text)[1]["content"]
    assert text[: len(cut) + 50] not in prompt.messages(text)[1]["content"]


def brute_force_sample(pages: list[tuple[str, str]], n: int, seed: int) -> list[str]:
    """Rank every id by its blake2b key and take the n smallest: the definition, without a heap."""
    keyed = sorted(pages, key=lambda page: hashlib.blake2b(f"{seed}:{page[0]}".encode()).digest())
    return [doc_id for doc_id, _ in keyed[:n]]


def test_sample_is_the_n_smallest_keys_in_key_order(
    annotate_run_dir: RunMaker, annotate_pages: list[tuple[str, str]]
) -> None:
    run = annotate_run_dir(files=3)
    table = sample_documents(run, 7, seed=0)
    assert table.column_names == ["id", "text"]
    assert table.column("id").to_pylist() == brute_force_sample(annotate_pages, 7, 0)
    texts = dict(annotate_pages)
    assert table.column("text").to_pylist() == [texts[i] for i in table.column("id").to_pylist()]


def test_sample_ignores_file_split_and_order(annotate_run_dir: RunMaker) -> None:
    one = sample_documents(annotate_run_dir(files=1, name="one"), 9, seed=3)
    four = sample_documents(annotate_run_dir(files=4, name="four"), 9, seed=3)
    reverse = sample_documents(annotate_run_dir(files=5, reverse=True, name="rev"), 9, seed=3)
    assert one.equals(four) and one.equals(reverse)


def test_seed_changes_sample_and_larger_samples_extend_smaller(
    annotate_run_dir: RunMaker, annotate_pages: list[tuple[str, str]]
) -> None:
    run = annotate_run_dir(files=2)
    small = sample_documents(run, 4, seed=0).column("id").to_pylist()
    large = sample_documents(run, 10, seed=0).column("id").to_pylist()
    assert large[:4] == small
    assert sample_documents(run, 10, seed=1).column("id").to_pylist() != large
    everything = sample_documents(run, 1000, seed=0)
    assert everything.num_rows == len(annotate_pages)
    assert sample_documents(run, 0).num_rows == 0


def test_sample_needs_a_run_with_documents(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="documents"):
        sample_documents(tmp_path, 5)
    (tmp_path / "documents").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no \.parquet files"):
        sample_documents(tmp_path, 5)
