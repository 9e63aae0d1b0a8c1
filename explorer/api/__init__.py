"""Token Explorer from Python: `explorer.open(...)` and the verbs of the commands on it.
See docs/python.md. Importing this imports neither Textual nor torch; torch loads only
when a local model opens."""

from explorer.api.model import Model, open
from explorer.api.results import Positions, TraceResult

__all__ = ["Model", "Positions", "TraceResult", "open"]
