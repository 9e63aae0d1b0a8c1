"""Influence selects heads across all layers: a sharp head in the LAST layer wins."""

import torch


def test_sharp_head_in_last_layer_is_selected(make_engine):
    engine = make_engine("llama", influence_heads=1)
    model = engine.model
    layers = model.model.layers
    head_dim = model.config.hidden_size // model.config.num_attention_heads
    with torch.no_grad():
        for layer in layers:
            q = layer.self_attn.q_proj.weight
            q.zero_()  # zero queries: uniform attention, zero variance over keys
        last = layers[-1].self_attn.q_proj.weight
        last[1 * head_dim:2 * head_dim] = torch.randn(head_dim, last.shape[1]) * 30
    engine.sync("k", [5, 9, 14, 22, 31, 40, 47, 50, 61])
    assert engine.last_influence_heads("k") == ((len(layers) - 1, 1),)
    values = engine.influence("k")
    assert values.max() == 1.0 and values.min() == 0.0


def test_influence_of_one_token_prompt(make_engine):
    engine = make_engine("gpt2")
    engine.sync("k", [7])
    assert engine.influence("k").tolist() == [1.0]
