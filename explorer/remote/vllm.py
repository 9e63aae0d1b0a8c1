"""vLLM's OpenAI-compatible server.

- Text: /tokenize and /detokenize (the server's own tokenizer); prompts go as token ids.
- A whole prompt: one /v1/completions request with `prompt_logprobs` (each prompt token's
  exact log-prob and rank, and the top-K of every position) and `logprobs` (the top-K
  after the last position).
- An append: `max_tokens: 1, logprobs: K` on the new ids; automatic prefix caching makes
  that one decode step on the server.
- K is capped by the server (`--max-logprobs`, 20 by default); we learn the cap and the
  vocabulary size from the server's own answer to `logprobs: -1`.
- Sampling: the server's sampler with our settings (explorer.remote.drawing). A server
  started with `--logprobs-mode processed_logprobs` reports the log-probs its sampler
  draws from (masked tokens as -9999): those are p_final. We probe for it at connect; then
  the table's requests stay greedy (whose processed log-probs are the raw ones) and a draw
  is a request of its own.
- Tracked tokens at every position: `logprob_token_ids` on every prefix of the prompt, a
  list of prompts per request (explorer.remote.tracking). vLLM's one-request variant
  (`prompt_logprob_token_ids`) needs its Model Runner V2, which needs a GPU.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
from functools import cached_property
from collections.abc import Sequence

from explorer.backend.errors import BackendError, Cancelled
from explorer.backend.sampling import ServerDraw
from explorer.backend.types import TrackedSeries
from explorer.remote.base import RemoteBackend
from explorer.remote.chat import vllm_chat_ids
from explorer.remote.client import RemoteError, ServerClient, check_token, field, finite, whole
from explorer.remote.checks import is_int, text_field
from explorer.remote.drawing import vllm_fields
from explorer.remote.numbers import Distribution, entropy, make_distribution
from explorer.remote.tracking import PrefixLogprobs, StepRows, ranks_from_rows

UNCAPPED_K = 256  # entries asked for the entropy bound from a server with no --max-logprobs cap
MASKED = -9990.0  # vLLM reports a token its sampler excluded as -9999
_TOKEN_KEY = re.compile(r"(?:token_id:)?([0-9]+)")  # a log-prob's key: "token_id:N" or "N"
_TOO_MANY = re.compile(r"logprobs of (\d+), which is greater than max allowed: (-?\d+)")


class VLLMBackend(RemoteBackend):
    kind = "vLLM"

    @classmethod
    def connect(cls, client: ServerClient, model: str, max_model_len: int | None, *,
                tokens_to_show: int) -> "VLLMBackend":
        if max_model_len is not None:
            max_model_len = whole(max_model_len, client.where, "a max_model_len", least=2)
        vocab, cap = _probe_vocab(client, model)
        specials = frozenset(_tokenize(client, model, "", add_special=True))
        backend = cls(client, model, vocab_size=vocab,
                      max_context=None if max_model_len is None else max_model_len - 1,
                      tokens_to_show=tokens_to_show, special_ids=specials, max_top_k=cap)
        backend.processed = _probe_processed(client, model)
        return backend

    processed = False  # the server reports processed log-probs (p_final)

    @property
    def capabilities(self):
        return replace(super().capabilities, tracked_tokens=True, server_constraints=True)

    def draws_with_table(self, settings) -> bool:
        # Processed log-probs are the raw ones only when the sampler changes nothing
        # before its argmax (greedy, no penalties).
        untouched = (settings.greedy and settings.repetition_penalty == 1
                     and settings.presence_penalty == 0 and settings.frequency_penalty == 0)
        return not self.processed or untouched

    def encode_plain(self, text: str) -> list[int]:
        return [check_token(t, self.vocab_size, self.client.where)
                for t in _tokenize(self.client, self.model, text, add_special=False)]

    # -- text -----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return [check_token(t, self.vocab_size, self.client.where)
                for t in _tokenize(self.client, self.model, text, add_special=True)]

    def decode(self, ids: Sequence[int]) -> str:
        data = self.client.post("/detokenize", {"model": self.model, "tokens": [int(i) for i in ids]})
        return text_field(data, "prompt", where=self.client.where, what="/detokenize")

    def chat_ids(self, messages) -> list[int]:
        """The served model's chat template over messages, rendered by the server
        (explorer.remote.chat). Raises ChatTemplateError (one sentence)."""
        return vllm_chat_ids(self, messages)

    # -- numbers --------------------------------------------------------------------------
    def _complete(self, ids, **extra) -> dict:
        body = {"model": self.model, "prompt": list(ids), "max_tokens": 1, "temperature": 0,
                "logprobs": self.bound_k, "return_tokens_as_token_ids": True, **extra}
        data = self.client.post("/v1/completions", body)
        choice = field(data, "choices", 0, where=self.client.where, what="/v1/completions")
        if not isinstance(choice, dict):
            raise RemoteError(f"The server at {self.client.where} sent a choice that is not an object.")
        return choice

    def next_distribution(self, ids: tuple[int, ...]) -> Distribution:
        return self._next_from(self._complete(ids))

    def _next_from(self, choice: dict) -> Distribution:
        # A sampled token outside the top-K comes as an extra entry: the table and the
        # entropy bound (which assumes the listed tokens are the K most likely) leave it out.
        pairs = sorted(self._top_pairs(choice), key=lambda p: (-p[1], p[0]))[: self.bound_k]
        return make_distribution(pairs, self.vocab_size, keep=self.top_k)

    @property
    def bound_k(self) -> int:
        """How many entries we ask for: as many as the server allows (its --max-logprobs),
        so the entropy's lower bound is as tight as it can be; the table and the files
        keep the top_k the user asked for. A server without a cap is asked for
        UNCAPPED_K (the whole vocabulary per step would be a large answer)."""
        return max(self.top_k, self._max_top_k if self._max_top_k is not None else UNCAPPED_K)

    def _top_pairs(self, choice: dict) -> list[tuple[int, float]]:
        top = field(choice, "logprobs", "top_logprobs", 0, where=self.client.where,
                    what="/v1/completions")
        if not isinstance(top, dict):
            raise RemoteError(f"The server at {self.client.where} sent top_logprobs that are not a mapping.")
        return [(self._id_of(k), finite(v, self.client.where)) for k, v in top.items()]

    def draw_request(self, ids, settings, prompt_len, candidates, *, with_next=False):
        extra = vllm_fields(settings, ids, prompt_len)
        if self.processed and not settings.greedy:
            # All the server lists, for p_final and its entropy; the table's own request
            # stays greedy (with_next is not asked with these settings in this mode).
            extra["logprobs"] = self._max_top_k or self.top_k
        choice = self._complete(ids, return_token_ids=True, **extra)
        token = self._chosen(choice)
        ends = choice.get("finish_reason") == "stop" and choice.get("stop_reason") is None
        nxt = self._next_from(choice) if with_next else None
        if not self.processed:
            return nxt, ServerDraw(settings, prompt_len, token, ends)
        if settings.greedy:  # all of p_final on the one token greedy picks
            return nxt, ServerDraw(settings, prompt_len, token, ends,
                                   {int(t): float(t == token) for t in (*candidates, token)}, 0.0, False)
        listed = dict(self._top_pairs(choice))
        missing = [int(t) for t in candidates if int(t) not in listed]
        kept_all = any(lp <= MASKED for lp in listed.values())  # fewer kept than listed
        if missing and not kept_all:  # kept tokens below the list: ask for them by id
            asked = self._complete(ids, **{**extra, "logprobs": len(missing),
                                           "logprob_token_ids": missing})
            listed.update(self._top_pairs(asked))
        p_final = {t: (0.0 if lp <= MASKED else math.exp(lp)) for t, lp in listed.items()}
        p_final.update({t: 0.0 for t in missing if t not in p_final})  # below a full mask
        # The K asked for (a sampled token below them comes as an extra entry, which the
        # bound must not take for the K-th largest).
        ordered = sorted(self._top_pairs(choice), key=lambda p: (-p[1], p[0]))[: extra["logprobs"]]
        h, bound = entropy(ordered, complete=kept_all)
        return nxt, ServerDraw(settings, prompt_len, token, ends, p_final, h, bound)

    def _chosen(self, choice: dict) -> int:
        token_ids = field(choice, "token_ids", where=self.client.where, what="/v1/completions")
        if not isinstance(token_ids, list) or not token_ids:
            raise RemoteError(f"The server at {self.client.where} chose no token.")
        return check_token(token_ids[0], self.vocab_size, self.client.where)

    def load(self, ids, *, progress, cancelled):
        choice = self._complete(ids, prompt_logprobs=self.bound_k)
        rows = field(choice, "prompt_logprobs", where=self.client.where, what="/v1/completions")
        if not isinstance(rows, list) or len(rows) != len(ids):
            raise RemoteError(f"The server at {self.client.where} sent prompt log-probs for "
                              f"{len(rows) if isinstance(rows, list) else 'no'} positions, not {len(ids)}.")
        if cancelled is not None and cancelled():
            raise Cancelled("The request was cancelled.")
        before: list[Distribution | None] = [None]
        for i in range(1, len(ids)):
            before.append(self._prompt_row(rows[i], ids[i]))
        after = before[1:] + [self._next_from(choice)]
        if progress is not None:
            progress(1, 1)
        return before, after

    def _prompt_row(self, row, actual: int) -> Distribution:
        if not isinstance(row, dict):
            raise RemoteError(f"The server at {self.client.where} sent a prompt log-prob row that is not a mapping.")
        top, known = [], []
        for key, entry in row.items():
            tid = self._id_of(key)
            lp = finite(field(entry, "logprob", where=self.client.where, what="prompt_logprobs"), self.client.where)
            rank = whole(field(entry, "rank", where=self.client.where, what="prompt_logprobs"),
                         self.client.where, "a rank", least=1)
            if rank <= self.bound_k:
                top.append((tid, lp))
            if tid == actual:
                known.append((tid, lp, rank))
        return make_distribution(top, self.vocab_size, keep=self.top_k, known=known)

    def tracked_next(self, ids: Sequence[int], token_ids: Sequence[int]) -> dict[int, float]:
        """Exact log p of chosen tokens after ids, at any rank: one request with vLLM's
        `logprob_token_ids` (the position after the prompt only)."""
        wanted = [check_token(t, self.vocab_size, self.client.where) for t in token_ids]
        return self._after_prefixes([tuple(int(i) for i in ids)], wanted)[0]

    def tracked(self, key, token_ids, *, progress=None, cancelled=None) -> TrackedSeries:
        """p_base of chosen tokens after every position of prompt `key` (synced), exact at
        any rank; ranks exact where the server's top-K says, else a lower bound
        (explorer.remote.tracking). Requests only for positions not fetched before."""
        tokens = tuple(int(t) for t in token_ids)
        bad = next((t for t in tokens if not 0 <= t < self.vocab_size), None)
        if bad is not None:
            raise BackendError(f"Token id {bad} is outside the vocabulary of {self.model} "
                               f"({self.vocab_size} tokens).")
        with self._lock:
            prompt = self._prompts.get(key)
        if prompt is None:
            raise BackendError("Tracking tokens needs the prompt on the server first.")
        logprobs = self._tracking.logprobs(prompt.ids, tokens, progress=progress, cancelled=cancelled)
        ranks, bound = ranks_from_rows(prompt.after, tokens, logprobs)
        return TrackedSeries(tokens, logprobs, ranks, None, rank_bound=bound)

    @cached_property
    def _tracking(self) -> PrefixLogprobs:
        return PrefixLogprobs(self._steps.fetch)

    @cached_property
    def _steps(self) -> StepRows:
        return StepRows(self._after_prefixes)

    def follow(self, key, token_ids) -> None:
        """Fetch these tokens' log-probs beside every later append of prompt `key`
        (explorer.remote.tracking.StepRows: vLLM answers one request with the top-K or the
        given ids, not both)."""
        with self._lock:
            self._following[key] = [check_token(t, self.vocab_size, self.client.where) for t in token_ids]

    @cached_property
    def _following(self) -> dict:
        return {}

    def _append_request(self, key, ids):
        wanted = self._following.get(key)
        if not wanted:
            return super()._append_request(key, ids)
        return self._steps.beside(ids, wanted, lambda: super(VLLMBackend, self)._append_request(key, ids))

    def forget(self, key) -> None:
        super().forget(key)
        with self._lock:
            self._following.pop(key, None)

    def close(self) -> None:
        if "_steps" in self.__dict__:  # its thread ends with the backend
            self._steps.close()
        super().close()

    def _after_prefixes(self, prefixes: list[tuple[int, ...]], wanted: list[int]) -> list[dict[int, float]]:
        """Per prompt, {token: log p after its last position}: one request for them all (the
        completions endpoint takes a list of prompts; `logprob_token_ids` takes precedence
        over the top-K, so only the wanted tokens and the greedy one come back)."""
        body = {"model": self.model, "prompt": [list(p) for p in prefixes], "max_tokens": 1,
                "temperature": 0, "logprobs": len(wanted), "logprob_token_ids": wanted,
                "return_tokens_as_token_ids": True}
        choices = field(self.client.post("/v1/completions", body), "choices",
                        where=self.client.where, what="/v1/completions")
        if not isinstance(choices, list) or len(choices) != len(prefixes):
            raise RemoteError(f"The server at {self.client.where} answered {len(prefixes)} prompts with "
                              f"{len(choices) if isinstance(choices, list) else 'no'} choices.")
        out: list[dict[int, float] | None] = [None] * len(prefixes)
        for choice in choices:
            index = field(choice, "index", where=self.client.where, what="/v1/completions")
            if not is_int(index) or not 0 <= index < len(prefixes) or out[index] is not None:
                raise RemoteError(f"The server at {self.client.where} sent a choice with index {index!r}.")
            got = dict(self._top_pairs(choice))
            missing = [t for t in wanted if t not in got]
            if missing:  # e.g. a vLLM older than logprob_token_ids, which ignores the field
                raise RemoteError(f"The server at {self.client.where} sent no log-prob for token "
                                  f"{missing[0]} (tracked tokens need vLLM's logprob_token_ids).")
            out[index] = {t: got[t] for t in wanted}
        return out

    def load_whole(self, key, ids: Sequence[int], tables_from: int) -> None:
        """Load ids in one request with the tables of positions tables_from.., not only the
        last's. A completion known in advance (a constrained one that trace replays) then
        costs no request per step: each step's sync is a pop of this prompt."""
        ids = tuple(int(i) for i in ids)
        self._check_ids(ids)
        with self._lock:
            before, after = self.load(ids, progress=None, cancelled=None)
            self._prompts[key] = self._make(ids, before, after, tops_from=int(tables_from))

    def constrained_completion(self, ids: Sequence[int], spec, max_tokens: int, settings=None):
        """The completion under a constraint, greedy or drawn by the server's sampler with
        `settings`, from vLLM's structured outputs (explorer.remote.structured)."""
        from explorer.remote.structured import constrained_completion

        return constrained_completion(self, ids, spec, max_tokens, settings)

    def _id_of(self, key) -> int:
        # Keys are strings: "token_id:N" (return_tokens_as_token_ids) or "N" (prompt rows).
        match = _TOKEN_KEY.fullmatch(key) if isinstance(key, str) else None
        if match is None:
            raise RemoteError(f"The server at {self.client.where} sent a log-prob for {key!r}, "
                              "which does not name a token id.")
        return check_token(int(match.group(1)), self.vocab_size, self.client.where)


