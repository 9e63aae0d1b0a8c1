"""A small modal that asks for one line of text (forced text `t`, tracked text `M`).

Enter returns the text as typed (nothing stripped: a leading space is a different token);
escape returns None. `\\n` and `\\t` typed as two characters stand for a newline and a tab,
since a one-line input cannot hold them.
"""

from __future__ import annotations

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from explorer.session.sampler import unescape


def message_clock() -> float:
    """Now, on the clock Textual stamps its messages with (Key.time's): a key stamped
    before a dialog's opened_at was typed before the dialog opened. Read from a fresh
    message, so no private clock of Textual's is imported."""
    return Message().time


class TextPrompt(ModalScreen[str | None]):
    DEFAULT_CSS = """
    TextPrompt { align: center middle; }
    TextPrompt > Vertical {
        width: 70; max-width: 100%; height: auto; max-height: 100%; padding: 1 2;
        border: round $primary; background: $surface;
    }
    TextPrompt Label.hint { color: $text-muted; width: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, hint: str, *, placeholder: str = "") -> None:
        super().__init__()
        self._title, self._hint, self._placeholder = title, hint, placeholder
        self.opened_at = message_clock()

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = self._title
            yield Label(self._hint, classes="hint")
            yield Input(placeholder=self._placeholder, id="text")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_key(self, event: events.Key) -> None:
        # A key reaching the screen itself came before the input had focus: the input's.
        if self.type_key(event):
            event.stop()

    def type_key(self, event: events.Key) -> bool:
        """Type a key sent before the input had focus (the app hands over the keys typed
        right behind the dialog's own key, `t abc` in one burst): a character goes into
        the input, enter submits. Whether the key was used."""
        field = self.query_one(Input)
        if event.key == "enter":
            self.dismiss(unescape(field.value))
        elif event.is_printable and event.character:
            field.insert_text_at_cursor(event.character)
            field.focus()
        else:
            return False
        return True

    @property
    def text(self) -> str:
        """What is typed so far."""
        return self.query_one(Input).value

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(unescape(event.value))

    def action_cancel(self) -> None:
        self.dismiss(None)
