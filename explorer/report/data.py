"""What a report shows, as plain data: the prompt's tokens (display text by the app's rules,
probability, rank, entropy, the candidates that predicted each with p_base and p_final),
the curves along the prompt (surprisal, entropy, tracked tokens' probabilities), the model
and settings, and optionally a token tree. No Textual, no model: built from the records a
backend already returned, so `trace`, `tree` and the app all hand the same thing over.

Position i's numbers are those of the distribution that predicted token i (p_{i-1}, as
design.md defines them); the first token has no prediction (None everywhere).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from explorer.backend.types import ModelInfo, TokenRecord, TrackedSeries
from explorer.display import colors
from explorer.display.token_display import Kind, group_value, segments

# The colour layers a report can show (the app's names), with their scale and whether a
# group of byte tokens is coloured by its joint value (the product: probabilities).
LAYERS = {
    "probability": (colors.PROBABILITY, True),
    "entropy": (colors.ENTROPY, False),
}
NO_LAYER = "none"


def finite(value) -> float | None:
    """A float for JSON (NaN and infinities are not JSON), else None."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def hex_rgb(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


@dataclass
class Report:
    """One report's content. `tokens`: one dict per position; `segments`: what is drawn
    (a group of byte tokens is one segment); `series`: name -> values per position;
    `tracked`: per tracked token {token_id, text, probs per position}; `tree`: plain nested
    dicts or None; `facts`: (label, text) pairs for the header."""

    title: str
    tokens: list[dict]
    segments: list[dict]
    series: dict[str, list[float | None]]
    tracked: list[dict]
    facts: list[tuple[str, str]]
    layer: str = "probability"
    next_top: list[dict] = field(default_factory=list)  # the candidates after the last token
    tree: dict | None = None
    created: str = ""
    # A model comparison (`compare --html`): {"title", "kl", "facts"}: KL(A‖B) per position
    # (a lower bound when a server is on a side, and the title says so).
    comparison: dict | None = None


def candidates(top, final: Mapping[int, float | None] | None, k: int | None) -> list[dict]:
    """The candidates of one distribution: p_base, and p_final where a sampler ran (0 for a
    token it excludes; None when no sampler's numbers are known for this position)."""
    out = []
    for c in top[:k]:
        if final is None:
            p_final = None
        else:
            lp = final.get(c.token_id)
            p_final = 0.0 if lp is None else math.exp(lp)
        out.append({"id": c.token_id, "text": c.text,
                    "p_base": finite(c.prob), "p_final": finite(p_final)})
    return out


def token_rows(records: Sequence[TokenRecord], finals: Mapping[int, Mapping[int, float | None]] | None = None,
               top_k: int | None = 10, origins: Sequence[str] | None = None) -> list[dict]:
    """One dict per position. finals: position -> {token id: logprob_final or None}."""
    finals = finals or {}
    rows = []
    for i, r in enumerate(records):
        before = records[i - 1].top if i else ()
        final = finals.get(i)
        p = None if r.logprob is None else math.exp(r.logprob)
        p_final = None
        if final is not None:
            lp = final.get(r.token_id)
            p_final = 0.0 if lp is None else math.exp(lp)
        rows.append({
            "i": i, "id": r.token_id, "text": r.text,
            "prob": finite(p), "p_final": finite(p_final), "rank": r.rank,
            "surprisal": None if r.logprob is None else finite(-r.logprob),
            "entropy": finite(r.entropy), "entropy_norm": finite(r.entropy_norm),
            "entropy_bound": bool(r.entropy_bound),
            "origin": origins[i] if origins is not None and i < len(origins) else None,
            "top": candidates(before, final, top_k),
        })
    return rows


