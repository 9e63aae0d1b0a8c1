"""What an append through a server costs us on top of the server's own work.

    uv run python benchmarks/remote_latency.py [--model embedded|mid] [--reps 30]

Starts vLLM and llama-server on 127.0.0.1 (installed by tools/install_servers.sh) serving
the same weights, loads a 256-token prompt, then appends one token and pops it again, many
times, interleaved with the reference request:
- llama.cpp: the reference is the server's own time for that request, from the `timings`
  it returns (prompt_ms + predicted_ms: one decode step through `cache_prompt`, and the
  sampling), so the ratio is our whole wall time over the server's compute.
- vLLM: the reference is a bare `/v1/completions` request of one token on the same ids
  (same prefix cache state), timed from this process; vLLM reports no timings.
`--model mid` uses a random-weight Llama with the embedded tokenizer, 12 layers of width
768 (~100M parameters), where a decode step is real work; on the embedded model (6 layers
of width 256) the step is so small that a fixed cost per request dominates any ratio.
Medians of interleaved repetitions; the last line is one JSON object.
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
from servers import CACHE, gguf_for, llama_server, vllm_server  # noqa: E402

from explorer.config import EMBEDDED_MODEL_DIR  # noqa: E402
from explorer.remote import open_remote  # noqa: E402

PROMPT = 256


def mid_model() -> Path:
    """A random-weight Llama with the embedded tokenizer, built once into the cache."""
    out = CACHE / "bench-mid-llama"
    if (out / "model.safetensors").exists():
        return out
    import shutil

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=8192, hidden_size=768, intermediate_size=2048,
                         num_hidden_layers=12, num_attention_heads=12, num_key_value_heads=4,
                         max_position_embeddings=1024, tie_word_embeddings=True,
                         bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = LlamaForCausalLM(config).float()
    tmp = Path(tempfile.mkdtemp(dir=CACHE))
    model.save_pretrained(tmp)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(EMBEDDED_MODEL_DIR / name, tmp / name)
    tmp.rename(out)
    return out


def prompt_ids(backend) -> tuple[int, ...]:
    text = (ROOT / "prompts" / "default.txt").read_text(encoding="utf-8") * 20
    return tuple(backend.encode(text)[:PROMPT])


def bench_llama(url: str, reps: int) -> dict:
    backend = open_remote(url, tokens_to_show=20)
    ids = prompt_ids(backend)
    top = backend.sync("b", ids)[-1].top
    bare = httpx.Client(base_url=url, timeout=120)
    ratios, walls, server, bare_walls, health, in_http = [], [], [], [], [], []
    post, http_ms = backend.client.post, []

    def timed_post(path, body, **kwargs):  # our append's time inside its HTTP call
        start = time.perf_counter()
        try:
            return post(path, body, **kwargs)
        finally:
            http_ms.append((time.perf_counter() - start) * 1000)

    backend.client.post = timed_post
    for rep in range(reps + 3):
        t = top[rep % 5].token_id
        http_ms.clear()
        start = time.perf_counter()
        backend.sync("b", ids + (t,))
        wall = (time.perf_counter() - start) * 1000
        requests_ms = sum(http_ms)
        timings = backend.last_timings or {}
        own = float(timings.get("prompt_ms", 0)) + float(timings.get("predicted_ms", 0))
        backend.sync("b", ids)  # pop: no request
        # The same request by hand (no records, no text): what HTTP and the server's
        # work outside its own timings cost, apart from ours.
        start = time.perf_counter()
        bare.post("/completion", json={"prompt": list(ids + (t,)), "n_predict": 1, "n_probs": 20,
                                       "cache_prompt": True, "temperature": 0}).raise_for_status()
        bare_ms = (time.perf_counter() - start) * 1000
        # The server's smallest round trip (no model work): its fixed cost per request.
        start = time.perf_counter()
        bare.get("/health").raise_for_status()
        health_ms = (time.perf_counter() - start) * 1000
        if rep >= 3:  # warm-up: text lookups of new candidates, first cache fills
            health.append(health_ms)
            in_http.append(requests_ms)
            walls.append(wall)
            server.append(own)
            ratios.append(wall / own)
            bare_walls.append(bare_ms)
    bare.close()
    backend.close()
    return {"append_ms": statistics.median(walls), "server_ms": statistics.median(server),
            "append_over_server": statistics.median(ratios),
            "same_request_ms": statistics.median(bare_walls),
            "append_over_same_request": statistics.median(walls) / statistics.median(bare_walls),
            "health_ms": statistics.median(health),
            "ours_outside_http_ms": statistics.median(w - h for w, h in zip(walls, in_http)),
            "append_minus_server_ms": statistics.median(w - s for w, s in zip(walls, server))}


def bench_vllm(url: str, reps: int) -> dict:
    backend = open_remote(url, tokens_to_show=20)
    ids = prompt_ids(backend)
    top = backend.sync("b", ids)[-1].top
    bare = httpx.Client(base_url=url, timeout=120)
    ours, ref, ref_same = [], [], []
    for rep in range(reps + 3):
        t = top[rep % 5].token_id
        start = time.perf_counter()
        backend.sync("b", ids + (t,))
        a = time.perf_counter() - start
        backend.sync("b", ids)
        start = time.perf_counter()
        bare.post("/v1/completions", json={"model": backend.model, "prompt": list(ids + (t,)),
                                           "max_tokens": 1, "temperature": 0}).raise_for_status()
        b = time.perf_counter() - start
        start = time.perf_counter()
        bare.post("/v1/completions", json={"model": backend.model, "prompt": list(ids + (t,)),
                                           "max_tokens": 1, "temperature": 0, "logprobs": backend.top_k,
                                           "return_tokens_as_token_ids": True}).raise_for_status()
        c = time.perf_counter() - start
        if rep >= 3:
            ours.append(a * 1000)
            ref.append(b * 1000)
            ref_same.append(c * 1000)
    bare.close()
    backend.close()
    return {"append_ms": statistics.median(ours), "bare_ms": statistics.median(ref),
            "append_over_bare": statistics.median(ours) / statistics.median(ref),
            "same_request_ms": statistics.median(ref_same),
            "append_over_same_request": statistics.median(ours) / statistics.median(ref_same)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["embedded", "mid"], default="mid")
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--only", choices=["vllm", "llama"], default=None)
    args = parser.parse_args()
    model_dir = EMBEDDED_MODEL_DIR if args.model == "embedded" else mid_model()
    logs = Path(tempfile.mkdtemp(prefix="remote-bench-"))
    out = {"model": args.model, "prompt_tokens": PROMPT, "reps": args.reps}
    if args.only in (None, "llama"):
        server = llama_server(logs, gguf_for(model_dir))
        try:
            out["llama.cpp"] = bench_llama(server.start().url, args.reps)
        finally:
            server.stop()
        print("llama.cpp:", out["llama.cpp"], flush=True)
    if args.only in (None, "vllm"):
        server = vllm_server(logs, model_dir)
        try:
            out["vLLM"] = bench_vllm(server.start().url, args.reps)
        finally:
            server.stop()
        print("vLLM:", out["vLLM"], flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
