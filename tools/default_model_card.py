"""Print the README's greedy continuations of the default model (SmolLM2-135M-Instruct).

    uv run python tools/default_model_card.py

Loads the model the way the app does (the built-in "smollm2", from its cache), then runs
transformers' greedy `generate` on each prompt; prints a Markdown table.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from explorer.config import ModelSettings  # noqa: E402
from explorer.engine.loading import load_pretrained  # noqa: E402

PROMPTS = ["The meaning of life is", "In the beginning", "To open a file in Python,",
           "Once upon a time", "The best way to learn"]
NEW_TOKENS = 40


def main() -> None:
    settings = ModelSettings(name="smollm2", device="cpu")
    model, tok = load_pretrained(settings.name, settings.path_or_id, "float32", "cpu")
    print(f"{NEW_TOKENS} new tokens, greedy (`do_sample=False`), no chat template.\n")
    print("| prompt | continuation |\n|---|---|")
    for prompt in PROMPTS:
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=NEW_TOKENS, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
        text = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=False)
        cell = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "\\n")
        print(f"| `{prompt}` | `` {cell} `` |")


if __name__ == "__main__":
    main()
