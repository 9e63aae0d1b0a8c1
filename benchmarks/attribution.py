"""Attribution cost on the default model (SmolLM2-135M): seconds for a 256-token prompt per
method, and the peak extra memory each needs.

    uv run python benchmarks/attribution.py [--model NAME] [--tokens 256] [--steps 32]

Each method runs in a fresh process (so one method's peak does not hide another's): the
model is loaded, the prompt synced (one prefill), the memory high-water mark reset, then
the attribution is timed. Also printed: one plain forward pass of the same prompt, so the
figures read as ratios taken in the same run. The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

METHODS = ("saliency", "input_x_gradient", "integrated_gradients")


def _status_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))


def child(method: str, model_name: str, tokens: int, steps: int) -> None:
    import torch

    from explorer.config import ModelSettings
    from explorer.engine import Engine

    engine = Engine.load(ModelSettings(name=model_name))
    rng = random.Random(0)
    special = engine.special_ids
    ids = [rng.randrange(engine.vocab_size) for _ in range(tokens)]
    ids = [i if i not in special else (i + 1) % engine.vocab_size for i in ids]
    target = engine.sync("p", ids)[-1].top[0].token_id
    cuda = engine.device.type == "cuda"
    with torch.inference_mode():  # one plain forward of the prompt, no cache, for scale
        t0 = time.perf_counter()
        engine.model(input_ids=torch.tensor([ids], device=engine.device), use_cache=False)
        if cuda:
            torch.cuda.synchronize()
        forward_s = time.perf_counter() - t0
    before = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM: loading does not count
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    out = engine.attribution("p", target, method, n_steps=steps)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = ((torch.cuda.max_memory_allocated() - base) / 2**20 if cuda
            else (_status_kb("VmHWM") - before) / 1024)
    print(json.dumps({"method": method, "seconds": seconds, "forward_s": forward_s,
                      "peak_extra_mb": peak, "device": engine.device.type,
                      "completeness": out.completeness}))


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "--child":
        child(args[1], args[2], int(args[3]), int(args[4]))
        return
    opts = dict(zip(args[::2], args[1::2]))
    model = opts.get("--model", "smollm2")
    tokens = int(opts.get("--tokens", 256))
    steps = int(opts.get("--steps", 32))
    rows = []
    for method in METHODS:
        out = subprocess.run([sys.executable, __file__, "--child", method, model, str(tokens),
                              str(steps)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"model {model}, {tokens}-token prompt, integrated gradients n_steps={steps}, "
          f"device {rows[0]['device']}")
    for r in rows:
        print(f"{r['method']:>22}: {r['seconds']:7.3f} s  ({r['seconds'] / r['forward_s']:6.1f}x "
              f"one forward of {r['forward_s'] * 1e3:.0f} ms)  peak +{r['peak_extra_mb']:.0f} MB")
    print(json.dumps({r["method"]: {"s": round(r["seconds"], 3),
                                    "over_forward": round(r["seconds"] / r["forward_s"], 1),
                                    "peak_mb": round(r["peak_extra_mb"], 1)} for r in rows}
                     | {"device": rows[0]["device"], "tokens": tokens, "n_steps": steps}))


if __name__ == "__main__":
    main()
