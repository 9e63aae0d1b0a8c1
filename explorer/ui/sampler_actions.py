"""The app's sampler keys: `space` samples one token, `g` starts and stops autoplay, `t`
forces text, `o` opens the sampler panel, `m`/`M` pin tracked tokens (explorer.ui.pin_actions). A mixin of
TokenExplorerApp, kept apart so the app stays about wiring.

Model work still goes through the lane: sampling is an Edit that waits for the kept logits
row (the "logits" view), so a knob change or a draw never runs the model; the token it
appends is one decode step like any append. Autoplay presses "sample" again each time the
screen has caught up, so the screen follows every token.

On a server (Feature.SERVER_SAMPLING) the server's own sampler draws: the edit
waits for the "draw" view instead (the token the server chose with these settings, which
the previous append's request already drew), so a sampled step is still one request.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual import events
from textual.binding import Binding

from explorer.context_limit import context_error
from explorer.sampling import SamplingError
from explorer.session import Edit, Lane
from explorer.session.book import FORCED, PICKED, SAMPLED
from explorer.session.sampler import Sampler, StopRule, server_shown
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


@dataclass
class AutoplayRun:
    key: int  # the prompt it writes to
    start: int  # its length when autoplay started


class SamplerActions(PinActions):
    """Mixed into TokenExplorerApp (which provides lane, engine, settings, table, notify)."""

    def _init_sampler(self) -> None:
        self.sampler: Sampler | None = None
        self.stop_rule = StopRule()
        self.autoplay_run: AutoplayRun | None = None
        self._forced_note: tuple[int, int, int] | None = None  # (key, first position, count)

    # -- public surface ------------------------------------------------------------------
    @property
    def autoplaying(self) -> bool:
        return self.autoplay_run is not None

    @property
    def can_sample(self) -> bool:
        return self.capabilities.sampling or self.capabilities.server_sampling

    @property
    def samples_on_server(self) -> bool:
        """The backend's own sampler draws (a server); else the session's, on the kept row."""
        return self.capabilities.server_sampling

    def sync_sampler_to_lane(self) -> None:
        """The lane's "draw" view draws with the sampler's current settings."""
        if self.lane is not None and self.sampler is not None and self.samples_on_server:
            self.lane.use_sampling(self.sampler.settings)

    def _start_sampler(self, keep: tuple[Sampler, StopRule] | None = None) -> dict[str, Edit]:
        """Called once the backend is open: resolve the settings, return the lane's edits.
        keep: the previous model's sampler and stop rule (a model switch), whose knobs, seed,
        token limit and stop strings stay as the user left them."""
        if not self.can_sample:
            return {}
        config = self.settings.sampling
        if keep is not None:
            settings = keep[0].settings  # its seed is resolved: the same draws follow
            max_tokens, stop = keep[1].max_tokens, keep[1].stop_strings
        else:
            max_tokens, stop = config.max_tokens, tuple(config.stop)
            try:
                settings = config.resolve(self.engine.sampling_defaults())
            except SamplingError as exc:
                self.notify(str(exc), title="Sampler", severity="error", timeout=10)
                settings = config.resolve(type(self.engine.sampling_defaults())())
        self.sampler = Sampler(settings)
        self.stop_rule = StopRule(max_tokens=max_tokens, stop_strings=stop,
                                  eos_ids=frozenset(self.engine.eos_ids),
                                  max_context=self.engine.info.max_context)
        view = "draw" if self.samples_on_server else "logits"
        return {"sample": Edit(self._apply_sample, needs=frozenset({view})),
                "force": Edit(self._apply_force)}

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

    # -- edits (run by the lane in key-press order) -----------------------------------------
    def _apply_sample(self, lane: Lane, press) -> None:
        if self.samples_on_server:
            self._apply_server_sample(lane)
            return
        row = lane.views.get("logits")
        prompt = lane.book.current
        limit = self.engine.info.max_context
        if row is None:
            self._stop_autoplay("the model's logits could not be fetched")
            lane.notify("Sampling needs the model's logits, which could not be fetched.", "warning")
            return
        if why := context_error(len(prompt.ids), limit, self.engine.info.name, adding=1):
            self._stop_autoplay(None)
            lane.notify(why, "warning")
            return
        token = self.sampler.pick(row, prompt.ids, len(prompt.original))
        lane.book.append(token, SAMPLED)

    def _apply_server_sample(self, lane: Lane) -> None:
        drawn = lane.views.get("draw")
        limit = self.engine.info.max_context
        if drawn is None or drawn.settings != self.sampler.settings:
            self._stop_autoplay("the server's sampler gave no token")
            lane.notify("The server's sampler gave no token; press space to ask again.", "warning")
            return
        if why := context_error(len(lane.book.current.ids), limit, self.engine.info.name, adding=1):
            self._stop_autoplay(None)
            lane.notify(why, "warning")
            return
        if drawn.ends:  # the server names its end-of-sequence token when it draws one
            self.stop_rule = replace(self.stop_rule, eos_ids=self.stop_rule.eos_ids | {drawn.token_id})
        lane.book.append(drawn.token_id, SAMPLED)

    def _apply_force(self, lane: Lane, press) -> None:
        ids = tuple(press.arg)
        prompt = lane.book.current
        limit = self.engine.info.max_context
        if why := context_error(len(prompt.ids), limit, self.engine.info.name, adding=len(ids)):
            lane.notify(f"{why} Nothing was appended.", "warning")
            return
        self._forced_note = (prompt.key, len(prompt.ids), len(ids))
        lane.book.extend(ids, FORCED)

    # -- key actions -----------------------------------------------------------------------
    def _refuse_without_sampling(self) -> bool:
        if self.can_sample:
            return False
        kind = self.capabilities.kind
        self.notify(f"Sampling is not available on this backend ({kind}).", severity="warning")
        return True

    def action_sample(self) -> None:
        if not self._refuse_without_sampling():
            self._ask_server_again()
            self.lane.press("sample")
            self._after_lane()

    def _ask_server_again(self) -> None:
        """A draw that failed (the server was down) is asked for again by the next key."""
        lane = self.lane
        if self.samples_on_server and "draw" not in lane.views and not lane.busy and lane.in_sync:
            lane.refetch("draw")

    def action_autoplay(self) -> None:
        if self._refuse_without_sampling():
            return
        if self.autoplay_run is not None:
            self._stop_autoplay("stopped by a key")
            return
        prompt = self.lane.book.current
        self.autoplay_run = AutoplayRun(prompt.key, len(prompt.ids))
        self._ask_server_again()
        self.notify(f"Autoplay: {self.sampler.describe()}; up to {self.stop_rule.max_tokens} tokens. "
                    "Any key stops it.", title="Autoplay", timeout=3)
        self._autoplay_tick()

    def action_force_text(self) -> None:
        if self._refuse_without_sampling():
            return
        self.push_screen(TextPrompt("force text", "Type text to append as tokens (no special tokens "
                                    "added; \\n for a newline). Each token shows its p_base."),
                         self._forced_text)

    def _forced_text(self, text: str | None) -> None:
        if text is None:
            return
        ids = self.engine.encode_plain(text)
        if not ids:
            self.notify(f"The text {text!r} gives no tokens; nothing was appended.", severity="warning")
            return
        self.lane.press("force", arg=tuple(ids))
        self._after_lane()

    def action_sampler_panel(self) -> None:
        if self._refuse_without_sampling():
            return
        self.push_screen(SamplerPanel(self.sampler.settings, self.stop_rule), self._panel_closed)

    def _panel_closed(self, result: PanelResult | None) -> None:
        if result is None:
            return
        self.sampler.change(**result.settings.as_dict())
        self.stop_rule = replace(self.stop_rule, max_tokens=result.stop.max_tokens,
                                 stop_strings=result.stop.stop_strings)
        self.notify(f"Sampler: {self.sampler.describe()}.", title="Sampler", timeout=3)
        self._after_lane()

    # -- autoplay --------------------------------------------------------------------------
    def _autoplay_tick(self) -> None:
        """Press "sample" again once the screen shows the last sampled token."""
        run, lane = self.autoplay_run, self.lane
        if run is None or lane is None or lane.pending or lane.busy or not lane.in_sync:
            return
        prompt = lane.book.current
        if prompt.key != run.key:
            self._stop_autoplay("the prompt changed")
            return
        produced = prompt.ids[run.start:]
        reason = self.stop_rule.after(produced, len(prompt.ids), self.engine.decode) if produced else None
        if reason:
            self._stop_autoplay(reason)
            return
        lane.press("sample")
        self._after_lane()

    def _stop_autoplay(self, reason: str | None) -> None:
        run, self.autoplay_run = self.autoplay_run, None
        if run is None or reason is None:
            return
        made = len(self.lane.book.current.ids) - run.start if self.lane else 0
        self.notify(f"Autoplay stopped after {made} tokens: {reason}.", title="Autoplay", timeout=4)

    async def on_event(self, event: events.Event) -> None:
        # Any key stops autoplay (and does nothing else), except quitting.
        if (isinstance(event, events.Key) and self.autoplay_run is not None
                and not event.is_forwarded and event.key != "ctrl+q"):
            event.stop()
            self._stop_autoplay("stopped by a key")
            self._after_lane()
            return
        await super().on_event(event)

    # -- what the main view draws ------------------------------------------------------------
    def _shown_prompt(self):
        key, ids = self.lane.shown
        prompt = next((p for p in self.lane.book if p.key == key), None)
        return prompt, ids

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
        rows, allowed_only = self.table_candidates(lane)
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

    def table_candidates(self, lane) -> tuple[tuple, bool]:
        """The table's rows at the shown position (explorer.backend.types.Candidate), and
        whether they are a constraint's allowed tokens rather than the model's top ones."""
        return lane.records[-1].top, False

    def sampler_draw_key(self) -> tuple:
        """What, besides the lane, changes the look (so a knob change redraws)."""
        lane = self.lane
        return (None if self.sampler is None else self.sampler.settings,
                () if lane is None else lane.tracked, frozenset() if lane is None else lane.failed_views)

    def forced_report(self) -> None:
        """Once forced tokens are on screen: one line with each token's p_base."""
        note, lane = self._forced_note, self.lane
        if note is None or lane.shown is None:
            return
        key, first, count = note
        if lane.shown[0] != key or len(lane.records) < first + count:
            return
        self._forced_note = None
        parts = [f"{r.text!r} {percent(r.prob)}" for r in lane.records[first:first + count] if r.prob is not None]
        self.notify("Forced: " + " · ".join(parts), title="Forced text", timeout=8)
