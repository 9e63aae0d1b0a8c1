"""The sampler settings as a server's request fields, and what a server says it drew.

Both servers get the same treatment:
- the seed of the token at position n (n = the ids before it) is derived from
  (settings.seed, n), so one seed gives a reproducible run whose steps differ from each
  other, however they are reached (space, autoplay, pop and draw again);
- presence/frequency penalties follow our definition (OpenAI's formula over the tokens
  appended since the prompt's original ids). Every step is a fresh one-token request, so a
  server's own presence/frequency penalties would count nothing (vLLM: output tokens only)
  or the whole prompt (llama.cpp); we send them as a logit bias on the appended tokens
  instead and switch the server's own off. A server adds the bias before its repetition
  penalty, transformers after it: with both on, a penalised token's logit can differ.
- the repetition penalty covers the whole sequence, as transformers' does.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence

from explorer.sampling.settings import SamplingSettings

BIAS_LIMIT = 100.0  # vLLM refuses biases outside [-100, 100]; -100 already excludes a token
MEMO_ENTRIES = 512  # draws kept by (ids, settings, prompt_len): a pop and redraw costs nothing


def position_seed(seed: int, position: int) -> int:
    """The server seed for the token at `position`, from the session's seed (31 bits, which
    both servers accept)."""
    digest = hashlib.blake2b(f"{int(seed)}:{int(position)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % 2**31


def appended_bias(ids: Sequence[int], prompt_len: int, presence: float, frequency: float) -> dict[int, float]:
    """Our presence/frequency penalties as a logit bias: -(count * frequency + presence) for
    every token appended after the prompt's original ids."""
    if presence == 0 and frequency == 0:
        return {}
    counts = Counter(int(t) for t in list(ids)[prompt_len:])
    return {t: max(-BIAS_LIMIT, -(c * frequency + presence)) for t, c in counts.items()}


def _seeded(settings: SamplingSettings, n_ids: int) -> dict:
    return {} if settings.seed is None else {"seed": position_seed(settings.seed, n_ids)}


def vllm_fields(settings: SamplingSettings, ids: Sequence[int], prompt_len: int) -> dict:
    """SamplingSettings as vLLM's /v1/completions fields for the token after ids."""
    s = settings
    body = {"temperature": float(s.temperature), "top_p": float(s.top_p),
            "top_k": int(s.top_k) if s.top_k > 0 else -1, "min_p": float(s.min_p),
            "repetition_penalty": float(s.repetition_penalty),
            "presence_penalty": 0.0, "frequency_penalty": 0.0, **_seeded(s, len(ids))}
    bias = appended_bias(ids, prompt_len, s.presence_penalty, s.frequency_penalty)
    if bias:
        body["logit_bias"] = {str(t): b for t, b in bias.items()}
    return body


# transformers' order (explorer.sampling.pipeline); llama.cpp's default runs temperature last.
LLAMA_SAMPLERS = ["penalties", "temperature", "top_k", "top_p", "min_p"]


def llama_fields(settings: SamplingSettings, ids: Sequence[int], prompt_len: int) -> dict:
    """SamplingSettings as llama-server's /completion fields for the token after ids."""
    s = settings
    body = {"temperature": float(s.temperature), "top_k": int(s.top_k), "top_p": float(s.top_p),
            "min_p": float(s.min_p), "repeat_penalty": float(s.repetition_penalty),
            "repeat_last_n": len(ids), "presence_penalty": 0.0, "frequency_penalty": 0.0,
            "samplers": LLAMA_SAMPLERS, **_seeded(s, len(ids))}
    bias = appended_bias(ids, prompt_len, s.presence_penalty, s.frequency_penalty)
    if bias:
        body["logit_bias"] = [[t, b] for t, b in bias.items()]
    return body
