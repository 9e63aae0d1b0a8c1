"""A model comparison with a real vLLM server on one side (the embedded model's weights,
fp32): only the server's top-K is known, so the KL is the coarsened lower bound, marked as
one, and never above the exact KL the same pair gives locally."""

from __future__ import annotations

import json

import numpy as np
import pytest
from app_fixtures import embedded_engine

from explorer.compare import compare_models, vocabulary_mismatch
from explorer.config import ModelSettings
from explorer.engine import Engine
from explorer.remote import open_remote

TOL = 1e-4
TEXT = ("Once upon a time, there was a little girl who lived in a small house near the woods. "
        "Every day she walked to the river with her dog")


@pytest.fixture(scope="module")
def server(vllm_url):
    backend = open_remote(vllm_url, tokens_to_show=64)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def bf16():
    return Engine.load(ModelSettings(name="embedded", device="cpu", dtype="bfloat16"), influence=False)


def test_same_weights_on_the_server_bound_is_near_zero(server):
    local = embedded_engine()
    assert vocabulary_mismatch(local, server) is None
    ids = local.encode(TEXT)
    got = compare_models(local, server, ids)
    assert got.kl_bound
    exact = compare_models(local, local, ids)  # 0: the same weights
    for g, e in zip(got.scored(), exact.scored()):
        assert 0 <= g.kl_ab <= e.kl_ab + TOL
        assert abs(g.logprob_b - e.logprob_a) < TOL  # the server's exact prompt log-prob
        assert g.top1_a == g.top1_b
    assert got.summary()["top1_agreement"] == 1.0


def test_bound_stays_below_the_exact_local_kl(server, bf16):
    """bf16 locally against fp32 on the server: a real divergence, bounded from below."""
    local = embedded_engine()
    ids = local.encode(TEXT)
    bound = compare_models(bf16, server, ids)
    exact = compare_models(bf16, local, ids)  # the same pair, both local: exact
    assert bound.kl_bound and not exact.kl_bound
    b = np.array([p.kl_ab for p in bound.scored()])
    e = np.array([p.kl_ab for p in exact.scored()])
    assert (b <= e + TOL).all()
    assert b.max() > 0  # the bound saw some of the divergence
    # With the server as A the bound holds too (KL is not symmetric; the reverse pair).
    reverse = compare_models(server, bf16, ids)
    exact_reverse = compare_models(local, bf16, ids)
    assert all(r.kl_ab <= x.kl_ab + TOL for r, x in zip(reverse.scored(), exact_reverse.scored()))


def test_command_writes_the_bound_as_one(vllm_url, tmp_path, capsys):
    from explorer.cli import main

    out = tmp_path / "cmp.jsonl"
    code = main(["compare", "--model", "embedded", "--compare-server", vllm_url,
                 "--prompt", TEXT, "--jsonl", str(out)])
    report = capsys.readouterr().out
    assert code == 0, report
    assert "mean KL ≥ " in report and "lower bound" in report
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(line["kl_bound"] is True for line in lines)
    assert lines[-1]["summary"] and lines[-1]["top1_agreement"] == 1.0
