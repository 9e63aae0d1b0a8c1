"""Write docs/screenshot.svg: the default prompt, a few steps, the probability layer on.

    uv run python -m explorer.ui.screenshot [OUT.svg]
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from explorer.config import REPO_DIR, Settings
from explorer.ui.app import TokenExplorerApp


async def settle(app: TokenExplorerApp, pilot) -> None:
    """Wait until the app shows its current prompt with nothing queued (or failed to start)."""
    while not (app.is_idle or app.start_failed):
        await app.workers.wait_for_complete()
        await pilot.pause()


async def take(out: Path, size: tuple[int, int] = (120, 40)) -> None:
    app = TokenExplorerApp(Settings())
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        for key in ("right", "right", "right", "e"):
            await pilot.press(key)
            await settle(app, pilot)
        app.save_screenshot(filename=out.name, path=str(out.parent))


async def take_sampler(out: Path, size: tuple[int, int] = (120, 40)) -> None:
    """docs/sampler.svg: the balanced preset with top-k 12 (excluded tokens greyed), two
    sampled tokens, forced text, two tracked tokens."""
    from dataclasses import replace

    from explorer.sampling import SamplingConfig

    settings = replace(Settings(), sampling=SamplingConfig(preset="balanced", values={"seed": 7, "top_k": 12}))
    app = TokenExplorerApp(settings)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        for key in ("space", "space", "t", *" in the", "enter", "right", "m", "down", "m"):
            await pilot.press(key)
            await settle(app, pilot)
        app.save_screenshot(filename=out.name, path=str(out.parent))


SCHEMA = ('{"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, '
          '"age": {"type": "integer"}}, "required": ["name", "age"], "additionalProperties": false}')


async def take_constraint(out: Path, size: tuple[int, int] = (120, 40)) -> None:
    """docs/constraint.svg: a JSON-schema constraint (c) and autoplay (g) on the default
    model, then one token popped, so the table shows what the schema allows there."""
    from dataclasses import replace

    from explorer.sampling import SamplingConfig

    app = TokenExplorerApp(replace(Settings(), sampling=SamplingConfig(values={"seed": 7, "temperature": 1.0})))
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await pilot.pause()
        app.screen.query_one("#kind").value = "json_schema"
        app.screen.query_one("#text").text = SCHEMA
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        await pilot.press("g")
        while app.main.autoplaying:  # until the schema is complete and EOS is drawn
            await settle(app, pilot)
        for key in ("left", "left"):
            await pilot.press(key)
            await settle(app, pilot)
        app.clear_notifications()
        await pilot.pause()
        app.save_screenshot(filename=out.name, path=str(out.parent))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO_DIR / "docs" / "screenshot.svg"
    asyncio.run(take(target))
    print(target)
    if len(sys.argv) == 1:
        asyncio.run(take_sampler(REPO_DIR / "docs" / "sampler.svg"))
        print(REPO_DIR / "docs" / "sampler.svg")
        asyncio.run(take_constraint(REPO_DIR / "docs" / "constraint.svg"))
        print(REPO_DIR / "docs" / "constraint.svg")
