"""The one way to choose the next token: the app's `space` and autoplay (explorer.session
.explorer) and `trace` (explorer.core.trace_sampling) both call `choose_next`. No Textual.

Two sources: the session's Sampler on the backend's kept logits row (a seeded draw from
p_final, the constraint's mask applied), or a server's own sampler (its ServerDraw, which
names its end-of-sequence token when it draws one). Either way the result carries
logprob_final of the chosen token and of the candidates it was chosen from, so the app and
trace report the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from explorer.session.sampler import Sampler


class NoToken(Exception):
    """No token can be chosen here (the logits row or the server's draw is missing): one
    sentence why; `reason`, the same in a few words (autoplay's stop message)."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(text)
        self.reason = reason


@dataclass(frozen=True)
class Choice:
    token_id: int
    # logprob_final of the chosen token and of the candidates asked about (None: the
    # sampler excludes it); None when unknown (a server that does not report p_final).
    finals: dict[int, float | None] | None = None
    # With a constraint: whether it allowed each of those tokens (None: no constraint).
    valid: dict[int, bool] | None = None
    ends: bool = False  # a server says the token ends a generation


def _logprob(p: float) -> float | None:
    return math.log(p) if p > 0 else None


def choose_next(sampler: Sampler, ids: Sequence[int], prompt_len: int, *,
                row: np.ndarray | None = None, drawn=None, local: bool = True,
                candidates: Collection[int] = ()) -> Choice:
    """The token that follows `ids`. local: the session's sampler draws from `row` (the
    kept logits after ids); else `drawn` (explorer.backend.ServerDraw) is the server's draw
    with the sampler's settings. `candidates`: the tokens whose logprob_final is kept
    beside the chosen one's. Raises NoToken or ConstraintError (one sentence)."""
    if not local:
        if drawn is None or drawn.settings != sampler.settings:
            raise NoToken("The server's sampler gave no token; press space to ask again.",
                          "the server's sampler gave no token")
        finals = None
        if drawn.p_final is not None:
            finals = {t: _logprob(drawn.p_final.get(t, 0.0)) for t in {*candidates, drawn.token_id}}
        return Choice(int(drawn.token_id), finals, None, bool(drawn.ends))
    if row is None:
        raise NoToken("Sampling needs the model's logits, which could not be fetched.",
                      "the model's logits could not be fetched")
    d = sampler.distributions(row, ids, prompt_len)
    # = draw(p_final, seed, len(ids)); ConstraintError where the constraint gives no mask
    # (the text breaks it, or it is complete): nothing is drawn that it would forbid.
    token = sampler.pick(row, ids, prompt_len)
    wanted = {int(t) for t in candidates} | {token}
    finals = {t: _logprob(float(d.p_final[t])) for t in wanted}
    valid = None if d.valid is None else {t: bool(d.valid[t]) for t in wanted}
    return Choice(token, finals, valid)
