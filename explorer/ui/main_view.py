"""The main area: prompt panel, legend, layer heatmap, next-token table. Draws only what
it is handed (records and view arrays); it never starts model work."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll

from explorer.backend import Capabilities, TokenRecord
from explorer.ui.chrome import Legend
from explorer.ui.heatmap import LayerHeatmap
from explorer.ui.next_table import NextTokenTable
from explorer.ui.prompt_view import PromptView
from explorer.ui.token_display import column_labels, segments
from explorer.ui.views import ColourLayer, LayerView, layer_values


@dataclass(frozen=True)
class Look:
    """What the user chose to see, and what the backend can serve."""

    colour: ColourLayer
    layer_view: LayerView | None  # None: started without --layer_prob
    capabilities: Capabilities

    def views_wanted(self) -> set[str]:
        """Names of the view arrays (jobs.fetch_views) this look needs."""
        wanted = set()
        if self.colour is ColourLayer.INFLUENCE and self.capabilities.influence:
            wanted.add("influence")
        if self.layer_view not in (None, LayerView.NONE) and self.capabilities.lens:
            wanted |= {"prompt_lens", "candidate_lens"}
        if self.colour in (ColourLayer.PROBABILITY, ColourLayer.ENTROPY) \
                and not self.capabilities.prompt_logprobs:
            wanted.add("prompt_values")  # a server without prompt log-probs: fetched on demand
        return wanted


class MainView(Vertical):
    def compose(self) -> ComposeResult:
        with VerticalScroll(id="prompt-scroll", can_focus=False):
            yield PromptView(id="prompt")
        yield Legend(id="legend")
        yield LayerHeatmap(id="heatmap")
        yield NextTokenTable(id="table")

    def on_mount(self) -> None:
        self.query_one(LayerHeatmap).display = False

    def draw(
        self,
        records: Sequence[TokenRecord],
        views: Mapping[str, Any],
        look: Look,
        token_bytes: Callable[[int], bytes | None],
        special_ids: Collection[int],
    ) -> None:
        ids = [r.token_id for r in records]
        segs = segments(ids, [r.text for r in records], token_bytes, special_ids)
        values, note = self._colour_values(records, views, look)
        prompt = self.query_one(PromptView)
        prompt.show(segs, values, look.colour.scale, joint=look.colour is ColourLayer.PROBABILITY)
        scroll = self.query_one("#prompt-scroll", VerticalScroll)
        scroll.border_title = f"prompt · {len(ids)} tokens"
        scroll.border_subtitle = prompt.notes
        scroll.scroll_end(animate=False)

        table = self.query_one(NextTokenTable)
        last = records[-1]
        # The entropy of the distribution the table shows (H / ln V, and in bits). From a
        # server's truncated top-K it is a lower bound: "≥" says so.
        at_least = "≥" if last.next_entropy_bound else ""
        source = "" if look.capabilities.kind == "local" else f" · top {len(last.top)} from {look.capabilities.kind}"
        table.border_title = (
            f"next token · entropy {at_least}{last.next_entropy_norm:.2f} "
            f"({at_least}{last.next_entropy / math.log(2):.2f} bits){source}"
        )
        self.query_one(Legend).show(look.colour, look.layer_view, note)

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
        table.show(last.top, strips, with_strip=lens_on and look.capabilities.lens,
                   special_ids=special_ids)

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
        return None, ""
