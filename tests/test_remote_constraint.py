"""Constraints with the sampler on a real vLLM server (`trace --server URL` with sampling
flags and --choice/--regex/--json-schema): the server's sampler draws only what the
constraint allows, checked independently of any constraint library (the `regex` package,
`jsonschema`, equality with a choice); the same seed repeats the run. And the end of a
generation: under a constraint the server ends with its end-of-sequence token once the
text is complete, and `trace --server` stops there, says so in the report and the JSONL,
and equals the local trace under the same constraint."""

from __future__ import annotations

import json

import jsonschema
import pytest
import regex
from app_fixtures import embedded_engine

from explorer import cli

PROMPT = "Once upon a time, there was a little"
SAMPLED = ("--temperature", "1.5", "--top-k", "100", "--top-p", "0.95")


def trace(tmp_path, capsys, *flags, name="t", prompt=PROMPT):
    path = tmp_path / f"{name}.jsonl"
    code = cli.main(["trace", "--prompt", prompt, "--jsonl", str(path), "--max-new-tokens", "40",
                     "--top-logprobs", "5", *flags])
    out = capsys.readouterr()
    assert code == 0, out.err
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()], out.out


def text_of(lines) -> str:
    """The generated text without the final end-of-sequence token."""
    engine = embedded_engine()
    ids = [line["token_id"] for line in lines]
    if ids and ids[-1] in engine.eos_ids:
        ids = ids[:-1]
    return engine.decode(ids)


def test_sampled_generations_under_a_regex_match_it_and_a_seed_repeats_them(tmp_path, capsys, vllm_url):
    pattern = r" (cat|dog)s? [0-9]{2}!"
    runs = {}
    for seed in ("1", "2", "3", "4", "1"):
        lines, report = trace(tmp_path, capsys, "--server", vllm_url, "--regex", pattern, *SAMPLED,
                              "--seed", seed, name=f"seed{seed}")
        text = text_of(lines)
        assert regex.fullmatch(pattern, text), repr(text)
        assert f"seed {seed} (on the server)" in report and "constraint regex" in report
        ids = [line["token_id"] for line in lines]
        assert runs.setdefault(seed, ids) == ids  # seed 1 again: the same tokens
    assert len({tuple(ids) for ids in runs.values()}) > 1  # and the seeds do sample


def test_sampled_generations_under_choices_equal_one_choice(tmp_path, capsys, vllm_url):
    choices = [" yes", " no", " maybe later"]
    flags = [f for c in choices for f in ("--choice", c)]
    for seed in ("1", "2", "3"):
        lines, _ = trace(tmp_path, capsys, "--server", vllm_url, *flags, *SAMPLED, "--seed", seed)
        assert text_of(lines) in choices
        assert lines[-1]["stop"] == "eos"


def test_sampled_json_under_a_schema_validates(tmp_path, capsys, vllm_url):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 8},
                                               "age": {"type": "integer", "minimum": 0, "maximum": 120}},
              "required": ["name", "age"], "additionalProperties": False}
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema))
    for seed in ("1", "2"):
        lines, _ = trace(tmp_path, capsys, "--server", vllm_url, "--json-schema", str(path),
                         "--temperature", "1", "--seed", seed)
        jsonschema.validate(json.loads(text_of(lines)), schema)


def test_trace_on_a_server_stops_at_the_end_of_sequence_token_as_the_local_trace_does(tmp_path, capsys, vllm_url):
    flags, prompt = ("--choice", " yes", "--choice", " no"), "Is the sky blue? Answer:"
    remote, report = trace(tmp_path, capsys, "--server", vllm_url, *flags, name="remote", prompt=prompt)
    local, local_report = trace(tmp_path, capsys, "--model", "embedded", *flags, name="local", prompt=prompt)
    # The embedded model never ends greedily by itself; here the constraint is complete
    # after " yes" or " no" and allows nothing but the end-of-sequence token.
    assert remote[-1]["token_id"] in embedded_engine().eos_ids and len(remote) < 40
    assert remote[-1]["stop"] == local[-1]["stop"] == "eos"
    assert all("stop" not in line for line in remote[:-1])
    assert "stopped by an end-of-sequence token" in report and "stopped by an end-of-sequence token" in local_report
    assert [x["token_id"] for x in remote] == [x["token_id"] for x in local]
    for got, want in zip(remote, local):  # every step keeps its table, at any rank of the token
        assert abs(got["logprob"] - want["logprob"]) < 1e-4 and got["rank"] == want["rank"]
        assert [c["token_id"] for c in got["top"]] == [c["token_id"] for c in want["top"]]


def test_a_generation_cut_by_the_token_limit_says_length(tmp_path, capsys, vllm_url):
    lines, report = trace(tmp_path, capsys, "--server", vllm_url, "--regex", "[a-z ]{30}",
                          "--max-new-tokens", "3")
    assert len(lines) == 3 and lines[-1]["stop"] == "length"
    assert "stopped by --max-new-tokens" in report


@pytest.mark.parametrize("flags", [(), ("--temperature", "0.7")])
def test_llama_cpp_says_constraints_are_local_only(capsys, llama_url, flags):
    code = cli.main(["trace", "--server", llama_url, "--prompt", PROMPT, "--regex", "[0-9]+", *flags])
    err = capsys.readouterr().err
    assert code == 2 and "are local-only on this server (llama.cpp)" in err and err.count("\n") == 1


async def test_the_apps_constraint_key_on_vllm_says_local_only_and_points_to_trace(vllm_url):
    from app_fixtures import SIZE, RecordingApp, settle
    from app_fixtures import app_settings as settings_for

    from explorer.remote import Timeouts, open_remote

    backend = open_remote(vllm_url, tokens_to_show=20, timeouts=Timeouts(connect=2, read=20, retries=0))
    app = RecordingApp(settings_for(), engine=backend)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        await settle(app, pilot)
        assert app.main.constraint is None
        notes = [note for note, _ in app.notes if note.startswith("Constraints are local-only")]
        assert len(notes) == 1 and "trace --server applies them on this server" in notes[0]
        assert "(vLLM)" in notes[0] and notes[0].count(".") == 1


def test_a_constrained_trace_on_vllm_is_two_requests_whatever_its_length(tmp_path, capsys, vllm_url, monkeypatch):
    """The completion under the constraint, then every step's numbers in one prompt-logprobs
    load that the replayed steps read (before: one reload per token outside the top-K)."""
    from explorer.remote.client import ServerClient

    real, calls = ServerClient.post, []

    def counting(self, path, body, **kwargs):
        if path == "/v1/completions":
            calls.append("structured" if "structured_outputs" in body
                         else "load" if "prompt_logprobs" in body else "other")
        return real(self, path, body, **kwargs)

    monkeypatch.setattr(ServerClient, "post", counting)
    lines, _ = trace(tmp_path, capsys, "--server", vllm_url, "--regex", r" (cat|dog)s? [0-9]{2}!",
                     *SAMPLED, "--seed", "3")
    assert len(lines) >= 4 and sum(line["rank"] > 5 for line in lines) >= 2  # tokens outside the table
    assert calls.count("structured") == 1 and calls.count("load") == 1
    assert calls.count("other") <= 2  # the probes when connecting, none per step
    assert all(line["top"] for line in lines)
