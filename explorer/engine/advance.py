"""The engine's forward bookkeeping: run the tokens a KV cache lacks through the model
and turn the logits into records (split from engine.py: the Engine is the front, this is
the one place a sync's forward passes and reductions are put together), and the probe
that re-runs a prompt's last position for a view it did not keep."""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch

from .errors import SyncCancelled
from .kv import TAIL_ROWS, PromptKV
from .reductions import RowStats, make_records
from .types import TokenRecord


def advance(engine, kv: PromptKV, ids: tuple[int, ...], start: int,
            progress: Callable[[int, int], None] | None,
            cancelled: Callable[[], bool] | None,
            keep_done: Callable[[tuple[TokenRecord, ...]], None] | None = None,
            ) -> tuple[TokenRecord, ...]:
    """Run ids[len(kv.ids):] through the model; return records for positions >= start.
    When cancelled, keep_done gets the records of the chunks that did finish (their
    KV entries stay in kv), so the next sync resumes instead of starting over.

    kv must hold a prefix of ids with start == len(kv.ids) or start == len(ids) (probe).
    The last forward also returns the last position's attention row (influence) and,
    with layer_prob, its hidden states (lens)."""
    n = len(ids)
    # The record of position `start` needs the distribution after start-1. If the
    # cache no longer keeps that row, the raw row a look at that position kept (a branch
    # from the position cursor) gives it; else feed position start-1 again in the pass.
    kept = None
    if start == len(kv.ids) and 0 < start < n and not kv.tails:
        kept = engine._sampler.row(ids[:start])
        if kept is None:
            kv.crop_to(start - 1)
    first = len(kv.ids)
    stats: dict[int, RowStats] = {}
    if first == start > 0 and (kv.tails or kept is not None):
        with engine._runner.few_threads():
            lp = kv.tails[-1][None] if kv.tails else engine._reducer.log_probs(kept[None].to(engine.device))
            stats[start - 1] = engine._reducer.stats(lp, [ids[start]])[0]
    want_from = max(start - 1, 0)
    # Wrapped fast attention (attention_rows.py) gives the last row at no extra cost,
    # so the last forward is the last prefill chunk; eager attention would materialise
    # every weight of a chunk, so there it covers the last position alone (or two).
    if engine._runner.rows_impl is not None or not engine.influence_enabled:
        step_from = first + (n - first - 1) // engine.prefill_chunk * engine.prefill_chunk
    else:
        step_from = first if n - first <= 2 else n - 1

    def reduce(pos: int, logits: torch.Tensor) -> list[torch.Tensor]:
        engine._sampler.keep_rows(ids, pos, logits)  # raw rows of the last positions
        kept = engine._reducer.reduce_logits(logits, ids, pos, want_from, stats, TAIL_ROWS)
        kv.keep_tails(kept)
        return kept

    def chunk_done(pos: int, out) -> None:
        # One thread here too: a block's reductions are a dozen short memory-bound ops,
        # and on a busy CPU each one waiting for the pool cost more than the work
        # (measured: 10x on a 8k vocabulary, 2x on 152k, with the CPU shared).
        with engine._runner.few_threads():
            reduce(pos, out.logits)
        if progress is not None:
            progress(pos + out.logits.shape[0] - first, n - first)

    try:
        with torch.inference_mode():
            engine._runner.prefill(ids, kv, step_from, chunk_done, cancelled=cancelled,
                                 on_cancel=lambda: SyncCancelled("Loading the prompt was cancelled."))
            out = engine._runner.forward(ids[step_from:], kv, attentions=engine.influence_enabled,
                                       hidden=engine.layer_prob)
            with engine._runner.few_threads():
                rows = reduce(step_from, out.logits)
                kv.ids = ids
                engine._views.store_influence(ids, out.attention_rows)
                if engine.layer_prob:
                    engine._views.store_lens(ids, min(n - step_from, 2), out.hidden_states, rows)
            if progress is not None:
                progress(n - first, n - first)
    except SyncCancelled:
        if keep_done is not None and len(kv.ids) > start:
            keep_done(make_records(ids, start, len(kv.ids), stats, engine._text, engine._ln_vocab))
        raise
    except BaseException:
        # A forward that stopped half way leaves some layers updated: drop the cache.
        engine._store.drop_kv(kv)
        raise
    return make_records(ids, start, n, stats, engine._text, engine._ln_vocab)


def at_last(engine, key: Hashable, lookup: Callable[[tuple[int, ...]], object]):
    """lookup(prompt ids) — a view of its last position — probing that position once
    when the view is not known yet."""
    ids = engine._store[key].ids
    found = lookup(ids)
    if found is None:
        probe_last(engine, key)
        found = lookup(ids)
    return found


def probe_last(engine, key: Hashable) -> None:
    """Re-run the last position as a step (one decode step) to get its attention row
    and hidden states; the cache ends exactly as before."""
    ids = engine._store[key].ids
    kv = engine._store.kv_for(key, ids)
    if len(kv.ids) == len(ids):
        kv.crop_to(len(ids) - 1)
    advance(engine, kv, ids, len(ids), None, None)
