"""`trace` with bad input: one sentence on stderr, exit code 2, nothing on stdout, no
traceback, and no file left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer import cli

REPO = Path(__file__).resolve().parent.parent


def refused(args: list[str], capsys) -> str:
    code = cli.main(["trace", *args])
    out = capsys.readouterr()
    assert code == 2 and out.out == ""
    assert out.err.count("\n") == 1 and out.err.startswith("token-explorer trace: "), out.err
    assert "Traceback" not in out.err
    return out.err


@pytest.mark.parametrize("args, fragment", [
    (["--prompt", ""], "The prompt is empty"),
    (["--prompt", "   "], "The prompt is empty"),
    (["-i", "no/such/file.txt"], "Input file no/such/file.txt does not exist."),
    (["--prompt", "The", "--max-new-tokens", "0"], "--max-new-tokens must be at least 1, not 0."),
    (["--prompt", "The", "--max-new-tokens", "-3"], "at least 1, not -3"),
    (["--prompt", "The", "--max-new-tokens", "many"], "invalid int value: 'many'"),
    (["--prompt", "The", "--top-logprobs", "0"], "--top-logprobs must be at least 1"),
    ([], "Give a prompt with --prompt TEXT or -i FILE."),
    (["--prompt", "a", "-i", "x.txt"], "not allowed with"),
])
def test_refused_before_any_model_work(args, fragment, capsys):
    assert fragment in refused(args, capsys)


def test_input_that_is_a_folder(tmp_path, capsys):
    assert "is a folder, not a file" in refused(["-i", str(tmp_path)], capsys)


def test_unwritable_jsonl_is_refused_and_nothing_is_written(tmp_path, capsys):
    missing = tmp_path / "no-folder" / "out.jsonl"
    err = refused(["--prompt", "The", "--jsonl", str(missing)], capsys)
    assert "does not exist" in err and not missing.parent.exists()
    err = refused(["--prompt", "The", "--jsonl", str(tmp_path)], capsys)
    assert "is a folder" in err
    assert list(tmp_path.iterdir()) == []


def test_unknown_model(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "out.jsonl"
    err = refused(["--prompt", "The", "--model", "no-such-org/no-such-model-xyz", "--jsonl", str(out)], capsys)
    assert "no-such-model-xyz" in err
    assert list(tmp_path.iterdir()) == []


def test_missing_model_folder(tmp_path, capsys):
    assert "does not exist" in refused(["--prompt", "The", "--model", str(tmp_path / "nope")], capsys)


def test_bad_config(tmp_path, capsys):
    bad = tmp_path / "config.toml"
    bad.write_text("[model]\nnmae = 'x'\n")
    assert "unknown key model.nmae" in refused(["--prompt", "The", "--config", str(bad)], capsys)


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    """The whole command as a user runs it: no traceback, no warnings, exit code 2."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "main.py", "trace", "--prompt", "The", "--model", "no-such-org/nothing",
         "--jsonl", str(tmp_path / "out.jsonl")],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no-such-org/nothing" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_subcommand_still_parses_as_the_app():
    args = cli.parse_args(["--model", "some/model", "--bf16"])
    assert args.model == "some/model" and args.bf16 and args.layer_prob is False
    assert "trace" in cli.SUBCOMMANDS
