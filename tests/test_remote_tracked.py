"""Tracked tokens on a real vLLM server (explorer.remote.tracking): log p of chosen tokens
after every prompt position equals the local engine's within 1e-4 at any rank, ranks are
exact where the server's top-K says and an honest lower bound elsewhere, a re-fetch after
an append asks for the new position only, a cancelled fetch caches nothing, `trace --server
--track` writes the local JSONL's tracked fields, and `m` in the app shows the series."""

from __future__ import annotations

import json

import numpy as np
import pytest
from app_fixtures import SIZE, RecordingApp, embedded_engine, screen_text, settle
from app_fixtures import app_settings as settings_for

from explorer.backend import Cancelled
from explorer.core.trace_command import main as trace_main
from explorer.remote import Timeouts, open_remote
from explorer.remote.tracking import CHUNK

TOL = 1e-4
TOKENS = [5, 263, 300, 4321, 8191]  # from likely words to the very bottom of the vocabulary
TEXT = ("Once upon a time, there was a little girl who lived in a small house near the woods. "
        "Every day she walked to the river with her dog, and every evening she came home to "
        "her mother, who cooked soup and told her stories about the old king.")


@pytest.fixture(scope="module")
def engine():
    return embedded_engine()


def prefixes_sent(backend) -> list[int]:
    """How many prompts each tracked request sends from now on (the real client still
    sends them; this only records)."""
    sent: list[int] = []
    post = backend.client.post

    def recording(path, body, **kwargs):
        if "logprob_token_ids" in body:
            sent.append(len(body["prompt"]) if isinstance(body["prompt"][0], list) else 1)
        return post(path, body, **kwargs)

    backend.client.post = recording
    return sent


def test_tracked_log_probs_at_every_position_equal_the_engine(vllm_remote, engine):
    ids = tuple(engine.encode(TEXT))
    assert len(ids) > CHUNK  # several requests
    vllm_remote.sync("t", ids)
    engine.sync("remote-t", ids)
    done = []
    got = vllm_remote.tracked("t", TOKENS, progress=lambda d, n: done.append((d, n)))
    want = engine.tracked("remote-t", TOKENS)
    assert got.token_ids == tuple(TOKENS) and got.logprobs.shape == (len(ids), len(TOKENS))
    assert np.abs(got.logprobs - want.logprobs).max() < TOL
    assert done[-1] == (len(ids), len(ids)) and len(done) == -(-len(ids) // CHUNK)
    # Ranks: exact inside the server's top-20 (or for the prompt's own next token), a lower
    # bound below it, which is then exactly 21 (all 20 listed are more likely).
    exact, bound = ~got.rank_bound, got.rank_bound
    assert exact.sum() > 0 and bound.sum() > 0
    assert np.array_equal(got.ranks[exact], want.ranks[exact])
    assert (got.ranks[bound] <= want.ranks[bound]).all() and (want.ranks[bound] > 20).all()
    assert set(got.ranks[bound].tolist()) == {21}


def test_an_append_asks_for_the_new_position_only(vllm_remote, engine):
    ids = tuple(engine.encode("The cat sat on the mat and looked at the little dog"))
    vllm_remote.sync("a", ids)
    vllm_remote.tracked("a", TOKENS[:2])
    sent = prefixes_sent(vllm_remote)
    ids = ids + (263,)
    vllm_remote.sync("a", ids)
    got = vllm_remote.tracked("a", TOKENS[:2])
    assert sent == [1]  # one request, one prompt: the new last position
    engine.sync("remote-a", ids)
    assert np.abs(got.logprobs - engine.tracked("remote-a", TOKENS[:2]).logprobs).max() < TOL
    vllm_remote.sync("a", ids[:-3])  # a pop: the cached rows serve it
    assert vllm_remote.tracked("a", TOKENS[:2]).logprobs.shape[0] == len(ids) - 3
    vllm_remote.tracked("a", TOKENS[:3])  # a new token: its column only, every position
    assert sent == [1] + [min(CHUNK, len(ids) - 3 - s) for s in range(0, len(ids) - 3, CHUNK)]


def test_a_cancelled_fetch_raises_and_caches_nothing(vllm_remote, engine):
    ids = tuple(engine.encode(TEXT))
    vllm_remote.sync("c", ids)
    calls = []
    with pytest.raises(Cancelled):
        vllm_remote.tracked("c", [777], progress=lambda d, n: calls.append(d),
                       cancelled=lambda: bool(calls))  # cancelled after the first chunk
    assert calls == [CHUNK]
    sent = prefixes_sent(vllm_remote)
    vllm_remote.tracked("c", [777])
    assert sum(sent) == len(ids)  # every position fetched again: nothing half-cached


def test_trace_on_vllm_writes_the_local_tracked_fields(tmp_path, vllm_url):
    def lines(name, *flags):
        out = tmp_path / f"{name}.jsonl"
        assert trace_main(["--prompt", "Once upon a time, there was a little", "--max-new-tokens", "8",
                           "--track", " girl", "--track", " dragon", "--jsonl", str(out), *flags]) == 0
        return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]

    local, remote = lines("local", "--model", "embedded"), lines("remote", "--server", vllm_url)
    assert [x["token_id"] for x in remote] == [x["token_id"] for x in local]
    for got, want in zip(remote, local):
        assert got["tracked"].keys() == want["tracked"].keys() and len(want["tracked"]) >= 2
        assert max(abs(got["tracked"][t] - want["tracked"][t]) for t in want["tracked"]) < TOL


