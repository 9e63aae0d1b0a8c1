"""The dynamic branching threshold and the settings of a tree search.

    T = T_min + min(1, |Q| / Q_limit) * (T_max - T_min)

`Q` is the queue of open paths when a path's children are chosen: with few open paths
even unlikely tokens branch; as the queue fills, only likely ones do (the rule of the
Gemma token-analysis notebook this view replaces).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from explorer.errors import ExplorerError


class TreeSettingsError(ExplorerError, ValueError):
    """A tree setting the user can fix; the message is one sentence for the screen."""


@dataclass(frozen=True)
class TreeSettings:
    t_min: float = 0.1  # threshold with an empty queue
    t_max: float = 0.5  # threshold once the queue holds q_limit paths or more
    q_limit: int = 8  # queue length at which the threshold reaches t_max
    max_depth: int = 12  # tokens after the prompt
    max_nodes: int = 200  # nodes in the whole tree (the prompt is not a node)
    stop: tuple[str, ...] = ()  # a path ends once its continuation text contains one
    batch: int = 1  # open paths expanded per forward pass (siblings share one batch)
    cache_mib: float = 256.0  # the tree's own KV-cache budget (forks kept for reuse)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(str(s) for s in self.stop))
        for name in ("t_min", "t_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise TreeSettingsError(f"Tree setting {name} must be a number in [0, 1], not {value!r}.")
        if self.t_min > self.t_max:
            raise TreeSettingsError(
                f"Tree setting t_min ({self.t_min}) must not be larger than t_max ({self.t_max}).")
        for name in ("q_limit", "max_depth", "max_nodes", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TreeSettingsError(f"Tree setting {name} must be a whole number of at least 1, not {value!r}.")
        if isinstance(self.cache_mib, bool) or not isinstance(self.cache_mib, (int, float)) \
                or not math.isfinite(self.cache_mib) or self.cache_mib < 0:
            raise TreeSettingsError(f"Tree setting cache_mib must be a number of MiB (0 or more), not {self.cache_mib!r}.")
        if any(s == "" for s in self.stop):
            raise TreeSettingsError("A tree stop string must not be empty.")

    def as_dict(self) -> dict:
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
                for f in fields(self)}

    @classmethod
    def from_table(cls, table: dict, base: "TreeSettings | None" = None) -> "TreeSettings":
        """From config.toml's [tree] table (or CLI values), on top of `base`."""
        base = base or cls()
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(table) - known)
        if unknown:
            raise TreeSettingsError(f"config.toml: unknown key tree.{unknown[0]}.")
        values = base.as_dict()
        for key, value in table.items():
            if key == "stop":
                if isinstance(value, str):
                    value = [value]
                if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                    raise TreeSettingsError("Tree setting stop must be a string or a list of strings.")
            elif key in ("t_min", "t_max", "cache_mib") and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            values[key] = value
        values["stop"] = tuple(values["stop"])
        return cls(**values)


def threshold(queue_length: int, settings: TreeSettings) -> float:
    """T for a path whose children are chosen while `queue_length` paths are open."""
    fill = min(1.0, queue_length / settings.q_limit)
    return settings.t_min + fill * (settings.t_max - settings.t_min)
