"""Faults against real servers: one that dies mid-autoplay, one that stalls past the
timeout, and a proxy on loopback that answers 500, invalid JSON or a truncated body. Each
gives one sentence naming the server, loses nothing already appended, and never shows the
API key."""

from __future__ import annotations

import pytest
from fault_proxy import FaultProxy

from explorer.backend import BackendError, ModelLoadError
from explorer.remote import RemoteError, Timeouts, open_remote
from explorer.remote.client import check_url
from explorer.sampling.settings import SamplingSettings

SECRET = "sk-test-4f1c9e0d-never-show-me"


def one_sentence(exc: BaseException, where: str) -> str:
    text = str(exc)
    assert "\n" not in text and text.endswith(".") and where in text, text
    assert SECRET not in text
    return text


def autoplay(backend, key, ids, steps):
    """What autoplay does: ask the server for a token, append it, again."""
    greedy = SamplingSettings(temperature=0)
    for _ in range(steps):
        ids = ids + (backend.sample(ids, greedy),)
        backend.sync(key, ids)
    return ids


def test_a_server_killed_mid_autoplay_stops_it_with_one_sentence(own_llama_server):
    backend = open_remote(own_llama_server.url, key=SECRET,
                          timeouts=Timeouts(connect=2, read=10, retries=1, backoff=0.05))
    ids = tuple(backend.encode("Once upon a time"))
    backend.sync("k", ids)
    ids = autoplay(backend, "k", ids, 3)
    kept = backend.records("k")
    own_llama_server.kill()
    with pytest.raises(RemoteError) as err:
        autoplay(backend, "k", ids, 3)
    text = one_sentence(err.value, own_llama_server.url.removeprefix("http://"))
    assert "Cannot reach the server" in text
    assert backend.records("k") == kept and len(kept) == len(ids)  # nothing lost
    backend.close()


@pytest.fixture(scope="module")
def proxy(llama_url):
    with FaultProxy(llama_url) as p:
        p.path = "/completion"
        yield p


@pytest.mark.parametrize("fault, says", [
    ("500", "answered /completion with 500: CUDA out of memory (simulated)"),
    ("json", "sent something that is not JSON for /completion"),
    ("truncated", "closed the connection mid-answer"),
    ("drop", "closed the connection mid-answer"),
    ("stall", "did not finish its answer to /completion within 3 s (read_timeout)"),
])
def test_bad_answers_give_one_sentence_and_the_session_goes_on(proxy, fault, says):
    backend = open_remote(proxy.url, key=SECRET,
                          timeouts=Timeouts(connect=2, read=3, retries=1, backoff=0.05))
    ids = tuple(backend.encode("The cat sat"))
    backend.sync("k", ids)
    before = backend.records("k")
    proxy.fault, proxy.stall_s = fault, 8.0
    try:
        with pytest.raises(RemoteError) as err:
            backend.sync("k", ids + (before[-1].top[0].token_id,))
    finally:
        proxy.fault = None
    text = one_sentence(err.value, proxy.url.removeprefix("http://"))
    assert says in text
    assert backend.records("k") == before  # the failed append changed nothing
    after = backend.sync("k", ids + (before[-1].top[0].token_id,))  # and it works again
    assert len(after) == len(ids) + 1
    assert proxy.seen_auth and all(a == f"Bearer {SECRET}" for a in proxy.seen_auth)
    backend.close()


def test_missing_fields_and_foreign_token_ids_give_one_sentence(llama_url):
    backend = open_remote(llama_url)
    with pytest.raises(BackendError) as err:
        backend.sync("k", (5, 99999))
    one_sentence(err.value, llama_url.removeprefix("http://"))
    backend.close()


@pytest.mark.parametrize("url, says", [
    ("ftp://127.0.0.1:1/", "must start with http:// or https://"),
    ("file:///etc/passwd", "must start with http:// or https://"),
    (f"http://user:{SECRET}@127.0.0.1:1/", "not in the server URL"),
])
def test_only_http_urls_and_no_credentials_in_them(url, says):
    with pytest.raises(ModelLoadError) as err:
        check_url(url)
    assert says in str(err.value) and SECRET not in str(err.value)


def test_no_server_there_is_one_sentence():
    with pytest.raises(RemoteError) as err:
        open_remote("http://127.0.0.1:9/", key=SECRET, timeouts=Timeouts(connect=1, retries=0))
    assert one_sentence(err.value, "127.0.0.1:9").startswith("Cannot reach the server at 127.0.0.1:9")
