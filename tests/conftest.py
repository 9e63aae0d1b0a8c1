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


# The decoder shape most families share: 3 layers, 4 query heads over 2 key/value heads.
_DECODER = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)

# family -> (transformers model_type, config keyword arguments). Each entry exercises what
# makes its family different: sliding windows, soft-caps, logit scales, fused or
# partial-rotary attention, tied heads, inline (non-dispatched) attention.
TINY_CONFIGS: dict[str, tuple[str, dict]] = {
    "llama": ("llama", _DECODER),
    "llama-tied": ("llama", dict(_DECODER, tie_word_embeddings=True)),
    "qwen2": ("qwen2", dict(_DECODER, tie_word_embeddings=True)),
    "gpt2": ("gpt2", dict(n_embd=32, n_layer=3, n_head=4, n_positions=256)),
    "gemma2": ("gemma2", dict(_DECODER, num_hidden_layers=4, head_dim=8, sliding_window=6,
                              final_logit_softcapping=3.0, attn_logit_softcapping=20.0,
                              query_pre_attn_scalar=8)),
    "mistral": ("mistral", dict(_DECODER, sliding_window=8)),
    "qwen3": ("qwen3", dict(_DECODER, head_dim=8)),
    "phi3": ("phi3", _DECODER),
    "gpt_neox": ("gpt_neox", dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                                  num_attention_heads=4, max_position_embeddings=256)),
    "opt": ("opt", dict(hidden_size=32, ffn_dim=64, num_hidden_layers=3, num_attention_heads=4,
                        word_embed_proj_dim=32, max_position_embeddings=256)),
    # Falcon computes attention inline, outside transformers' attention interface.
    "falcon": ("falcon", dict(hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                              max_position_embeddings=256)),
    "gemma3": ("gemma3_text", dict(_DECODER, num_hidden_layers=4, head_dim=8, sliding_window=6,
                                   layer_types=["sliding_attention", "full_attention"] * 2,
                                   final_logit_softcapping=3.0, query_pre_attn_scalar=8)),
    "cohere": ("cohere", dict(_DECODER, logit_scale=0.25)),
    "granite": ("granite", dict(_DECODER, logits_scaling=4.0, attention_multiplier=0.3,
                                embedding_multiplier=2.0, residual_multiplier=0.7)),
    "stablelm": ("stablelm", _DECODER),
    "olmo2": ("olmo2", _DECODER),
}


def tiny_model(family: str, vocab_size: int, seed: int = 0, **overrides):
    """A random-weight causal LM of the given family, small enough for CPU tests."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if family not in TINY_CONFIGS:
        raise ValueError(family)
    model_type, kwargs = TINY_CONFIGS[family]
    torch.manual_seed(seed)
    cfg = AutoConfig.for_model(model_type, vocab_size=vocab_size, bos_token_id=0,
                               eos_token_id=1, pad_token_id=None, **kwargs)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    model = AutoModelForCausalLM.from_config(cfg).eval()
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


def count_forwards(engine) -> list[int]:
    """Wrap the engine's model so each forward call records how many positions it was fed;
    returns the list it appends to (tests count passes against it)."""
    calls: list[int] = []
    forward = engine.model.forward

    def counting(*args, **kwargs):
        calls.append(int(kwargs["input_ids"].shape[1]))
        return forward(*args, **kwargs)

    engine.model.forward = counting
    return calls


@pytest.fixture(scope="session")
def embedded_reference():
    """The embedded model loaded by plain transformers (fp32, eval) with its tokenizer: the
    independent computation that tests hold the app's, trace's and the report's numbers to.
    Loaded once per test run."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from explorer.config import EMBEDDED_MODEL_DIR

    model = AutoModelForCausalLM.from_pretrained(str(EMBEDDED_MODEL_DIR), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(EMBEDDED_MODEL_DIR))


def full_logprobs(model, ids):
    """log-softmax of the logits after every position of one plain forward pass: [len(ids), V], fp32."""
    import torch

    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([list(ids)])).logits[0].float(), dim=-1)
