"""The embedded default model (explorer/default_model) loads offline and is a real model.

Its held-out perplexity must match the figure in its MODEL_CARD.md (parsed here, so card
and test cannot drift) and be far below the card's unigram baseline on the same text.
"""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import math
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "explorer" / "default_model"
HELDOUT = Path(__file__).resolve().parent / "data" / "heldout.txt"


def card_value(key: str) -> float:
    text = (MODEL_DIR / "MODEL_CARD.md").read_text(encoding="utf-8")
    m = re.search(rf"^\s*{re.escape(key)}:\s*([0-9.]+)\s*$", text, re.M)
    assert m, f"MODEL_CARD.md lacks '{key}:'"
    return float(m.group(1))


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL_DIR)


@pytest.fixture(scope="module")
def model():
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(MODEL_DIR)
    m.eval()
    return m


def test_files_and_size():
    for name in ("config.json", "model.safetensors", "tokenizer.json",
                 "tokenizer_config.json", "MODEL_CARD.md"):
        assert (MODEL_DIR / name).is_file(), name
    total = sum(f.stat().st_size for f in MODEL_DIR.iterdir() if f.is_file())
    assert total <= 32 * 1024 * 1024, f"default model is {total / 1e6:.1f} MB"


def test_architecture(model):
    cfg = model.config
    assert type(model).__name__ == "LlamaForCausalLM"
    assert cfg.num_hidden_layers >= 6
    assert cfg.num_key_value_heads < cfg.num_attention_heads  # grouped-query attention
    assert cfg.max_position_embeddings >= 1024
    assert model.dtype == torch.float32  # default-dtype load gives fp32
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_tokenizer_round_trip(tokenizer):
    text = "def f(x):\n\treturn x  # tab\r\n\nünïcödé 日本語 🙂 — “quotes”\u00a0end  "
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    # no BOS or anything else added by default
    assert tokenizer(text)["input_ids"] == ids
    assert len(tokenizer) == 8192


def test_special_tokens_and_chat_template(tokenizer):
    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert tokenizer.eos_token == "<|endoftext|>"
    for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        ids = tokenizer(t, add_special_tokens=False)["input_ids"]
        assert len(ids) == 1 and ids[0] != tokenizer.unk_token_id, t
    ids = tokenizer("one<|endoftext|>two", add_special_tokens=False)["input_ids"]
    assert eot in ids
    assert tokenizer.chat_template
    chat = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        tokenize=False, add_generation_prompt=True)
    assert chat == ("<|im_start|>system\nBe brief.<|im_end|>\n"
                    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


@torch.no_grad()
def heldout_perplexity(model, tokenizer, window: int, batch: int = 8) -> float:
    """Same computation as tools/train_default_model.py:perplexity (non-overlapping
    windows; every token but the first of a window is scored; fp32)."""
    text = HELDOUT.read_text(encoding="utf-8")
    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])
    windows = [ids[k:k + window] for k in range(0, len(ids) - 1, window)]
    windows = [w for w in windows if len(w) > 1]
    nll, count = 0.0, 0
    for k in range(0, len(windows), batch):
        group = windows[k:k + batch]
        L = max(len(w) for w in group)
        x = torch.zeros((len(group), L), dtype=torch.long)
        mask = torch.zeros((len(group), L), dtype=torch.long)
        for r, w in enumerate(group):
            x[r, :len(w)] = w
            mask[r, :len(w)] = 1
        logits = model(input_ids=x, attention_mask=mask).logits.float()
        lp = torch.log_softmax(logits[:, :-1], dim=-1)
        tl = lp.gather(-1, x[:, 1:].unsqueeze(-1)).squeeze(-1)
        m = mask[:, 1:].bool()
        nll -= tl[m].double().sum().item()
        count += int(m.sum())
    assert count > 5000, "held-out sample is too small"
    return math.exp(nll / count)


def test_heldout_perplexity(model, tokenizer):
    assert 30_000 <= HELDOUT.stat().st_size <= 60_000
    window = int(card_value("eval_window"))
    assert window <= model.config.max_position_embeddings
    card_ppl = card_value("heldout_sample_ppl")
    unigram_ppl = card_value("heldout_sample_unigram_ppl")
    ppl = heldout_perplexity(model, tokenizer, window)
    # the card is written from the same computation; allow only float noise
    assert ppl <= card_ppl * 1.001, (ppl, card_ppl)
    assert ppl < 0.5 * unigram_ppl, (ppl, unigram_ppl)


def test_greedy_generation_runs(model, tokenizer):
    x = tokenizer("In the beginning", return_tensors="pt")
    out = model.generate(**x, max_new_tokens=8, do_sample=False,
                         pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == x["input_ids"].shape[1] + 8
    text = tokenizer.decode(out[0])
    assert text.startswith("In the beginning")
