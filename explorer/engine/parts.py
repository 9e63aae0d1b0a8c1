"""Where a causal LM keeps the pieces the logit lens needs.

Resolved from a small table of known attribute paths (one entry per family), with a
user override from config.toml `[model.parts]`. An isinstance chain breaks on every new
architecture; a path table plus an override does not. When nothing matches we refuse,
because a lens without the final norm silently shows wrong numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ModelLoadError

# (layers, final_norm, lm_head); tried in order, first complete match wins.
KNOWN_PATHS: tuple[tuple[str, str, str], ...] = (
    # Llama, Mistral, Qwen2, Qwen3, Gemma, Gemma2, Phi-3, most recent decoders
    ("model.layers", "model.norm", "lm_head"),
    # Phi (phi-1, phi-1.5, phi-2)
    ("model.layers", "model.final_layernorm", "lm_head"),
    # GPT-2, GPT-J, GPT-Neo, Falcon, Bloom
    ("transformer.h", "transformer.ln_f", "lm_head"),
    # GPT-NeoX, Pythia (the head was called embed_out before transformers 5)
    ("gpt_neox.layers", "gpt_neox.final_layer_norm", "lm_head"),
    ("gpt_neox.layers", "gpt_neox.final_layer_norm", "embed_out"),
    # OPT
    ("model.decoder.layers", "model.decoder.final_layer_norm", "lm_head"),
)

# Config attributes that hold a Gemma-style final logit soft-cap: tanh(z / c) * c.
SOFTCAP_ATTRS = ("final_logit_softcapping",)

# Families whose forward scales lm_head's output before returning it, by the text config's
# model_type: (config attribute, "mul" or "div"), exactly as their modeling file does. Keyed
# by family, not by attribute name: the same names mean different things elsewhere
# (HyperCLOVA X multiplies by `logits_scaling`, Granite divides by it; MPT's `logit_scale`
# is unused).
LOGIT_SCALES: dict[str, tuple[str, str]] = {
    **dict.fromkeys(("cohere", "cohere2", "cohere2_moe"), ("logit_scale", "mul")),
    **dict.fromkeys(("granite", "granite_swa", "granitemoe", "granitemoe_swa",
                     "granitemoehybrid", "granitemoeshared"), ("logits_scaling", "div")),
    "hyperclovax": ("logits_scaling", "mul"),
    # MiniCPM3 divides the hidden state just before its bias-free lm_head: the same thing.
    "minicpm3": ("logits_scaling", "div"),
}

PART_KEYS = ("layers", "final_norm", "lm_head", "final_logit_softcap", "logit_scale",
             "logit_divisor")


@dataclass(frozen=True)
class LogitScale:
    """A constant the model's forward applies to lm_head's output: z * value or z / value."""

    value: float
    divide: bool

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits / self.value if self.divide else logits * self.value


@dataclass(frozen=True)
class ModelParts:
    layers: nn.ModuleList
    final_norm: nn.Module
    lm_head: nn.Linear
    softcap: float | None  # None when the model does not cap its logits
    scale: LogitScale | None = None  # None when the forward does not scale its logits

    @property
    def n_layers(self) -> int:
        return len(self.layers)

    def finish(self, head_out: torch.Tensor) -> torch.Tensor:
        """lm_head's output -> the model's logits in fp32: its scale, then its soft-cap,
        in the order its forward applies them."""
        logits = head_out.float()
        if self.scale is not None:
            logits = self.scale.apply(logits)
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def lookup(root: object, path: str) -> object | None:
    """Follow a dotted attribute path; None where any step is missing."""
    obj = root
    for name in path.split("."):
        obj = getattr(obj, name, None)
        if obj is None:
            return None
    return obj


def _softcap_from_config(config: object) -> float | None:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in SOFTCAP_ATTRS:
        value = getattr(text_config, attr, None)
        if value:
            return float(value)
    return None


def _scale_from_config(config: object) -> LogitScale | None:
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    entry = LOGIT_SCALES.get(getattr(text_config, "model_type", None))
    value = getattr(text_config, entry[0], None) if entry else None
    if value is None or float(value) == 1.0:
        return None
    return LogitScale(float(value), divide=entry[1] == "div")


def _scale_from_override(model: nn.Module, override: Mapping[str, str]) -> LogitScale | None:
    for key, divide in (("logit_scale", False), ("logit_divisor", True)):
        if key in override:
            value = lookup(model, override[key])
            return LogitScale(float(value), divide) if value else None
    return _scale_from_config(model.config)


def resolve_parts(model: nn.Module, override: Mapping[str, str] | None = None) -> ModelParts:
    """Find layers, final norm, lm_head, soft-cap and logit scale; raise ModelLoadError if we cannot."""
    override = dict(override or {})
    name = type(model).__name__
    unknown = sorted(set(override) - set(PART_KEYS))
    if unknown:
        raise ModelLoadError(
            f"config.toml [model.parts] has an unknown key '{unknown[0]}'; "
            f"known keys are {', '.join(PART_KEYS)}."
        )
    for key, path in override.items():
        if lookup(model, path) is None:
            raise ModelLoadError(
                f"config.toml [model.parts] {key} = '{path}' does not exist on {name}."
            )

    candidates = [
        dict(zip(("layers", "final_norm", "lm_head"), paths)) for paths in KNOWN_PATHS
    ]
    found = None
    constants = ("final_logit_softcap", "logit_scale", "logit_divisor")
    for paths in candidates:
        paths.update({k: v for k, v in override.items() if k not in constants})
        objs = {k: lookup(model, p) for k, p in paths.items()}
        if all(o is not None for o in objs.values()):
            found = objs
            break
    if found is None:
        raise ModelLoadError(
            f"Token Explorer does not know where {name} keeps its layers, final norm and "
            "lm_head; set them under [model.parts] in config.toml (see the example there)."
        )
    layers, norm, head = found["layers"], found["final_norm"], found["lm_head"]
    if not isinstance(layers, (nn.ModuleList, list, tuple)) or len(layers) == 0:
        raise ModelLoadError(f"The decoder layers found on {name} are not a list of layers.")
    if not isinstance(norm, nn.Module) or not isinstance(getattr(head, "weight", None), nn.Parameter):
        raise ModelLoadError(f"The final norm or lm_head found on {name} is not a module with weights.")

    if "final_logit_softcap" in override:
        value = lookup(model, override["final_logit_softcap"])
        softcap = float(value) if value else None
    else:
        softcap = _softcap_from_config(model.config)
    return ModelParts(layers=layers, final_norm=norm, lm_head=head, softcap=softcap,
                      scale=_scale_from_override(model, override))
