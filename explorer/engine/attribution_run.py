"""One attribution request's passes: cancelled and reported a layer at a time.

An integrated-gradients batch on a long prompt is one forward and one backward pass over
many gradient points at once (tens of seconds on a loaded CPU). Checking `cancelled` only
between batches made `esc`, and a key that needed the model, wait for the whole batch.
So every block of the model's layer stack checks it on the way in (forward) and on the
way back (a hook on its output's gradient), and counts itself done for the progress bar.

Progress is counted in forward-pass units of one point: a forward-only point (the ends of
the path, the scan toward the baseline) is 1, a gradient point 1 + BACKWARD (its backward
pass costs about twice its forward). Each layer adds its share as it finishes, so the bar
moves within a batch too. `done` reaches `total` exactly when the request ends.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from explorer.backend.errors import Cancelled

BACKWARD = 2.0  # a backward pass costs about twice its forward


def layer_blocks(model) -> list[torch.nn.Module]:
    """The blocks of the model's layer stack: the longest ModuleList in it (the decoder
    layers of every transformers causal LM; [] for a model without one)."""
    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList)]
    return list(max(lists, key=len)) if lists else []


class LayerWatch:
    """Hooks on each layer block that call a run's check and layer count. They are on the
    model only while a run is (`with watch.watching(run):`), so the engine's ordinary
    steps never meet them; the engine's lock keeps other model work out meanwhile."""

    def __init__(self, model) -> None:
        self.blocks = layer_blocks(model)

    @contextmanager
    def watching(self, run: Run):
        def before(module, args):
            run.check()

        def after(module, args, output):
            run.layer(backward=False)
            out = output[0] if isinstance(output, tuple) else output
            if isinstance(out, torch.Tensor) and out.requires_grad:
                out.register_hook(on_grad)

        def on_grad(grad):
            run.check()  # raised here, it leaves backward() as itself
            run.layer(backward=True)

        handles = []
        try:
            for block in self.blocks:
                handles.append(block.register_forward_pre_hook(before))
                handles.append(block.register_forward_hook(after))
            yield run
        finally:
            for handle in handles:
                handle.remove()


class Run:
    """One request: its target, the cancel poll, and progress in forward-point units."""

    def __init__(self, target: int, cancelled, progress, n_layers: int) -> None:
        self.target = target
        self.cancelled, self.progress = cancelled, progress
        self.n_layers = max(1, n_layers)
        self.total = 1.0
        self.done = 0.0
        self.batch = 0  # points in the pass now running
        self.last_value = float("nan")

    def check(self) -> None:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("The attribution was cancelled.")

    def plan(self, total: float) -> None:
        """The work still to come plus what is done: the bar's length."""
        self.total = max(total, self.done, 1.0)
        self._report()

    def points(self, n: int) -> None:
        """A pass over n points begins (the layers then count n each)."""
        self.batch = n

    def layer(self, backward: bool) -> None:
        self.done += self.batch * (BACKWARD if backward else 1.0) / self.n_layers
        self._report()

    def finish(self) -> None:
        self.done = self.total
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(min(int(self.done), int(self.total)), int(self.total))


@contextmanager
def frozen_weights(model):
    """The model's parameters need no gradient while a request runs (only the input's is
    asked for): switched off, so backward builds no weight-gradient work, and restored."""
    # (Offloaded weights that accelerate loads as inference tensors are left as they are:
    # their flag cannot be set back outside inference mode.)
    params = [p for p in model.parameters() if p.requires_grad and not p.is_inference()]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
