"""One generation run, stepped by its two drivers: the app's autoplay (one token per lane
job, explorer.session.explorer) and `trace` (one token per `Backend.sync`,
explorer.core.trace). Both choose each token with explorer.session.choose and stop by the
same rule (StopRule: an end-of-sequence token, a stop string, the token limit, the
context limit). No Textual.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from explorer.session.sampler import StopRule


@dataclass
class Generation:
    key: object  # the prompt (or backend key) it writes to
    start: int  # the ids' length when it started
    rule: StopRule

    def produced(self, ids: Sequence[int]) -> Sequence[int]:
        return ids[self.start:]

    def after(self, ids: Sequence[int], decode: Callable[[Sequence[int]], str]) -> str | None:
        """Why it stops after `ids` (None: go on; nothing produced yet never stops it)."""
        produced = self.produced(ids)
        return self.rule.after(produced, len(ids), decode) if produced else None

    def ended_by_eos(self, ids: Sequence[int]) -> bool:
        produced = self.produced(ids)
        return bool(produced) and produced[-1] in self.rule.eos_ids

    def learn_eos(self, ids: Collection[int]) -> None:
        """A server names its end-of-sequence token when it draws one: stop at it too."""
        if not set(ids) <= self.rule.eos_ids:
            self.rule = replace(self.rule, eos_ids=self.rule.eos_ids | frozenset(ids))
