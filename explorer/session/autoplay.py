"""One autoplay step of the explorer core (explorer.session.explorer): `g` starts a
Generation, and each time the screen has caught up the core presses "sample" again, the
same edit as `space`, so autoplay chooses by the same function as `trace`
(explorer.session.choose) and stops by the same rule (explorer.session.generation)."""

from __future__ import annotations


def autoplay_tick(core, now: float) -> float | None:
    """Press "sample" again once the screen shows the last sampled token and the step
    delay ([sampling] autoplay_delay, the `o` panel) has passed since the last press.
    Returns the seconds still to wait when only the delay holds it back (the caller
    ticks again then), else None. `now`: time.monotonic() (tests pass their own)."""
    run, lane = core.autoplay_run, core.lane
    if run is None or lane is None or lane.pending or lane.busy or not lane.in_sync:
        return None
    wait = core.autoplay_pressed_at + core.autoplay_delay - now
    if wait > 0:
        return wait
    prompt = lane.book.current
    if prompt.key != run.key:
        core.stop_autoplay("the prompt changed")
        return None
    run.rule = core.stop_rule  # the panel's changes and the ends a server named
    reason = run.after(prompt.ids, core.backend.decode)
    if reason:
        core.stop_autoplay(reason)
        return None
    core.autoplay_pressed_at = now
    lane.press("sample")
    return None
