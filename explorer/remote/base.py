"""What every remote backend shares: prompt state per key, records from server numbers,
the append path that costs one decode on the server, and the views a server cannot serve.

A server subclass supplies: tokenize/detokenize, `next_distribution(ids)` (one request:
the top-K after the last position, prefix cache on), `load(ids)` (a whole prompt's
distributions, as many as the server gives in one go) and `draw_request(...)` (the
server's own sampler: one request that chooses a token, and with `with_next` also returns
the table's top-K after the ids, so an append through the sampler stays one request).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from explorer.backend.defaults import Defaults
from explorer.backend.errors import BackendError, Cancelled, PromptTooLongError
from explorer.backend.protocol import Capabilities, IsCancelled, Progress
from explorer.backend.sampling import ServerDraw
from explorer.backend.token_text import make_visible
from explorer.backend.types import ModelInfo, TokenRecord
from explorer.context_limit import context_error
from explorer.lru import LRU
from explorer.prefix import common_prefix, longest_shared
from explorer.remote.client import ServerClient
from explorer.remote.drawing import MEMO_ENTRIES
from explorer.sampling.settings import SamplingSettings
from explorer.remote.numbers import Distribution, build_records

# Special tokens as servers spell them (servers do not list them): drawn apart, no bytes.
SPECIAL_TEXT = re.compile(r"<\|[^|]*\|>|</?s>|<unk>|<pad>")
# Every attribution method needs the model itself: gradients of the input embeddings, or
# (the attention method) the attention weights; a server returns log-probs only.
ATTRIBUTION_REASON = ("Attribution (saliency, input x gradient, integrated gradients, attention) "
                      "is unavailable on this backend ({}): it needs the model's gradients or "
                      "attention weights, and a server returns log-probs only.")


@dataclass
class _Prompt:
    ids: tuple[int, ...]
    before: list[Distribution | None]  # before[i]: the distribution that predicted ids[i]
    after: list[Distribution | None]  # after[i]: the distribution after position i
    records: tuple[TokenRecord, ...]


class RemoteBackend(Defaults):
    kind = "remote"

    def __init__(self, client: ServerClient, model: str, *, vocab_size: int,
                 max_context: int | None, tokens_to_show: int, special_ids: frozenset[int],
                 max_top_k: int | None):
        self.client = client
        self.model = model
        self.vocab_size = int(vocab_size)
        self.tokens_to_show = int(tokens_to_show)
        self._special = special_ids
        self._max_top_k = max_top_k
        # Servers often name a model by its file path; the header shows the last part.
        shown = model.rstrip("/").rsplit("/", 1)[-1] if model.startswith("/") else model
        self._info = ModelInfo(name=shown, device=f"{self.kind} at {client.where}", dtype="server",
                               n_layers=0, vocab_size=self.vocab_size, max_context=max_context,
                               architecture=self.kind)
        self._lock = threading.RLock()
        self._prompts: dict[Hashable, _Prompt] = {}
        self._text: dict[int, str] = {}
        self._bytes: dict[int, bytes | None] = {}
        # The sampler settings each prompt last drew with: its appends then draw the next
        # token in the same request (one decode per sampled token).
        self._drawing: dict[Hashable, tuple[SamplingSettings, int]] = {}
        # Draws by (ids, settings, prompt_len): a draw is a pure function of these (the
        # seed is derived from the position), so a hit is exact.
        self._draws: LRU[Hashable, ServerDraw] = LRU(MEMO_ENTRIES)
        self._eos: frozenset[int] = frozenset()

    # -- facts ----------------------------------------------------------------------------
    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def top_k(self) -> int:
        """How many entries we ask the server for (the table never shows more)."""
        return self.tokens_to_show if self._max_top_k is None else min(self.tokens_to_show, self._max_top_k)

    @property
    def capabilities(self) -> Capabilities:
        # sampling=False: the app's sampler (Feature.SAMPLING) works on a full logits row,
        # which no server sends; the server's own sampler draws instead. No influence, lens
        # or attribution (they need the weights; a server returns log-probs only), no trees
        # (batched passes on forked KV caches: no server API). Defaults raises for them.
        return Capabilities(exact_entropy=False, influence=False, lens=False,
                            prompt_logprobs=True, tracked_tokens=False, sampling=False,
                            server_sampling=True, chat=True, max_top_k=self._max_top_k,
                            kind=self.kind,
                            reasons=(("attribution", ATTRIBUTION_REASON.format(self.kind)),))

    @property
    def special_ids(self) -> frozenset[int]:
        return self._special

    # -- text -----------------------------------------------------------------------------
    def token_text(self, token_id: int) -> str:
        token_id = int(token_id)
        if token_id not in self._text:
            self._learn_texts([token_id])
        return self._text[token_id]

    def token_bytes(self, token_id: int) -> bytes | None:
        token_id = int(token_id)
        if token_id not in self._text:
            self._learn_texts([token_id])
        return self._bytes.get(token_id)

    def remember_text(self, token_id: int, text: str, raw: bytes | None) -> None:
        self._text[int(token_id)] = text
        self._bytes[int(token_id)] = raw

    def _learn_texts(self, token_ids: Sequence[int]) -> None:
        """Fill the text memo for ids the server has not described yet: one detokenize per
        token (the APIs join several into one string), in parallel, once per session."""
        ids = [int(t) for t in token_ids]
        with ThreadPoolExecutor(max_workers=min(8, len(ids))) as pool:
            texts = list(pool.map(lambda t: self.decode([t]), ids))
        for tid, text in zip(ids, texts):
            if tid in self._special or SPECIAL_TEXT.fullmatch(text):
                self._special = self._special | {tid}
                self.remember_text(tid, text, None)
            elif "\ufffd" in text:  # part of a character: the text does not say which bytes
                self.remember_text(tid, f"<{tid}:partial>", None)
            else:
                self.remember_text(tid, make_visible(text), text.encode("utf-8"))

    def _texts_for(self, token_ids) -> None:
        missing = sorted({int(t) for t in token_ids} - self._text.keys())
        if missing:
            self._learn_texts(missing)

    # -- prompts --------------------------------------------------------------------------
    def sync(self, key: Hashable, ids: Sequence[int], *, progress: Progress | None = None,
             cancelled: IsCancelled | None = None) -> tuple[TokenRecord, ...]:
        ids = tuple(int(i) for i in ids)
        self._check_ids(ids)
        with self._lock:
            prompt = self._prompts.get(key)
            if prompt is not None and prompt.ids == ids:
                return prompt.records
            base = self._closest(prompt, ids)
            keep = common_prefix(base.ids, ids) if base else 0
            if base is not None and keep == len(ids):  # pop or reset: no request
                new = self._make(ids, base.before[:keep], base.after[:keep], base.records[: keep - 1])
            elif base is not None and keep == len(ids) - 1 and self._can_append(base, keep, ids[-1]):
                if cancelled is not None and cancelled():
                    raise Cancelled("The request was cancelled.")
                nxt = self._append_request(key, ids)
                new = self._make(ids, base.before[:keep] + [base.after[keep - 1]],
                                 base.after[:keep] + [nxt], base.records[: keep - 1])
            else:
                if cancelled is not None and cancelled():
                    raise Cancelled("The request was cancelled.")
                if progress is not None:
                    progress(0, 1)
                before, after = self.load(ids, progress=progress, cancelled=cancelled)
                # A token outside the last table (its log-prob and rank unknown) came by a
                # whole load: the prefix's records keep their tables, as a trace reads them.
                appended = base is not None and keep == len(ids) - 1
                new = self._make(ids, before, after, base.records[: keep - 1] if appended else ())
            self._prompts[key] = new
            return new.records

    def records(self, key: Hashable) -> tuple[TokenRecord, ...]:
        prompt = self._prompts.get(key)
        return () if prompt is None else prompt.records

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._prompts.pop(key, None)
            self._drawing.pop(key, None)

    def close(self) -> None:
        with self._lock:
            self._prompts.clear()
        self.client.close()

    # -- the server's sampler (Feature.SERVER_SAMPLING) -----------------------------
    def draw(self, key: Hashable, settings: SamplingSettings, prompt_len: int,
             candidates: Sequence[int] = ()) -> ServerDraw:
        with self._lock:
            prompt = self._prompts.get(key)
            if prompt is None:
                raise BackendError("Sampling needs the prompt on the server first.")
            prompt_len = int(prompt_len)
            self._drawing[key] = (settings, prompt_len)
            memo = (prompt.ids, settings, prompt_len)
            got = self._draws.get(memo)
            if got is None or not self._covers(got, candidates):
                got = self.draw_request(prompt.ids, settings, prompt_len, tuple(candidates))[1]
                self._keep_draw(memo, got)
            return got

    def _covers(self, got: ServerDraw, candidates: Sequence[int]) -> bool:
        # Not a bound: p_final lists every token it keeps, so the others are 0.
        return (got.p_final is None or not got.entropy_final_bound
                or all(int(t) in got.p_final for t in candidates))

    def _keep_draw(self, memo, got: ServerDraw) -> None:
        self._draws.put(memo, got)
        if got.ends:
            self._eos = self._eos | {got.token_id}

    def _append_request(self, key: Hashable, ids: tuple[int, ...]):
        """The distribution after ids, for an append; when the prompt samples on the server
        (and the server's top-K does not depend on the sampler), the same request draws."""
        drawing = self._drawing.get(key)
        if drawing is None or not self.draws_with_table(drawing[0]):
            return self.next_distribution(ids)
        settings, prompt_len = drawing
        nxt, got = self.draw_request(ids, settings, prompt_len, (), with_next=True)
        self._keep_draw((ids, settings, prompt_len), got)
        return nxt

    def sample(self, ids: Sequence[int], settings: SamplingSettings, seed: int | None = None) -> int:
        """The token the server's sampler draws after ids (all of them the prompt's)."""
        if seed is not None:
            settings = settings.with_changes(seed=seed)
        ids = tuple(int(i) for i in ids)
        self._check_ids(ids)
        return self.draw_request(ids, settings, len(ids), ())[1].token_id

    def sampling_defaults(self) -> SamplingSettings:
        return SamplingSettings()

    @property
    def eos_ids(self) -> frozenset[int]:
        return self._eos

    def _can_append(self, base: _Prompt, keep: int, token_id: int) -> bool:
        """The distribution after the kept prefix already knows the new token's log-prob
        and rank: the append is then one request, for the next distribution only."""
        last = base.after[keep - 1]
        return last is not None and last.logprob_of(token_id) is not None

    def _closest(self, prompt: _Prompt | None, ids: tuple[int, ...]) -> _Prompt | None:
        """The stored prompt sharing the longest prefix with ids (a fork borrows its
        parent's numbers)."""
        best, best_len = longest_shared(((p, p.ids) for p in self._prompts.values()), ids,
                                        prompt, common_prefix(prompt.ids, ids) if prompt else 0)
        return best if best_len > 0 else None

    def _make(self, ids, before, after, reuse: tuple[TokenRecord, ...] = (), *,
              tops_from: int | None = None) -> _Prompt:
        """Records for ids; `reuse` are records of a shared prefix that stay as they are
        (all but the old last one, whose table moves on). A freshly loaded prompt gets
        the top-K candidates on its last record only (no text lookups for the others);
        records built after that keep theirs, so a generation's every step keeps the
        distribution it was chosen from (trace's report and JSONL read them). tops_from:
        the records from that position on get their candidates too."""
        n = len(reuse)
        if tops_from is None:
            tops_from = 0 if reuse else len(ids) - 1 - n
        wanted = [t for d in after[n + max(tops_from, 0):] if d is not None for t, _ in d.top[: self.top_k]]
        self._texts_for(list(ids[n:]) + wanted)
        records = reuse + build_records(ids[n:], before[n:], after[n:], vocab_size=self.vocab_size,
                                        limit=self.top_k, token_text=self.token_text,
                                        tops_from=tops_from)
        return _Prompt(ids, list(before), list(after), records)

    def _replace(self, key: Hashable, before, after) -> tuple[TokenRecord, ...]:
        with self._lock:
            prompt = self._prompts[key]
            new = self._make(prompt.ids, before, after)
            self._prompts[key] = new
            return new.records

    def _check_ids(self, ids: tuple[int, ...]) -> None:
        if not ids:
            raise BackendError("A prompt needs at least one token.")
        bad = next((t for t in ids if not 0 <= t < self.vocab_size), None)
        if bad is not None:
            raise BackendError(
                f"Token id {bad} is outside the vocabulary of {self.model} on the server at "
                f"{self.client.where} ({self.vocab_size} tokens).")
        if why := context_error(len(ids), self._info.max_context, self.model):
            raise PromptTooLongError(why)

    def position_tops(self, ids, *, progress=None, cancelled=None) -> list[dict[int, float]]:
        """One load request: each position's top-K and the next token's exact log-prob."""
        if not self.capabilities.prompt_logprobs:
            return super().position_tops(ids, progress=progress, cancelled=cancelled)
        ids = tuple(int(i) for i in ids)
        self._check_ids(ids)
        before, after = self.load(ids, progress=progress, cancelled=cancelled)
        rows = []
        for i, dist in enumerate(after):
            row = {t: lp for t, lp in dist.top}
            if i + 1 < len(ids) and (lp := before[i + 1].logprob_of(ids[i + 1])) is not None:
                row[ids[i + 1]] = lp
            rows.append(row)
        return rows

    # -- server calls (subclasses) ----------------------------------------------------------
    def next_distribution(self, ids: tuple[int, ...]) -> Distribution:
        raise NotImplementedError

    def load(self, ids: tuple[int, ...], *, progress: Progress | None,
             cancelled: IsCancelled | None) -> tuple[list, list]:
        raise NotImplementedError

    def draws_with_table(self, settings: SamplingSettings) -> bool:
        """Whether a request drawing with these settings returns the same top-K as a
        greedy one (raw log-probs), so an append can draw the next token in its request."""
        return True

    def draw_request(self, ids: tuple[int, ...], settings: SamplingSettings, prompt_len: int,
                     candidates: tuple[int, ...], *, with_next: bool = False
                     ) -> tuple[Distribution | None, ServerDraw]:
        """One request: the server's sampler draws the token after ids; with_next: the
        table's distribution after ids too (else None)."""
        raise NotImplementedError

    def encode_plain(self, text: str) -> list[int]:
        raise NotImplementedError
