"""Token-tree speed and memory on the embedded model, measured in one run.

    uv run python benchmarks/tree_speed.py [--reps 3] [--nodes 200] [--batch 1]

Speed: nodes per second of Engine.grow_tree against the rate of one bare transformers
decode step (a one-token forward on a DynamicCache after the same prompt), measured
interleaved (bare, tree, bare, tree, ...) so load on a shared machine hits both sides.
The issue's target: nodes/s >= 0.75 x bare steps/s. `expansions_over_steps` is the same
ratio per forward pass (each expansion is one model call that may open several nodes).

Memory: peak resident-set growth (VmHWM, reset after warm-up) while growing trees of
increasing node limits, each in a fresh process; it should stay flat in the number of
nodes apart from the tree's own cache budget (TreeSettings.cache_mib: the forks kept
for reuse; a small budget here so that the trees go well past it). The last line is one JSON object.
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from explorer.config import REPO_DIR, ModelSettings  # noqa: E402
from explorer.tree import TreeSettings  # noqa: E402

MEMORY_NODES = (150, 450, 1350)
MEMORY_BUDGET_MIB = 8  # a small tree cache budget, so the node counts go well past it
WIDE = dict(t_min=0.02, t_max=0.2, q_limit=8, max_depth=16)  # trees that reach the node limits


def load_engine():
    from explorer.engine import Engine

    return Engine.load(ModelSettings(name="embedded"))


def prompt_ids(engine) -> list[int]:
    return engine.encode((REPO_DIR / "prompts" / "default.txt").read_text(encoding="utf-8"))


@torch.inference_mode()
def bare_steps(model, ids: list[int], steps: int) -> float:
    """Seconds per bare decode step (greedy tokens) after a prefill of `ids`."""
    from transformers import DynamicCache

    cache = DynamicCache()
    out = model(input_ids=torch.tensor([ids]), past_key_values=cache, use_cache=True)
    token = int(out.logits[0, -1].argmax())
    start = time.perf_counter()
    for _ in range(steps):
        out = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
        token = int(out.logits[0, -1].argmax())
    return (time.perf_counter() - start) / steps


def measure_speed(reps: int, nodes: int, batch: int) -> dict:
    engine = load_engine()
    ids = prompt_ids(engine)
    engine.sync("bench", ids)
    settings = TreeSettings(max_nodes=nodes, batch=batch, **WIDE)
    engine.grow_tree("bench", TreeSettings(max_nodes=10))  # warm-up
    bare_steps(engine.model, ids, 4)
    runs = []
    for _ in range(reps):
        step = bare_steps(engine.model, ids, 32)
        start = time.perf_counter()
        tree = engine.grow_tree("bench", settings)
        seconds = time.perf_counter() - start
        runs.append(dict(step_ms=step * 1e3, tree_s=seconds, nodes=tree.size,
                         expansions=tree.forward_passes,
                         nodes_over_steps=(tree.size / seconds) * step,
                         expansions_over_steps=(tree.forward_passes / seconds) * step))
    return dict(prompt_tokens=len(ids), runs=runs,
                nodes_over_steps=statistics.median(r["nodes_over_steps"] for r in runs),
                expansions_over_steps=statistics.median(r["expansions_over_steps"] for r in runs))


def _hwm_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))


def memory_child(nodes: int, batch: int) -> None:
    engine = load_engine()
    ids = prompt_ids(engine)
    engine.sync("bench", ids)
    deep = {**WIDE, "max_depth": 48}
    settings = TreeSettings(max_nodes=nodes, batch=batch, cache_mib=MEMORY_BUDGET_MIB, **deep)
    engine.grow_tree("bench", TreeSettings(max_nodes=20, batch=batch, **WIDE))  # warm-up
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _hwm_kib()
    tree = engine.grow_tree("bench", settings)
    print(json.dumps(dict(nodes=tree.size, peak_extra_mib=(_hwm_kib() - base) / 1024,
                          cache_budget_mib=MEMORY_BUDGET_MIB)))


def measure_memory(batch: int) -> list[dict]:
    rows = []
    for nodes in MEMORY_NODES:
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(nodes), "--batch", str(batch)],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.batch)
        return
    speed = measure_speed(args.reps, args.nodes, args.batch)
    for r in speed["runs"]:
        print(f"bare step {r['step_ms']:.1f} ms | tree {r['nodes']} nodes, {r['expansions']} "
              f"expansions in {r['tree_s']:.2f} s | nodes/s over steps/s {r['nodes_over_steps']:.2f} | "
              f"expansions/s over steps/s {r['expansions_over_steps']:.2f}")
    memory = measure_memory(args.batch)
    for m in memory:
        print(f"tree of {m['nodes']} nodes: peak extra {m['peak_extra_mib']:.1f} MiB "
              f"(cache budget {m['cache_budget_mib']:.2f} MiB)")
    print(json.dumps(dict(batch=args.batch, device="cpu", **{k: v for k, v in speed.items() if k != "runs"},
                          memory=memory)))


if __name__ == "__main__":
    main()
