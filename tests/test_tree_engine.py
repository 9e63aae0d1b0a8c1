"""Token trees on the local engine against a brute-force reference: every path gets its
own plain full forward pass (no cache) in float64, and the best-first queue is replayed
here from scratch, so each node's p, cumulative log-probability, entropy and the set of
children (the tokens with p >= T for the T of that moment) are checked independently."""

from __future__ import annotations

import heapq
import itertools
import math

import pytest
import torch

from explorer.backend import PromptTooLongError, Unavailable
from explorer.tree import TreeSettings

TOL = 1e-4
BRANCHY = dict(t_min=0.03, t_max=0.2, q_limit=12, max_depth=5, max_nodes=40)


@torch.no_grad()
def reference_tree(model, prompt, s: TreeSettings, eos=(), stop_text=None):
    """{path: (p, cum_logprob, entropy, [child tokens in order])} by full forward passes."""
    def after(path):
        logits = model(torch.tensor([list(prompt) + list(path)])).logits[0, -1].double()
        return torch.log_softmax(logits, -1)

    nodes = {(): (1.0, 0.0, None, [])}
    order = itertools.count()
    queue = [(0.0, next(order), ())]
    count, thresholds = 0, []
    while queue and count < s.max_nodes:
        # One path at a time whatever s.batch is: batching changes model calls, not the tree.
        for path in [heapq.heappop(queue)[2]]:
            lp = after(path)
            entropy = float(-(lp.exp() * lp).sum())
            t = s.t_min + min(1.0, len(queue) / s.q_limit) * (s.t_max - s.t_min)
            thresholds.append(t)
            ranked = torch.argsort(lp, descending=True).tolist()
            chosen = [ranked[0]] + [v for v in ranked[1:64] if math.exp(float(lp[v])) >= t]
            for v in chosen:
                if count >= s.max_nodes:
                    break
                child = path + (v,)
                cum = nodes[path][1] + float(lp[v])
                nodes[child] = (math.exp(float(lp[v])), cum, entropy, [])
                nodes[path][3].append(v)
                count += 1
                ended = v in eos or (stop_text is not None and stop_text(child)) or len(child) >= s.max_depth
                if not ended:
                    heapq.heappush(queue, (-cum, next(order), child))
    return nodes, thresholds


def assert_same_tree(tree, ref):
    nodes, _ = ref
    assert [c.token_id for c in tree.children] == nodes[()][3]
    got = {n.path: n for n in tree.nodes()}
    assert set(got) == set(nodes) - {()}
    for path, node in got.items():
        p, cum, entropy, children = nodes[path]
        assert [c.token_id for c in node.children] == children, path
        assert node.p == pytest.approx(p, abs=TOL)
        assert node.cum_logprob == pytest.approx(cum, abs=TOL)
        assert node.entropy == pytest.approx(entropy, abs=TOL)
        assert node.depth == len(path)


@pytest.mark.parametrize("family, batch", [("llama", 1), ("gpt2", 1), ("gemma2", 1), ("qwen2", 1),
                                           ("llama", 4), ("gemma2", 4)])
def test_tree_equals_full_forward_reference(make_engine, tokenizer, family, batch):
    # Gemma2's tiny soft-cap of 3 makes nearly flat distributions (top p ~ 0.02); a cap
    # of 10 is still a soft-cap and gives branches worth testing.
    overrides = {"final_logit_softcapping": 10.0} if family == "gemma2" else None
    engine = make_engine(family, prefill_chunk=8, model_overrides=overrides)
    prompt = engine.encode("The quick brown fox jumps over")
    engine.sync("a", prompt)
    settings = TreeSettings(**BRANCHY, batch=batch)
    tree = engine.grow_tree("a", settings)
    ref = reference_tree(engine.model, prompt, settings, eos={tokenizer.eos_token_id})
    assert_same_tree(tree, ref)
    # the rule is exercised: several thresholds, and nodes with more than one child
    assert len(set(ref[1])) > 2 and any(len(n.children) > 1 for n in tree.nodes())
    for leaf in tree.leaves():
        assert leaf.text == tokenizer.decode(list(leaf.path))


