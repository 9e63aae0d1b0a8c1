"""What the main screen draws of the explorer core's state: the main view, the header and
the busy bar. No model work: the lane's records and view arrays only.

Drawing is the one costly thing a key press does on the event loop, so this part decides
when to draw: only when what is drawn changed, at most every BURST_DRAW_S while presses
queue behind the model, and "computing" only for a job slower than BUSY_AFTER_S.
"""

from __future__ import annotations

import time

from explorer.backend.types import ATTRIBUTION_LABELS
from explorer.session.views import AttributionView, JobKind, View
from explorer.ui.chrome import BusyBar, HeaderLine

# A job shorter than this never says "computing": a fast key press then repaints the
# screen once, with its result, instead of twice a frame apart.
BUSY_AFTER_S = 0.15
# While presses queue behind the model, the screen shows the newest state this often.
BURST_DRAW_S = 0.05


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
        s.lane.want(look.views_wanted())
        lane = s.lane
        if lane.shown is not None:
            if not s.app.started:  # the first prompt is drawn below: leave start-up
                s.app.leave_startup()
            if lane.running is None:
                self.busy_bar.done()
            # Redraw only when what is drawn changed: a press queued behind a job does not.
            sampler = s.sampler_keys
            drawn = (lane.shown, id(lane.records), tuple(sorted(lane.views, key=str)), look,
                     sampler.draw_key())
            if drawn != self.drawn:
                if self._burst_wait():
                    return  # the header too: both are drawn when the timer fires
                self.drawn, self._drawn_at = drawn, time.monotonic()
                s.main_view.draw(lane.records, lane.views, look, s.engine.token_bytes,
                                 s.engine.special_ids, **sampler.drawing())
                sampler.forced_report()
        self.show_header()

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
            # not repaint the header before its result arrives.
            tokens=len(lane.shown[1] if lane.shown else lane.book.current.ids),
            layer=views.colour,
            view=views.layer_view if views.layer_prob else None,
            busy=busy,
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
