"""Smoke test on the embedded default model (explorer/default_model), loaded offline."""

import numpy as np
import pytest
import torch

from explorer.config import EMBEDDED_MODEL_DIR, ModelSettings

pytestmark = pytest.mark.skipif(not (EMBEDDED_MODEL_DIR / "config.json").exists(),
                                reason="embedded model not present")


def test_embedded_model_loads_and_matches_a_full_forward():
    from explorer.engine import Engine

    messages = []
    engine = Engine.load(ModelSettings(name="embedded", device="cpu"), layer_prob=True,
                         progress=messages.append)
    assert messages and engine.info.name == "embedded" and engine.info.device == "cpu"
    ids = engine.encode("Once upon a time, a small model")
    records = engine.sync("k", ids)
    assert [r.token_id for r in records] == ids and records[0].logprob is None
    with torch.no_grad():
        logits = engine.model(torch.tensor([ids])).logits[0].float()
    logp = torch.log_softmax(logits, -1)
    for i in range(1, len(ids)):
        assert abs(records[i].logprob - float(logp[i - 1, ids[i]])) < 1e-4
    top = [c.token_id for c in records[-1].top]
    assert top == torch.topk(logp[-1], len(top)).indices.tolist()
    lens = engine.layer_probs("k", top)
    assert lens.shape == (engine.info.n_layers + 1, len(top))
    assert np.allclose(lens[-1], logp[-1, top].exp().numpy(), atol=1e-5)
    assert engine.token_text(top[0])  # every token has visible text
