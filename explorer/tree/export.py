"""The tree as JSON and its leaf paths as JSONL; files written atomically.

JSON: {"settings": {...}, "prompt_ids": [...], "entropy": H, "stopped": ..., "complete": ...,
"children": [node, ...]}, each node {"token_id", "token", "p", "cum_logprob", "entropy",
"depth", "end", "children"} (leaves also "text"): `token` the decoded text itself (no
display markers), `p` under its parent, `cum_logprob` the
natural-log probability of the path from the end of the prompt, `entropy` (nats) of the
distribution the token was chosen from. JSONL: one line per leaf, {"text", "token_ids",
"tokens", "cum_logprob", "end"}, readable by pandas.read_json(path, lines=True). `complete` is false when the node limit
or a Ctrl-C stopped the search (`stopped` says which): the file holds the tree as far as it
grew, its open paths marked "end": "open". The JSON nests two levels per token, so Python's
json.load needs sys.setrecursionlimit raised for trees deeper than about 450 tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

from explorer.atomic import write_text_atomic
from explorer.tree.node import TokenTree, TreeNode


def node_dict(node: TreeNode) -> dict:
    """The node and its subtree as plain data, built with a stack rather than recursion (a
    tree may be thousands of tokens deep)."""
    root = _fields(node)
    stack = [(node, root)]
    while stack:
        parent, out = stack.pop()
        for child in parent.children:
            child_out = _fields(child)
            out["children"].append(child_out)
            stack.append((child, child_out))
    return root


def _fields(node: TreeNode) -> dict:
    out = {
        "token_id": node.token_id,
        "token": node.raw,
        "p": node.p,
        "cum_logprob": node.cum_logprob,
        "entropy": node.entropy,
        "depth": node.depth,
        "end": node.end,
        "children": [],
    }
    if node.is_leaf:
        out["text"] = node.text
    return out


def tree_dict(tree: TokenTree) -> dict:
    return {
        "settings": tree.settings.as_dict(),
        "prompt_ids": list(tree.prompt_ids),
        "entropy": tree.entropy,
        "stopped": tree.stopped,
        "complete": tree.complete,
        "children": [node_dict(c) for c in tree.children],
    }


def leaf_lines(tree: TokenTree) -> list[dict]:
    """One record per leaf path, most probable first."""
    by_path = {n.path: n for n in tree.nodes()}
    leaves = sorted(tree.leaves(), key=lambda n: -n.cum_logprob)
    return [{"text": n.text, "token_ids": list(n.path),
             "tokens": [by_path[n.path[:i]].raw for i in range(1, len(n.path) + 1)],
             "cum_logprob": n.cum_logprob, "end": n.end} for n in leaves]


class _Raw(str):
    """A piece of JSON text already encoded (punctuation between values)."""


def dumps_deep(value) -> str:
    """json.dumps(value, ensure_ascii=False) for data nested deeper than Python's recursion
    limit (json's own encoder recurses per level): containers are opened with a stack."""
    out: list[str] = []
    stack: list = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out.append(item)
        elif isinstance(item, dict):
            parts: list = [_Raw("{")]
            for i, (key, inner) in enumerate(item.items()):
                parts += [_Raw((", " if i else "") + json.dumps(str(key), ensure_ascii=False) + ": "), inner]
            stack.extend(reversed(parts + [_Raw("}")]))
        elif isinstance(item, (list, tuple)):
            parts = [_Raw("[")]
            for i, inner in enumerate(item):
                parts += ([_Raw(", ")] if i else []) + [inner]
            stack.extend(reversed(parts + [_Raw("]")]))
        else:
            out.append(json.dumps(item, ensure_ascii=False))
    return "".join(out)


def write_atomic(path: Path, text: str) -> None:
    """Create the folder, then write atomically (explorer/atomic.py): never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text, newline="\n")


def write_json(tree: TokenTree, path: Path) -> None:
    write_atomic(path, dumps_deep(tree_dict(tree)) + "\n")


def write_gemma_json(tree: TokenTree, prompt_text: str, path: Path) -> None:
    """Gemma's token-tree layout (explorer/tree/gemma.py)."""
    from explorer.tree.gemma import gemma_tree

    write_atomic(path, dumps_deep(gemma_tree(tree, prompt_text)) + "\n")


def write_leaves_jsonl(tree: TokenTree, path: Path) -> None:
    write_atomic(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in leaf_lines(tree)))
