"""The models a user can switch to: the built-in ones, folders used recently, and the
models in the local Hugging Face cache (with their size on disk). Importable without
torch; nothing here loads a model.

The recent list is a small JSON file in the cache folder (explorer.config.cache_root),
written atomically; a damaged file reads as empty rather than stopping the switcher.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from explorer.atomic import write_text_atomic
from explorer.config import DEFAULT_NAME, TINY_NAMES, cache_root

RECENT_FILE = "recent-models.json"
RECENT_LIMIT = 10

BUILTIN_TITLES = {
    DEFAULT_NAME: "SmolLM2-135M-Instruct (Q4_1 dequantised; the default)",
    TINY_NAMES[0]: "Token Explorer's tiny trained Llama (6.8M parameters)",
}


@dataclass(frozen=True)
class ModelChoice:
    name: str  # what --model and [model] name take
    title: str
    source: str  # "built-in", "recent" or "hub cache"
    size_bytes: int | None = None

    @property
    def label(self) -> str:
        size = "" if self.size_bytes is None else f" · {human_size(self.size_bytes)}"
        return f"{self.name} — {self.title} ({self.source}{size})"


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def builtin_choices() -> list[ModelChoice]:
    return [ModelChoice(name, title, "built-in") for name, title in BUILTIN_TITLES.items()]


def _recent_path() -> Path:
    return cache_root() / RECENT_FILE


def recent_names() -> list[str]:
    try:
        names = json.loads(_recent_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)][:RECENT_LIMIT] if isinstance(names, list) else []


def remember(name: str) -> None:
    """Put a local folder first in the recent list (hub ids show up from the hub cache).
    Best effort: a cache folder that cannot be written never stops a model switch."""
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return
    entry = str(folder.resolve())
    names = [entry] + [n for n in recent_names() if n != entry]
    path = _recent_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(names[:RECENT_LIMIT], indent=1))
    except OSError:
        pass


def recent_choices() -> list[ModelChoice]:
    return [ModelChoice(n, Path(n).name or n, "recent") for n in recent_names() if Path(n).is_dir()]


def hub_cache_choices() -> list[ModelChoice]:
    """Model repositories in the local Hugging Face cache that hold a config.json, largest
    first; none when there is no cache. $HF_HUB_CACHE is read now (huggingface_hub reads
    it once, at import)."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir(os.environ.get("HF_HUB_CACHE") or None)
    except Exception:  # no cache folder yet, or one scan_cache_dir cannot read
        return []
    out = []
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        if not any(f.file_name == "config.json" for rev in repo.revisions for f in rev.files):
            continue
        out.append(ModelChoice(repo.repo_id, "Hugging Face cache", "hub cache", repo.size_on_disk))
    return sorted(out, key=lambda c: (-(c.size_bytes or 0), c.name))


def model_choices() -> list[ModelChoice]:
    """Built-ins, then recent folders, then the hub cache; each name once."""
    seen, out = set(), []
    for choice in builtin_choices() + recent_choices() + hub_cache_choices():
        if choice.name not in seen:
            seen.add(choice.name)
            out.append(choice)
    return out
