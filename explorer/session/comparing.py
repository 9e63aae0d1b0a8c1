"""The explorer core's comparisons (Explorer.comparisons): the shown prompt against another
prompt of the book, and model A (the explorer's backend) against a second backend B on the
shown prompt's ids. The app's compare screens call these from a worker thread (each may
run the models); the numbers come from explorer.compare, as the `compare` command's do.
"""

from __future__ import annotations

from explorer.compare.branches import BranchComparison, backend_records, compare_branches, default_other
from explorer.compare.live import LiveComparison
from explorer.compare.models import CompareError, ModelComparison, vocabulary_mismatch


class Comparisons:
    def __init__(self, explorer) -> None:
        self._explorer = explorer
        self.backend_b = None  # model B, when one is loaded beside model A
        self._live: LiveComparison | None = None

    # -- branches ---------------------------------------------------------------------------
    def others(self) -> list:
        """The book's prompts other than the shown one, the default (parent fork) first."""
        explorer = self._explorer
        current, _ = explorer.shown_prompt()
        first = default_other(explorer.book, current) if current is not None else None
        rest = [p for p in explorer.book if current is None or p.key != current.key]
        return ([first] if first is not None else []) + [p for p in rest if p is not first]

    def branches(self, other=None, *, cancelled=None) -> BranchComparison:
        """The shown prompt (as the screen shows it) against `other` (default: its parent
        fork). Raises CompareError (one sentence) when the book has one prompt."""
        explorer = self._explorer
        current, ids = explorer.shown_prompt()
        if current is None:
            raise CompareError("The prompt on screen is gone; nothing to compare.")
        other = other or default_other(explorer.book, current)
        if other is None:
            raise CompareError("There is only one prompt; fork it with d and change the copy to compare two branches.")
        from dataclasses import replace

        shown = replace(current, ids=ids)
        return compare_branches(backend_records(explorer.backend, cancelled=cancelled), shown, other)

    # -- models ------------------------------------------------------------------------------
    def use_backend(self, backend_b) -> None:
        """Model B beside model A. Raises CompareError (one sentence) when they do not share
        a tokenizer; B is closed then."""
        if why := vocabulary_mismatch(self._explorer.backend, backend_b):
            backend_b.close()
            raise CompareError(why)
        self.close()
        self.backend_b = backend_b
        self._live = LiveComparison(self._explorer.backend, backend_b)

    def models(self, *, progress=None, cancelled=None) -> ModelComparison:
        """A against B on the shown prompt: one decode step of B after an append, a whole
        comparison the first time (explorer.compare.live)."""
        if self._live is None:
            raise CompareError("No second model is loaded; start with --compare MODEL, "
                               "--compare-dtype DTYPE or --compare-server URL.")
        current, ids = self._explorer.shown_prompt()
        key = current.key if current is not None else "gone"
        return self._live.update(key, ids, progress=progress, cancelled=cancelled)

    def model_switched(self) -> str | None:
        """Model A changed (Explorer.switch): B follows the new A, or is closed with one
        sentence when the two no longer share a tokenizer."""
        if self.backend_b is None:
            return None
        b = self.backend_b
        self.backend_b, self._live = None, None
        try:
            self.use_backend(b)
        except CompareError as exc:
            return f"{exc} Model B was closed."
        return None

    def close(self) -> None:
        if self.backend_b is not None:
            self.backend_b.close()
        self.backend_b, self._live = None, None
