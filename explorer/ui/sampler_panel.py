"""The sampler panel (`o`): every knob as a text field, preset buttons, and when autoplay
stops (max tokens, stop strings). Apply checks every value with SamplingSettings' own validation: a bad one gets one
sentence in the panel and nothing changes until it is fixed (escape leaves all as it was).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from explorer.sampling import KNOBS, PRESETS, SamplingError, SamplingSettings, apply_preset
from explorer.sampling.settings import check_delay
from explorer.session.sampler import StopRule

LABELS = {
    "temperature": "temperature (0 = greedy)",
    "top_k": "top-k (0 = off)",
    "top_p": "top-p (1 = off)",
    "min_p": "min-p (0 = off)",
    "repetition_penalty": "repetition penalty (1 = off)",
    "presence_penalty": "presence penalty (-2..2)",
    "frequency_penalty": "frequency penalty (-2..2)",
    "seed": "seed (blank = random)",
}


@dataclass(frozen=True)
class PanelResult:
    settings: SamplingSettings
    stop: StopRule
    delay: float = 0.0  # seconds between autoplay's steps


def _text(value) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


class SamplerPanel(ModalScreen[PanelResult | None]):
    DEFAULT_CSS = """
    SamplerPanel { align: center middle; }
    SamplerPanel > VerticalScroll {
        width: 76; max-width: 100%; height: auto; max-height: 100%; padding: 0 1;
        border: round $primary; background: $surface;
    }
    SamplerPanel .row { height: 1; }
    SamplerPanel .row Label { width: 32; }
    SamplerPanel .row Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    SamplerPanel #presets { height: 1; margin: 0 0 1 0; }
    SamplerPanel #presets Button { min-width: 10; margin: 0 1 0 0; }
    SamplerPanel #error { color: $error; height: auto; margin: 1 0 0 0; }
    SamplerPanel #hint { color: $text-muted; width: 1fr; }
    SamplerPanel #error { width: 1fr; }
    /* Narrow terminal (the app's breakpoints): labels above their fields, presets 2 a row. */
    SamplerPanel.-narrow .row { layout: vertical; height: 2; }
    SamplerPanel.-narrow .row Label { width: 1fr; }
    SamplerPanel.-narrow #presets { layout: grid; grid-size: 2; height: 2; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "apply", "Apply")]

    def __init__(self, settings: SamplingSettings, stop: StopRule, delay: float = 0.0) -> None:
        super().__init__()
        self._settings, self._stop, self._delay = settings, stop, delay

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "sampler"
            with Horizontal(id="presets"):
                for name in PRESETS:
                    yield Button(name, id=f"preset-{name}", compact=True)
            for name in KNOBS:
                with Horizontal(classes="row"):
                    yield Label(LABELS[name])
                    yield Input(_text(getattr(self._settings, name)), id=f"knob-{name}")
            with Horizontal(classes="row"):
                yield Label("autoplay: max tokens")
                yield Input(str(self._stop.max_tokens), id="max-tokens")
            with Horizontal(classes="row"):
                yield Label("autoplay: stop at (a | b; \\n)")
                yield Input(self._stop.stops_text(), id="stops")
            with Horizontal(classes="row"):
                yield Label("autoplay: step delay (s)")
                yield Input(_text(float(self._delay)), id="delay")
            yield Label("", id="error")
            yield Label("enter applies · escape cancels · a preset fills the knobs", id="hint")

    def on_mount(self) -> None:
        self.query_one("#knob-temperature", Input).focus()

    def fill(self, settings: SamplingSettings) -> None:
        """Every knob but the seed (a preset keeps the seed as typed)."""
        for name in KNOBS:
            if name == "seed":
                continue
            self.query_one(f"#knob-{name}", Input).value = _text(getattr(settings, name))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        name = (event.button.id or "").removeprefix("preset-")
        if name in PRESETS:
            self.fill(apply_preset(self._settings, name))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_apply()

    def action_apply(self) -> None:
        values = {name: self.query_one(f"#knob-{name}", Input).value for name in KNOBS}
        try:
            settings = self._settings.with_changes(**values)
            stop = self._stop.with_text(self.query_one("#max-tokens", Input).value,
                                        self.query_one("#stops", Input).value)
            delay = check_delay(self.query_one("#delay", Input).value, "The autoplay delay")
        except SamplingError as exc:
            self.query_one("#error", Label).update(str(exc))
            self.app.bell()
            return
        self.dismiss(PanelResult(settings, stop, delay))

    def action_cancel(self) -> None:
        self.dismiss(None)
