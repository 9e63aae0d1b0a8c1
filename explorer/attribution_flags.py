"""--attribution-steps: integrated gradients' step count on the command line (the app and
`trace`), on top of config.toml's [attribution] n_steps."""

from __future__ import annotations

import argparse
from dataclasses import replace

from explorer.config import ConfigError, Settings


def add_attribution_steps_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--attribution-steps", type=int, metavar="N", default=None,
                        help="integrated gradients: gradient evaluations along the path "
                             "(default 32, config.toml [attribution] n_steps)")


def attribution_from_args(settings: Settings, args: argparse.Namespace) -> Settings:
    """The flag on top of config.toml. Raises ConfigError (one sentence)."""
    steps = getattr(args, "attribution_steps", None)
    if steps is None:
        return settings
    chosen = replace(settings.attribution, n_steps=steps).check("--attribution-steps")
    return replace(settings, attribution=chosen)


__all__ = ["add_attribution_steps_flag", "attribution_from_args"]
