"""The explorer core: one object that owns a session's prompt book (through the key-press
lane), the sampler and its stop rule, the tracked tokens, the constraint, autoplay and
model switching. No Textual: the app's screens call its verbs and draw its state; `trace`
chooses tokens with the same function (explorer.session.choose) and stops by the same
rule (explorer.session.generation).

Model work still goes through the lane (explorer.session.lane): sampling is an Edit that
waits for the kept logits row (the "logits" view; a server's "draw"), so a knob change or
a draw never runs the model; the token it appends is one decode step like any append.
Autoplay presses "sample" again each time the screen has caught up (`autoplay_tick`).

The constraint lives in the Sampler (it masks p_final after temperature and before
top-k/top-p) and covers the tokens appended since the prompt's original ids, as the
penalties count them; `→` refuses a token it forbids and `space`, autoplay and forced
text never append one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from explorer.backend import Feature
from explorer.sampling.settings import check_delay
from explorer.sampling.constraint import Constraint, ConstraintSpec
from explorer.session.book import PromptBook
from explorer.session.carry import carry_book, carry_pins
from explorer.session.comparing import Comparisons
from explorer.session.edits import apply_append_valid, apply_branch, apply_force, apply_sample
from explorer.session.generation import Generation
from explorer.session.job import Edit, Job
from explorer.session.lane import Lane
from explorer.session.sampler import Sampler, StopRule, start_sampler
from explorer.session.cursor import PositionCursor
from explorer.session import pins
from explorer.session.autoplay import autoplay_tick
from explorer.session.views import View


def _ignore(*args, **kwargs) -> None:
    pass


class Explorer:
    """notify(text, *, title="", severity="information", timeout=None): one sentence for
    the user. lane_note(text, severity): the lane's sentences (the app says a repeated one
    once). start_job(job): run a lane job somewhere; it must end with lane.finish().
    on_press(name): presses that are not book edits (e.g. "save"). background(view): a
    view that never holds up a press (an attribution)."""

    def __init__(self, backend, sampling_config, *, start_job: Callable[[Job], None],
                 notify: Callable[..., None] = _ignore,
                 lane_note: Callable[[str, str], None] | None = None,
                 on_press: Callable[[str], None] = _ignore,
                 background: Callable[[str], bool] = lambda view: False) -> None:
        self.backend = backend
        self.sampling_config = sampling_config  # explorer.sampling.SamplingConfig
        self._start_job, self._notify, self._on_press = start_job, notify, on_press
        self._lane_note = lane_note or (lambda text, severity: notify(text, severity=severity))
        self._background = background
        self.lane: Lane | None = None
        self.sampler: Sampler | None = None
        self.stop_rule = StopRule()
        self.autoplay_run: Generation | None = None
        self.autoplay_pressed_at = -float("inf")  # time.monotonic() of autoplay's last press
        self.forced_note: tuple[int, int, int] | None = None  # (key, first position, count)
        # Under a constraint the table lists the allowed tokens, likeliest first (the
        # model's top ones can all be forbidden, leaving nothing for → to take); `C` lists
        # all tokens, forbidden ones flagged, and back.
        self.constraint_lists_all = False
        # Branch and model comparisons (explorer.session.comparing): model B lives there.
        self.comparisons = Comparisons(self)
        # The position cursor (issue 23): look back at any earlier token, branch there.
        self.cursor = PositionCursor(self)

    # -- state ---------------------------------------------------------------------------
    @property
    def book(self) -> PromptBook | None:
        return None if self.lane is None else self.lane.book

    @property
    def can_sample(self) -> bool:
        caps = self.backend.capabilities
        return caps.sampling or caps.server_sampling

    @property
    def samples_on_server(self) -> bool:
        """The backend's own sampler draws (a server); else the session's, on the kept row."""
        return self.backend.capabilities.server_sampling

    @property
    def autoplaying(self) -> bool:
        return self.autoplay_run is not None

    @property
    def constraint(self) -> Constraint | None:
        return None if self.sampler is None else self.sampler.constraint

    def sampling_refusal(self) -> str | None:
        """One sentence when this backend cannot sample (None: it can)."""
        if self.can_sample:
            return None
        return f"Sampling is not available on this backend ({self.backend.capabilities.kind})."

    def shown_prompt(self):
        """(the prompt the screen shows, or None once it is gone; the shown ids)."""
        key, ids = self.lane.shown
        return next((p for p in self.lane.book if p.key == key), None), ids

    def shown_prompt_len(self) -> tuple[tuple[int, ...], int]:
        """(the shown ids, how many of them are the prompt's original ones)."""
        prompt, ids = self.shown_prompt()
        return ids, len(prompt.original) if prompt is not None else len(ids)

    def table_candidates(self) -> tuple[tuple, bool]:
        """The table's rows at the shown position (explorer.backend.types.Candidate), and
        whether they are a constraint's allowed tokens rather than the model's top ones:
        with a constraint that masks here (and `C` not pressed), the likeliest allowed
        tokens, as many as the table's usual rows, from the kept logits row."""
        lane = self.lane
        top = lane.records[-1].top
        row = lane.views.get(View.LOGITS)
        if self.constraint is None or self.constraint_lists_all or row is None or not top:
            return top, False
        ids, prompt_len = self.shown_prompt_len()
        listed = self.sampler.allowed_top(row, ids, prompt_len, len(top), self.backend.token_text)
        return (top, False) if listed is None else (listed, True)

    # -- opening -------------------------------------------------------------------------
    def open(self, book: PromptBook, *, keep: tuple[Sampler, StopRule] | None = None,
             tracked=()) -> None:
        """Start on `book` with this backend: a sampler and the one lane (start-up and a
        model switch). keep: the previous model's sampler and stop rule, whose knobs, seed,
        token limit and stop strings stay as the user left them."""
        edits = self._start_sampler(keep)
        edits["branch"] = Edit(apply_branch)  # (lane.WAIT_FOR_SCREEN: it waits for the table)
        self.lane = Lane(book, start=self._start_job, notify=self._lane_note, on_press=self._on_press,
                         edits=edits, tracked=tracked, background=self._background)

    def _start_sampler(self, keep) -> dict[str, Edit]:
        old = None if self.sampler is None else self.sampler.constraint
        self.sampler = None
        if old is not None:  # a new Sampler (a model switch): no constraint
            self._notify(f"The constraint ({old.spec.describe()}) was compiled for the previous model's "
                         "tokenizer and is cleared; set it again with c.", title="Constraint",
                         severity="warning", timeout=6)
        if not self.can_sample:
            return {}
        self.sampler, self.stop_rule = start_sampler(self.sampling_config, self.backend, keep,
                                                     self._notify)
        view = View.DRAW if self.samples_on_server else View.LOGITS
        return {"sample": Edit(partial(apply_sample, self), needs=frozenset({view})),
                "force": Edit(partial(apply_force, self)),
                # Waits like sampling, for the shown table (the candidate under the cursor).
                "append_valid": Edit(partial(apply_append_valid, self), needs=frozenset({View.LOGITS}))}

    def switch(self, new, name: str) -> list[str]:
        """Swap to backend `new` (model `name`): every prompt and pin carried over by its
        text, the sampler's settings and seed kept; the old backend is closed. Call it
        when no job runs. Returns the warnings (one sentence each)."""
        old = self.backend
        book, warning = carry_book(self.lane.book, old.decode, new.decode, new.encode,
                                   new.info.vocab_size, name)
        # Pins are ids of the old vocabulary: carried by their text (an id kept as is would
        # name another token there, or none, and the tracked view would never arrive).
        pins, pins_note = carry_pins(self.lane.tracked, old, new, name)
        keep = None if self.sampler is None else (self.sampler, self.stop_rule)
        self.backend = new
        self.open(book, keep=keep, tracked=pins)  # the user's knobs and seed, not the new defaults
        old.close()
        compare_note = self.comparisons.model_switched()
        return [text for text in (warning, pins_note, compare_note) if text]

    # -- keeping the session (explorer.session.keep) ------------------------------------
    def snapshot(self, model: str, ui=None):
        """The whole session as a SessionState (ui: the screen's layer, view, position)."""
        from explorer.session.keep import capture

        return capture(self, model, ui)

    def resume(self, state) -> list[str]:
        """Open a saved session on this backend (explorer.session.keep.resume: prompts,
        sampler, stop rule, pins, constraint); compiling a constraint is slow, so call it
        in a thread. Returns the notes (one sentence each)."""
        from explorer.session.keep import resume

        return resume(self, state)

    # -- verbs ---------------------------------------------------------------------------
    def press(self, name: str, row: int = 0) -> None:
        """A book key (append, pop, previous, next, fork, remove, reset, save), in order;
        with a constraint, `append` checks the token."""
        if name == "append" and self.constraint is not None:
            name = "append_valid"
        self.lane.press(name, row=row)

    def append(self, row: int = 0) -> None:
        """Append the table's candidate at `row` (→), once that table is on screen."""
        self.press("append", row)

    def pop(self) -> None:
        self.press("pop")

    def fork(self) -> None:
        self.press("fork")

    def save(self) -> None:
        """Save the prompt (x) once the screen shows it: `on_press("save")` writes the files."""
        self.press("save")

    def sync_sampler(self) -> None:
        """The lane's "draw" view draws with the sampler's current settings."""
        if self.sampler is not None and self.samples_on_server:
            self.lane.use_sampling(self.sampler.settings)

    def sample(self) -> None:
        """Draw one token (space)."""
        self._ask_server_again()
        self.lane.press("sample")

    def say(self, text: str, **kwargs) -> None:
        """One sentence for the user (the notify callback the core was made with)."""
        self._notify(text, **kwargs)

    def _ask_server_again(self) -> None:
        """A draw that failed (the server was down) is asked for again by the next key."""
        lane = self.lane
        if self.samples_on_server and View.DRAW not in lane.views and not lane.busy and lane.in_sync:
            lane.refetch(View.DRAW)

    def force(self, text: str) -> None:
        """Append `text` as tokens (t); their p_base shows once they are on screen."""
        ids = self.backend.encode_plain(text)
        if not ids:
            self._notify(f"The text {text!r} gives no tokens; nothing was appended.", severity="warning")
            return
        self.lane.press("force", arg=tuple(ids))

    def set_sampler(self, settings, stop: StopRule, delay: float | None = None) -> None:
        """The sampler panel's result: knobs (text or numbers), token limit, stop strings
        and autoplay's step delay (None: unchanged)."""
        if delay is not None:
            self.set_autoplay_delay(delay)
        self.sampler.change(**settings.as_dict())
        self.stop_rule = replace(self.stop_rule, max_tokens=stop.max_tokens, stop_strings=stop.stop_strings)
        self._notify(f"Sampler: {self.sampler.describe()}.", title="Sampler", timeout=3)

    def prepare_constraint(self, spec: ConstraintSpec) -> Constraint:
        """Compile `spec` and check the current prompt's appended tokens against it (slow:
        call it in a thread). Raises ConstraintError (one sentence)."""
        constraint = self.backend.constraint(spec)
        prompt = self.lane.book.current
        self.sampler.check_fits(constraint, prompt.ids, len(prompt.original))
        return constraint

    def constrain(self, constraint: Constraint | None) -> None:
        """Use `constraint` (c; None clears it)."""
        self.sampler.set_constraint(constraint)
        if constraint is None:
            self._notify("Constraint cleared.", title="Constraint", timeout=3)
        else:
            self._notify(f"Constraint: {constraint.spec.describe()}.", title="Constraint", timeout=3)

    # -- tracked tokens ----------------------------------------------------------------------
    @property
    def tracked_ids(self) -> list[int]:
        """The pinned token ids, in pin order. The lane holds them (one truth: the ids the
        tracked view is fetched for are the ids the panel waits for)."""
        return [] if self.lane is None else list(self.lane.tracked)

    def tracking_refusal(self) -> str | None:
        return self.backend.capabilities.missing(Feature.TRACKED)

    def pin(self, token_id: int) -> None:
        """Pin `token_id` (m), or unpin it when it is pinned."""
        if token_id in self.tracked_ids:
            self.unpin(token_id)
        else:
            self.retrack(self.tracked_ids + [token_id])

    def unpin(self, token_id: int) -> None:
        pins = self.tracked_ids
        if token_id in pins:
            pins.remove(token_id)
            self._notify(f"Unpinned {self.backend.token_text(token_id)!r}.", timeout=2)
            self.retrack(pins)

    def pin_text(self, text: str) -> None:
        """Pin every token of `text` (M), or unpin them when that text is pinned already;
        ids as vLLM users give them (`#263`, `id 263`, `#263, #5`). explorer.session.pins."""
        pins.pin_text(self, text)

    def pin_ids(self, ids: list[int]) -> None:
        """Pin tokens by id (M with `#263`), or unpin them when all are pinned already."""
        pins.pin_ids(self, ids)

    def retrack(self, pins: list[int]) -> None:
        """Track exactly `pins` (in this order)."""
        self.lane.track(tuple(pins))
        if self.samples_on_server and self.sampler is not None:  # the draw adds the pins' p_final
            self.lane.refetch(View.DRAW)

    # -- LLM off -----------------------------------------------------------------------------
    @property
    def model_off(self) -> bool:
        """next-token-visualization's "LLM off": edit the text without the model running."""
        return self.lane is not None and self.lane.model_off

    def toggle_model(self) -> None:
        """Model work off (pop, force text and forks still apply; appends and sampling are
        refused with a sentence) or back on (one computation for what changed)."""
        if self.lane is None:
            return
        off = not self.lane.model_off
        if off:
            self.stop_autoplay("the model was turned off")
        self.lane.set_model_off(off)
        self._notify("The model is off: pop, force text and fork apply without it." if off
                     else "The model is on again.", title="Model", timeout=3)

    # -- autoplay --------------------------------------------------------------------------
    def autoplay(self) -> None:
        """Start autoplay (g), or stop it when it runs."""
        if self.autoplay_run is not None:
            self.stop_autoplay("stopped by a key")
            return
        prompt = self.lane.book.current
        self.autoplay_run = Generation(prompt.key, len(prompt.ids), self.stop_rule)
        self._ask_server_again()
        self._notify(f"Autoplay: {self.sampler.describe()}; up to {self.stop_rule.max_tokens} tokens. "
                     "Any key stops it.", title="Autoplay", timeout=3)
        self.autoplay_tick()

    def autoplay_tick(self, now: float | None = None) -> float | None:
        """Press "sample" again once the screen has caught up and the step delay has passed;
        the seconds still to wait, or None (explorer.session.autoplay)."""
        return autoplay_tick(self, time.monotonic() if now is None else now)

    @property
    def autoplay_delay(self) -> float:
        """Seconds between autoplay's steps (0: as fast as the model answers)."""
        return self.sampling_config.delay

    def set_autoplay_delay(self, seconds: object) -> None:
        """The `o` panel's step delay; raises SamplingError (one sentence)."""
        self.sampling_config = replace(self.sampling_config, delay=check_delay(seconds, "The autoplay delay"))

    def stop_autoplay(self, reason: str | None) -> None:
        run, self.autoplay_run = self.autoplay_run, None
        if run is None or reason is None:
            return
        made = len(self.lane.book.current.ids) - run.start if self.lane else 0
        self._notify(f"Autoplay stopped after {made} tokens: {reason}.", title="Autoplay", timeout=4)

