"""Sessions in the app: start-up opens a resumed session's own model, or, when that cannot
load, the default model with the saved prompts (re-tokenised there by their text)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from explorer.backend import BackendError
from explorer.config import DEFAULT_NAME
from explorer.session.keep import SavedPrompt, SessionState
from explorer.ui import startup
from app_fixtures import test_settings as make_settings

STATE = SessionState(model="gone/model", prompts=(SavedPrompt((1, 2), (1, 2), ("prompt",) * 2, "ab", "ab"),) * 3)


def test_a_session_whose_model_cannot_load_opens_on_the_default_model(monkeypatch):
    opened = []

    def fake_open(settings, progress=None, **kwargs):
        opened.append(settings.model.name)
        if settings.model.name != DEFAULT_NAME:
            raise BackendError(f"No model named {settings.model.name}.")
        return "the default backend"

    monkeypatch.setattr(startup, "open_backend", fake_open)
    said = []
    settings = make_settings()
    settings = replace(settings, model=replace(settings.model, name="gone/model"))
    backend, warnings = startup.open_for_resume(settings, STATE, said.append)
    assert backend == "the default backend" and opened == ["gone/model", DEFAULT_NAME]
    assert warnings == [f"No model named gone/model; the session's 3 prompts are restored on {DEFAULT_NAME} instead."]
    assert said == [f"No model named gone/model; opening {DEFAULT_NAME} with the saved prompts instead…"]


def test_the_default_model_failing_too_is_the_plain_failure(monkeypatch):
    def fail(settings, progress=None, **kwargs):
        raise BackendError("Broken.")

    monkeypatch.setattr(startup, "open_backend", fail)
    settings = make_settings()
    with pytest.raises(BackendError, match="^Broken.$"):
        startup.open_for_resume(replace(settings, model=replace(settings.model, name=DEFAULT_NAME)),
                                STATE, lambda text: None)
