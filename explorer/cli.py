"""Command line: parse flags, load settings, run the app."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from explorer.config import ConfigError, Settings, load_settings
from explorer.tree.cli import add_tree_flags, tree_settings_from_args
from explorer.tree.rule import TreeSettingsError


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="token-explorer",
        description="Look inside a causal language model one token at a time.",
    )
    parser.add_argument("--input", "-i", type=Path, metavar="FILE",
                        help="open this prompt (.txt, or a saved .json) instead of the default")
    parser.add_argument("--model", metavar="ID_OR_DIR",
                        help='hub id or local folder; overrides config.toml ("embedded" = built-in)')
    parser.add_argument("--bf16", action="store_true", help="load the model in bfloat16")
    parser.add_argument("--layer_prob", "--layer-prob", action="store_true", dest="layer_prob",
                        help="enable logit-lens layer views (p cycles them)")
    parser.add_argument("--config", type=Path, metavar="TOML", help=argparse.SUPPRESS)
    add_tree_flags(parser)  # for `b` in the app
    return parser.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """config.toml with the command line on top. Raises ConfigError."""
    settings = load_settings(args.config)
    model = settings.model
    if args.model:
        model = replace(model, name=args.model)
    if args.bf16:
        model = replace(model, dtype="bfloat16")
    try:
        tree = tree_settings_from_args(args, settings.tree)
    except TreeSettingsError as exc:
        raise ConfigError(str(exc)) from exc
    return replace(settings, model=model, layer_prob=args.layer_prob, tree=tree)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["tree"]:  # `main.py tree ...`: the headless token tree
        from explorer.tree.cli import main as tree_main

        return tree_main(argv[1:])
    args = parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"token-explorer: {exc}", file=sys.stderr)
        return 2
    from explorer.ui.app import TokenExplorerApp  # Textual import only when we run the UI

    app = TokenExplorerApp(settings, input_path=args.input)
    app.run()
    if app.start_error:
        print(f"token-explorer: {app.start_error}", file=sys.stderr)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
