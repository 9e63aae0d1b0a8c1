"""Re-measure the shipped tiny model's held-out perplexity on a clean split.

    uv run python tools/measure_default_model.py

The shipped weights (explorer/default_model) were trained before the training script
dropped exact duplicate documents, so some held-out documents (the same fortune cookie in
several files) also sat in its training split. This script rebuilds that exact split (the
same corpus and seed, duplicates kept, as the model saw it), checks that it reproduces the
split's published sizes, drops every held-out document whose text also occurs in the
training split, and scores the rest the way the training script does (non-overlapping
512-token windows, fp32). Nothing is trained; the corpus comes from Debian packages into
.corpus/ (gitignored), as for training.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_default_model as tdm  # noqa: E402


def corpus_with_duplicates(corpus: Path) -> list[tuple[str, str]]:
    """The document list exactly as the shipped model's build saw it (before de-duplication)."""
    roots = tdm.fetch_packages(corpus)
    docs = tdm.python_docs(roots["python3.11-doc"])
    docs += tdm.bible(roots["bible-kjv-text"], roots["bible-kjv"])
    docs += tdm.fortunes([roots["fortunes-min"], roots["fortunes"]])
    return docs


def normalised(text: str) -> str:
    return " ".join(text.split())  # the training script's duplicate key


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default=str(tdm.ROOT / ".corpus"))
    p.add_argument("--model", default=str(tdm.ROOT / "explorer/default_model"))
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--heldout-frac", type=float, default=0.02)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    docs = corpus_with_duplicates(Path(a.corpus))
    train, held = tdm.split_docs(docs, a.heldout_frac, a.seed)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    train_tokens, held_tokens = len(tdm.encode_docs(tok, train)), len(tdm.encode_docs(tok, held))
    tdm.log(f"rebuilt split: {len(train)} train docs ({train_tokens:,} tokens), "
            f"{len(held)} held-out docs ({held_tokens:,} tokens)")

    seen = {normalised(t) for _, t in train}
    clean = [(s, t) for s, t in held if normalised(t) not in seen]
    leaked = len(held) - len(clean)
    by_source = {name: sum(1 for s, t in held if s == name and normalised(t) in seen)
                 for name in ("python-docs", "kjv-bible", "fortunes")}
    tdm.log(f"held-out documents also in the training split: {leaked} {by_source}")

    result = {"train_docs": len(train), "train_tokens": train_tokens, "held_docs": len(held),
              "held_tokens": held_tokens, "leaked_docs": leaked, "leaked_by_source": by_source}
    for label, part in (("heldout_as_published", held), ("heldout_clean", clean)):
        ids = tdm.encode_docs(tok, part)
        ppl, scored = tdm.perplexity(model, ids, a.seq)
        result[label] = {"docs": len(part), "scored_tokens": scored, "ppl": round(ppl, 2)}
        tdm.log(f"{label}: {len(part)} docs, {scored:,} scored tokens, perplexity {ppl:.2f}")
    sample = (tdm.ROOT / "tests/data/heldout.txt").read_text(encoding="utf-8")
    in_train = sum(1 for d in sample.split(tdm.EOT) if normalised(d) in seen)
    result["test_sample_docs_in_train"] = in_train
    tdm.log(f"tests/data/heldout.txt documents also in the training split: {in_train}")
    print(json.dumps(result))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