def test_batch_size_does_not_change_the_tree(make_engine, tokenizer):
    engine = make_engine("llama", prefill_chunk=8)
    prompt = engine.encode("The quick brown fox jumps over")
    engine.sync("a", prompt)
    trees = {b: engine.grow_tree("a", TreeSettings(**BRANCHY, batch=b)) for b in (1, 3)}
    shape = {b: [(n.path, n.end) for n in t.nodes()] for b, t in trees.items()}
    assert shape[1] == shape[3]  # the same nodes, in the same order, ending the same way
    # (a batched pass rounds differently in the last float32 bits)
    assert [n.p for n in trees[3].nodes()] == pytest.approx([n.p for n in trees[1].nodes()], abs=1e-5)
    assert trees[3].forward_passes < trees[1].forward_passes  # batching still saves calls


def test_embedded_model_tree_equals_reference():
    from app_fixtures import embedded_engine, requires_model  # noqa: F401

    engine = embedded_engine()
    prompt = engine.encode("Once upon a time")
    engine.sync("tree-ref", prompt)
    settings = TreeSettings(t_min=0.05, t_max=0.3, q_limit=4, max_depth=4, max_nodes=25)
    tree = engine.grow_tree("tree-ref", settings)
    eos = {engine.model.generation_config.eos_token_id}
    assert_same_tree(tree, reference_tree(engine.model, prompt, settings, eos=eos))
    engine.forget("tree-ref")


@pytest.fixture
def counted(make_engine):
    engine = make_engine("llama", prefill_chunk=8, cache_size=2)
    calls: list[tuple[int, int]] = []
    forward = engine.model.forward

    def counting_forward(*args, **kwargs):
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        calls.append(tuple(ids.shape))
        return forward(*args, **kwargs)

    engine.model.forward = counting_forward
    return engine, calls


def test_expansions_reuse_the_cache(counted):
    engine, calls = counted
    prompt = list(range(2, 40))
    engine.sync("a", prompt)
    calls.clear()
    tree = engine.grow_tree("a", TreeSettings(**BRANCHY))
    expanded = sum(1 for n in tree.nodes() if n.end is None) + 1  # + the prompt itself
    assert len(calls) == tree.forward_passes == expanded
    # each expansion is one one-token decode step on a fork of its parent's cache
    # (the first: the prompt's last token on a fork of the prompt's cache)
    assert calls == [(1, 1)] * expanded


def test_a_zero_cache_budget_still_never_recomputes_the_prompt(counted):
    engine, calls = counted
    engine.sync("a", list(range(2, 40)))
    calls.clear()
    settings = TreeSettings(**BRANCHY, cache_mib=0)  # only the prompt's fork is kept
    tree = engine.grow_tree("a", settings)
    assert len(calls) == sum(1 for n in tree.nodes() if n.end is None) + 1
    # a path is fed from the prompt's fork: its own tokens, never the prompt's
    assert all(rows == 1 and 1 <= cols <= BRANCHY["max_depth"] for rows, cols in calls)
    assert any(cols > 1 for _, cols in calls)
    assert_same_tree(tree, reference_tree(engine.model, list(range(2, 40)), settings,
                                          eos={engine.tokenizer.eos_token_id}))


def test_batched_siblings_share_a_pass(counted):
    engine, calls = counted
    engine.sync("a", list(range(2, 40)))
    calls.clear()
    tree = engine.grow_tree("a", TreeSettings(**BRANCHY, batch=4))
    expanded = sum(1 for n in tree.nodes() if n.end is None) + 1
    assert len(calls) == tree.forward_passes < expanded
    assert any(rows > 1 for rows, _ in calls)


