"""Cost of the sampler: changing a knob, and autoplay through the pipeline vs generate.

    uv run python benchmarks/sampler.py [--tokens 64] [--reps 3]

From one run on this machine (numbers from a shared machine are only comparable within
the run):
- knob change: apply the whole pipeline (p_base and p_final) to a kept logits row, cycling
  through different settings; median milliseconds per setting, on one CPU thread, on the
  embedded model's row (8,192 tokens) and on random rows as wide as SmolLM2's (49,152)
  and Qwen2.5's (151,936). Target: under 5 ms.
- autoplay_over_generate: tokens/s of autoplay *through the engine* (the headless
  explorer.session.sampler.autoplay: Engine.sync of one more token, the kept logits row,
  the pipeline and a seeded draw per token; the engine also computes each step's record,
  top-k table and attention row) over tokens/s of model.generate(do_sample=True) with the
  same settings, on the embedded model, both producing exactly --tokens tokens (EOS
  disabled for both). Target: at least 0.8.
- sample_over_append: a `space` step over an append step, both as the app does them
  through the engine: the append syncs one more (picked) token, fetches the kept row and
  computes the new table's p_final; the space step first draws from the p_final already
  computed for the shown table, then does the same. Interleaved, each popped back (a
  crop) so both run at the same cache length; medians. Target: at most 1.1.
- autoplay_bare_over_generate: the same loop straight on the model (no engine), for
  reference.
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

KNOB_SETTINGS = {
    "neutral": PRESETS["neutral"],
    "greedy": PRESETS["greedy"],
    "creative": PRESETS["creative"],
    "balanced (top-p)": PRESETS["balanced"],
    "everything": PRESETS["balanced"].with_changes(top_k=40, min_p=0.05, presence_penalty=0.5,
                                                   frequency_penalty=0.3),
}


def knob_ms(row: torch.Tensor, ids: list[int], prompt_len: int, reps: int) -> dict[str, float]:
    """Median ms per setting; the settings are cycled so each call is a real change."""
    times: dict[str, list[float]] = {name: [] for name in KNOB_SETTINGS}
    for _ in range(reps):
        for name, settings in KNOB_SETTINGS.items():
            t0 = time.perf_counter()
            distributions(row, ids, prompt_len, settings)
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


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


def engine_autoplay(engine, ids: list[int], settings, tokens: int, seed: int) -> list[int]:
    from explorer.core.trace import trace
    from explorer.core.trace_sampling import TraceChoice
    from explorer.session.sampler import Sampler, StopRule

    sampler = Sampler(settings.with_changes(seed=seed))
    key = ("auto", seed)
    result = trace(engine, ids, tokens, choose=TraceChoice(engine, key, sampler, len(ids)), key=key,
                   rule=StopRule(max_tokens=tokens))
    return list(result.completion_ids)


def step_costs(engine, ids: list[int], settings, reps: int) -> tuple[float, float]:
    """Median seconds of an append step and of a space step (see the module docstring)."""
    from explorer.session.sampler import Sampler

    sampler = Sampler(settings.with_changes(seed=0))
    key = "steps"
    engine.sync(key, ids)
    row = engine.next_logits(key)
    top = [c.token_id for c in engine.records(key)[-1].top]
    sampler.shown(row, ids, len(ids), top)  # the shown table's p_final, as on screen
    append_t, space_t = [], []
    for rep in range(reps):
        for kind in (("append", "space") if rep % 2 else ("space", "append")):
            t0 = time.perf_counter()
            token = sampler.pick(row, ids, len(ids)) if kind == "space" else top[0]
            seq = ids + [token]
            records = engine.sync(key, seq)
            new_row = engine.next_logits(key)
            sampler.shown(new_row, seq, len(ids), [c.token_id for c in records[-1].top])
            (space_t if kind == "space" else append_t).append(time.perf_counter() - t0)
            engine.sync(key, ids)  # pop: a crop, not timed
            sampler.shown(row, ids, len(ids), top)  # back to the shown table (cached)
    return statistics.median(append_t), statistics.median(space_t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(EMBEDDED_MODEL_DIR, dtype=torch.float32).eval()
    model.generation_config.eos_token_id = None  # both sides produce exactly --tokens tokens
    tok = AutoTokenizer.from_pretrained(EMBEDDED_MODEL_DIR)
    ids = tok("Once upon a time, in a small village by the sea, there lived")["input_ids"]
    with torch.inference_mode():
        row = model(torch.tensor([ids])).logits[0, -1].clone()

    appended = ids + ids[-8:]  # a few appended tokens so the penalties have work
    rows = {"8k": row}  # the embedded model's own row, then SmolLM2- and Qwen2.5-sized ones
    for name, width in (("49k", 49152), ("152k", 151936)):
        rows[name] = torch.randn(width, generator=torch.Generator().manual_seed(0)) * 4
    # CPU: run on one thread, as the engine's post-step reductions do (engine._few_threads):
    # on a busy machine every multi-threaded op waits for a pool wake-up.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    knob = {name: knob_ms(r, appended, len(ids), reps=20 if r.numel() < 10**5 else 7)
            for name, r in rows.items()}
    torch.set_num_threads(threads)
    knob_pool = knob_ms(rows["152k"], appended, len(ids), reps=7)
    print("knob change, median ms on one thread:")
    print(f"  {'settings':<20}" + "".join(f"{n + ' row':>12}" for n in rows))
    for name in KNOB_SETTINGS:
        print(f"  {name:<20}" + "".join(f"{knob[r][name]:>12.2f}" for r in rows))
    print(f"  (152k row on {threads} threads, worst setting: {max(knob_pool.values()):.2f} ms)")
    worst = {r: max(v.values()) for r, v in knob.items()}

    from explorer.engine import Engine

    engine = Engine.from_pretrained_objects(model, tok, name="embedded")
    settings = PRESETS["balanced"]
    autoplay(model, ids, settings, 4, seed=0)  # warm-up every path
    engine_autoplay(engine, ids, settings, 4, seed=0)
    generate(model, ids, settings, 4)
    ours, bare, theirs = [], [], []
    for rep in range(args.reps):  # interleaved, so machine load hits all alike
        t0 = time.perf_counter()
        n_ours = len(engine_autoplay(engine, ids, settings, args.tokens, seed=rep))
        ours.append(n_ours / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        n_bare = len(autoplay(model, ids, settings, args.tokens, seed=rep))
        bare.append(n_bare / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        n_theirs = len(generate(model, ids, settings, args.tokens))
        theirs.append(n_theirs / (time.perf_counter() - t0))
    ours_tps, bare_tps, gen_tps = statistics.median(ours), statistics.median(bare), statistics.median(theirs)
    ratio = ours_tps / gen_tps
    print(f"autoplay through the engine: {ours_tps:.1f} tokens/s; bare loop: {bare_tps:.1f} tokens/s; "
          f"model.generate: {gen_tps:.1f} tokens/s (balanced preset, {args.tokens} tokens, median of {args.reps})")
    print(f"autoplay_over_generate = {ratio:.2f} (target >= 0.8)")
    append_s, space_s = step_costs(engine, ids, settings, reps=max(20, 4 * args.reps))
    print(f"append step {append_s * 1000:.1f} ms, space step {space_s * 1000:.1f} ms: "
          f"sample_over_append = {space_s / append_s:.2f} (target <= 1.1)")
    print(json.dumps({
        **{f"knob_change_ms_{r}_worst": round(v, 3) for r, v in worst.items()},
        "knob_change_ms_152k_without_top_p": round(max(
            v for k, v in knob["152k"].items() if KNOB_SETTINGS[k].top_p == 1.0), 3),
        "knob_change_ms_152k_worst_all_threads": round(max(knob_pool.values()), 3),
        "autoplay_tokens_per_s": round(ours_tps, 2),
        "generate_tokens_per_s": round(gen_tps, 2),
        "autoplay_over_generate": round(ratio, 3),
        "autoplay_bare_over_generate": round(bare_tps / gen_tps, 3),
        "append_step_ms": round(append_s * 1000, 2),
        "space_step_ms": round(space_s * 1000, 2),
        "sample_over_append": round(space_s / append_s, 3),
        "tokens": args.tokens, "reps": args.reps, "device": "cpu",
        "threads": threads,
    }))


if __name__ == "__main__":
    main()
