"""Turning a hub id or folder into (model, tokenizer) on the right device, or one sentence
explaining why not."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from .errors import ModelLoadError

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


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


def _explain(name: str, exc: BaseException) -> str:
    """One sentence for the screen, from whatever from_pretrained raised."""
    chain = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 10:
        chain.append(e)
        e = e.__cause__ or e.__context__
    kinds = {type(c).__name__ for c in chain}
    text = " ".join(str(c) for c in chain)
    if Path(name).expanduser().is_dir():
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
                "downloaded without a network; connect once to download it, or set "
                "model.name to a local folder.")
    return f"The model '{name}' could not be loaded: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ") + "."


def load_pretrained(name: str, path_or_id: str, dtype: str, device: str,
                    progress: Callable[[str], None] | None = None):
    """Load tokenizer and causal LM; every failure becomes ModelLoadError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say = progress or (lambda msg: None)
    if dtype not in DTYPES:
        raise ModelLoadError(f"Unknown dtype '{dtype}'; use float32 or bfloat16.")
    try:
        say(f"Loading the tokenizer of {name}…")
        tokenizer = AutoTokenizer.from_pretrained(path_or_id)
        say(f"Loading {name} ({dtype}) onto {device}…")
        model = AutoModelForCausalLM.from_pretrained(path_or_id, dtype=DTYPES[dtype])
    except ModelLoadError:
        raise
    except Exception as exc:  # from_pretrained raises a zoo of types; all mean "cannot load"
        raise ModelLoadError(_explain(name, exc)) from exc
    return model.to(device).eval(), tokenizer


def max_context(config) -> int | None:
    """Positions the model supports, from the usual config names; None when unknown."""
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    for attr in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None

