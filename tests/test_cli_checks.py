"""Bad settings and inputs are refused before any model loads, by the app, trace and tree
alike: one sentence on stderr, exit code 2, no traceback. "No model load" is observed,
not timed: every way in to a model (open_backend where each command reaches it, and the
app's run) is replaced by a recorder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import cli

REPO = Path(__file__).resolve().parent.parent
COMMANDS = {"app": [], "trace": ["trace", "--prompt", "The"], "tree": ["tree", "--prompt", "The"]}


@pytest.fixture
def loads(monkeypatch):
    """The model loads attempted (each entry: who tried)."""
    import explorer.backend
    import explorer.core.trace_command
    import explorer.ui.startup
    from explorer.ui.app import TokenExplorerApp

    tried: list[str] = []
    for module in (explorer.backend, explorer.core.trace_command, explorer.ui.startup):
        monkeypatch.setattr(module, "open_backend",
                            lambda *a, _m=module.__name__, **k: tried.append(_m) or pytest.fail("model load"))
    monkeypatch.setattr(TokenExplorerApp, "run", lambda self, *a, **k: tried.append("app.run"))
    return tried


def refused(argv: list[str], capsys, loads) -> str:
    code = cli.main(argv)
    out = capsys.readouterr()
    assert (code, loads) == (2, []), out.err
    assert out.err.count("\n") == 1 and out.err.startswith("token-explorer"), out.err
    assert "Traceback" not in out.err and out.out == ""
    return out.err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("section, key, value", [
    ("display", "tokens_to_show", -5), ("display", "tokens_to_show", 0),
    ("display", "influence_heads", 0), ("model", "prefill_chunk", 0), ("model", "cache_size", -1),
])
def test_a_bad_count_in_config_is_refused_before_the_model_loads(tmp_path, capsys, loads, command,
                                                                  section, key, value):
    conf = tmp_path / "config.toml"
    conf.write_text(f"[{section}]\n{key} = {value}\n")
    err = refused([*COMMANDS[command], "--config", str(conf)], capsys, loads)
    allowed = {"tokens_to_show": "between 1 and 1000", "influence_heads": "between 1 and 4096"}
    assert f"{section}.{key} must be {allowed.get(key, 'at least 1')}, not {value}." in err


@pytest.mark.parametrize("command", ["app", "trace", "tree"])
def test_a_missing_input_file_is_refused_before_the_model_loads(tmp_path, capsys, loads, command):
    argv = {"app": [], "trace": ["trace"], "tree": ["tree"]}[command]
    err = refused([*argv, "-i", str(tmp_path / "nonexistent.txt")], capsys, loads)
    assert f"Input file {tmp_path / 'nonexistent.txt'} does not exist." in err
    err = refused([*argv, "-i", str(tmp_path)], capsys, loads)
    assert "is a folder, not a file" in err


@pytest.mark.parametrize("command", ["app", "trace", "tree"])
def test_an_empty_prompt_is_refused_before_the_model_loads(capsys, loads, command):
    argv = {"app": [], "trace": ["trace"], "tree": ["tree"]}[command]
    assert "The prompt is empty" in refused([*argv, "--prompt", "  "], capsys, loads)


def test_a_real_process_with_a_slow_model_exits_2_at_once(tmp_path):
    """The user's case: SmolLM2 (the default, a 30-60 s load) with tokens_to_show = -5.
    Nothing but the sentence on stderr: no loading bar, no traceback."""
    conf = tmp_path / "config.toml"
    conf.write_text('[model]\nname = "smollm2"\n[display]\ntokens_to_show = -5\n')
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    for argv in (["--config", str(conf)], ["tree", "-i", str(tmp_path / "nonexistent.txt")]):
        done = subprocess.run([sys.executable, "main.py", *argv], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


def test_app_takes_the_prompt_on_the_command_line():
    args = cli.parse_args(["--chat", "--system", "Be brief.", "--prompt", "What is the capital of France?"])
    assert args.prompt == "What is the capital of France?"
    settings = cli.settings_from_args(args)
    assert settings.prompts.chat and settings.prompts.system == "Be brief."
    with pytest.raises(SystemExit):  # one source of prompt, as in trace
        cli.parse_args(["--prompt", "a", "-i", "x.txt"])


@pytest.mark.parametrize("command", ["trace", "tree"])
def test_a_missing_model_advises_the_flag_the_user_typed(capsys, monkeypatch, command):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cli.main([command, "--prompt", "The", "--model", "does/not/exist"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'does/not/exist'" in err
    assert "give --model a local folder" in err and "model.name" not in err


def test_a_model_named_in_config_toml_is_advised_there(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    conf = tmp_path / "config.toml"
    conf.write_text('[model]\nname = "does/not/exist"\n')
    assert cli.main(["trace", "--prompt", "The", "--config", str(conf)]) == 2
    assert "set model.name in config.toml to a local folder" in capsys.readouterr().err


def test_tree_prints_no_loading_bar_when_redirected(tmp_path):
    """stderr redirected to a file: only our own lines, no transformers "Loading weights"."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run([sys.executable, "main.py", "tree", "--model", "tiny", "--prompt", "Once",
                           "--max-nodes", "3", "--json", str(tmp_path / "t.json")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [f"wrote {tmp_path / 't.json'}"]
