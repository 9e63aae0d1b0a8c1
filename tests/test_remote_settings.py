"""[server] in config.toml and --server on the command line (no server needed)."""

from pathlib import Path

import pytest

from explorer.cli import parse_args, settings_from_args
from explorer.config import ConfigError, ServerSettings, load_settings
from explorer.remote.client import api_key, check_url


def test_server_section_and_flags(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[server]\nurl = "http://127.0.0.1:8000"\nread_timeout = 30\nretries = 0\n')
    s = load_settings(f)
    assert s.server == ServerSettings(url="http://127.0.0.1:8000", read_timeout=30.0, retries=0)
    args = parse_args(["--config", str(f), "--server", "https://box:9000/v1", "--model", "m"])
    s = settings_from_args(args)
    assert (s.server.url, s.server.model) == ("https://box:9000/v1", "m")
    assert check_url(s.server.url) == ("https://box:9000", "box:9000")


def test_local_runs_are_untouched_by_the_server_section():
    s = settings_from_args(parse_args(["--model", "embedded"]))
    assert s.server.url == "" and s.server.model == "" and s.model.name == "embedded"


@pytest.mark.parametrize("text, words", [
    ("[server]\nurl = 8000\n", "server.url should be a string"),
    ("[server]\nread_timeout = -1\n", "server.read_timeout must be a number of seconds above 0"),
    ("[server]\napi_key = 'x'\n", "unknown key server.api_key"),
])
def test_bad_server_settings_are_one_sentence(tmp_path: Path, text, words):
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=words):
        load_settings(f)


def test_the_api_key_comes_from_the_environment_only():
    assert api_key({"TOKEN_EXPLORER_API_KEY": " k1 ", "OPENAI_API_KEY": "k2"}) == "k1"
    assert api_key({"OPENAI_API_KEY": "k2"}) == "k2"
    assert api_key({}) is None
