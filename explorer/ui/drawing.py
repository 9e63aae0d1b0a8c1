"""What the main screen draws of the explorer core's state: the main view, the header and
the busy bar. No model work: the lane's records and view arrays only.

Drawing is the one costly thing a key press does on the event loop, so this part decides
when to draw: only when what is drawn changed, at most every BURST_DRAW_S while presses
queue behind the model, and "computing" only for a job slower than BUSY_AFTER_S.
"""

from __future__ import annotations

import time
from dataclasses import replace

from explorer.backend.types import ATTRIBUTION_LABELS, TokenRecord
from explorer.session.views import AttributionView, JobKind, View
from explorer.ui.chrome import BusyBar, HeaderLine
from explorer.ui.views import ColourLayer

# A job shorter than this never says "computing": a fast key press then repaints the
# screen once, with its result, instead of twice a frame apart.
BUSY_AFTER_S = 0.15
# While presses queue behind the model, the screen shows the newest state this often.
BURST_DRAW_S = 0.05


MODEL_OFF = "the model is off: L turns it on"

class Drawing:
    """Draws the screen's core state (`screen`: explorer.ui.main_screen.MainScreen)."""

    def __init__(self, screen) -> None:
        self.screen = screen
        self.drawn: tuple | None = None  # what the main view shows; None: draw again
        self._drawn_at = 0.0  # time.monotonic() of the last draw
        self._draw_timer = None
        self._last_note: tuple[str, float] = ("", 0.0)
        self._busy_since: float | None = None
        self._busy_timer = None

    @property
    def busy_bar(self) -> BusyBar:
        return self.screen.query_one(BusyBar)

    def after_lane(self) -> None:
        s = self.screen
        look = s.look
        s.core.sync_sampler()
        s.lane.want(look.views_wanted() | s.core.cursor.views())
        lane = s.lane
        if s.core.model_off and lane.shown is not None and lane.book.current.ids != lane.shown[1]:
            self._draw_model_off()  # the book's edits, uncomputed
            self.show_header()
            return
        if lane.shown is not None:
            if not s.app.started:  # the first prompt is drawn below: leave start-up
                s.app.leave_startup()
            if lane.running is None:
                self.busy_bar.done()
            # Redraw only when what is drawn changed: a press queued behind a job does not.
            sampler = s.sampler_keys
            drawn = (lane.shown, id(lane.records), tuple(sorted(lane.views, key=str)), look,
                     sampler.draw_key(), s.core.cursor.index)
            if drawn != self.drawn:
                if self._burst_wait():
                    return  # the header too: both are drawn when the timer fires
                self.drawn, self._drawn_at = drawn, time.monotonic()
                s.main_view.draw(lane.records, lane.views, look, s.engine.token_bytes,
                                 s.engine.special_ids, **sampler.drawing(),
                                 position=s.core.cursor.table())
                s.share.draw_plot()
                sampler.forced_report()
        self.show_header()

    def _draw_model_off(self) -> None:
        """"LLM off": the book's prompt as it is now, with the shown records where they
        still hold (a shared prefix) and the rest uncomputed: no colours, an empty table."""
        s = self.screen
        lane, engine = s.lane, s.engine
        ids = lane.book.current.ids
        keep = 0
        while keep < min(len(ids), len(lane.records)) and lane.records[keep].token_id == ids[keep]:
            keep += 1
        keep = min(keep, len(ids) - 1)  # the last one's table is not known
        nan = float("nan")
        records = lane.records[:keep] + tuple(
            TokenRecord(t, engine.token_text(t), None, None, None, None, nan, nan, ())
            for t in ids[keep:])
        look = replace(s.look, colour=ColourLayer.NONE)
        s.main_view.draw(records, {}, look, engine.token_bytes, engine.special_ids)
        s.table.border_title = "next token · not computed while the model is off"
        self.drawn = None  # drawn over: the next real state draws again

    def _burst_wait(self) -> bool:
        """While presses wait behind the model (a held key outrunning it), draw the newest
        state at most every BURST_DRAW_S, not each one on the way: a draw costs the event
        loop ~10 ms that the model's worker thread would wait for. True: drawn later."""
        wait = BURST_DRAW_S - (time.monotonic() - self._drawn_at)
        if not self.screen.lane.pending or wait <= 0:
            return False
        if self._draw_timer is None:
            self._draw_timer = self.screen.set_timer(wait, self._draw_later)
        return True

    def _draw_later(self) -> None:
        self._draw_timer = None
        # A timer may fire while the app shuts down, after its screens are gone.
        if self.screen.lane is not None and self.screen.app.screen_stack:
            self.after_lane()

    def show_header(self) -> None:
        """The header line; and the table's subtitle says when the model is off."""
        s = self.screen
        if not s.app.screen_stack or s.lane is None:  # the busy timer fired while the app shuts down
            return
        lane, info = s.lane, s.engine.info
        busy = ""
        if lane.pending or lane.busy:
            now = time.monotonic()
            if self._busy_since is None:
                self._busy_since = now
                self._busy_timer = s.set_timer(BUSY_AFTER_S, self.show_header)
            if now - self._busy_since >= BUSY_AFTER_S:
                busy = f"computing ({lane.pending} queued)" if lane.pending else "computing"
        elif self._busy_since is not None:
            self._busy_since = None
            self._busy_timer.stop()
        model_off = s.core is not None and s.core.model_off
        if model_off:  # "LLM off": the table is not computed
            edits = "" if lane.shown and lane.shown[1] == lane.book.current.ids else ", edits waiting"
            busy = f"model off{edits} (L turns it on)"
            s.table.border_subtitle = MODEL_OFF
        elif str(s.table.border_subtitle or "") == MODEL_OFF:
            s.table.border_subtitle = ""
        # Start-up's header until the first prompt is on screen.
        header = (s.app.startup or s).query_one(HeaderLine)
        views = s.views
        header.show(
            model=info.name,
            device=info.device,
            dtype=info.dtype,
            prompt_index=lane.book.index + 1,
            prompts=len(lane.book),
            # What the screen shows (the panel below says the same), so that a press does
            # not repaint the header before its result arrives. With the model off the
            # panel shows the edited prompt at once (nothing is computed), and so does this.
            tokens=len(lane.book.current.ids if model_off or not lane.shown else lane.shown[1]),
            layer=views.colour,
            view=views.layer_view if views.layer_prob else None,
            busy=busy,
            position=(table := s.core.cursor.table()) and table.label or "",
            **s.constraint_keys.header(),
        )

    def lane_note(self, text: str, severity: str) -> None:
        # A held key repeats a refusal (popping the only token) dozens of times: say it once.
        now = time.monotonic()
        if self._last_note[0] == text and now - self._last_note[1] < 3:
            return
        self._last_note = (text, now)
        self.screen.notify(text, severity=severity, timeout=2 if severity == "information" else 5)

    def job_progress(self, message) -> None:
        s = self.screen
        running = s.lane.running
        if not s.app.screen_stack or running is None or running.id != message.job:
            return
        if s.lane.shown is None:
            if s.app.startup is not None:  # (None after a model switch: no start-up screen)
                s.app.startup.panel.progress(message.done, message.total)
        elif message.total > 1 and self._busy_since is not None \
                and time.monotonic() - self._busy_since >= BUSY_AFTER_S:
            # Only a long prefill gets the bar, not a held key's one-token steps: showing,
            # relabelling and hiding it each cost a layout pass.
            label = f"Reading prompt {message.done}/{message.total} "
            attributions = sorted((v for v in running.views if isinstance(v, AttributionView)), key=str)
            if running.kind is JobKind.VIEWS and attributions:
                # (counted in forward passes of one point, attribution_run.py: a share reads
                # better than the count)
                label = f"{ATTRIBUTION_LABELS[attributions[0].method]} (esc cancels) "
            elif running.kind is JobKind.VIEWS and View.TRACKED in running.views:  # a server's prefixes
                label = f"Tracking tokens {message.done}/{message.total} "
            self.busy_bar.progress(label, message.done, message.total)
