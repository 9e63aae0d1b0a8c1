"""The constraint keys driven by Textual's Pilot on the embedded model: `c` sets, edits and
clears a constraint; the table lists the allowed tokens, likeliest first, or (C) all tokens
with the forbidden ones flagged (p_final 0); space, autoplay and
`→` never append a forbidden token. Which tokens are valid is checked against Python's
`regex` partial matching, independently of llguidance."""

from __future__ import annotations

import regex
from app_fixtures import SIZE, embedded_engine, make_app, requires_model, screen_text, settle

from explorer.sampling import SamplingConfig

pytestmark = requires_model

DIGITS = r" [0-9]{1,3}\."


def sampling(**values) -> SamplingConfig:
    return SamplingConfig(values={"seed": 1234, **values})


async def set_constraint(app, pilot, kind: str, text: str) -> None:
    await pilot.press("c")
    await pilot.pause()
    panel = app.screen
    panel.query_one("#kind").value = kind
    panel.query_one("#text").text = text
    await pilot.press("ctrl+s")
    await settle(app, pilot)


def appended_text(app) -> str:
    """The text appended since the prompt's original ids, without a final EOS token."""
    prompt = app.main.book.current
    ids = prompt.ids[len(prompt.original):]
    if ids and ids[-1] in app.main.engine.eos_ids:
        ids = ids[:-1]
    return app.main.engine.decode(ids)


async def test_regex_flags_forbidden_rows_and_they_get_no_p_final():
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "regex", DIGITS)
        assert app.main.constraint is not None and app.main.constraint.spec.value == DIGITS
        await pilot.press("C")  # all tokens, forbidden ones flagged (default: allowed ones)
        await settle(app, pilot)
        shown = app.main.sampler_drawing()["sampler"]
        assert shown.valid is not None and len(shown.valid) == len(app.main.table.candidates)
        for c, ok, p in zip(app.main.table.candidates, shown.valid, shown.p_final):
            text = app.main.engine.decode([c.token_id])
            independent = bool(regex.fullmatch(DIGITS, text, partial=True)) and "\ufffd" not in text
            assert ok == independent, (c.text, ok)
            if not ok:
                assert p == 0
        assert not all(shown.valid)  # the default prompt's likeliest tokens are words
        text = screen_text(app)
        assert "constraint: regex" in text and "✗ forbidden" in text
        assert "rows: all tokens, ✗ forbidden: by it (p_final 0)" in text  # the legend line


async def test_right_arrow_refuses_a_forbidden_candidate_and_takes_a_valid_one():
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "choice", " the\n a")
        await pilot.press("C")  # all tokens: forbidden rows are on the table
        await settle(app, pilot)
        valid = app.main.sampler_drawing()["sampler"].valid
        before = app.main.book.current.ids
        bad = valid.index(False)
        app.main.table.move_cursor(bad)
        await pilot.press("right")
        await settle(app, pilot)
        assert app.main.book.current.ids == before
        assert any("forbids this token" in note for note, _ in app.notes)
        if True in valid:
            app.main.table.move_cursor(valid.index(True))
            await pilot.press("right")
            await settle(app, pilot)
            assert len(app.main.book.current.ids) == len(before) + 1


async def test_autoplay_under_choices_gives_exactly_one_choice_then_stops():
    choices = (" yes", " no", " maybe later")
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "choice", "\n".join(choices))
        await pilot.press("g")
        await settle(app, pilot)
        assert not app.main.autoplaying
        assert appended_text(app) in choices, repr(appended_text(app))
        # A whole choice: space draws nothing the constraint forbids, and says why.
        await pilot.press("space")
        await settle(app, pilot)
        assert appended_text(app) in choices


async def test_space_draws_only_valid_tokens_under_a_regex():
    app = make_app(sampling=sampling(temperature=1.5))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "regex", DIGITS)
        for _ in range(4):
            await pilot.press("space")
            await settle(app, pilot)
        text = appended_text(app)
        assert regex.fullmatch(DIGITS, text, partial=True), repr(text)


async def test_invalid_constraint_is_one_sentence_and_changes_nothing():
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "regex", "(ab")
        panel = app.screen
        error = str(panel.query_one("#error").render())
        assert "regex is not valid" in error and error.endswith(".")
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.main.constraint is None
        # Set one, then clear it with the panel's button.
        await set_constraint(app, pilot, "json_schema", '{"type": "integer"}')
        assert app.main.constraint is not None and "constraint: JSON schema" in screen_text(app)
        await pilot.press("c")
        await pilot.pause()
        await pilot.click("#clear")
        await settle(app, pilot)
        assert app.main.constraint is None and "constraint:" not in screen_text(app)


async def test_appended_tokens_that_do_not_fit_are_refused_and_forced_text_too():
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("right")  # the likeliest token: a word, not a digit
        await settle(app, pilot)
        await set_constraint(app, pilot, "regex", DIGITS)
        error = str(app.screen.query_one("#error").render())
        assert "1 token appended since the prompt's original text does not fit this constraint" in error
        await pilot.press("escape")
        await pilot.press("left")
        await settle(app, pilot)
        await set_constraint(app, pilot, "regex", DIGITS)
        assert app.main.constraint is not None
        before = app.main.book.current.ids
        await pilot.press("t")
        await pilot.pause()
        await pilot.press(*"abc", "enter")
        await settle(app, pilot)
        assert app.main.book.current.ids == before
        assert any("does not fit the constraint" in note for note, _ in app.notes)


async def test_a_backend_without_logits_says_constraints_are_local_only():
    from app_fixtures import RecordingApp
    from app_fixtures import app_settings as settings_for
    from fake_backend import TableBackend

    app = RecordingApp(settings_for(), engine=TableBackend())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        assert app.main.constraint is None
        assert any(note.startswith("Constraints are local-only") and note.endswith(".")
                   for note, _ in app.notes)


