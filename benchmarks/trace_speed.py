"""Cost of `trace` per generated token against transformers' own greedy `generate`.

    uv run python benchmarks/trace_speed.py [--model DIR] [--tokens 64] [--reps 5]

In one run, on one model (default: the embedded model), both producing exactly --tokens
tokens after the same prompt (end-of-sequence disabled for both):
- trace_over_generate: seconds per token of `explorer.core.trace` (one Backend.sync per
  token, each returning the token's record and the top-K after it) over seconds per token
  of `model.generate(do_sample=False)`. Both include their prefill. Target: about 1.
- trace_with_influence_over_generate: the same trace on a backend that also computes
  attention influence on every step (what the app's backend does), to show what the
  headless backend (open_backend(..., influence=False)) saves.
Runs are interleaved so that machine load hits all three alike; medians are reported.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer.config import ModelSettings  # noqa: E402
from explorer.core.trace import trace  # noqa: E402
from explorer.engine import Engine  # noqa: E402

PROMPT = "The history of the language model begins with"


def time_trace(engine: Engine, ids: list[int], tokens: int) -> float:
    t0 = time.perf_counter()
    result = trace(engine, ids, tokens, stop_ids=())
    elapsed = time.perf_counter() - t0
    assert len(result.completion_ids) == tokens
    return elapsed / tokens


def time_generate(model, ids: list[int], tokens: int) -> float:
    input_ids = torch.tensor([ids], device=model.device)
    mask = torch.ones_like(input_ids)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(input_ids, attention_mask=mask, do_sample=False, max_new_tokens=tokens,
                             min_new_tokens=tokens, pad_token_id=0)
    elapsed = time.perf_counter() - t0
    assert out.shape[1] - len(ids) == tokens
    return elapsed / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="embedded", help='a local model folder ("embedded" = built-in)')
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--top-k", type=int, default=5, help="candidates per step (--top-logprobs)")
    args = parser.parse_args()

    settings = ModelSettings(name=args.model)
    lean = Engine.load(settings, tokens_to_show=args.top_k, influence=False)
    full = Engine.from_pretrained_objects(lean.model, lean.tokenizer, name=args.model,
                                          settings=settings, tokens_to_show=args.top_k)
    model, ids = lean.model, lean.encode(PROMPT)
    # warm-up every path once (first calls allocate and pick kernels)
    time_trace(lean, ids, 4), time_trace(full, ids, 4), time_generate(model, ids, 4)

    lean_s, full_s, gen_s = [], [], []
    for _ in range(args.reps):
        lean_s.append(time_trace(lean, ids, args.tokens))
        full_s.append(time_trace(full, ids, args.tokens))
        gen_s.append(time_generate(model, ids, args.tokens))
    lean_m, full_m, gen_m = (statistics.median(x) for x in (lean_s, full_s, gen_s))
    ratio, ratio_full = lean_m / gen_m, full_m / gen_m
    spread = [round(a / b, 3) for a, b in zip(lean_s, gen_s)]
    print(f"{lean.info.name}: {len(ids)}-token prompt, {args.tokens} new tokens, top {args.top_k}, "
          f"{lean.info.device}, {torch.get_num_threads()} threads, median of {args.reps}")
    print(f"trace:                  {lean_m * 1000:.2f} ms/token")
    print(f"trace with influence:   {full_m * 1000:.2f} ms/token")
    print(f"model.generate greedy:  {gen_m * 1000:.2f} ms/token")
    print(f"trace_over_generate = {ratio:.3f} (per rep: {spread}); "
          f"with influence: {ratio_full:.3f}")
    print(json.dumps({
        "trace_ms_per_token": round(lean_m * 1000, 3),
        "trace_with_influence_ms_per_token": round(full_m * 1000, 3),
        "generate_ms_per_token": round(gen_m * 1000, 3),
        "trace_over_generate": round(ratio, 3),
        "trace_with_influence_over_generate": round(ratio_full, 3),
        "trace_over_generate_per_rep": spread,
        "tokens": args.tokens, "reps": args.reps, "prompt_tokens": len(ids),
        "model": lean.info.name, "device": lean.info.device, "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
