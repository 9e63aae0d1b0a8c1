"""Coloured tokens for Jupyter (`_repr_html_` of a trace and of a prompt's positions): each
token on the probability scale the app uses (red 0 -> blue 1, explorer/ui/colors.py), with
its numbers in the hover text. Small and self-contained: plain HTML with inline styles (a
notebook's sanitiser keeps those), no script, no import of the UI.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable

LOW, HIGH = (214, 39, 40), (31, 119, 220)  # the app's probability scale (explorer.ui.colors)
NEUTRAL = (235, 235, 235)  # a token nothing predicts, or a prompt token in a trace
VISIBLE = {" ": "␣", "\n": "↵", "\t": "⇥"}  # whitespace made visible, as the report does


def _rgb(p: float | None) -> tuple[int, int, int]:
    if p is None:
        return NEUTRAL
    t = min(1.0, max(0.0, p))
    return tuple(round(a + (b - a) * t) for a, b in zip(LOW, HIGH))  # type: ignore[return-value]


def _ink(rgb: tuple[int, int, int]) -> str:
    """Black or white text, whichever reads better on the background (luminance)."""
    r, g, b = (c / 255 for c in rgb)
    return "#000" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.5 else "#fff"


def _shown(token: str) -> str:
    """The token with leading/trailing whitespace and newlines visible (the text itself is
    in the hover)."""
    return "".join(VISIBLE.get(ch, ch) for ch in token) or "∅"


def _prob(logprob: float | None) -> float | None:
    return None if logprob is None else math.exp(logprob)


def hover(line: dict) -> str:
    """A JSONL line's numbers in a few lines of text."""
    head = f"{line['token']!r}  id {line['token_id']}  position {line['position']}"
    if line.get("logprob") is None:
        return head + "\n(nothing predicts it: the first position)"
    bound = "≥" if line.get("entropy_bound") else ""
    entropy = "n/a" if line.get("entropy") is None else f"{bound}{line['entropy']:.3f} nats"
    text = [head, f"p {_prob(line['logprob']):.4f}  rank {line['rank']}  entropy {entropy}"]
    if line.get("logprob_final", 0) is None:
        text.append("p_final 0 (the sampler excluded it)")
    elif "logprob_final" in line:
        text.append(f"p_final {_prob(line['logprob_final']):.4f}")
    text += [f"  {c['token']!r}  {_prob(c['logprob']):.4f}" for c in line["top"][:5]
             if c.get("logprob") is not None]
    return "\n".join(text)


def _span(text: str, title: str, rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    return (f'<span title="{html.escape(title)}" style="background:rgb({r},{g},{b});'
            f'color:{_ink(rgb)};padding:1px 2px;margin:0 1px;border-radius:3px;'
            f'white-space:pre">{html.escape(_shown(text))}</span>')


def _wrap(token: str) -> str:
    """A token that ends a line ends the line on the page too (after its visible ↵)."""
    return "<br>" if token.endswith("\n") else ""


def tokens_html(lines: Iterable[dict], *, before: Iterable[tuple[int, str]] = (), caption: str = "") -> str:
    """`before`: (id, text) of tokens drawn grey (a trace's prompt); then each line's token
    coloured by its probability, its numbers in the hover."""
    spans = [_span(text, f"{text!r}  id {token_id}  (prompt)", NEUTRAL) + _wrap(text)
             for token_id, text in before]
    spans += [_span(line["token"], hover(line), _rgb(_prob(line.get("logprob")))) + _wrap(line["token"])
              for line in lines]
    legend = ("".join(_span(f"{v:g}", f"p = {v:g}", _rgb(v)) for v in (0, 0.25, 0.5, 0.75, 1))
              .replace("white-space:pre", "white-space:pre;font-size:80%"))
    head = f"{html.escape(caption)} · " if caption else ""
    return ('<div class="token-explorer" style="font-family:monospace;line-height:1.9">'
            f'<div style="font-size:85%;opacity:.8">{head}p (hover a token for its numbers): {legend}</div>'
            f'<div>{"".join(spans)}</div></div>')
