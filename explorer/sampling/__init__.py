"""The sampler: settings (torch-free), the pipeline on one logits row, seeded draws, and
argparse flags. Importing this package does not import torch."""

from .draw import draw, fresh_seed
from .flags import add_sampling_flags, sampling_overrides, sampling_preset
from .pipeline import (
                       Distributions,
                       distributions,
                       final_scores,
                       presence_frequency_penalty,
)
from .settings import (
                       KNOBS,
                       NEUTRAL,
                       PRESETS,
                       SamplingConfig,
                       SamplingError,
                       SamplingSettings,
                       apply_preset,
                       check_overrides,
                       from_generation_config,
                       layered,
                       model_defaults,
)

__all__ = [
    "KNOBS", "NEUTRAL", "PRESETS", "Distributions", "SamplingConfig", "SamplingError",
    "SamplingSettings",
    "add_sampling_flags", "apply_preset", "check_overrides", "distributions", "draw",
    "final_scores", "fresh_seed", "from_generation_config", "layered", "model_defaults",
    "presence_frequency_penalty", "sampling_overrides", "sampling_preset",
]
