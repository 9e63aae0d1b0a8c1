"""Peak memory of tracking on a 2,048-token prompt, measured, not assumed.

tracemalloc cannot see torch's CPU allocations, so each mode runs in a fresh Python
process and reports the growth of its peak resident set (ru_maxrss) over the run, after
a warm-up. A tiny Llama with a 32,768-token vocabulary makes the logits dominate: a plain
full forward holds N x V x 4 bytes (268 MB) of logits, which the same measurement must see,
while tracking in chunks of 256 through a KV cache must stay far below it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

N, V, CHUNK = 2048, 32768, 256
TESTS = Path(__file__).resolve().parent

SCRIPT = f"""
import json, resource, sys
sys.path[:0] = [{str(TESTS)!r}, {str(TESTS.parent)!r}]
import torch
from conftest import tiny_model
from explorer.engine.tracked import track

torch.set_num_threads(1)
model = tiny_model("llama", {V}, seed=0, max_position_embeddings={N})
ids = torch.randint(0, {V}, ({N},), generator=torch.Generator().manual_seed(0)).tolist()
mode = sys.argv[1]

def run(prompt):
    if mode == "track":
        return track(model, prompt, [1, 2, 3], chunk={CHUNK})
    with torch.inference_mode():
        return torch.log_softmax(model(torch.tensor([prompt])).logits[0].float(), -1)[:, [1, 2, 3]]

run(ids[:32])  # warm-up: kernels, thread pools, allocator
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
run(ids)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_growth_bytes": (after - before) * 1024}}))
"""


def peak_growth(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_growth_bytes"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in KiB is Linux's")
def test_tracking_a_long_prompt_never_holds_n_by_vocab():
    full_logits = N * V * 4
    full = peak_growth("full")
    tracked = peak_growth("track")
    # The measurement sees an N x V tensor when there is one...
    assert full > 0.9 * full_logits, full
    # ...and tracking stays far below: one chunk's logits plus a few rows of log-probs.
    assert tracked < 0.3 * full_logits, (tracked, full_logits)
    print(f"peak growth: full forward {full / 2**20:.0f} MiB, tracked {tracked / 2**20:.0f} MiB, "
          f"N x V x 4 = {full_logits / 2**20:.0f} MiB")
