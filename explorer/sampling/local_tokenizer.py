"""A server model's tokenizer, loaded on this machine without the network, for what must
run locally over a server's token ids (a constraint's `valid` flags in `trace --server`).
transformers is imported inside the function: the core that calls this stays free of it
until a constrained server trace asks."""

from __future__ import annotations

from collections.abc import Callable, Sequence

PROBE = "The quick brown fox, 12 + 30 = 42. Ünïcödé ✓"


def local_tokenizer(name: str, encode: Callable[[str], Sequence[int]]):
    """The tokenizer of model `name` (a local folder or the Hugging Face cache, offline) if
    its token ids for PROBE are those `encode` (the server's) gives; else None."""
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        mine = tokenizer(PROBE, add_special_tokens=False)["input_ids"]
        theirs = list(encode(PROBE))
    except Exception:  # not on this machine, or a server that cannot tokenize: none
        return None
    return tokenizer if theirs[len(theirs) - len(mine):] == mine and mine else None
