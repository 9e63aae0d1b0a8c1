"""One way to write a file so a reader sees the old file or the whole new one, never a part.

Every file we write for the user (saved prompts, JSONL exports, token trees, the recent
models list) goes through `write_text_atomic`: a temporary file in the same folder,
flushed to disk, then renamed over the target. A failure leaves no temporary file behind
and raises the OSError for the caller to turn into its own one-sentence error.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_text_atomic(path: Path, text: str, *, newline: str = "") -> None:
    """Write `text` to `path` atomically (mode 0644). Raises OSError; nothing half-written stays."""
    path = Path(path)
    tmp: Path | None = None
    try:
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", newline=newline, dir=path.parent,
                                         prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False) as handle:
            tmp = Path(handle.name)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(0o644)  # NamedTemporaryFile makes it private; a saved file is not
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
