"""One command line for the app, `trace` and `tree` (issue 21): `main.py --help` lists the
commands; tree takes --chat/--system and [prompts] chat, trace and tree take --prefix;
a model without a chat template gets the plain prompt and the same warning in the app
and trace; an over-long prompt is refused with the same sentence by all three.

Checked against the tokenizer's own apply_chat_template / encoding and a plain
transformers forward pass, never against the code under test."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from app_fixtures import SIZE, RecordingApp, requires_model, settle
from app_fixtures import app_settings as settings_for_test
from conftest import build_tokenizer, tiny_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR, ModelSettings, PromptSettings

REPO = Path(__file__).resolve().parent.parent
PROMPT = "Once upon a time"
QUESTION = "What is the capital of France?"
PREFIX = " there was a little"


@pytest.fixture(scope="module")
def reference():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))


@pytest.fixture(scope="module")
def no_template(tmp_path_factory) -> Path:
    """A tiny random Llama whose tokenizer has no chat template (max 256 positions)."""
    folder = tmp_path_factory.mktemp("no-template")
    tokenizer = build_tokenizer()
    assert not getattr(tokenizer, "chat_template", None)
    tiny_model("llama", len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def last_logprobs(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), -1)


# -- one parser ------------------------------------------------------------------------------

def test_help_lists_the_commands_and_each_has_its_own_help():
    env = dict(os.environ, HF_HUB_OFFLINE="1")

    def helped(*argv) -> str:
        done = subprocess.run([sys.executable, "main.py", *argv, "--help"], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        return done.stdout

    top = helped()
    commands = top[top.index("commands:"):]
    assert "trace" in commands and "tree" in commands
    assert "--layer_prob" in top and "--max-tokens" in top  # the app's own flags
    trace, tree = helped("trace"), helped("tree")
    assert "--max-new-tokens" in trace and "--max-nodes" not in trace
    assert "--max-nodes" in tree and "--max-new-tokens" not in tree
    for text in (top, trace, tree):  # the shared prompt and model flags, defined once
        for flag in ("--prompt", "--input", "--chat", "--system", "--prefix", "--model", "--dtype",
                     "--device"):
            assert flag in text, (flag, text[:80])


def test_chat_text_is_the_prompt_and_shared_flags_parse_alike():
    for command in ([], ["trace"], ["tree"]):
        args = cli.parse_args([*command, "--chat", QUESTION, "--system", "Be brief.", "--prefix", " Paris"])
        cli.prompt_from_args(args)
        assert (args.prompt, args.chat, args.system, args.prefix) == (QUESTION, True, "Be brief.", " Paris")
        settings = cli.settings_from_args(args)
        assert settings.prompts == replace(settings.prompts, chat=True, system="Be brief.", prefix=" Paris")


@pytest.mark.parametrize("argv, words", [
    (["tree", "--chat", "Hi", "--prompt", "Ho"], "Give the prompt once"),
    (["trace", "--prompt", "Hi", "--prefix", ""], "The --prefix text is empty"),
    (["tree", "--bogus"], "Unrecognized arguments: --bogus (see tree --help)."),
])
def test_bad_command_lines_are_one_sentence(capsys, argv, words):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and err.startswith(f"token-explorer {argv[0]}: ")


# -- tree --chat / [prompts] chat ---------------------------------------------------------------

@requires_model
@pytest.mark.parametrize("how", ["--chat TEXT", "--chat --prompt TEXT", "config.toml"])
def test_tree_grows_after_the_chat_template(tmp_path, capsys, reference, how):
    _, tok = reference
    expected = tok.apply_chat_template([{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": QUESTION}],
                                       add_generation_prompt=True, tokenize=True, return_dict=False)
    argv = {"--chat TEXT": ["--chat", QUESTION, "--system", "Be brief."],
            "--chat --prompt TEXT": ["--chat", "--prompt", QUESTION, "--system", "Be brief."],
            "config.toml": ["--prompt", QUESTION]}[how]
    if how == "config.toml":
        conf = tmp_path / "config.toml"
        conf.write_text('[prompts]\nchat = true\nsystem = "Be brief."\n')
        argv += ["--config", str(conf)]
    out = tmp_path / "t.json"
    code = cli.main(["tree", "--model", "embedded", *argv, "--max-nodes", "4", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["prompt_ids"] == list(expected)


# -- --prefix ------------------------------------------------------------------------------

@requires_model
def test_trace_prefix_is_forced_and_generation_continues_after_it(tmp_path, capsys, reference):
    model, tok = reference
    prompt = tok(PROMPT)["input_ids"]
    forced = tok(PREFIX, add_special_tokens=False)["input_ids"]
    path = tmp_path / "t.jsonl"
    code = cli.main(["trace", "--model", "embedded", "--prompt", PROMPT, "--prefix", PREFIX,
                     "--max-new-tokens", "2", "--jsonl", str(path)])
    out = capsys.readouterr()
    assert code == 0, out.err
    ids = prompt + forced
    assert f"prompt ids  {json.dumps(ids)} ({len(ids)} tokens)" in out.out
    assert f"forced ids  {json.dumps(forced)} ({len(forced)} tokens at the end of the prompt, origin forced" in out.out
    first = json.loads(path.read_text().splitlines()[0])
    expected = last_logprobs(model, ids)  # one plain forward pass of prompt + forced text
    assert first["position"] == len(ids) and first["token_id"] == int(expected.argmax())
    assert first["logprob"] == pytest.approx(float(expected.max()), abs=1e-4)


@requires_model
def test_tree_prefix_grows_from_after_the_forced_text(tmp_path, capsys, reference):
    model, tok = reference
    ids = tok(PROMPT)["input_ids"] + tok(PREFIX, add_special_tokens=False)["input_ids"]
    out = tmp_path / "t.json"
    code = cli.main(["tree", "--model", "embedded", "--prompt", PROMPT, "--prefix", PREFIX,
                     "--max-nodes", "4", "--max-depth", "1", "--json", str(out)])
    assert code == 0, capsys.readouterr().err
    data = json.loads(out.read_text())
    assert data["prompt_ids"] == ids
    expected = last_logprobs(model, ids)
    assert data["children"], data
    for child in data["children"]:  # the first level is the distribution after the forced text
        assert math.log(child["p"]) == pytest.approx(float(expected[child["token_id"]]), abs=1e-4)
    assert data["children"][0]["token_id"] == int(expected.argmax())


@requires_model
async def test_the_app_opens_with_the_prefix_forced(tmp_path, reference):
    _, tok = reference
    prompt = tok(PROMPT)["input_ids"]
    forced = tok(PREFIX, add_special_tokens=False)["input_ids"]
    settings = settings_for_test(tmp_path)
    settings = replace(settings, prompts=replace(settings.prompts, prefix=PREFIX))
    app = RecordingApp(settings, prompt_text=PROMPT)  # its own start-up: the engine loads
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(prompt + forced)
        assert app.main.book.current.origins == ("prompt",) * len(prompt) + ("forced",) * len(forced)


# -- one rule for a model without a chat template -----------------------------------------------

async def test_no_chat_template_is_the_plain_prompt_and_one_warning_in_trace_and_the_app(
        tmp_path, capsys, no_template):
    tok = build_tokenizer()
    plain = tok(QUESTION)["input_ids"]
    code = cli.main(["trace", "--model", str(no_template), "--chat", "--prompt", QUESTION, "--max-new-tokens", "1"])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"prompt ids  {json.dumps(plain)}" in out.out and "chat" not in out.out.splitlines()[1]
    assert out.err.count("\n") == 1 and out.err.startswith("warning: ")
    sentence = out.err[len("warning: "):].strip()
    assert "has no chat template" in sentence and sentence.endswith("opened the plain prompt instead.")
    settings = settings_for_test(tmp_path, model=ModelSettings(name=str(no_template)),
                                 prompts=PromptSettings(chat=True))
    app = RecordingApp(settings, prompt_text=QUESTION)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.ids == tuple(plain) and app.main.book.current.messages is None
        assert sentence in [text for text, _ in app.notes]


# -- one context-limit check -----------------------------------------------------------------

async def test_an_over_long_prompt_is_refused_with_one_sentence_in_app_trace_and_tree(
        tmp_path, capsys, no_template):
    text = "The quick brown fox jumps over the lazy dog. " * 40
    n = len(build_tokenizer()(text)["input_ids"])
    assert n > 256  # the tiny Llama's max_position_embeddings
    sentence = f"The prompt has {n} tokens, more than the 256 that {no_template} supports."
    for command in ("trace", "tree"):
        assert cli.main([command, "--model", str(no_template), "--prompt", text]) == 2
        out = capsys.readouterr()
        assert out.err == f"token-explorer {command}: {sentence}\n" and out.out == ""
    settings = settings_for_test(tmp_path, model=ModelSettings(name=str(no_template)))
    app = RecordingApp(settings, prompt_text=text)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        errors = [t for t, severity in app.notes if severity == "error"]
        assert errors == [f"{sentence} Opened default.txt instead."]


@requires_model
def test_an_over_long_prompt_is_one_line_on_stderr_in_a_real_process():
    """As a user runs it: the sentence alone, without transformers' own "Token indices
    sequence length is longer than..." warning (the tests' environment hides that one)."""
    env = {k: v for k, v in os.environ.items() if k != "TRANSFORMERS_VERBOSITY"}
    env["HF_HUB_OFFLINE"] = "1"
    text = "The quick brown fox. " * 300
    from transformers import AutoTokenizer

    n = len(AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))(text)["input_ids"])
    done = subprocess.run([sys.executable, "main.py", "trace", "--model", "tiny", "--prompt", text],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"token-explorer trace: The prompt has {n} tokens, more than the 1024 that tiny supports.\n"
