"""A Report from a backend's records: what `trace --html`, `tree --html` and the app call.
Over the backend interface only (token texts, bytes, special ids, model info)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from explorer.backend.protocol import Backend
from explorer.backend.types import TokenRecord, TrackedSeries
from explorer.report.data import Report, build_report
from explorer.report.html import write_html


def report_from(backend: Backend, records: Sequence[TokenRecord], *, title: str,
                settings: Mapping[str, object] | None = None,
                finals: Mapping[int, Mapping[int, float | None]] | None = None,
                tracked: TrackedSeries | None = None, tree: dict | None = None,
                layer: str = "probability", origins: Sequence[str] | None = None,
                top_k: int | None = 10, next_final: Mapping[int, float | None] | None = None,
                comparison: dict | None = None) -> Report:
    return build_report(top_k=top_k, next_final=next_final, comparison=comparison, title=title, info=backend.info, records=records,
                        token_bytes=backend.token_bytes, token_text=backend.token_text,
                        special_ids=backend.special_ids, settings=settings, finals=finals,
                        tracked=tracked, tree=tree, layer=layer, origins=origins)


def write_report(path: Path, backend: Backend, records: Sequence[TokenRecord], **kwargs) -> None:
    """Build and write the page atomically. Raises OSError."""
    write_html(report_from(backend, records, **kwargs), path)
