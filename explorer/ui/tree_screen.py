"""The token-tree view: `b` grows a tree after the current prompt in a worker and shows it
in a Textual Tree in place of the table. Arrows walk it, `enter` opens the selected
branch as a new prompt, `x` saves the tree as JSON (and its leaves as JSONL), `escape`
cancels a growing tree (keeping what grew) or goes back to the table.

Draws plain explorer.tree data; the model work is the backend's grow_tree."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static, Tree

from explorer.backend import Cancelled
from explorer.tree import TokenTree, TreeNode, TreeSettings
from explorer.ui.colors import PROBABILITY

EXPAND_DEPTH = 100  # levels shown open; deeper ones open with a key (Textual's Tree recurses)
END_NOTES = {"eos": "end of sequence", "stop": "stop string", "depth": "max depth",
             "context": "context full", "open": "not expanded", "finished": "finished"}


def node_label(node: TreeNode) -> Text:
    """Token on its probability colour, then p and the path's probability."""
    label = Text(no_wrap=True)
    label.append(f" {node.token} ", style=PROBABILITY.style(node.p))
    label.append(f"  p {node.p:.3f}", style="bold")
    label.append(f"  path {node.path_prob:.3g}", style="dim")
    if node.end is not None and not node.children:
        label.append(f"  ({END_NOTES.get(node.end, node.end)})", style="italic dim")
    return label


@dataclass
class TreeProgress(Message):
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, TreeProgress)


@dataclass
class TreeGrown(Message):
    tree: TokenTree | None
    error: BaseException | None = None


