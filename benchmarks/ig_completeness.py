"""How close integrated gradients come to completeness (sum_i IG_i = log p(t|e) - log p(t|b))
as n_steps grows, per model and baseline, for the top candidate after a fixed sentence.

    uv run python benchmarks/ig_completeness.py [--models gpt2,llama,...] [--steps 32,256]
        [--baselines zero,mean,eos] [--grids auto,even,log] [--text "..."]

Models: the tiny random families of tests/conftest.py by family name, or a built-in model
("embedded", "smollm2"). Baselines: explorer/engine/ig_baseline.py. Grids: where the
gradient points go ("log": the scan and log-spaced panels of ig_path.py, "even":
Clenshaw-Curtis on [0, 1] (Gauss-Legendre before issue 24), "auto": log from zero, even from the others). The reference ends
come from plain forward passes of the model (input_ids, and the baseline rows built here
from the embedding layer), not from the attribution code. Prints one line per (model,
baseline, grid, n_steps): completeness (1.0 = exact), delta log p and seconds.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TEXT = "The quick brown fox jumps over the lazy"


def engine_for(name: str):
    from explorer.config import ModelSettings
    from explorer.engine import Engine

    if name in ("embedded", "tiny", "smollm2"):
        return Engine.load(ModelSettings(name=name))
    from conftest import build_tokenizer, tiny_model

    tok = build_tokenizer()
    return Engine.from_pretrained_objects(tiny_model(name, len(tok)), tok, name=f"tiny-{name}")


def baseline_rows(engine, x, name):
    """b for input ids x [1, n], straight from the embedding layer."""
    import torch

    embed = engine.model.get_input_embeddings()
    e = embed(x)
    kind = name.removesuffix("-keep-first")
    if kind == "zero":
        b = torch.zeros_like(e)
    elif kind == "mean":
        every = embed(torch.arange(embed.weight.shape[0], device=x.device)[None])[0]
        b = every.double().mean(dim=0).to(e.dtype).expand_as(e).clone()
    else:
        eos = engine.tokenizer.eos_token_id
        b = embed(torch.tensor([[eos]], device=x.device))[0, 0].expand_as(e).clone()
    if name.endswith("-keep-first"):
        b[:, 0] = e[:, 0]
    return b


def ends(engine, ids, target, baseline):
    import torch

    model = engine.model
    with torch.no_grad():
        x = torch.tensor([list(ids)], device=engine.device)
        f_e = torch.log_softmax(model(input_ids=x).logits[0, -1].float(), -1)[target]
        b = baseline_rows(engine, x, baseline)
        f_b = torch.log_softmax(model(inputs_embeds=b).logits[0, -1].float(), -1)[target]
    return float(f_e), float(f_b)


def main() -> None:
    from explorer.engine.attribution import Attributor

    opts = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    models = opts.get("--models", "gpt2,llama,qwen2,gemma2,embedded,smollm2").split(",")
    steps = [int(s) for s in opts.get("--steps", "32,256").split(",")]
    baselines = opts.get("--baselines", "zero,mean,eos").split(",")
    grids = opts.get("--grids", "auto").split(",")
    text = opts.get("--text", TEXT)
    for name in models:
        engine = engine_for(name)
        ids = engine.encode(text)
        target = engine.sync("p", ids)[-1].top[0].token_id
        for baseline in baselines:
            f_e, f_b = ends(engine, ids, target, baseline)
            for grid in grids:
                attributor = Attributor(engine.model, eos_id=engine.tokenizer.eos_token_id, grid=grid)
                for n in steps:
                    t0 = time.perf_counter()
                    ig = attributor.attribute(ids, target, "integrated_gradients", n_steps=n,
                                              baseline=baseline, max_steps=n)  # fixed: n steps
                    seconds = time.perf_counter() - t0
                    ratio = float(ig.values.sum()) / (f_e - f_b)
                    print(f"{name:>9} {len(ids):>3} tokens  baseline={baseline:<4} grid={grid:<4} "
                          f"n_steps={n:<5} completeness {ratio:8.4f}  "
                          f"(delta log p {f_e - f_b:+.3f})  {seconds:6.1f} s", flush=True)
        engine.close()


if __name__ == "__main__":
    main()
