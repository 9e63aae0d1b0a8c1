"""Growing a token tree: a best-first queue of open paths and the dynamic threshold.

Expanding a path looks at the next-token distribution after it and opens a child for
every token with p >= T (T from rule.threshold at that moment), and always for the most
likely token. The queue is best first: the open path with the highest cumulative
probability is expanded next (ties: the one opened first), so a node limit keeps the
most likely part of the tree.

With `batch` > 1 one model call expands the best open path together with its best open
siblings (same parent, so they share the parent's KV cache), up to `batch` paths. The
siblings' expansions are only computed ahead: each is used when the one-at-a-time search
would pop that sibling, with T from the queue as it stands then. So the batch size changes
the number of model calls, never the tree (taking the siblings out of the queue early
made it shorter, T lower and the tree bigger). The model work is behind `Expander`, so this file has no
torch and a test can replay the search with its own reference.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from explorer.tree.node import (END_CONTEXT, END_DEPTH, END_EOS, END_OPEN, END_STOP, EXPANDED,
                                TokenTree, TreeNode)
from explorer.tree.rule import TreeSettings, threshold


@dataclass(frozen=True)
class Expansion:
    """The distribution after one path, reduced: its entropy and its most likely tokens,
    most likely first (every token with p >= the floor asked for, at most `most` of them,
    and always at least the top one)."""

    entropy: float
    token_ids: tuple[int, ...]
    logprobs: tuple[float, ...]


class Expander(Protocol):
    forward_passes: int

    def expand(self, paths: Sequence[tuple[int, ...]], floor: float, most: int) -> list[Expansion]:
        """One Expansion per path (token ids after the prompt; () is the prompt itself)."""


def grow(expander: Expander, prompt_ids: Sequence[int], settings: TreeSettings, *,
         token_text: Callable[[int], str], decode: Callable[[Sequence[int]], str],
         eos_ids: Collection[int] = (), max_context: int | None = None,
         progress: Callable[[int, int], None] | None = None,
         cancelled: Callable[[], bool] | None = None) -> TokenTree:
    """Grow a tree after `prompt_ids`. Cancelling returns the part grown so far
    (tree.stopped == "cancelled"); it never raises for it."""
    prompt_ids = tuple(int(i) for i in prompt_ids)
    tree = TokenTree(settings=settings, prompt_ids=prompt_ids)
    eos = frozenset(int(i) for i in eos_ids)
    room = settings.max_depth if max_context is None else min(settings.max_depth,
                                                               max_context - len(prompt_ids))
    order = itertools.count()
    # Entries: (-cum_logprob, opened order, node); the root (the prompt) is node None.
    queue: list[tuple[float, int, TreeNode | None]] = [(0.0, next(order), None)]
    ahead: dict[tuple[int, ...], Expansion] = {}  # siblings' expansions computed early
    count = 0
    stopped = "done"
    while queue:
        if count >= settings.max_nodes:
            stopped = "nodes"
            break
        if cancelled is not None and cancelled():
            stopped = "cancelled"
            break
        node = heapq.heappop(queue)[2]
        path = () if node is None else node.path
        result = ahead.pop(path, None)
        if result is None:
            # A later pass would ask for fewer tokens (`most` only shrinks): one computed
            # now serves it, since the loop below stops at the node limit anyway.
            paths = [path] + _open_siblings(queue, node, settings.batch - 1)
            results = expander.expand(paths, settings.t_min, _most(settings, count))
            result = results[0]
            ahead.update(zip(paths[1:], results[1:]))
        level = tree.children if node is None else node.children
        base = 0.0 if node is None else node.cum_logprob
        # Every token the expansion listed (p >= t_min): Gemma's tree keeps them as the
        # node's candidates (explorer/tree/gemma.py).
        listed = tuple((int(t), decode((int(t),)), math.exp(float(lp)))
                       for t, lp in zip(result.token_ids, result.logprobs))
        if node is None:
            tree.entropy, tree.candidates = result.entropy, listed
        else:
            node.end, node.candidates = EXPANDED, listed
        t = threshold(len(queue), settings)
        for rank, (token, logprob) in enumerate(zip(result.token_ids, result.logprobs)):
            p = math.exp(float(logprob))
            if rank > 0 and p < t:
                break
            if count >= settings.max_nodes:
                break
            child = TreeNode(token_id=int(token), token=token_text(int(token)), p=p,
                             raw=decode((int(token),)),
                             cum_logprob=base + float(logprob), entropy=float(result.entropy),
                             depth=len(path) + 1, path=path + (int(token),))
            level.append(child)
            count += 1
            child.end = _end_of(child, eos, settings.stop, decode, settings.max_depth, room)
            if child.end == END_OPEN:
                heapq.heappush(queue, (-child.cum_logprob, next(order), child))
        if node is not None and not node.children:
            node.end = END_OPEN  # the node limit left no room for any child
        if progress is not None:
            progress(count, settings.max_nodes)
    tree.stopped = stopped
    tree.forward_passes = expander.forward_passes
    for leaf in tree.leaves():
        leaf.text = decode(leaf.path)
    return tree


def _most(settings: TreeSettings, count: int) -> int:
    """Tokens an expansion lists: the room left under the node limit, but never fewer than
    can lie above t_min (at most 1 / t_min of them), so a node's candidates (Gemma's
    layout) are all there even when the node limit cuts its children short."""
    room = settings.max_nodes - count
    return room if settings.t_min <= 0 else max(room, math.ceil(1 / settings.t_min))


def _end_of(node: TreeNode, eos: frozenset[int], stop: tuple[str, ...], decode, max_depth: int,
            room: int) -> str | None:
    """Why a new node will not be expanded, or END_OPEN when it joins the queue."""
    if node.token_id in eos:
        return END_EOS
    if stop and any(s in decode(node.path) for s in stop):
        return END_STOP
    if node.depth >= room:
        return END_DEPTH if node.depth >= max_depth else END_CONTEXT
    return END_OPEN


def _open_siblings(queue: list, node: TreeNode | None, most: int) -> list[tuple[int, ...]]:
    """Paths of up to `most` open siblings of `node`, best first; they stay in the queue."""
    if most < 1 or node is None:
        return []
    parent = node.path[:-1]
    return [e[2].path for e in sorted(e for e in queue if e[2].path[:-1] == parent)[:most]]
