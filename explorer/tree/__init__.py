"""Token trees: the branches a model considers after a prompt. Plain Python, no Textual
and no torch: the search runs against an `Expander` (the local engine's batched, cached
one in explorer/engine/branching.py, or a test's reference), and the app, the `tree`
command and the JSON export all read the same plain `TokenTree`."""

from explorer.tree.node import TokenTree, TreeNode
from explorer.tree.rule import TreeSettings, TreeSettingsError, threshold
from explorer.tree.search import Expander, Expansion, grow

__all__ = ["Expander", "Expansion", "TokenTree", "TreeNode", "TreeSettings", "TreeSettingsError",
           "grow", "threshold"]
