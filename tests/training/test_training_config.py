"""TrainConfig presets, YAML loading and the clarity of its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpusmill.training.config import PRESETS, TrainConfig, load_config


def test_qwen_preset_has_the_real_qwen25_05b_shape() -> None:
    config = load_config("qwen2-0.5b")
    assert (config.hidden_size, config.num_layers, config.num_heads, config.num_kv_heads) == (896, 24, 14, 2)
    assert config.intermediate_size == 4864
    assert config.tie_embeddings and config.rope_theta == 1e6 and config.dtype == "bfloat16"
    assert config.vocab_size == 151665
    assert config.head_dim == 64


def test_yaml_names_a_preset_and_overrides_fields(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("preset: tiny\nmax_steps: 70\nlr: 0.01\nbetas: [0.8, 0.9]\n", encoding="utf-8")
    config = load_config(path)
    assert config.preset == "tiny"
    assert config.max_steps == 70 and config.lr == 0.01 and config.betas == (0.8, 0.9)
    assert config.hidden_size == PRESETS["tiny"]["hidden_size"]
    # Keyword overrides beat the file.
    assert load_config(path, max_steps=30).max_steps == 30


def test_unknown_key_is_named_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("preset: tiny\nlearnig_rate: 0.1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.yaml(.|\n)*learnig_rate"):
        load_config(path)


def test_unknown_preset_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("preset: huge\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"unknown preset 'huge'.*qwen2-0\.5b.*tiny"):
        load_config(path)


def test_missing_file_says_it_is_neither_file_nor_preset(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a preset name"):
        load_config(tmp_path / "nope.yaml")


def test_inconsistent_shapes_and_schedule_are_rejected() -> None:
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        TrainConfig(hidden_size=60, num_heads=8, num_kv_heads=2)
    with pytest.raises(ValueError, match="not a multiple of num_kv_heads"):
        TrainConfig(num_heads=4, num_kv_heads=3)
    with pytest.raises(ValueError, match=r"min_lr .* is above lr"):
        TrainConfig(lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="warmup_steps 50 exceeds max_steps 10"):
        TrainConfig(warmup_steps=50, max_steps=10)


def test_bad_types_and_values_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("dtype: float16\nseq_len: 0\n", encoding="utf-8")
    with pytest.raises(ValueError) as info:
        load_config(path)
    message = str(info.value)
    assert "dtype" in message and "seq_len" in message and str(path) in message


def test_non_mapping_yaml_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- tiny\n", encoding="utf-8")
    with pytest.raises(ValueError, match="expected a mapping"):
        load_config(path)