def _tokenize(client: ServerClient, model: str, text: str, *, add_special: bool) -> list[int]:
    data = client.post("/tokenize", {"model": model, "prompt": text, "add_special_tokens": add_special})
    tokens = field(data, "tokens", where=client.where, what="/tokenize")
    if not isinstance(tokens, list):
        raise RemoteError(f"The server at {client.where} sent tokens that are not a list.")
    return [whole(t, client.where, "a token id") for t in tokens]


def _probe_processed(client: ServerClient, model: str) -> bool:
    """Whether the server reports processed log-probs: with top_k 1 every other listed
    token is masked (-9999) in that mode, and has its raw log-prob otherwise."""
    body = {"model": model, "prompt": [0], "max_tokens": 1, "temperature": 1.0, "top_k": 1,
            "seed": 0, "logprobs": 2}
    top = field(client.post("/v1/completions", body), "choices", 0, "logprobs", "top_logprobs", 0,
                where=client.where, what="/v1/completions")
    return isinstance(top, dict) and any(finite(v, client.where) <= MASKED for v in top.values())


def _probe_vocab(client: ServerClient, model: str) -> tuple[int, int | None]:
    """(vocabulary size, the server's cap on logprobs) from asking for all of them."""
    body = {"model": model, "prompt": [0], "max_tokens": 1, "temperature": 0, "logprobs": -1,
            "return_tokens_as_token_ids": True}
    try:
        data = client.post("/v1/completions", body)
    except RemoteError as exc:
        match = _TOO_MANY.search(str(exc))
        if not match:
            raise
        return int(match.group(1)), int(match.group(2))
    top = field(data, "choices", 0, "logprobs", "top_logprobs", 0, where=client.where,
                what="/v1/completions")
    if not isinstance(top, dict) or not top:
        raise RemoteError(f"The server at {client.where} sent top_logprobs that are not a mapping.")
    return len(top), None
