"""The default model (SmolLM2) fp32 against bf16, exact against two full forward passes,
and a model with another tokenizer refused in one sentence. Loaded once for the module."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
from test_compare import compare_fp32_with_bf16, fp32_and_bf16

from explorer.compare import vocabulary_mismatch
from explorer.config import ModelSettings
from explorer.engine import Engine

PROMPT = "The quick brown fox jumps over the lazy dog. Then it ran into the woods and"


@pytest.fixture(scope="module")
def pair():
    return fp32_and_bf16("smollm2")


def test_default_model_fp32_against_bf16(pair):
    got = compare_fp32_with_bf16(pair, PROMPT)
    assert got.summary()["top1_agreement"] >= 0.8


def test_another_tokenizer_is_refused(pair):
    embedded = Engine.load(ModelSettings(name="embedded", device="cpu"), influence=False)
    why = vocabulary_mismatch(pair[0], embedded)
    assert why == ("smollm2 and embedded do not share a tokenizer (49152 and 8192 tokens), so "
                   "their predictions cannot be compared token by token.")
