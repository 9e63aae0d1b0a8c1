"""A token tree in the layout of Gemma's token-tree visualiser (`tree --format gemma`):

    {"metadata": {"prompt": TEXT, "parameters": {"min_branch_threshold", "max_branch_threshold",
                  "soft_queue_limit", "candidate_threshold", "max_depth", "max_completed_paths"}},
     "tree": node}

node = {"text", "prob", "cumulative_prob", "token_id", "depth", "is_finished",
"candidates": [{"text", "prob", "token_id"}], "children": [node]}. The root is the prompt
(its text, prob and cumulative_prob 1, token_id null, depth 0). `prob` is the token's
probability under its parent's distribution (a fraction, as Gemma's tree keeps it),
`cumulative_prob` the path's. Our thresholds map one to one: min/max_branch_threshold =
t_min/t_max, soft_queue_limit = q_limit. Gemma keeps as `candidates` the tokens above
`candidate_threshold`; ours is t_min, the floor every expansion lists tokens down to (the
children are those of them above the branch threshold of that moment), so the candidates
are the expanded distribution's tokens with p > t_min (fewer where the node limit cut the
expansion short). A leaf that was never expanded has none. `is_finished` marks a path that ended (end-of-sequence, a stop string,
max_depth or the context); a path still open when the node limit or Ctrl-C stopped the
search is not finished. Our search stops at a node count, not at a number of completed
paths, so max_completed_paths is null.
"""

from __future__ import annotations

import math

from explorer.tree.node import END_OPEN, TokenTree, TreeNode
from explorer.tree.rule import TreeSettings

END_FINISHED = "finished"  # a Gemma file's ended path: the file does not say why


def _node(text: str, prob: float, cumulative: float, token_id: int | None, depth: int,
          finished: bool, candidates, threshold: float) -> dict:
    return {"text": text, "prob": prob, "cumulative_prob": cumulative, "token_id": token_id,
            "depth": depth, "is_finished": finished,
            "candidates": [{"text": raw, "prob": p, "token_id": t}
                           for t, raw, p in candidates if p > threshold],
            "children": []}


def gemma_tree(tree: TokenTree, prompt_text: str) -> dict:
    """The tree as Gemma's JSON (plain data; built with a stack, a tree may be deep)."""
    s = tree.settings
    threshold = float(s.t_min)
    root = _node(prompt_text, 1.0, 1.0, None, 0, False, tree.candidates, threshold)
    stack = [(child, root) for child in reversed(tree.children)]
    while stack:
        node, parent = stack.pop()
        out = _node(node.raw, float(node.p), math.exp(node.cum_logprob), node.token_id, node.depth,
                    node.is_leaf and node.end not in (None, END_OPEN), node.candidates, threshold)
        parent["children"].append(out)
        stack.extend((child, out) for child in reversed(node.children))
    parameters = {"min_branch_threshold": s.t_min, "max_branch_threshold": s.t_max,
                  "soft_queue_limit": s.q_limit, "candidate_threshold": threshold,
                  "max_depth": s.max_depth, "max_completed_paths": None}
    return {"metadata": {"prompt": prompt_text, "parameters": parameters}, "tree": root}


def tree_from_gemma(data: dict, prompt_ids, token_text) -> TokenTree:
    """A Gemma token-tree JSON as a TokenTree for the app's tree view (`-i FILE`). Its
    numbers are the file's: p and the path's probability; entropies are unknown (NaN);
    an ended path is marked "finished" and an unfinished leaf open."""
    params = data.get("metadata", {}).get("parameters", {}) or {}
    defaults = TreeSettings()
    t_min = params.get("min_branch_threshold", defaults.t_min)
    t_max = params.get("max_branch_threshold", defaults.t_max)
    settings = TreeSettings(t_min=float(t_min), t_max=float(max(t_max, t_min)),
                            q_limit=int(params.get("soft_queue_limit") or defaults.q_limit),
                            max_depth=int(params.get("max_depth") or defaults.max_depth))
    tree = TokenTree(settings=settings, prompt_ids=tuple(int(i) for i in prompt_ids))
    root = data["tree"]
    tree.candidates = tuple((int(c["token_id"]), str(c["text"]), float(c["prob"]))
                            for c in root.get("candidates", ()))
    stack = [(child, tree.children, ()) for child in reversed(root.get("children", []))]
    count = 0
    while stack:
        item, level, path = stack.pop()
        token = int(item["token_id"])
        cumulative = float(item["cumulative_prob"])
        node = TreeNode(token_id=token, token=token_text(token), p=float(item["prob"]),
                        cum_logprob=math.log(cumulative) if cumulative > 0 else -math.inf,
                        entropy=math.nan, depth=int(item.get("depth", len(path) + 1)),
                        path=path + (token,), raw=str(item["text"]),
                        candidates=tuple((int(c["token_id"]), str(c["text"]), float(c["prob"]))
                                         for c in item.get("candidates", ())))
        children = item.get("children", [])
        node.end = None if children else (END_FINISHED if item.get("is_finished") else END_OPEN)
        level.append(node)
        count += 1
        stack.extend((child, node.children, node.path) for child in reversed(children))
    tree.stopped = "done"
    return tree
