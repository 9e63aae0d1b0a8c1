"""The explorer core's edits: what `space`, forced text and a checked `→` do to the book,
run by the lane in key-press order (explorer.session.lane.Edit), each once the views it
needs are on screen. No Textual.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from explorer.context_limit import context_error
from explorer.sampling.constraint import ConstraintError
from explorer.session.book import FORCED, SAMPLED
from explorer.session.choose import NoToken, choose_next
from explorer.session.job import Press
from explorer.session.lane import Lane
from explorer.session.positions import position_rows
from explorer.session.views import View

if TYPE_CHECKING:  # (the core imports this module to register the edits)
    from explorer.session.explorer import Explorer

def _context_full(core: Explorer, lane: Lane) -> bool:
    info = core.backend.info
    why = context_error(len(lane.book.current.ids), info.max_context, info.name, adding=1)
    if why is None:
        return False
    core.stop_autoplay(None)
    lane.notify(why, "warning")
    return True


def apply_sample(core: Explorer, lane: Lane, press: Press) -> None:
    if _context_full(core, lane):
        return
    prompt = lane.book.current
    try:
        choice = choose_next(core.sampler, prompt.ids, len(prompt.original), local=not core.samples_on_server,
                             row=lane.views.get(View.LOGITS), drawn=lane.views.get(View.DRAW))
    except NoToken as exc:
        core.stop_autoplay(exc.reason)
        lane.notify(str(exc), "warning")
        return
    except ConstraintError as exc:  # the text breaks it, or it is complete: no draw
        text = str(exc)
        if core.autoplaying:
            core.stop_autoplay(text[0].lower() + text[1:].rstrip("."))
        else:
            lane.notify(text, "warning")
        return
    if choice.ends:  # the server names its end-of-sequence token when it draws one
        core.stop_rule = replace(core.stop_rule, eos_ids=core.stop_rule.eos_ids | {choice.token_id})
    lane.book.append(choice.token_id, SAMPLED)


def apply_force(core: Explorer, lane: Lane, press: Press) -> None:
    ids = tuple(press.arg)
    prompt = lane.book.current
    c = core.constraint
    if c is not None and not c.fits(list(prompt.ids[len(prompt.original):]) + list(ids)):
        lane.notify(f"The forced text does not fit the constraint ({c.spec.describe()}); "
                    "nothing was appended.", "warning")
        return
    info = core.backend.info
    if why := context_error(len(prompt.ids), info.max_context, info.name, adding=len(ids)):
        lane.notify(f"{why} Nothing was appended.", "warning")
        return
    core.forced_note = (prompt.key, len(prompt.ids), len(ids))
    lane.book.extend(ids, FORCED)


def apply_append_valid(core: Explorer, lane: Lane, press: Press) -> None:
    top, _ = core.table_candidates()  # the rows on screen: allowed ones, or all
    if not top:
        return
    token = top[min(max(press.row, 0), len(top) - 1)].token_id
    prompt = lane.book.current
    why = core.sampler.forbids(token, prompt.ids, len(prompt.original))
    if why is not None:
        core.stop_autoplay(None)
        lane.notify(why, "warning")
        return
    lane.book.append(token)


def apply_branch(lane: Lane, press: Press) -> None:
    """→ at the position cursor (press.arg: the token index it was on): a new prompt of the
    tokens before it plus row press.row of the table there (the top of the distribution
    before that token and the token itself, as the screen showed them: the branch waits
    for them like →)."""
    index = press.arg
    if not isinstance(index, int) or not 0 < index < len(lane.records):
        return  # (the screen moved on: no such position any more)
    top = position_rows(lane.records[index - 1].top, lane.records[index])
    if top:
        parent = lane.book.index + 1
        lane.book.branch(index, top[min(max(press.row, 0), len(top) - 1)].token_id)
        lane.notify(f"Branched prompt {parent} at position {index + 1}: now on prompt "
                    f"{lane.book.index + 1}/{len(lane.book)}.", "information")
