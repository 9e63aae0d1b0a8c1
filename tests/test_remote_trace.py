"""`trace --server URL` against real servers gives the report and JSONL of a local trace:
at temperature 0 the same tokens, and per step the same log-probs within 1e-4."""

from __future__ import annotations

import json
import math

import pytest

from explorer.core.trace_command import main as trace_main

PROMPT = "Once upon a time, there was a little"


def run_trace(tmp_path, name, *flags):
    out = tmp_path / f"{name}.jsonl"
    code = trace_main(["--prompt", PROMPT, "--max-new-tokens", "12", "--top-logprobs", "5",
                       "--jsonl", str(out), *flags])
    assert code == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def local_lines(tmp_path_factory):
    return run_trace(tmp_path_factory.mktemp("local"), "local", "--model", "embedded")


@pytest.mark.parametrize("server", ["vllm_url", "llama_url"])
def test_trace_on_a_server_equals_the_local_greedy_trace(request, tmp_path, capsys, local_lines, server):
    url = request.getfixturevalue(server)
    lines = run_trace(tmp_path, "remote", "--server", url)
    assert [line["token_id"] for line in lines] == [line["token_id"] for line in local_lines]
    for got, want in zip(lines, local_lines):
        assert abs(got["logprob"] - want["logprob"]) < 1e-4 and got["rank"] == want["rank"]
        assert [c["token_id"] for c in got["top"]] == [c["token_id"] for c in want["top"]]
        assert got["entropy_bound"] is True and want["entropy_bound"] is False
        assert got["entropy"] <= want["entropy"] + 1e-5
        if server == "vllm_url":  # it reports p_final (processed log-probs): greedy puts all on one
            assert abs(got["logprob_final"]) < 1e-6
            assert all(c.get("logprob_final") is None for c in got["top"] if c["token_id"] != got["token_id"])
    report = capsys.readouterr().out
    assert ("vLLM" if server == "vllm_url" else "llama.cpp") in report


SAMPLED = ("--temperature", "1.2", "--top-k", "40")


@pytest.mark.parametrize("server", ["vllm_url", "llama_url"])
def test_trace_samples_on_the_server_and_a_seed_repeats_it(request, tmp_path, capsys, server):
    url = request.getfixturevalue(server)
    runs = [[line["token_id"] for line in run_trace(tmp_path, f"s{i}", "--server", url, *SAMPLED,
                                                      "--seed", seed)]
            for i, seed in enumerate(("5", "5", "6"))]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    assert "T 1.2 · top-k 40 · seed 6 (on the server)" in capsys.readouterr().out


def test_trace_on_vllm_writes_the_servers_p_final(tmp_path, vllm_url):
    from app_fixtures import embedded_engine

    from explorer.sampling import distributions
    from explorer.sampling.settings import SamplingSettings

    lines = run_trace(tmp_path, "p-final", "--server", vllm_url, *SAMPLED, "--seed", "5")
    engine = embedded_engine()
    prompt = tuple(engine.encode(PROMPT))
    settings = SamplingSettings(temperature=1.2, top_k=40, seed=5)
    ids = prompt
    for line in lines:
        engine.sync("trace-p-final", ids)
        want = distributions(engine.next_logits("trace-p-final"), ids, len(prompt), settings).p_final
        assert abs(math.exp(line["logprob_final"]) - float(want[line["token_id"]])) < 1e-4
        for c in line["top"]:
            p = 0.0 if c["logprob_final"] is None else math.exp(c["logprob_final"])
            assert abs(p - float(want[c["token_id"]])) < 1e-4
        ids = ids + (line["token_id"],)
    engine.forget("trace-p-final")