def segment_rows(records: Sequence[TokenRecord], rows: Sequence[dict],
                 token_bytes: Callable[[int], bytes | None], special_ids: Collection[int]) -> list[dict]:
    """The drawn segments (explorer.display.token_display: the app's rules) with each
    layer's colour and readable text colour on it, so the page can switch layers without any computing."""
    segs = segments([r.token_id for r in records], [r.text for r in records], token_bytes, special_ids)
    out = []
    for seg in segs:
        colours, ink = {}, {}
        for name, (scale, joint) in LAYERS.items():
            key = "prob" if name == "probability" else "entropy_norm"
            rgb = scale.rgb(group_value([row[key] for row in rows], seg.tokens, joint=joint))
            colours[name], ink[name] = hex_rgb(rgb), hex_rgb(colors.text_on(rgb))
        out.append({"text": seg.text, "tokens": list(seg.tokens), "kind": seg.kind.value,
                    "colours": colours, "ink": ink})
    return out


def tracked_rows(series: TrackedSeries | None, token_text: Callable[[int], str]) -> list[dict]:
    """Per tracked token its probability at every position: row i of the series (after
    position i) predicts position i+1, so position 0 has none and the last value is the
    next token's (one past the prompt)."""
    if series is None:
        return []
    probs = series.probs
    return [{"id": int(t), "text": token_text(int(t)),
             "probs": [None] + [finite(v) for v in probs[:, j]]}
            for j, t in enumerate(series.token_ids)]


def prompt_curves(records: Sequence[TokenRecord]) -> dict[str, list[float | None]]:
    """Surprisal −ln p and entropy (nats) of the distribution that predicted each position
    (None at the first: nothing predicts it). The report's plot and the app's plot panel."""
    return {"surprisal": [None if r.logprob is None else finite(-r.logprob) for r in records],
            "entropy": [finite(r.entropy) for r in records]}


def model_facts(info: ModelInfo) -> list[tuple[str, str]]:
    return [("model", info.name), ("architecture", info.architecture),
            ("device", f"{info.device}, {info.dtype}"), ("vocabulary", f"{info.vocab_size:,} tokens")]


def build_report(*, title: str, info: ModelInfo, records: Sequence[TokenRecord],
                 token_bytes: Callable[[int], bytes | None], token_text: Callable[[int], str],
                 special_ids: Collection[int] = (), settings: Mapping[str, object] | None = None,
                 finals: Mapping[int, Mapping[int, float | None]] | None = None,
                 tracked: TrackedSeries | None = None, tree: dict | None = None,
                 layer: str = "probability", origins: Sequence[str] | None = None,
                 top_k: int | None = 10, now: datetime | None = None,
                 next_final: Mapping[int, float | None] | None = None,
                 comparison: dict | None = None) -> Report:
    """comparison: see Report.comparison. next_final: logprob_final of the next token's candidates (None: excluded), where the
    sampler's p_final after the last position is known (the app's kept row)."""
    if layer not in LAYERS and layer != NO_LAYER:
        raise ValueError(f"A report colours by {', '.join(LAYERS)} or {NO_LAYER}, not {layer!r}.")
    rows = token_rows(records, finals, top_k, origins)
    facts = model_facts(info) + [(str(k), str(v)) for k, v in (settings or {}).items()]
    created = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    facts.append(("date", created))
    return Report(
        title=title, tokens=rows, segments=segment_rows(records, rows, token_bytes, special_ids),
        series=prompt_curves(records),
        tracked=tracked_rows(tracked, token_text), facts=facts, layer=layer,
        next_top=candidates(records[-1].top, next_final, top_k) if records else [], tree=tree,
        created=created, comparison=comparison)


__all__ = ["LAYERS", "NO_LAYER", "Report", "build_report", "Kind", "finite", "tree_data"]


def tree_data(tree) -> dict:
    """A token tree (explorer.tree.node.TokenTree) as nested plain dicts for the outline:
    display text, p under the parent, the path's probability, why a leaf ends. Built with
    a stack: a tree may be thousands of tokens deep."""
    def fields(node) -> dict:
        return {"id": node.token_id, "text": node.token, "p": finite(node.p),
                "path_p": finite(node.path_prob), "entropy": finite(node.entropy),
                "end": node.end, "children": []}

    root = {"settings": tree.settings.as_dict(), "stopped": tree.stopped, "size": tree.size,
            "children": []}
    stack = [(child, root) for child in reversed(tree.children)]
    while stack:
        node, parent = stack.pop()
        out = fields(node)
        parent["children"].append(out)
        stack.extend((child, out) for child in reversed(node.children))
    return root
