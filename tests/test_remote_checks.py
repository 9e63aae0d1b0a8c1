"""A server's answer read as data, and secrets kept out of every sentence: pure functions
over plain values (the fault suite against real servers is tests/test_remote_fault_modes.py)."""

from __future__ import annotations

import math

import pytest

from explorer.backend import BackendError, ModelLoadError
from explorer.backend.redact import redact
from explorer.remote import RemoteError
from explorer.remote.client import check_token, check_url, logprob, whole

SECRET = "sk-test-4f1c9e0d-never-show-me"
ODD_SECRET = "Zq8#plain-words-key"  # no key shape: hidden only because it is the key


def one_sentence(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text.endswith(".") and "127.0.0.1:1" in text, text
    return text


@pytest.mark.parametrize("value", [True, False, "5", 5.0, None, [1]])
def test_a_token_id_is_a_json_integer_not_a_bool_or_a_string(value):
    with pytest.raises(RemoteError) as err:
        check_token(value, 100, "127.0.0.1:1")
    assert "not a whole number" in one_sentence(err.value)


def test_a_token_id_inside_the_vocabulary_passes():
    assert check_token(99, 100, "h") == 99
    with pytest.raises(RemoteError):
        check_token(100, 100, "h")


@pytest.mark.parametrize("value", ["abc", "3", True, 2.0, None, 0])
def test_a_rank_is_a_whole_number_of_at_least_one(value):
    with pytest.raises(RemoteError) as err:
        whole(value, "127.0.0.1:1", "a rank", least=1)
    one_sentence(err.value)


@pytest.mark.parametrize("value, says", [
    ("-0.5", "not a number"),  # a string, even one that reads as a number
    (True, "not a number"),
    (None, "not a number"),
    (math.nan, "not a number"),
    (math.inf, "above 0"),
    (5.0, "above 0"),
    (0.001, "above 0"),
])
def test_a_log_prob_is_a_number_at_most_zero(value, says):
    with pytest.raises(RemoteError) as err:
        logprob(value, "127.0.0.1:1")
    assert says in one_sentence(err.value)


def test_log_probs_that_are_probabilities_pass():
    assert logprob(-1.25, "h") == -1.25
    assert logprob(-math.inf, "h") == -math.inf  # probability 0
    assert logprob(0, "h") == 0.0
    assert logprob(3e-7, "h") == 0.0  # float32 rounding just above 0 is a probability of 1
    assert logprob(-9999.0, "h") == -9999.0  # vLLM's mark for a masked token


def test_every_backend_error_hides_the_key_bearer_and_key_shapes(monkeypatch):
    monkeypatch.setenv("TOKEN_EXPLORER_API_KEY", ODD_SECRET)
    said = f"answered /v1/completions with 500: invalid key: Bearer {SECRET}; also {ODD_SECRET}."
    for cls in (BackendError, RemoteError, ModelLoadError):
        err = cls(said)
        for text in (str(err), repr(err), str(err.args)):
            assert SECRET not in text and ODD_SECRET not in text, text
    assert redact(f"a {SECRET[:20]}… cut short") == "a (key hidden)… cut short"
    once = redact(said)
    assert redact(once) == once == (  # as often as a sentence passes through it
        "answered /v1/completions with 500: invalid key: Bearer (key hidden); also (key hidden).")
    assert redact("the token_ids field; logprob_token_ids; gpu-box:8000") == \
        "the token_ids field; logprob_token_ids; gpu-box:8000"


@pytest.mark.parametrize("url", [SECRET, f"  {SECRET} ", "hf_" + "a1B2c3D4e5F6g7H8i9", "A" * 12 + "b9" * 10])
def test_a_key_given_as_the_server_url_is_not_echoed(url):
    with pytest.raises(ModelLoadError) as err:
        check_url(url)
    text = str(err.value)
    assert url.strip() not in text and "looks like an API key" in text
    assert "\n" not in text and text.endswith(".")


def test_a_key_that_is_the_environment_key_is_not_echoed_as_a_url(monkeypatch):
    monkeypatch.setenv("TOKEN_EXPLORER_API_KEY", "plainkey")
    with pytest.raises(ModelLoadError) as err:
        check_url("plainkey")
    assert "plainkey" not in str(err.value)


def test_an_ordinary_bad_url_is_still_named():
    with pytest.raises(ModelLoadError) as err:
        check_url("gpu-box:8000")
    assert "gpu-box" in str(err.value)
