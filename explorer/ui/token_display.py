"""The token display rules live in explorer.display.token_display (the HTML report uses them
too, without Textual); the app's modules import them from here."""

from explorer.display.token_display import (  # noqa: F401
    Kind, Segment, column_labels, group_value, segments, visible,
)
