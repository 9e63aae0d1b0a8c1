"""--attribution-steps and --attribution-baseline: integrated gradients' step count and
baseline on the command line (the app and `trace`), on top of config.toml's [attribution]."""

from __future__ import annotations

import argparse
from dataclasses import replace

from explorer.backend.types import ATTRIBUTION_BASELINES
from explorer.config import ConfigError, Settings


def add_attribution_steps_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attribution-steps", type=int, metavar="N", default=None,
                        help="integrated gradients: gradient evaluations along the path "
                             "(default 32, config.toml [attribution] n_steps)")
    parser.add_argument("--attribution-baseline", metavar="NAME", default=None,
                        help="integrated gradients: where the path starts: "
                             f"{', '.join(ATTRIBUTION_BASELINES)} (default zero, config.toml "
                             "[attribution] baseline; the README says which to use when)")


def attribution_from_args(settings: Settings, args: argparse.Namespace) -> Settings:
    """The flags on top of config.toml. Raises ConfigError (one sentence)."""
    chosen = settings.attribution
    steps = getattr(args, "attribution_steps", None)
    if steps is not None:
        chosen = replace(chosen, n_steps=steps).check("--attribution-steps")
    baseline = getattr(args, "attribution_baseline", None)
    if baseline is not None:
        chosen = replace(chosen, baseline=baseline).check_baseline("--attribution-baseline")
    return settings if chosen is settings.attribution else replace(settings, attribution=chosen)


__all__ = ["add_attribution_steps_flag", "attribution_from_args"]
