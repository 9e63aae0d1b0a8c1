"""Where a model's weights live: one device, or spread over GPUs, CPU and disk by
accelerate (`device_map`), and what to say when memory runs out.

A split model runs each module on its own device; accelerate's hooks move a module's
inputs there and (for offloaded modules) bring its weights in from CPU or disk for the
forward pass only. Code that reads tensors across modules (the lens, attention rows) must
therefore move them to one device itself, and must never read an offloaded module's
weights directly (they are on the "meta" device between passes).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

def torch_dtype(name: str):
    """explorer.config.DTYPE_NAMES -> what from_pretrained takes; "auto" = the dtype the
    checkpoint's config names (transformers reads it)."""
    return name if name == "auto" else getattr(torch, name)


def offload_folder(name: str) -> str:
    """Where disk-offloaded modules of `name` go unless [model] offload_folder says."""
    from explorer.config import cache_root

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip("/"))
    return str(cache_root() / "offload" / safe)


def as_device(value) -> torch.device:
    """accelerate names GPUs by index; everything else by name."""
    if isinstance(value, torch.device):
        return value
    if isinstance(value, int):
        return torch.device("cuda", value)
    return torch.device(str(value))


def input_device(model) -> torch.device:
    """Where input ids must go: the execution device of the input embeddings (a split
    model's first module may keep its weights on CPU or disk between passes)."""
    try:
        emb = model.get_input_embeddings()
    except (NotImplementedError, AttributeError):  # a model that does not say
        emb = None
    if emb is None:
        first = next(model.parameters()).device
        return torch.device("cpu") if first.type == "meta" else first
    hook = getattr(emb, "_hf_hook", None)
    execution = getattr(hook, "execution_device", None)
    if execution is not None:
        return as_device(execution)
    weight = emb.weight.device
    return torch.device("cpu") if weight.type == "meta" else weight


def summary(model, fallback: str) -> str:
    """What the header shows: one device type, or the split, e.g. "cuda:0+cpu+disk"."""
    device_map = getattr(model, "hf_device_map", None) or {}
    places = []
    for value in device_map.values():
        name = str(as_device(value)) if value not in ("cpu", "disk") else value
        if name not in places:
            places.append(name)
    return "+".join(places) if len(places) > 1 else fallback


def max_memory(table: Mapping[str, str]) -> dict:
    """config.toml's [model.max_memory] ("0" = "20GiB", cpu = "60GiB") as accelerate wants
    it: GPUs by integer index."""
    return {int(k) if str(k).isdigit() else k: v for k, v in table.items()}


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return "out of memory" in text or "not enough memory" in text


def load_oom_sentence(name: str, dtype: str, device: str) -> str:
    return (f"There is not enough memory to load {name} in {dtype} on {device}; try --bf16, "
            "or --device-map auto to spread it over the GPUs, the CPU and disk.")


def step_oom_sentence() -> str:
    return ("The model ran out of memory on this step, and the prompt is unchanged; try a "
            "shorter prompt, --bf16, or --device-map auto.")


def release_cached_memory() -> None:
    """After an out-of-memory error: hand the allocator's free blocks back."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
