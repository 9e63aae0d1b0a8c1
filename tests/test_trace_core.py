"""The headless core on tiny random models (no embedded model needed): generation stops at
end-of-sequence as `generate` does, one forward pass per step, the id check finds the
mismatches it was built for, and files are written whole or not at all."""

from __future__ import annotations

import json

import pytest
import torch

from explorer.core.export import ExportError, check_writable, record_lines, write_atomic, write_jsonl
from explorer.core.id_check import check_ids
from explorer.core.trace import greedy, trace
from explorer.engine import Engine


def greedy_path(model, ids, n):
    # An explicit mask: generate would otherwise mask every id equal to pad_token_id.
    out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                         do_sample=False, max_new_tokens=n, eos_token_id=None, pad_token_id=1)
    return out[0, len(ids):].tolist()


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_trace_stops_after_the_eos_token_like_generate(make_engine, family):
    first = make_engine(family)
    model, prompt = first.model, first.encode("The quick brown")
    path = greedy_path(model, prompt, 12)
    # Make the 4th greedy token the model's end-of-sequence: both must stop right after it.
    eos = path[3]
    model.generation_config.eos_token_id = eos
    engine = Engine.from_pretrained_objects(model, first.tokenizer, influence=False)
    assert engine.eos_ids == frozenset({eos})
    result = trace(engine, prompt, 12)
    expected = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                              do_sample=False, max_new_tokens=12, pad_token_id=1)[0, len(prompt):].tolist()
    assert list(result.completion_ids) == expected == path[: path.index(eos) + 1]
    assert result.stop == "eos" and result.prompt_ids == tuple(prompt)


def test_trace_without_eos_runs_to_max_new_tokens(make_engine):
    engine = make_engine("llama", influence=False)
    prompt = engine.encode("Attention heads")
    result = trace(engine, prompt, 9)
    assert result.stop == "length" or result.completion_ids[-1] in engine.eos_ids
    assert len(result.completion_ids) <= 9
    steps = result.steps
    assert [r.token_id for r, _ in steps] == list(result.completion_ids)
    for record, before in steps:  # greedy: the chosen token is the top of its distribution
        assert record.token_id == before.top[0].token_id and record.rank == 1


def test_one_forward_pass_per_step_and_no_attention_rows(make_engine):
    engine = make_engine("llama", influence=False)
    calls = []
    handle = engine.model.register_forward_pre_hook(lambda mod, args, kw: calls.append(kw), with_kwargs=True)
    try:
        prompt = engine.encode("The quick brown fox")
        result = trace(engine, prompt, 6)
    finally:
        handle.remove()
    n = len(result.completion_ids)
    # The prompt (its last position apart), then exactly one pass per new token.
    fed = [kw["input_ids"].shape[1] for kw in calls]
    assert sum(fed) == len(prompt) + n and fed[-n:] == [1] * n
    assert not engine.capabilities.influence
    assert all(not kw.get("output_attentions") for kw in calls)


def test_choose_is_pluggable(make_engine):
    engine = make_engine("llama", influence=False)
    prompt = engine.encode("The")

    def second_best(ids, last):
        return last.top[1].token_id

    result = trace(engine, prompt, 4, choose=second_best)
    for record, before in result.steps:
        assert record.token_id == before.top[1].token_id and record.rank == 2
    assert greedy((), result.records[-1]) == result.records[-1].top[0].token_id


def test_id_check_bos_added_twice(make_engine):
    engine = make_engine("llama")
    prompt = engine.encode("The quick")  # the test tokenizer adds <bos> once
    bos = engine.tokenizer.bos_token_id
    assert prompt[0] == bos and prompt[1] != bos
    # A prompt text that already spells the BOS (as a decoded or templated prompt does).
    check = check_ids(engine, "<bos>The quick", prompt, engine.encode(" brown")[1:])
    assert [(m.start, m.end, m.generated, m.retokenised) for m in check.mismatches] == [(0, 0, (), (bos,))]


def test_id_check_merge_across_the_boundary(make_engine):
    engine = make_engine("llama")
    prompt = engine.encode("Tok")  # <bos> T ok
    completion = engine.encode("en")[1:]  # en
    check = check_ids(engine, "Tok", prompt, completion)
    token = engine.encode("Token")[1]  # "Token" is one token
    assert [(m.start, m.end, m.generated, m.retokenised) for m in check.mismatches] == [
        (1, 4, tuple(prompt[1:] + completion), (token,))]


def test_id_check_ok_when_ids_are_canonical(make_engine):
    engine = make_engine("llama")
    prompt = engine.encode("The quick")
    check = check_ids(engine, "The quick", prompt, engine.encode(" brown fox")[1:])
    assert check.ok and check.retokenised == check.ids


def test_record_lines_shape(make_engine):
    engine = make_engine("llama", tokens_to_show=4)
    records = engine.sync("k", engine.encode("The quick brown"))
    lines = record_lines(records, engine.decode)
    assert [line["position"] for line in lines] == list(range(len(records)))
    assert lines[0]["logprob"] is None and lines[0]["top"] == [] and lines[0]["rank"] is None
    for i in range(1, len(lines)):
        assert lines[i]["logprob"] == records[i].logprob
        assert [c["token_id"] for c in lines[i]["top"]] == [c.token_id for c in records[i - 1].top]
    assert [line["step"] for line in record_lines(records, engine.decode, start=2, first_step=1)] == \
        list(range(1, len(records) - 1))


def test_write_atomic_replaces_whole_or_leaves_the_old_file(tmp_path):
    target = tmp_path / "out.jsonl"
    write_jsonl(target, [{"a": 1}, {"b": "é\n"}])
    assert [json.loads(x) for x in target.read_text(encoding="utf-8").splitlines()] == [{"a": 1}, {"b": "é\n"}]
    # A rename onto a folder fails: the error is one sentence and no temporary file is left.
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "inside").write_text("keep")
    with pytest.raises(ExportError, match=r"^Could not write .*taken: .*\.$"):
        write_atomic(folder, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "taken"]
    assert (folder / "inside").read_text() == "keep"


def test_check_writable_refuses_before_any_work(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        check_writable(tmp_path / "missing" / "out.jsonl")
    with pytest.raises(ExportError, match="is a folder"):
        check_writable(tmp_path)
    check_writable(tmp_path / "fine.jsonl")
    assert not (tmp_path / "fine.jsonl").exists()


def test_trace_runs_on_any_backend_of_the_protocol():
    """A second implementation (a table, no influence, no eos): the core asks the protocol only."""
    import numpy as np
    from fake_backend import TableBackend, logits_after

    from explorer.backend import PromptTooLongError

    backend = TableBackend()
    prompt = backend.encode(" the cat")
    result = trace(backend, prompt, 10)
    ids = list(prompt)
    for _ in range(10):  # greedy by the table's own rule, ties to the lower id
        ids.append(int(np.argmax(logits_after(ids))))
    assert list(result.ids) == ids and result.stop == "length"
    assert backend.sync_calls == 1 + 10
    with pytest.raises(PromptTooLongError, match="at most 61 new tokens fit, not 62"):
        trace(backend, prompt, 62)


def test_core_imports_no_engine_and_no_textual():
    import ast
    import subprocess
    import sys
    from pathlib import Path

    import explorer.core

    for path in sorted(Path(explorer.core.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("explorer.engine", "explorer.ui", "torch",
                                            "transformers", "textual")), (path.name, name)
    code = ("import sys, explorer.core.trace_command; "
            "print(sorted(m for m in ('torch', 'transformers', 'textual') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
