"""A damaged weights file is called damaged: a local --model folder whose safetensors was
cut short, and the built-in model's cache damaged in a folder that cannot be written (so it
cannot be rebuilt). Both used to read as something else ("does not hold a loadable model",
"is not in the local Hugging Face cache")."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

import pytest

from explorer.config import EMBEDDED_MODEL_DIR, ModelSettings
from explorer.engine import Engine, ModelLoadError
from explorer.engine import builtin_models


def one_sentence(text: str) -> bool:
    return text.endswith(".") and ". " not in text.rstrip(".") and "\n" not in text


def load_error(name: str) -> str:
    with pytest.raises(ModelLoadError) as err:
        Engine.load(ModelSettings(name=name, device="cpu"))
    return str(err.value)


@pytest.mark.parametrize("keep", [1 / 3, 4])
def test_a_local_folder_with_cut_weights_says_the_file_is_damaged(tmp_path, monkeypatch, keep):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tmp_path / "model"
    shutil.copytree(EMBEDDED_MODEL_DIR, folder)
    weights = folder / "model.safetensors"
    whole = weights.stat().st_size
    size = int(whole * keep) if keep < 1 else keep
    os.truncate(weights, size)
    message = load_error(str(folder))
    assert f"The model folder '{folder}' holds a damaged weights file (model.safetensors is {size:,} bytes" \
        in message, message
    if keep < 1:  # the header is whole: it names the size the file should have
        assert f"its header describes {whole:,} (cut short)" in message, message
    assert "Hugging Face" not in message and "does not hold" not in message
    assert one_sentence(message), message


@contextlib.contextmanager
def unwritable(folder):
    """The folder made read-only for real: chmod for a user, the immutable attribute for
    root (whom chmod does not stop); skipped where neither stops a write."""
    root = os.geteuid() == 0
    if root:
        made = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    else:
        folder.chmod(0o555)
        made = True
    try:
        probe = folder / ".probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            made = False
        if not made:
            pytest.skip("cannot make a folder read-only here")
        yield
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)


@pytest.fixture(scope="module")
def built_cache():
    """The real smollm2 cache folder (built on first use, as the app does)."""
    return builtin_models.local_folder("smollm2")


def test_a_damaged_cache_that_cannot_be_rebuilt_says_so(built_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "cache"
    monkeypatch.setenv("TOKEN_EXPLORER_CACHE", str(root))
    copy = root / built_cache.name
    shutil.copytree(built_cache, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    whole = (built_cache / "model.safetensors").stat().st_size
    with open(built_cache / "model.safetensors", "rb") as src:  # a partial write
        (copy / "model.safetensors").write_bytes(src.read(1000))
    before = sorted(p.name for p in copy.iterdir())
    with unwritable(root):
        message = load_error("smollm2")
    assert message.startswith(
        f"The cached copy of smollm2 at {copy} is damaged (model.safetensors is 1,000 bytes, "
        f"not {whole:,}) and could not be rebuilt there ("), message
    assert "TOKEN_EXPLORER_CACHE" in message and "delete that folder" in message
    assert "Hugging Face" not in message and one_sentence(message), message
    assert sorted(p.name for p in copy.iterdir()) == before  # nothing was touched
    assert [p.name for p in root.iterdir()] == [copy.name]


def test_a_cache_that_cannot_be_built_says_so(built_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    root = tmp_path / "cache"
    root.mkdir()
    monkeypatch.setenv("TOKEN_EXPLORER_CACHE", str(root))
    with unwritable(root):
        message = load_error("smollm2")
    assert message.startswith(f"The cache for smollm2 could not be built at {root / built_cache.name} ("), message
    assert "Hugging Face" not in message and one_sentence(message), message
