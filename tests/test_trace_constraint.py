"""`trace --choice | --regex | --json-schema | --grammar` through the command line on the
embedded model, checked independently of llguidance: the text against Python's `regex`
(full matches, and partial matches for every `top` entry's `valid` flag at every step),
JSON against `jsonschema`, choices by equality."""

from __future__ import annotations

import json

import jsonschema
import pytest
import regex
from app_fixtures import requires_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR

pytestmark = requires_model
PROMPT = "The answer is"


@pytest.fixture(scope="module")
def tok():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))


def run(tmp_path, capsys, *flags, name="t.jsonl"):
    path = tmp_path / name
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--jsonl", str(path),
                     "--max-new-tokens", "40", *flags])
    out = capsys.readouterr()
    assert code == 0, out.err
    return [json.loads(line) for line in path.read_text().splitlines()], out.out


def completion(lines, tok) -> str:
    """The generated text without a final end-of-sequence token."""
    ids = [line["token_id"] for line in lines]
    if ids and ids[-1] == tok.eos_token_id:
        ids = ids[:-1]
    return tok.decode(ids)


@pytest.mark.parametrize("seed", ["1", "2"])
def test_regex_generation_fully_matches_and_valid_flags_agree_with_partial_matching(tmp_path, capsys, tok, seed):
    pattern = r" (cat|dog)s? [0-9]{2}!"
    lines, report = run(tmp_path, capsys, "--regex", pattern, "--temperature", "1", "--seed", seed,
                        "--top-logprobs", "256")
    text = completion(lines, tok)
    assert regex.fullmatch(pattern, text), repr(text)
    assert "constraint regex" in report
    special = set(tok.all_special_ids)
    checked_valid = checked_invalid = 0
    for n, line in enumerate(lines):
        before = [x["token_id"] for x in lines[:n]]
        assert any(c["valid"] for c in line["top"]) or line["token_id"] not in [c["token_id"] for c in line["top"]]
        for c in line["top"]:
            if c["token_id"] in special:
                continue
            piece = tok.decode(before + [c["token_id"]])
            if "\ufffd" in piece:  # a byte token that is part of a character
                continue
            assert c["valid"] == bool(regex.fullmatch(pattern, piece, partial=True)), (n, repr(piece))
            if c["valid"]:
                checked_valid += 1
            else:
                checked_invalid += 1
                assert c["logprob_final"] is None
    assert checked_valid and checked_invalid


def test_json_schema_generation_parses_and_validates(tmp_path, capsys, tok):
    schema = {"type": "object",
              "properties": {"name": {"type": "string", "maxLength": 6}, "ok": {"type": "boolean"}},
              "required": ["name", "ok"], "additionalProperties": False}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    lines, _ = run(tmp_path, capsys, "--json-schema", str(path), "--temperature", "1", "--seed", "3",
                   "--max-new-tokens", "60")
    text = completion(lines, tok)
    jsonschema.validate(json.loads(text), schema)


def test_choices_equal_one_choice_even_greedily(tmp_path, capsys, tok):
    choices = (" yes", " no", " maybe later")
    flags = [x for c in choices for x in ("--choice", c)]
    for extra in (("--temperature", "1", "--seed", "4"), ()):  # () = trace's default: greedy
        lines, _ = run(tmp_path, capsys, *flags, *extra)
        assert completion(lines, tok) in choices
        assert lines[-1]["token_id"] == tok.eos_token_id  # stopped by the constraint's end


def test_lark_grammar(tmp_path, capsys, tok):
    path = tmp_path / "g.lark"
    path.write_text('start: " " greeting " " name "."\ngreeting: "hello" | "hi"\nname: /[A-Z][a-z]{1,5}/\n')
    lines, _ = run(tmp_path, capsys, "--grammar", str(path), "--temperature", "1", "--seed", "2")
    assert regex.fullmatch(r" (hello|hi) [A-Z][a-z]{1,5}\.", completion(lines, tok))


@pytest.mark.parametrize("make, flag, words", [
    (lambda p: p / "missing.json", "--json-schema", "does not exist"),
    (lambda p: (p / "bin.json").write_bytes(b"\x89PNG\x00\x01") and p / "bin.json", "--json-schema",
     "is not a UTF-8 text file"),
    (lambda p: (p / "bad.json").write_text("{nope") and p / "bad.json", "--json-schema", "is not valid JSON"),
    (lambda p: p, "--grammar", "is a folder"),
])
def test_bad_constraint_files_are_one_sentence_before_any_model_work(tmp_path, capsys, make, flag, words):
    code = cli.main(["trace", "--model", "no-such-model", "--prompt", "x", flag, str(make(tmp_path))])
    err = capsys.readouterr().err
    assert code == 2 and words in err and err.count("\n") == 1 and err.rstrip().endswith(".")


def test_invalid_regex_and_two_kinds_are_one_sentence(capsys):
    code = cli.main(["trace", "--model", "embedded", "--prompt", "x", "--regex", "(ab"])
    last = capsys.readouterr().err.strip().splitlines()[-1]  # after the loading bar
    assert code == 2 and last == ('token-explorer trace: The regex is not valid: invalid regex "(ab" '
                                  '(in regex): unclosed group.')
    code = cli.main(["trace", "--model", "embedded", "--prompt", "x", "--regex", "a", "--choice", "b"])
    err = capsys.readouterr().err
    assert code == 2 and "not allowed with" in err and err.count("\n") == 1


# -- on a server ---------------------------------------------------------------------------
def run_server(tmp_path, capsys, url, *flags, name="s.jsonl"):
    path = tmp_path / name
    code = cli.main(["trace", "--server", url, "--prompt", PROMPT, "--jsonl", str(path),
                     "--max-new-tokens", "24", *flags])
    out = capsys.readouterr()
    assert code == 0, out.err
    return [json.loads(line) for line in path.read_text().splitlines()], out.out


@pytest.mark.parametrize("flags", [
    ("--regex", r" (cat|dog)s? [0-9]{2}!"),
    ("--choice", " yes", "--choice", " no", "--choice", " maybe later"),
])
def test_vllm_applies_the_constraint_and_greedy_matches_the_local_trace(tmp_path, capsys, tok, vllm_url, flags):
    remote, report = run_server(tmp_path, capsys, vllm_url, *flags)
    local, _ = run(tmp_path, capsys, "--max-new-tokens", "24", *flags)  # local greedy, llguidance
    assert [x["token_id"] for x in remote] == [x["token_id"] for x in local]
    text = completion(remote, tok)
    if flags[0] == "--regex":
        assert regex.fullmatch(flags[1], text), repr(text)
    else:
        assert text in flags[1::2]
    assert "vLLM" in report and "constraint" in report
    assert all(c["valid"] is None for x in remote for c in x["top"])  # the server does not say


def test_vllm_json_schema_generation_validates(tmp_path, capsys, tok, vllm_url):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 6},
                                               "ok": {"type": "boolean"}},
              "required": ["name", "ok"], "additionalProperties": False}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    lines, _ = run_server(tmp_path, capsys, vllm_url, "--json-schema", str(path), "--max-new-tokens", "40")
    jsonschema.validate(json.loads(completion(lines, tok)), schema)
