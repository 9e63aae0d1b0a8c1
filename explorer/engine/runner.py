"""Forward passes through the model's KV cache: one step at a time, or a chunked prefill.

Prefill runs on the model's own (fast) attention; a step whose attention weights we read
runs the same fast attention wrapped to keep the last query's row (attention_rows.py), or
eager where the model has no shared fast path. Results come back as a small StepResult,
never as attributes bolted onto transformers' output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from . import attention_rows
from .kv import PromptKV


@dataclass
class StepResult:
    logits: torch.Tensor  # [q, V], model dtype
    hidden_states: tuple[torch.Tensor, ...] | None  # HF's, [1, q, H] each, when asked for
    attention_rows: torch.Tensor | None  # [L, H, keys] of the last query, when asked for


class Runner:
    def __init__(self, model, device: torch.device, prefill_chunk: int):
        self.model = model
        self.device = device
        self.prefill_chunk = max(1, int(prefill_chunk))
        self.fast_impl = getattr(model.config, "_attn_implementation", None) or "eager"
        # The same fast attention, wrapped to keep the last query's row (None: use eager).
        self.rows_impl = attention_rows.install(self.fast_impl)

    def use_impl(self, impl: str) -> None:
        # Read the model's own setting each time: a caller may have switched it.
        if getattr(self.model.config, "_attn_implementation", None) != impl:
            self.model.set_attn_implementation(impl)

    def use_fast(self) -> None:
        self.use_impl(self.fast_impl)

    def forward(self, tokens: Sequence[int], kv: PromptKV, *, attentions: bool = False,
                hidden: bool = False) -> StepResult:
        """Run `tokens` after kv's contents (the caller updates kv.ids)."""
        input_ids = torch.tensor([list(tokens)], dtype=torch.long, device=self.device)
        kwargs = dict(input_ids=input_ids, past_key_values=kv.cache, use_cache=True,
                      output_hidden_states=hidden, return_dict=True)
        rows = None
        if not attentions:
            self.use_impl(self.fast_impl)
            out = self.model(**kwargs)
        elif self.rows_impl is not None:
            self.use_impl(self.rows_impl)
            with attention_rows.capturing() as captured:
                out = self.model(**kwargs)
            with self.few_threads():
                rows = attention_rows.last_rows(captured) if captured else None
        else:
            self.use_impl("eager")
            out = self.model(**kwargs, output_attentions=True)
            atts = out.attentions
            if atts and all(a is not None for a in atts):
                rows = torch.stack([a[0, :, -1, :] for a in atts]).float()
        return StepResult(out.logits[0], out.hidden_states if hidden else None, rows)

    def prefill(self, ids: Sequence[int], kv: PromptKV, stop: int,
                on_chunk: Callable[[int, StepResult], None], *,
                hidden: Callable[[int, int], bool] | None = None,
                cancelled: Callable[[], bool] | None = None,
                on_cancel: Callable[[], BaseException] | None = None) -> None:
        """Feed ids[len(kv.ids):stop] in chunks of prefill_chunk positions, so no [N, V]
        logits ever exist at once. After each chunk: on_chunk(first position, result),
        then kv.ids grows. hidden(pos, end) says whether a chunk needs hidden states;
        cancelled() is polled before each chunk and raises on_cancel()."""
        pos = len(kv.ids)
        while pos < stop:
            if cancelled is not None and cancelled():
                raise on_cancel() if on_cancel is not None else RuntimeError("cancelled")
            end = min(pos + self.prefill_chunk, stop)
            out = self.forward(ids[pos:end], kv, hidden=hidden is not None and hidden(pos, end))
            on_chunk(pos, out)
            kv.ids = tuple(ids[:end])
            del out
            pos = end

    @contextmanager
    def few_threads(self):
        """Run small post-step reductions on one CPU thread: each op on a shared thread
        pool costs a wake-up (milliseconds on a busy machine), far more than the work."""
        if self.device.type != "cpu":
            yield
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(before)
