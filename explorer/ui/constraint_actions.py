"""The app's constraint key: `c` opens the constraint panel (set, edit, clear), the header
names the constraint, `→` refuses a token it forbids, and `space`, autoplay and forced text
never append one. A mixin of TokenExplorerApp, beside SamplerActions (which it wraps).

The constraint lives in the session's Sampler (it masks p_final after temperature and
before top-k/top-p) and covers the tokens appended since the prompt's original ids, as the
penalties count them; pop, fork and reset only roll its matcher back. No model work.
"""

from __future__ import annotations

from textual.binding import Binding

from explorer.backend import Feature
from explorer.sampling.constraint import Constraint, ConstraintError, ConstraintSpec
from explorer.session import Edit, Lane
from explorer.ui.constraint_panel import ConstraintChoice, ConstraintPanel

CONSTRAINT_BINDINGS = [
    # Not in the footer (it is full): `?`, the palette and the README list it.
    Binding("c", "constraint_panel", "Constraint", id="sampler.constraint", show=False),
    Binding("C", "constraint_list", "Allowed/all tokens", id="sampler.constraint_list", show=False),
]
CONSTRAINT_ACTIONS = frozenset({"constraint_panel", "constraint_list"})


class ConstraintActions:
    """Mixed into TokenExplorerApp before SamplerActions (it extends its edits)."""

    # Under a constraint the table lists the allowed tokens, likeliest first (the model's
    # top ones can all be forbidden, leaving nothing for → to take); `C` lists all tokens,
    # forbidden ones flagged, and back.
    constraint_lists_all = False

    # -- public surface ------------------------------------------------------------------
    @property
    def constraint(self) -> Constraint | None:
        return None if self.sampler is None else self.sampler.constraint

    def constraint_header(self) -> dict:
        """Keyword arguments for HeaderLine.show: the constraint's short form, and whether
        the shown prompt's appended text breaks it."""
        c = self.constraint
        if c is None or self.lane is None or self.lane.shown is None:
            return {}
        prompt, ids = self._shown_prompt()
        prompt_len = len(prompt.original) if prompt is not None else len(ids)
        broken = not c.fits(ids[prompt_len:])
        label = c.spec.describe(32) + (" (broken here)" if broken else "")
        return {"constraint": label, "constraint_broken": broken}

    # -- wiring ----------------------------------------------------------------------------
    def _start_sampler(self, keep=None) -> dict[str, Edit]:
        old = getattr(self, "sampler", None)
        old = None if old is None else old.constraint
        edits = super()._start_sampler(keep)  # a new Sampler (a model switch too): no constraint
        if old is not None:
            self.notify(f"The constraint ({old.spec.describe()}) was compiled for the previous model's "
                        "tokenizer and is cleared; set it again with c.", title="Constraint",
                        severity="warning", timeout=6)
        if edits:
            # Waits like sampling, for the shown table (the candidate under the cursor).
            edits["append_valid"] = Edit(self._apply_append_valid, needs=frozenset({"logits"}))
        return edits

    def table_candidates(self, lane) -> tuple[tuple, bool]:
        """With a constraint that masks here (and `C` not pressed), the likeliest allowed
        tokens, as many as the table's usual rows, from the kept logits row."""
        top = lane.records[-1].top
        row = lane.views.get("logits")
        if self.constraint is None or self.constraint_lists_all or row is None or not top:
            return top, False
        prompt, ids = self._shown_prompt()
        prompt_len = len(prompt.original) if prompt is not None else len(ids)
        listed = self.sampler.allowed_top(row, ids, prompt_len, len(top), self.engine.token_text)
        return (top, False) if listed is None else (listed, True)

    def book_press(self, press: str) -> str:
        """The lane press for a book key: with a constraint, `append` checks the token."""
        if press == "append" and self.constraint is not None:
            return "append_valid"
        return press

    def constraint_commands(self):
        from textual.app import SystemCommand

        yield SystemCommand("Constraint", "Choices, a regex, a JSON schema or a Lark grammar "
                            "that the next tokens must follow (c)", self.action_constraint_panel)

    # -- edits (run by the lane in key-press order) -----------------------------------------
    def _apply_append_valid(self, lane: Lane, press) -> None:
        top, _ = self.table_candidates(lane)  # the rows on screen: allowed ones, or all
        if not top:
            return
        token = top[min(max(press.row, 0), len(top) - 1)].token_id
        prompt = lane.book.current
        why = self.sampler.forbids(token, prompt.ids, len(prompt.original))
        if why is not None:
            self._stop_autoplay(None)
            lane.notify(why, "warning")
            return
        lane.book.append(token)

    def _apply_sample(self, lane: Lane, press) -> None:
        try:
            super()._apply_sample(lane, press)
        except ConstraintError as exc:  # the text breaks it, or it is complete: no draw
            text = str(exc)
            if self.autoplaying:
                self._stop_autoplay(text[0].lower() + text[1:].rstrip("."))
            else:
                lane.notify(text, "warning")

    def sampler_draw_key(self) -> tuple:
        return super().sampler_draw_key() + (id(self.constraint), self.constraint_lists_all)

    def _apply_force(self, lane: Lane, press) -> None:
        c = self.constraint
        if c is not None:
            prompt = lane.book.current
            if not c.fits(list(prompt.ids[len(prompt.original):]) + list(press.arg)):
                lane.notify(f"The forced text does not fit the constraint ({c.spec.describe()}); "
                            "nothing was appended.", "warning")
                return
        super()._apply_force(lane, press)

    # -- key actions -----------------------------------------------------------------------
    def action_constraint_panel(self) -> None:
        if why := self.capabilities.missing(Feature.CONSTRAINTS):
            self.notify(why, severity="warning")
            return
        spec = None if self.constraint is None else self.constraint.spec
        self.push_screen(ConstraintPanel(spec, self._prepare_constraint), self._constraint_chosen)

    def action_constraint_list(self) -> None:
        """`C`: the table lists the constraint's allowed tokens, or all tokens (flagged)."""
        if self.constraint is None:
            self.notify("No constraint is set; c sets one.", title="Constraint", timeout=3)
            return
        self.constraint_lists_all = not self.constraint_lists_all
        self.notify("The table lists all tokens; ✗ marks the ones the constraint forbids."
                    if self.constraint_lists_all else
                    "The table lists the tokens the constraint allows, likeliest first.",
                    title="Constraint", timeout=3)
        self._after_lane()

    def _prepare_constraint(self, spec: ConstraintSpec) -> Constraint:
        """In the panel's thread: compile, and check the current prompt's appended tokens."""
        constraint = self.engine.constraint(spec)
        prompt = self.lane.book.current
        self.sampler.check_fits(constraint, prompt.ids, len(prompt.original))
        return constraint

    def _constraint_chosen(self, result: ConstraintChoice | None) -> None:
        if result is None:
            return
        self.sampler.set_constraint(result.constraint)
        if result.constraint is None:
            self.notify("Constraint cleared.", title="Constraint", timeout=3)
        else:
            self.notify(f"Constraint: {result.constraint.spec.describe()}.", title="Constraint", timeout=3)
        self._after_lane()
