"""The app's constraint key: `c` opens the constraint panel (set, edit, clear), the header
names the constraint. A mixin of TokenExplorerApp; the constraint is the explorer core's
(explorer.session.explorer: `→` refuses a token it forbids, and `space`, autoplay and
forced text never append one). No model work.
"""

from __future__ import annotations

from textual.binding import Binding

from explorer.backend import Feature
from explorer.sampling.constraint import Constraint
from explorer.ui.constraint_panel import ConstraintChoice, ConstraintPanel

CONSTRAINT_BINDINGS = [
    # Not in the footer (it is full): `?`, the palette and the README list it.
    Binding("c", "constraint_panel", "Constraint", id="sampler.constraint", show=False),
    Binding("C", "constraint_list", "Allowed/all tokens", id="sampler.constraint_list", show=False),
]
CONSTRAINT_ACTIONS = frozenset({"constraint_panel", "constraint_list"})


class ConstraintActions:
    """Mixed into TokenExplorerApp: the constraint keys call the explorer core."""

    # -- public surface ------------------------------------------------------------------
    @property
    def constraint(self) -> Constraint | None:
        return None if self.core is None else self.core.constraint

    @property
    def constraint_lists_all(self) -> bool:
        return self.core is not None and self.core.constraint_lists_all

    def constraint_header(self) -> dict:
        """Keyword arguments for HeaderLine.show: the constraint's short form, and whether
        the shown prompt's appended text breaks it."""
        c = self.constraint
        if c is None or self.lane is None or self.lane.shown is None:
            return {}
        ids, prompt_len = self.core.shown_prompt_len()
        broken = not c.fits(ids[prompt_len:])
        label = c.spec.describe(32) + (" (broken here)" if broken else "")
        return {"constraint": label, "constraint_broken": broken}

    def constraint_commands(self):
        from textual.app import SystemCommand

        yield SystemCommand("Constraint", "Choices, a regex, a JSON schema or a Lark grammar "
                            "that the next tokens must follow (c)", self.action_constraint_panel)

    # -- key actions -----------------------------------------------------------------------
    def action_constraint_panel(self) -> None:
        if why := self.capabilities.missing(Feature.CONSTRAINTS):
            self.notify(why, severity="warning")
            return
        spec = None if self.constraint is None else self.constraint.spec
        self.push_screen(ConstraintPanel(spec, self.core.prepare_constraint), self._constraint_chosen)

    def action_constraint_list(self) -> None:
        """`C`: the table lists the constraint's allowed tokens, or all tokens (flagged)."""
        if self.constraint is None:
            self.notify("No constraint is set; c sets one.", title="Constraint", timeout=3)
            return
        self.core.constraint_lists_all = not self.core.constraint_lists_all
        self.notify("The table lists all tokens; ✗ marks the ones the constraint forbids."
                    if self.constraint_lists_all else
                    "The table lists the tokens the constraint allows, likeliest first.",
                    title="Constraint", timeout=3)
        self._after_lane()

    def _constraint_chosen(self, result: ConstraintChoice | None) -> None:
        if result is not None:
            self.core.constrain(result.constraint)
            self._after_lane()
