"""`trace --server URL` against real servers gives the report and JSONL of a local trace:
at temperature 0 the same tokens, and per step the same log-probs within 1e-4."""

from __future__ import annotations

import json

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
    report = capsys.readouterr().out
    assert ("vLLM" if server == "vllm_url" else "llama.cpp") in report
