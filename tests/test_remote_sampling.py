"""Sampling on the server, in the app (Pilot) against real vLLM and llama.cpp servers:
`space` and autoplay send the sampler settings and append the token the server chose, one
request per token; greedy equals the local engine's greedy; a seed repeats a run; a server
that dies mid-autoplay stops it with one sentence and loses nothing on screen."""

from __future__ import annotations

from dataclasses import replace

from app_fixtures import SIZE, RecordingApp, embedded_engine, screen_text, settle
from app_fixtures import app_settings as settings_for

from explorer.remote import Timeouts, open_remote
from explorer.sampling import SamplingConfig
from explorer.session.book import SAMPLED


def server_app(url: str, *, max_tokens: int = 256, **values) -> RecordingApp:
    backend = open_remote(url, tokens_to_show=20, timeouts=Timeouts(connect=2, read=30, retries=0))
    sampling = replace(SamplingConfig(values={"seed": 1234, **values}), max_tokens=max_tokens)
    return RecordingApp(settings_for(sampling=sampling), engine=backend)


def count_requests(backend) -> list[str]:
    """Paths of the model requests (completions) the backend sends from now on; the real
    client still sends them, this only records. (/detokenize, which learns a new token's
    text once per session, is not model work.)"""
    sent: list[str] = []
    post = backend.client.post

    def recording(path, body, **kwargs):
        if "completion" in path:
            sent.append(path)
        return post(path, body, **kwargs)

    backend.client.post = recording
    return sent


def local_greedy(ids, n: int) -> list[int]:
    engine = embedded_engine()
    out = list(ids)
    for _ in range(n):
        out.append(engine.sync("remote-greedy", tuple(out))[-1].top[0].token_id)
    engine.forget("remote-greedy")
    return out[len(ids):]


async def autoplay_to_the_limit(app, pilot) -> tuple[int, ...]:
    await settle(app, pilot)
    start = app.main.book.current.ids
    await pilot.press("g")
    await settle(app, pilot)
    assert not app.main.autoplaying
    return app.main.book.current.ids[len(start):]


async def test_greedy_autoplay_on_vllm_equals_local_greedy_one_request_per_token(vllm_url):
    app = server_app(vllm_url, max_tokens=8, temperature=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.can_sample and app.main.samples_on_server
        start = app.main.book.current.ids
        sent = count_requests(app.main.engine)
        made = await autoplay_to_the_limit(app, pilot)
        assert list(made) == local_greedy(start, 8)
        assert all(o == SAMPLED for o in app.main.book.current.origins[len(start):])
        # The first token was drawn when the prompt loaded; every append then draws the
        # next one in its own request.
        assert sent == ["/v1/completions"] * len(made), sent
        assert any("8 tokens (the limit)" in note for note, _ in app.notes)
        assert "sampler: greedy · on the server" in screen_text(app)


async def test_greedy_autoplay_on_llama_cpp_equals_local_greedy(llama_url):
    app = server_app(llama_url, max_tokens=6, temperature=0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        sent = count_requests(app.main.engine)
        made = await autoplay_to_the_limit(app, pilot)
        assert list(made) == local_greedy(start, 6)
        assert sent == ["/completion"] * len(made), sent


async def test_a_seed_repeats_a_sampled_run_on_each_server(vllm_url, llama_url):
    for url in (vllm_url, llama_url):
        runs = []
        for seed in (1234, 1234, 99):
            app = server_app(url, max_tokens=6, temperature=1.5, seed=seed)
            async with app.run_test(size=SIZE) as pilot:
                runs.append(await autoplay_to_the_limit(app, pilot))
                assert f"seed {seed}" in screen_text(app)
                app.main.engine.close()
        assert runs[0] == runs[1] and len(runs[0]) == 6, url
        assert runs[0] != runs[2], url  # another seed, another path (T 1.5: near certain)


async def test_space_pop_space_gives_the_same_token_and_the_pop_costs_no_request(llama_url):
    app = server_app(llama_url, temperature=1.0, top_k=40)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        await pilot.press("space", "space")
        await settle(app, pilot)
        two = app.main.book.current.ids
        assert len(two) == len(start) + 2
        sent = count_requests(app.main.engine)
        await pilot.press("left")
        await settle(app, pilot)
        assert sent == []  # a pop, and the draw after it is remembered: no request
        await pilot.press("space")
        await settle(app, pilot)
        # The same token again, and the one request is the table after it.
        assert app.main.book.current.ids == two and sent == ["/completion"]


async def test_a_server_that_dies_mid_autoplay_stops_it_with_one_sentence(own_llama_server):
    app = server_app(own_llama_server.url, temperature=0.8)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        start = app.main.book.current.ids
        await pilot.press("g")
        for _ in range(5000):
            await pilot.pause(0.01)
            if len(app.main.shown[1]) >= len(start) + 3:
                break
        own_llama_server.kill()
        await settle(app, pilot)
        assert not app.main.autoplaying
        errors = [n for n, severity in app.notes if severity == "error"]
        assert len(errors) == 1 and errors[0].startswith("Cannot reach the server at 127.0.0.1:")
        assert not [n for n, _ in app.notes if n.startswith("Autoplay stopped")]  # one sentence
        ids = app.main.book.current.ids
        # Nothing on screen is lost: every token shown when it died is still there.
        assert len(ids) >= len(start) + 3 and app.main.shown[1] == ids and len(app.main.records) == len(ids)


async def test_forced_text_on_vllm_shows_the_servers_p_base(vllm_url):
    app = server_app(vllm_url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        ids = app.main.book.current.ids
        await pilot.press("t")
        await pilot.press(*" the old king")
        await pilot.press("enter")
        await settle(app, pilot)
        forced = tuple(embedded_engine().encode_plain(" the old king"))
        assert app.main.book.current.ids == ids + forced
        want = embedded_engine().sync("remote-forced", ids + forced)
        embedded_engine().forget("remote-forced")
        for i in range(len(ids), len(ids) + len(forced)):
            assert abs(app.main.records[i].logprob - want[i].logprob) < 1e-4
        assert any(text.startswith("Forced: '␣the'") for text, _ in app.notes)
