"""The main screen's view keys and the look they choose: the colour layer (`e`), the layer
view (`p`), the attribution layer (`i`, `I`, `escape`, following the table's cursor), the
token tree (`b`, explorer.ui.tree_screen) and saving a prompt with its per-position JSONL
(`x`). A part the screen composes and calls (explorer.ui.main_screen); it keeps the
screen's colour, layer view and attribution choices.
"""

from __future__ import annotations

from textual.app import SystemCommand

from explorer.backend.types import ATTRIBUTION_BASELINES, ATTRIBUTION_METHODS, Attribution
from explorer.core.export import ExportError, record_lines, write_jsonl
from explorer.session import PromptFileError, save_prompt
from explorer.ui.main_view import Look
from explorer.ui.tree_screen import TreeScreen
from explorer.ui.views import ColourLayer, LayerView


class ViewActions:
    """The view keys of `screen` (explorer.ui.main_screen.MainScreen)."""

    def __init__(self, screen, baseline: str) -> None:
        self.screen = screen
        self.colour = ColourLayer.NONE
        self.layer_view = LayerView.NONE
        self.attribution_method = ATTRIBUTION_METHODS[0]  # i cycles through the methods
        self.attribution_baseline = baseline  # I cycles these

    @property
    def layer_prob(self) -> bool:
        return self.screen.settings.layer_prob

    def look(self) -> Look:
        s = self.screen
        attribution = None
        position = None if s.core is None else s.core.cursor.index
        if self.colour is ColourLayer.ATTRIBUTION and s.lane is not None and position is not None:
            # At the position cursor: the row under the table cursor of the table there.
            table = s.core.cursor.table()
            rows = () if table is None else table.rows
            candidate = rows[min(s.table.cursor_row, len(rows) - 1)] if rows else None
            if candidate is not None:
                attribution = (self.attribution_method, candidate.token_id, candidate.text)
        elif self.colour is ColourLayer.ATTRIBUTION and s.lane is not None:
            candidate = s.table.selected()
            records = s.lane.records
            drawn = s.drawing.drawn
            if records and (drawn is None or drawn[1] != id(records)):
                # The table still lists the candidates of the records drawn before; the
                # draw about to happen shows these records' (MainView.draw), the cursor
                # staying on its row. Name (and ask for) what will be drawn.
                top, _ = s.core.table_candidates()  # a constraint lists its allowed ones
                candidate = top[min(s.table.cursor_row, len(top) - 1)] if top else None
            if candidate is not None:
                attribution = (self.attribution_method, candidate.token_id, candidate.text)
        return Look(self.colour, self.layer_view if self.layer_prob else None, s.capabilities,
                    attribution, tracking=bool(s.tracked_ids), baseline=self.attribution_baseline,
                    position=position)

    @property
    def attribution(self) -> Attribution | None:
        """The attribution the prompt is coloured by now (None: layer off or computing)."""
        name = self.look().attribution_name
        return None if name is None or self.screen.lane is None else self.screen.lane.views.get(name)

    def commands(self):
        yield SystemCommand("Cycle colour layer", "none → probability → entropy → influence",
                            self.cycle_colour)
        yield SystemCommand("Cycle layer view", "probabilities → correlations → none (--layer_prob)",
                            self.cycle_layer_view)

    def drop_failed_view(self) -> None:
        """A view job failed: without its data the view cannot be drawn; turn it off
        rather than retry."""
        if self.colour in (ColourLayer.INFLUENCE, ColourLayer.ATTRIBUTION):
            self.colour = ColourLayer.NONE
        self.layer_view = LayerView.NONE

    # -- keys ----------------------------------------------------------------------------
    def cycle_colour(self) -> None:
        self.colour = self.colour.next()
        self.screen.redraw()

    def cycle_layer_view(self) -> None:
        if not self.layer_prob:
            self.screen.notify("Layer views need the logit lens: start with --layer_prob.",
                               title="Layer views", severity="warning")
            return
        self.layer_view = self.layer_view.next()
        self.screen.redraw()

    def cycle_attribution(self) -> None:
        """i: the attribution layer with the first method, then the next method, and off
        past the last (`e` never reaches attribution: no gradient job by accident)."""
        if self.colour is not ColourLayer.ATTRIBUTION:
            self.colour = ColourLayer.ATTRIBUTION
            self.attribution_method = ATTRIBUTION_METHODS[0]
        else:
            i = ATTRIBUTION_METHODS.index(self.attribution_method)
            if i + 1 < len(ATTRIBUTION_METHODS):
                self.attribution_method = ATTRIBUTION_METHODS[i + 1]
            else:
                self.colour = ColourLayer.NONE
        self.screen.redraw()

    def cycle_baseline(self) -> None:
        """I: integrated gradients from the next baseline (turning the attribution layer
        on, with integrated gradients, if it showed something else)."""
        showing = self.colour is ColourLayer.ATTRIBUTION \
            and self.attribution_method == "integrated_gradients"
        if showing:
            i = ATTRIBUTION_BASELINES.index(self.attribution_baseline)
            self.attribution_baseline = ATTRIBUTION_BASELINES[(i + 1) % len(ATTRIBUTION_BASELINES)]
        self.colour = ColourLayer.ATTRIBUTION
        self.attribution_method = "integrated_gradients"
        self.screen.redraw()

    def cancel_attribution(self) -> None:
        """esc: the attribution layer off, cancelling one being computed."""
        if self.colour is ColourLayer.ATTRIBUTION:
            computing = self.attribution is None
            self.colour = ColourLayer.NONE
            if computing:
                self.screen.notify("Attribution cancelled.", title="Attribution", timeout=2)
            self.screen.redraw()

    def cursor_moved(self) -> None:
        # Attribution follows the cursor: another candidate is another target.
        if self.colour is ColourLayer.ATTRIBUTION and self.screen.lane is not None:
            self.screen.redraw()

    def grow_tree(self) -> None:
        """`b`: grow a token tree after the prompt on screen (explorer.ui.tree_screen)."""
        s = self.screen
        missing = s.capabilities.missing("trees")
        if missing:
            s.notify(missing, title="Token tree", severity="warning")
            return
        if not s.app.is_idle or s.shown is None:
            s.notify("The model is still working; press b again when the prompt is shown.",
                     title="Token tree", severity="warning")
            return
        key, ids = s.shown
        settings = s.settings
        tree = TreeScreen(s.engine, key, ids, settings.tree, settings.resolve(settings.prompts.save_dir))
        s.app.push_screen(tree, callback=self._open_branch)

    def show_file_tree(self, path) -> None:
        """`-i` named a Gemma token tree: its prompt is open; show its tree in the tree view."""
        from explorer.session.gemma_files import read_gemma
        from explorer.tree.gemma import tree_from_gemma

        s = self.screen
        gemma = read_gemma(path)
        if gemma is None or gemma.tree is None or s.shown is None:
            return
        key, ids = s.shown
        try:
            tree = tree_from_gemma(gemma.tree, ids, s.engine.token_text)
        except (KeyError, TypeError, ValueError) as exc:
            s.notify(f"{path.name} holds a token tree this view cannot read ({exc}).",
                     title="Token tree", severity="error")
            return
        settings = s.settings
        s.app.push_screen(TreeScreen(s.engine, key, ids, tree.settings,
                                     settings.resolve(settings.prompts.save_dir), tree=tree),
                          callback=self._open_branch)

    def _open_branch(self, ids: tuple[int, ...] | None) -> None:
        """A branch chosen in the tree view becomes a new prompt (all views apply)."""
        book = self.screen.book
        if ids:
            book.add(ids)
            self.screen.notify(f"Opened the branch as prompt {book.index + 1}/{len(book)}.",
                               title="Token tree")
        self.screen.redraw()

    def save(self) -> None:
        """`x`, once the lane shows the book's prompt: the prompt's .txt and .json, and one
        JSONL line per position (explorer.core.export)."""
        s = self.screen
        engine, prompt = s.engine, s.book.current
        ids = prompt.ids
        folder = s.settings.resolve(s.settings.prompts.save_dir)
        try:
            path = save_prompt(folder, engine.decode(ids), ids, engine.info.name, prompt.chat,
                               original=prompt.original, origins=prompt.origins,
                               branched_from=prompt.branched_from)
        except PromptFileError as exc:
            s.notify(str(exc), title="Save", severity="error", timeout=10)
            return
        # The lane holds a save until the screen shows the book's prompt: these records
        # are exactly the saved ids.
        records = s.lane.records
        jsonl = path.with_suffix(".jsonl")
        try:
            if tuple(r.token_id for r in records) != ids:
                raise ExportError(f"Could not write {jsonl.name}: the prompt changed while saving.")
            write_jsonl(jsonl, record_lines(records, engine.decode))
        except ExportError as exc:
            s.notify(str(exc), title="Save", severity="error", timeout=10)
            jsonl = None
        root = s.settings.resolve(".")
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        also = f", {path.with_suffix('.json').name} and {jsonl.name}" if jsonl else f" and {path.with_suffix('.json').name}"
        s.notify(f"Saved {shown}{also}.", title="Save")
