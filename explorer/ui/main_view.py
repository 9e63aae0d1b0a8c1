"""The main area: prompt panel, legend, layer heatmap, next-token table. Draws only what
it is handed (records and view arrays); it never starts model work."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll

from explorer.backend import Capabilities, TokenRecord
from explorer.backend.types import ATTRIBUTION_LABELS, BASELINE_LABELS, SIGNED_METHODS
from explorer.ui import colors
from explorer.ui.chrome import Legend
from explorer.ui.heatmap import LayerHeatmap
from explorer.ui.next_table import NextTokenTable
from explorer.ui.plot_panel import PlotPanel, curves
from explorer.ui.position_titles import position_titles
from explorer.ui.prompt_view import PromptView
from explorer.ui.repaint import set_titles
from explorer.ui.token_display import column_labels, segments
from explorer.ui.tracked_panel import TrackedPanel, TrackedRow
from explorer.ui.views import (
    ColourLayer,
    LayerView,
    attribution_colours,
    layer_values,
)
from explorer.session.positions import PositionTable
from explorer.session.views import AttributionView, View, ViewName


@dataclass(frozen=True)
class Look:
    """What the user chose to see, and what the backend can serve."""

    colour: ColourLayer
    layer_view: LayerView | None  # None: started without --layer_prob
    capabilities: Capabilities
    # (method, target token id, its display text): the table's candidate under the cursor,
    # set only while the attribution layer is on (so moving the cursor redraws only then).
    attribution: tuple[str, int, str] | None = None

    @property
    def attribution_name(self) -> AttributionView | None:
        """The lane's view name of the attribution this look shows, if any (at the
        position cursor: of the tokens before it toward the row under the table cursor)."""
        if self.colour is not ColourLayer.ATTRIBUTION or self.attribution is None:
            return None
        return AttributionView.of(self.attribution[0], self.attribution[1], self.baseline, self.position)

    tracking: bool = False  # tokens are pinned (the tracked panel is open)
    baseline: str | None = None  # integrated gradients' baseline (I cycles; None: configured)
    position: int | None = None  # the position cursor's token index (None: the live end)

    def views_wanted(self) -> set[ViewName]:
        """Names of the view arrays (explorer.session.fetch) this look needs."""
        wanted = set()
        if self.capabilities.sampling:
            wanted.add(View.LOGITS)  # the kept row: p_final, space and autoplay
        if self.capabilities.server_sampling:
            wanted.add(View.DRAW)  # the server's pick (free when the last append drew it)
        if self.tracking and self.capabilities.tracked_tokens:
            wanted.add(View.TRACKED)
        if self.colour is ColourLayer.INFLUENCE and self.capabilities.influence:
            wanted.add(View.INFLUENCE)
        if self.attribution_name is not None and self.capabilities.attribution:
            wanted.add(self.attribution_name)
        if self.layer_view not in (None, LayerView.NONE) and self.capabilities.lens:
            wanted |= {View.PROMPT_LENS, View.CANDIDATE_LENS}
        if self.colour in (ColourLayer.PROBABILITY, ColourLayer.ENTROPY) \
                and not self.capabilities.prompt_logprobs:
            wanted.add(View.PROMPT_VALUES)  # a server without prompt log-probs: fetched on demand
        return wanted


class MainView(Vertical):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="prompt-scroll", can_focus=False):
            yield PromptView(id="prompt")
        yield Legend(id="legend")
        yield LayerHeatmap(id="heatmap")
        yield TrackedPanel(id="tracked")
        yield PlotPanel(id="plot")
        yield NextTokenTable(id="table")

    def on_mount(self) -> None:
        self.query_one(LayerHeatmap).display = False
        self.query_one(TrackedPanel).display = False
        self.query_one(PlotPanel).display = False
        # Tokens are appended at the end: the prompt stays scrolled there however its
        # height settles (a long file opened at the top while the screen was first laid out).
        self.query_one("#prompt-scroll", VerticalScroll).anchor()

    def draw(
        self,
        records: Sequence[TokenRecord],
        views: Mapping[str, Any],
        look: Look,
        token_bytes: Callable[[int], bytes | None],
        special_ids: Collection[int],
        sampler: Any = None,
        tracked: Sequence[TrackedRow] | str | None = None,
        origins: Sequence[str] = (),
        candidates: Sequence | None = None,
        position: PositionTable | None = None,
    ) -> None:
        """sampler: explorer.session.sampler.Shown with `line` (the settings) or None;
        tracked: rows for the tracked panel (None: nothing pinned; [] while computing; a
        sentence when they cannot be computed);
        candidates: the table's rows when not the last record's top (a constraint's
        allowed tokens); position: the position cursor's table (issue 23), None at the
        live end."""
        ids = [r.token_id for r in records]
        segs = segments(ids, [r.text for r in records], token_bytes, special_ids)
        values, note = self._colour_values(records, views, look)
        scale, meaning = look.colour.scale, None
        if look.colour is ColourLayer.ATTRIBUTION:
            scale, meaning = self._attribution_legend(look, views.get(look.attribution_name))
        prompt = self.query_one(PromptView)
        prompt.show(segs, values, scale, joint=look.colour is ColourLayer.PROBABILITY,
                    origins=origins, highlight=None if position is None else position.index)
        scroll = self.query_one("#prompt-scroll", VerticalScroll)
        set_titles(scroll, f"prompt · {len(ids)} tokens", prompt.notes)
        if position is None:
            scroll.scroll_end(animate=False)

        table = self.query_one(NextTokenTable)
        last = records[-1]
        # The entropy of the distribution the table shows, H / ln V and in nats: the unit of
        # trace, tree and every file (design.md "Entropy unit"), each labelled. With a
        # sampler, of p_final too. From a server's truncated top-K it is a lower bound: "≥"
        # says so.
        at_least = "≥" if last.next_entropy_bound else ""
        source = "" if look.capabilities.kind == "local" else f" · top {len(last.top)} from {look.capabilities.kind}"
        if position is not None:  # the distribution before an earlier token
            sampler = position.sampler
            set_titles(table, *position_titles(position))
        elif sampler is None:
            set_titles(table, f"next token · entropy {at_least}{last.next_entropy_norm:.2f} H/ln V "
                              f"({at_least}{last.next_entropy:.2f} nats){source}", "")
        else:
            final = ""
            if sampler.entropy_final is not None:  # a server may not report p_final
                mark = "≥" if sampler.entropy_final_bound else ""
                final = (f" · p_final {mark}{sampler.entropy_final_norm:.2f} H/ln V "
                         f"({mark}{sampler.entropy_final:.2f} nats)")
            end = CONSTRAINT_END_TITLES.get(sampler.constraint_end, "")
            set_titles(table, f"next token{end} · entropy p_base {at_least}{last.next_entropy_norm:.2f} H/ln V "
                              f"({at_least}{last.next_entropy:.2f} nats){final}{source}",
                       f"sampler: {sampler.line} (o to change)")
        self.query_one(Legend).show(look.colour, look.layer_view, note, scale=scale, meaning=meaning,
                                    rows=constraint_rows(sampler))

        lens_on = look.layer_view not in (None, LayerView.NONE)
        heatmap = self.query_one(LayerHeatmap)
        heatmap.display = lens_on
        strips = None
        if lens_on:
            missing = look.capabilities.missing("lens")
            prompt_lens = views.get("prompt_lens")
            heatmap.show(
                None if prompt_lens is None else layer_values(prompt_lens, look.layer_view),
                column_labels(segs, len(ids)),
                waiting=missing or "computing layer view…",
            )
            candidate_lens = views.get("candidate_lens")
            if candidate_lens is not None:
                strips = layer_values(candidate_lens, look.layer_view)
        rows = last.top if candidates is None else tuple(candidates)
        if position is not None:  # (the layer strips are the live end's: not shown here)
            rows, strips, lens_on = position.rows, None, False
        if strips is not None and rows != last.top:
            strips = strips_for(rows, last.top, strips)
        table.show(rows, strips, with_strip=lens_on and look.capabilities.lens,
                   special_ids=special_ids, p_final=None if sampler is None else sampler.p_final,
                   valid=None if sampler is None else sampler.valid,
                   marked=None if position is None else position.token_row)
        panel = self.query_one(TrackedPanel)
        panel.display = tracked is not None
        if tracked is not None:
            if isinstance(tracked, str):
                panel.waiting(tracked)
            elif tracked:
                panel.show(tracked, special_ids, lens=any(r.layers is not None for r in tracked))
            else:
                panel.waiting("computing the tracked tokens…")

    def draw_plot(self, shown: bool, records: Sequence[TokenRecord] = (), series=None,
                  token_text: Callable[[int], str] | None = None) -> None:
        """The plot panel (P): surprisal and entropy along the shown prompt and the pins'
        p_base (series: the lane's tracked view, None while it is fetched or no pins)."""
        panel = self.query_one(PlotPanel)
        panel.display = shown
        if shown and records:
            panel.show(*curves(records, series, token_text))

    @staticmethod
    def _colour_values(records, views, look: Look) -> tuple[list[float | None] | None, str]:
        if look.colour in (ColourLayer.PROBABILITY, ColourLayer.ENTROPY) \
                and not look.capabilities.prompt_logprobs:
            records = views.get("prompt_values")
            if records is None:
                return None, f"fetching per-token values from {look.capabilities.kind}…"
        if look.colour is ColourLayer.ENTROPY and any(r.entropy_bound for r in records):
            return [r.entropy_norm for r in records], "≥ lower bounds from the server's top-K"
        if look.colour is ColourLayer.PROBABILITY:
            return [r.prob for r in records], ""
        if look.colour is ColourLayer.ENTROPY:
            return [r.entropy_norm for r in records], ""
        if look.colour is ColourLayer.INFLUENCE:
            missing = look.capabilities.missing("influence")
            if missing:
                return None, missing
            influence = views.get("influence")
            if influence is None:
                return None, "computing influence…"
            return [float(v) for v in influence], ""
        if look.colour is ColourLayer.ATTRIBUTION:
            missing = look.capabilities.missing("attribution")
            if missing:
                return None, missing
            result = views.get(look.attribution_name) if look.attribution_name else None
            if result is None:
                label = ATTRIBUTION_LABELS.get(look.attribution[0], "") if look.attribution else ""
                return None, f"computing {label} (esc cancels)…"
            return attribution_colours(result.values, result.signed), ""
        return None, ""

    @staticmethod
    def _attribution_legend(look: Look, result) -> tuple[colors.Scale, str]:
        """The scale (diverging for signed methods) and a line naming method and target."""
        if look.attribution is None:
            return colors.ATTRIBUTION, "attribution of the candidate under the cursor"
        method, _, text = look.attribution
        scale = colors.ATTRIBUTION_SIGNED if method in SIGNED_METHODS else colors.ATTRIBUTION
        meaning = f"{ATTRIBUTION_LABELS[method]} of log p({text!r}) · i: method"
        if method == "attention":  # the weights do not depend on the candidate
            meaning = "attention from the last position, mean over layers and heads · i: method"
        if method == "integrated_gradients":
            baseline = result.baseline if result is not None and result.baseline else look.baseline
            meaning = (f"{ATTRIBUTION_LABELS[method]} of log p({text!r}) from "
                       f"{BASELINE_LABELS.get(baseline, baseline)} · i: method, I: baseline")
        if result is not None:
            peak = float(abs(result.values).max()) if len(result.values) else 0.0
            meaning += f" · max |score| {peak:.3g}"
            if result.n_steps is not None:
                meaning += f" · {result.n_steps} steps"
            if not result.complete:  # the scores miss Δlog p by more than 2%: say by how much
                meaning += f" · sums to {result.completeness:.0%} of Δlog p"
        return scale, meaning


# The table's title once the constrained text is a whole match (Shown.constraint_end).
CONSTRAINT_END_TITLES = {
    "complete": " · constraint complete: only EOS allowed",
    "ended": " · constraint ended: nothing may follow",
}


def constraint_rows(sampler) -> str | None:
    """The legend's line for the table's rows while a constraint is set."""
    if sampler is None or not sampler.constraint:
        return None
    if sampler.problem is not None:
        return f"constraint {sampler.constraint}: {sampler.problem}"
    match = {"complete": " · complete: only end-of-sequence allowed",
             "match": " · a whole match: end-of-sequence allowed"}.get(sampler.constraint_end, "")
    if sampler.allowed_only:
        return (f"constraint {sampler.constraint}{match} · rows: the allowed tokens, likeliest "
                "first (C: all) · excluded: by top-k/top-p/min-p · c: change")
    return (f"constraint {sampler.constraint}{match} · rows: all tokens, ✗ forbidden: by it "
            "(p_final 0) (C: allowed only) · excluded: by top-k/top-p/min-p · c: change")


def strips_for(rows, top, strips):
    """The lens strips ([L+1, len(top)], computed for the model's top candidates) of other
    rows: a token's own column where it is among the top, NaN (no colour) elsewhere."""
    import numpy as np

    column = {c.token_id: j for j, c in enumerate(top)}
    out = np.full((strips.shape[0], len(rows)), np.nan, dtype=np.float32)
    for i, c in enumerate(rows):
        if c.token_id in column:
            out[:, i] = strips[:, column[c.token_id]]
    return out
