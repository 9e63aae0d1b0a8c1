"""Updating a widget without costing the whole screen.

Static.update asks for a layout pass by default, and a layout pass repaints every widget
on the screen (a full compositor update: ~10-20 ms here), where repainting the one widget
costs a fraction of that. A key press that changes a line of text should repaint that line's
widget, and lay the screen out again only when the widget's height really changed.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget
from textual.widgets import Static


def update_static(widget: Static, content: Text) -> bool:
    """Show `content` in `widget`: nothing when it is already shown, a repaint of the widget
    when its height stays, a layout pass only when the height changes. Returns whether
    anything changed."""
    if widget.content == content:
        return False
    width = widget.size.width
    before = widget.visual.get_height(widget.styles, width) if width else None
    widget.update(content, layout=False)
    if before is None or widget.visual.get_height(widget.styles, width) != before:
        widget.refresh(layout=True)
    return True


def set_titles(widget: Widget, title: str, subtitle: str | None = None) -> None:
    """Border title and subtitle, assigned only when they change (every assignment repaints
    the whole widget)."""
    if str(widget.border_title or "") != title:
        widget.border_title = title
    if subtitle is not None and str(widget.border_subtitle or "") != subtitle:
        widget.border_subtitle = subtitle
