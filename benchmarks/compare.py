"""What a model comparison costs: comparing two local models on a 512-token prompt over
loading that prompt once (target <= 2.3x), and appending a token while a comparison is
shown over one plain append step (target <= 2.2x).

    uv run python benchmarks/compare.py [--model smollm2] [--compare-dtype float32] [--reps 3]

Model A is --model (fp32); model B is the same checkpoint loaded a second time at
--compare-dtype (default float32: a second model of the same size, the cost of two
different checkpoints; bfloat16 shows the dtype case, slower on most CPUs). Both engines
are opened as the headless commands open them (no attention influence). Loads and
comparisons are interleaved, each on a fresh prompt key (nothing cached); medians. The
first line is `uptime`; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from explorer.compare import compare_models  # noqa: E402
from explorer.compare.live import LiveComparison  # noqa: E402
from explorer.config import ModelSettings  # noqa: E402

PROMPT = 512
APPENDS = 7


def prompt_ids(engine, n: int) -> tuple[int, ...]:
    text = (ROOT / "prompts" / "default.txt").read_text(encoding="utf-8") * 40
    ids = tuple(engine.encode(text))
    assert len(ids) >= n, len(ids)
    return ids[:n]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(model: str, dtype_b: str, reps: int) -> dict:
    from explorer.engine import Engine

    a = Engine.load(ModelSettings(name=model, device="cpu"), influence=False)
    b = Engine.load(ModelSettings(name=model, device="cpu", dtype=dtype_b), influence=False)
    ids = prompt_ids(a, PROMPT)
    compare_models(a, b, ids[:64])  # warm-up: kernels, thread pools, allocator
    loads, compares = [], []
    for rep in range(reps):
        loads.append(timed(lambda: a.sync(("load", rep), ids)))
        a.forget(("load", rep))
        compares.append(timed(lambda: compare_models(a, b, ids)))
    load, compare = statistics.median(loads), statistics.median(compares)

    # Appends: the app's step (A's sync) alone, and with the comparison following it.
    live = LiveComparison(a, b)
    a.sync("plain", ids)
    a.sync("shown", ids)
    live.update("shown", ids)
    nxt = a.records("plain")[-1].top
    steps, shown = [], []
    for i in range(APPENDS):
        longer = ids + (nxt[i % 5].token_id,)
        steps.append(timed(lambda: a.sync("plain", longer)))
        shown.append(timed(lambda: (a.sync("shown", longer), live.update("shown", longer))))
        a.sync("plain", ids)  # pop back: a crop, not timed
        a.sync("shown", ids)
        live.update("shown", ids)
    step, step_shown = statistics.median(steps), statistics.median(shown)
    return {"model": model, "dtype_b": dtype_b, "prompt": PROMPT, "reps": reps,
            "load_s": round(load, 3), "compare_s": round(compare, 3),
            "compare_over_load": round(compare / load, 2),
            "append_ms": round(step * 1e3, 1), "append_shown_ms": round(step_shown * 1e3, 1),
            "append_shown_over_append": round(step_shown / step, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--compare-dtype", default="float32")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime: {uptime} ({os.cpu_count()} cpus)")
    got = bench(args.model, args.compare_dtype, args.reps)
    print(f"{got['model']} fp32 vs {got['dtype_b']}, {PROMPT}-token prompt:")
    print(f"  load once      {got['load_s']:.3f} s")
    print(f"  compare        {got['compare_s']:.3f} s = {got['compare_over_load']:.2f}x load (target <= 2.3x)")
    print(f"  append         {got['append_ms']:.1f} ms")
    print(f"  append, shown  {got['append_shown_ms']:.1f} ms = {got['append_shown_over_append']:.2f}x "
          "(target <= 2.2x)")
    got["uptime"] = uptime
    print(json.dumps(got))


if __name__ == "__main__":
    main()
