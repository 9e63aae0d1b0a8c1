"""What pinning a token costs on vLLM: tracked log-probs at every position of a 256-token
prompt (explorer.remote.tracking: every prefix, 32 per request) against one plain
`/v1/completions` request of one token on the same ids.

    uv run python benchmarks/tracked_remote.py [--reps 5] [--block-size N] [--url URL]

Starts vLLM on 127.0.0.1 serving the embedded model (installed by tools/install_servers.sh)
unless --url names a running one; --block-size is passed to the server (vLLM's CPU
backend uses 128 by default and takes multiples of 32; GPUs default to 16). Each rep pins
a token not pinned before (nothing cached), then appends one token and fetches again (one
prefix). From the server's own /metrics it also reports how many prompt tokens the server
computed per prefix (prompt tokens minus prefix-cache hits): the prefix cache leaves only
the tail past the last full KV block. Medians of interleaved reps; the last line is one
JSON object.
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

import httpx  # noqa: E402

from explorer.remote import open_remote  # noqa: E402
from explorer.remote.tracking import CHUNK  # noqa: E402

PROMPT = 256


def server_counters(client: httpx.Client) -> dict[str, float]:
    """vLLM's prompt-token and prefix-cache counters (Prometheus text at /metrics)."""
    wanted = ("vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total")
    out = dict.fromkeys(wanted, 0.0)
    for line in client.get("/metrics").text.splitlines():
        for name in wanted:
            if line.startswith(name + "{"):
                out[name] += float(line.rsplit(" ", 1)[1])
    return out


def computed(before: dict, after: dict) -> float:
    queried = after["vllm:prefix_cache_queries_total"] - before["vllm:prefix_cache_queries_total"]
    hits = after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"]
    return queried - hits


def bench(url: str, reps: int) -> dict:
    backend = open_remote(url, tokens_to_show=20)
    text = (ROOT / "prompts" / "default.txt").read_text(encoding="utf-8") * 20
    ids = tuple(backend.encode(text)[:PROMPT])
    backend.sync("b", ids)
    bare = httpx.Client(base_url=url, timeout=300)
    body = {"model": backend.model, "prompt": list(ids), "max_tokens": 1, "temperature": 0,
            "logprobs": 20}
    bare.post("/v1/completions", json=body).raise_for_status()  # warm: same cache state
    pins, plains, appends, per_prefix = [], [], [], []
    for rep in range(reps):
        token = 1000 + rep  # never pinned before: every position is fetched
        t = time.perf_counter()
        bare.post("/v1/completions", json=body).raise_for_status()
        plains.append(time.perf_counter() - t)
        before = server_counters(bare)
        t = time.perf_counter()
        backend.tracked("b", [token])
        pins.append(time.perf_counter() - t)
        per_prefix.append(computed(before, server_counters(bare)) / len(ids))
        backend.sync("b", ids + (263,))
        t = time.perf_counter()
        backend.tracked("b", [token])  # the new position only
        appends.append(time.perf_counter() - t)
        backend.sync("b", ids)
    backend.close()
    pin, plain = statistics.median(pins), statistics.median(plains)
    return {"prompt": len(ids), "requests_per_pin": -(-len(ids) // CHUNK),
            "pin_s": round(pin, 3), "plain_request_s": round(plain, 4),
            "pin_over_plain": round(pin / plain, 1),
            "refetch_after_append_s": round(statistics.median(appends), 4),
            "tokens_computed_per_prefix": round(statistics.median(per_prefix), 1),
            "load_average": round(os.getloadavg()[0], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--block-size", type=int, default=None)
    parser.add_argument("--url", default=None, help="a running vLLM server instead of starting one")
    args = parser.parse_args()
    if args.url is not None:
        result = bench(args.url, args.reps)
    else:
        from servers import vllm_server

        from explorer.config import EMBEDDED_MODEL_DIR

        extra = () if args.block_size is None else ("--block-size", str(args.block_size))
        server = vllm_server(Path(tempfile.mkdtemp()), EMBEDDED_MODEL_DIR, *extra)
        try:
            result = bench(server.start().url, args.reps)
        finally:
            server.stop()
    # With --url, --block-size only labels the result (the running server has its own).
    result["block_size"] = args.block_size or "server default"
    print(f"pin on {result['prompt']} tokens: {result['pin_s']} s in {result['requests_per_pin']} "
          f"requests, {result['pin_over_plain']}x one plain request ({result['plain_request_s']} s); "
          f"after an append {result['refetch_after_append_s']} s; the server computed "
          f"{result['tokens_computed_per_prefix']} prompt tokens per prefix")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
