"""What `trace --server --track` costs on vLLM for the generated steps, against plain
`trace --server` on the same prompt and the same greedy completion.

    uv run python benchmarks/trace_tracked_vllm.py [--runs 3] [--new 32] [--url URL]

Three timings per run, interleaved, each the generation loop of `trace` (explorer.core.trace:
one append request per step) followed by what it takes to read the tracked tokens of the
generated steps (Backend.tracked; the prompt positions are fetched before the clock starts,
so only the steps are timed):
- plain: no tracked tokens;
- per-step: Backend.follow before the loop, so each step's tracked ids go out with the
  step's own request (issue 26) and tracked() asks for nothing more;
- batched: the way before issue 26: every generated position afterwards through the
  prefix batches of explorer.remote.tracking (32 prefixes per request).
Each run tracks token ids not tracked before (nothing cached). Starts vLLM on 127.0.0.1
serving the embedded model (tools/install_servers.sh) unless --url names a running one.
The last line is one JSON object, with the 1-minute load average at the start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from explorer.core.trace import trace  # noqa: E402
from explorer.remote import open_remote  # noqa: E402

PROMPT_TOKENS = 200  # long enough that a prefix's tail past the last KV block costs work


def one(url: str, ids: tuple[int, ...], new: int, tokens: list[int] | None, per_step: bool) -> float:
    backend = open_remote(url, tokens_to_show=5)
    try:
        if tokens:
            backend.sync("p", ids)
            backend.tracked("p", tokens)  # the prompt positions: not what is measured
        if tokens and per_step:
            backend.follow("t", tokens)
        start = time.perf_counter()
        result = trace(backend, ids, new, key="t", stop_ids=(), forget=False)
        if tokens:
            backend.tracked("t", tokens)
        took = time.perf_counter() - start
        assert len(result.completion_ids) == new
        return took
    finally:
        backend.close()


def bench(url: str, runs: int, new: int) -> dict:
    probe = open_remote(url, tokens_to_show=5)
    text = (ROOT / "prompts" / "default.txt").read_text(encoding="utf-8") * 20
    ids = tuple(probe.encode(text)[:PROMPT_TOKENS])
    probe.close()
    one(url, ids, new, None, False)  # warm the server's prefix cache for the prompt
    load = [round(os.getloadavg()[0], 2)]
    rows = []
    for run in range(runs):
        tokens = [1000 + 3 * run, 1001 + 3 * run, 1002 + 3 * run]  # new every run
        plain = one(url, ids, new, None, False)
        per_step = one(url, ids, new, tokens, True)
        batched = one(url, ids, new, [t + 4000 for t in tokens], False)
        rows.append({"plain_s": round(plain, 3), "per_step_s": round(per_step, 3),
                     "batched_s": round(batched, 3), "per_step_over_plain": round(per_step / plain, 2),
                     "batched_over_plain": round(batched / plain, 2)})
        print(f"run {run + 1}: plain {plain:.3f} s, tracked per step {per_step:.3f} s "
              f"({per_step / plain:.2f}x), tracked by prefix batches {batched:.3f} s "
              f"({batched / plain:.2f}x) for {new} steps", flush=True)
    load.append(round(os.getloadavg()[0], 2))
    return {"prompt_tokens": len(ids), "steps": new, "tracked_tokens": 3, "runs": rows,
            "median_per_step_over_plain": statistics.median(r["per_step_over_plain"] for r in rows),
            "median_batched_over_plain": statistics.median(r["batched_over_plain"] for r in rows),
            "load_average_1min": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--new", type=int, default=32, help="generated steps per trace")
    parser.add_argument("--url", default=None, help="a running vLLM server instead of starting one")
    args = parser.parse_args()
    if args.url is not None:
        result = bench(args.url, args.runs, args.new)
    else:
        from servers import vllm_server

        from explorer.config import EMBEDDED_MODEL_DIR

        server = vllm_server(Path(tempfile.mkdtemp()), EMBEDDED_MODEL_DIR)
        try:
            result = bench(server.start().url, args.runs, args.new)
        finally:
            server.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
