"""Issue 26 on a real vLLM server: Token Tracer's documented example command line, with
--base-url pointing at the server, runs unchanged and samples with seed 42; tracked tokens
of generated steps come from the steps' own requests (no prefix batch for them) and equal a
full forward pass; the entropy bound uses as many entries as the server allows while the
table keeps the top-K asked for; the text report shows tracked tokens per step."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import full_logprobs

from explorer import cli
from explorer.core.trace import trace
from explorer.remote import open_remote

TOL = 1e-4
EXAMPLE = ["--prompt=What is machine learning?", "--seed=42"]  # Token Tracer's README


@pytest.fixture(scope="module")
def reference(embedded_reference):
    return embedded_reference  # (tests/conftest.py: loaded once per run)


logprobs_of = full_logprobs  # one plain forward pass (tests/conftest.py)


def completion_of(report: str) -> list[int]:
    line = next(s for s in report.splitlines() if s.startswith("completion ids  ["))
    return [int(t) for t in line[len("completion ids  ["):line.index("]")].split(", ") if t]


def test_token_tracers_example_samples_with_seed_42(vllm_url, capsys):
    runs = []
    for extra in ([], [], ["--seed=43"]):
        code = cli.main(["trace", *EXAMPLE, *extra, f"--base-url={vllm_url}"])
        out = capsys.readouterr()
        assert code == 0, out.err
        runs.append(out.out)
    greedy_code = cli.main(["trace", "--prompt=What is machine learning?", f"--base-url={vllm_url}"])
    greedy = capsys.readouterr().out
    assert greedy_code == 0
    first, again, other = (completion_of(r) for r in runs)
    assert len(first) == 32 and first == again  # the same tokens twice
    assert first != completion_of(greedy)  # sampled, not greedy
    assert first != other
    assert "decoding T 1 · seed 42 (the model's generation settings, sampling on by --seed) (on the server)" in runs[0]
    assert "ids=[" in runs[0] and "%" in runs[0]
    # Token Tracer's default --top-k -1 (off) is taken as well.
    assert cli.main(["trace", *EXAMPLE, "--top-k", "-1", f"--base-url={vllm_url}"]) == 0
    assert completion_of(capsys.readouterr().out) == first


def test_generated_steps_tracked_from_their_own_requests_equal_a_full_forward(vllm_url, reference):
    model, tok = reference
    backend = open_remote(vllm_url, tokens_to_show=5)
    tokens = [5, 263, 8191]
    ids = tuple(tok("Once upon a time, there was a")["input_ids"])
    sent: list[tuple[str, int]] = []  # (when, prompts) of each request with tracked ids
    phase = ["generating"]
    post = backend.client.post

    def recording(path, body, **kwargs):
        if "logprob_token_ids" in body:
            many = isinstance(body["prompt"][0], list)
            sent.append((phase[0], len(body["prompt"]) if many else 1))
        return post(path, body, **kwargs)

    backend.client.post = recording
    try:
        backend.follow("t", tokens)
        result = trace(backend, ids, 12, key="t", stop_ids=(), forget=False)
        # One tracked request of one prompt beside each step's append (the prompt's own
        # load is the first step's table and has none).
        assert sent == [("generating", 1)] * 12
        phase[0] = "after"
        series = backend.tracked("t", tokens)
        # What tracked() still asks for is the prompt's positions only, in prefix batches.
        assert sum(n for when, n in sent if when == "after") == len(ids)
    finally:
        backend.close()
    want = logprobs_of(model, list(result.ids))
    assert series.logprobs.shape == (len(result.ids), 3)
    for j, t in enumerate(tokens):
        got = torch.tensor(series.logprobs[:, j], dtype=torch.float32)
        assert (got - want[:, t]).abs().max() < TOL


def test_tracked_summary_and_report_on_the_server_equal_a_full_forward(vllm_url, reference, tmp_path, capsys):
    model, tok = reference
    summary = tmp_path / "s.json"
    code = cli.main(["trace", "--prompt", "Once upon a time", "--server", vllm_url, "--max-new-tokens", "8",
                     "--track-id", "263", "--track-id", "8000", "--tracked-summary", str(summary)])
    report = capsys.readouterr().out
    assert code == 0
    got = json.loads(summary.read_text())["tracked_logprobs"]
    prompt = tok("Once upon a time")["input_ids"]
    completion = completion_of(report)
    want = logprobs_of(model, prompt + completion)
    for key, series in got.items():
        assert len(series) == len(completion)
        for n, lp in enumerate(series):
            assert abs(lp - float(want[len(prompt) - 1 + n, int(key)])) < TOL
    steps = report.split("\nstep ")[1:]
    for n, block in enumerate(steps):
        assert f"id 8000  logprob {got['8000'][n]:.4f}" in block


def test_entropy_bound_asks_for_all_the_server_allows_and_the_table_keeps_top_k(vllm_url, reference):
    model, tok = reference
    backend = open_remote(vllm_url, tokens_to_show=5)
    try:
        ids = tok("Once upon a time, there was a")["input_ids"]
        records = backend.sync("e", ids)
    finally:
        backend.close()
    p = logprobs_of(model, ids).exp()
    for i in range(1, len(ids)):
        r = records[i]
        row = p[i - 1]
        exact = float(-(row * row.clamp_min(1e-30).log()).sum())
        top = row.sort(descending=True).values.double()
        # The bound from the 64 most likely (the test server's --max-logprobs 64), written
        # out: the listed tokens' own terms, and the rest's mass at the 64th's log-prob.
        bound64 = float(-(top[:64] * top[:64].log()).sum() - (1 - top[:64].sum()) * top[63].log())
        bound5 = float(-(top[:5] * top[:5].log()).sum() - (1 - top[:5].sum()) * top[4].log())
        assert r.entropy_bound and abs(r.entropy - bound64) < 1e-3
        assert bound5 <= r.entropy <= exact + 1e-4
    assert len(records[-1].top) == 5  # the table: the top-K asked for
