"""The Engine: exact, incremental token analysis on a transformers causal LM.

One forward pass per *new* token: a prompt is prefilled once in chunks, an appended token
is one decode step on that prompt's KV cache, a popped token is a crop. Every number the
layers above see is a plain Python value or a small numpy array (see types.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from explorer.config import ModelSettings

from . import attention_rows, metrics
from .errors import EngineError, ModelLoadError, PromptTooLongError, SyncCancelled
from .kv import LRU, TAIL_ROWS, PromptKV, common_prefix
from .lens import LensPoint, make_point, point_probs, target_probs
from .loading import load_pretrained, max_context, pick_device
from .parts import ModelParts, resolve_parts
from .token_text import TokenTexts
from .tracked import TrackedSeries, track
from . import branching
from explorer.backend.errors import Unavailable
from explorer.backend.protocol import Capabilities

from .types import Candidate, ModelInfo, TokenRecord

# Rows of logits reduced at once during prefill: bounds the fp32 [rows, V] temporaries.
METRIC_ROWS = 64
# Results keyed by token-id tuples (influence and lens of the position after them).
INFLUENCE_ENTRIES = 256
LENS_ENTRIES = 32


@dataclass(frozen=True)
class _Prompt:
    ids: tuple[int, ...]
    records: tuple[TokenRecord, ...]
    # Per position i: lens column p^l_{i-1}[t_i] for l < L (None until computed).
    lens_cols: tuple[np.ndarray | None, ...]


@dataclass
class _RowStats:
    """Reductions of one position's distribution, as plain values."""

    entropy: float
    top_ids: list[int]
    top_logprobs: list[float]
    next_logprob: float | None  # of the token that actually follows, if any
    next_rank: int | None


