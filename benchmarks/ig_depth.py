"""How deep f(alpha e) keeps moving on the zero-baseline path, and how complete integrated
gradients from zero is on the embedded model for two sentences (docs/attribution.md).

    uv run python benchmarks/ig_depth.py [--embedded-only]

1. SmolLM2-135M in float64, f(alpha e) = log p(top candidate | alpha e) at alpha = 10^-k,
   k = 0, 0.5, 1, ... 160, twice: with transformers' own RMSNorm (which casts its input to
   fp32 even in a float64 model, so alpha e underflows fp32 below about 1.4e-45), and
   with the norm computed in float64 throughout. Printed: the smallest alpha at which f
   still differs from the next point down by more than 1e-6 of |f(e) - f(0)|.
2. The embedded model, integrated gradients from zero at 256 steps (the engine's log
   grid), for "The quick brown fox jumps over the lazy" and "Once upon a time, the
   little dog": completeness.
Deterministic (no timing); one run.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

FOX = "The quick brown fox jumps over the lazy"
DOG = "Once upon a time, the little dog"


def fp64_norm(module):
    def forward(hidden):
        variance = hidden.pow(2).mean(-1, keepdim=True)
        return module.weight * (hidden * torch.rsqrt(variance + module.variance_epsilon))
    return forward


def deepest(model, ids) -> tuple[float, float]:
    with torch.no_grad():
        e = model.get_input_embeddings()(torch.tensor([ids])).double()
        target = int(model(inputs_embeds=e).logits[0, -1].argmax())
        ks = [k / 2 for k in range(0, 321)]

        def f(alphas):
            x = torch.cat([a * e for a in alphas])
            return torch.log_softmax(model(inputs_embeds=x).logits[:, -1].double(), -1)[:, target]

        values = torch.cat([f([10.0 ** -k for k in ks[i:i + 32]]) for i in range(0, len(ks), 32)])
        f0 = float(f([0.0])[0])
    total = abs(float(values[0]) - f0)
    moving = [k for k, a, b in zip(ks, values[:-1], values[1:]) if abs(float(a - b)) > 1e-6 * total]
    return (max(moving) if moving else 0.0), total


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from explorer.config import ModelSettings
    from explorer.engine import Engine
    from explorer.engine.builtin_models import local_folder

    if "--embedded-only" in sys.argv:  # part 2 alone (part 1 takes tens of minutes on a busy CPU)
        return embedded(Engine, ModelSettings)
    folder = str(local_folder("smollm2"))
    tok = AutoTokenizer.from_pretrained(folder)
    ids = tok(FOX)["input_ids"]
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64).eval()
    k, total = deepest(model, ids)
    print(f"SmolLM2 float64, transformers' RMSNorm (fp32 inside): f moves down to alpha = 1e-{k:g} "
          f"(|f(e) - f(0)| = {total:.2f})")
    norms = [m for m in model.modules() if type(m).__name__.endswith("RMSNorm")]
    for m in norms:
        m.forward = fp64_norm(m)
    k, total = deepest(model, ids)
    print(f"SmolLM2 float64, RMSNorm in float64 ({len(norms)} norms): f moves down to "
          f"alpha = 1e-{k:g} (|f(e) - f(0)| = {total:.2f})")

    embedded(Engine, ModelSettings)


def embedded(Engine, ModelSettings) -> None:
    engine = Engine.load(ModelSettings(name="embedded"))
    for text in (FOX, DOG):
        ids = engine.encode(text)
        target = engine.sync(text, ids)[-1].top[0]
        ig = engine.attribution(text, target.token_id, "integrated_gradients", n_steps=256,
                                baseline="zero")
        print(f"embedded, zero baseline, 256 steps, {text!r} -> {target.text!r}: "
              f"completeness {ig.completeness:.4f} (Δ log p {ig.log_p - ig.log_p_baseline:.3f})")


if __name__ == "__main__":
    main()
