"""Keeping a session (explorer/session/keep.py) through the explorer core, headless: three
prompts (one a fork grown further), two pins, temperature 0.8, a constraint, the screen's
layer saved and resumed exactly; another tokenizer gets the prompts by their text with a
note; a `kill -9` during the periodic save leaves the previous session whole (a real
subprocess killed mid-write)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from app_fixtures import embedded_engine, requires_model

from explorer.sampling import SamplingConfig
from explorer.sampling.constraint import ConstraintSpec
from explorer.session.headless import Headless
from explorer.session.keep import (SessionFileError, SessionKeeper, load_session, save_session,
                                   session_path)

pytestmark = requires_model
UI = {"layer": "entropy", "layer_view": "probabilities", "position": 3}


def explored():
    """A session with something in every part of it."""
    engine = embedded_engine()
    run = Headless(engine, SamplingConfig(values={"seed": 11}))
    core = run.open(engine.encode("Once upon a time"))
    core.append(0)
    core.append(1)
    run.settle()
    core.fork()  # prompt 2: a copy of 1, grown by one token
    core.append(2)
    run.settle()
    core.lane.book.add(engine.encode("The cat sat"))  # prompt 3
    run.settle()
    core.lane.book.previous()  # the fork is current
    core.pin_text(" dog")
    core.pin_text(" cat")
    core.sampler.change(temperature="0.8")
    core.constrain(core.prepare_constraint(ConstraintSpec("regex", r"[ a-zA-Z,.]{0,80}")))
    run.settle()
    return engine, run, core


def test_a_session_is_restored_exactly(tmp_path):
    engine, _, core = explored()
    before = [(p.ids, p.original, p.origins) for p in core.book]
    path = tmp_path / "s.json"
    save_session(path, core.snapshot("embedded", UI))

    state = load_session(path)
    again = Headless(engine, SamplingConfig())  # a fresh core, the config's defaults
    notes = again.core.resume(state)
    again.settle()
    new = again.core
    assert notes == []
    assert [(p.ids, p.original, p.origins) for p in new.book] == before
    assert len(before) == 3 and before[1][0][:len(before[0][0])] == before[0][0]
    assert before[1][2][-2:] == ("picked", "picked")  # the fork's own appended tokens
    assert new.book.index == 1 and new.book.current.ids == before[1][0]
    assert new.tracked_ids == [*engine.encode_plain(" dog"), *engine.encode_plain(" cat")]
    assert new.sampler.settings.temperature == 0.8 and new.sampler.settings.seed == 11
    assert new.constraint is not None and new.constraint.spec == ConstraintSpec("regex", r"[ a-zA-Z,.]{0,80}")
    assert state.ui == UI and state.model == "embedded"


def test_another_tokenizer_gets_the_prompts_by_their_text(tmp_path, make_engine):
    engine, _, core = explored()
    texts = [engine.decode(p.ids) for p in core.book]
    path = tmp_path / "s.json"
    save_session(path, core.snapshot("embedded", UI))
    tiny = make_engine("llama")  # tests/conftest.py: another (byte-level) tokenizer
    run = Headless(tiny, SamplingConfig())
    notes = run.core.resume(load_session(path))
    run.settle()
    assert [p.ids for p in run.core.book] == [tuple(tiny.encode(t)) for t in texts]
    assert [tiny.decode(p.ids).removeprefix("<bos>") for p in run.core.book] == texts
    assert any("3 of 3 prompts were re-tokenised from their text" in n for n in notes)
    assert run.core.sampler.settings.temperature == 0.8


def test_the_keeper_saves_only_changes_and_says_once_when_it_cannot(tmp_path):
    _, run, core = explored()
    said: list[str] = []
    keeper = SessionKeeper(tmp_path / "k.json", lambda: core.snapshot("embedded", UI), on_error=said.append)
    assert keeper.save() and not keeper.save()  # nothing changed: no write
    core.sampler.change(temperature="0.5")
    assert keeper.save() and load_session(tmp_path / "k.json").sampling["temperature"] == 0.5
    (tmp_path / "file").write_text("x")
    blocked = SessionKeeper(tmp_path / "file" / "k.json", lambda: core.snapshot("embedded", UI),
                            on_error=said.append)
    assert not blocked.save() and not blocked.save()
    assert len(said) == 1 and said[0].startswith("Could not save the session to ")


def test_a_broken_session_file_is_one_sentence(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"kind": "token-explorer-session", "version": 1, "prompts": [')
    with pytest.raises(SessionFileError, match=r"^Could not read the session .*: it is not valid JSON\.$"):
        load_session(path)
    path.write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(SessionFileError, match="it is not a Token Explorer session"):
        load_session(path)


def test_sessions_are_kept_per_model_in_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKEN_EXPLORER_CACHE", str(tmp_path))
    assert session_path("HuggingFaceTB/SmolLM2-135M") == tmp_path / "sessions" / "HuggingFaceTB_SmolLM2-135M.json"


# A process that saves a large session over and over with the keeper (each file several
# MB, so most of its time is spent writing); the state's ui.n counts the saves.
WRITER = r"""
import sys, itertools
from explorer.session.keep import SavedPrompt, SessionKeeper, SessionState
path = sys.argv[1]
ids = tuple(range(150_000))
prompt = SavedPrompt(ids=ids, original=ids, origins=("prompt",) * len(ids), text="x", original_text="x")
counter = itertools.count(1)
keeper = SessionKeeper(path, lambda: SessionState(model="m", prompts=(prompt,), ui={"n": next(counter)}))
print("ready", flush=True)
while True:
    keeper.save()
"""


def test_kill_9_during_the_periodic_save_leaves_the_previous_session_whole(tmp_path):
    path = tmp_path / "session.json"
    repo = Path(__file__).resolve().parent.parent
    for trial in range(2):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=repo,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            # Once a save has finished (the file exists), kill it the moment its next
            # write is under way: its temporary file is there, the rename not done.
            deadline = time.monotonic() + 120
            while not path.exists() and time.monotonic() < deadline:
                time.sleep(0.005)
            while time.monotonic() < deadline and not any(n.endswith(".te-tmp") for n in os.listdir(tmp_path)):
                pass
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        assert any(n.endswith(".te-tmp") for n in os.listdir(tmp_path)), "the kill did not land mid-write"
        state = load_session(path)  # a whole file: the last completed save
        assert len(state.prompts[0].ids) == 150_000 and state.ui["n"] >= 1
    # The next save (any process) removes what the killed writers left.
    save_session(path, load_session(path))
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".te-tmp")]
