"""Cost of the sampler: changing a knob, and autoplay through the pipeline vs generate.

    uv run python benchmarks/sampler.py [--tokens 64] [--reps 3]

From one run on this machine (numbers from a shared machine are only comparable within
the run):
- knob change: apply the whole pipeline (p_base and p_final) to a kept logits row, cycling
  through different settings; median milliseconds, on the embedded model's row (8,192
  tokens) and on a Qwen2.5-sized random row (151,936 tokens). Target: under 5 ms.
- autoplay_over_generate: tokens/s of a loop that does one cached decode step, the
  pipeline and a seeded draw per token, over tokens/s of model.generate(do_sample=True)
  with the same settings, on the embedded model, both producing exactly --tokens tokens
  (EOS disabled for both). Target: at least 0.8.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer.config import EMBEDDED_MODEL_DIR  # noqa: E402
from explorer.sampling import PRESETS, distributions, draw  # noqa: E402

KNOB_SETTINGS = [
    PRESETS["neutral"], PRESETS["balanced"], PRESETS["creative"], PRESETS["greedy"],
    PRESETS["balanced"].with_changes(top_k=40, min_p=0.05, presence_penalty=0.5, frequency_penalty=0.3),
]


def knob_ms(row: torch.Tensor, ids: list[int], prompt_len: int, reps: int) -> float:
    times = []
    for i in range(reps * len(KNOB_SETTINGS)):
        settings = KNOB_SETTINGS[i % len(KNOB_SETTINGS)]
        t0 = time.perf_counter()
        distributions(row, ids, prompt_len, settings)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def autoplay(model, ids: list[int], settings, tokens: int, seed: int) -> list[int]:
    from transformers import DynamicCache

    seq, cache = list(ids), DynamicCache()
    with torch.inference_mode():
        logits = model(torch.tensor([seq]), past_key_values=cache, use_cache=True).logits[0, -1]
        for _ in range(tokens):
            token = draw(distributions(logits, seq, len(ids), settings).p_final, seed, len(seq))
            seq.append(token)
            logits = model(torch.tensor([[token]]), past_key_values=cache, use_cache=True).logits[0, -1]
    return seq[len(ids):]


def generate(model, ids: list[int], s, tokens: int) -> list[int]:
    kwargs = dict(do_sample=True, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                  min_p=s.min_p, repetition_penalty=s.repetition_penalty)
    with torch.inference_mode():
        out = model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                             max_new_tokens=tokens, min_new_tokens=0, pad_token_id=0, **kwargs)
    return out[0, len(ids):].tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # both sides produce exactly --tokens tokens
    tok = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    ids = tok("Once upon a time, in a small village by the sea, there lived")["input_ids"]
    with torch.inference_mode():
        row = model(torch.tensor([ids])).logits[0, -1].clone()

    appended = ids + ids[-8:]  # a few appended tokens so the penalties have work
    knob_small = knob_ms(row, appended, len(ids), reps=20)
    big = torch.randn(151936, generator=torch.Generator().manual_seed(0)) * 4
    knob_big = knob_ms(big, appended, len(ids), reps=5)
    print(f"knob change, 8,192-token row:   {knob_small:.2f} ms (median)")
    print(f"knob change, 151,936-token row: {knob_big:.2f} ms (median)")

    settings = PRESETS["balanced"]
    autoplay(model, ids, settings, 4, seed=0)  # warm-up both paths
    generate(model, ids, settings, 4)
    ours, theirs = [], []
    for rep in range(args.reps):  # interleaved, so machine load hits both alike
        t0 = time.perf_counter()
        n_ours = len(autoplay(model, ids, settings, args.tokens, seed=rep))
        ours.append(n_ours / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        n_theirs = len(generate(model, ids, settings, args.tokens))
        theirs.append(n_theirs / (time.perf_counter() - t0))
    ours_tps, gen_tps = statistics.median(ours), statistics.median(theirs)
    ratio = ours_tps / gen_tps
    print(f"autoplay through the pipeline: {ours_tps:.1f} tokens/s; model.generate: {gen_tps:.1f} tokens/s "
          f"(balanced preset, {args.tokens} tokens, median of {args.reps})")
    print(f"autoplay_over_generate = {ratio:.2f} (target >= 0.8)")
    print(json.dumps({
        "knob_change_ms_8k": round(knob_small, 3),
        "knob_change_ms_152k": round(knob_big, 3),
        "autoplay_tokens_per_s": round(ours_tps, 2),
        "generate_tokens_per_s": round(gen_tps, 2),
        "autoplay_over_generate": round(ratio, 3),
        "tokens": args.tokens, "reps": args.reps, "device": "cpu",
        "threads": torch.get_num_threads(),
    }))


if __name__ == "__main__":
    main()
