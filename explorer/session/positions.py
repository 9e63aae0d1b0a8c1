"""The position cursor's table (issue 23): the distribution the model had *before* an
earlier token, and the actual token's place in it. No Textual, no model work.

Everything but p_final is in the records already: the record of token i-1 holds the top of
the distribution after it (the table), and the record of token i holds how that
distribution scored token i (its log-prob, exact rank over all V, entropy). p_final under
the session's sampler needs the whole raw row (the PositionRow view: kept, or one decode
step); it is computed exactly as at the live end, with the penalties counting the tokens
appended before that position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from explorer.backend.types import Candidate, TokenRecord
from explorer.session.sampler import Shown


@dataclass(frozen=True)
class PositionTable:
    index: int  # 0-based: the token the cursor is on (1 <= index < n)
    n: int  # tokens in the prompt
    token: TokenRecord  # the token there: its logprob, rank and entropy under p_{index-1}
    top: tuple[Candidate, ...]  # the top of p_{index-1}, most probable first
    # The sampler's numbers for `top` (p_final per row) and for the token; None while the
    # row is fetched, or without a sampler.
    sampler: Shown | None = None
    token_p_final: float | None = None  # (also in sampler.p_final, at token_row)

    @property
    def label(self) -> str:
        """The header's words: 1-based, as a person counts tokens."""
        return f"position {self.index + 1}/{self.n}"

    @property
    def token_in_top(self) -> bool:
        return any(c.token_id == self.token.token_id for c in self.top)

    @property
    def rows(self) -> tuple[Candidate, ...]:
        """The table's rows: the top, then the token itself when it is not among them (so
        the table cursor can always rest on it: → there, attribution of it)."""
        return position_rows(self.top, self.token)

    @property
    def token_row(self) -> int:
        """The row of the actual token in `rows`."""
        return next(i for i, c in enumerate(self.rows) if c.token_id == self.token.token_id)

    @property
    def p_base(self) -> float | None:
        return None if self.token.logprob is None else math.exp(self.token.logprob)


def position_rows(top: Sequence[Candidate], token: TokenRecord) -> tuple[Candidate, ...]:
    if any(c.token_id == token.token_id for c in top) or token.logprob is None:
        return tuple(top)
    return tuple(top) + (Candidate(token.token_id, token.text, math.exp(token.logprob), token.logprob),)


def position_table(records: Sequence[TokenRecord], index: int, *, row=None, sampler=None,
                   ids: Sequence[int] = (), prompt_len: int = 0) -> PositionTable:
    """The table before token `index` of a prompt whose records are `records`. With the
    raw row before it and a Sampler, p_final of the listed rows and of the token (the
    penalties count ids[prompt_len:index], the tokens appended before it)."""
    if not 1 <= index < len(records):
        raise ValueError(f"no distribution before token {index} of {len(records)}")
    token, top = records[index], records[index - 1].top
    if row is None or sampler is None:
        return PositionTable(index, len(records), token, top)
    table = PositionTable(index, len(records), token, top)
    listed = tuple(c.token_id for c in table.rows)
    shown = sampler.shown(row, tuple(ids[:index]), min(prompt_len, index), listed)
    p_final = None if shown.p_final is None else shown.p_final[table.token_row]
    return replace(table, sampler=shown, token_p_final=p_final)
