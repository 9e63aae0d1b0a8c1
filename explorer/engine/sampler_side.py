"""The engine's side of the sampler (Feature.SAMPLING, TRACKED and CHAT of
explorer.backend.Backend): kept logits rows, tracked tokens that follow the prompt step by
step, plain and chat tokenisation, the model's sampling defaults and end-of-sequence ids.

Raw rows, not log-probs: every knob but one is shift-invariant, but the repetition penalty
divides positive logits and multiplies negative ones, so p_final needs the model's own
logits. The engine hands each forward's logits to `keep_rows`, which copies the rows of the
last few positions (the ones an append, a pop or a knob change can need); everything else
is dropped as before.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence

import numpy as np
import torch

from explorer.backend.sampling import ChatTemplateError
from explorer.backend.types import TrackedSeries
from explorer.sampling.settings import SamplingSettings, model_defaults
from explorer.lru import LRU
from explorer.prefix import common_prefix

from . import metrics
from .advance import probe_last
from .kv import TAIL_ROWS
from .tracked import track

# Raw rows kept, keyed by the ids they follow: the last TAIL_ROWS positions of a handful
# of prompts (8 prompts' worth; 64 x 152k fp32 rows is 39 MB).
ROWS_KEPT = 64
# Tracked series kept, one per set of tracked tokens.
TRACKED_KEPT = 4


class SamplerSide:
    """Owned by one Engine; every method runs under the engine's lock."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self._rows = LRU(ROWS_KEPT)  # ids tuple -> fp32 CPU tensor [V]
        self._tracked = LRU(TRACKED_KEPT)  # token-id tuple -> (ids, TrackedSeries)

    def clear(self) -> None:
        self._rows.clear()
        self._tracked.clear()

    # -- raw rows ---------------------------------------------------------------------
    def keep_rows(self, ids: tuple[int, ...], pos: int, logits: torch.Tensor) -> None:
        """logits [q, V]: the model's output for positions pos..pos+q-1 of ids. Rows of the
        last TAIL_ROWS positions of ids are copied (fp32, CPU), as generate copies them."""
        first = max(pos, len(ids) - TAIL_ROWS)
        for p in range(first, pos + logits.shape[0]):
            self._rows.put(ids[: p + 1], logits[p - pos].detach().to("cpu", torch.float32, copy=True))

    def row(self, ids: tuple[int, ...]) -> torch.Tensor | None:
        """The kept raw row after `ids`, if any (positions.py looks here first)."""
        return self._rows.get(ids)

    def put_row(self, ids: tuple[int, ...], row: torch.Tensor) -> None:
        self._rows.put(ids, row)

    def next_logits(self, key: Hashable) -> np.ndarray:
        engine = self._engine
        with engine._lock:
            ids = engine._store[key].ids
            row = self.row(ids)
            if row is None:  # e.g. popped further back than the kept rows: one decode step
                probe_last(engine, key)
                row = self.row(ids)
            return row.numpy().copy()

    # -- tracked tokens ---------------------------------------------------------------
    def tracked(self, key: Hashable, token_ids: Sequence[int], *,
                progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> TrackedSeries:
        engine = self._engine
        tokens = tuple(int(t) for t in token_ids)
        with engine._lock:
            ids = engine._store[key].ids
            engine._check_vocab(tokens)
            series = self._follow(ids, tokens) if tokens else None
            if series is None:
                engine._runner.use_fast()
                series = track(engine.model, ids, tokens, chunk=engine.prefill_chunk,
                               parts=engine.parts if engine.layer_prob else None,
                               progress=progress, cancelled=cancelled)
            elif engine.layer_prob and engine.parts is not None:
                series = TrackedSeries(tokens, series.logprobs, series.ranks,
                                       engine.layer_probs(key, tokens))
            self._tracked.put(tokens, (ids, series))
            return series

    def _follow(self, ids: tuple[int, ...], tokens: tuple[int, ...]) -> TrackedSeries | None:
        """The last series for these tokens brought to `ids` without a pass: cut back to
        the common prefix, then one kept raw row per new position. None when a row is
        missing (a new prompt, forced text longer than the kept rows)."""
        known = self._tracked.get(tokens)
        if known is None:
            return None
        old_ids, old = known
        keep = common_prefix(old_ids, ids)
        rows = [self.row(ids[: i + 1]) for i in range(keep, len(ids))]
        if keep == 0 or any(r is None for r in rows):
            return None
        logprobs, ranks = old.logprobs[:keep], old.ranks[:keep]
        if rows:
            with torch.inference_mode():
                lp = metrics.log_probs(torch.stack(rows))
                target = torch.tensor(tokens, dtype=torch.long)
                new_lp = lp[:, target].numpy()
                new_ranks = np.stack([metrics.rank_of(lp, target[j].expand(lp.shape[0])).numpy()
                                      for j in range(len(tokens))], axis=1)
            logprobs = np.concatenate([logprobs, new_lp.astype(np.float32)])
            ranks = np.concatenate([ranks, new_ranks.astype(np.int64)])
        return TrackedSeries(tokens, logprobs, ranks, None)


# -- text and model facts (no state) -----------------------------------------------------
def encode_plain(tokenizer, text: str) -> list[int]:
    return [int(i) for i in tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]]


def chat_ids(tokenizer, name: str, messages: Sequence[Mapping[str, str]]) -> list[int]:
    if not getattr(tokenizer, "chat_template", None):
        raise ChatTemplateError(f"{name} has no chat template, so the prompt cannot be wrapped as a chat.")
    try:
        out = tokenizer.apply_chat_template([dict(m) for m in messages], add_generation_prompt=True,
                                            tokenize=True)
    except Exception as exc:  # noqa: BLE001 - a template is user code (jinja); say what it said
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        raise ChatTemplateError(f"The chat template of {name} failed to render the messages: {reason}.") from None
    ids = out["input_ids"] if isinstance(out, Mapping) or hasattr(out, "keys") else out
    ids = [int(i) for i in ids]
    if not ids:
        raise ChatTemplateError(f"The chat template of {name} gave no tokens.")
    return ids


def sampling_defaults(model) -> SamplingSettings:
    return model_defaults(model)


def eos_ids(model, tokenizer) -> frozenset[int]:
    """generation_config's eos_token_id (an id or a list), as generate stops on; the
    tokenizer's EOS when the model gives none."""
    config = getattr(model, "generation_config", None)
    eos = getattr(config, "eos_token_id", None) if config is not None else None
    if eos is None:
        eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        return frozenset()
    return frozenset(int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos]))
