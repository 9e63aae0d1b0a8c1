"""Turning a hub id or folder into (model, tokenizer) on the right device, or one sentence
explaining why not."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from explorer.config import DTYPE_NAMES

from . import builtin_models, placement
from .errors import ModelLoadError
from .weights_check import folder_damage



def pick_device(requested: str = "auto") -> str:
    """CUDA > MPS > CPU for "auto"; a forced device that is missing is a clear error."""
    has = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if requested == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if has[d])
    if requested not in has:
        raise ModelLoadError(f"Unknown device '{requested}'; use auto, cpu, cuda or mps.")
    if not has[requested]:
        raise ModelLoadError(f"Device '{requested}' is not available on this machine; use device = \"auto\".")
    return requested


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def local_folder_advice(named_by: str) -> str:
    """How to point at a local folder instead, in the words of where the user named the
    model (a user who typed --model is not told about config.toml)."""
    if named_by == "--model":
        return "or give --model a local folder"
    return f"or set {named_by} to a local folder" if named_by else "or choose a local folder"


def _explain(name: str, exc: BaseException, named_by: str = "model.name in config.toml") -> str:
    """One sentence for the screen, from whatever from_pretrained raised."""
    chain = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    kinds = {type(c).__name__ for c in chain}
    text = " ".join(str(c) for c in chain)
    if Path(name).expanduser().is_dir():
        if (damage := folder_damage(Path(name).expanduser())) is not None:
            return (f"The model folder '{name}' holds a damaged weights file ({damage}); "
                    "copy or download the model again.")
        return (f"The folder '{name}' does not hold a loadable causal language model "
                f"({type(exc).__name__}); it needs config.json, weights and tokenizer files.")
    if name.startswith((".", "/", "~")):
        return f"The model folder '{name}' does not exist."
    no_network = (
        _offline()
        or kinds & {"OfflineModeIsEnabled", "LocalEntryNotFoundError", "ConnectionError",
                    "ConnectTimeout", "ConnectError"}
        or "offline" in text.lower()
        or "cannot find the requested files in the local cache" in text.lower()
    )
    if kinds & {"RepositoryNotFoundError", "GatedRepoError"} and not _offline():
        return (f"The model '{name}' was not found on the Hugging Face Hub (or is gated); "
                "check the id, or log in with `hf auth login` for a gated model.")
    if no_network:
        return (f"The model '{name}' is not in the local Hugging Face cache and cannot be "
                f"downloaded without a network; connect once to download it, {local_folder_advice(named_by)}.")
    return f"The model '{name}' could not be loaded: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ") + "."


def load_pretrained(name: str, path_or_id: str, dtype: str, device: str,
                    progress: Callable[[str], None] | None = None, *,
                    device_map: str | dict = "", max_memory: dict | None = None,
                    offload_folder: str = "", named_by: str = "model.name in config.toml"):
    """Load tokenizer and causal LM straight onto `device`, or spread by accelerate when
    `device_map` is given; every failure becomes ModelLoadError (out of memory: one
    sentence with what to try)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say = progress or (lambda msg: None)
    if dtype not in DTYPE_NAMES:
        raise ModelLoadError(f"Unknown dtype '{dtype}'; use {', '.join(DTYPE_NAMES)}.")
    placement_kwargs = {"device_map": device_map or device}
    if device_map:
        placement_kwargs["offload_folder"] = offload_folder or placement.offload_folder(name)
        if max_memory:
            placement_kwargs["max_memory"] = placement.max_memory(max_memory)
    where = f"device map {device_map!r}" if isinstance(device_map, str) and device_map else (
        "the given device map" if device_map else device)
    try:
        if builtin_models.is_builtin(name):
            path_or_id = str(builtin_models.local_folder(name, say, local_folder_advice(named_by)))
        say(f"Loading the tokenizer of {name}…")
        tokenizer = AutoTokenizer.from_pretrained(path_or_id)
        say(f"Loading {name} ({dtype}) onto {where}…")
        model = AutoModelForCausalLM.from_pretrained(
            path_or_id, dtype=placement.torch_dtype(dtype), **placement_kwargs)
        if builtin_models.is_builtin(name) and model.generation_config is not None:
            # A built-in's generation_config.json is the one its GGUF gives (written into
            # the cache), which transformers marks "_from_model_config"; model_defaults reads
            # that mark as "no file" and started SmolLM2 at T 1. Its settings are the
            # model's own: do_sample unset means greedy, as generate and the README say.
            model.generation_config._from_model_config = False
    except ModelLoadError:
        raise
    except Exception as exc:  # from_pretrained raises a zoo of types; all mean "cannot load"
        if placement.is_out_of_memory(exc):
            placement.release_cached_memory()
            raise ModelLoadError(placement.load_oom_sentence(name, dtype, where)) from exc
        raise ModelLoadError(_explain(name, exc, named_by)) from exc
    return model.eval(), tokenizer


def max_context(config) -> int | None:
    """Positions the model supports, from the usual config names; None when unknown."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None

