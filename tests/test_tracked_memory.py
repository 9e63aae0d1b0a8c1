"""Peak memory of tracking on a 2,048-token prompt, measured, not assumed.

tracemalloc cannot see torch's CPU allocations, so each mode runs in a fresh Python
process and reports the growth of its peak resident set over the run, after a warm-up:
VmHWM from /proc/self/status, reset to the current RSS first where the kernel allows
(not ru_maxrss: Linux carries the parent's peak into a forked child across exec, so under
a big pytest process it reads as zero growth). A tiny Llama with a 32,768-token vocabulary makes the logits dominate: a plain
full forward holds N x V x 4 bytes (268 MB) of logits, which the same measurement must see,
while tracking in chunks of 256 through a KV cache must stay far below it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

N, V, CHUNK = 2048, 32768, 256
TESTS = Path(__file__).resolve().parent

SCRIPT = f"""
import json, sys
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

def peak_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

run(ids[:32])  # warm-up: kernels, thread pools, allocator
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak to the current RSS
except OSError:
    pass
before = peak_kib()
run(ids)
after = peak_kib()
print(json.dumps({{"peak_growth_bytes": (after - before) * 1024}}))
"""


def peak_growth(mode: str) -> int:
    # Large blocks straight from mmap, so freed tensors leave the resident set at once and
    # the peak measures what the code holds, not what glibc's heap keeps around.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         check=True, timeout=300, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_growth_bytes"]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_tracking_a_long_prompt_never_holds_n_by_vocab():
    full_logits = N * V * 4
    full = peak_growth("full")
    tracked = peak_growth("track")
    # The measurement sees an N x V tensor when there is one...
    assert full > 0.9 * full_logits, full
    # ...and tracking stays far below: one chunk's logits plus a few rows of log-probs.
    assert tracked < 0.35 * full_logits, (tracked, full_logits)
    print(f"peak growth: full forward {full / 2**20:.0f} MiB, tracked {tracked / 2**20:.0f} MiB, "
          f"N x V x 4 = {full_logits / 2**20:.0f} MiB")
