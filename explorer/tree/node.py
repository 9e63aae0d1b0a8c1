"""Plain tree data: what the search grows and what the app, the CLI and the export read."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

from explorer.tree.rule import TreeSettings

# Why a node has no children (TreeNode.end).
EXPANDED = None
END_EOS = "eos"  # the token is an end-of-sequence token
END_STOP = "stop"  # the continuation text contains a stop string
END_DEPTH = "depth"  # the path reached max_depth
END_CONTEXT = "context"  # the path fills the model's context
END_OPEN = "open"  # still open when the search stopped (node limit or cancel)


@dataclass
class TreeNode:
    token_id: int
    token: str  # display text (whitespace visible): for the screen only
    p: float  # probability under its parent's distribution
    cum_logprob: float  # ln probability of the path from the end of the prompt
    entropy: float  # nats, of the distribution this token was chosen from
    depth: int  # 1 for the prompt's direct continuations
    path: tuple[int, ...]  # token ids from the end of the prompt to this node, inclusive
    children: list["TreeNode"] = field(default_factory=list)
    end: str | None = END_OPEN  # None once expanded; otherwise why it is a leaf
    text: str = ""  # leaves: the whole continuation text (decoded path)
    raw: str = ""  # the token's decoded text itself: what files hold (design.md)
    # Once expanded: (token id, raw text, p) of every token its expansion listed (p >= t_min)
    candidates: tuple[tuple[int, str, float], ...] = ()

    @property
    def path_prob(self) -> float:
        return math.exp(self.cum_logprob)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    def walk(self) -> Iterator["TreeNode"]:
        """This node and everything below it, depth first, parents before children. A
        stack, not recursion: a tree may be thousands of tokens deep (--max-depth)."""
        return preorder([self])


@dataclass
class TokenTree:
    settings: TreeSettings
    prompt_ids: tuple[int, ...]
    entropy: float = float("nan")  # nats, of the distribution after the prompt
    children: list[TreeNode] = field(default_factory=list)
    stopped: str = "done"  # "done" (queue empty), "nodes" (node limit) or "cancelled"
    # done: every path ended by a rule (eos, stop, depth, context); otherwise open paths
    # were left when the node limit or a cancel stopped the search.
    forward_passes: int = 0  # model calls the expansions took (batched ones count once)
    candidates: tuple[tuple[int, str, float], ...] = ()  # after the prompt (TreeNode.candidates)

    def nodes(self) -> Iterator[TreeNode]:
        return preorder(self.children)

    def leaves(self) -> list[TreeNode]:
        return [n for n in self.nodes() if n.is_leaf]

    @property
    def size(self) -> int:
        return sum(1 for _ in self.nodes())

    @property
    def complete(self) -> bool:
        return self.stopped == "done"

    @property
    def cancelled(self) -> bool:
        return self.stopped == "cancelled"

    # The files `tree --json` / `--jsonl` write (explorer.tree.export, imported here
    # because it imports this module).
    def to_dict(self) -> dict:
        """The JSON `tree --json` writes, as plain data."""
        from explorer.tree.export import tree_dict

        return tree_dict(self)

    def leaf_lines(self) -> list[dict]:
        """The lines `tree --jsonl` writes: one per leaf, most probable first."""
        from explorer.tree.export import leaf_lines

        return leaf_lines(self)

    def save_json(self, path) -> None:
        """Write the file `tree --json PATH` writes (atomically)."""
        from explorer.tree.export import write_json

        write_json(self, path)

    def save_jsonl(self, path) -> None:
        """Write the leaves' file `tree --jsonl PATH` writes (atomically)."""
        from explorer.tree.export import write_leaves_jsonl

        write_leaves_jsonl(self, path)

    def find(self, path: tuple[int, ...]) -> TreeNode | None:
        level, node = self.children, None
        for token in path:
            node = next((c for c in level if c.token_id == token), None)
            if node is None:
                return None
            level = node.children
        return node


def preorder(roots: list[TreeNode]) -> Iterator[TreeNode]:
    """`roots` and their descendants, depth first, each parent before its children, in
    order: the order a recursive walk gives, with a stack instead of the call stack."""
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children))
