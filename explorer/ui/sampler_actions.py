"""The main screen's sampler keys: `space` samples one token, `g` starts and stops autoplay,
`t` forces text, `o` opens the sampler panel, `m`/`M` pin tracked tokens (a tracked row's ✕
unpins), and what the main view draws of the sampler. A part the screen composes and calls
(explorer.ui.main_screen); the work is the explorer core's (explorer.session.explorer), each
key calls it and redraws. The pins live in the core's lane: the ids the "tracked" view is
fetched for are the ids the panel waits for.

On a server (Feature.SERVER_SAMPLING) the server's own sampler draws: the core's
edit waits for the "draw" view instead (the token the server chose with these settings,
which the previous append's request already drew), so a sampled step is still one request.
"""

from __future__ import annotations

from dataclasses import replace

from textual.app import SystemCommand
from textual.binding import Binding

from explorer.session.book import PICKED
from explorer.session.sampler import StopRule, server_shown
from explorer.ui.sampler_panel import SamplerPanel
from explorer.ui.text_input import TextPrompt
from explorer.ui.tracked_panel import percent, tracked_rows

SAMPLER_BINDINGS = [
    Binding("space", "sample", "Sample", id="sampler.sample"),
    Binding("g", "autoplay", "Autoplay", id="sampler.autoplay"),
    Binding("t", "force_text", "Force text", id="sampler.force", show=False),
    Binding("o", "sampler_panel", "Sampler", id="sampler.settings", show=False),  # the table names it
    Binding("m", "pin", "Pin token", id="tracked.pin", show=False),
    Binding("M", "pin_text", "Pin text", id="tracked.pin_text", show=False),
]


