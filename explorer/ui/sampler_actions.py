"""The app's sampler keys: `space` samples one token, `g` starts and stops autoplay, `t`
forces text, `o` opens the sampler panel, `m`/`M` pin tracked tokens (explorer.ui.pin_actions),
and what the main view draws of the sampler. A mixin of TokenExplorerApp; the work is the
explorer core's (explorer.session.explorer), each key calls it and redraws.

On a server (Feature.SERVER_SAMPLING) the server's own sampler draws: the core's
edit waits for the "draw" view instead (the token the server chose with these settings,
which the previous append's request already drew), so a sampled step is still one request.
"""

from __future__ import annotations

from dataclasses import replace

from textual.binding import Binding

from explorer.session.book import PICKED
from explorer.session.sampler import StopRule, server_shown
from explorer.ui.sampler_panel import PanelResult, SamplerPanel
from explorer.ui.text_input import TextPrompt
from explorer.ui.pin_actions import PinActions
from explorer.ui.tracked_panel import percent, tracked_rows

SAMPLER_BINDINGS = [
    Binding("space", "sample", "Sample", id="sampler.sample"),
    Binding("g", "autoplay", "Autoplay", id="sampler.autoplay"),
    Binding("t", "force_text", "Force text", id="sampler.force", show=False),
    Binding("o", "sampler_panel", "Sampler", id="sampler.settings", show=False),  # the table names it
    Binding("m", "pin", "Pin token", id="tracked.pin", show=False),
    Binding("M", "pin_text", "Pin text", id="tracked.pin_text", show=False),
]
SAMPLER_ACTIONS = frozenset({"sample", "autoplay", "force_text", "sampler_panel", "pin", "pin_text"})


class SamplerActions(PinActions):
    """Mixed into TokenExplorerApp (which provides core, lane, engine, table, notify):
    each key calls the explorer core (explorer.session.explorer) and redraws."""

    # -- public surface (the core's state) ---------------------------------------------------
    @property
    def sampler(self):
        return None if self.core is None else self.core.sampler

    @property
    def stop_rule(self) -> StopRule:
        return StopRule() if self.core is None else self.core.stop_rule

    @property
    def autoplay_run(self):
        return None if self.core is None else self.core.autoplay_run

    @property
    def autoplaying(self) -> bool:
        return self.autoplay_run is not None

    @property
    def can_sample(self) -> bool:
        return self.core is not None and self.core.can_sample

    @property
    def samples_on_server(self) -> bool:
        return self.core is not None and self.core.samples_on_server

    def sampler_commands(self):
        """Command-palette entries for the sampler keys."""
        from textual.app import SystemCommand

        for title, help_text, action in (
            ("Sample one token", "Draw the next token from p_final (space)", self.action_sample),
            ("Autoplay", "Sample until EOS, a stop string, the token limit or a key (g)", self.action_autoplay),
            ("Force text", "Append your own text as tokens and see their p_base (t)", self.action_force_text),
            ("Sampler settings", "Temperature, top-k, top-p, min-p, penalties, seed, presets (o)",
             self.action_sampler_panel),
            ("Pin selected token", "Track the selected token at every position (m)", self.action_pin),
            ("Pin tokens by text", "Track every token of a text (M)", self.action_pin_text),
        ):
            yield SystemCommand(title, help_text, action)

    # -- key actions -----------------------------------------------------------------------
    def _refuse_without_sampling(self) -> bool:
        refusal = self.core.sampling_refusal()
        if refusal is not None:
            self.notify(refusal, severity="warning")
        return refusal is not None

    def action_sample(self) -> None:
        if not self._refuse_without_sampling():
            self.core.sample()
            self._after_lane()

    def action_autoplay(self) -> None:
        if not self._refuse_without_sampling():
            self.core.autoplay()
            self._after_lane()

    def action_force_text(self) -> None:
        if self._refuse_without_sampling():
            return
        self.push_screen(TextPrompt("force text", "Type text to append as tokens (no special tokens "
                                    "added; \\n for a newline). Each token shows its p_base."),
                         self._forced_text)

    def _forced_text(self, text: str | None) -> None:
        if text is not None:
            self.core.force(text)
            self._after_lane()

    def action_sampler_panel(self) -> None:
        if self._refuse_without_sampling():
            return
        self.push_screen(SamplerPanel(self.sampler.settings, self.stop_rule), self._panel_closed)

    def _panel_closed(self, result: PanelResult | None) -> None:
        if result is not None:
            self.core.set_sampler(result.settings, result.stop)
            self._after_lane()

    # -- autoplay --------------------------------------------------------------------------
    def _stop_autoplay(self, reason: str | None) -> None:
        if self.core is not None:
            self.core.stop_autoplay(reason)

    # -- what the main view draws ------------------------------------------------------------
    def _shown_prompt(self):
        return self.core.shown_prompt()

    def sampler_drawing(self) -> dict:
        """Keyword arguments for MainView.draw: p_final and entropies, tracked rows,
        origins of the shown tokens."""
        lane = self.lane
        prompt, ids = self._shown_prompt()
        origins = ()
        if prompt is not None:
            n = min(len(prompt.origins), len(ids))
            same = prompt.ids[:n] == ids[:n]
            origins = (prompt.origins[:n] if same else ()) + (PICKED,) * (len(ids) - (n if same else 0))
        prompt_len = len(prompt.original) if prompt is not None else len(ids)
        row = lane.views.get("logits")
        shown = None
        rows, allowed_only = self.core.table_candidates()
        top = [c.token_id for c in rows]
        if self.sampler is not None and row is not None:
            shown = replace(self.sampler.shown(row, ids, prompt_len, top), allowed_only=allowed_only)
        elif self.sampler is not None and self.samples_on_server:
            shown = server_shown(lane.views.get("draw"), lane.records[-1].next_entropy,
                                 self.engine.info.vocab_size, top, self.sampler.describe())
        tracked = None
        if lane.tracked:
            series = lane.views.get("tracked")
            # Never "computing" for good: a view this backend cannot serve, or one that
            # failed, says so (the error itself was notified) until the pins change.
            tracked = (self.capabilities.missing("tracked") or
                       ("The tracked tokens could not be computed; m, M or ✕ changes the pins."
                        if "tracked" in lane.failed_views else []))
            if series is not None and tuple(series.token_ids) == lane.tracked:
                final = (self.sampler.distributions(row, ids, prompt_len).p_final
                         if self.sampler is not None and row is not None else lane.views.get("draw"))
                tracked = tracked_rows(series, self.engine.token_text, final)
        return {"sampler": shown, "tracked": tracked, "origins": origins, "candidates": rows}

    def sampler_draw_key(self) -> tuple:
        """What, besides the lane, changes the look (so a knob change redraws)."""
        lane = self.lane
        return (None if self.sampler is None else self.sampler.settings,
                () if lane is None else lane.tracked, frozenset() if lane is None else lane.failed_views,
                id(self.constraint), self.core is not None and self.core.constraint_lists_all)

    def forced_report(self) -> None:
        """Once forced tokens are on screen: one line with each token's p_base."""
        note, lane = self.core.forced_note, self.lane
        if note is None or lane.shown is None:
            return
        key, first, count = note
        if lane.shown[0] != key or len(lane.records) < first + count:
            return
        self.core.forced_note = None
        parts = [f"{r.text!r} {percent(r.prob)}" for r in lane.records[first:first + count] if r.prob is not None]
        self.notify("Forced: " + " · ".join(parts), title="Forced text", timeout=8)
