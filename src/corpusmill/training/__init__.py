"""The bundled training backend: a Qwen2-architecture model trained straight from corpusmill's Megatron shards.

It exists so a mixture can be checked end to end (does loss go down on it?) without installing Megatron-LM.
`load_config` builds a `TrainConfig` from a preset name or YAML file, and `train` runs (or resumes) a job.
torch, transformers and matplotlib come from the `train` extra; import this package only where they exist.
"""

from corpusmill.training.config import PRESETS, TrainConfig, load_config
from corpusmill.training.trainer import TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "TrainResult", "load_config", "train"]
