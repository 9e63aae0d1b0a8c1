"""Step time with and without a JSON-schema constraint on the default model (SmolLM2-135M-Instruct).

    uv run python benchmarks/constraint.py [--steps 24] [--reps 3]

One step = the engine's append (one decode step on the KV cache), its logits row, and
Sampler.pick (the path of `space`, autoplay and trace: with the constraint llguidance's
mask, then the sampler pipeline and the seeded draw); `sampler_ms_*` time Sampler.pick
alone. The unconstrained run draws freely; the two alternate rep by rep in one process. A
forward hook counts the model's forward passes, so "no extra forward pass" is a count, not a claim. The last line is one
JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCHEMA = {"type": "object",
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                         "tags": {"type": "array", "items": {"type": "string"}}},
          "required": ["name", "age", "tags"], "additionalProperties": False}
PROMPT = "Here is the record as JSON:"
FORWARDS = [0]  # the model's forward passes, counted by a hook


def run(engine, constraint, steps: int, seed: int, key) -> dict:
    """`steps` appends through the session's Sampler, the path `space`, autoplay and trace
    take (Sampler.pick: the constraint's mask, the pipeline, the seeded draw)."""
    from explorer.sampling import SamplingSettings
    from explorer.sampling.constraint import ConstraintError
    from explorer.session.sampler import Sampler

    sampler = Sampler(SamplingSettings(temperature=1.0, seed=seed))
    sampler.set_constraint(constraint)
    prompt = engine.encode(PROMPT)
    ids = list(prompt)
    engine.sync(key, ids)
    start = FORWARDS[0]  # count the steps' passes only, not the prompt's prefill
    step_s, sampler_s = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        row = engine.next_logits(key)
        s0 = time.perf_counter()
        try:
            token = sampler.pick(row, ids, len(prompt))
        except ConstraintError:
            break  # complete: nothing may follow
        sampler_s.append(time.perf_counter() - s0)
        if constraint is not None and token in constraint.eos_ids:
            break  # the JSON is complete; both runs are timed per step
        ids.append(token)
        engine.sync(key, ids)
        step_s.append(time.perf_counter() - t0)
    engine.forget(key)
    return {"step_s": step_s, "sampler_s": sampler_s, "forwards": FORWARDS[0] - start,
            "text": engine.decode(ids[len(prompt):])}


def main() -> None:
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    steps, reps = int(args.get("--steps", 24)), int(args.get("--reps", 3))
    from explorer.config import ModelSettings
    from explorer.engine import Engine
    from explorer.sampling.constraint import Constraint, ConstraintSpec

    engine = Engine.load(ModelSettings())
    t0 = time.perf_counter()
    constraint = Constraint.for_tokenizer(ConstraintSpec("json_schema", json.dumps(SCHEMA)),
                                          engine.tokenizer, engine.vocab_size)
    compile_s = time.perf_counter() - t0
    forwards = {"free": 0, "constrained": 0}
    engine.model.register_forward_hook(lambda *a: FORWARDS.__setitem__(0, FORWARDS[0] + 1))
    free, constrained, sampler_free, sampler_constrained, texts = [], [], [], [], []
    n_free = n_constrained = 0
    for rep in range(reps):
        out = run(engine, None, steps, rep, ("free", rep))
        free += out["step_s"]
        sampler_free += out["sampler_s"]
        n_free += len(out["step_s"])
        forwards["free"] += out["forwards"]
        out = run(engine, constraint, steps, rep, ("constrained", rep))
        forwards["constrained"] += out["forwards"]
        constrained += out["step_s"]
        sampler_constrained += out["sampler_s"]
        texts.append(out["text"])
        n_constrained += len(out["step_s"])
    med = statistics.median
    result = {
        "step_ms_free": round(med(free) * 1e3, 2),
        "step_ms_constrained": round(med(constrained) * 1e3, 2),
        "constrained_over_free": round(med(constrained) / med(free), 3),
        "sampler_ms_free": round(med(sampler_free) * 1e3, 3),
        "sampler_ms_constrained": round(med(sampler_constrained) * 1e3, 3),
        "sampler_ms_added": round((med(sampler_constrained) - med(sampler_free)) * 1e3, 3),
        "sampler_ms_constrained_max": round(max(sampler_constrained) * 1e3, 3),
        "forwards_per_step_free": round(forwards["free"] / n_free, 3),
        "forwards_per_step_constrained": round(forwards["constrained"] / n_constrained, 3),
        "compile_s": round(compile_s, 3),
        "device": engine.device.type,
        "model": engine.info.name,
        "vocab": engine.vocab_size,
    }
    for name, value in result.items():
        print(f"{name:>30}: {value}")
    for text in texts:
        print(f"{'constrained text':>30}: {text!r}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
