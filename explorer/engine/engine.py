"""The Engine: exact, incremental token analysis on a transformers causal LM.

One forward pass per *new* token: a prompt is prefilled once in chunks, an appended token
is one decode step on that prompt's KV cache, a popped token is a crop. Every number the
layers above see is a plain Python value or a small numpy array (see types.py).

The jobs live apart: store.py (prompts and KV caches), runner.py (forward passes),
advance.py (a sync's forward passes put together into records),
reductions.py (log-prob rows to records), view_cache.py (influence and lens results).
This class is the thin front that puts them together behind the Backend protocol.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import torch

from explorer.backend.defaults import Defaults
from explorer.backend.errors import Unavailable
from explorer.backend.protocol import Capabilities
from explorer.backend.types import Attribution
from explorer.config import ModelSettings
from explorer.context_limit import context_error
from explorer.prefix import common_prefix

from . import placement
from .attribution import DEFAULT_STEPS, Attributor
from .errors import EngineError, ModelLoadError, PromptTooLongError
from .loading import load_pretrained, max_context, pick_device
from .parts import ModelParts, resolve_parts
from . import sampler_side
from .reductions import RowReducer
from .rows import logprob_blocks
from .runner import Runner
from .store import Prompt, PromptStore
from .token_text import TokenTexts
from .types import ModelInfo, TokenRecord, TrackedSeries
from .view_cache import ViewCache
from . import branching, positions
from .advance import advance, at_last


class Engine(Defaults):
    def __init__(self, model, tokenizer, *, name: str, settings: ModelSettings,
                 tokens_to_show: int = 30, influence_heads: int = 16,
                 layer_prob: bool = False, device: str | None = None, influence: bool = True,
                 attribution_steps: int = DEFAULT_STEPS, attribution_baseline: str = "mean-keep-first"):
        self.model = model.eval()
        self.attribution_steps = max(1, int(attribution_steps))  # [attribution] n_steps
        self.attribution_baseline = attribution_baseline  # [attribution] baseline
        self.tokenizer = tokenizer
        self.settings = settings
        self.tokens_to_show = int(tokens_to_show)
        self.influence_heads = int(influence_heads)
        self.layer_prob = bool(layer_prob)
        # influence=False: no attention row is read on any step (headless trace needs none).
        self.influence_enabled = bool(influence)
        self.device = torch.device(device) if device else placement.input_device(model)
        self.prefill_chunk = max(1, int(settings.prefill_chunk))
        self._lock = threading.RLock()
        self._text = TokenTexts(tokenizer)
        self._vocabulary: tuple[str, ...] | None = None  # vocabulary(), built when asked

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
        self._info = ModelInfo(
            name=name,
            device=placement.summary(model, self.device.type),
            dtype="bfloat16" if dtype == torch.bfloat16 else str(dtype).removeprefix("torch."),
            n_layers=n_layers,
            vocab_size=self.vocab_size,
            max_context=max_context(model.config),
            architecture=(getattr(model.config, "architectures", None) or [type(model).__name__])[0],
        )
        self._runner = Runner(model, self.device, self.prefill_chunk)
        self._store = PromptStore(settings.cache_size)
        self._views = ViewCache(self.parts, self.influence_heads)
        self._reducer = RowReducer(self.tokens_to_show)
        self._sampler = sampler_side.SamplerSide(self)  # kept raw rows, tracked tokens
        self._attributor = Attributor(model, name=name, eos_id=self._first_eos())

    # ----------------------------------------------------------------- construction
    @classmethod
    def load(cls, settings: ModelSettings, *, tokens_to_show: int = 30, influence_heads: int = 16,
             layer_prob: bool = False, progress: Callable[[str], None] | None = None,
             influence: bool = True, attribution_steps: int = DEFAULT_STEPS,
             attribution_baseline: str = "mean-keep-first") -> "Engine":
        device = pick_device(settings.device)
        model, tokenizer = load_pretrained(settings.name, settings.path_or_id, settings.dtype,
                                           device, progress, device_map=settings.device_map,
                                           max_memory=settings.max_memory,
                                           offload_folder=settings.offload_folder,
                                           named_by=settings.named_by)
        return cls(model, tokenizer, name=settings.name, settings=settings,
                   tokens_to_show=tokens_to_show, influence_heads=influence_heads,
                   layer_prob=layer_prob, device=None if settings.device_map else device,
                   influence=influence, attribution_steps=attribution_steps,
                   attribution_baseline=attribution_baseline)

    @classmethod
    def from_pretrained_objects(cls, model, tokenizer, *, name: str = "test",
                                settings: ModelSettings | None = None, tokens_to_show: int = 30,
                                influence_heads: int = 16, layer_prob: bool = False,
                                progress: Callable[[str], None] | None = None,
                                influence: bool = True, **setting_overrides) -> "Engine":
        """Wrap an already-built model + tokenizer (tests, notebooks). Extra keyword
        arguments override ModelSettings fields (prefill_chunk=, cache_size=, parts=)."""
        from dataclasses import replace

        settings = replace(settings or ModelSettings(name=name), **setting_overrides)
        return cls(model, tokenizer, name=name, settings=settings, tokens_to_show=tokens_to_show,
                   influence_heads=influence_heads, layer_prob=layer_prob, influence=influence)

    # ----------------------------------------------------------------- text
    @property
    def info(self) -> ModelInfo:
        return self._info

    def encode(self, text: str) -> list[int]:
        """Prompt text -> ids; BOS is added exactly when the tokenizer adds it by default.
        verbose=False: an over-long text gets explorer.context_limit's one sentence, not
        also transformers' "Token indices sequence length" warning on stderr."""
        return [int(i) for i in self.tokenizer(text, verbose=False)["input_ids"]]

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
            influence=self.influence_enabled,
            lens=self.layer_prob and self.parts is not None,
            prompt_logprobs=True,
            tracked_tokens=True,
            sampling=True,
            attribution=self._attributor.available,
            trees=True,
            chat=True,
            constraints=True,
            full_rows=True,
            max_top_k=None,
            kind="local",
        )

    def close(self) -> None:
        with self._lock:
            self._store.clear()
            self._views.clear()
            self._sampler.clear()

    # ----------------------------------------------------------------- prompts
    def sync(self, key: Hashable, ids: Sequence[int], *,
             progress: Callable[[int, int], None] | None = None,
             cancelled: Callable[[], bool] | None = None) -> tuple[TokenRecord, ...]:
        ids = tuple(int(i) for i in ids)
        self._check_ids(ids)
        with self._lock:
            prompt = self._store.get(key)
            if prompt is not None and prompt.ids == ids:
                self._store.touch(key)
                return prompt.records
            base = self._store.base_for(key, ids)
            keep = common_prefix(base.ids, ids)
            if keep == len(ids):  # a prefix: pop or reset to shorter, no forward pass
                self._store.crop_kv(key, ids)
                new = base.prefix(keep)
            else:
                kv = self._store.kv_for(key, ids[:keep])
                start = len(kv.ids)  # first position whose record is (re)computed

                def extend(records: tuple[TokenRecord, ...]) -> Prompt:
                    # Lens columns of new positions wait until a layer view asks.
                    return Prompt(ids[: start + len(records)], base.records[:start] + records,
                                  base.lens_cols[:start] + (None,) * len(records))

                records = advance(self, kv, ids, start, progress, cancelled,
                                        keep_done=lambda done: self._store.put_partial(key, extend(done)))
                new = extend(records)
            self._store.put(key, new)
            return new.records

    def records(self, key: Hashable) -> tuple[TokenRecord, ...]:
        with self._lock:
            return self._store[key].records

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._store.forget(key)

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
            return self._views.layer_probs(at_last(self, key, self._views.lens_point), token_ids)

    def prompt_layer_probs(self, key: Hashable) -> np.ndarray:
        """float32 [L+1, n]: column i = p^l_{i-1}[t_i]; column 0 is NaN. Lazy and cached."""
        self._require_lens()
        with self._lock:
            prompt = self._store[key]
            filled = self._views.fill_lens_cols(self._runner, prompt)
            if filled is not prompt:
                self._store.put(key, filled)
            return self._views.prompt_layer_probs(filled)

    # ----------------------------------------------------------------- sampling side
    # Thin delegates to sampler_side.py (Feature.SAMPLING, TRACKED, CHAT).
    def next_logits(self, key: Hashable) -> np.ndarray:
        return self._sampler.next_logits(key)

    def logits_before(self, key: Hashable, index: int) -> np.ndarray:
        """float32 [V]: raw logits after the first `index` tokens of prompt `key` (the
        distribution token `index` was drawn from); kept, or one decode step (positions.py)."""
        with self._lock:
            return positions.logits_before(self, key, int(index)).numpy().copy()

    def tracked(self, key: Hashable, token_ids: Sequence[int], *,
                progress: Callable[[int, int], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> TrackedSeries:
        return self._sampler.tracked(key, token_ids, progress=progress, cancelled=cancelled)

    def encode_plain(self, text: str) -> list[int]:
        return sampler_side.encode_plain(self.tokenizer, text)

    def logprob_blocks(self, ids: Sequence[int], *, progress=None, cancelled=None):
        ids = tuple(int(i) for i in ids)
        self._check_ids(ids)
        self._runner.use_fast()
        return logprob_blocks(self.model, ids, chunk=self.prefill_chunk, lock=self._lock,
                              progress=progress, cancelled=cancelled)

    def vocabulary(self) -> tuple[str, ...]:
        if self._vocabulary is None:
            by_id = {int(i): t for t, i in self.tokenizer.get_vocab().items()}
            self._vocabulary = tuple(by_id.get(i, "") for i in range(self.vocab_size))
        return self._vocabulary

    def chat_ids(self, messages) -> list[int]:
        return sampler_side.chat_ids(self.tokenizer, self.info.name, messages)

    def sampling_defaults(self):
        return sampler_side.sampling_defaults(self.model)

    @property
    def eos_ids(self) -> frozenset[int]:
        return sampler_side.eos_ids(self.model, self.tokenizer)

    def _first_eos(self) -> int | None:
        """The EOS token of the "eos" attribution baseline: the tokenizer's, if generation
        stops on it, else the lowest id generation stops on."""
        ids = self.eos_ids
        own = getattr(self.tokenizer, "eos_token_id", None)
        return own if own in ids else (min(ids) if ids else own)

    # A thin delegate to explorer.sampling.constraint (Feature.CONSTRAINTS).
    def constraint(self, spec):
        from explorer.sampling.constraint import Constraint

        return Constraint.for_tokenizer(spec, self.tokenizer, self.vocab_size)

    # Added by the attribution branch: a thin delegate to attribution.py.
    def attribution(self, key: Hashable, target: int, method: str = "saliency", *,
                    n_steps: int | None = None, baseline: str | None = None,
                    progress: Callable[[int, int], None] | None = None,
                    cancelled: Callable[[], bool] | None = None,
                    position: int | None = None) -> Attribution:
        """Per-position scores of prompt `key` for log p_base(target) after its last
        position (attribution.py has the definitions); cached per (ids, target, method,
        and for integrated gradients n_steps and baseline; None = the configured one).
        position: score the first `position` tokens toward the token after them instead
        (a past position, issue 23)."""
        with self._lock:
            ids = self._store[key].ids
            if position is not None:
                if not 1 <= position <= len(ids):
                    raise ValueError(f"position {position} is outside 1..{len(ids)}")
                ids = ids[:position]
            self._check_vocab([target])
            self._runner.use_fast()
            steps = self.attribution_steps if n_steps is None else n_steps
            return self._attributor.attribute(ids, target, method, n_steps=steps,
                                              baseline=baseline or self.attribution_baseline,
                                              progress=progress, cancelled=cancelled)

    # A thin delegate to branching.py (token trees, issue 10).
    def grow_tree(self, key: Hashable, settings, *,
                  progress: Callable[[int, int], None] | None = None,
                  cancelled: Callable[[], bool] | None = None):
        """A token tree (explorer.tree.TokenTree) after prompt `key`, on a fork of its KV
        cache: the prompt's own cache is neither changed nor evicted."""
        with self._lock:
            ids = self._store[key].ids
            self._runner.use_fast()
            return branching.grow_tree(
                self.model, ids, self._store.peek_kv(key), settings, token_text=self._text,
                decode=self.decode, eos=self.eos_ids,
                max_context=self.info.max_context, name=self.info.name, chunk=self.prefill_chunk,
                few_threads=self._runner.few_threads, progress=progress, cancelled=cancelled)

    # ----------------------------------------------------------------- internals
    def _check_ids(self, ids: tuple[int, ...]) -> None:
        if not ids:
            raise ValueError("a prompt needs at least one token")
        if why := context_error(len(ids), self.info.max_context, self.info.name):
            raise PromptTooLongError(why)
        self._check_vocab(ids)

    def _check_vocab(self, ids: Sequence[int]) -> None:
        bad = next((t for t in ids if not 0 <= int(t) < self.vocab_size), None)
        if bad is not None:
            raise EngineError(f"Token id {bad} is outside the vocabulary of {self.info.name}.")

    def _influence_entry(self, key: Hashable):
        if not self.influence_enabled:
            raise Unavailable(f"{self.info.name} was opened without attention influence.")
        with self._lock:
            entry = at_last(self, key, self._views.influence)
            if entry is None:
                raise Unavailable(f"{self.info.name} does not report attention weights, so influence is unavailable.")
            return entry

    def _require_lens(self) -> None:
        if not self.layer_prob or self.parts is None:
            raise Unavailable("Layer probabilities need the model loaded with --layer_prob.")
