"""What each book press does to the prompt book, dispatched by a table (the lane applies
presses in key-press order; any other name is an Edit or handed to `on_press`). No Textual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from explorer.session.job import Press

if TYPE_CHECKING:  # (the lane imports this table)
    from explorer.session.lane import Lane

# Presses that edit the book; any other name is handed to `on_press` in order.
BOOK_PRESSES = frozenset({"append", "pop", "previous", "next", "fork", "remove", "reset"})


def _append(lane: Lane, press: Press) -> None:
    top = lane.records[-1].top  # the table the press was made on: it waited for it
    if top:
        lane.book.append(top[min(max(press.row, 0), len(top) - 1)].token_id)


def _fork(lane: Lane, press: Press) -> None:
    lane.book.fork()
    lane.notify(f"Forked: now on prompt {lane.book.index + 1}/{len(lane.book)}.", "information")


def _remove(lane: Lane, press: Press) -> None:
    lane.forget_later(lane.book.remove().key)


# What each book press does (BOOK_PRESSES): lane, press -> None, in key-press order.
BOOK_ACTIONS: dict[str, Callable[[Lane, Press], None]] = {
    "append": _append,
    "pop": lambda lane, press: lane.book.pop(),
    "previous": lambda lane, press: lane.book.previous(),
    "next": lambda lane, press: lane.book.next(),
    "fork": _fork,
    "remove": _remove,
    "reset": lambda lane, press: lane.book.reset(),
}
assert BOOK_ACTIONS.keys() == BOOK_PRESSES
