"""Step latency and memory of the engine on a model shaped like Qwen2.5-0.5B (random weights),
and on the default model of config.toml (loaded as the app loads it, with --layer_prob on).

    uv run python benchmarks/step_latency.py [--skip-default] [--positions]

--positions adds, on the default model, what looking back and branching cost (issue 23,
benchmarks/position_costs.py: branch at n/2 of 512 tokens over a decode step, the
records' bytes per position of an 8,192-token prompt, a row rebuilt there over a step).

Every figure is a ratio (or a time) measured in this one run on this machine, so the
numbers compare like with like. The last line is one JSON object.
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

PROMPT = 256
DEFAULT_PROMPT = 512  # the default model's prompt, as issue 11 measured it
LONG_PROMPT = 2048
STEP_REPS = 7
PREFILL_REPS = 2


class StubTokenizer:
    """Token Explorer only needs id -> text here; no tokenizer files are downloaded."""

    all_special_ids: list[int] = []

    def convert_ids_to_tokens(self, token_id: int) -> str:
        return f"t{token_id}"

    def decode(self, ids, **kwargs) -> str:
        return " ".join(f"t{i}" for i in ids)


def build_model():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=151936, hidden_size=896, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, intermediate_size=4864, tie_word_embeddings=True,
        max_position_embeddings=32768, rope_theta=1000000.0, rms_norm_eps=1e-6,
    )
    torch.manual_seed(0)
    with torch.no_grad():
        return Qwen2ForCausalLM(config).eval()


def make_engine(model, **kwargs):
    from explorer.engine import Engine

    return Engine.from_pretrained_objects(model, StubTokenizer(), name="qwen2.5-0.5b-shape",
                                          **kwargs)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


QWEN_TOKENS = (1000, 150000)


def random_ids(rng: random.Random, n: int, token_range: tuple[int, int] = QWEN_TOKENS) -> list[int]:
    return [rng.randrange(*token_range) for _ in range(n)]


def bare_prefill(model, ids):
    from transformers import DynamicCache

    cache = DynamicCache()
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True)
    return cache


def measure_steps(model, engine, prompt: int, token_range: tuple[int, int],
                  prefill_reps: int = PREFILL_REPS) -> dict:
    """Append vs a bare decode step, pop, and load vs a bare prefill of `prompt` tokens."""
    rng = random.Random(0)
    fast_impl = model.config._attn_implementation
    ids = random_ids(rng, prompt, token_range)

    # Bare transformers decode step at the same cache length (prompt cached, 1 new).
    model.set_attn_implementation(fast_impl)
    cache = bare_prefill(model, ids)
    engine.sync("p", ids)

    bare, ours, pops = [], [], []
    with torch.inference_mode():
        for rep in range(STEP_REPS + 1):
            token = rng.randrange(*token_range)
            model.set_attn_implementation(fast_impl)  # the bare step runs as transformers would
            t_bare = timed(lambda: model(input_ids=torch.tensor([[token]]), past_key_values=cache,
                                         use_cache=True))
            cache.crop(-1)
            t_ours = timed(lambda: engine.sync("p", ids + [token]))
            t_pop = timed(lambda: engine.sync("p", ids))
            if rep:  # the first round warms caches and allocators
                bare.append(t_bare)
                ours.append(t_ours)
                pops.append(t_pop)

    # Load (chunked prefill + last step) vs one bare prefill of the same number of tokens.
    loads, prefills = [], []
    for rep in range(prefill_reps):
        fresh = random_ids(rng, prompt, token_range)  # a new first token: nothing to borrow
        model.set_attn_implementation(fast_impl)
        prefills.append(timed(lambda: bare_prefill(model, fresh)))
        fresh = random_ids(rng, prompt, token_range)
        loads.append(timed(lambda: engine.sync(f"load{rep}", fresh)))
        engine.forget(f"load{rep}")

    decode = statistics.median(bare)
    append = statistics.median(ours)
    prefill = statistics.median(prefills)
    return {
        "decode_ms": decode * 1e3,
        "append_ms": append * 1e3,
        "pop_ms": statistics.median(pops) * 1e3,
        "prefill_ms": prefill * 1e3,
        "load_ms": statistics.median(loads) * 1e3,
        # The original Token Explorer ran two full forward passes of the prompt per key.
        "per_key_original_ms": 2 * prefill * 1e3,
    }


def measure_default() -> dict:
    """The default model of config.toml, loaded as the app loads it, with --layer_prob on
    (which must cost nothing while no layer view asks). The load is timed warm: a first,
    untimed load fills whatever caches loading uses (files, a dequantised copy)."""
    from explorer.config import load_settings
    from explorer.engine import Engine

    settings = load_settings().model
    Engine.load(settings, layer_prob=True).close()
    start = time.perf_counter()
    engine = Engine.load(settings, layer_prob=True)
    load_s = time.perf_counter() - start
    model = engine.model
    prompt = min(DEFAULT_PROMPT, (engine.info.max_context or DEFAULT_PROMPT) - STEP_REPS - 2)
    vocab = engine.info.vocab_size
    # A small model loads in a fraction of a second: more rounds steady the medians.
    steps = measure_steps(model, engine, prompt, (min(1000, vocab // 4), vocab), prefill_reps=5)
    if "--positions" in sys.argv:  # issue 23: branching, the table at a past position
        from position_costs import measure_positions

        print("default model, positions (position_costs.py):", flush=True)
        steps |= {f"positions_{k}": v for k, v in measure_positions(engine).items()}
    return {"name": settings.name, "prompt": prompt, "load_s": load_s, **steps}

def _status_kb(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1))


def peak_child() -> None:
    """Run in a fresh process: extra resident memory while loading a long prompt."""
    model = build_model()
    engine = make_engine(model)
    ids = random_ids(random.Random(1), LONG_PROMPT)
    before = _status_kb("VmRSS")
    # Reset the high-water mark so model construction does not count (Linux clear_refs).
    Path("/proc/self/clear_refs").write_text("5")
    engine.sync("long", ids)
    peak = _status_kb("VmHWM")
    print(json.dumps({"peak_extra_mb": (peak - before) / 1024}))


def measure_peak() -> float:
    out = subprocess.run([sys.executable, __file__, "--peak-child"], capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_extra_mb"]


def main() -> None:
    if "--peak-child" in sys.argv:
        peak_child()
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, cpu")
    model = build_model()
    steps = measure_steps(model, make_engine(model, influence_heads=16), PROMPT, QWEN_TOKENS)
    del model
    peak_mb = measure_peak()
    for name, value in steps.items():
        print(f"{name:>22}: {value:9.1f}")
    print(f"{'load_2048_peak_mb':>22}: {peak_mb:9.1f}")
    result = {
        "append_over_decode": round(steps["append_ms"] / steps["decode_ms"], 3),
        "pop_ms": round(steps["pop_ms"], 3),
        "load_over_prefill": round(steps["load_ms"] / steps["prefill_ms"], 3),
        "per_key_speedup": round(steps["per_key_original_ms"] / steps["append_ms"], 1),
        "load_2048_peak_mb": round(peak_mb, 1),
    }
    if "--skip-default" not in sys.argv:
        default = measure_default()
        print(f"default model {default['name']}, {default['prompt']}-token prompt, --layer_prob on:")
        for name, value in default.items():
            if name not in ("name", "prompt"):
                print(f"{name:>22}: {value:9.3f}" if name == "load_s" else f"{name:>22}: {value:9.1f}")
        result |= {
            "default_model": default["name"],
            "default_append_over_decode": round(default["append_ms"] / default["decode_ms"], 3),
            "default_load_over_prefill": round(default["load_ms"] / default["prefill_ms"], 3),
            "default_model_load_s": round(default["load_s"], 3),
        }
    result["device"] = "cpu"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
