"""llama.cpp's llama-server.

- Text: /tokenize (parse_special, with pieces) and /detokenize; prompts go as token ids.
- Next token: /completion with the ids, `n_probs: K` and `cache_prompt: true`, so an
  append is one decode step on the server. Every candidate comes with its raw bytes.
- llama-server has no prompt log-probs. A prompt's per-position values are fetched only
  when a colour layer asks for them (`prompt_values`): one request per position, in
  order so the prompt cache makes each one a single decode, with progress, cancellable,
  and cached by prefix. For vocabularies up to FULL_VOCAB_LIMIT each request asks for all
  V probabilities, so those values (entropy included) are exact; above it, the top-K.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from explorer.backend.errors import Cancelled
from explorer.backend.protocol import Capabilities
from explorer.backend.token_text import text_of_bytes
from explorer.backend.sampling import ServerDraw
from explorer.lru import LRU
from explorer.remote.base import SPECIAL_TEXT, RemoteBackend
from explorer.remote.chat import llama_chat_ids
from explorer.remote.client import RemoteError, ServerClient, check_token, field, finite, whole
from explorer.remote.checks import is_int, text_field
from explorer.remote.drawing import llama_fields
from explorer.remote.numbers import Distribution, make_distribution

FULL_VOCAB_LIMIT = 32768
PREFIX_ENTRIES = 4096  # per-position distributions kept (each is reduced to the top-K)

# Why pinning a token is refused here (the app and trace --track say it).
TRACKED_MISSING = ("Tracked tokens need a token's log-prob at any rank, which llama.cpp's "
                   "/completion does not give (n_probs lists only its most likely tokens).")


class LlamaCppBackend(RemoteBackend):
    kind = "llama.cpp"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._by_prefix: LRU[tuple[int, ...], Distribution] = LRU(PREFIX_ENTRIES)
        self.last_timings: dict | None = None  # the server's own timings of the last request

    @classmethod
    def connect(cls, client: ServerClient, model: str, meta: dict, *,
                tokens_to_show: int) -> "LlamaCppBackend":
        vocab = meta.get("n_vocab")
        if not is_int(vocab) or vocab <= 0:
            raise RemoteError(f"The server at {client.where} did not say its vocabulary size (meta.n_vocab).")
        # The slot's context (-c), not the model's training length, bounds a prompt.
        n_ctx = meta.get("n_ctx") or meta.get("n_ctx_train")
        if n_ctx:
            n_ctx = whole(n_ctx, client.where, "a context size (meta.n_ctx)", least=2)
        return cls(client, model, vocab_size=vocab,
                   max_context=None if not n_ctx else int(n_ctx) - 1,
                   tokens_to_show=tokens_to_show, special_ids=frozenset(), max_top_k=None)

    @property
    def capabilities(self) -> Capabilities:
        base = super().capabilities
        return Capabilities(exact_entropy=False, influence=False, lens=False,
                            prompt_logprobs=False, tracked_tokens=False, sampling=False,
                            server_sampling=True, chat=True, max_top_k=None, kind=base.kind,
                            reasons=(*base.reasons, ("tracked", TRACKED_MISSING)))

    # -- text -----------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        return self._tokenize(text, add_special=True)

    def encode_plain(self, text: str) -> list[int]:
        return self._tokenize(text, add_special=False)

    def _tokenize(self, text: str, *, add_special: bool) -> list[int]:
        data = self.client.post("/tokenize", {"content": text, "add_special": add_special,
                                              "parse_special": True, "with_pieces": True})
        out = []
        tokens = field(data, "tokens", where=self.client.where, what="/tokenize")
        if not isinstance(tokens, list):
            raise RemoteError(f"The server at {self.client.where} sent tokens that are not a list.")
        for item in tokens:
            if isinstance(item, dict):
                tid = check_token(item.get("id"), self.vocab_size, self.client.where)
                piece = item.get("piece")
                if _byte_list(piece):  # not valid UTF-8 alone: the server sends bytes
                    raw = bytes(piece)
                    self.remember_text(tid, text_of_bytes(raw), raw)
            else:
                tid = check_token(item, self.vocab_size, self.client.where)
            out.append(tid)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        data = self.client.post("/detokenize", {"tokens": [int(i) for i in ids]})
        return text_field(data, "content", where=self.client.where, what="/detokenize")

    def chat_ids(self, messages) -> list[int]:
        """The served model's chat template over messages, rendered by the server
        (explorer.remote.chat). Raises ChatTemplateError (one sentence)."""
        return llama_chat_ids(self, messages)

    def _learn_from_probs(self, entries) -> None:
        """Candidates carry their raw bytes: the exact text, partial characters included."""
        for entry in entries:
            tid = entry.get("id")
            raw = entry.get("bytes")
            if is_int(tid) and _byte_list(raw) and tid not in self._text:
                data = bytes(raw)
                text = entry.get("token", "")
                if isinstance(text, str) and SPECIAL_TEXT.fullmatch(text):
                    self._special = self._special | {tid}
                    self.remember_text(tid, text, None)
                else:
                    self.remember_text(tid, text_of_bytes(data), data)

    # -- numbers --------------------------------------------------------------------------
    def _completion(self, ids, n_probs: int, **extra) -> dict:
        body = {"prompt": list(ids), "n_predict": 1, "n_probs": int(n_probs),
                "cache_prompt": True, "temperature": 0, "return_tokens": True, **extra}
        data = self.client.post("/completion", body)
        if not isinstance(data, dict):
            raise RemoteError(f"The server at {self.client.where} answered /completion with something that is not an object.")
        self.last_timings = data.get("timings")
        return data

    def _distribution(self, data: dict, keep: int, track=()) -> Distribution:
        probs = field(data, "completion_probabilities", 0, "top_logprobs", where=self.client.where,
                      what="/completion")
        if not isinstance(probs, list) or not probs:
            raise RemoteError(f"The server at {self.client.where} sent no top log-probs.")
        self._learn_from_probs(probs[:keep])
        pairs = []
        for entry in probs:
            tid = check_token(field(entry, "id", where=self.client.where, what="top_logprobs"),
                              self.vocab_size, self.client.where)
            lp = finite(field(entry, "logprob", where=self.client.where, what="top_logprobs"),
                        self.client.where)
            pairs.append((tid, max(lp, -math.inf)))
        return make_distribution(pairs, self.vocab_size, keep=keep, track=track)

    def next_distribution(self, ids: tuple[int, ...]) -> Distribution:
        return self._distribution(self._completion(ids, self.top_k), self.top_k)

    def load(self, ids, *, progress, cancelled):
        # Only the last position: the table. Earlier positions wait for prompt_values().
        before: list[Distribution | None] = [None] + [self._by_prefix.peek(ids[:i]) for i in range(1, len(ids))]
        after = before[1:] + [self.next_distribution(ids)]
        if progress is not None:
            progress(1, 1)
        return before, after

    def prompt_values(self, key, *, progress=None, cancelled=None):
        """Records of prompt `key` with every position's log-prob, rank and entropy, one
        request per position not seen before. Raises Cancelled between requests."""
        with self._lock:
            prompt = self._prompts[key]
            ids = prompt.ids
            n_probs = self.vocab_size if self.vocab_size <= FULL_VOCAB_LIMIT else self.top_k
            missing = [i for i in range(1, len(ids)) if ids[:i] not in self._by_prefix]
            for done, i in enumerate(missing):
                if cancelled is not None and cancelled():
                    raise Cancelled("Fetching per-token values was cancelled.")
                if progress is not None:
                    progress(done, len(missing))
                data = self._completion(ids[:i], n_probs)
                self._remember(ids[:i], self._distribution(data, self.top_k, track=(ids[i],)))
            if progress is not None and missing:
                progress(len(missing), len(missing))
            before = [None] + [self._by_prefix.peek(ids[:i]) for i in range(1, len(ids))]
            # The last position keeps the table's distribution (asked with K, not all V).
            after = before[1:] + [prompt.after[-1]]
            return self._replace(key, before, after)

    def _remember(self, prefix: tuple[int, ...], dist: Distribution) -> None:
        self._by_prefix.put(prefix, dist)

    def draw_request(self, ids, settings, prompt_len, candidates, *, with_next=False):
        """llama-server's sampler with our settings; its n_probs are the raw model's
        (post_sampling_probs off), so the same request serves the table."""
        data = self._completion(ids, self.top_k if with_next else 1,
                                **llama_fields(settings, ids, prompt_len))
        tokens = data.get("tokens")
        if not isinstance(tokens, list) or not tokens:
            raise RemoteError(f"The server at {self.client.where} chose no token.")
        token = check_token(tokens[0], self.vocab_size, self.client.where)
        nxt = self._distribution(data, self.top_k) if with_next else None
        return nxt, ServerDraw(settings, prompt_len, token, data.get("stop_type") == "eos")


def _byte_list(value) -> bool:
    """A list of byte values as llama-server sends a token's bytes (anything else is not
    used: the text then comes from /detokenize)."""
    return isinstance(value, list) and all(is_int(b) and 0 <= b < 256 for b in value)