async def test_a_model_switch_clears_the_constraint_and_says_so(tmp_path, monkeypatch):
    import shutil

    from test_app_model_switch import switch

    from explorer.config import EMBEDDED_MODEL_DIR

    monkeypatch.setenv("TOKEN_EXPLORER_CACHE", str(tmp_path / "te-cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    folder = tmp_path / "embedded-copy"
    shutil.copytree(EMBEDDED_MODEL_DIR, folder)
    app = make_app(tmp_path, sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await set_constraint(app, pilot, "regex", DIGITS)
        assert app.main.constraint is not None
        await switch(app, pilot, str(folder))
        assert app.main.engine.info.name == str(folder) and app.main.constraint is None
        assert any("is cleared; set it again with c" in note for note, _ in app.notes)
        await set_constraint(app, pilot, "regex", DIGITS)  # compiled for the new tokenizer
        assert app.main.constraint is not None and app.main.sampler_drawing()["sampler"].valid is not None


async def test_applying_a_constraint_completes_its_compile_worker_when_its_thread_lags():
    """CI under load: a compile thread that is slow, and descheduled right after handing its
    result to the app (here 0.3 s pauses around every call_from_thread, as a busy machine
    gives), must still end its worker done, not CANCELLED by the panel's dismissal while
    settle() waits on it (WorkerCancelled, as in the CI failure)."""
    import time

    from app_fixtures import RecordingApp
    from app_fixtures import app_settings as settings_for

    from explorer.ui.constraint_panel import ConstraintPanel

    class LaggingApp(RecordingApp):
        def call_from_thread(self, callback, *args, **kwargs):
            time.sleep(0.3)
            result = super().call_from_thread(callback, *args, **kwargs)
            time.sleep(0.3)
            return result

    app = LaggingApp(settings_for(sampling=sampling(temperature=1.0)), engine=embedded_engine())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await pilot.pause()
        panel = app.screen
        assert isinstance(panel, ConstraintPanel)
        panel.query_one("#kind").value = "regex"
        panel.query_one("#text").text = DIGITS
        await pilot.press("ctrl+s")
        await settle(app, pilot)  # raised WorkerCancelled before the fix
        assert app.main.constraint is not None and app.main.constraint.spec.value == DIGITS


def likeliest_allowed(ids: list[int], pattern: str, decode) -> tuple[int, set[int]]:
    """Independently of the app and llguidance: a plain forward pass of the embedded model
    (transformers, no cache) and the tokens whose text can start a match of `pattern`
    (Python's `regex`, partial matching). The allowed token with the highest logit, and
    the allowed set."""
    import torch
    from transformers import AutoModelForCausalLM

    from explorer.config import EMBEDDED_MODEL_DIR

    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1].float().numpy()
    allowed = set()
    for t in range(len(logits)):
        text = decode([t])
        if text and "\ufffd" not in text and regex.fullmatch(pattern, text, partial=True):
            allowed.add(t)
    best = max(allowed, key=lambda t: (logits[t], -t))
    return best, allowed


async def test_under_a_regex_the_table_lists_allowed_tokens_and_right_takes_the_likeliest():
    """Issue 20 item 3: with `[0-9]{3}` the model's 30 likeliest tokens are all words, so the
    table used to be 30 `✗ forbidden` rows and → was refused on every one. Now the table
    lists the allowed tokens, likeliest first, and → takes the first one straight away."""
    pattern = "[0-9]{3}"
    app = make_app(sampling=sampling(temperature=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        before = list(app.main.book.current.ids)
        n_rows = len(app.main.table.candidates)
        await set_constraint(app, pilot, "regex", pattern)
        best, allowed = likeliest_allowed(before, pattern, app.main.engine.decode)
        rows = app.main.table.candidates
        assert rows and all(c.token_id in allowed for c in rows)
        assert len(rows) == min(n_rows, len(allowed))
        assert rows[0].token_id == best
        assert [c.prob for c in rows] == sorted((c.prob for c in rows), reverse=True)
        shown = app.main.sampler_drawing()["sampler"]
        assert shown.allowed_only and all(shown.valid)
        text = screen_text(app)
        assert "✗ forbidden" not in text and "rows: the allowed tokens, likeliest first (C: all)" in text
        await pilot.press("right")
        await settle(app, pilot)
        assert list(app.main.book.current.ids) == before + [best]
        assert not any("forbids this token" in note for note, _ in app.notes)
        assert regex.fullmatch(pattern, appended_text(app), partial=True), appended_text(app)
        # C lists all tokens again (the forbidden ones flagged), and back.
        await pilot.press("C")
        await settle(app, pilot)
        assert not app.main.sampler_drawing()["sampler"].allowed_only and "✗ forbidden" in screen_text(app)
        await pilot.press("C")
        await settle(app, pilot)
        assert app.main.sampler_drawing()["sampler"].allowed_only


async def test_a_constraint_typed_in_one_burst_behind_c_lands_in_the_panel():
    """`c` and the regex in one burst (a paste, a fast typist): the keys that reach the
    app before the panel has opened are its text, not table keys."""
    from textual import events

    from explorer.ui.constraint_panel import ConstraintPanel

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        for key, char in [("c", "c"), ("left_square_bracket", "["), ("a", "a"), ("minus", "-"),
                          ("z", "z"), ("right_square_bracket", "]"), ("l", "l")]:
            app.post_message(events.Key(key, char))
        await settle(app, pilot)
        assert isinstance(app.screen, ConstraintPanel)
        assert app.screen.query_one("#text").text == "[a-z]l"
        start = app.main.book.current.ids
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.main.book.current.ids == start  # `l` (append) did not reach the table
