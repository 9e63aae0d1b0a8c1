"""Shared fixtures: a tiny byte-level BPE tokenizer and tiny random-weight causal LMs.

Nothing is downloaded: HF_HUB_OFFLINE is set before transformers is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402

# Real vLLM / llama.cpp servers for the remote-backend tests (tests/servers.py).
pytest_plugins = ("servers",)

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Token Explorer shows what a language model predicts, one token at a time.",
    "Attention heads look back at earlier positions; the logit lens reads each layer.",
    "def add(a, b):\n\treturn a + b\n",
    "Numbers 0123456789 and café, naïve, 東京, emoji 🙂.",
]


def build_tokenizer(vocab_size: int = 320):
    """A byte-level BPE (GPT-2 style) trained on a few sentences, with a BOS token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<bos>", "<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TEXTS * 4, trainer)
    bos = tok.token_to_id("<bos>")
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", special_tokens=[("<bos>", bos)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>")


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()


def tiny_model(family: str, vocab_size: int, seed: int = 0, **overrides):
    """A random-weight causal LM of the given family, small enough for CPU tests."""
    import torch
    from transformers import (
        Gemma2Config,
        Gemma2ForCausalLM,
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    torch.manual_seed(seed)
    common = dict(vocab_size=vocab_size, bos_token_id=0, eos_token_id=1, pad_token_id=None)
    if family == "llama":
        cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=256, **common)
        cls = LlamaForCausalLM
    elif family == "qwen2":
        cfg = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=4, num_key_value_heads=2,
                          max_position_embeddings=256, tie_word_embeddings=True, **common)
        cls = Qwen2ForCausalLM
    elif family == "gpt2":
        cfg = GPT2Config(n_embd=32, n_layer=3, n_head=4, n_positions=256, **common)
        cls = GPT2LMHeadModel
    elif family == "gemma2":
        cfg = Gemma2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=4,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                           max_position_embeddings=256, sliding_window=6,
                           final_logit_softcapping=3.0, attn_logit_softcapping=20.0,
                           query_pre_attn_scalar=8, **common)
        cls = Gemma2ForCausalLM
    else:
        raise ValueError(family)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    model = cls(cfg).eval()
    # Random init is tiny; larger weights give peaked, varied distributions worth testing.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.normal_(0.0, 0.3)
    return model


@pytest.fixture(scope="session")
def make_engine(tokenizer):
    """make_engine(family, **engine_kwargs) -> Engine around a fresh tiny model."""
    from explorer.engine import Engine

    def make(family: str = "llama", *, seed: int = 0, model_overrides=None, **kwargs):
        model = tiny_model(family, len(tokenizer), seed=seed, **(model_overrides or {}))
        return Engine.from_pretrained_objects(model, tokenizer, name=f"tiny-{family}", **kwargs)

    return make