def test_trace_on_llama_cpp_refuses_track_in_one_sentence(capsys, llama_url):
    code = trace_main(["--prompt", "Once upon a time", "--server", llama_url, "--track", " girl"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 2 and "llama.cpp" in err and "n_probs" in err and err.count(". ") == 0


async def test_pinning_a_token_on_vllm_shows_its_series(vllm_url):
    backend = open_remote(vllm_url, tokens_to_show=20, timeouts=Timeouts(connect=2, read=30, retries=0))
    app = RecordingApp(settings_for(), engine=backend)
    engine = embedded_engine()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "m")
        await settle(app, pilot)
        second = app.main.table.candidates[1].token_id
        assert app.main.tracked_ids == [second]
        rows = app.main.sampler_drawing()["tracked"]
        ids = app.main.book.current.ids
        engine.sync("remote-pin", ids)
        want = engine.tracked("remote-pin", [second])
        assert len(rows) == 1 and len(rows[0].series) == len(ids)
        assert np.abs(rows[0].series - want.probs[:, 0]).max() < TOL
        assert rows[0].rank == 2 and not rows[0].rank_bound
        assert "tracked tokens" in screen_text(app) and "#2" in screen_text(app)
        await pilot.press("right")  # the append's position only
        await settle(app, pilot)
        ids = app.main.book.current.ids
        rows = app.main.sampler_drawing()["tracked"]
        engine.sync("remote-pin", ids)
        assert np.abs(rows[0].series - engine.tracked("remote-pin", [second]).probs[:, 0]).max() < TOL
        assert not [n for n, severity in app.notes if severity in ("error", "warning")]
        far = 8191  # pinned by text: below the server's top-20, so its rank is a bound
        await pilot.press("M", *engine.decode([far]), "enter")
        await settle(app, pilot)
        assert app.main.tracked_ids == [second, far]
        row = app.main.sampler_drawing()["tracked"][1]
        assert row.rank_bound and row.rank == 21 and engine.tracked("remote-pin", [far]).ranks[-1, 0] > 20
        assert "#>20" in screen_text(app)


async def test_pinning_a_token_on_llama_cpp_says_why_not(llama_url):
    backend = open_remote(llama_url, tokens_to_show=20, timeouts=Timeouts(connect=2, read=30, retries=0))
    app = RecordingApp(settings_for(), engine=backend)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        assert not app.main.tracked_ids
        warnings = [n for n, severity in app.notes if severity == "warning"]
        assert len(warnings) == 1 and "n_probs" in warnings[0]


async def test_pinned_tokens_show_the_servers_p_final_when_it_samples(vllm_url):
    from dataclasses import replace

    from explorer.sampling import SamplingConfig, distributions

    backend = open_remote(vllm_url, tokens_to_show=20, timeouts=Timeouts(connect=2, read=30, retries=0))
    sampling = replace(SamplingConfig(values={"seed": 7, "temperature": 0.8}), max_tokens=64)
    app = RecordingApp(settings_for(sampling=sampling), engine=backend)
    engine = embedded_engine()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "m")  # in the server's list
        await pilot.press("M", *engine.decode([8191]), "enter")  # far below it: asked by id
        await settle(app, pilot)
        ids = app.main.book.current.ids
        engine.sync("remote-final", ids)
        want = distributions(engine.next_logits("remote-final"), ids, len(ids), app.main.sampler.settings).p_final
        rows = app.main.sampler_drawing()["tracked"]
        assert [r.token_id for r in rows] == app.main.tracked_ids and len(rows) == 2
        assert all(r.p_final is not None and abs(r.p_final - float(want[r.token_id])) < TOL for r in rows)
        assert "final" in screen_text(app)
