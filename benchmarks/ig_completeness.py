"""How close integrated gradients come to completeness (sum_i IG_i = log p(t|e) - log p(t|0))
as n_steps grows, per model, for the top candidate after a fixed sentence.

    uv run python benchmarks/ig_completeness.py [--models gpt2,llama,...] [--steps 32,128,512]

Models: the tiny random families of tests/conftest.py by family name, or a built-in model
("embedded", "smollm2"). The reference ends come from plain forward passes of the model
(input_ids, and zero input embeddings), not from the attribution code. Prints one line per
(model, n_steps): completeness (1.0 = exact), the gradient points used, and seconds.
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


def ends(engine, ids, target):
    import torch

    model = engine.model
    with torch.no_grad():
        x = torch.tensor([list(ids)], device=engine.device)
        f_e = torch.log_softmax(model(input_ids=x).logits[0, -1].float(), -1)[target]
        zeros = torch.zeros_like(model.get_input_embeddings()(x))
        f_0 = torch.log_softmax(model(inputs_embeds=zeros).logits[0, -1].float(), -1)[target]
    return float(f_e), float(f_0)


def main() -> None:
    opts = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    models = opts.get("--models", "gpt2,llama,qwen2,gemma2,embedded,smollm2").split(",")
    steps = [int(s) for s in opts.get("--steps", "32,128,512").split(",")]
    for name in models:
        engine = engine_for(name)
        ids = engine.encode(TEXT)
        target = engine.sync("p", ids)[-1].top[0].token_id
        f_e, f_0 = ends(engine, ids, target)
        for n in steps:
            t0 = time.perf_counter()
            ig = engine.attribution("p", target, "integrated_gradients", n_steps=n)
            seconds = time.perf_counter() - t0
            ratio = float(ig.values.sum()) / (f_e - f_0)
            print(f"{name:>9} n_steps={n:<5} completeness {ratio:8.4f}  "
                  f"(delta log p {f_e - f_0:+.3f})  {seconds:6.1f} s", flush=True)
        engine.close()


if __name__ == "__main__":
    main()
