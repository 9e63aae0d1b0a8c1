"""How tokens and values look, for every surface that shows them: the app's screens and the
HTML report. Pure functions and data (no Textual), so a report written by `trace` shows
whitespace, special tokens and colour scales exactly as the app does."""
