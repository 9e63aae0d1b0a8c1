"""The tree as JSON and its leaf paths as JSONL; files written atomically.

JSON: {"settings": {...}, "prompt_ids": [...], "entropy": H, "stopped": ...,
"children": [node, ...]}, each node {"token_id", "token", "p", "cum_logprob", "entropy",
"depth", "end", "children"} (leaves also "text"): `token` the decoded text itself (no
display markers), `p` under its parent, `cum_logprob` the
natural-log probability of the path from the end of the prompt, `entropy` (nats) of the
distribution the token was chosen from. JSONL: one line per leaf, {"text", "token_ids",
"tokens", "cum_logprob", "end"}, readable by pandas.read_json(path, lines=True).
"""

from __future__ import annotations

import json
from pathlib import Path

from explorer.atomic import write_text_atomic
from explorer.tree.node import TokenTree, TreeNode


def node_dict(node: TreeNode) -> dict:
    out = {
        "token_id": node.token_id,
        "token": node.raw,
        "p": node.p,
        "cum_logprob": node.cum_logprob,
        "entropy": node.entropy,
        "depth": node.depth,
        "end": node.end,
        "children": [node_dict(c) for c in node.children],
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
        "children": [node_dict(c) for c in tree.children],
    }


def leaf_lines(tree: TokenTree) -> list[dict]:
    """One record per leaf path, most probable first."""
    leaves = sorted(tree.leaves(), key=lambda n: -n.cum_logprob)
    return [{"text": n.text, "token_ids": list(n.path),
             "tokens": [a.raw for a in _ancestry(tree, n)],
             "cum_logprob": n.cum_logprob, "end": n.end} for n in leaves]


def _ancestry(tree: TokenTree, node: TreeNode) -> list[TreeNode]:
    return [tree.find(node.path[:i]) for i in range(1, len(node.path) + 1)]


def write_atomic(path: Path, text: str) -> None:
    """Create the folder, then write atomically (explorer/atomic.py): never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, text, newline="\n")


def write_json(tree: TokenTree, path: Path) -> None:
    write_atomic(path, json.dumps(tree_dict(tree), ensure_ascii=False, indent=1) + "\n")


def write_leaves_jsonl(tree: TokenTree, path: Path) -> None:
    write_atomic(path, "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in leaf_lines(tree)))
