"""The headless core: what the `trace` command and the app share, over the backend
interface only (explorer.backend), never a concrete engine, never Textual.

- trace.py: generation one token at a time, with a pluggable choice of token.
- id_check.py: does re-tokenising the text give back the generated ids?
- report.py: the text report; export.py: JSONL lines and atomic writes.
- trace_command.py (+ progress.py): the `trace` command line.
"""
