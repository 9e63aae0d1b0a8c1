"""The tree as indented text (the `tree` command's output; also handy in a notebook)."""

from __future__ import annotations

from explorer.tree.node import TokenTree, TreeNode, preorder


def node_label(node: TreeNode) -> str:
    """token  p 0.253  path 0.0124  (and why a leaf ended)."""
    end = "" if node.end is None or node.end == "open" and node.children else f"  [{node.end}]"
    return f"{node.token}  p {node.p:.3f}  path {node.path_prob:.4g}{end}"


def render_text(tree: TokenTree, prompt_text: str = "", *, indent: str = "  ") -> str:
    lines = []
    if prompt_text:
        lines.append(f"prompt: {prompt_text!r}")
    lines.append(f"{tree.size} nodes, {len(tree.leaves())} leaves, stopped: {tree.stopped}; "
                 f"entropy after the prompt {tree.entropy:.3f} nats")
    for node in preorder(tree.children):  # no recursion: trees can be thousands deep
        lines.append(indent * (node.depth - 1) + node_label(node))
    return "\n".join(lines)