class Engine:
    def __init__(self, model, tokenizer, *, name: str, settings: ModelSettings,
                 tokens_to_show: int = 30, influence_heads: int = 16,
                 layer_prob: bool = False, device: str | None = None):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.tokens_to_show = int(tokens_to_show)
        self.influence_heads = int(influence_heads)
        self.layer_prob = bool(layer_prob)
        self.device = torch.device(device or next(model.parameters()).device)
        self.prefill_chunk = max(1, int(settings.prefill_chunk))
        self._lock = threading.RLock()
        self._text = TokenTexts(tokenizer)

        try:
            self.parts: ModelParts | None = resolve_parts(model, settings.parts)
        except ModelLoadError:
            # Only the lens needs the parts; without it nothing would be silently wrong.
            if self.layer_prob or settings.parts:
                raise
            self.parts = None
        head = model.get_output_embeddings()
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.vocab_size = int(head.weight.shape[0]) if head is not None else int(config.vocab_size)
        self._ln_vocab = math.log(self.vocab_size)
        n_layers = self.parts.n_layers if self.parts else int(config.num_hidden_layers)
        dtype = next(model.parameters()).dtype
        self.info = ModelInfo(
            name=name,
            device=self.device.type,
            dtype="bfloat16" if dtype == torch.bfloat16 else str(dtype).removeprefix("torch."),
            n_layers=n_layers,
            vocab_size=self.vocab_size,
            max_context=max_context(model.config),
            architecture=(getattr(model.config, "architectures", None) or [type(model).__name__])[0],
        )
        # Prefill runs on the model's own (fast) attention; steps whose attention weights
        # we read run eager, the only implementation that returns them.
        self._fast_impl = getattr(model.config, "_attn_implementation", None) or "eager"
        # The same fast attention, wrapped to keep the last query's row (None: use eager).
        self._rows_impl = attention_rows.install(self._fast_impl)

        self._prompts: dict[Hashable, _Prompt] = {}
        self._kv = LRU(settings.cache_size)
        self._influence = LRU(INFLUENCE_ENTRIES)  # ids -> (np.ndarray, heads)
        self._lens = LRU(LENS_ENTRIES)  # ids -> LensPoint

    # ----------------------------------------------------------------- construction
    @classmethod
    def load(cls, settings: ModelSettings, *, tokens_to_show: int = 30, influence_heads: int = 16,
             layer_prob: bool = False, progress: Callable[[str], None] | None = None) -> "Engine":
        device = pick_device(settings.device)
        model, tokenizer = load_pretrained(settings.name, settings.path_or_id, settings.dtype,
                                           device, progress)
        return cls(model, tokenizer, name=settings.name, settings=settings,
                   tokens_to_show=tokens_to_show, influence_heads=influence_heads,
                   layer_prob=layer_prob, device=device)

    @classmethod
    def from_pretrained_objects(cls, model, tokenizer, *, name: str = "test",
                                settings: ModelSettings | None = None, tokens_to_show: int = 30,
                                influence_heads: int = 16, layer_prob: bool = False,
                                progress: Callable[[str], None] | None = None,
                                **setting_overrides) -> "Engine":
        """Wrap an already-built model + tokenizer (tests, notebooks). Extra keyword
        arguments override ModelSettings fields (prefill_chunk=, cache_size=, parts=)."""
        from dataclasses import replace

        settings = replace(settings or ModelSettings(name=name), **setting_overrides)
        return cls(model, tokenizer, name=name, settings=settings, tokens_to_show=tokens_to_show,
                   influence_heads=influence_heads, layer_prob=layer_prob)

    # ----------------------------------------------------------------- text
    def encode(self, text: str) -> list[int]:
        """Prompt text -> ids; BOS is added exactly when the tokenizer adds it by default."""
        return [int(i) for i in self.tokenizer(text)["input_ids"]]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False,
                                     clean_up_tokenization_spaces=False)

    def token_text(self, token_id: int) -> str:
        return self._text(token_id)

    def token_bytes(self, token_id: int) -> bytes | None:
        return self._text.raw_bytes(token_id)

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset(int(i) for i in (getattr(self.tokenizer, "all_special_ids", None) or []))

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            exact_entropy=True,
            influence=True,
            lens=self.layer_prob and self.parts is not None,
            prompt_logprobs=True,
            tracked_tokens=False,
            sampling=False,
            trees=True,
            max_top_k=None,
            kind="local",
        )

    def close(self) -> None:
        with self._lock:
            self._prompts.clear()
            self._kv.clear()
            self._influence.clear()
            self._lens.clear()

    # ----------------------------------------------------------------- prompts
    def sync(self, key: Hashable, ids: Sequence[int], *,
             progress: Callable[[int, int], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> tuple[TokenRecord, ...]:
        ids = tuple(int(i) for i in ids)
        self._check_ids(ids)
        with self._lock:
            prompt = self._prompts.get(key)
            if prompt is not None and prompt.ids == ids:
                self._kv.get(key)  # switching to a prompt counts as a use of its cache
                return prompt.records
            if prompt is None:
                prompt = self._borrow_prompt(ids)
            keep = common_prefix(prompt.ids, ids)
            if keep == len(ids):  # a prefix: pop or reset to shorter, no forward pass
                kv = self._kv.get(key)
                if kv is not None:
                    kv.crop_to(common_prefix(kv.ids, ids))
                new = _Prompt(ids, prompt.records[:keep], prompt.lens_cols[:keep])
                self._prompts[key] = new
                return new.records

            kv = self._kv_for(key, ids[:keep])
            start = len(kv.ids)  # first position whose record is (re)computed
            records, _ = self._advance(kv, ids, start, progress, cancelled)
            cols = prompt.lens_cols[:start] + self._lens_cols_from_points(ids, start)
            new = _Prompt(ids, prompt.records[:start] + records, cols)
            self._prompts[key] = new
            return new.records

    def records(self, key: Hashable) -> tuple[TokenRecord, ...]:
        with self._lock:
            return self._prompts[key].records

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._prompts.pop(key, None)
            self._kv.pop(key, None)

    # ----------------------------------------------------------------- views
    def influence(self, key: Hashable) -> np.ndarray:
        """float32 [n] in [0, 1]; may cost one decode step when not already known."""
        return self._influence_entry(key)[0].copy()

    def last_influence_heads(self, key: Hashable) -> tuple[tuple[int, int], ...]:
        """The (layer, head) pairs averaged for influence(key), most variable first."""
        return self._influence_entry(key)[1]

    def layer_probs(self, key: Hashable, token_ids: Sequence[int]) -> np.ndarray:
        """float32 [L+1, k]: p^l[t] after the last position for each given token."""
        self._require_lens()
        with self._lock:
            ids = self._prompts[key].ids
            point = self._lens.get(ids)
            if point is None:
                self._probe_last(key)
                point = self._lens.get(ids)
            with torch.inference_mode():
                probs = point_probs(self.parts, point, [int(t) for t in token_ids])
            return probs.cpu().numpy().astype(np.float32)

    def prompt_layer_probs(self, key: Hashable) -> np.ndarray:
        """float32 [L+1, n]: column i = p^l_{i-1}[t_i]; column 0 is NaN. Lazy and cached."""
        self._require_lens()
        with self._lock:
            prompt = self._prompts[key]
            ids, cols = prompt.ids, list(prompt.lens_cols)
            missing = [i for i in range(1, len(ids)) if cols[i] is None]
            if missing:
                for i, col in self._lens_cols_by_prefill(ids, missing).items():
                    cols[i] = col
                prompt = _Prompt(ids, prompt.records, tuple(cols))
                self._prompts[key] = prompt
            out = np.full((self.info.n_layers + 1, len(ids)), np.nan, dtype=np.float32)
            for i in range(1, len(ids)):
                out[:-1, i] = cols[i]
                out[-1, i] = math.exp(prompt.records[i].logprob)
            return out

    # ----------------------------------------------------------------- internals: state
    def _check_ids(self, ids: tuple[int, ...]) -> None:
        if not ids:
            raise ValueError("a prompt needs at least one token")
        limit = self.info.max_context
        if limit is not None and len(ids) > limit:
            raise PromptTooLongError(
                f"The prompt has {len(ids)} tokens but {self.info.name} supports at most {limit}."
            )
        bad = next((t for t in ids if not 0 <= t < self.vocab_size), None)
        if bad is not None:
            raise EngineError(f"Token id {bad} is outside the vocabulary of {self.info.name}.")

    def _borrow_prompt(self, ids: tuple[int, ...]) -> _Prompt:
        """A new key starts from the records of the known prompt sharing most of its prefix
        (a fork shares its parent's records: they are immutable)."""
        best, best_len = None, 0
        for other in self._prompts.values():
            n = common_prefix(other.ids, ids)
            if n > best_len:
                best, best_len = other, n
        if best is None:
            return _Prompt((), (), ())
        return _Prompt(ids[:best_len], best.records[:best_len], best.lens_cols[:best_len])

    def _kv_for(self, key: Hashable, prefix: tuple[int, ...]) -> PromptKV:
        """This key's cache cropped to the longest usable part of `prefix`; else a copy of
        another prompt's cache sharing the longest prefix; else an empty cache."""
        from transformers import DynamicCache

        own = self._kv.get(key)
        best, best_len = own, common_prefix(own.ids, prefix) if own is not None else 0
        for _, other in self._kv.items():
            n = common_prefix(other.ids, prefix)
            if n > best_len:
                best, best_len = other, n
        if best is None or best_len == 0:
            # No config: plain full-attention layers on every model, so any cache can be
            # cropped (sliding-window layers cannot roll back once the window is full).
            kv = PromptKV(cache=DynamicCache())
        elif best is own:
            kv = own
        else:
            kv = best.copy()
        kv.crop_to(best_len)
        self._kv.put(key, kv)
        return kv

    # ----------------------------------------------------------------- internals: model work
    def _use_impl(self, impl: str) -> None:
        # Read the model's own setting each time: a caller may have switched it.
        if getattr(self.model.config, "_attn_implementation", None) != impl:
            self.model.set_attn_implementation(impl)

    def _forward(self, tokens: Sequence[int], kv: PromptKV, *, attentions: bool, hidden: bool):
        """One forward pass; with attentions=True, out.attention_rows is [L, H, keys] of
        the last query position (or None when the model gives no attention weights)."""
        input_ids = torch.tensor([list(tokens)], dtype=torch.long, device=self.device)
        kwargs = dict(input_ids=input_ids, past_key_values=kv.cache, use_cache=True,
                      output_hidden_states=hidden, return_dict=True)
        if not attentions:
            self._use_impl(self._fast_impl)
            out = self.model(**kwargs)
            out.attention_rows = None
        elif self._rows_impl is not None:
            self._use_impl(self._rows_impl)
            with attention_rows.capturing() as captured:
                out = self.model(**kwargs)
            with self._few_threads():
                out.attention_rows = attention_rows.last_rows(captured) if captured else None
        else:
            self._use_impl("eager")
            out = self.model(**kwargs, output_attentions=True)
            atts = out.attentions
            out.attention_rows = (
                torch.stack([a[0, :, -1, :] for a in atts]).float()
                if atts and all(a is not None for a in atts) else None
            )
        return out

    @contextmanager
    def _few_threads(self):
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

    def _advance(self, kv: PromptKV, ids: tuple[int, ...], start: int,
                 progress: Callable[[int, int], None] | None,
                 cancelled: Callable[[], bool] | None) -> tuple[tuple[TokenRecord, ...], dict]:
        """Run ids[len(kv.ids):] through the model; return records for positions >= start.

        kv must hold a prefix of ids with start == len(kv.ids) or start == len(ids) (probe).
        The last position always goes through an eager step that returns its attention row
        (influence) and, with layer_prob, its hidden states (lens).
        """
        n = len(ids)
        # The record of position `start` needs the distribution after start-1. If the
        # cache no longer keeps that row, feed position start-1 again in the same pass.
        if start == len(kv.ids) and 0 < start < n and not kv.tails:
            kv.crop_to(start - 1)
        first = len(kv.ids)
        stats: dict[int, _RowStats] = {}
        if kv.tails and first == start > 0:
            with self._few_threads():
                stats[start - 1] = self._row_stats(kv.tails[-1][None], [ids[start]])[0]
        want_from = max(start - 1, 0)
        # Two positions or fewer: one eager forward covers them (one pass for an append).
        eager_from = first if n - first <= 2 else n - 1
        try:
            with torch.inference_mode():
                pos = first
                while pos < eager_from:
                    if cancelled is not None and cancelled():
                        raise SyncCancelled("Loading the prompt was cancelled.")
                    end = min(pos + self.prefill_chunk, eager_from)
                    out = self._forward(ids[pos:end], kv, attentions=False, hidden=False)
                    self._reduce(out.logits[0], ids, pos, want_from, kv, stats)
                    kv.ids = ids[:end]
                    del out
                    pos = end
                    if progress is not None:
                        progress(pos - first, n - first)
                out = self._forward(ids[eager_from:], kv, attentions=True, hidden=self.layer_prob)
                with self._few_threads():
                    rows = self._reduce(out.logits[0], ids, eager_from, want_from, kv, stats)
                    kv.ids = ids
                    self._store_influence(ids, out.attention_rows)
                    if self.layer_prob:
                        self._store_lens(ids, eager_from, out.hidden_states, rows)
                if progress is not None:
                    progress(n - first, n - first)
        except SyncCancelled:
            raise
        except BaseException:
            # A forward that stopped half way leaves some layers updated: drop the cache.
            for k, v in self._kv.items():
                if v is kv:
                    self._kv.pop(k)
            raise
        return tuple(self._record(ids, i, stats) for i in range(start, n)), stats

    def _reduce(self, logits: torch.Tensor, ids: tuple[int, ...], pos: int, want_from: int,
                kv: PromptKV, stats: dict[int, _RowStats]) -> list[torch.Tensor]:
        """Reduce logits of positions pos.. to row stats, a few rows at a time; keep the
        last rows' log-probs as tails. Returns those last log-prob rows."""
        q = logits.shape[0]
        kept: list[torch.Tensor] = []
        for a in range(0, q, METRIC_ROWS):
            b = min(a + METRIC_ROWS, q)
            lp = metrics.log_probs(logits[a:b])
            lo = max(a, want_from - pos)
            if lo < b:
                targets = [ids[pos + r + 1] if pos + r + 1 < len(ids) else None for r in range(lo, b)]
                for r, s in zip(range(lo, b), self._row_stats(lp[lo - a:], targets)):
                    stats[pos + r] = s
            if b > q - TAIL_ROWS:  # the last rows become tails (and lens points)
                kept.extend(lp[max(0, q - TAIL_ROWS - a):].clone().unbind(0))
        kv.keep_tails(kept)
        return kept

    def _row_stats(self, lp: torch.Tensor, targets: list[int | None]) -> list[_RowStats]:
        k = min(self.tokens_to_show, lp.shape[-1])
        ent = metrics.entropy(lp).tolist()
        top_lp, top_ids = metrics.top_k(lp, k)
        top_lp, top_ids = top_lp.tolist(), top_ids.tolist()
        known = [i for i, t in enumerate(targets) if t is not None]
        next_lp, next_rank = {}, {}
        if known:
            rows = lp[known]
            t = torch.tensor([targets[i] for i in known], device=lp.device)
            lps = rows.gather(-1, t[:, None])[:, 0].tolist()
            ranks = metrics.rank_of(rows, t).tolist()
            next_lp, next_rank = dict(zip(known, lps)), dict(zip(known, ranks))
        return [
            _RowStats(ent[r], top_ids[r], top_lp[r], next_lp.get(r), next_rank.get(r))
            for r in range(lp.shape[0])
        ]

    def _record(self, ids: tuple[int, ...], i: int, stats: dict[int, _RowStats]) -> TokenRecord:
        here = stats[i]
        before = stats.get(i - 1) if i > 0 else None
        top = tuple(
            Candidate(token_id=t, text=self._text(t), prob=math.exp(lp), logprob=lp)
            for t, lp in zip(here.top_ids, here.top_logprobs)
        )
        return TokenRecord(
            token_id=ids[i],
            text=self._text(ids[i]),
            logprob=None if before is None else before.next_logprob,
            rank=None if before is None else before.next_rank,
            entropy=None if before is None else before.entropy,
            entropy_norm=None if before is None else before.entropy / self._ln_vocab,
            next_entropy=here.entropy,
            next_entropy_norm=here.entropy / self._ln_vocab,
            top=top,
        )

    # ----------------------------------------------------------------- influence
    def _store_influence(self, ids: tuple[int, ...], rows: torch.Tensor | None) -> None:
        """rows: [layers, heads, keys], the last query position of every layer and head."""
        if rows is None:
            return
        values, heads = metrics.influence(rows, self.influence_heads)
        self._influence.put(ids, (values.cpu().numpy().astype(np.float32), tuple(heads)))

    def _influence_entry(self, key: Hashable):
        with self._lock:
            ids = self._prompts[key].ids
            entry = self._influence.get(ids)
            if entry is None:
                self._probe_last(key)
                entry = self._influence.get(ids)
            if entry is None:
                raise Unavailable(f"{self.info.name} does not report attention weights, so influence is unavailable.")
            return entry

    def _probe_last(self, key: Hashable) -> None:
        """Re-run the last position as an eager step (one decode step) to get its attention
        row and hidden states; the cache ends exactly as before."""
        ids = self._prompts[key].ids
        kv = self._kv_for(key, ids)
        if len(kv.ids) == len(ids):
            kv.crop_to(len(ids) - 1)
        self._advance(kv, ids, len(ids), None, None)

    # ----------------------------------------------------------------- lens
    def _require_lens(self) -> None:
        if not self.layer_prob or self.parts is None:
            raise Unavailable("Layer probabilities need the model loaded with --layer_prob.")

    def _store_lens(self, ids: tuple[int, ...], first: int, hidden_states, final_rows) -> None:
        """A lens point for each position of the eager step (the last one or two)."""
        n_layers = self.info.n_layers
        q = len(ids) - first
        for j in range(q):
            pos = first + j
            layer_hidden = torch.stack([hidden_states[l][0, j] for l in range(n_layers)])
            final = final_rows[len(final_rows) - q + j]
            self._lens.put(ids[: pos + 1], make_point(self.parts, layer_hidden, final))

    def _lens_cols_from_points(self, ids: tuple[int, ...], start: int) -> tuple[np.ndarray | None, ...]:
        """Columns i >= start whose predicting position has a stored lens point."""
        if not self.layer_prob:
            return (None,) * (len(ids) - start)
        cols = []
        for i in range(start, len(ids)):
            point: LensPoint | None = self._lens.peek(ids[:i]) if i > 0 else None
            if point is None:
                cols.append(None)
                continue
            with torch.inference_mode():
                probs = point_probs(self.parts, point, [ids[i]])[:-1, 0]
            cols.append(probs.cpu().numpy().astype(np.float32))
        return tuple(cols)

    def _lens_cols_by_prefill(self, ids: tuple[int, ...], missing: list[int]) -> dict[int, np.ndarray]:
        """One chunked pass over the prompt on a scratch cache, with hidden states; lens
        evaluated only at the positions that predict a missing column."""
        from transformers import DynamicCache

        need = sorted(i - 1 for i in missing)  # predicting positions
        scratch = PromptKV(cache=DynamicCache())
        out_cols: dict[int, np.ndarray] = {}
        end_all = need[-1] + 1
        with torch.inference_mode():
            for pos in range(0, end_all, self.prefill_chunk):
                end = min(pos + self.prefill_chunk, end_all)
                rows = [p for p in need if pos <= p < end]
                if not rows:
                    self._forward(ids[pos:end], scratch, attentions=False, hidden=False)
                    continue
                out = self._forward(ids[pos:end], scratch, attentions=False, hidden=True)
                local = torch.tensor([p - pos for p in rows], device=self.device)
                targets = torch.tensor([ids[p + 1] for p in rows], device=self.device)
                per_layer = [
                    target_probs(self.parts, out.hidden_states[l][0, local], targets)
                    for l in range(self.info.n_layers)
                ]
                block = torch.stack(per_layer).cpu().numpy().astype(np.float32)  # [L, r]
                for j, p in enumerate(rows):
                    out_cols[p + 1] = block[:, j].copy()
                del out
        return out_cols

    # ----------------------------------------------------------------- tracked tokens
    # Added by the sampler branch: a thin delegate to tracked.py (kept apart while
    # engine.py is being split; move it wherever the prompt state ends up).
    def tracked(self, key: Hashable, token_ids: Sequence[int], *,
                cancelled: Callable[[], bool] | None = None) -> TrackedSeries:
        """p_base of each token at every position of prompt `key` (row i = after position
        i), exact at any rank; with --layer_prob also per layer after the last position.
        One chunked pass on a scratch cache; the prompt's own cache is untouched."""
        with self._lock:
            ids = self._prompts[key].ids
            bad = next((t for t in token_ids if not 0 <= int(t) < self.vocab_size), None)
            if bad is not None:
                raise EngineError(f"Token id {bad} is outside the vocabulary of {self.info.name}.")
            self._use_impl(self._fast_impl)
            return track(self.model, ids, token_ids, chunk=self.prefill_chunk,
                         parts=self.parts if self.layer_prob else None, cancelled=cancelled)

    # ----------------------------------------------------------------- token trees
    # A thin delegate to branching.py (kept apart while engine.py is being split).
    def grow_tree(self, key: Hashable, settings, *,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None):
        """A token tree (explorer.tree.TokenTree) after prompt `key`, on a fork of its KV
        cache: the prompt's own cache is neither changed nor evicted."""
        with self._lock:
            ids = self._prompts[key].ids
            self._use_impl(self._fast_impl)
            return branching.grow_tree(
                self.model, ids, self._kv.peek(key), settings, token_text=self._text,
                decode=self.decode, eos=branching.eos_ids(self.model, self.tokenizer),
                max_context=self.info.max_context, chunk=self.prefill_chunk,
                progress=progress, cancelled=cancelled)
