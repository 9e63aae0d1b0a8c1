"""Chat prompts on a server: the served model's own chat template, rendered by the server.

- vLLM: /tokenize takes `messages` (with `add_generation_prompt`) and returns the ids of the
  rendered template, as transformers' `apply_chat_template(..., tokenize=True)` does (no
  special tokens added beyond the template's own).
- llama-server: /apply-template renders the messages to text, then /tokenize reads that text
  with `parse_special` (so the template's markers become their special tokens) and adds no
  BOS of its own. A GGUF without a template gets llama.cpp's built-in ChatML silently; we
  read /props and refuse that fallback, as the local engine refuses a model without one.

Either way a refusal is one sentence (ChatTemplateError), never the plain prompt in disguise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from explorer.backend.sampling import ChatTemplateError
from explorer.remote.client import RemoteError, check_token, field

# llama.cpp's fallback when the GGUF has no template (CHATML_TEMPLATE_SRC, common/chat.cpp);
# /props reports this source then. `--chat-template chatml` reports the same text.
LLAMA_CHATML_FALLBACK = (
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\n' -}}\n"
    "{%- endif -%}"
)


def _plain(messages: Sequence[Mapping[str, str]]) -> list[dict]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def _refused(backend, exc: RemoteError) -> ChatTemplateError:
    """A server's 4xx answer as one sentence with what the server said."""
    said = str(exc).split(": ", 1)[-1].rstrip(".")
    return ChatTemplateError(f"The server at {backend.client.where} could not render the chat "
                             f"template of {backend.info.name} for these messages: {said}.")


def _checked(backend, tokens) -> list[int]:
    if not isinstance(tokens, list):
        raise ChatTemplateError(f"The server at {backend.client.where} sent chat template ids that are not a list.")
    ids = [check_token(t, backend.vocab_size, backend.client.where) for t in tokens]
    if not ids:
        raise ChatTemplateError(f"The chat template of {backend.info.name} gave no tokens.")
    return ids


def vllm_chat_ids(backend, messages: Sequence[Mapping[str, str]]) -> list[int]:
    body = {"model": backend.model, "messages": _plain(messages), "add_generation_prompt": True,
            "add_special_tokens": False}
    try:
        data = backend.client.post("/tokenize", body)
    except RemoteError as exc:
        if "chat template" in str(exc) and "does not define one" in str(exc):
            raise ChatTemplateError(f"{backend.info.name} has no chat template on the server at "
                                    f"{backend.client.where}, so the prompt cannot be wrapped as a chat.") from None
        if " answered /tokenize with 4" in str(exc):  # a 4xx: the request, not the server
            raise _refused(backend, exc) from None
        raise
    return _checked(backend, field(data, "tokens", where=backend.client.where, what="/tokenize"))


def llama_chat_ids(backend, messages: Sequence[Mapping[str, str]]) -> list[int]:
    props = backend.client.get("/props")
    template = props.get("chat_template") if isinstance(props, dict) else None
    if not template or template == LLAMA_CHATML_FALLBACK:
        raise ChatTemplateError(f"{backend.info.name} has no chat template on the server at "
                                f"{backend.client.where}, so the prompt cannot be wrapped as a chat "
                                "(llama-server would use its built-in ChatML instead).")
    try:
        data = backend.client.post("/apply-template", {"messages": _plain(messages)})
    except RemoteError as exc:
        if " answered /apply-template with 4" in str(exc):
            raise _refused(backend, exc) from None
        raise
    text = field(data, "prompt", where=backend.client.where, what="/apply-template")
    if not isinstance(text, str) or not text:
        raise ChatTemplateError(f"The chat template of {backend.info.name} gave no text on the server.")
    return _checked(backend, backend.encode_plain(text))  # parse_special, no BOS added
