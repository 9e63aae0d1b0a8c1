"""The constraint panel (`c`): a kind (choices, regex, JSON schema, Lark grammar) and its
text. Apply compiles it for the model's tokenizer in a thread (llguidance builds its view
of a tokenizer once, ~1 s) and checks that the tokens already appended fit; a bad one gets
one sentence in the panel and nothing changes. Clear removes the constraint; escape
leaves everything as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Select, TextArea
from textual.worker import Worker, WorkerState

from explorer.sampling.constraint import Constraint, ConstraintError, ConstraintSpec
from explorer.ui.text_input import message_clock

KIND_LABELS = {
    "choice": "choices (one per line)",
    "regex": "regex",
    "json_schema": "JSON schema",
    "grammar": "Lark grammar",
}


@dataclass(frozen=True)
class ConstraintChoice:
    """What the panel returns: the compiled constraint, or None to clear it."""

    constraint: Constraint | None


def spec_from_text(kind: str, text: str) -> ConstraintSpec:
    """The panel's fields as a spec: choices are the non-empty lines, as typed (a leading
    space is part of a choice); other kinds keep the text whole."""
    if kind == "choice":
        return ConstraintSpec("choice", tuple(line for line in text.split("\n") if line))
    if not text.strip():
        raise ConstraintError(f"Type the {KIND_LABELS[kind]} first.")
    return ConstraintSpec(kind, text)


def text_of(spec: ConstraintSpec | None) -> str:
    if spec is None:
        return ""
    return "\n".join(spec.value) if spec.kind == "choice" else str(spec.value)


class ConstraintPanel(ModalScreen[ConstraintChoice | None]):
    DEFAULT_CSS = """
    ConstraintPanel { align: center middle; }
    ConstraintPanel > VerticalScroll {
        width: 80; max-width: 100%; height: auto; max-height: 100%; padding: 0 1;
        border: round $primary; background: $surface;
    }
    ConstraintPanel #kind { width: 36; margin: 0 0 1 0; }
    ConstraintPanel #text { height: 8; }
    ConstraintPanel.-short #text { height: 4; }  /* a short terminal: the buttons in sight */
    ConstraintPanel #buttons { height: 1; margin: 1 0 0 0; }
    ConstraintPanel #buttons Button { min-width: 10; margin: 0 1 0 0; }
    ConstraintPanel #error { color: $error; height: auto; }
    ConstraintPanel #hint { color: $text-muted; width: 1fr; }
    ConstraintPanel #error { width: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, spec: ConstraintSpec | None,
                 prepare: Callable[[ConstraintSpec], Constraint]) -> None:
        """prepare: compile a spec and check it against the prompt (raises ConstraintError);
        called in a thread."""
        super().__init__()
        self._spec, self._prepare = spec, prepare
        self.checking = False  # a compile is running (tests wait on the workers)
        self.opened_at = message_clock()  # keys stamped before this: typed before it opened

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "constraint"
            yield Select([(label, kind) for kind, label in KIND_LABELS.items()],
                         value=self._spec.kind if self._spec else "regex", allow_blank=False, id="kind")
            yield TextArea(text_of(self._spec), id="text", soft_wrap=True, show_line_numbers=False)
            with Horizontal(id="buttons"):
                yield Button("apply", id="apply", compact=True, variant="primary")
                yield Button("clear", id="clear", compact=True)
                yield Button("cancel", id="cancel", compact=True)
            yield Label("", id="error")
            yield Label("ctrl+s applies · escape cancels · clear removes the constraint · it covers "
                        "the tokens after the prompt's original text", id="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def type_key(self, event: events.Key) -> bool:
        """Type a key sent before the text had focus (`c` and the regex in one burst, as a
        paste or a fast typist sends them): a character or enter goes into the text, at
        its end. Whether the key was used."""
        area = self.query_one(TextArea)
        if event.key == "enter":
            area.insert("\n", area.document.end)
        elif event.is_printable and event.character:
            area.insert(event.character, area.document.end)
        else:
            return False
        area.focus()
        return True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "apply":
            self.action_apply()
        elif event.button.id == "clear":
            self.dismiss(ConstraintChoice(None))
        else:
            self.action_cancel()

    def action_apply(self) -> None:
        if self.checking:
            return
        try:
            spec = spec_from_text(str(self.query_one(Select).value), self.query_one(TextArea).text)
        except ConstraintError as exc:
            self._refuse(str(exc))
            return
        self.checking = True
        self.query_one("#error", Label).update("compiling…")
        self._compile(spec)

    @work(thread=True, exit_on_error=False, group="constraint")
    def _compile(self, spec: ConstraintSpec) -> Constraint | str:
        """The compiled constraint, or the sentence that refuses it. The thread only
        returns: the panel acts on the result once the worker is done (on_worker_state_changed).
        Dismissing from inside the thread unmounted the panel while its worker was still
        running, and unmounting cancels a screen's workers: under load the thread had not
        returned yet, so the worker that had applied the constraint ended CANCELLED."""
        try:
            return self._prepare(spec)
        except ConstraintError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - the library's own failure: say it, keep the panel
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            return f"The constraint could not be compiled: {reason}."

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "constraint" or event.state != WorkerState.SUCCESS:
            return
        event.stop()
        result = event.worker.result
        if isinstance(result, str):
            self._refuse(result)
        else:
            self.dismiss(ConstraintChoice(result))

    def _refuse(self, text: str) -> None:
        self.checking = False
        self.query_one("#error", Label).update(text)
        self.app.bell()

    def action_cancel(self) -> None:
        self.dismiss(None)
