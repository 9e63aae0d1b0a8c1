"""Is a model folder's safetensors file whole? Read from its header, without loading it.

A safetensors file is an 8-byte little-endian header length, that many bytes of JSON
naming each tensor's [start, end) byte range, then the data. A copy cut short (a full disk,
an interrupted download or copy) is shorter than its header says; from_pretrained then
raises a bare SafetensorError, which read as "this folder holds no model". This check
names the file and what is wrong with it, so the sentence can say the file is damaged.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

_MAX_HEADER = 100 * 2**20  # safetensors itself refuses headers over 100 MB


def safetensors_damage(path: Path) -> str | None:
    """Why the file is not a whole safetensors file ("model.safetensors is 4 bytes, too
    short to be …"), or None when its size matches its header (or it cannot be read)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path.name} is {size:,} bytes, too short to be a safetensors file"
            (length,) = struct.unpack("<Q", head)
            if length > _MAX_HEADER or 8 + length > size:
                return f"{path.name} is {size:,} bytes and its header is cut off"
            header = json.loads(f.read(length))
    except OSError:
        return None  # unreadable is not "damaged": from_pretrained's own error says more
    except ValueError:
        return f"{path.name} has a header that is not valid JSON"
    tensors = [entry for key, entry in header.items() if key != "__metadata__"] \
        if isinstance(header, dict) else None
    ends = [entry["data_offsets"][1] for entry in tensors or () if isinstance(entry, dict)
            and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
            and isinstance(entry["data_offsets"][1], int)]
    if tensors is None or len(ends) != len(tensors):
        return f"{path.name} has a header that does not describe its tensors"
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        return f"{path.name} is {size:,} bytes but its header describes {expected:,} (cut short)"
    return None


def folder_damage(folder: Path) -> str | None:
    """The first damaged safetensors file in a model folder, as safetensors_damage says it."""
    for path in sorted(Path(folder).glob("*.safetensors")):
        if (why := safetensors_damage(path)) is not None:
            return why
    return None
