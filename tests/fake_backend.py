"""A second implementation of the Backend protocol, for tests: a tiny deterministic
"model" given by a table, with no attention influence and no logit lens.

It is not a stand-in for a model server: its numbers are computed (softmax, rank,
entropy) from a fixed logits rule, so tests can recompute them independently. It exists to
prove the UI and the lane depend on the interface alone.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Sequence

import numpy as np

from explorer.backend import Cancelled, Capabilities, Candidate, ModelInfo, TokenRecord
from explorer.backend.defaults import Defaults
from explorer.sampling.settings import SamplingSettings

WORDS = ["<s>", "a", "b", "c", " the", " cat", " sat", "\n", "é", " dog", " on", " mat"]
BOS = 0


def logits_after(ids: Sequence[int]) -> np.ndarray:
    """The fixed rule: logits for the token after `ids` (depends on the last id and length)."""
    last, n = ids[-1], len(ids)
    return np.array([((last * 7 + v * 5 + n * 3) % 11) / 2.0 for v in range(len(WORDS))])


class TableBackend(Defaults):
    def __init__(self, top_k: int = 6, *, kind: str = "fake") -> None:
        self.top_k = top_k
        self._kind = kind
        self._prompts: dict[Hashable, tuple[tuple[int, ...], tuple[TokenRecord, ...]]] = {}
        self._lock = threading.Lock()
        self.sync_calls = 0

    # -- model facts ---------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return ModelInfo(name="table", device="cpu", dtype="float32", n_layers=2,
                         vocab_size=len(WORDS), max_context=64, architecture="Table")

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(influence=False, lens=False, kind=self._kind)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset({BOS})

    # -- text ------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids, rest = [BOS], text
        while rest:
            best = max((i for i in range(1, len(WORDS)) if rest.startswith(WORDS[i])),
                       key=lambda i: len(WORDS[i]), default=None)
            if best is None:
                rest = rest[1:]  # unknown characters are dropped
                continue
            ids.append(best)
            rest = rest[len(WORDS[best]):]
        return ids

    def encode_plain(self, text: str) -> list[int]:
        return self.encode(text)[1:]  # no BOS

    def sampling_defaults(self) -> SamplingSettings:
        return SamplingSettings()

    @property
    def eos_ids(self) -> frozenset[int]:
        return frozenset()  # the table never ends a generation

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(WORDS[i] for i in ids)

    def token_text(self, token_id: int) -> str:
        return WORDS[token_id].replace(" ", "␣").replace("\n", "↵")

    def token_bytes(self, token_id: int) -> bytes | None:
        return None if token_id == BOS else WORDS[token_id].encode("utf-8")

    # -- prompts ----------------------------------------------------------------------------
    def _record(self, ids: tuple[int, ...], i: int) -> TokenRecord:
        def stats(prefix):
            z = logits_after(prefix)
            lp = z - (z.max() + math.log(np.exp(z - z.max()).sum()))
            return lp, float(-(np.exp(lp) * lp).sum())

        nxt, h = stats(ids[: i + 1])
        order = sorted(range(len(WORDS)), key=lambda v: (-nxt[v], v))[: self.top_k]
        top = tuple(Candidate(v, self.token_text(v), float(math.exp(nxt[v])), float(nxt[v]))
                    for v in order)
        logprob = rank = entropy = None
        if i > 0:
            prev, entropy = stats(ids[:i])
            logprob = float(prev[ids[i]])
            rank = 1 + int((prev > prev[ids[i]]).sum())
        norm = math.log(len(WORDS))
        return TokenRecord(ids[i], self.token_text(ids[i]), logprob, rank, entropy,
                           None if entropy is None else entropy / norm, h, h / norm, top)

    def sync(self, key, ids, *, progress=None, cancelled=None):
        ids = tuple(int(i) for i in ids)
        with self._lock:
            self.sync_calls += 1
            if len(ids) > self.info.max_context:
                from explorer.backend import PromptTooLongError

                raise PromptTooLongError("The prompt is longer than the table's context of 64.")
            records = []
            for i in range(len(ids)):
                if cancelled is not None and cancelled():
                    raise Cancelled("cancelled")
                records.append(self._record(ids, i))
                if progress is not None:
                    progress(i + 1, len(ids))
            self._prompts[key] = (ids, tuple(records))
            return tuple(records)

    def records(self, key):
        return self._prompts[key][1]

    def forget(self, key) -> None:
        self._prompts.pop(key, None)

    def close(self) -> None:
        self._prompts.clear()