def test_prompt_caches_survive_a_tree(counted, make_engine):
    engine, calls = counted
    a, b = list(range(2, 30)), list(range(3, 31))
    engine.sync("a", a)
    engine.sync("b", b)  # cache_size=2: both caches held
    before = engine.records("a")
    engine.grow_tree("a", TreeSettings(**BRANCHY))
    engine.grow_tree("b", TreeSettings(**BRANCHY, batch=3))
    assert engine.records("a") == before
    for key, ids in (("a", a), ("b", b)):
        calls.clear()
        records = engine.sync(key, ids + [7])
        assert calls == [(1, 1)]  # its own cache is still there: one decode step
        with torch.no_grad():
            ref = torch.log_softmax(engine.model(torch.tensor([ids + [7]])).logits[0, -2].double(), -1)
        assert records[-1].logprob == pytest.approx(float(ref[7]), abs=TOL)  # and unchanged


def test_eos_and_stop_string_end_paths(make_engine, tokenizer):
    engine = make_engine("llama")
    prompt = engine.encode("The quick brown fox jumps over")
    engine.sync("a", prompt)
    settings = TreeSettings(**BRANCHY)
    first = engine.grow_tree("a", settings)
    eos = first.children[1].token_id
    engine.model.generation_config.eos_token_id = eos
    tree = engine.grow_tree("a", settings)
    ends = [n for n in tree.nodes() if n.token_id == eos]
    assert ends and all(n.end == "eos" and not n.children for n in ends)
    assert_same_tree(tree, reference_tree(engine.model, prompt, settings, eos={eos}))

    stop = tokenizer.decode([first.children[0].children[0].token_id])
    tree = engine.grow_tree("a", TreeSettings(**BRANCHY, stop=(stop,)))
    for node in tree.nodes():
        text = tokenizer.decode(list(node.path))
        assert (node.end == "stop") == (stop in text)
    assert any(n.end == "stop" for n in tree.nodes())


def test_depth_node_limits_and_cancel(make_engine):
    engine = make_engine("llama")
    engine.sync("a", engine.encode("The quick brown fox"))
    tree = engine.grow_tree("a", TreeSettings(t_min=0.0, t_max=0.0, max_depth=3, max_nodes=30))
    assert tree.size == 30 and tree.stopped == "nodes"
    assert max(n.depth for n in tree.nodes()) <= 3
    deep = TreeSettings(t_min=0.9, t_max=0.9, max_depth=4, max_nodes=30)  # one greedy path
    tree = engine.grow_tree("a", deep)
    assert [n.depth for n in tree.nodes()] == [1, 2, 3, 4] and tree.leaves()[0].end == "depth"
    seen = []
    tree = engine.grow_tree("a", TreeSettings(**BRANCHY), progress=lambda d, t: seen.append(d),
                            cancelled=lambda: len(seen) >= 3)
    assert tree.stopped == "cancelled" and tree.size == seen[-1] < BRANCHY["max_nodes"]


def test_context_limit(make_engine):
    engine = make_engine("llama")  # max_position_embeddings = 256
    engine.sync("full", list(range(2, 258)))
    with pytest.raises(PromptTooLongError, match="The prompt has 256 tokens and tiny-llama supports 256, so no new token fits"):
        engine.grow_tree("full", TreeSettings())
    engine.sync("near", list(range(2, 256)))  # 254 tokens: room for 2
    tree = engine.grow_tree("near", TreeSettings(**BRANCHY))
    assert max(n.depth for n in tree.nodes()) == 2
    assert {n.end for n in tree.leaves()} <= {"context", "eos"}


def test_backend_without_trees_says_so():
    from fake_backend import TableBackend

    backend = TableBackend()
    assert not backend.capabilities.trees
    with pytest.raises(Unavailable, match="Growing token trees is not available"):
        backend.grow_tree("a", TreeSettings())
