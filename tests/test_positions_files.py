"""Issue 23's files: `-i` opens a JSONL written by `trace` or by `x` as a prompt, token for
token (through session/start.open_prompt, as the app, trace and tree open prompts); a
branch's saved .json keeps where it branched."""

from __future__ import annotations

import io
import json
import sys

import pytest
from app_fixtures import embedded_engine, requires_model

from explorer import cli
from explorer.config import PromptSettings
from explorer.core.export import record_lines, write_jsonl
from explorer.session.files import PromptFileError, save_prompt
from explorer.session.start import open_prompt

pytestmark = requires_model


def test_a_trace_jsonl_opens_as_its_prompt_and_generated_tokens(tmp_path, monkeypatch):
    path = tmp_path / "run.jsonl"
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert cli.main(["trace", "--model", "embedded", "--prompt", "The cat sat", "--max-new-tokens", "5",
                     "--jsonl", str(path)]) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    engine = embedded_engine()
    prompt = engine.encode("The cat sat")
    assert lines[0]["prompt_ids"] == prompt
    start = open_prompt(engine, PromptSettings(), path=path, strict=True)
    assert start.ids == tuple(prompt) + tuple(line["token_id"] for line in lines)
    assert start.original == tuple(prompt)  # ctrl+r goes back to the prompt
    assert start.origins == ("prompt",) * len(prompt) + ("sampled",) * 5


def test_an_x_jsonl_opens_token_for_token(tmp_path):
    engine = embedded_engine()
    ids = engine.encode("Once upon a time there")
    path = tmp_path / "saved.jsonl"
    write_jsonl(path, record_lines(engine.sync("x-file", ids), engine.decode))
    engine.forget("x-file")
    start = open_prompt(engine, PromptSettings(), path=path, strict=True)
    assert start.ids == tuple(ids) and start.text == engine.decode(ids)


@pytest.mark.parametrize("content, words", [
    ('{"position": 3, "token_id": 5}\n', "without the 3 prompt ids"),
    ('{"position": 0, "token_id": 5}\n{"position": 2, "token_id": 6}\n', "do not follow"),
    ('{"position": 0}\n', "each line needs position and token_id"),
    ("not json\n", "line 1 is not valid JSON"),
])
def test_a_bad_jsonl_is_one_sentence(tmp_path, content, words):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(PromptFileError, match=words):
        open_prompt(embedded_engine(), PromptSettings(), path=path, strict=True)


def test_a_branch_json_keeps_where_it_branched(tmp_path):
    txt = save_prompt(tmp_path, "a b", [1, 2], "embedded", branched_from=(1, 2))
    record = json.loads(txt.with_suffix(".json").read_text())
    assert record["branched_from"] == {"prompt": 1, "position": 2}


def test_a_bad_jsonl_is_refused_before_the_model_loads(tmp_path):
    from explorer.inputs import check_prompt_file

    path = tmp_path / "bad.jsonl"
    path.write_text('{"position": 2, "token_id": 5}\n')
    with pytest.raises(PromptFileError, match="without the 2 prompt ids"):
        check_prompt_file(path)
    path.write_text('{"position": 0, "token_id": 5}\n')
    check_prompt_file(path)  # a good one passes
