"""Progress of a headless command on stderr (rich), quiet when stdout is not a terminal:
a report piped to a file or another program comes without bars, as a script wants it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                           TimeElapsedColumn)

Tick = Callable[[int, int], None]  # (done, total)


def _nothing(*_args) -> None:
    return None


class TraceProgress:
    """Bars for loading the model, reading the prompt and generating. `console` None: quiet."""

    def __init__(self, console: Console | None) -> None:
        self.console = console

    @classmethod
    def for_terminal(cls) -> "TraceProgress":
        return cls(Console(stderr=True) if sys.stdout.isatty() else None)

    def warn(self, text: str) -> None:
        """A warning is not progress: it goes to stderr even when the bars are quiet."""
        print(f"warning: {text}", file=sys.stderr)

    @contextmanager
    def _bars(self) -> Iterator[Progress | None]:
        if self.console is None:
            yield None
            return
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                      MofNCompleteColumn(), TimeElapsedColumn(), console=self.console,
                      transient=True) as bars:
            yield bars

    @contextmanager
    def loading(self, model: str) -> Iterator[Callable[[str], None]]:
        """Yields say(text): the stage of loading, shown beside a spinner."""
        if self.console is None:
            yield _nothing
            return
        with self.console.status(f"Loading {model}…") as status:
            yield lambda text: status.update(text)

    @contextmanager
    def generating(self, prompt_len: int, max_new_tokens: int) -> Iterator[tuple[Tick, Tick]]:
        """Yields (on_prefill, on_step) for the prompt's prefill and the new tokens."""
        with self._bars() as bars:
            if bars is None:
                yield _nothing, _nothing
                return
            read = bars.add_task(f"Reading the prompt ({prompt_len} tokens)", total=prompt_len)
            gen = bars.add_task("Generating", total=max_new_tokens)

            def on_prefill(done: int, total: int) -> None:
                bars.update(read, completed=done, total=total)

            def on_step(done: int, total: int) -> None:
                bars.update(read, completed=bars.tasks[read].total)
                bars.update(gen, completed=done, total=total)

            yield on_prefill, on_step
