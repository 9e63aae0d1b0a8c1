"""On vLLM a constrained `trace --server` fills `valid` from the constraint compiled here
for the server model's tokenizer and walked over the server's token ids
(explorer.core.trace_constraint.server_valids). Checked against the local trace, whose
`valid` comes from the sampler's own mask at each step, on the embedded model (a local
folder, so its tokenizer loads offline); a model whose tokenizer is not on this machine,
or whose ids disagree with the server's, leaves `valid` null."""

from __future__ import annotations

import json
from types import SimpleNamespace

from app_fixtures import requires_model

from explorer import cli
from explorer.config import EMBEDDED_MODEL_DIR
from explorer.core.trace_constraint import server_valids
from explorer.sampling.constraint import ConstraintSpec

pytestmark = requires_model


def fake_server(encode, name=str(EMBEDDED_MODEL_DIR), vocab_size=None):
    from transformers import AutoConfig

    vocab = vocab_size or AutoConfig.from_pretrained(str(EMBEDDED_MODEL_DIR)).vocab_size
    return SimpleNamespace(info=SimpleNamespace(name=name, vocab_size=vocab), encode=encode)


def test_server_valids_equal_the_local_traces(tmp_path, capsys):
    from transformers import AutoTokenizer

    path = tmp_path / "t.jsonl"
    regex = r" (yes|no|maybe), because [a-z ]+\."
    code = cli.main(["trace", "--model", "embedded", "--prompt", "Is the sky blue? Answer:",
                     "--regex", regex, "--max-new-tokens", "6", "--top-logprobs", "20",
                     "--jsonl", str(path)])
    assert code == 0, capsys.readouterr().err
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    want = [{c["token_id"]: c["valid"] for c in line["top"]} for line in lines]
    assert any(not v for step in want for v in step.values())  # the mask forbade some
    tok = AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))
    server = fake_server(lambda text: tok(text)["input_ids"])
    completion = [line["token_id"] for line in lines]
    for line in lines:
        for c in line["top"]:
            del c["valid"]
    assert server_valids(server, ConstraintSpec("regex", regex), completion, lines) == want
    # Ids that disagree with the server's, or a tokenizer not on this machine: not known.
    other = fake_server(lambda text: [5] + tok(text)["input_ids"][1:][::-1])
    assert server_valids(other, ConstraintSpec("regex", regex), completion, lines) is None
    missing = fake_server(server.encode, name=str(tmp_path / "no-such-model"))
    assert server_valids(missing, ConstraintSpec("regex", regex), completion, lines) is None
