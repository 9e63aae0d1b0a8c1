"""Attribution stops inside a pass when cancelled, reports progress within a pass, and a
cancelled integrated-gradients request resumes from its finished batches."""

from __future__ import annotations

import numpy as np
import pytest

from explorer.backend import Cancelled
from test_attribution import prepared


def layer_counter(engine):
    """Counts, with the test's own hooks, the forwards each layer block of the model ran."""
    layers = engine.model.model.layers
    counts = [0] * len(layers)
    for i, layer in enumerate(layers):
        layer.register_forward_hook(lambda m, a, o, i=i: counts.__setitem__(i, counts[i] + 1))
    return counts


def test_cancel_stops_inside_a_pass_and_progress_moves_within_one(make_engine, tokenizer):
    engine, ids, top = prepared(make_engine, tokenizer, "llama")
    counts = layer_counter(engine)
    assert len(counts) >= 2
    # Cancelled as soon as the first block of the first pass has run: the last block of
    # that pass must never run.
    with pytest.raises(Cancelled):
        engine.attribution("p", top[0].token_id, "saliency", cancelled=lambda: counts[0] >= 1)
    assert counts[0] == 1 and counts[-1] == 0
    # One saliency request is one forward and one backward pass: the bar still moves
    # several times within it (once per layer block), ending at its total.
    seen = []
    engine.attribution("p", top[1].token_id, "saliency",
                       progress=lambda done, total: seen.append((done, total)))
    assert counts[0] == 2  # one pass (the attribution's); the bar moved inside it
    assert len({done for done, _ in seen}) >= 3 and seen[-1][0] == seen[-1][1]


def test_a_cancelled_integrated_gradients_resumes_where_it_stopped(make_engine, tokenizer):
    steps = 12
    whole_engine, ids, top = prepared(make_engine, tokenizer, "llama")
    target = top[0].token_id
    # Batches of 4 points: the 12 points are 3 gradient batches after the scan.
    whole_engine._attributor.batch_tokens = 4 * len(ids)
    whole_counts = layer_counter(whole_engine)
    whole = whole_engine.attribution("p", target, "integrated_gradients", n_steps=steps)
    passes_whole = whole_counts[0]

    engine, _, _ = prepared(make_engine, tokenizer, "llama")
    engine._attributor.batch_tokens = 4 * len(ids)
    counts = layer_counter(engine)
    stop_at = passes_whole  # stopped inside the last pass: the last gradient batch
    with pytest.raises(Cancelled):
        engine.attribution("p", target, "integrated_gradients", n_steps=steps,
                           cancelled=lambda: counts[0] >= stop_at)
    before = counts[0]
    again = engine.attribution("p", target, "integrated_gradients", n_steps=steps)
    # Only the batch it was in is run again (one pass), not the ends, scan and 2 batches.
    assert counts[0] - before == 1
    np.testing.assert_allclose(again.values, whole.values, rtol=1e-5, atol=1e-7)
    assert again.log_p == whole.log_p and again.log_p_baseline == whole.log_p_baseline



_FIRST_REPORT = """
import sys
from conftest import build_tokenizer, tiny_model
from explorer.engine import Engine
tok = build_tokenizer()
engine = Engine.from_pretrained_objects(tiny_model("llama", len(tok)), tok, name="tiny")
engine.sync("p", engine.encode("The quick brown fox"))
first = []
def progress(done, total):
    if not first:
        first.append((done, total, "captum.attr" in sys.modules))
engine.attribution("p", 5, "integrated_gradients", n_steps=8, progress=progress)
print(first[0])
"""


def test_the_bar_has_a_length_before_the_slow_start():
    """The first progress report comes before captum is imported and the baseline built
    (they took 5-14 s on a loaded machine with nothing on screen but "computing"), with a
    length over one, which is what lets the app show its bar (a one-token step's report has
    a length of one). A fresh process: captum is not imported yet."""
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", _FIRST_REPORT], cwd=Path(__file__).parent,
                         capture_output=True, text=True, timeout=300, check=True).stdout
    done, total, captum_loaded = eval(out.strip().splitlines()[-1])
    assert done == 0 and total > 1 and not captum_loaded
