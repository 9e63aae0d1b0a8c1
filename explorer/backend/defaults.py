"""What a backend does for the Backend methods of a Feature it does not serve: raise
Unavailable with the sentence of capabilities.missing(feature). A concrete backend
inherits `Defaults` and overrides the methods its Capabilities say it serves, so the
layers above call any Backend method without probing. Importable without torch."""

from __future__ import annotations

from collections.abc import Hashable

from explorer.backend.errors import Unavailable
from explorer.backend.protocol import Capabilities, Feature, IsCancelled, Progress
from explorer.backend.types import TokenRecord


class Defaults:
    capabilities: Capabilities

    def _unserved(self, feature: Feature) -> Unavailable:
        # The flag's sentence; a backend that sets the flag but lacks the method (a bug)
        # still says which feature is missing.
        return Unavailable(self.capabilities.missing(feature)
                           or f"{feature.value} is not implemented by {type(self).__name__}.")

    def prompt_values(self, key: Hashable, *, progress: Progress | None = None,
                      cancelled: IsCancelled | None = None) -> tuple[TokenRecord, ...]:
        # Records already hold every position's numbers where prompt_logprobs is set.
        return self.records(key)

    def influence(self, key):
        raise self._unserved(Feature.INFLUENCE)

    def layer_probs(self, key, token_ids):
        raise self._unserved(Feature.LENS)

    def prompt_layer_probs(self, key):
        raise self._unserved(Feature.LENS)

    def attribution(self, key, target, method="saliency", *, n_steps=None, progress=None,
                    cancelled=None, baseline=None, position=None):
        raise self._unserved(Feature.ATTRIBUTION)

    def grow_tree(self, key, settings, *, progress=None, cancelled=None):
        raise self._unserved(Feature.TREES)

    def chat_ids(self, messages):
        raise self._unserved(Feature.CHAT)

    def next_logits(self, key):
        raise self._unserved(Feature.SAMPLING)

    def logits_before(self, key, index):
        raise self._unserved(Feature.SAMPLING)

    def tracked(self, key, token_ids, *, progress=None, cancelled=None):
        raise self._unserved(Feature.TRACKED)

    def follow(self, key, token_ids):
        """Nothing to do: tracked() computes what it is asked when it is asked."""

    def draw(self, key, settings, prompt_len, candidates=()):
        raise self._unserved(Feature.SERVER_SAMPLING)

    def constraint(self, spec):
        raise self._unserved(Feature.CONSTRAINTS)

    def constrained_completion(self, ids, spec, max_tokens, settings=None):
        raise self._unserved(Feature.SERVER_CONSTRAINTS)

    def load_whole(self, key, ids, tables_from):
        raise self._unserved(Feature.SERVER_CONSTRAINTS)

    def logprob_blocks(self, ids, *, progress=None, cancelled=None):
        raise self._unserved(Feature.ROWS)

    def position_tops(self, ids, *, progress=None, cancelled=None):
        raise Unavailable(f"A comparison needs every position's top candidates, which this backend "
                          f"({self.capabilities.kind}) does not give in one pass.")

    def vocabulary(self):
        return None  # not a Feature: "unknown" is an answer (explorer.compare checks less)
