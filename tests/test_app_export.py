"""`x` writes, beside the saved prompt, a JSONL with one line per prompt position, checked
against one plain full forward pass of the embedded model (transformers alone)."""

from __future__ import annotations

import json

import pandas
import pytest
import torch
from app_fixtures import SIZE, make_app, requires_model, settle

from explorer.config import EMBEDDED_MODEL_DIR

pytestmark = requires_model

TOL = 1e-4


async def test_x_writes_one_jsonl_line_per_position(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        # "x" right behind two appends: the save waits for their records.
        await pilot.press("down", "right", "right", "x")
        await settle(app, pilot)
        saved_ids = app.main.book.current.ids
    (txt,) = (tmp_path / "saved").glob("*.txt")
    jsonl = txt.with_suffix(".jsonl")
    assert tuple(json.loads(txt.with_suffix(".json").read_text())["token_ids"]) == saved_ids
    frame = pandas.read_json(jsonl, lines=True)
    assert frame["token_id"].tolist() == list(saved_ids)
    assert frame["step"].tolist() == frame["position"].tolist() == list(range(len(saved_ids)))
    assert any(f"{jsonl.name}" in note for note, _ in app.notes)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([saved_ids])).logits[0].double(), -1)
    lines = [json.loads(x) for x in jsonl.read_text(encoding="utf-8").splitlines()]
    first = lines[0]
    assert first["logprob"] is None and first["rank"] is None and first["entropy"] is None
    assert first["top"] == []
    for i, line in enumerate(lines[1:], 1):
        row = logp[i - 1]
        assert line["token"] == tokenizer.decode([saved_ids[i]])
        assert line["logprob"] == pytest.approx(float(row[saved_ids[i]]), abs=TOL)
        assert line["rank"] == int((row > row[saved_ids[i]]).sum()) + 1
        assert line["entropy"] == pytest.approx(float(-(row.exp() * row).sum()), abs=TOL)
        top = torch.topk(row, len(line["top"]))
        assert len(line["top"]) == 30
        assert [c["token_id"] for c in line["top"]] == top.indices.tolist()
        for c, value in zip(line["top"], top.values.tolist()):
            assert c["logprob"] == pytest.approx(value, abs=TOL)
