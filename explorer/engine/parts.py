"""Where a causal LM keeps the pieces the logit lens needs.

Resolved from a small table of known attribute paths (one entry per family), with a
user override from config.toml `[model.parts]`. An isinstance chain breaks on every new
architecture; a path table plus an override does not. When nothing matches we refuse,
because a lens without the final norm silently shows wrong numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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

PART_KEYS = ("layers", "final_norm", "lm_head", "final_logit_softcap")


@dataclass(frozen=True)
class ModelParts:
    layers: nn.ModuleList
    final_norm: nn.Module
    lm_head: nn.Linear
    softcap: float | None  # None when the model does not cap its logits

    @property
    def n_layers(self) -> int:
        return len(self.layers)


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


def resolve_parts(model: nn.Module, override: Mapping[str, str] | None = None) -> ModelParts:
    """Find layers, final norm, lm_head and soft-cap; raise ModelLoadError if we cannot."""
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
    for paths in candidates:
        paths.update({k: v for k, v in override.items() if k != "final_logit_softcap"})
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
    return ModelParts(layers=layers, final_norm=norm, lm_head=head, softcap=softcap)
