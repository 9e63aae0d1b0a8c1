"""The report of what the explorer core shows now (the app's key and palette command, and
scripts): the shown prompt with its origins, the tracked tokens' curves, the sampler's
p_final for the next token (from the kept logits row), the sampler, stop rule and
constraint. No Textual."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from explorer.report.build import report_from
from explorer.report.data import Report
from explorer.report.html import write_html
from explorer.session.views import View


def explorer_report(core, *, layer: str = "probability", top_k: int = 10) -> Report:
    """core: an explorer.session.explorer.Explorer whose lane shows a prompt."""
    lane = core.lane
    records = lane.records
    prompt, ids = core.shown_prompt()
    settings: dict[str, object] = {"prompt": f"{len(ids)} tokens, {len(lane.book)} prompts in the book"}
    next_final = None
    if core.sampler is not None:
        settings["sampler"] = core.sampler.describe()
        settings["autoplay"] = f"up to {core.stop_rule.max_tokens} tokens"
        row = lane.views.get(View.LOGITS)
        if row is not None and records:
            ids_now, prompt_len = core.shown_prompt_len()
            top = [c.token_id for c in records[-1].top[:top_k]]
            shown = core.sampler.shown(row, ids_now, prompt_len, top)
            if shown.p_final is not None:
                next_final = {t: (math.log(p) if p > 0 else None) for t, p in zip(top, shown.p_final)}
    if core.constraint is not None:
        settings["constraint"] = core.constraint.spec.describe(60)
    return report_from(core.backend, records, title=f"Token Explorer · {core.backend.info.name}",
                       settings=settings, tracked=lane.views.get(View.TRACKED) if lane.tracked else None,
                       layer=layer, origins=None if prompt is None else prompt.origins, top_k=top_k,
                       next_final=next_final)


def write_explorer_report(core, folder: Path, *, layer: str = "probability") -> Path:
    """Write the report to `folder`/report-<UTC time>.html (atomically) and return the path.
    Raises OSError."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    path = Path(folder) / f"report-{stamp}.html"
    write_html(explorer_report(core, layer=layer), path)
    return path
