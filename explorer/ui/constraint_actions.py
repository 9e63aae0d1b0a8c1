"""The main screen's constraint keys: `c` opens the constraint panel (set, edit, clear), `C`
lists the allowed or all tokens, and the header names the constraint. A part the screen
composes and calls (explorer.ui.main_screen); the constraint is the explorer core's
(explorer.session.explorer: `→` refuses a token it forbids, and `space`, autoplay and
forced text never append one). No model work.
"""

from __future__ import annotations

from textual.app import SystemCommand
from textual.binding import Binding

from explorer.backend import Feature
from explorer.ui.constraint_panel import ConstraintChoice, ConstraintPanel

CONSTRAINT_BINDINGS = [
    # Not in the footer (it is full): `?`, the palette and the README list it.
    Binding("c", "constraint_panel", "Constraint", id="sampler.constraint", show=False),
    Binding("C", "constraint_list", "Allowed/all tokens", id="sampler.constraint_list", show=False),
]


class ConstraintActions:
    """The constraint keys of `screen` (explorer.ui.main_screen.MainScreen)."""

    def __init__(self, screen) -> None:
        self.screen = screen

    def header(self) -> dict:
        """Keyword arguments for HeaderLine.show: the constraint's short form, and whether
        the shown prompt's appended text breaks it."""
        s = self.screen
        c = s.constraint
        if c is None or s.lane is None or s.lane.shown is None:
            return {}
        ids, prompt_len = s.core.shown_prompt_len()
        broken = not c.fits(ids[prompt_len:])
        label = c.spec.describe(32) + (" (broken here)" if broken else "")
        return {"constraint": label, "constraint_broken": broken}

    def commands(self):
        yield SystemCommand("Constraint", "Choices, a regex, a JSON schema or a Lark grammar "
                            "that the next tokens must follow (c)", self.panel)

    def panel(self) -> None:
        s = self.screen
        if why := s.capabilities.missing(Feature.CONSTRAINTS):
            s.notify(why, severity="warning")
            return
        spec = None if s.constraint is None else s.constraint.spec
        s.app.push_screen(ConstraintPanel(spec, s.core.prepare_constraint), self._chosen)

    def toggle_list(self) -> None:
        """`C`: the table lists the constraint's allowed tokens, or all tokens (flagged)."""
        s = self.screen
        if s.constraint is None:
            s.notify("No constraint is set; c sets one.", title="Constraint", timeout=3)
            return
        s.core.constraint_lists_all = not s.core.constraint_lists_all
        s.notify("The table lists all tokens; ✗ marks the ones the constraint forbids."
                 if s.core.constraint_lists_all else
                 "The table lists the tokens the constraint allows, likeliest first.",
                 title="Constraint", timeout=3)
        s.redraw()

    def _chosen(self, result: ConstraintChoice | None) -> None:
        if result is not None:
            self.screen.core.constrain(result.constraint)
            self.screen.redraw()