class TokenTreeView(Tree[TreeNode | None]):
    """Left goes to the parent, right into the first child (opening it), up/down step."""

    BINDINGS = [
        Binding("left,h", "cursor_parent", "Parent", show=False),
        Binding("right,l", "first_child", "Child", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("j", "cursor_down", "Down", show=False),
    ]

    def action_first_child(self) -> None:
        node = self.cursor_node
        if node is None or not node.children:
            return
        node.expand()
        self.cursor_line += 1  # an open node's first child is the line below it


class TreeScreen(Screen[tuple[int, ...] | None]):
    """Dismissed with the ids of the branch to open as a prompt, or None."""

    BINDINGS = [
        Binding("escape", "back", "Cancel / back", id="tree.back"),
        Binding("x", "save", "Save JSON", id="tree.save"),
        Binding("enter", "open_branch", "Open as prompt", id="tree.open", show=True, priority=True),
    ]

    def __init__(self, backend, key, ids: tuple[int, ...], settings: TreeSettings,
                 save_dir: Path, model_name: str = "", tree: TokenTree | None = None) -> None:
        """tree: one already grown (a Gemma file opened with -i): shown, not grown."""
        super().__init__()
        self._given = tree
        self.backend, self.key, self.ids = backend, key, tuple(ids)
        self.settings, self.save_dir = settings, Path(save_dir)
        self.model_name = model_name
        self.token_tree: TokenTree | None = None  # the grown tree (partial when cancelled)
        self.error: str | None = None
        self.progress: tuple[int, int] = (0, settings.max_nodes)  # nodes done, limit
        self._cancel = threading.Event()

    # -- public surface ---------------------------------------------------------------
    @property
    def growing(self) -> bool:
        return self.token_tree is None and self.error is None

    @property
    def selected(self) -> TreeNode | None:
        """The tree node under the cursor (None on the prompt row)."""
        node = self.query_one(TokenTreeView).cursor_node
        return None if node is None else node.data

    # -- layout -----------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="tree-title")
        yield Static(id="tree-prompt")
        yield TokenTreeView("prompt", id="token-tree")
        yield ProgressBar(id="tree-progress", show_eta=False)
        yield Static(id="tree-status")
        yield Footer()

    def on_mount(self) -> None:
        view = self.query_one(TokenTreeView)
        view.auto_expand = False
        view.show_root = True
        s = self.settings
        self.query_one("#tree-title", Static).update(Text.assemble(
            ("token tree", "bold"),
            f" · T = {s.t_min:g} + min(1, |Q|/{s.q_limit}) × ({s.t_max:g} − {s.t_min:g})"
            f" · depth ≤ {s.max_depth} · nodes ≤ {s.max_nodes}"))
        text = self.backend.decode(self.ids).replace("\n", "↵")
        self.query_one("#tree-prompt", Static).update(Text("…" + text[-300:] if len(text) > 300 else text,
                                                           style="dim"))
        self._status(f"growing: 0/{s.max_nodes} nodes · escape cancels")
        self.query_one(ProgressBar).update(total=s.max_nodes, progress=0)
        view.focus()
        if self._given is not None:
            self.post_message(TreeGrown(self._given))
        else:
            self._grow()

    # -- growing (worker) -------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="tree", name="tree")
    def _grow(self) -> None:
        try:
            # The screen may show a prefix the backend was not told of (a pop): a crop.
            self.backend.sync(self.key, self.ids)
            tree = self.backend.grow_tree(
                self.key, self.settings,
                progress=lambda done, total: self.post_message(TreeProgress(done, total)),
                cancelled=self._cancel.is_set)
            self.post_message(TreeGrown(tree))
        except BaseException as exc:  # noqa: BLE001 - shown as one sentence
            self.post_message(TreeGrown(None, exc))

    def on_tree_progress(self, message: TreeProgress) -> None:
        self.progress = (message.done, message.total)
        if self.growing:
            self.query_one(ProgressBar).update(total=message.total, progress=message.done)
            state = "cancelling…" if self._cancel.is_set() else "escape cancels"
            self._status(f"growing: {message.done}/{message.total} nodes · {state}")

    def on_tree_grown(self, message: TreeGrown) -> None:
        from explorer.ui.startup import describe

        self.query_one(ProgressBar).display = False
        if message.error is not None:
            self.error = "The tree was cancelled." if isinstance(message.error, Cancelled) \
                else describe(message.error)
            self._status(self.error + " Escape goes back.")
            self.app.notify(self.error, title="Token tree", severity="error", timeout=8)
            return
        tree = self.token_tree = message.tree
        self._draw(tree)
        how = {"done": "complete", "nodes": "node limit reached",
               "cancelled": "cancelled, kept what grew"}.get(tree.stopped, tree.stopped)
        self._status(f"{tree.size} nodes, {len(tree.leaves())} leaves ({how}) · "
                     "arrows walk · enter opens the branch as a prompt · x saves · escape back")

    def _draw(self, tree: TokenTree) -> None:
        view = self.query_one(TokenTreeView)
        view.clear()
        about = ("  read from a file (no entropies)" if self._given is not None else
                 f"  entropy after it {tree.entropy:.2f} nats · {tree.forward_passes} forward passes")
        view.root.set_label(Text.assemble(("prompt", "bold"), (about, "dim")))
        view.root.data = None

        # A stack, not recursion: a tree may be thousands of tokens deep. Textual's Tree
        # draws expanded nodes recursively, so only the first EXPAND_DEPTH levels open.
        stack = [(view.root, node) for node in reversed(tree.children)]
        while stack:
            parent, node = stack.pop()
            if node.children:
                added = parent.add(node_label(node), data=node, expand=node.depth < EXPAND_DEPTH)
                stack.extend((added, child) for child in reversed(node.children))
            else:
                parent.add_leaf(node_label(node), data=node)
        view.root.expand()
        if view.root.children:
            view.cursor_line = 1  # the most likely first token, just below the prompt row

    def _status(self, text: str) -> None:
        self.query_one("#tree-status", Static).update(text)

    # -- keys --------------------------------------------------------------------------
    def action_back(self) -> None:
        if self.growing:
            self._cancel.set()
            self._status("cancelling… (the part grown so far stays)")
            return
        self.dismiss(None)

    def action_open_branch(self) -> None:
        node = None if self.growing else self.selected
        if node is None:
            self.app.notify("Select a node of the tree to open its branch as a prompt.",
                            title="Token tree", severity="warning")
            return
        self.dismiss(self.ids + node.path)

    def action_save(self) -> None:
        from explorer.output_paths import free_stem
        from explorer.session.files import slug
        from explorer.tree.export import write_json, write_leaves_jsonl

        if self.token_tree is None:
            self.app.notify("The tree is still growing; save it when it is done.",
                            title="Token tree", severity="warning")
            return
        stem = (slug(self.backend.decode(self.ids)) or "prompt") + "-tree"
        try:
            # A free name for both files: a second save never writes over the first.
            stem = free_stem(self.save_dir, stem, (".json", ".leaves.jsonl"))
            json_path = self.save_dir / f"{stem}.json"
            leaves_path = self.save_dir / f"{stem}.leaves.jsonl"
            write_json(self.token_tree, json_path)
            write_leaves_jsonl(self.token_tree, leaves_path)
        except OSError as exc:
            self.app.notify(f"Could not save the tree to {self.save_dir}: {exc.strerror or exc}.",
                            title="Token tree", severity="error", timeout=10)
            return
        self.app.notify(f"Saved {json_path.name} and {leaves_path.name} in {self.save_dir}.",
                        title="Token tree")

    @on(Tree.NodeSelected)
    def _selected(self, event: Tree.NodeSelected) -> None:
        event.stop()  # enter is the screen's open_branch (priority binding)
