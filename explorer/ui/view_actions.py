"""The app's actions that open a view or write files: the attribution layer (`e`, `i`,
`I`, `escape`, following the table's cursor), the token tree (`b`, explorer.ui.tree_screen) and
saving a prompt with its per-position JSONL (`x`). A mixin of TokenExplorerApp, kept apart
so the app module holds the wiring (start-up, lane, drawing) and these read on their own.
"""

from __future__ import annotations

from explorer.backend.types import ATTRIBUTION_BASELINES, ATTRIBUTION_METHODS, Attribution
from explorer.core.export import ExportError, record_lines, write_jsonl
from explorer.session import PromptFileError, save_prompt
from explorer.ui.tree_screen import TreeScreen
from explorer.ui.views import ColourLayer


class ViewActions:
    @property
    def attribution(self) -> Attribution | None:
        """The attribution the prompt is coloured by now (None: layer off or computing)."""
        name = self.look.attribution_name
        return None if name is None or self.lane is None else self.lane.views.get(name)

    def _save(self) -> None:
        prompt = self.book.current
        ids = prompt.ids
        folder = self.settings.resolve(self.settings.prompts.save_dir)
        try:
            path = save_prompt(folder, self.engine.decode(ids), ids, self.engine.info.name, prompt.chat,
                               original=prompt.original, origins=prompt.origins)
        except PromptFileError as exc:
            self.notify(str(exc), title="Save", severity="error", timeout=10)
            return
        # The lane holds a save until the screen shows the book's prompt: these records
        # are exactly the saved ids, one JSONL line per position (explorer.core.export).
        records = self.lane.records
        jsonl = path.with_suffix(".jsonl")
        try:
            if tuple(r.token_id for r in records) != ids:
                raise ExportError(f"Could not write {jsonl.name}: the prompt changed while saving.")
            write_jsonl(jsonl, record_lines(records, self.engine.decode))
        except ExportError as exc:
            self.notify(str(exc), title="Save", severity="error", timeout=10)
            jsonl = None
        root = self.settings.resolve(".")
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        also = f", {path.with_suffix('.json').name} and {jsonl.name}" if jsonl else f" and {path.with_suffix('.json').name}"
        self.notify(f"Saved {shown}{also}.", title="Save")

    def action_cycle_attribution(self) -> None:
        """i: the next attribution method (and the attribution layer, if it was off)."""
        if self.colour is ColourLayer.ATTRIBUTION:
            i = ATTRIBUTION_METHODS.index(self.attribution_method)
            self.attribution_method = ATTRIBUTION_METHODS[(i + 1) % len(ATTRIBUTION_METHODS)]
        else:
            self.colour = ColourLayer.ATTRIBUTION
        self._after_lane()

    def action_cycle_baseline(self) -> None:
        """I: integrated gradients from the next baseline (turning the attribution layer
        on, with integrated gradients, if it showed something else)."""
        showing = self.colour is ColourLayer.ATTRIBUTION \
            and self.attribution_method == "integrated_gradients"
        if showing:
            i = ATTRIBUTION_BASELINES.index(self.attribution_baseline)
            self.attribution_baseline = ATTRIBUTION_BASELINES[(i + 1) % len(ATTRIBUTION_BASELINES)]
        self.colour = ColourLayer.ATTRIBUTION
        self.attribution_method = "integrated_gradients"
        self._after_lane()

    def action_cancel_attribution(self) -> None:
        """esc: stop an attribution being computed (the layer goes off, nothing else)."""
        if self.colour is ColourLayer.ATTRIBUTION and self.attribution is None:
            self.colour = ColourLayer.NONE
            self.notify("Attribution cancelled.", title="Attribution", timeout=2)
            self._after_lane()

    def on_line_table_cursor_moved(self, event) -> None:
        # Attribution follows the cursor: another candidate is another target.
        if self.colour is ColourLayer.ATTRIBUTION and self.lane is not None:
            self._after_lane()

    def action_grow_tree(self) -> None:
        """`b`: grow a token tree after the prompt on screen (explorer.ui.tree_screen)."""
        missing = self.capabilities.missing("trees")
        if missing:
            self.notify(missing, title="Token tree", severity="warning")
            return
        if not self.is_idle or self.shown is None:
            self.notify("The model is still working; press b again when the prompt is shown.",
                        title="Token tree", severity="warning")
            return
        key, ids = self.shown
        screen = TreeScreen(self.engine, key, ids, self.settings.tree,
                            self.settings.resolve(self.settings.prompts.save_dir))
        self.push_screen(screen, callback=self._open_branch)

    def _open_branch(self, ids: tuple[int, ...] | None) -> None:
        """A branch chosen in the tree view becomes a new prompt (all views apply)."""
        if ids:
            self.book.add(ids)
            self.notify(f"Opened the branch as prompt {self.book.index + 1}/{len(self.book)}.",
                        title="Token tree")
        self._after_lane()
