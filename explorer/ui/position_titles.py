"""The table's titles at the position cursor (issue 23): which token, its rank and
probabilities under the distribution before it, and that distribution's entropy."""

from __future__ import annotations

from explorer.session.positions import PositionTable


def position_titles(position: PositionTable) -> tuple[str, str]:
    """(title, subtitle) of the table showing the distribution before an earlier token."""
    token = position.token
    final = "" if position.token_p_final is None else f", p_final {position.token_p_final:.2%}"
    where = "" if position.token_in_top else " (below the top)"
    title = (f"before {position.label} · {token.text!r} rank {token.rank}{where}: p_base "
             f"{position.p_base:.2%}{final} · entropy p_base {token.entropy_norm:.2f} H/ln V "
             f"({token.entropy:.2f} nats)")
    sampler = position.sampler
    if sampler is not None and sampler.entropy_final is not None:
        title += f" · p_final {sampler.entropy_final_norm:.2f} H/ln V ({sampler.entropy_final:.2f} nats)"
    subtitle = "→ branches here · ] forward · [ back"
    if sampler is not None:
        subtitle = f"sampler: {sampler.line} · {subtitle}"
    return title, subtitle
