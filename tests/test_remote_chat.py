"""Chat prompts on real servers: the server renders the served model's own chat template.
Its ids equal the local engine's `chat_ids` for the same messages, `trace --server --chat`
at temperature 0 equals the local `trace --chat`, the app opens a chat prompt on a server,
and a model without a template (or messages the server refuses) is one sentence."""

from __future__ import annotations

import json
import subprocess

import pytest
from app_fixtures import SIZE, RecordingApp, embedded_engine, settle
from app_fixtures import app_settings as settings_for
from servers import CACHE, VLLM_PYTHON, llama_server, missing

from explorer.backend import ChatTemplateError
from explorer.config import PromptSettings
from explorer.core.trace_command import main as trace_main
from explorer.remote import Timeouts, open_remote

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there <|im_end|> x"}],
    [{"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": "Once upon a time"},
     {"role": "user", "content": "Go on, über-kurz ✓"}],
]


def remote(url: str):
    return open_remote(url, tokens_to_show=20, timeouts=Timeouts(connect=2, read=20, retries=0))


@pytest.mark.parametrize("server", ["vllm_url", "llama_url"])
def test_the_servers_chat_ids_equal_the_local_engines(request, server):
    backend = remote(request.getfixturevalue(server))
    try:
        for messages in CONVERSATIONS:
            assert backend.chat_ids(messages) == embedded_engine().chat_ids(messages), messages
    finally:
        backend.close()


def trace_lines(tmp_path, name, *flags):
    out = tmp_path / f"{name}.jsonl"
    code = trace_main(["--prompt", "What is the capital of France?", "--chat", "--system", "Be brief.",
                       "--max-new-tokens", "10", "--top-logprobs", "5", "--jsonl", str(out), *flags])
    assert code == 0
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("server", ["vllm_url", "llama_url"])
def test_trace_chat_on_a_server_equals_the_local_trace_chat(request, tmp_path, capsys, server):
    url = request.getfixturevalue(server)
    local = trace_lines(tmp_path, "local", "--model", "embedded")
    local_report = capsys.readouterr().out
    lines = trace_lines(tmp_path, "remote", "--server", url)
    report = capsys.readouterr().out
    assert [x["token_id"] for x in lines] == [x["token_id"] for x in local]
    assert [x["position"] for x in lines] == [x["position"] for x in local]  # same prompt length
    for got, want in zip(lines, local):
        assert abs(got["logprob"] - want["logprob"]) < 1e-4 and got["rank"] == want["rank"]

    def prompt_line(text):
        return next(line for line in text.splitlines() if line.startswith("prompt ids"))

    assert prompt_line(report) == prompt_line(local_report)
    assert "chat system 'Be brief.'" in report and "<|im_start|>assistant" in report


def test_vllm_refusing_the_messages_is_one_sentence(vllm_url):
    backend = remote(vllm_url)
    try:
        with pytest.raises(ChatTemplateError) as caught:
            backend.chat_ids([])  # vLLM renders no empty conversation
    finally:
        backend.close()
    text = str(caught.value)
    assert text.startswith("The server at 127.0.0.1:") and "could not render the chat template" in text
    assert "empty conversation" in text and text.count(".") >= 1 and "\n" not in text


# -- a model without a chat template ---------------------------------------------------------
@pytest.fixture(scope="module")
def gguf_without_template(embedded_gguf):
    """The embedded GGUF with its tokenizer.chat_template removed (llama-server then falls
    back to a built-in ChatML, which the backend must not pass off as the model's)."""
    out = CACHE / "gguf" / f"{embedded_gguf.stem}-no-template.gguf"
    if not out.exists():
        if not VLLM_PYTHON.exists():
            missing("the gguf package (in the vLLM environment) is not installed")
        tmp = out.with_suffix(".tmp")
        subprocess.run([str(VLLM_PYTHON), "-m", "gguf.scripts.gguf_new_metadata", str(embedded_gguf),
                        str(tmp), "--remove-metadata", "tokenizer.chat_template", "--force"],
                       check=True, capture_output=True, timeout=300)
        tmp.replace(out)
    return out


@pytest.fixture
def llama_without_template(tmp_path, gguf_without_template):
    server = llama_server(tmp_path, gguf_without_template)
    try:
        yield server.start().url
    finally:
        server.stop()


def test_a_served_model_without_a_template_is_one_sentence(llama_without_template, capsys):
    backend = remote(llama_without_template)
    try:
        with pytest.raises(ChatTemplateError, match="has no chat template on the server at 127.0.0.1:"):
            backend.chat_ids(CONVERSATIONS[0])
    finally:
        backend.close()
    # As the app: the plain prompt, and one warning sentence on stderr (issue 21).
    code = trace_main(["--prompt", "Hi", "--chat", "--server", llama_without_template, "--max-new-tokens", "1"])
    err = capsys.readouterr().err
    assert code == 0 and "has no chat template" in err and "plain prompt" in err and err.count("\n") == 1


async def test_the_app_opens_a_chat_prompt_on_a_server(vllm_url):
    settings = settings_for(prompts=PromptSettings(chat=True, system="Be brief."))
    app = RecordingApp(settings, engine=remote(vllm_url))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        prompt = app.main.book.current
        assert prompt.messages is not None and prompt.messages[0] == ("system", "Be brief.")
        assert prompt.ids == tuple(embedded_engine().chat_ids(prompt.chat))
        assert not [n for n, severity in app.notes if severity == "error"]


async def test_the_app_on_a_server_without_a_template_opens_the_plain_prompt(llama_without_template):
    app = RecordingApp(settings_for(prompts=PromptSettings(chat=True)), engine=remote(llama_without_template))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.main.book.current.messages is None and len(app.main.book.current.ids) > 1
        assert any("has no chat template" in text and "plain prompt" in text for text, _ in app.notes)