class SamplerActions:
    """The sampler and pin keys of `screen` (explorer.ui.main_screen.MainScreen)."""

    def __init__(self, screen) -> None:
        self.screen = screen

    @property
    def stop_rule(self) -> StopRule:
        core = self.screen.core
        return StopRule() if core is None else core.stop_rule

    def commands(self):
        """Command-palette entries for the sampler keys."""
        for title, help_text, action in (
            ("Sample one token", "Draw the next token from p_final (space)", self.sample),
            ("Autoplay", "Sample until EOS, a stop string, the token limit or a key (g)", self.autoplay),
            ("Force text", "Append your own text as tokens and see their p_base (t)", self.force_text),
            ("Sampler settings", "Temperature, top-k, top-p, min-p, penalties, seed, presets (o)",
             self.sampler_panel),
            ("Pin selected token", "Track the selected token at every position (m)", self.pin),
            ("Pin tokens by text", "Track every token of a text (M)", self.pin_text),
        ):
            yield SystemCommand(title, help_text, action)

    # -- keys ------------------------------------------------------------------------------
    def _refused(self, refusal: str | None, timeout: float | None = None) -> bool:
        if refusal is not None:
            self.screen.notify(refusal, severity="warning", **({"timeout": timeout} if timeout else {}))
        return refusal is not None

    def _then_redraw(self, verb):
        """A dialog's callback: call `verb` with what was typed (None: cancelled), redraw."""
        def done(result) -> None:
            if result is not None:
                verb(result)
                self.screen.redraw()
        return done

    def sample(self) -> None:
        if not self._refused(self.screen.core.sampling_refusal()):
            self.screen.core.sample()
            self.screen.redraw()

    def autoplay(self) -> None:
        if not self._refused(self.screen.core.sampling_refusal()):
            self.screen.core.autoplay()
            self.screen.redraw()

    def force_text(self) -> None:
        if self._refused(self.screen.core.sampling_refusal()):
            return
        self.screen.app.push_screen(
            TextPrompt("force text", "Type text to append as tokens (no special tokens "
                       "added; \\n for a newline). Each token shows its p_base."),
            self._then_redraw(self.screen.core.force))

    def sampler_panel(self) -> None:
        core = self.screen.core
        if self._refused(core.sampling_refusal()):
            return
        self.screen.app.push_screen(SamplerPanel(core.sampler.settings, self.stop_rule),
                                    self._then_redraw(lambda r: core.set_sampler(r.settings, r.stop)))

    def pin(self) -> None:
        candidate = self.screen.table.selected() if self._tracking_available() else None
        if candidate is not None:
            self.screen.core.pin(candidate.token_id)
            self.screen.redraw()

    def unpin(self, token_id: int) -> None:
        """Stop tracking `token_id` (m on its row, M with its text, ✕ in the tracked panel)."""
        self.screen.core.unpin(token_id)
        self.screen.redraw()

    def pin_text(self) -> None:
        if self._tracking_available():
            self.screen.app.push_screen(
                TextPrompt("pin tokens by text", "Type text; every token of it is tracked "
                           "(a leading space is part of a token). Text already pinned "
                           "is unpinned."), self._then_redraw(self.screen.core.pin_text))

    def _tracking_available(self) -> bool:
        return not self._refused(self.screen.core.tracking_refusal(), timeout=8)

    # -- what the main view draws ------------------------------------------------------------
    def drawing(self) -> dict:
        """Keyword arguments for MainView.draw: p_final and entropies, tracked rows,
        origins of the shown tokens."""
        s = self.screen
        lane, core, sampler = s.lane, s.core, s.sampler
        prompt, ids = core.shown_prompt()
        origins = ()
        if prompt is not None:
            n = min(len(prompt.origins), len(ids))
            same = prompt.ids[:n] == ids[:n]
            origins = (prompt.origins[:n] if same else ()) + (PICKED,) * (len(ids) - (n if same else 0))
        prompt_len = len(prompt.original) if prompt is not None else len(ids)
        row = lane.views.get("logits")
        shown = None
        rows, allowed_only = core.table_candidates()
        top = [c.token_id for c in rows]
        if sampler is not None and row is not None:
            shown = replace(sampler.shown(row, ids, prompt_len, top), allowed_only=allowed_only)
        elif sampler is not None and s.samples_on_server:
            shown = server_shown(lane.views.get("draw"), lane.records[-1].next_entropy,
                                 s.engine.info.vocab_size, top, sampler.describe())
        tracked = None
        if lane.tracked:
            series = lane.views.get("tracked")
            # Never "computing" for good: a view this backend cannot serve, or one that
            # failed, says so (the error itself was notified) until the pins change.
            tracked = (s.capabilities.missing("tracked") or
                       ("The tracked tokens could not be computed; m, M or ✕ changes the pins."
                        if "tracked" in lane.failed_views else []))
            if series is not None and tuple(series.token_ids) == lane.tracked:
                final = (sampler.distributions(row, ids, prompt_len).p_final
                         if sampler is not None and row is not None else lane.views.get("draw"))
                tracked = tracked_rows(series, s.engine.token_text, final)
        return {"sampler": shown, "tracked": tracked, "origins": origins, "candidates": rows}

    def draw_key(self) -> tuple:
        """What, besides the lane, changes the look (so a knob change redraws)."""
        s = self.screen
        lane, core = s.lane, s.core
        return (None if s.sampler is None else s.sampler.settings,
                () if lane is None else lane.tracked, frozenset() if lane is None else lane.failed_views,
                id(s.constraint), core is not None and core.constraint_lists_all)

    def forced_report(self) -> None:
        """Once forced tokens are on screen: one line with each token's p_base."""
        core, lane = self.screen.core, self.screen.lane
        note = core.forced_note
        if note is None or lane.shown is None:
            return
        key, first, count = note
        if lane.shown[0] != key or len(lane.records) < first + count:
            return
        core.forced_note = None
        parts = [f"{r.text!r} {percent(r.prob)}" for r in lane.records[first:first + count] if r.prob is not None]
        self.screen.notify("Forced: " + " · ".join(parts), title="Forced text", timeout=8)
