"""Where the app sends a key before Textual does (TokenExplorerApp.on_event).

Keys pressed during start-up (loading a model can take a minute) are held, in order, and
pressed once the first prompt is on screen; only the keys that work during start-up (quit,
the keys panel, the palette) act at once. A key pressed while the held ones are being
pressed goes behind them. While autoplay runs, any key but quit stops it (and does nothing
else). A key typed right behind `t` or `M` goes to the dialog they open.
"""

from __future__ import annotations

from textual import events
from textual.binding import Binding

from explorer.ui.constraint_panel import ConstraintPanel
from explorer.ui.next_table import NextTokenTable
from explorer.ui.text_input import TextPrompt

# Dialogs whose text takes the keys typed right behind the key that opened them.
TYPED_INTO = (TextPrompt, ConstraintPanel)

# What a key may do during start-up; every other key waits until the prompt is on screen.
START_ACTIONS = frozenset({"quit", "toggle_keys", "command_palette", "help_quit", "screenshot"})


class KeyQueue:
    """The key routing of `app` (explorer.ui.app.TokenExplorerApp)."""

    def __init__(self, app) -> None:
        self.app = app
        self._held: list[events.Key] = []  # keys pressed during start-up, pressed after it
        self._replaying: list[events.Key] = []  # held keys posted again, not yet handled

    @property
    def waiting(self) -> bool:
        """Keys pressed during start-up are not all handled yet."""
        return bool(self._held or self._replaying)

    def route(self, event: events.Key) -> bool:
        """True: the key was handled here (Textual must not handle it again)."""
        app = self.app
        if event.is_forwarded:
            if isinstance(app.screen, TYPED_INTO) and event.time < app.screen.opened_at:
                # Typed right behind `t`, `M` or `c` (one burst): the key went to the table
                # before the dialog opened and comes back unhandled; it is the dialog's text.
                app.screen.type_key(event)
                return True
            return False
        if self._holds(event.key):
            self._held.append(events.Key(event.key, event.character))
            return True
        if self._replaying:
            if event is self._replaying[0]:
                self._replaying.pop(0)
            else:
                later = events.Key(event.key, event.character)
                self._replaying.append(later)
                app.post_message(later)
                return True
        if app.main.autoplaying and event.key != "ctrl+q":
            event.stop()
            app.main.stop_autoplay("stopped by a key")
            app.main.redraw()
            return True
        return False

    def replay(self) -> None:
        """Start-up is over: press the held keys, each as its own message (a dialog's key
        then opens the dialog before the characters typed behind it arrive)."""
        self._replaying, self._held = self._held, []
        for key in self._replaying:
            self.app.post_message(key)

    def _holds(self, key: str) -> bool:
        startup = self.app.startup
        if startup is None or self.app.start_failed or self.app.screen is not startup:
            return False
        binding = startup.active_bindings.get(key)
        return binding is None or not binding.enabled or binding.binding.action not in START_ACTIONS


def apply_keymap(app, bindings) -> None:
    """config.toml [keys]: rebind keys by binding id (`bindings`: the main screen's; the
    table's are added); an unknown id is named in one warning."""
    keys = dict(app.settings.keys)
    if not keys:
        return
    known = {b.id for b in (*bindings, *NextTokenTable.BINDINGS) if isinstance(b, Binding) and b.id}
    unknown = sorted(set(keys) - known)
    if unknown:
        app.notify(f"config.toml [keys]: no binding is called {unknown[0]!r} "
                   f"(known: {', '.join(sorted(known))}).", title="Keys", severity="warning")
    app.set_keymap({k: v for k, v in keys.items() if k in known})
