"""A table of one-line rows drawn with the line API, looking like Textual's DataTable
(header, zebra rows, row cursor) at a fraction of the cost.

DataTable renders every cell through rich's Padding/Styled/render_lines machinery and
throws all of it away on any change (clear + add_rows), so a key press that replaced the
rows cost two full renders. Here a cell becomes segments directly, each table row becomes
one Strip cached under what changes its look (the row, whether the cursor is on it, the
width, the scroll column), and a cursor move repaints just the two rows involved (the way
Toolong draws its log view). Replacing rows with equal ones is free.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

_NEWLINE = Text("\n")
_PAD = 1  # cells of padding either side of a cell (DataTable's cell_padding)
_PAD_TEXT = " " * _PAD


def cell_segments(console, text: Text, width: int) -> list[Segment]:
    """One cell's content, `width` cells wide, as rich renders the Text inside a DataTable
    cell (justify, truncate, pad), without going through rich's layout machinery for the
    one-line cells a table of tokens has."""
    plain = text.plain
    used = cell_len(plain)
    justify = text.justify or "default"
    simple = (used <= width and justify in ("left", "right", "default")
              and "\n" not in plain and "\t" not in plain
              and (justify != "right" or not plain[-1:].isspace()))
    if not simple:
        return _cell_segments_rich(console, text, width)
    base = console.get_style(text.style, default=Style.null()) if text.style else Style.null()
    segments = list(text.render(console)) if text.spans else [Segment(plain, base)]
    if used < width:
        # Inside the text (its own style) when justified, outside (unstyled) otherwise.
        pad = Segment(" " * (width - used), base if justify != "default" else None)
        if justify == "right":
            segments.insert(0, pad)
        else:
            segments.append(pad)
    return segments


def _cell_segments_rich(console, text: Text, width: int) -> list[Segment]:
    """The general case (center, overlong or multi-line cells), the way rich does it."""
    line = text.copy()
    line.end = ""
    justify = text.justify or "default"
    overflow = text.overflow or "fold"
    if justify == "left":
        line.truncate(width, overflow=overflow, pad=True)
    elif justify == "right":
        line.rstrip()
        line.truncate(width, overflow=overflow)
        line.pad_left(width - cell_len(line.plain))
    elif justify == "center":
        line.rstrip()
        line.truncate(width, overflow=overflow)
        line.pad_left((width - cell_len(line.plain)) // 2)
        line.pad_right(width - cell_len(line.plain))
    else:
        line.truncate(width, overflow=overflow)
    segments = list(_NEWLINE.join([line]).render(console))
    used = cell_len(line.plain)
    if used < width:
        segments.append(Segment(" " * (width - used)))
    return segments


class LineTable(ScrollView, can_focus=True):
    """Rows of rich Text cells under a header; columns as wide as their widest cell.
    Owns a row cursor (`cursor_row`); subclasses supply the data with `set_rows`."""

    class CursorMoved(Message):
        """The cursor is on another row (views that follow the cursor redraw)."""

        def __init__(self, row: int) -> None:
            super().__init__()
            self.row = row

    COMPONENT_CLASSES = {
        "line-table--header",
        "line-table--cursor",
        "line-table--even-row",
        "line-table--odd-row",
    }

    # DataTable's look, under our own component names.
    DEFAULT_CSS = """
    LineTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .line-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .line-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark {
            & > .line-table--even-row {
                background: $surface-darken-1 40%;
            }
        }
        & > .line-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .line-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .line-table--odd-row {
        }
        & > .line-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .line-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    BINDINGS = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._labels: tuple[Text, ...] = ()
        self._rows: list[Sequence[Text]] = []
        self._widths: list[int] = []  # per column, padding included
        self._cursor = 0
        # (row index or -1 for the header, cursor on it, widget width) -> full-width Strip
        self._strips: dict[tuple[int, bool, int], Strip] = {}
        self._base_style: Style | None = None  # self.rich_style, costly to compute per line
        self._meta: dict[tuple[int, int], Style] = {}  # (row, column) -> click target

    # -- data -----------------------------------------------------------------------------
    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def set_rows(self, labels: Sequence[str | Text], rows: Sequence[Sequence[Text]]) -> None:
        """Replace header and rows (one Text per column each); the cursor keeps its row
        number (clamped) and stays in view."""
        self._labels = tuple(Text(label) if isinstance(label, str) else label for label in labels)
        self._rows = list(rows)
        widths = [cell_len(label.plain) for label in self._labels]
        for row in self._rows:
            for j, cell in enumerate(row):
                w = cell.cell_len
                if w > widths[j]:
                    widths[j] = w
        self._widths = [w + 2 * _PAD for w in widths]
        self._strips.clear()
        self._update_virtual_size()
        self._cursor = max(0, min(self._cursor, len(self._rows) - 1))
        self._scroll_cursor_into_view()
        self.refresh()

    def move_cursor(self, row: int) -> None:
        row = max(0, min(row, len(self._rows) - 1))
        if row == self._cursor:
            return
        old, self._cursor = self._cursor, row
        self.post_message(self.CursorMoved(row))
        # +1: the header is line 0 of the virtual area.
        self.refresh_line(old + 1)
        self.refresh_line(row + 1)
        self._scroll_cursor_into_view()

    def _scroll_cursor_into_view(self) -> None:
        visible = self.scrollable_content_region.height - 1  # below the header
        if visible <= 0:
            return
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False, force=True)
        elif self._cursor >= top + visible:
            self.scroll_to(y=self._cursor - visible + 1, animate=False, force=True)

    def _update_virtual_size(self) -> None:
        # A table that fits gets a constant virtual width: columns that change width with
        # every new table then do not change the virtual size (a layout pass per key).
        width = sum(self._widths)
        if width <= self.scrollable_content_region.width:
            width = 0
        size = Size(width, len(self._rows) + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._scroll_cursor_into_view()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # focus, theme or CSS changed the look
        self._base_style = None

    # -- drawing --------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        index = -1 if y == 0 else y - 1 + scroll_y
        if self._base_style is None:
            self._base_style = self.rich_style
        if index >= len(self._rows) or not self._widths:
            return Strip.blank(width, self._base_style)
        cursor = index == self._cursor
        key = (index, cursor, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._render_row(index, cursor, width)
        if scroll_x:
            strip = strip.crop(scroll_x, scroll_x + width)
        return strip.adjust_cell_length(width, self._base_style)

    def _render_row(self, index: int, cursor: bool, width: int) -> Strip:
        """The whole row, from column 0 to max(table width, widget width); styles are
        layered as DataTable layers them (row, then cell, then the cursor's colour), each
        cell a click target of its own. (Segment.apply_style's generators, per cell, cost
        twice this loop.)"""
        console = self.app.console
        get = self.get_component_rich_style
        if index == -1:
            row_style, cells = get("line-table--header"), self._labels
        else:
            row_style = get("line-table--odd-row" if index % 2 else "line-table--even-row")
            cells = self._rows[index]
        cursor_style = get("line-table--cursor") if cursor else Style()
        post = Style.from_color(color=cursor_style.color) if cursor else None
        segments: list[Segment] = []
        append = segments.append
        for j, (cell, col_width) in enumerate(zip(cells, self._widths)):
            pre = row_style + self._cell_meta(index, j) + cursor_style
            pad = Segment(_PAD_TEXT, pre + post if post else pre)
            append(pad)
            for text, style, control in cell_segments(console, cell, col_width - 2 * _PAD):
                style = pre if style is None else pre + style
                append(Segment(text, style + post if post else style, control))
            append(pad)
        rest = max(0, width - sum(self._widths))
        append(Segment(" " * rest, row_style + cursor_style + self._cell_meta(index, -1)))
        return Strip(segments).simplify()

    def _cell_meta(self, index: int, column: int) -> Style:
        """The click target of a cell (column -1: the space right of the last column)."""
        meta = self._meta.get((index, column))
        if meta is None:
            data = {"row": index, "column": column}
            if column == -1:
                data = {"row": index, "column": 0, "out_of_bounds": True}
            meta = self._meta[index, column] = Style.from_meta(data)
        return meta

    # -- keys and mouse -------------------------------------------------------------------
    def action_cursor_up(self) -> None:
        self.move_cursor(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self._cursor + 1)

    def action_page_up(self) -> None:
        self.move_cursor(self._cursor - max(1, self.scrollable_content_region.height - 1))

    def action_page_down(self) -> None:
        self.move_cursor(self._cursor + max(1, self.scrollable_content_region.height - 1))

    def action_scroll_top(self) -> None:
        self.move_cursor(0)

    def action_scroll_bottom(self) -> None:
        self.move_cursor(len(self._rows) - 1)

    def on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row")
        if isinstance(row, int) and row >= 0:
            self.move_cursor(row)
