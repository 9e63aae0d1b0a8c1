"""What looking back and branching cost (issue 23), on an Engine already loaded:

- branch_over_decode: a branch at k = n/2 of a 512-token prompt (a new prompt of
  ids[:k] + another token: the parent's cache copied up to k, one one-token forward; the
  row before k is the one the table at k kept, fetched untimed first as the app does)
  over one bare transformers decode step on the 512-token prompt's cache. Target <= 1.3.
- records_bytes_per_position: the Python memory the records of an 8,192-token prompt
  hold per position (p_base's top-k table, the token's log-prob, rank and entropy: what
  the table at a past position reads), measured with tracemalloc around the load.
- rebuild_over_decode: the raw row before a position that no step kept (p_final there),
  rebuilt at k = n/2 of that prompt (one forward on a sliced view of its cache), over one
  bare decode step on the same cache. Target <= 1 (one decode step's time).

    uv run python benchmarks/position_costs.py [--long 8192] [--reps 5]

`step_latency.py --positions` runs it on the default model as it loads it; alone it loads
config.toml's model. Bare decode steps run on the prompt's own cache (cropped back).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

SHORT = 512
LONG = 8192


def _timed(fn) -> tuple[float, float]:
    """(wall ms, CPU ms of this process, every thread) of fn(): on a shared, loaded CPU
    the CPU time moves much less than the wall-clock time."""
    cpu, start = time.process_time(), time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3, (time.process_time() - cpu) * 1e3


def _bare_step_ms(model, cache, token: int) -> tuple[float, float]:
    """One transformers decode step after `cache`, which is left as it was."""
    with torch.inference_mode():
        took = _timed(lambda: model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True))
    cache.crop(-1)
    return took


def _own_cache(engine, key):
    """The prompt's own KV cache: the bare step runs on it (and crops itself back), so the
    long prompt is prefilled once, by the engine."""
    return engine._store.peek_kv(key).cache


def _say(name: str, value: float) -> None:
    print(f"{name:>28}: {value:10.2f}", flush=True)


def measure_positions(engine, reps: int = 5, long: int = LONG) -> dict:
    model, vocab = engine.model, engine.info.vocab_size
    rng = random.Random(23)
    pick = lambda: rng.randrange(min(1000, vocab // 4), vocab)  # noqa: E731
    model.set_attn_implementation(engine._runner.fast_impl)

    ids = [pick() for _ in range(SHORT)]
    engine.sync("parent", ids)
    cache = _own_cache(engine, "parent")
    decode, branch = [], []
    for rep in range(reps + 1):
        decode_ms = _bare_step_ms(model, cache, pick())
        # The table at k is on screen before → is pressed (untimed): its row is kept.
        engine.logits_before("parent", SHORT // 2)
        branch_ms = _timed(lambda: engine.sync(f"branch{rep}", ids[: SHORT // 2] + [pick()]))
        engine.forget(f"branch{rep}")
        if rep:  # the first round warms allocators
            decode.append(decode_ms)
            branch.append(branch_ms)
    engine.forget("parent")
    del cache
    med = lambda rows, j: statistics.median(r[j] for r in rows)  # noqa: E731
    out = {"decode_512_ms": med(decode, 0), "branch_512_ms": med(branch, 0),
           "decode_512_cpu_ms": med(decode, 1), "branch_512_cpu_ms": med(branch, 1)}
    out["branch_over_decode"] = out["branch_512_ms"] / out["decode_512_ms"]
    out["branch_over_decode_cpu"] = out["branch_512_cpu_ms"] / out["decode_512_cpu_ms"]
    for name, value in out.items():
        _say(name, value)
    if not long:
        return out

    long = min(long, (engine.info.max_context or long) - 1)
    ids = [pick() for _ in range(long)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    records = engine.sync("long", ids)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    _say("records_bytes_per_position", held / len(records))
    cache = _own_cache(engine, "long")
    decode, rebuild = [], []
    for rep in range(reps + 1):
        decode_ms = _bare_step_ms(model, cache, pick())[0]
        # A new position each time: not kept.
        rebuild_ms = _timed(lambda: engine.logits_before("long", long // 2 - rep))[0]
        if rep:
            decode.append(decode_ms)
            rebuild.append(rebuild_ms)
    engine.forget("long")
    out |= {"long_prompt": long, "records_bytes_per_position": held / len(records),
            "decode_long_ms": statistics.median(decode), "rebuild_long_ms": statistics.median(rebuild)}
    out["rebuild_over_decode"] = out["rebuild_long_ms"] / out["decode_long_ms"]
    for name in ("decode_long_ms", "rebuild_long_ms", "rebuild_over_decode"):
        _say(name, out[name])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--long", type=int, default=LONG, help="the long prompt (0: branch only)")
    args = parser.parse_args()
    from explorer.config import load_settings
    from explorer.engine import Engine

    settings = load_settings().model
    engine = Engine.load(settings)
    print(f"{settings.name}, torch {torch.__version__}, {torch.get_num_threads()} threads, {engine.device}")
    result = measure_positions(engine, args.reps, args.long)
    print(json.dumps({k: round(v, 3) for k, v in result.items()} | {"load_avg_1m": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
