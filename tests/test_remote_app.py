"""The app on real servers (Pilot): the header names the server, the table says it shows the
server's top-K and that the entropy is a bound, views needing the model's insides say they
are unavailable, llama.cpp's per-position values arrive when a colour layer asks, and a
server that dies mid-session costs one sentence and no token."""

from __future__ import annotations

from app_fixtures import SIZE, RecordingApp, screen_text, settle
from app_fixtures import app_settings as settings_for

from explorer.config import ServerSettings
from explorer.remote import Timeouts, open_remote
from explorer.ui.views import ColourLayer, LayerView


def remote_app(url: str, **overrides) -> RecordingApp:
    backend = open_remote(url, tokens_to_show=20, timeouts=Timeouts(connect=2, read=20, retries=0))
    return RecordingApp(settings_for(layer_prob=True, **overrides), engine=backend)


async def test_app_on_vllm_shows_the_server_and_honest_numbers(vllm_url):
    app = remote_app(vllm_url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        text = screen_text(app)
        assert "vLLM at 127.0.0.1:" in text
        assert "entropy p_base ≥" in text and "top 20 from vLLM" in text
        n = len(app.main.book.current.ids)
        await pilot.press("down", "right", "right", "left")
        await settle(app, pilot)
        assert len(app.main.book.current.ids) == n + 1 and len(app.main.records) == n + 1
        await pilot.press("e")  # probability: vLLM sent every prompt position with sync
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.PROBABILITY and "fetching" not in screen_text(app)
        await pilot.press("e", "e")
        await settle(app, pilot)
        assert "Attention influence is not available on this backend (vLLM)." in screen_text(app)
        await pilot.press("p")
        await settle(app, pilot)
        assert app.main.layer_view is LayerView.PROBABILITIES
        assert "The logit lens is not available on this backend (vLLM)." in screen_text(app)
        assert not [n for n, severity in app.notes if severity == "error"]


async def test_app_on_llama_cpp_fetches_per_token_values_when_coloured(llama_url):
    app = remote_app(llama_url)
    # 160 columns: at 120 the header drops its device part whole to fit llama.cpp's long
    # model name (the .gguf file's), and this checks the device part.
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        assert "llama.cpp at 127.0.0.1:" in screen_text(app)
        assert app.main.records[1].logprob is None  # not fetched until a layer needs it
        await pilot.press("e")
        await settle(app, pilot)
        assert app.main.colour is ColourLayer.PROBABILITY
        assert "fetching per-token values" not in screen_text(app)
        await pilot.press("right")
        await settle(app, pilot)
        assert "fetching per-token values" not in screen_text(app)
        assert not [n for n, severity in app.notes if severity == "error"]


async def test_a_server_that_dies_mid_session_costs_one_sentence_and_no_token(own_llama_server):
    app = remote_app(own_llama_server.url)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("right", "right")
        await settle(app, pilot)
        kept = app.main.book.current.ids
        shown = app.main.records
        own_llama_server.kill()
        await pilot.press("right")
        await settle(app, pilot)
        errors = [n for n, severity in app.notes if severity == "error"]
        assert len(errors) == 1 and errors[0].startswith("Cannot reach the server at 127.0.0.1:")
        assert app.main.records == shown and app.main.book.current.ids == kept  # nothing lost
        await pilot.press("left")  # a pop needs no server: the session goes on
        await settle(app, pilot)
        assert app.main.book.current.ids == kept[:-1]


def test_server_settings_route_the_factory_to_the_remote_backend(llama_url):
    from dataclasses import replace

    from explorer.backend import open_backend

    settings = replace(settings_for(), server=ServerSettings(url=llama_url))
    backend = open_backend(settings)
    try:
        assert backend.capabilities.kind == "llama.cpp"
    finally:
        backend.close()
